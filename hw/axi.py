"""AXI4, AXI4-Lite and AXI4-Stream interface signatures (AMBA AXI and ACE spec, ARM IHI 0022).

Each signature is described from the *manager* (master) side: ``Out`` members are driven by the
manager, ``In`` members by the subordinate. A subordinate port is ``In(AXI4Signature(...))``
(i.e. flipped). Member names are the spec's lower-case signal names without the bus prefix, so a
component member ``s_axi`` becomes Verilog ports ``s_axi_awaddr``, ``s_axi_wdata``, ... once
elaborated by :func:`sim.elaborate.verilog_ports` — the names cocotbext-axi's
``AxiBus.from_prefix(dut, "s_axi")`` and vendor IP integrators expect.

Every channel follows the AXI valid/ready handshake: a transfer happens on a rising clock edge
where ``valid`` and ``ready`` are both high; once ``valid`` is raised the payload stays stable
and ``valid`` stays high until the transfer.
"""

import enum

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .params import ParameterError, check_int


__all__ = ["Resp", "Burst", "AXI4Signature", "AXI4LiteSignature", "AXIStreamSignature"]


class Resp(enum.IntEnum):
    """``xRESP`` encodings."""
    OKAY = 0b00
    EXOKAY = 0b01
    SLVERR = 0b10
    DECERR = 0b11


class Burst(enum.IntEnum):
    """``AxBURST`` encodings."""
    FIXED = 0b00
    INCR = 0b01
    WRAP = 0b10


def _check_data_width(name, value, lo):
    return check_int(name, value, lo, 1024, power_of_two=True)


class AXI4LiteSignature(wiring.Signature):
    """AXI4-Lite manager-side signature.

    Parameters
    ----------
    addr_width : int
        Byte address width, 1..64.
    data_width : int
        32 or 64 (the AXI4-Lite spec allows no other width).
    """

    def __init__(self, *, addr_width, data_width=32):
        self._addr_width = check_int("addr_width", addr_width, 1, 64)
        if data_width not in (32, 64):
            check_int("data_width", data_width, 32, 64, power_of_two=True)
        self._data_width = data_width
        strb = data_width // 8
        super().__init__({
            "awaddr": Out(addr_width), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_width), "wstrb": Out(strb), "wvalid": Out(1), "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_width), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })

    addr_width = property(lambda self: self._addr_width)
    data_width = property(lambda self: self._data_width)

    def __eq__(self, other):
        return (type(other) is type(self) and other.addr_width == self.addr_width
                and other.data_width == self.data_width)

    def __repr__(self):
        return f"AXI4LiteSignature(addr_width={self.addr_width}, data_width={self.data_width})"


class AXI4Signature(wiring.Signature):
    """AXI4 (full) manager-side signature with bursts and IDs.

    Parameters
    ----------
    addr_width : int
        Byte address width, 1..64.
    data_width : int
        Power of two, 8..1024.
    id_width : int
        0..32; 0 drops the ID members (a single-ID bus).
    user_width : int
        0..64; width of ``awuser``/``aruser`` (0 drops them).
    """

    def __init__(self, *, addr_width, data_width, id_width=0, user_width=0):
        self._addr_width = check_int("addr_width", addr_width, 1, 64)
        self._data_width = _check_data_width("data_width", data_width, 8)
        self._id_width = check_int("id_width", id_width, 0, 32)
        self._user_width = check_int("user_width", user_width, 0, 64)
        members = {}
        for ch in ("aw", "ar"):
            if id_width:
                members[f"{ch}id"] = Out(id_width)
            members.update({
                f"{ch}addr": Out(addr_width), f"{ch}len": Out(8), f"{ch}size": Out(3),
                f"{ch}burst": Out(2), f"{ch}lock": Out(1), f"{ch}cache": Out(4), f"{ch}prot": Out(3),
                f"{ch}qos": Out(4),
            })
            if user_width:
                members[f"{ch}user"] = Out(user_width)
            members[f"{ch}valid"] = Out(1)
            members[f"{ch}ready"] = In(1)
            if ch == "aw":
                members.update({
                    "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wlast": Out(1),
                    "wvalid": Out(1), "wready": In(1),
                })
                if id_width:
                    members["bid"] = In(id_width)
                members.update({"bresp": In(2), "bvalid": In(1), "bready": Out(1)})
        if id_width:
            members["rid"] = In(id_width)
        members.update({
            "rdata": In(data_width), "rresp": In(2), "rlast": In(1), "rvalid": In(1), "rready": Out(1),
        })
        super().__init__(members)

    addr_width = property(lambda self: self._addr_width)
    data_width = property(lambda self: self._data_width)
    id_width = property(lambda self: self._id_width)
    user_width = property(lambda self: self._user_width)

    @property
    def bytes_per_beat(self):
        return self._data_width // 8

    def __eq__(self, other):
        return (type(other) is type(self) and
                (other.addr_width, other.data_width, other.id_width, other.user_width) ==
                (self.addr_width, self.data_width, self.id_width, self.user_width))

    def __repr__(self):
        return (f"AXI4Signature(addr_width={self.addr_width}, data_width={self.data_width}, "
                f"id_width={self.id_width}, user_width={self.user_width})")


class AXIStreamSignature(wiring.Signature):
    """AXI4-Stream transmitter-side signature (ARM IHI 0051).

    ``tdata`` and ``tvalid``/``tready`` always exist; ``tkeep`` and ``tlast`` exist when enabled;
    ``tid``, ``tdest`` and ``tuser`` when their widths are non-zero. Inside the library, streams are
    :mod:`amaranth.lib.stream` streams; this signature is for bus-facing top-levels.

    Parameters
    ----------
    data_width : int
        Power of two, 8..1024 bits (whole bytes, as ``tkeep`` needs).
    keep, last : bool
        Include ``tkeep`` (one bit per byte) and ``tlast``.
    id_width, dest_width, user_width : int
        0..32 / 0..32 / 0..1024.
    """

    def __init__(self, *, data_width, keep=True, last=True, id_width=0, dest_width=0, user_width=0):
        self._data_width = check_int("data_width", data_width, 8, 1024)
        if data_width % 8:
            raise ParameterError(f"data_width: {data_width} is not a whole number of bytes "
                             "(accepted: a multiple of 8 in 8..1024)")
        self._keep, self._last = bool(keep), bool(last)
        self._id_width = check_int("id_width", id_width, 0, 32)
        self._dest_width = check_int("dest_width", dest_width, 0, 32)
        self._user_width = check_int("user_width", user_width, 0, 1024)
        members = {"tdata": Out(data_width)}
        if keep:
            members["tkeep"] = Out(data_width // 8)
        if last:
            members["tlast"] = Out(1)
        for name, width in (("tid", id_width), ("tdest", dest_width), ("tuser", user_width)):
            if width:
                members[name] = Out(width)
        members["tvalid"] = Out(1)
        members["tready"] = In(1)
        super().__init__(members)

    data_width = property(lambda self: self._data_width)

    def __eq__(self, other):
        return (type(other) is type(self) and
                (other._data_width, other._keep, other._last, other._id_width, other._dest_width,
                 other._user_width) ==
                (self._data_width, self._keep, self._last, self._id_width, self._dest_width,
                 self._user_width))

    def __repr__(self):
        return (f"AXIStreamSignature(data_width={self._data_width}, keep={self._keep}, "
                f"last={self._last}, id_width={self._id_width}, dest_width={self._dest_width}, "
                f"user_width={self._user_width})")
