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

from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .params import ParameterError, check_int


__all__ = ["Resp", "Burst", "AXI4_CHANNELS", "AXI4LITE_CHANNELS", "ADDRESS_FIELDS", "CHANNEL_DIRECTION",
           "FIELD_WIDTHS", "address_layout", "AXI4Signature", "AXI4LiteSignature", "AXIStreamSignature"]


# The channel field lists, defined here once: the signatures below are built from them, and
# every other place that walks an AXI bus field by field (bridges, splitters, testbench checkers)
# reads them from here. Names are the spec's signal names without the channel prefix
# (``"addr"`` on channel ``"aw"`` is ``AWADDR``), in the order the ports are declared.

#: Payload fields of the AW and AR channels (identical for both).
ADDRESS_FIELDS = ("id", "addr", "len", "size", "burst", "lock", "cache", "prot", "qos", "user")

#: Payload fields of each AXI4 channel, manager's view (``valid``/``ready`` not included).
AXI4_CHANNELS = {
    "aw": ADDRESS_FIELDS,
    "w": ("data", "strb", "last"),
    "b": ("id", "resp"),
    "ar": ADDRESS_FIELDS,
    "r": ("id", "data", "resp", "last"),
}

#: Payload fields of each AXI4-Lite channel.
AXI4LITE_CHANNELS = {
    "aw": ("addr", "prot"),
    "w": ("data", "strb"),
    "b": ("resp",),
    "ar": ("addr", "prot"),
    "r": ("data", "resp"),
}

#: ``"request"`` channels are driven by the manager, ``"response"`` channels by the subordinate.
CHANNEL_DIRECTION = {"aw": "request", "w": "request", "b": "response", "ar": "request", "r": "response"}

#: Widths of the fields the spec fixes (``id``, ``addr``, ``data``, ``strb``, ``user`` are
#: parameters of a bus: see :meth:`AXI4Signature.field_width`).
FIELD_WIDTHS = {"len": 8, "size": 3, "burst": 2, "lock": 1, "cache": 4, "prot": 3, "qos": 4,
                "resp": 2, "last": 1}


def address_layout(*, addr_width, id_width=0, user_width=0):
    """The AW/AR payload (:data:`ADDRESS_FIELDS`) as a ``lib.data`` struct, ``id`` at bit 0;
    ``id``/``user`` are left out at width 0. For bridges that carry or hold a request as one value."""
    widths = {"id": id_width, "addr": addr_width, "user": user_width}
    return data.StructLayout({name: widths.get(name, FIELD_WIDTHS.get(name))
                              for name in ADDRESS_FIELDS if widths.get(name, FIELD_WIDTHS.get(name))})


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
        members = {}
        for ch, names in AXI4LITE_CHANNELS.items():
            flow, back = (Out, In) if CHANNEL_DIRECTION[ch] == "request" else (In, Out)
            for name in names:
                members[ch + name] = flow(self.field_width(name))
            members[ch + "valid"] = flow(1)
            members[ch + "ready"] = back(1)
        super().__init__(members)

    def field_width(self, name):
        """Width of payload field ``name`` on this bus."""
        variable = {"addr": self._addr_width, "data": self._data_width, "strb": self._data_width // 8}
        return variable[name] if name in variable else FIELD_WIDTHS[name]

    def fields(self, ch):
        """Payload fields of channel ``ch`` (:data:`AXI4LITE_CHANNELS`)."""
        return AXI4LITE_CHANNELS[ch]

    addr_width = property(lambda self: self._addr_width)
    data_width = property(lambda self: self._data_width)

    def __eq__(self, other):
        return (type(other) is type(self) and other.addr_width == self.addr_width
                and other.data_width == self.data_width)

    def __repr__(self):
        return f"AXI4LiteSignature(addr_width={self.addr_width}, data_width={self.data_width})"


class AXI4Signature(wiring.Signature):
    """AXI4 (full) manager-side signature with bursts and IDs.

    Members are built from :data:`AXI4_CHANNELS` in its order (per channel: payload fields, then
    ``valid``, ``ready``); :meth:`fields` lists the payload fields one instance has.

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
        for ch, names in AXI4_CHANNELS.items():
            flow, back = (Out, In) if CHANNEL_DIRECTION[ch] == "request" else (In, Out)
            for name in self.fields(ch):
                members[ch + name] = flow(self.field_width(name))
            members[ch + "valid"] = flow(1)
            members[ch + "ready"] = back(1)
        super().__init__(members)

    def field_width(self, name):
        """Width of payload field ``name`` (``"addr"``, ``"len"``, ``"data"`` ...) on this bus."""
        variable = {"id": self._id_width, "addr": self._addr_width, "data": self._data_width,
                    "strb": self._data_width // 8, "user": self._user_width}
        return variable[name] if name in variable else FIELD_WIDTHS[name]

    def fields(self, ch):
        """Payload fields of channel ``ch`` present on this bus (``id``/``user`` drop at width 0)."""
        return tuple(name for name in AXI4_CHANNELS[ch] if self.field_width(name))

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
        8..4096 bits, whole bytes (as ``tkeep`` needs). AXI4-Stream sets no upper bound; 4096
        covers the widest stream here (the vector unit's 64 lanes of 32 bits is 2048).
    keep, last : bool
        Include ``tkeep`` (one bit per byte) and ``tlast``.
    id_width, dest_width, user_width : int
        0..32 / 0..32 / 0..1024.
    """

    def __init__(self, *, data_width, keep=True, last=True, id_width=0, dest_width=0, user_width=0):
        self._data_width = check_int("data_width", data_width, 8, 4096)
        if data_width % 8:
            raise ParameterError(f"data_width: {data_width} is not a whole number of bytes "
                             "(accepted: a multiple of 8 in 8..4096)")
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
