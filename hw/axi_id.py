"""AXI4 ID-width adapter: a manager's IDs onto a subordinate with fewer (or more) ID bits."""

from dataclasses import dataclass

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .axi import AXI4Signature
from .params import ParameterError, Params, check_int, param


__all__ = ["AXIIDAdapterParams", "AXIIDAdapter", "axi_id_adapter", "MAX_TABLE_BITS"]

#: Narrowing keeps a table of ``2**m_id_width`` slots per direction: at most 64 slots.
MAX_TABLE_BITS = 6


def _check_widths(s_id_width, m_id_width):
    check_int("s_id_width", s_id_width, 0, 32)
    check_int("m_id_width", m_id_width, 0, 32)
    if m_id_width < s_id_width and m_id_width > MAX_TABLE_BITS:
        raise ParameterError(
            f"m_id_width: {m_id_width} is out of range when narrowing from s_id_width {s_id_width} "
            f"(accepted: an integer in 0..{MAX_TABLE_BITS}, a remap table of 2**m_id_width slots; "
            f"or {s_id_width}..32 to widen)")


@dataclass(frozen=True)
class AXIIDAdapterParams(Params):
    """Parameters of the ``axi_id`` block."""
    addr_width: int = param(16, lo=12, hi=64, doc="byte address width")
    data_width: int = param(32, lo=8, hi=1024, power_of_two=True, doc="data width (bits)")
    s_id_width: int = param(4, lo=0, hi=32, doc="ID width of the manager side (s_axi)")
    m_id_width: int = param(2, lo=0, hi=32, doc="ID width of the subordinate side (m_axi)")
    max_outstanding: int = param(4, lo=1, hi=256, doc="transactions in flight per remap slot (narrowing)")

    def check(self):
        _check_widths(self.s_id_width, self.m_id_width)


class AXIIDAdapter(wiring.Component):
    """AXI4 ID-width adapter between a manager (``s_axi``) and a subordinate (``m_axi``).

    **Widening** (``m_id_width >= s_id_width``): ``AWID``/``ARID`` are zero-extended, ``BID``/
    ``RID`` truncated back (a compliant subordinate returns the ID it was given, so the dropped
    bits are zero). Nothing else changes: same ordering, no state.

    **Narrowing** (``m_id_width < s_id_width``): a remap table per direction (reads and writes
    are independent ID spaces) of ``2**m_id_width`` slots, each holding a manager ID and the
    number of its transactions in flight (address handshake to last R beat / B). A request whose
    ID already owns a slot uses that slot's ID, so same-ID transactions stay in order at the
    subordinate, as AXI requires; a new ID takes the lowest free slot. The response's ID selects
    the slot, whose manager ID goes back on ``s_axi``. Ordering consequences: up to
    ``2**m_id_width`` distinct manager IDs are in flight per direction with full reordering
    freedom between them; a request with another ID waits (and, AXI channels being in order, so
    does everything behind it on that channel) until some slot drains; a slot takes at most
    ``max_outstanding`` transactions, then its ID waits for one to complete. ``m_id_width = 0``
    serialises: one manager ID at a time per direction, up to ``max_outstanding`` of it in flight.

    Latency: 0 cycles on every channel (request: a lookup over the slots, combinational from
    ``AxID`` to ``AxVALID``; response: a slot read). Throughput: 1 address, 1 W beat, 1 R beat and
    1 B per cycle; per direction at most ``2**m_id_width * max_outstanding`` transactions in
    flight when narrowing. Once ``m_axi`` has seen a request its slot is held until the handshake
    (the ID never changes under a stall).

    Parameters
    ----------
    addr_width, data_width, user_width : int
        As :class:`~scoville.hw.axi.AXI4Signature`.
    s_id_width : int
        Manager-side ID width, 0..32.
    m_id_width : int
        Subordinate-side ID width: 0..6 when narrowing, ``s_id_width``..32 when widening.
    max_outstanding : int
        1..256 transactions per slot and direction (narrowing only).

    Members
    -------
    s_axi : In(AXI4Signature(id_width=s_id_width))
        Manager port.
    m_axi : Out(AXI4Signature(id_width=m_id_width))
        Subordinate port.
    """

    def __init__(self, *, addr_width, data_width, s_id_width, m_id_width, max_outstanding=4, user_width=0):
        _check_widths(s_id_width, m_id_width)
        self._s_id_width, self._m_id_width = s_id_width, m_id_width
        self._max_outstanding = check_int("max_outstanding", max_outstanding, 1, 256)
        common = dict(addr_width=addr_width, data_width=data_width, user_width=user_width)
        super().__init__({
            "s_axi": In(AXI4Signature(**common, id_width=s_id_width)),
            "m_axi": Out(AXI4Signature(**common, id_width=m_id_width)),
        })

    s_id_width = property(lambda self: self._s_id_width)
    m_id_width = property(lambda self: self._m_id_width)
    max_outstanding = property(lambda self: self._max_outstanding)

    @property
    def narrowing(self):
        return self._m_id_width < self._s_id_width

    def _pass(self, m, ch, *, request):
        src, dst = (self.s_axi, self.m_axi) if request else (self.m_axi, self.s_axi)
        for f in src.signature.fields(ch):
            if f != "id":
                m.d.comb += getattr(dst, ch + f).eq(getattr(src, ch + f))
        if not request:
            m.d.comb += getattr(src, ch + "ready").eq(getattr(dst, ch + "ready"))

    def _widen(self, m, req, rsp):
        s, sub = self.s_axi, self.m_axi
        self._pass(m, req, request=True)
        self._pass(m, rsp, request=False)
        m.d.comb += [getattr(sub, req + "valid").eq(getattr(s, req + "valid")),
                     getattr(s, req + "ready").eq(getattr(sub, req + "ready")),
                     getattr(s, rsp + "valid").eq(getattr(sub, rsp + "valid"))]
        if self._m_id_width:
            m.d.comb += getattr(sub, req + "id").eq(getattr(s, req + "id") if self._s_id_width else 0)
        if self._s_id_width:
            m.d.comb += getattr(s, rsp + "id").eq(getattr(sub, rsp + "id"))

    def _narrow(self, m, req, rsp):
        s, sub = self.s_axi, self.m_axi
        slots, limit = 1 << self._m_id_width, self._max_outstanding
        owner = [Signal(self._s_id_width, name=f"{req}_owner{k}") for k in range(slots)]
        count = [Signal(range(limit + 1), name=f"{req}_count{k}") for k in range(slots)]
        ident = getattr(s, req + "id")

        match = Signal(slots, name=f"{req}_match")
        free = Signal(slots, name=f"{req}_free")
        for k in range(slots):
            m.d.comb += [match[k].eq((count[k] != 0) & (owner[k] == ident)), free[k].eq(count[k] == 0)]
        slot = Signal(range(max(slots, 2)), name=f"{req}_slot")
        room = Signal(name=f"{req}_room")
        locked = Signal(name=f"{req}_locked")
        held = Signal.like(slot, name=f"{req}_held")
        # Same ID: its slot (lowest index wins, later assignments override); else a free one.
        with m.If(locked):
            m.d.comb += [slot.eq(held), room.eq(1)]
        with m.Elif(match.any()):
            for k in reversed(range(slots)):
                with m.If(match[k]):
                    m.d.comb += [slot.eq(k), room.eq(count[k] != limit)]
        with m.Else():
            for k in reversed(range(slots)):
                with m.If(free[k]):
                    m.d.comb += [slot.eq(k), room.eq(1)]

        self._pass(m, req, request=True)
        self._pass(m, rsp, request=False)
        valid, ready = getattr(sub, req + "valid"), getattr(sub, req + "ready")
        m.d.comb += [valid.eq(getattr(s, req + "valid") & room),
                     getattr(s, req + "ready").eq(ready & room)]
        if self._m_id_width:
            m.d.comb += getattr(sub, req + "id").eq(slot)
        with m.If(valid & ~ready):
            m.d.sync += [locked.eq(1), held.eq(slot)]
        with m.Else():
            m.d.sync += locked.eq(0)
        issued = valid & ready

        back = getattr(sub, rsp + "id")[:self._m_id_width] if self._m_id_width else Const(0, 1)
        with m.Switch(back):
            for k in range(slots):
                with m.Case(k):
                    m.d.comb += getattr(s, rsp + "id").eq(owner[k])
        m.d.comb += getattr(s, rsp + "valid").eq(getattr(sub, rsp + "valid"))
        done = getattr(sub, rsp + "valid") & getattr(sub, rsp + "ready")
        if rsp == "r":
            done = done & sub.rlast
        for k in range(slots):
            inc = issued & (slot == k)
            dec = done & (back == k)
            with m.If(inc & ~dec):
                m.d.sync += [count[k].eq(count[k] + 1), owner[k].eq(ident)]
            with m.Elif(dec & ~inc):
                m.d.sync += count[k].eq(count[k] - 1)

    def elaborate(self, platform):
        m = Module()
        s, sub = self.s_axi, self.m_axi
        adapt = self._narrow if self.narrowing else self._widen
        adapt(m, "aw", "b")
        adapt(m, "ar", "r")
        for f in ("data", "strb", "last", "valid"):
            m.d.comb += getattr(sub, "w" + f).eq(getattr(s, "w" + f))
        m.d.comb += s.wready.eq(sub.wready)
        return m


def axi_id_adapter(*, addr_width, data_width, s_id_width, m_id_width, max_outstanding):
    """The ``axi_id`` block's top: an :class:`AXIIDAdapter`."""
    return AXIIDAdapter(addr_width=addr_width, data_width=data_width, s_id_width=s_id_width,
                        m_id_width=m_id_width, max_outstanding=max_outstanding)
