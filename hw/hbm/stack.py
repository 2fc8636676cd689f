"""A stack of HBM pseudo-channels behind one AXI4 port, with address interleaving."""

from dataclasses import dataclass, fields

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..axi import AXI4Signature, Burst, Resp
from ..params import ParameterError, param
from .controller import ATOM_BITS, HBMController, PHYSignature, StatsSignature
from .timing import HBMParams


__all__ = ["HBMStackParams", "HBMStack", "hbm_stack"]


@dataclass(frozen=True)
class HBMStackParams(HBMParams):
    """``hbm_stack``: every ``hbm`` parameter (applied to each pseudo-channel) plus these."""
    rows: int = param(8, lo=2, hi=1 << 17, power_of_two=True, doc="rows per bank modelled, per channel")
    channels: int = param(2, lo=2, hi=32, power_of_two=True, doc="pseudo-channels (a full HBM2 stack: 16)")
    interleave: int = param(1024, lo=32, hi=1 << 16, power_of_two=True,
                            doc="bytes of one channel before the next (bursts crossing it are split)")
    # The order queues bound the bursts in flight through the stack: fewer than the channels'
    # queues hold starve them (random reads need ~64 in flight per channel for the ACT bound).
    # An entry is one per-channel part of a burst (a burst crossing k granules takes k + 1).
    order_depth: int = param(0, lo=0, hi=2048,
                             doc="outstanding burst parts per direction (0: channels x max(read_queue, write_queue))")

    def check(self):
        HBMParams.check(self)
        if self.interleave > self.timing().banks * self.rows * self.timing().columns * 32:
            raise ParameterError(f"interleave: {self.interleave} exceeds one channel's capacity")

    @property
    def order_entries(self):
        """Order queue entries: ``order_depth``, or by default enough for every channel's queues."""
        return self.order_depth or self.channels * max(self.read_queue, self.write_queue)

    def channel_params(self):
        names = {f.name for f in fields(HBMParams)}
        return HBMParams(**{k: v for k, v in self.as_dict().items() if k in names})


class HBMStack(wiring.Component):
    """``channels`` pseudo-channel controllers behind one AXI4 subordinate, address-interleaved.

    The deliverable of block ``hbm_stack``: controllers and interleaver only; each channel's PHY
    command/data bus is a port (``phy<k>``) for the PHY or, in simulation, a behavioural device
    (``hw/testbench/hbm.py``).

    Byte address ``a`` goes to channel ``(a // interleave) % channels`` at local address
    ``(a // (interleave*channels)) * interleave + a % interleave``. Every AXI4 INCR burst of
    32-byte beats is accepted: one crossing interleave granules is split into per-granule parts
    (the first from the atom holding the start address to the granule's end, the others
    granule-aligned), each sent to its owning channel; the parts' R beats are merged in order
    with RLAST only on the original burst's last beat, their B responses into one B carrying
    the worst (numerically largest: DECERR > SLVERR > OKAY) of the parts'. Bursts the channels
    reject whole are forwarded unsplit to the channel of their start address, which answers
    every beat with the error and touches no memory: beyond the stack's capacity (``addr//32 +
    len >= channels * channel atoms``: DECERR) and kinds other than INCR with 32-byte beats
    (SLVERR). W beats are split by count (the AW's ``len``), so ``wlast`` is not looked at.

    Ordering: every accepted part's channel is queued in order (``order_entries`` parts per
    direction); R beats (B responses) are taken from the channel at the head of that queue until
    its part's RLAST (its B), and W beats go to the channel at the head of the AW order for its
    part's beat count. As each channel answers in its own request order, responses leave in
    request order (so in order per ID), also across the parts of one burst.

    Latency: none added to a burst within one granule (combinational routing, AR/AW accepted
    with the first part). A burst spanning ``k`` granules issues one part per cycle, so it holds
    the AR (AW) channel ``k`` cycles (``ceil((addr%interleave + 32*(len+1)) / interleave)``
    for an aligned start); R, W and B beats move at up to one per cycle across part boundaries.
    Throughput: the sum of the channels' bandwidth while the requests spread over channels, but
    at most one 32-byte beat per cycle per direction on ``s_axi`` (two HBM2/HBM3
    pseudo-channels' peak). A part for a channel whose queue is full holds the port
    (head-of-line), and at most ``order_entries`` parts per direction are in flight.

    Members
    -------
    s_axi : In(AXI4Signature(addr_width, 256, id_width))
        AXI4 subordinate as above; ``arready``/``awready`` are the target channel's (and order
        queue space) while no split burst is being issued, low while its later parts issue.
    phy<k> : Out(PHYSignature)
        Command and data bus of channel ``k``'s controller (protocol and latencies:
        :class:`~scoville.hw.hbm.controller.PHYSignature`).
    stats<k> : Out(StatsSignature)
        Counters of channel ``k``'s controller.
    """

    def __init__(self, *, params=None, **kwargs):
        self.params = params if params is not None else HBMStackParams(**kwargs)
        p = self.params
        cp = p.channel_params()
        self.ctrls = [HBMController(params=cp) for _ in range(p.channels)]
        members = {"s_axi": In(AXI4Signature(addr_width=p.addr_width, data_width=ATOM_BITS,
                                             id_width=p.id_width))}
        for k, c in enumerate(self.ctrls):
            members[f"phy{k}"] = Out(PHYSignature(c.timing))
            members[f"stats{k}"] = Out(StatsSignature(p.read_queue, p.write_queue))
        super().__init__(members)

    @property
    def atom_bits(self):
        """Address bits of a 32-byte atom of the whole stack."""
        return self.ctrls[0].amap.atom_bits + (self.params.channels - 1).bit_length()

    def elaborate(self, platform):
        m = Module()
        p = self.params
        il_bits = (p.interleave - 1).bit_length()
        ch_bits = (p.channels - 1).bit_length()
        granule_atoms = p.interleave // 32
        stack_atoms = p.channels * self.ctrls[0].amap.atoms
        axi = self.s_axi
        for k, c in enumerate(self.ctrls):
            m.submodules[f"ctrl{k}"] = c
            wiring.connect(m, c.phy, wiring.flipped(getattr(self, f"phy{k}")))
            wiring.connect(m, c.stats, wiring.flipped(getattr(self, f"stats{k}")))

        depth = p.order_entries
        # Read parts: (channel, last part of its burst). Write parts: W order (channel, beats - 1)
        # and B order (channel, last part).
        m.submodules.rord = rord = SyncFIFOBuffered(width=ch_bits + 1, depth=depth)
        m.submodules.word = word = SyncFIFOBuffered(width=ch_bits + 8, depth=depth)
        m.submodules.bord = bord = SyncFIFOBuffered(width=ch_bits + 1, depth=depth)

        # AR and AW: the splitter. Idle, the part comes straight from s_axi (no added latency);
        # a burst that crosses its granule is accepted with its first part and the rest of it is
        # held in registers, which then feed the next parts, one per cycle.
        for kind, fifos in (("ar", [rord]), ("aw", [word, bord])):
            fields = self.signature.members["s_axi"].signature.fields(kind)
            busy = Signal(name=f"{kind}_split")
            held = {f: Signal.like(getattr(axi, f"{kind}{f}"), name=f"{kind}_held_{f}") for f in fields}
            src = {f: Mux(busy, held[f], getattr(axi, f"{kind}{f}")) for f in fields}
            valid = busy | getattr(axi, f"{kind}valid")
            addr, length = src["addr"], src["len"]
            beyond = (addr[5:] + length) >= stack_atoms
            split = (src["burst"] == Burst.INCR) & (src["size"] == 5) & ~beyond
            offset = addr[5:il_bits] if il_bits > 5 else Const(0, 1)
            room = Signal(range(max(2, granule_atoms)), name=f"{kind}_room")  # beats after the first left in the granule
            m.d.comb += room.eq(granule_atoms - 1 - offset)
            crosses = Signal(name=f"{kind}_crosses")
            m.d.comb += crosses.eq(split & (length > room))
            part_len = Signal(8, name=f"{kind}_part_len")
            m.d.comb += part_len.eq(Mux(crosses, room, length))
            ch = addr[il_bits:il_bits + ch_bits]
            local = Cat(addr[:il_bits], addr[il_bits + ch_bits:])
            space = Cat(*[f.w_rdy for f in fifos]).all()
            ready = Signal(name=f"{kind}_ready")
            for k, c in enumerate(self.ctrls):
                port = c.s_axi
                sel = ch == k
                for f in fields:
                    if f not in ("addr", "len"):
                        m.d.comb += getattr(port, f"{kind}{f}").eq(src[f])
                m.d.comb += [getattr(port, f"{kind}addr").eq(local), getattr(port, f"{kind}len").eq(part_len),
                             getattr(port, f"{kind}valid").eq(valid & sel & space)]
                with m.If(sel):
                    m.d.comb += ready.eq(getattr(port, f"{kind}ready") & space)
            m.d.comb += getattr(axi, f"{kind}ready").eq(ready & ~busy)
            issued = valid & ready
            with m.If(issued):
                m.d.sync += busy.eq(crosses)
                m.d.sync += [held["addr"].eq(Cat(Const(0, il_bits), addr[il_bits:] + 1)),
                             held["len"].eq(length - room - 1)]
                with m.If(~busy):
                    m.d.sync += [held[f].eq(src[f]) for f in fields if f not in ("addr", "len")]
            fifo_data = {rord: Cat(ch, ~crosses), word: Cat(ch, part_len), bord: Cat(ch, ~crosses)}
            for f in fifos:
                m.d.comb += [f.w_data.eq(fifo_data[f]), f.w_en.eq(issued)]

        # W beats to the channel at the head of the AW order, its part's beat count each.
        w_ch, w_len = word.r_data[:ch_bits], word.r_data[ch_bits:]
        w_beat = Signal(8)
        w_last = w_beat == w_len
        for k, c in enumerate(self.ctrls):
            sel = word.r_rdy & (w_ch == k)
            m.d.comb += [c.s_axi.wdata.eq(axi.wdata), c.s_axi.wstrb.eq(axi.wstrb),
                         c.s_axi.wlast.eq(w_last), c.s_axi.wvalid.eq(axi.wvalid & sel)]
            with m.If(sel):
                m.d.comb += axi.wready.eq(c.s_axi.wready)
        with m.If(axi.wvalid & axi.wready):
            m.d.sync += w_beat.eq(Mux(w_last, 0, w_beat + 1))
        m.d.comb += word.r_en.eq(axi.wvalid & axi.wready & w_last)

        # R from the channel at the head of the read order; RLAST only on a burst's last part.
        r_ch, r_final = rord.r_data[:ch_bits], rord.r_data[ch_bits]
        r_part_last = Signal()
        for k, c in enumerate(self.ctrls):
            sel = rord.r_rdy & (r_ch == k)
            m.d.comb += c.s_axi.rready.eq(axi.rready & sel)
            with m.If(sel):
                m.d.comb += [axi.rvalid.eq(c.s_axi.rvalid), axi.rdata.eq(c.s_axi.rdata),
                             axi.rid.eq(c.s_axi.rid), axi.rresp.eq(c.s_axi.rresp),
                             r_part_last.eq(c.s_axi.rlast)]
        m.d.comb += [axi.rlast.eq(r_part_last & r_final),
                     rord.r_en.eq(axi.rvalid & axi.rready & r_part_last)]

        # B: a part that is not its burst's last is absorbed here (its response folded into
        # b_worst); the last part's B leaves with the worst response of all the parts.
        b_ch, b_final = bord.r_data[:ch_bits], bord.r_data[ch_bits]
        b_worst = Signal(2)
        b_valid, b_resp = Signal(), Signal(2)
        for k, c in enumerate(self.ctrls):
            sel = bord.r_rdy & (b_ch == k)
            m.d.comb += c.s_axi.bready.eq(sel & (axi.bready | ~b_final))
            with m.If(sel):
                m.d.comb += [b_valid.eq(c.s_axi.bvalid), b_resp.eq(c.s_axi.bresp), axi.bid.eq(c.s_axi.bid)]
        worst = Mux(b_resp > b_worst, b_resp, b_worst)
        m.d.comb += [axi.bvalid.eq(b_valid & b_final), axi.bresp.eq(worst)]
        b_taken = b_valid & (axi.bready | ~b_final)
        m.d.comb += bord.r_en.eq(b_taken)
        with m.If(b_taken):
            m.d.sync += b_worst.eq(Mux(b_final, Resp.OKAY, worst))
        return m


def hbm_stack(**params):
    """The ``hbm_stack`` block's deliverable RTL for ``scoville verilog``/``synth``: the
    controllers and the interleaver, each channel's PHY bus a port (no devices, no monitors)."""
    return HBMStack(params=HBMStackParams(**params))
