"""A stack of HBM pseudo-channels behind one AXI4 port, with address interleaving."""

from dataclasses import dataclass, fields

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..axi import AXI4Signature, Burst
from ..params import ParameterError, param
from .controller import ATOM_BITS, HBMController, StatsSignature
from .device import HBMDevice
from .system import MonitorSignature, TrafficGenerator, connect_traffic_generator, traffic_generator_ports
from .timing import HBMParams


__all__ = ["HBMStackParams", "HBMStack", "HBMStackSystem", "hbm_stack", "hbm_stack_system"]


@dataclass(frozen=True)
class HBMStackParams(HBMParams):
    """``hbm_stack``: every ``hbm`` parameter (applied to each pseudo-channel) plus these."""
    rows: int = param(8, lo=2, hi=1 << 17, power_of_two=True, doc="rows per bank modelled, per channel")
    channels: int = param(2, lo=2, hi=32, power_of_two=True, doc="pseudo-channels (a full HBM2 stack: 16)")
    interleave: int = param(1024, lo=32, hi=1 << 16, power_of_two=True,
                            doc="bytes of one channel before the next (bursts may not cross it)")
    # The order queues bound the bursts in flight through the stack: fewer than the channels'
    # queues hold starve them (random reads need ~64 in flight per channel for the ACT bound).
    order_depth: int = param(0, lo=0, hi=2048,
                             doc="outstanding bursts per direction (0: channels x max(read_queue, write_queue))")

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
    """``channels`` pseudo-channel controllers and devices behind one AXI4 subordinate.

    Byte address ``a`` goes to channel ``(a // interleave) % channels`` at local address
    ``(a // (interleave*channels)) * interleave + a % interleave``. A burst must stay within one
    interleave granule; one that does not is forwarded as a FIXED burst, which the channel
    answers with SLVERR beat by beat without touching memory.

    Ordering: the channel of every accepted AR (AW) is queued in order (``order_depth``
    entries); R beats (B responses) are taken from the channel at the head of that queue until
    RLAST (the B), and W beats go to the channel at the head of the AW order until WLAST. As each
    channel answers in its own request order, responses leave in request order (so in order per
    ID). Adds no cycle of latency (combinational routing); throughput up to one burst per cycle
    per direction, the sum of the channels' bandwidth while the requests spread over channels,
    but at most one 32-byte beat per cycle per direction on ``s_axi`` (two HBM2/HBM3
    pseudo-channels' peak). A request to a channel whose queue is full holds the port
    (head-of-line), and at most ``order_entries`` bursts per direction are in flight.

    Members
    -------
    s_axi : In(AXI4Signature)
    mon<k> : Out(MonitorSignature)
        PHY bus of channel ``k``, for the timing model.
    stats<k> : Out(StatsSignature)
        Counters of channel ``k``'s controller.
    """

    def __init__(self, params=None, **kwargs):
        self.params = params if params is not None else HBMStackParams(**kwargs)
        p = self.params
        cp = p.channel_params()
        self.ctrls = [HBMController(cp) for _ in range(p.channels)]
        self.devices = [HBMDevice(c.timing) for c in self.ctrls]
        members = {"s_axi": In(AXI4Signature(addr_width=p.addr_width, data_width=ATOM_BITS,
                                             id_width=p.id_width))}
        for k, c in enumerate(self.ctrls):
            members[f"mon{k}"] = Out(MonitorSignature(c.phy.signature))
        for k in range(p.channels):
            members[f"stats{k}"] = Out(StatsSignature(p.read_queue, p.write_queue))
        super().__init__(members)

    @property
    def atom_bits(self):
        """Address bits of a 32-byte atom of the whole stack."""
        return self.ctrls[0].amap.atom_bits + (self.params.channels - 1).bit_length()

    def elaborate(self, platform):
        m = Module()
        p = self.params
        n = p.channels
        il_bits = (p.interleave - 1).bit_length()
        ch_bits = (n - 1).bit_length()
        axi = self.s_axi
        for k, (c, d) in enumerate(zip(self.ctrls, self.devices)):
            m.submodules[f"ctrl{k}"] = c
            m.submodules[f"device{k}"] = d
            wiring.connect(m, c.phy, d.phy)
            mon = getattr(self, f"mon{k}")
            for name in mon.signature.members:
                m.d.comb += getattr(mon, name).eq(getattr(c.phy, name))
            wiring.connect(m, c.stats, wiring.flipped(getattr(self, f"stats{k}")))

        def route(addr, length):
            ch = addr[il_bits:il_bits + ch_bits] if ch_bits else 0
            local = Cat(addr[:il_bits], addr[il_bits + ch_bits:])
            # In atoms, as the channel counts beats (from the atom holding an unaligned address):
            # in bytes, an unaligned burst ending in the granule's last atom looked like a crossing.
            end = addr[5:il_bits] + length + 1
            crosses = end > (p.interleave >> 5)
            return ch, local, crosses

        # Request channels (AR, AW) with their order queues; W follows the AW order.
        depth = p.order_entries
        m.submodules.rord = rord = SyncFIFOBuffered(width=max(1, ch_bits), depth=depth)
        m.submodules.word = word = SyncFIFOBuffered(width=max(1, ch_bits), depth=depth)
        m.submodules.bord = bord = SyncFIFOBuffered(width=max(1, ch_bits), depth=depth)
        for kind, fifos in (("ar", [rord]), ("aw", [word, bord])):
            addr, length = getattr(axi, f"{kind}addr"), getattr(axi, f"{kind}len")
            ch, local, crosses = route(addr, length)
            space = Cat(*[f.w_rdy for f in fifos]).all()
            ready = Signal(name=f"{kind}_ready")
            for k, c in enumerate(self.ctrls):
                port = c.s_axi
                sel = ch == k
                for name in ("id", "len", "size", "lock", "cache", "prot", "qos"):
                    m.d.comb += getattr(port, f"{kind}{name}").eq(getattr(axi, f"{kind}{name}"))
                m.d.comb += [getattr(port, f"{kind}addr").eq(local),
                             getattr(port, f"{kind}burst").eq(Mux(crosses, Burst.FIXED, getattr(axi, f"{kind}burst"))),
                             getattr(port, f"{kind}valid").eq(getattr(axi, f"{kind}valid") & sel & space)]
                with m.If(sel):
                    m.d.comb += ready.eq(getattr(port, f"{kind}ready") & space)
            m.d.comb += getattr(axi, f"{kind}ready").eq(ready)
            for f in fifos:
                m.d.comb += [f.w_data.eq(ch), f.w_en.eq(getattr(axi, f"{kind}valid") & ready)]

        # W beats to the channel at the head of the AW order.
        for k, c in enumerate(self.ctrls):
            sel = word.r_rdy & (word.r_data == k)
            m.d.comb += [c.s_axi.wdata.eq(axi.wdata), c.s_axi.wstrb.eq(axi.wstrb),
                         c.s_axi.wlast.eq(axi.wlast), c.s_axi.wvalid.eq(axi.wvalid & sel)]
            with m.If(sel):
                m.d.comb += axi.wready.eq(c.s_axi.wready)
        m.d.comb += word.r_en.eq(axi.wvalid & axi.wready & axi.wlast)

        # R and B from the channel at the head of their order queue.
        for k, c in enumerate(self.ctrls):
            rsel = rord.r_rdy & (rord.r_data == k)
            bsel = bord.r_rdy & (bord.r_data == k)
            m.d.comb += [c.s_axi.rready.eq(axi.rready & rsel), c.s_axi.bready.eq(axi.bready & bsel)]
            with m.If(rsel):
                m.d.comb += [axi.rvalid.eq(c.s_axi.rvalid), axi.rdata.eq(c.s_axi.rdata),
                             axi.rid.eq(c.s_axi.rid), axi.rresp.eq(c.s_axi.rresp), axi.rlast.eq(c.s_axi.rlast)]
            with m.If(bsel):
                m.d.comb += [axi.bvalid.eq(c.s_axi.bvalid), axi.bid.eq(c.s_axi.bid), axi.bresp.eq(c.s_axi.bresp)]
        m.d.comb += [rord.r_en.eq(axi.rvalid & axi.rready & axi.rlast),
                     bord.r_en.eq(axi.bvalid & axi.bready)]
        return m


class HBMStackSystem(wiring.Component):
    """:class:`HBMStack` plus the ``hbm`` block's hardware traffic generator: the simulation top
    of block ``hbm_stack``. Tests drive ``s_axi`` with ``tg_start`` low; ``scoville bench
    hbm_stack`` raises it and reads ``tg_*`` at the end (no Python on the per-cycle path).

    The generator issues at most one single-beat request per cycle, which is also the port's
    limit: 32 bytes per cycle, the peak of two pseudo-channels.

    Members
    -------
    s_axi, mon<k>, stats<k> :
        As in :class:`HBMStack`.
    tg_* :
        Traffic generator control and results (see :class:`~hw.hbm.system.TrafficGenerator`),
        its addresses spanning the whole stack.
    """

    def __init__(self, params=None, **kwargs):
        self.stack = HBMStack(params, **kwargs)
        p = self.params = self.stack.params
        # Its read-latency FIFO must hold every read in flight: all channels' read queues.
        self.tg = TrafficGenerator(addr_width=p.addr_width, id_width=p.id_width,
                                   atom_bits=self.stack.atom_bits, read_queue=p.channels * p.read_queue)
        super().__init__({**self.stack.signature.members, **traffic_generator_ports(self.tg)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.stack = stack = self.stack
        m.submodules.tg = tg = self.tg
        for name in stack.signature.members:
            if name != "s_axi":
                wiring.connect(m, getattr(stack, name), wiring.flipped(getattr(self, name)))
        connect_traffic_generator(m, self, tg, stack.s_axi)
        return m


def hbm_stack(**params):
    """The ``hbm_stack`` block's RTL for ``scoville verilog``/``synth``: the stack alone."""
    return HBMStack(HBMStackParams(**params))


def hbm_stack_system(**params):
    """Block factory of ``hbm_stack``: stack + traffic generator (tests and bench)."""
    return HBMStackSystem(HBMStackParams(**params))
