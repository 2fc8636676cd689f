"""A small control/status register (CSR) block behind an AXI4-Lite subordinate port.

``amaranth-soc`` is not usable from PyPI, so this is Scoville's own minimal CSR block: a flat
array of word-sized registers, each read-write (driven by software) or read-only (driven by the
gateware), with an optional one-cycle write strobe.
"""

from dataclasses import dataclass

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .axi import AXI4LiteSignature, Resp
from .params import Params, ParameterError, check_choice, check_int, param


__all__ = ["Register", "CSRBlock", "CSRBankParams", "csr_bank"]


@dataclass(frozen=True)
class Register:
    """One CSR: ``name`` (a Python identifier), ``access`` ``"rw"`` or ``"ro"``, ``width`` bits
    (at most the bus width), ``init`` value of an ``rw`` register, and ``strobe`` to add a
    ``<name>_wstb`` output pulsed for one cycle by every write to it."""
    name: str
    access: str = "rw"
    width: int = 32
    init: int = 0
    strobe: bool = False
    doc: str = ""

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ParameterError(f"register name: {self.name!r} is not an identifier")
        check_choice(f"{self.name}.access", self.access, ("rw", "ro"))
        check_int(f"{self.name}.width", self.width, 1, 64)
        check_int(f"{self.name}.init", self.init, 0, (1 << self.width) - 1)


class CSRBlock(wiring.Component):
    """Flat register file with an AXI4-Lite subordinate port.

    Register ``k`` sits at byte offset ``k * data_width // 8``. A write needs ``AW`` and ``W``
    together (both ``ready``s rise in the cycle both ``valid``s are high); it applies ``wstrb``
    byte by byte and answers ``OKAY``; a write to a read-only register answers ``SLVERR`` and
    changes nothing; an address past the last register answers ``DECERR``. Reads answer one
    cycle after ``AR`` with the register's value, or ``DECERR`` and zero.

    Latency: write response 1 cycle after the AW/W handshake; read data 1 cycle after the AR
    handshake. Throughput: one write per 2 cycles and one read per 2 cycles (a new request is
    accepted once the previous response has been taken), reads and writes independent.

    Parameters
    ----------
    registers : sequence of Register
        1..256 registers with distinct names.
    addr_width : int
        AXI4-Lite byte address width; must reach every register.
    data_width : int
        32 or 64.

    Members
    -------
    s_axil : In(AXI4LiteSignature(addr_width, data_width))
        AXI4-Lite subordinate (ports ``s_axil_awaddr`` ...).
    <name> : Out(width) for ``rw`` registers, In(width) for ``ro`` registers
        The register's value / the status to be read.
    <name>_wstb : Out(1), for registers with ``strobe``
        High for the one cycle in which the new value appears on ``<name>``.
    """

    def __init__(self, *, registers, addr_width=12, data_width=32):
        registers = tuple(registers)
        check_int("registers (count)", len(registers), 1, 256)
        names = [r.name for r in registers]
        if len(set(names)) != len(names):
            raise ParameterError(f"registers: duplicate names in {names}")
        self._bus = AXI4LiteSignature(addr_width=addr_width, data_width=data_width)
        self._stride = data_width // 8
        if len(registers) * self._stride > 1 << addr_width:
            raise ParameterError(f"addr_width: {addr_width} cannot address {len(registers)} registers "
                                 f"(accepted: >= {(len(registers) * self._stride - 1).bit_length()})")
        for reg in registers:
            if reg.width > data_width:
                raise ParameterError(f"{reg.name}.width: {reg.width} is wider than data_width {data_width}")
        self._registers = registers
        members = {"s_axil": In(self._bus)}
        for reg in registers:
            members[reg.name] = (Out if reg.access == "rw" else In)(reg.width, init=reg.init)
            if reg.strobe:
                members[f"{reg.name}_wstb"] = Out(1)
        super().__init__(members)

    registers = property(lambda self: self._registers)

    def offset(self, name):
        """Byte offset of register ``name``."""
        for k, reg in enumerate(self._registers):
            if reg.name == name:
                return k * self._stride
        raise KeyError(name)

    def elaborate(self, platform):
        m = Module()
        bus = self.s_axil
        shift = (self._stride - 1).bit_length()

        # Write channel: take AW and W in the same cycle, and only when no response is pending,
        # so that a response is never overwritten.
        write = Signal()
        m.d.comb += write.eq(bus.awvalid & bus.wvalid & ~bus.bvalid)
        m.d.comb += [bus.awready.eq(write), bus.wready.eq(write)]
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += bus.bvalid.eq(0)
        waddr = bus.awaddr >> shift
        for reg in self._registers:
            if reg.strobe:
                m.d.sync += getattr(self, f"{reg.name}_wstb").eq(0)
        with m.If(write):
            m.d.sync += [bus.bvalid.eq(1), bus.bresp.eq(Resp.DECERR)]
            for k, reg in enumerate(self._registers):
                with m.If(waddr == k):
                    if reg.access == "ro":
                        m.d.sync += bus.bresp.eq(Resp.SLVERR)
                        continue  # read-only: nothing to write
                    m.d.sync += bus.bresp.eq(Resp.OKAY)
                    value = getattr(self, reg.name)
                    for byte in range((reg.width + 7) // 8):
                        with m.If(bus.wstrb[byte]):
                            hi = min(reg.width, 8 * byte + 8)
                            m.d.sync += value[8 * byte:hi].eq(bus.wdata[8 * byte:hi])
                    if reg.strobe:
                        m.d.sync += getattr(self, f"{reg.name}_wstb").eq(1)

        # Read channel: one request in flight; data registered.
        m.d.comb += bus.arready.eq(~bus.rvalid)
        with m.If(bus.rvalid & bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        with m.If(bus.arvalid & bus.arready):
            raddr = bus.araddr >> shift
            m.d.sync += [bus.rvalid.eq(1), bus.rdata.eq(0), bus.rresp.eq(Resp.DECERR)]
            with m.Switch(raddr):
                for k, reg in enumerate(self._registers):
                    with m.Case(k):
                        m.d.sync += [bus.rdata.eq(getattr(self, reg.name)), bus.rresp.eq(Resp.OKAY)]
        return m


@dataclass(frozen=True)
class CSRBankParams(Params):
    """Parameters of the ``csr`` demonstration block: ``rw`` scratch registers plus ``ro``
    status inputs, as a block elaborates it for its own control port."""
    rw_registers: int = param(4, lo=0, hi=128, doc="read-write registers (scratch0..)")
    ro_registers: int = param(2, lo=0, hi=128, doc="read-only registers (status0..)")
    data_width: int = param(32, choices=(32, 64), doc="AXI4-Lite data width in bits")
    addr_width: int = param(12, lo=2, hi=32, doc="AXI4-Lite byte address width")

    def check(self):
        if self.rw_registers + self.ro_registers == 0:
            raise ParameterError("rw_registers, ro_registers: at least one register is needed "
                                 "(accepted: rw_registers + ro_registers in 1..256)")


def csr_bank(*, rw_registers=4, ro_registers=2, data_width=32, addr_width=12):
    """The ``csr`` CLI block: scratch registers (``scratch0`` has a write strobe) then status."""
    regs = [Register(f"scratch{k}", "rw", data_width, strobe=(k == 0)) for k in range(rw_registers)]
    regs += [Register(f"status{k}", "ro", data_width) for k in range(ro_registers)]
    return CSRBlock(registers=regs, addr_width=addr_width, data_width=data_width)
