"""Simulation tops of the ``hbm`` and ``hbm_stack`` blocks and their hardware traffic generator.

``HBMSystem`` (block ``hbm``) is one controller + behavioural device + traffic generator;
``HBMStackDevices`` is the deliverable :class:`~scoville.hw.hbm.stack.HBMStack` with a
behavioural device on every channel's PHY bus (any test that needs HBM-backed memory), and
``HBMStackSystem`` (block ``hbm_stack``) adds the traffic generator to it.

The traffic generator exists so that ``scoville bench hbm`` can simulate millions of cycles with
no Python on the per-cycle path: it issues the requested pattern on the controller's AXI port,
measures read latency and counts, and the testbench reads its counters at the end.
"""

import enum

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..axi import AXI4Signature, Burst
from ..hbm.controller import ATOM_BITS, HBMController, StatsSignature
from ..hbm.device import HBMDevice
from ..hbm.stack import HBMStack, HBMStackParams
from ..hbm.timing import HBMParams


__all__ = ["Pattern", "TrafficGenerator", "MonitorSignature", "HBMSystem", "hbm_system", "atom_pattern",
           "traffic_generator_ports", "connect_traffic_generator", "HBMStackDevices", "HBMStackSystem",
           "hbm_stack_system"]


class Pattern(enum.IntEnum):
    SEQ = 0
    RANDOM = 1
    STRIDED = 2
    MIXED = 3


def atom_pattern(atom):
    """The data the traffic generator writes to ``atom`` (Python int), 256 bits."""
    word = (atom * 0x9E3779B1 + 0x5A5A5A5A) & 0xFFFFFFFF
    return sum(((word ^ (k * 0x01010101)) & 0xFFFFFFFF) << (32 * k) for k in range(8))


def _atom_pattern_hw(atom):
    word = (atom * 0x9E3779B1 + 0x5A5A5A5A)[:32]
    return Cat(*[word ^ Const((k * 0x01010101) & 0xFFFFFFFF, 32) for k in range(8)])


class MonitorSignature(wiring.Signature):
    """A copy of the PHY bus for testbench monitors, every member ``Out``."""

    def __init__(self, phy_sig):
        members = {}
        for name, member in phy_sig.members.items():
            members[name] = Out(member.shape)
        super().__init__(members)


class TrafficGenerator(wiring.Component):
    """AXI4 manager issuing ``requests`` single-beat (32-byte) reads and writes.

    Patterns: ``SEQ`` consecutive atoms; ``RANDOM`` uniformly random atoms (xorshift32);
    ``STRIDED`` atom ``n * stride``; ``MIXED`` random atoms with one write in ``256/wr_ratio``.
    ``SEQ``/``RANDOM``/``STRIDED`` write too when ``wr_ratio`` is non-zero. Reads use ID 0, writes
    ID 1; a read is outstanding from its AR handshake to its R handshake, and ``lat_sum``/
    ``lat_max`` accumulate that latency in cycles. A read's data must be 0 (never written) or
    :func:`atom_pattern` of its atom (what writes store); others count in ``data_errors``.
    ``cycles`` counts from ``start`` to the last response.
    """

    def __init__(self, *, addr_width, id_width, atom_bits, read_queue):
        self._atom_bits = atom_bits
        self._depth = max(4, 2 * read_queue)
        super().__init__({
            "axi": Out(AXI4Signature(addr_width=addr_width, data_width=ATOM_BITS, id_width=id_width)),
            "start": In(1), "pattern": In(2), "requests": In(32), "stride": In(24), "seed": In(32),
            "wr_ratio": In(9),
            "done": Out(1), "cycles": Out(32), "reads": Out(32), "writes": Out(32),
            "lat_sum": Out(48), "lat_max": Out(16), "data_errors": Out(32), "resp_errors": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        axi = self.axi
        ab = self._atom_bits
        now = Signal(32)
        m.d.sync += now.eq(now + 1)

        running = Signal()
        issued = Signal(32)
        n = Signal(32)
        lfsr = Signal(32, init=1)
        req_valid = Signal()
        req_write = Signal()
        req_atom = Signal(ab)
        aw_done = Signal()
        w_done = Signal()
        b_pending = Signal(16)
        started = Signal()

        m.submodules.inflight = inflight = SyncFIFOBuffered(width=32 + ab, depth=self._depth)

        # xorshift32 (Marsaglia 2003): one step per generated request.
        x1 = lfsr ^ (lfsr << 13)[:32]
        x2 = x1 ^ (x1 >> 17)
        x3 = x2 ^ (x2 << 5)[:32]
        consume = Signal()
        # A new request is generated in the cycle the current one is consumed: full rate.
        gen = (~req_valid | consume) & running & (issued != self.requests)
        with m.If(self.start & ~started):
            m.d.sync += [started.eq(1), running.eq(1), lfsr.eq(Mux(self.seed == 0, 1, self.seed)),
                         n.eq(0), issued.eq(0)]
        with m.If(gen):
            m.d.sync += [req_valid.eq(1), lfsr.eq(x3), n.eq(n + 1), issued.eq(issued + 1),
                         aw_done.eq(0), w_done.eq(0)]
            with m.Switch(self.pattern):
                with m.Case(Pattern.SEQ):
                    m.d.sync += req_atom.eq(n)
                with m.Case(Pattern.STRIDED):
                    m.d.sync += req_atom.eq((n * self.stride)[:ab])
                with m.Default():
                    m.d.sync += req_atom.eq(x3[:ab])
            ratio = Mux(self.pattern == Pattern.MIXED, Mux(self.wr_ratio == 0, 85, self.wr_ratio),
                        self.wr_ratio)
            m.d.sync += req_write.eq(x3[24:32] < ratio)

        addr = Cat(Const(0, 5), req_atom)
        m.d.comb += [
            axi.araddr.eq(addr), axi.arlen.eq(0), axi.arsize.eq(5), axi.arburst.eq(Burst.INCR),
            axi.arid.eq(0), axi.arvalid.eq(req_valid & ~req_write & inflight.w_rdy),
            axi.awaddr.eq(addr), axi.awlen.eq(0), axi.awsize.eq(5), axi.awburst.eq(Burst.INCR),
            axi.awid.eq(1), axi.awvalid.eq(req_valid & req_write & ~aw_done),
            axi.wdata.eq(_atom_pattern_hw(req_atom)), axi.wstrb.eq(-1), axi.wlast.eq(1),
            axi.wvalid.eq(req_valid & req_write & ~w_done),
            axi.rready.eq(1), axi.bready.eq(1),
        ]
        ar_x = axi.arvalid & axi.arready
        aw_x = axi.awvalid & axi.awready
        w_x = axi.wvalid & axi.wready
        with m.If(~gen):  # (a request generated this cycle starts with neither half done)
            with m.If(aw_x):
                m.d.sync += aw_done.eq(1)
            with m.If(w_x):
                m.d.sync += w_done.eq(1)
        wr_complete = req_write & (aw_done | aw_x) & (w_done | w_x)
        m.d.comb += consume.eq(req_valid & (ar_x | wr_complete))
        with m.If(consume & ~gen):
            m.d.sync += req_valid.eq(0)
        m.d.comb += [inflight.w_en.eq(ar_x), inflight.w_data.eq(Cat(now, req_atom))]
        with m.If(ar_x):
            m.d.sync += self.reads.eq(self.reads + 1)
        with m.If(req_valid & wr_complete):
            m.d.sync += self.writes.eq(self.writes + 1)

        r_x = axi.rvalid & axi.rready
        b_x = axi.bvalid & axi.bready
        m.d.sync += b_pending.eq(b_pending + (req_valid & wr_complete) - b_x)
        m.d.comb += inflight.r_en.eq(r_x)
        lat = Signal(32)
        r_atom = inflight.r_data[32:]
        m.d.comb += lat.eq(now - inflight.r_data[:32])
        with m.If(r_x):
            m.d.sync += self.lat_sum.eq(self.lat_sum + lat)
            with m.If(lat > self.lat_max):
                m.d.sync += self.lat_max.eq(lat)
            with m.If((axi.rdata != 0) & (axi.rdata != _atom_pattern_hw(r_atom))):
                m.d.sync += self.data_errors.eq(self.data_errors + 1)
        with m.If((r_x & (axi.rresp != 0)) | (b_x & (axi.bresp != 0))):
            m.d.sync += self.resp_errors.eq(self.resp_errors + 1)

        finished = running & (issued == self.requests) & ~req_valid & ~inflight.r_rdy & (b_pending == 0) \
            & ~(req_valid & wr_complete)
        with m.If(running):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        with m.If(finished):
            m.d.sync += [running.eq(0), self.done.eq(1)]
        return m


def traffic_generator_ports(tg):
    """The ``tg_*`` members of a top level carrying traffic generator ``tg``: its control inputs
    and result outputs under their own names (``tg_start``, ..., ``tg_cycles``)."""
    return {f"tg_{name}": In(member.shape) if member.flow == In else Out(member.shape)
            for name, member in tg.signature.members.items() if name != "axi"}


def connect_traffic_generator(m, top, tg, port):
    """Wire ``top.tg_*`` (see :func:`traffic_generator_ports`) to ``tg`` and hand the AXI
    subordinate ``port`` to ``tg.axi`` while ``top.tg_start`` is high, else to ``top.s_axi``
    (combinational multiplexers: no added latency on either path)."""
    for name, member in tg.signature.members.items():
        if name == "axi":
            continue
        if member.flow == In:
            m.d.comb += getattr(tg, name).eq(getattr(top, f"tg_{name}"))
        else:
            m.d.comb += getattr(top, f"tg_{name}").eq(getattr(tg, name))
    use_tg = Signal()
    m.d.comb += use_tg.eq(top.tg_start)
    for name, member in tg.axi.signature.members.items():
        ext, gen, dst = getattr(top.s_axi, name), getattr(tg.axi, name), getattr(port, name)
        if member.flow == Out:  # manager -> subordinate
            m.d.comb += dst.eq(Mux(use_tg, gen, ext))
        else:
            m.d.comb += [ext.eq(Mux(use_tg, 0, dst)), gen.eq(Mux(use_tg, dst, 0))]


def attach_device(m, name, phy, timing, mon=None):
    """Add a behavioural :class:`HBMDevice` named ``name`` on the controller PHY bus ``phy`` and
    mirror that bus onto the monitor port ``mon`` if given (combinational: the monitor sees each
    command in the cycle it is issued, as the device does)."""
    m.submodules[name] = device = HBMDevice(timing=timing)
    wiring.connect(m, phy, device.phy)
    for member in (mon.signature.members if mon is not None else ()):
        m.d.comb += getattr(mon, member).eq(getattr(phy, member))
    return device


class HBMSystem(wiring.Component):
    """Controller + behavioural device (+ traffic generator): the ``hbm`` block's simulation top.

    With ``tg_start`` low the controller's AXI port is ``s_axi``; raising ``tg_start`` (and keeping
    it high) hands the port to the traffic generator, whose results appear on ``tg_*``.

    Members
    -------
    s_axi : In(AXI4Signature)
        See :class:`~scoville.hw.hbm.controller.HBMController` for the protocol and latency.
    mon : Out(MonitorSignature)
        The PHY bus between controller and device, for the independent timing model.
    stats : Out(StatsSignature)
        The controller's counters.
    tg_* :
        Traffic generator control and results (see :class:`TrafficGenerator`).
    """

    def __init__(self, *, params=None, **kwargs):
        self.params = params if params is not None else HBMParams(**kwargs)
        self.ctrl = HBMController(params=self.params)
        self.tg = TrafficGenerator(addr_width=self.params.addr_width, id_width=self.params.id_width,
                                   atom_bits=self.ctrl.amap.atom_bits, read_queue=self.params.read_queue)
        members = {
            "s_axi": In(AXI4Signature(addr_width=self.params.addr_width, data_width=ATOM_BITS,
                                      id_width=self.params.id_width)),
            "mon": Out(MonitorSignature(self.ctrl.phy.signature)),
            "stats": Out(StatsSignature(self.params.read_queue, self.params.write_queue)),
        }
        members.update(traffic_generator_ports(self.tg))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.ctrl = ctrl = self.ctrl
        m.submodules.tg = tg = self.tg
        attach_device(m, "device", ctrl.phy, ctrl.timing, self.mon)
        wiring.connect(m, ctrl.stats, wiring.flipped(self.stats))
        connect_traffic_generator(m, self, tg, ctrl.s_axi)
        return m


def hbm_system(**params):
    """Block factory of ``hbm``: :class:`HBMSystem` from the block's parameter dict."""
    return HBMSystem(params=HBMParams(**params))


class HBMStackDevices(wiring.Component):
    """The deliverable :class:`~scoville.hw.hbm.stack.HBMStack` with a behavioural
    :class:`HBMDevice` on every channel: HBM-backed memory behind one AXI4 port for simulation.

    Adds no logic on the AXI path: latency and throughput are the stack's.

    Members
    -------
    s_axi : In(AXI4Signature)
        The stack's port (protocol, ordering and latency: :class:`~scoville.hw.hbm.stack.HBMStack`).
    mon<k> : Out(MonitorSignature)
        PHY bus of channel ``k`` (stack to device ``k``), for the timing model.
    stats<k> : Out(StatsSignature)
        Counters of channel ``k``'s controller.
    """

    def __init__(self, *, params=None, **kwargs):
        self.stack = HBMStack(params=params, **kwargs)
        p = self.params = self.stack.params
        members = {"s_axi": In(AXI4Signature(addr_width=p.addr_width, data_width=ATOM_BITS,
                                             id_width=p.id_width))}
        for k in range(p.channels):
            members[f"mon{k}"] = Out(MonitorSignature(getattr(self.stack, f"phy{k}").signature))
            members[f"stats{k}"] = Out(StatsSignature(p.read_queue, p.write_queue))
        super().__init__(members)

    @property
    def atom_bits(self):
        return self.stack.atom_bits

    def elaborate(self, platform):
        m = Module()
        m.submodules.stack = stack = self.stack
        for k, ctrl in enumerate(stack.ctrls):
            attach_device(m, f"device{k}", getattr(stack, f"phy{k}"), ctrl.timing, getattr(self, f"mon{k}"))
            wiring.connect(m, getattr(stack, f"stats{k}"), wiring.flipped(getattr(self, f"stats{k}")))
        wiring.connect(m, wiring.flipped(self.s_axi), stack.s_axi)
        return m


class HBMStackSystem(wiring.Component):
    """:class:`HBMStackDevices` plus the hardware traffic generator: the simulation top of block
    ``hbm_stack``. Tests drive ``s_axi`` with ``tg_start`` low; ``scoville bench hbm_stack``
    raises it and reads ``tg_*`` at the end (no Python on the per-cycle path).

    The generator issues at most one single-beat request per cycle, which is also the port's
    limit: 32 bytes per cycle, the peak of two pseudo-channels.

    Members
    -------
    s_axi, mon<k>, stats<k> :
        As in :class:`HBMStackDevices`.
    tg_* :
        Traffic generator control and results (see :class:`TrafficGenerator`), its addresses
        spanning the whole stack.
    """

    def __init__(self, *, params=None, **kwargs):
        self.mem = HBMStackDevices(params=params, **kwargs)
        p = self.params = self.mem.params
        # Its read-latency FIFO must hold every read in flight: all channels' read queues.
        self.tg = TrafficGenerator(addr_width=p.addr_width, id_width=p.id_width,
                                   atom_bits=self.mem.atom_bits, read_queue=p.channels * p.read_queue)
        super().__init__({**self.mem.signature.members, **traffic_generator_ports(self.tg)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = self.mem
        m.submodules.tg = tg = self.tg
        for name in mem.signature.members:
            if name != "s_axi":
                wiring.connect(m, getattr(mem, name), wiring.flipped(getattr(self, name)))
        connect_traffic_generator(m, self, tg, mem.s_axi)
        return m


def hbm_stack_system(**params):
    """Block factory of ``hbm_stack``: stack + devices + traffic generator (tests and bench)."""
    return HBMStackSystem(params=HBMStackParams(**params))
