"""AXI4 data-width adapter: a manager of one data width onto a subordinate of another."""

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from .axi import AXI4Signature, Burst
from .axi_id import AXIIDAdapter
from .params import ParameterError, Params, check_int, param


__all__ = ["AXIWidthAdapterParams", "AXIWidthAdapter", "axi_width_adapter"]


def _check_widths(s_data_width, m_data_width):
    check_int("s_data_width", s_data_width, 8, 1024, power_of_two=True)
    check_int("m_data_width", m_data_width, 8, 1024, power_of_two=True)
    if s_data_width == m_data_width:
        raise ParameterError(f"m_data_width: {m_data_width} equals s_data_width (accepted: a power of "
                             "two in 8..1024 other than s_data_width; equal widths need no adapter)")


@dataclass(frozen=True)
class AXIWidthAdapterParams(Params):
    """Parameters of the ``axi_width`` block."""
    addr_width: int = param(16, lo=12, hi=64, doc="byte address width")
    s_data_width: int = param(32, lo=8, hi=1024, power_of_two=True, doc="manager-side data width (bits)")
    m_data_width: int = param(128, lo=8, hi=1024, power_of_two=True, doc="subordinate-side data width (bits)")
    id_width: int = param(2, lo=0, hi=32, doc="manager-side ID width")
    max_outstanding: int = param(4, lo=1, hi=256, doc="bursts in flight per direction")

    def check(self):
        _check_widths(self.s_data_width, self.m_data_width)


def _next_address(cur, size, length, burst):
    """Address of the beat after the one at ``cur`` (AXI4 burst rules; ``size`` and ``length``
    are the AxSIZE / AxLEN values)."""
    step = Const(1, len(cur) + 1) << size
    incr = ((cur >> size) << size) + step
    wrap_mask = (((length + 1) << size) - 1)[:len(cur)]
    wrap = (cur & ~wrap_mask) | (incr[:len(cur)] & wrap_mask)
    return Mux(burst == Burst.FIXED, cur, Mux(burst == Burst.WRAP, wrap, incr[:len(cur)]))


class _Upsizer(wiring.Component):
    """ID-less, in-order core: narrow manager onto wide subordinate by lane steering."""

    def __init__(self, *, addr_width, s_data_width, m_data_width, depth):
        self._sw, self._mw, self._depth = s_data_width, m_data_width, depth
        super().__init__({
            "s_axi": In(AXI4Signature(addr_width=addr_width, data_width=s_data_width)),
            "m_axi": Out(AXI4Signature(addr_width=addr_width, data_width=m_data_width)),
        })

    def elaborate(self, platform):
        m = Module()
        s, sub = self.s_axi, self.m_axi
        ratio = self._mw // self._sw
        low = (self._mw // 8 - 1).bit_length()       # address bits inside a wide beat
        group_lsb = (self._sw // 8 - 1).bit_length()  # first address bit naming a lane group
        info_width = low + 3 + 8 + 2
        for req, rsp, data_ch in (("aw", "b", "w"), ("ar", "r", "r")):
            info = SyncFIFO(width=info_width, depth=self._depth)
            m.submodules[f"{req}_info"] = info
            for f in s.signature.fields(req):
                m.d.comb += getattr(sub, req + f).eq(getattr(s, req + f))
            valid, ready = getattr(s, req + "valid"), getattr(sub, req + "ready")
            m.d.comb += [getattr(sub, req + "valid").eq(valid & info.w_rdy),
                         getattr(s, req + "ready").eq(ready & info.w_rdy),
                         info.w_en.eq(valid & ready & info.w_rdy),
                         info.w_data.eq(Cat(getattr(s, req + "addr")[:low], getattr(s, req + "size"),
                                            getattr(s, req + "len"), getattr(s, req + "burst")))]
            # Beat walker: the low address bits of the current data beat of the head burst.
            start, size = info.r_data[:low], info.r_data[low:low + 3]
            length, burst = info.r_data[low + 3:low + 11], info.r_data[low + 11:]
            cur = Signal(low, name=f"{data_ch}_addr")
            first = Signal(init=1, name=f"{data_ch}_first")
            addr = Mux(first, start, cur)
            group = addr[group_lsb:] if ratio > 1 else Const(0, 1)
            if data_ch == "w":
                m.d.comb += [sub.wdata.eq(Cat(*[s.wdata] * ratio)), sub.wlast.eq(s.wlast),
                             sub.wstrb.eq(s.wstrb << (group * (self._sw // 8))),
                             sub.wvalid.eq(s.wvalid & info.r_rdy), s.wready.eq(sub.wready & info.r_rdy)]
                beat, last = sub.wvalid & sub.wready, s.wlast
            else:
                m.d.comb += [s.rdata.eq(sub.rdata.word_select(group, self._sw)), s.rresp.eq(sub.rresp),
                             s.rlast.eq(sub.rlast), s.rvalid.eq(sub.rvalid & info.r_rdy),
                             sub.rready.eq(s.rready & info.r_rdy)]
                beat, last = s.rvalid & s.rready, sub.rlast
            with m.If(beat):
                m.d.sync += [cur.eq(_next_address(addr, size, length, burst)), first.eq(last)]
            m.d.comb += info.r_en.eq(beat & last)
            # B passes straight through (one per burst, in order: the core sees one ID).
            if rsp == "b":
                m.d.comb += [s.bresp.eq(sub.bresp), s.bvalid.eq(sub.bvalid), sub.bready.eq(s.bready)]
        return m


class _Downsizer(wiring.Component):
    """ID-less, in-order core: wide manager onto narrow subordinate, one narrow burst per
    manager beat."""

    def __init__(self, *, addr_width, s_data_width, m_data_width, depth):
        self._aw, self._sw, self._mw, self._depth = addr_width, s_data_width, m_data_width, depth
        super().__init__({
            "s_axi": In(AXI4Signature(addr_width=addr_width, data_width=s_data_width)),
            "m_axi": Out(AXI4Signature(addr_width=addr_width, data_width=m_data_width)),
        })

    def _walker(self, m, req, fifos, group_of):
        """Registered walker over the manager bursts of channel ``req``: one narrow burst per
        manager beat on ``m_axi``, issued while every FIFO of ``fifos`` has room. Returns
        ``(issued, first lane group, beats - 1, last manager beat)`` of the current part for
        the caller to push."""
        s, sub = self.s_axi, self.m_axi
        nsize = (self._mw // 8 - 1).bit_length()
        held = {f: Signal.like(getattr(s, req + f), name=f"{req}_held_{f}") for f in s.signature.fields(req)}
        busy = Signal(name=f"{req}_busy")
        beat = Signal(8, name=f"{req}_beat")
        cur = held["addr"]
        size = held["size"]
        narrow = size <= nsize
        # Beats of the narrow burst: from the narrow word holding `cur` to the end of its manager beat.
        in_beat = (cur & ((Const(1, 11) << size) - 1))[:11] >> nsize
        beats_minus_1 = Mux(narrow, 0, ((Const(1, 11) << (size - nsize).as_unsigned()[:3]) - 1 - in_beat)[:8])
        last = beat == held["len"]
        space = Cat(*[f.w_rdy for f in fifos]).all()
        for f in s.signature.fields(req):
            if f not in ("addr", "len", "size", "burst", "lock"):
                m.d.comb += getattr(sub, req + f).eq(held[f])
        m.d.comb += [getattr(sub, req + "addr").eq(Mux(narrow, cur, (cur >> nsize) << nsize)),
                     getattr(sub, req + "len").eq(beats_minus_1),
                     getattr(sub, req + "size").eq(Mux(narrow, size, nsize)),
                     getattr(sub, req + "burst").eq(Burst.INCR),
                     getattr(sub, req + "valid").eq(busy & space),
                     getattr(s, req + "ready").eq(~busy)]
        issued = busy & space & getattr(sub, req + "ready")
        with m.If(~busy & getattr(s, req + "valid")):
            m.d.sync += [busy.eq(1), beat.eq(0)]
            m.d.sync += [held[f].eq(getattr(s, req + f)) for f in held]
        with m.If(issued):
            m.d.sync += [beat.eq(beat + 1), cur.eq(_next_address(cur, size, held["len"], held["burst"]))]
            with m.If(last):
                m.d.sync += busy.eq(0)
        return issued, group_of(cur), beats_minus_1, last

    def elaborate(self, platform):
        m = Module()
        s, sub = self.s_axi, self.m_axi
        ratio = self._sw // self._mw
        nsize = (self._mw // 8 - 1).bit_length()
        gbits = max(1, (ratio - 1).bit_length())

        def group_of(addr):
            return addr[nsize:nsize + gbits] if ratio > 1 else Const(0, 1)

        entry = gbits + 8 + 1
        m.submodules.w_info = w_info = SyncFIFO(width=entry, depth=self._depth)
        m.submodules.b_info = b_info = SyncFIFO(width=1, depth=self._depth)
        m.submodules.r_info = r_info = SyncFIFO(width=entry, depth=self._depth)
        # w_info / r_info: (first lane group, beats - 1, last manager beat) per part; b_info: the
        # last flag only.
        issued, group, count, last = self._walker(m, "aw", [w_info, b_info], group_of)
        m.d.comb += [w_info.w_en.eq(issued), w_info.w_data.eq(Cat(group, count, last)),
                     b_info.w_en.eq(issued), b_info.w_data.eq(last)]
        issued, group, count, last = self._walker(m, "ar", [r_info], group_of)
        m.d.comb += [r_info.w_en.eq(issued), r_info.w_data.eq(Cat(group, count, last))]

        # W: each manager beat is sent as the narrow beats of its burst, lane group by group.
        w_group, w_count = w_info.r_data[:gbits], w_info.r_data[gbits:gbits + 8]
        w_sub = Signal(8)
        w_g = Signal(gbits)
        g = Mux(w_sub == 0, w_group, w_g)
        w_end = w_sub == w_count
        m.d.comb += [sub.wdata.eq(s.wdata.word_select(g, self._mw)),
                     sub.wstrb.eq(s.wstrb.word_select(g, self._mw // 8)),
                     sub.wlast.eq(w_end), sub.wvalid.eq(s.wvalid & w_info.r_rdy),
                     s.wready.eq(sub.wready & w_info.r_rdy & w_end),
                     w_info.r_en.eq(sub.wvalid & sub.wready & w_end)]
        with m.If(sub.wvalid & sub.wready):
            m.d.sync += [w_sub.eq(Mux(w_end, 0, w_sub + 1)), w_g.eq(g + 1)]

        # B: one per narrow burst; the manager gets one per burst, the worst of its parts.
        b_worst = Signal(2)
        b_resp = Mux(sub.bresp > b_worst, sub.bresp, b_worst)
        b_last = b_info.r_data[0]
        m.d.comb += [s.bresp.eq(b_resp), s.bvalid.eq(sub.bvalid & b_info.r_rdy & b_last),
                     sub.bready.eq(b_info.r_rdy & (s.bready | ~b_last)),
                     b_info.r_en.eq(sub.bvalid & sub.bready)]
        with m.If(sub.bvalid & sub.bready):
            m.d.sync += b_worst.eq(Mux(b_last, 0, b_resp))

        # R: the narrow beats of a narrow burst fill one manager beat; its last narrow beat
        # completes it combinationally (no bubble), with the worst response of its parts.
        r_group, r_count, r_last = r_info.r_data[:gbits], r_info.r_data[gbits:gbits + 8], r_info.r_data[-1]
        r_sub = Signal(8)
        r_g = Signal(gbits)
        rg = Mux(r_sub == 0, r_group, r_g)
        r_end = r_sub == r_count
        buffer = Signal(self._sw)
        r_worst = Signal(2)
        r_resp = Mux(sub.rresp > r_worst, sub.rresp, r_worst)
        merged = Signal(self._sw)
        m.d.comb += merged.eq(buffer)
        with m.Switch(rg):
            for k in range(ratio):
                with m.Case(k):
                    m.d.comb += merged.word_select(k, self._mw).eq(sub.rdata)
        m.d.comb += [s.rdata.eq(merged), s.rresp.eq(r_resp), s.rlast.eq(r_last),
                     s.rvalid.eq(sub.rvalid & r_info.r_rdy & r_end),
                     sub.rready.eq(r_info.r_rdy & (s.rready | ~r_end)),
                     r_info.r_en.eq(sub.rvalid & sub.rready & r_end)]
        with m.If(sub.rvalid & sub.rready):
            m.d.sync += [buffer.eq(merged), r_sub.eq(Mux(r_end, 0, r_sub + 1)), r_g.eq(rg + 1),
                         r_worst.eq(Mux(r_end, 0, r_resp))]
        return m


class AXIWidthAdapter(wiring.Component):
    """AXI4 data-width adapter: a manager (``s_axi``) of ``s_data_width`` bits onto a
    subordinate (``m_axi``) of ``m_data_width`` bits, either way round.

    Both directions first pass through an :class:`~scoville.hw.axi_id.AXIIDAdapter` narrowing
    to no ID bits: one manager ID in flight per direction (up to ``max_outstanding`` bursts of
    it), so responses come back in order and the converter keeps one queue, not one per ID. The
    manager's ID is restored on R and B; ``m_axi`` has no ID (widen it with an ``AXIIDAdapter``
    where an interconnect wants one). Bursts of other IDs wait: throughput for a manager that
    alternates IDs is that of one burst at a time.

    **Upsizer** (``m_data_width > s_data_width``): requests pass unchanged (``AxSIZE`` at most
    the manager's width, a narrow transfer on the wide bus, as AXI allows); each W beat is
    steered to the lane group its address selects (``WSTRB`` shifted, other strobes low), each R
    beat taken from that group. Beat addresses follow INCR, WRAP and FIXED rules, unaligned
    starts included. No beat packing: a burst of ``L`` beats is ``L`` wide beats, so the wide bus
    carries at most ``s_data_width / m_data_width`` of its bandwidth. Latency 0 cycles on every
    channel; throughput 1 beat per cycle; ``max_outstanding`` bursts per direction.

    **Downsizer** (``m_data_width < s_data_width``): every manager beat becomes one INCR burst
    on ``m_axi``: ``2**AxSIZE / (m_data_width/8)`` beats of ``m_data_width`` (fewer for an
    unaligned first beat) when the manager's beat is wider than the subordinate, else one beat
    of the manager's size at the beat's address. Works for INCR, WRAP and FIXED manager bursts,
    never crosses 4 KiB (a part stays inside its manager beat), never exceeds 256 beats. W beats
    are cut into the narrow beats (``WLAST`` on each part's last), R beats of a part are merged
    into one manager beat (``RLAST`` on the manager burst's last beat), each with the worst
    ``xRESP`` of its parts; one B per manager burst carries the worst of its parts' B. Latency:
    1 cycle on AW/AR (registered walker), 0 on W/R/B. Throughput: one ``m_axi`` beat per cycle
    (full use of the narrow bus for full-width manager beats); one address per manager beat, so
    manager bursts of narrow beats become single-beat subordinate bursts. At most
    ``max_outstanding`` parts are in flight per direction (the queues hold parts), so a
    subordinate with read latency ``T`` delivers at most ``max_outstanding * k / T`` narrow beats
    per cycle for parts of ``k`` beats. ``AxLOCK`` is not
    forwarded (an exclusive access cut into parts cannot stay exclusive).

    Parameters
    ----------
    addr_width : int
        12..64.
    s_data_width, m_data_width : int
        Powers of two, 8..1024, different.
    id_width : int
        Manager-side ID width, 0..32.
    max_outstanding : int
        1..256: bursts in flight per direction on ``s_axi``, and entries of each internal queue.

    Members
    -------
    s_axi : In(AXI4Signature(data_width=s_data_width, id_width=id_width))
        Manager port.
    m_axi : Out(AXI4Signature(data_width=m_data_width, id_width=0))
        Subordinate port.
    """

    def __init__(self, *, addr_width, s_data_width, m_data_width, id_width=0, max_outstanding=4):
        _check_widths(s_data_width, m_data_width)
        check_int("addr_width", addr_width, 12, 64)
        self._max_outstanding = check_int("max_outstanding", max_outstanding, 1, 256)
        self._sw, self._mw, self._addr_width, self._id_width = s_data_width, m_data_width, addr_width, id_width
        super().__init__({
            "s_axi": In(AXI4Signature(addr_width=addr_width, data_width=s_data_width, id_width=id_width)),
            "m_axi": Out(AXI4Signature(addr_width=addr_width, data_width=m_data_width)),
        })

    upsizer = property(lambda self: self._mw > self._sw)

    def elaborate(self, platform):
        m = Module()
        m.submodules.ids = ids = AXIIDAdapter(addr_width=self._addr_width, data_width=self._sw,
                                              s_id_width=self._id_width, m_id_width=0,
                                              max_outstanding=self._max_outstanding)
        core = _Upsizer if self.upsizer else _Downsizer
        m.submodules.core = core = core(addr_width=self._addr_width, s_data_width=self._sw,
                                        m_data_width=self._mw, depth=self._max_outstanding)
        wiring.connect(m, wiring.flipped(self.s_axi), ids.s_axi)
        wiring.connect(m, ids.m_axi, core.s_axi)
        wiring.connect(m, core.m_axi, wiring.flipped(self.m_axi))
        return m


def axi_width_adapter(*, addr_width, s_data_width, m_data_width, id_width, max_outstanding):
    """The ``axi_width`` block's deliverable: an :class:`AXIWidthAdapter`."""
    return AXIWidthAdapter(addr_width=addr_width, s_data_width=s_data_width, m_data_width=m_data_width,
                           id_width=id_width, max_outstanding=max_outstanding)
