"""The ``noc`` block: a cols x rows mesh of :class:`Router` with one endpoint per node."""

from dataclasses import dataclass

from amaranth.hdl import Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..params import ParameterError, Params, param
from .flit import EAST, LOCAL, NORTH, SOUTH, WEST, header_fields
from .ni import Depacketizer, EjectNI, InjectNI, Packetizer, beat_layout, delivery_layout, \
    message_layout
from .router import ROUTINGS, Router
from .traffic import HIST_BINS, PATTERNS, STATS, TS_BITS, EjectChecker, TrafficGen, \
    bench_header_bits


__all__ = ["NoCParams", "NoCBenchParams", "Mesh", "noc", "noc_network"]


@dataclass(frozen=True)
class NoCParams(Params):
    """Parameters of the ``noc`` block."""
    cols: int = param(4, lo=1, hi=16, doc="mesh columns (x)")
    rows: int = param(4, lo=1, hi=16, doc="mesh rows (y)")
    vcs: int = param(2, lo=1, hi=4, doc="virtual channels per port (shared out among classes)")
    buffer: int = param(4, lo=2, hi=32, doc="flits per VC input buffer")
    flit_width: int = param(64, lo=8, hi=1024, doc="payload bits per flit (head: destination in low bits)")
    routing: str = param("xy", choices=ROUTINGS, doc="dimension-order routing")
    classes: int = param(1, lo=1, hi=4, doc="message classes, each on its own VCs (2: request/response)")
    traffic_gen: bool = param(True, doc="include the per-node traffic generators/checkers of `bench` "
                                        "(simulation only: `scoville verilog`/`synth` give the "
                                        "network without them)")
    histogram: bool = param(True, doc="with traffic_gen: a 64-bin latency histogram per node "
                                      "(for p99; false gives a much smaller simulation model)")
    message_ni: bool = param(False, doc="message endpoints (destination/source + payload beats, "
                                        "a head flit added and stripped) instead of flit endpoints")

    def check(self):
        if self.cols * self.rows < 2:
            raise ParameterError(f"cols, rows: {self.cols}x{self.rows} has one node "
                                 "(accepted: at least 2 nodes)")
        if self.vcs % self.classes:
            raise ParameterError(f"vcs, classes: {self.vcs} VCs do not split evenly among "
                                 f"{self.classes} classes (accepted: vcs a multiple of classes)")
        if self.message_ni and self.traffic_gen:
            raise ParameterError("message_ni, traffic_gen: the bench generators drive flit "
                                 "endpoints (accepted: at most one of them true)")
        xb, yb = header_fields(self.cols, self.rows)
        if self.message_ni:
            xb += max(1, (self.cols * self.rows - 1).bit_length())  # the source in the head
        need = bench_header_bits(self.cols, self.rows) if self.traffic_gen else xb + yb
        if self.flit_width < need:
            raise ParameterError(f"flit_width: {self.flit_width} is out of range (accepted: "
                                 f"at least {need} bits for a {self.cols}x{self.rows} mesh"
                                 + (" with traffic_gen" if self.traffic_gen else "") + ")")


@dataclass(frozen=True)
class NoCBenchParams(Params):
    """Workload of ``scoville bench noc``."""
    traffic: str = param("uniform", choices=PATTERNS, doc="destination pattern")
    rate: float = param(0.1, lo=0.0, hi=1.0, doc="offered load, flits/node/cycle")
    packet_flits: int = param(1, lo=1, hi=255, doc="flits per packet")
    cycles: int = param(10000, lo=100, hi=10_000_000, doc="measured cycles (after warm-up)")
    warmup: int = param(1000, lo=0, hi=1_000_000, doc="cycles of traffic before measuring")
    # Not `seed`: `scoville bench --seed` is the cocotb seed.
    traffic_seed: int = param(1, lo=0, hi=2**32 - 1, doc="seed of the hardware traffic generators")


class Mesh(wiring.Component):
    """A cols x rows 2-D mesh of wormhole VC routers with stream endpoints per message class.

    Node ``n`` sits at column ``x = n % cols``, row ``y = n // cols``. Each has an
    :class:`InjectNI` and an :class:`EjectNI` on its router's local port, one stream pair per
    message class; message class ``c`` uses VCs ``c*vcs/classes .. (c+1)*vcs/classes - 1`` only,
    so a consumer that holds back one class (a memory refusing requests until it can send
    responses) never blocks another. Routing is dimension-order, hence deadlock-free.

    Zero-load latency for a packet of ``P`` flits over ``H = |dx| + |dy|`` hops, counted from
    the clock edge at which the head is accepted on ``n{src}_i{c}`` to the edge at which the tail
    is taken from ``n{dst}_o{c}`` (consumer always ready): ``2*H + 3 + (P - 1)`` cycles (the
    head is buffered in the source router at the acceptance edge; 2 cycles per hop; 1 cycle in
    the destination router, 1 into the ejection buffer, 1 to be taken from it; then one flit
    per cycle).

    Throughput: one flit per cycle per link and per endpoint stream; with ``buffer >= 3``
    the credit loop does not limit a single VC.

    Members
    -------
    n{n}_i{c} : In(stream.Signature(beat_layout(flit_width)))
        Injection stream of node ``n``, class ``c``. A packet is consecutive beats up to one
        with ``last``; its first beat is the head, whose ``data`` holds the destination column
        in bits ``[0:xb]`` and row in ``[xb:xb+yb]`` (``xb``, ``yb`` = bits for ``cols - 1``,
        ``rows - 1``; both must be inside the mesh). ``ready`` may depend on ``valid``.
    n{n}_o{c} : Out(stream.Signature(beat_layout(flit_width)))
        Ejection stream of node ``n``, class ``c``: whole packets, never interleaved, flits in
        order; ``valid`` does not depend on ``ready``.
    bench_* / stat_* :
        With ``traffic_gen``: ``bench_mode`` hands class 0 of every node to a
        :class:`TrafficGen` and an :class:`EjectChecker` (the external class-0 streams are then
        idle); ``bench_load`` clears counters and seeds generators; ``stat_node``/``stat_sel``
        select a counter onto ``stat_value`` (combinational; :data:`STATS` order, histogram bins
        at ``64 + bin`` with ``histogram``); ``bench_outstanding`` counts measured packets not yet delivered.
    """

    def __init__(self, *, cols=4, rows=4, vcs=2, buffer=4, flit_width=64, routing="xy",
                 classes=1, traffic_gen=True, message_ni=False, histogram=True):
        self._p = NoCParams(cols=cols, rows=rows, vcs=vcs, buffer=buffer, flit_width=flit_width,
                            routing=routing, classes=classes, traffic_gen=traffic_gen,
                            histogram=histogram,
                            message_ni=message_ni)
        if message_ni:
            inject = stream.Signature(message_layout(cols * rows, flit_width))
            eject = stream.Signature(delivery_layout(cols * rows, flit_width))
        else:
            inject = eject = stream.Signature(beat_layout(flit_width))
        members = {}
        for n in range(cols * rows):
            for c in range(classes):
                members[f"n{n}_i{c}"] = In(inject)
                members[f"n{n}_o{c}"] = Out(eject)
        if traffic_gen:
            members.update({
                "bench_mode": In(1), "bench_load": In(1), "bench_gen": In(1),
                "bench_measure": In(1), "bench_rate": In(17), "bench_pattern": In(3),
                "bench_pflits": In(8), "bench_seed": In(32), "bench_outstanding": Out(32),
                "stat_node": In(range(cols * rows)), "stat_sel": In(7), "stat_value": Out(32),
            })
        super().__init__(members)

    params = property(lambda self: self._p)

    def endpoint(self, n, c, direction):
        return getattr(self, f"n{n}_{direction}{c}")

    def elaborate(self, platform):
        m = Module()
        p = self._p
        cols, rows, C = p.cols, p.rows, p.classes
        N = cols * rows
        routers = {}
        for y in range(rows):
            for x in range(cols):
                r = Router(x=x, y=y, cols=cols, rows=rows, vcs=p.vcs, buffer=p.buffer,
                           flit_width=p.flit_width, routing=p.routing)
                routers[x, y] = m.submodules[f"router_{x}_{y}"] = r
        for (x, y), r in routers.items():
            if x + 1 < cols:
                wiring.connect(m, r.o[EAST], routers[x + 1, y].i[WEST])
                wiring.connect(m, routers[x + 1, y].o[WEST], r.i[EAST])
            if y + 1 < rows:
                wiring.connect(m, r.o[NORTH], routers[x, y + 1].i[SOUTH])
                wiring.connect(m, routers[x, y + 1].o[SOUTH], r.i[NORTH])

        if p.traffic_gen:
            now = Signal(TS_BITS)
            m.d.sync += now.eq(now + 1)
            stats = []          # per node: list of 32-bit values by stat_sel
            outstanding = []
        for n in range(N):
            x, y = n % cols, n // cols
            inj = InjectNI(x=x, y=y, cols=cols, rows=rows, vcs=p.vcs, classes=C,
                           buffer=p.buffer, flit_width=p.flit_width)
            ej = EjectNI(vcs=p.vcs, classes=C, buffer=p.buffer, flit_width=p.flit_width)
            m.submodules[f"inject_{n}"] = inj
            m.submodules[f"eject_{n}"] = ej
            wiring.connect(m, inj.link, routers[x, y].i[LOCAL])
            wiring.connect(m, routers[x, y].o[LOCAL], ej.link)
            for c in range(C):
                if c == 0 and p.traffic_gen:
                    continue
                if p.message_ni:
                    pk = Packetizer(cols=cols, rows=rows, flit_width=p.flit_width, src=n)
                    dp = Depacketizer(cols=cols, rows=rows, flit_width=p.flit_width)
                    m.submodules[f"packetizer_{n}_{c}"] = pk
                    m.submodules[f"depacketizer_{n}_{c}"] = dp
                    wiring.connect(m, wiring.flipped(self.endpoint(n, c, "i")), pk.i)
                    wiring.connect(m, pk.o, inj.i[c])
                    wiring.connect(m, ej.o[c], dp.i)
                    wiring.connect(m, dp.o, wiring.flipped(self.endpoint(n, c, "o")))
                    continue
                wiring.connect(m, wiring.flipped(self.endpoint(n, c, "i")), inj.i[c])
                wiring.connect(m, ej.o[c], wiring.flipped(self.endpoint(n, c, "o")))
            if not p.traffic_gen:
                continue

            gen = TrafficGen(x=x, y=y, cols=cols, rows=rows, flit_width=p.flit_width)
            chk = EjectChecker(x=x, y=y, cols=cols, rows=rows, flit_width=p.flit_width,
                               histogram=p.histogram)
            m.submodules[f"gen_{n}"] = gen
            m.submodules[f"chk_{n}"] = chk
            for sub in (gen, chk):
                m.d.comb += [sub.load.eq(self.bench_load), sub.measure.eq(self.bench_measure),
                             sub.pflits.eq(self.bench_pflits), sub.now.eq(now)]
            m.d.comb += [gen.seed.eq(self.bench_seed), gen.gen.eq(self.bench_gen & self.bench_mode),
                         gen.rate.eq(self.bench_rate), gen.pattern.eq(self.bench_pattern)]
            ext_i, ext_o = self.endpoint(n, 0, "i"), self.endpoint(n, 0, "o")
            # Class 0 goes to the external ports or to the generator/checker, never both.
            with m.If(self.bench_mode):
                m.d.comb += [inj.i[0].valid.eq(gen.o.valid), inj.i[0].payload.eq(gen.o.payload),
                             gen.o.ready.eq(inj.i[0].ready),
                             chk.i.valid.eq(ej.o[0].valid), chk.i.payload.eq(ej.o[0].payload),
                             ej.o[0].ready.eq(chk.i.ready)]
            with m.Else():
                m.d.comb += [inj.i[0].valid.eq(ext_i.valid), inj.i[0].payload.eq(ext_i.payload),
                             ext_i.ready.eq(inj.i[0].ready),
                             ext_o.valid.eq(ej.o[0].valid), ext_o.payload.eq(ej.o[0].payload),
                             ej.o[0].ready.eq(ext_o.ready)]
            values = {"offered": gen.offered, "queued": gen.queued, "delivered": chk.delivered,
                      "eject_flits": chk.eject_flits, "lat_sum": chk.lat_sum,
                      "lat_max": chk.lat_max, "misrouted": chk.misrouted, "corrupt": chk.corrupt,
                      "inject_flits": gen.inject_flits, "dropped": gen.dropped}
            stats.append([values[s] for s in STATS] +
                         [chk.hist[b] for b in range(HIST_BINS if p.histogram else 0)])
            outstanding.append(gen.queued - chk.delivered)

        if p.traffic_gen:
            total = Signal(32)
            acc = Const(0, 32)
            for o in outstanding:
                acc = (acc + o)[:32]
            m.d.sync += total.eq(acc)  # registered: a sum over every node is a long path
            m.d.comb += self.bench_outstanding.eq(total)
            with m.Switch(self.stat_node):
                for n in range(N):
                    with m.Case(n):
                        with m.Switch(self.stat_sel):
                            for k, v in enumerate(stats[n][:len(STATS)]):
                                with m.Case(k):
                                    m.d.comb += self.stat_value.eq(v)
                            for b in range(len(stats[n]) - len(STATS)):
                                with m.Case(64 + b):
                                    m.d.comb += self.stat_value.eq(stats[n][len(STATS) + b])
        return m


def noc(**params):
    """Factory of the ``noc`` block (the simulation top: with ``traffic_gen``, the bench's
    generators and checkers sit at every node)."""
    return Mesh(**params)


def noc_network(**params):
    """The ``noc`` block's deliverable RTL (``scoville verilog``/``synth``): the mesh with its
    endpoint streams, without the bench's traffic generators and checkers."""
    return Mesh(**{**params, "traffic_gen": False})
