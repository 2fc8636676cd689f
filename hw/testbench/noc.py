"""The ``noc`` block's simulation top: the deliverable :class:`~hw.noc.mesh.Mesh` with a
synthesizable traffic generator and ejection checker at every node.

They keep Python off the per-cycle path of throughput/latency sweeps: each node gets a
Bernoulli packet source with a pattern-driven destination and an ejection checker whose
counters (and a latency histogram) the testbench reads once at the end. None of this is part
of the deliverable: ``scoville verilog noc`` / ``synth noc`` build :class:`~hw.noc.mesh.Mesh`
alone (:func:`hw.noc.mesh.noc_network`); the ``noc`` block's simulation factory :func:`noc`
builds :class:`NoCBench` (with ``traffic_gen``, the default).

Bench head flit (:func:`bench_head_layout`, low bits first): ``dst`` (the routing header),
``src`` (node number), ``ts`` (16-bit creation time), ``measured`` (created inside the
measurement window). Body flit ``k`` of a packet carries :func:`body_word` of (src, ts, k)
(:data:`BODY_LAYOUT`), so corruption, truncation and packets glued together are all detected.
"""

from dataclasses import dataclass, fields


from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..noc.flit import dest_layout, head_view, header_fields, node_bits, pack
from ..noc.mesh import PATTERNS, Mesh, MeshParams
from ..noc.ni import beat_layout
from ..params import ParameterError, param


__all__ = ["PATTERNS", "HIST_BINS", "hist_bin", "hist_bin_range", "bench_header_bits",
           "bench_head_layout", "BODY_LAYOUT", "BODY_XOR", "TrafficGen", "EjectChecker",
           "body_word", "STATS", "NoCParams", "NoCBench", "noc"]
TS_BITS = 16
HIST_BINS = 64
HIST_FINE = 48       # bins 0..47 are one cycle wide
HIST_SHIFT = 4       # bins 48..63 are 16 cycles wide; the last also holds everything beyond
QUEUE_DEPTH = 16     # source queue (creation timestamps) per node

# Per-node counters of the checker/generator, by `stat_sel` index (histogram at 64 + bin).
STATS = ("offered", "queued", "delivered", "eject_flits", "lat_sum", "lat_max", "misrouted",
         "corrupt", "inject_flits", "dropped")


def hist_bin(latency):
    """Histogram bin of a latency (Python twin of the gateware)."""
    if latency < HIST_FINE:
        return latency
    return min(HIST_FINE + ((latency - HIST_FINE) >> HIST_SHIFT), HIST_BINS - 1)


def hist_bin_range(b):
    """``(lo, hi)`` latencies counted in bin ``b`` (``hi`` is None for the open last bin)."""
    if b < HIST_FINE:
        return b, b
    lo = HIST_FINE + ((b - HIST_FINE) << HIST_SHIFT)
    return lo, (None if b == HIST_BINS - 1 else lo + (1 << HIST_SHIFT) - 1)


def bench_head_layout(cols, rows):
    """Head flit ``data`` of a bench packet: the routing header, the source node, the creation
    timestamp and whether the packet is measured (created inside the measurement window)."""
    return data.StructLayout({"dst": dest_layout(cols, rows), "src": unsigned(node_bits(cols * rows)),
                              "ts": unsigned(TS_BITS), "measured": unsigned(1)})


def bench_header_bits(cols, rows):
    return bench_head_layout(cols, rows).size


#: 32-bit pattern of body flit ``k`` (XORed with :data:`BODY_XOR`, repeated over the flit).
BODY_LAYOUT = data.StructLayout({"k": unsigned(8), "ts": unsigned(TS_BITS), "src": unsigned(8)})
BODY_XOR = 0x5A5A5A5A     # so an all-zero or stuck flit never looks like a valid body


def body_word(src, ts, k, width):
    """Expected data of body flit ``k`` (Python twin; the gateware repeats this pattern)."""
    word = BODY_LAYOUT.const({"k": k & 0xFF, "ts": ts, "src": src & 0xFF}).as_bits() ^ BODY_XOR
    repeated = data.ArrayLayout(BODY_LAYOUT.size, -(-width // BODY_LAYOUT.size))
    return repeated.const([word] * repeated.length).as_bits() & ((1 << width) - 1)


def _xorshift(state):
    a = state ^ (state << 13)[:32]
    b = a ^ (a >> 17)
    return b ^ (b << 5)[:32]


class TrafficGen(wiring.Component):
    """Bernoulli packet source for one node.

    Every cycle while ``gen`` is high a packet is created with probability ``rate / 65536``;
    its creation time goes into a source queue of 16 entries (a creation with a full queue is
    counted in ``dropped``, and still in ``offered``). The head of the queue is sent as soon as
    the stream takes it, then ``pflits - 1`` body flits. The destination follows ``pattern``
    (index into :data:`PATTERNS`): uniform over all nodes (self included), transpose
    ``(x, y) -> (y mod cols, x mod rows)``, bit-complement ``(cols-1-x, rows-1-y)``, hotspot
    (one of the four corners, uniformly), neighbor ``((x+1) mod cols, y)``.
    """

    def __init__(self, *, x, y, cols, rows, flit_width):
        self._x, self._y, self._cols, self._rows, self._w = x, y, cols, rows, flit_width
        super().__init__({
            "o": Out(stream.Signature(beat_layout(flit_width))),
            "load": In(1), "seed": In(32), "gen": In(1), "measure": In(1),
            "rate": In(17), "pattern": In(3), "pflits": In(8), "now": In(TS_BITS),
            "offered": Out(32), "queued": Out(32), "inject_flits": Out(32), "dropped": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        x, y, cols, rows, W = self._x, self._y, self._cols, self._rows, self._w
        N = cols * rows
        src = y * cols + x
        xb, yb = header_fields(cols, rows)

        rng_a = Signal(32, init=1)   # creation decisions
        rng_b = Signal(32, init=2)   # destinations
        with m.If(self.load):
            salt = (src + 1) * 0x9E3779B9 & 0xFFFFFFFF
            m.d.sync += [rng_a.eq((self.seed ^ salt) | 1),
                         rng_b.eq((self.seed ^ (salt * 7 & 0xFFFFFFFF) ^ 0x6C078965) | 2)]
        with m.Else():
            m.d.sync += rng_a.eq(_xorshift(rng_a))

        queue = fifo.SyncFIFO(width=TS_BITS + 1, depth=QUEUE_DEPTH)
        m.submodules.queue = queue
        create = Signal()
        m.d.comb += [
            create.eq(self.gen & ~self.load & (rng_a[:16] < self.rate)),
            queue.w_en.eq(create),
            queue.w_data.eq(Cat(self.now, self.measure)),
        ]
        with m.If(create & self.measure):
            m.d.sync += self.offered.eq(self.offered + 1)
            with m.If(queue.w_rdy):
                m.d.sync += self.queued.eq(self.queued + 1)
        with m.If(create & ~queue.w_rdy):
            m.d.sync += self.dropped.eq(self.dropped + 1)

        # Destination of the next head, drawn after each head leaves (stable while offered).
        dst_x = Signal(xb)
        dst_y = Signal(yb)
        r = rng_b[8:24]
        uni = (r * N)[16:]  # uniform in 0..N-1
        corner = rng_b[4:6]
        nx, ny = Signal(xb), Signal(yb)
        with m.Switch(self.pattern):
            with m.Case(0):
                with m.Switch(uni):
                    for n in range(N):
                        with m.Case(n):
                            m.d.comb += [nx.eq(n % cols), ny.eq(n // cols)]
            with m.Case(1):
                m.d.comb += [nx.eq(y % cols), ny.eq(x % rows)]
            with m.Case(2):
                m.d.comb += [nx.eq(cols - 1 - x), ny.eq(rows - 1 - y)]
            with m.Case(3):
                m.d.comb += [nx.eq(Mux(corner[0], cols - 1, 0)), ny.eq(Mux(corner[1], rows - 1, 0))]
            with m.Default():
                m.d.comb += [nx.eq((x + 1) % cols), ny.eq(y)]

        idx = Signal(8)          # flit index within the current packet; 0 = head next
        cur_ts = Signal(TS_BITS)
        o = self.o
        head_ts, head_measured = queue.r_data[:TS_BITS], queue.r_data[TS_BITS]
        head_word = pack(bench_head_layout(cols, rows),
                         {"dst": {"x": dst_x, "y": dst_y}, "src": src, "ts": head_ts,
                          "measured": head_measured})
        k = Signal(8)
        m.d.comb += k.eq(idx)
        body = pack(BODY_LAYOUT, {"k": k, "ts": cur_ts, "src": src & 0xFF}) ^ BODY_XOR
        with m.If(idx == 0):
            m.d.comb += [o.valid.eq(queue.r_rdy), o.payload.data.eq(head_word),
                         o.payload.last.eq(self.pflits <= 1)]
        with m.Else():
            m.d.comb += [o.valid.eq(1), o.payload.data.eq(Cat(*[body] * ((W + 31) // 32))[:W]),
                         o.payload.last.eq(idx + 1 >= self.pflits)]
        take = o.valid & o.ready
        m.d.comb += queue.r_en.eq(take & (idx == 0))
        with m.If(take):
            m.d.sync += idx.eq(Mux(o.payload.last, 0, idx + 1))
            with m.If(self.measure):
                m.d.sync += self.inject_flits.eq(self.inject_flits + 1)
            with m.If(idx == 0):
                m.d.sync += [cur_ts.eq(head_ts), rng_b.eq(_xorshift(rng_b)),
                             dst_x.eq(nx), dst_y.eq(ny)]
        with m.If(self.load):
            # The first destination of a run comes from the freshly seeded generator too.
            m.d.sync += [dst_x.eq(nx), dst_y.eq(ny)]
        with m.If(self.load):
            m.d.sync += [self.offered.eq(0), self.queued.eq(0), self.inject_flits.eq(0),
                         self.dropped.eq(0), idx.eq(0)]
        return m


class EjectChecker(wiring.Component):
    """Always-ready sink for one node that checks and times every bench packet.

    Counts packets delivered (measured ones), flits ejected while ``measure`` is high, the sum
    and maximum of measured latencies (creation to tail, cycles), a latency histogram
    (:func:`hist_bin`), heads for another node (``misrouted``) and body flits that do not match
    :func:`body_word` or packets of the wrong length (``corrupt``).
    """

    def __init__(self, *, x, y, cols, rows, flit_width, histogram=True):
        self._x, self._y, self._cols, self._rows, self._w = x, y, cols, rows, flit_width
        self._histogram = histogram
        super().__init__({
            "i": In(stream.Signature(beat_layout(flit_width))),
            "load": In(1), "measure": In(1), "pflits": In(8), "now": In(TS_BITS),
            "delivered": Out(32), "eject_flits": Out(32), "lat_sum": Out(32), "lat_max": Out(32),
            "misrouted": Out(32), "corrupt": Out(32),
            **({"hist": Out(32).array(HIST_BINS)} if histogram else {}),
        })

    def elaborate(self, platform):
        m = Module()
        x, y, cols, rows, W = self._x, self._y, self._cols, self._rows, self._w
        N = cols * rows
        xb, yb = header_fields(cols, rows)
        nb = node_bits(N)
        i = self.i
        m.d.comb += i.ready.eq(1)

        in_packet = Signal()
        idx = Signal(8)
        cur_src = Signal(nb)
        cur_ts = Signal(TS_BITS)
        cur_measured = Signal()
        d = i.payload.data
        h = head_view(bench_head_layout(cols, rows), d)
        h_x, h_y, h_src, h_ts, h_measured = h.dst.x, h.dst.y, h.src, h.ts, h.measured

        is_head = ~in_packet
        ts = Mux(is_head, h_ts, cur_ts)
        measured = Mux(is_head, h_measured, cur_measured)
        k = Mux(is_head, 0, idx)
        body = pack(BODY_LAYOUT, {"k": idx, "ts": cur_ts, "src": cur_src}) ^ BODY_XOR
        expect = Cat(*[body] * ((W + 31) // 32))[:W]
        latency = Signal(TS_BITS)
        m.d.comb += latency.eq(self.now - ts)
        bin_ = Signal(range(HIST_BINS))
        with m.If(latency < HIST_FINE):
            m.d.comb += bin_.eq(latency)
        with m.Elif(((latency - HIST_FINE) >> HIST_SHIFT) < HIST_BINS - 1 - HIST_FINE):
            m.d.comb += bin_.eq(HIST_FINE + ((latency - HIST_FINE) >> HIST_SHIFT))
        with m.Else():
            m.d.comb += bin_.eq(HIST_BINS - 1)

        take = i.valid
        last = i.payload.last
        with m.If(take):
            m.d.sync += in_packet.eq(~last)
            with m.If(self.measure):
                m.d.sync += self.eject_flits.eq(self.eject_flits + 1)
            with m.If(is_head):
                m.d.sync += [cur_src.eq(h_src), cur_ts.eq(h_ts), cur_measured.eq(h_measured),
                             idx.eq(1)]
                with m.If((h_x != x) | (h_y != y)):
                    m.d.sync += self.misrouted.eq(self.misrouted + 1)
            with m.Else():
                m.d.sync += idx.eq(idx + 1)
                with m.If(d != expect):
                    m.d.sync += self.corrupt.eq(self.corrupt + 1)
            with m.If(last):
                with m.If(k + 1 != self.pflits):
                    m.d.sync += self.corrupt.eq(self.corrupt + 1)
                with m.If(measured):
                    m.d.sync += [self.delivered.eq(self.delivered + 1),
                                 self.lat_sum.eq(self.lat_sum + latency)]
                    with m.If(latency > self.lat_max):
                        m.d.sync += self.lat_max.eq(latency)
                    for b in range(HIST_BINS if self._histogram else 0):
                        with m.If(bin_ == b):
                            m.d.sync += self.hist[b].eq(self.hist[b] + 1)
        with m.If(self.load):
            m.d.sync += [self.delivered.eq(0), self.eject_flits.eq(0), self.lat_sum.eq(0),
                         self.lat_max.eq(0), self.misrouted.eq(0), self.corrupt.eq(0),
                         in_packet.eq(0), idx.eq(0)]
            if self._histogram:
                m.d.sync += [h.eq(0) for h in self.hist]
        return m


@dataclass(frozen=True)
class NoCParams(MeshParams):
    """Parameters of the ``noc`` block: the network's (:class:`~hw.noc.mesh.MeshParams`) and
    which top the simulation factory builds."""
    traffic_gen: bool = param(True, doc="include the per-node traffic generators/checkers of `bench` "
                                        "(simulation only: `scoville verilog`/`synth` give the "
                                        "network without them)")
    histogram: bool = param(True, doc="with traffic_gen: a 64-bin latency histogram per node "
                                      "(for p99; false gives a much smaller simulation model)")

    def check(self):
        if self.message_ni and self.traffic_gen:
            raise ParameterError("message_ni, traffic_gen: the bench generators drive flit "
                                 "endpoints (accepted: at most one of them true)")
        if self.traffic_gen:
            need = bench_header_bits(self.cols, self.rows)
            if self.flit_width < need:
                raise ParameterError(f"flit_width: {self.flit_width} is out of range (accepted: "
                                     f"at least {need} bits for a {self.cols}x{self.rows} mesh "
                                     "with traffic_gen)")
        super().check()

    def mesh_params(self):
        """The network's parameters alone (keyword arguments of :class:`~hw.noc.mesh.Mesh`)."""
        return {f.name: getattr(self, f.name) for f in fields(MeshParams)}


class NoCBench(wiring.Component):
    """A :class:`~hw.noc.mesh.Mesh` with a :class:`TrafficGen` and an :class:`EjectChecker` on
    class 0 of every node.

    The endpoint streams ``n{n}_i{c}`` / ``n{n}_o{c}`` are the mesh's, with its latency and
    throughput (the class-0 selection below is combinational: no cycle is added). With
    ``bench_mode`` high, class 0 of every node is the generator's and the checker's (the
    external class-0 streams are then idle: ``ready``/``valid`` low); low, it is the external
    ports'.

    Parameters
    ----------
    cols, rows, vcs, buffer, flit_width, routing, classes : see :class:`~hw.noc.mesh.Mesh`
        ``flit_width`` must hold :func:`bench_head_layout`.
    histogram : bool
        A :data:`HIST_BINS`-bin latency histogram per node.

    Members
    -------
    n{n}_i{c}, n{n}_o{c} :
        The mesh's endpoint streams (see :class:`~hw.noc.mesh.Mesh`).
    bench_mode, bench_load, bench_gen, bench_measure : In(1)
        Class 0 to the generators; clear counters and seed the generators (one cycle); create
        packets; count what is created and delivered (the measurement window).
    bench_rate : In(17)
        Packet creation probability per node and cycle, times 65536.
    bench_pattern : In(3)
        Destination pattern, index into :data:`PATTERNS`.
    bench_pflits : In(8)
        Flits per packet.
    bench_seed : In(32)
        Generator seed (taken at ``bench_load``).
    bench_outstanding : Out(32)
        Measured packets created and not yet delivered (registered: one cycle behind).
    stat_node, stat_sel, stat_value :
        ``stat_value`` (combinational) is counter ``stat_sel`` of node ``stat_node``:
        :data:`STATS` order, histogram bin ``b`` at ``64 + b`` with ``histogram``.
    """

    def __init__(self, *, cols=4, rows=4, vcs=2, buffer=4, flit_width=64, routing="xy",
                 classes=1, histogram=True):
        self._p = NoCParams(cols=cols, rows=rows, vcs=vcs, buffer=buffer, flit_width=flit_width,
                            routing=routing, classes=classes, traffic_gen=True,
                            histogram=histogram)
        self.mesh = Mesh(**self._p.mesh_params())
        members = dict(self.mesh.signature.members)
        members.update({
            "bench_mode": In(1), "bench_load": In(1), "bench_gen": In(1),
            "bench_measure": In(1), "bench_rate": In(17), "bench_pattern": In(3),
            "bench_pflits": In(8), "bench_seed": In(32), "bench_outstanding": Out(32),
            "stat_node": In(range(cols * rows)), "stat_sel": In(7), "stat_value": Out(32),
        })
        super().__init__(members)

    params = property(lambda self: self._p)
    endpoint = Mesh.endpoint        # the same port names as the mesh's

    def elaborate(self, platform):
        m = Module()
        p = self._p
        cols, rows = p.cols, p.rows
        N = cols * rows
        m.submodules.mesh = mesh = self.mesh
        now = Signal(TS_BITS)
        m.d.sync += now.eq(now + 1)
        stats = []          # per node: list of 32-bit values by stat_sel
        outstanding = []
        for n in range(N):
            x, y = n % cols, n // cols
            for c in range(1, p.classes):
                wiring.connect(m, wiring.flipped(self.endpoint(n, c, "i")), mesh.endpoint(n, c, "i"))
                wiring.connect(m, mesh.endpoint(n, c, "o"), wiring.flipped(self.endpoint(n, c, "o")))
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
            net_i, net_o = mesh.endpoint(n, 0, "i"), mesh.endpoint(n, 0, "o")
            # Class 0 goes to the external ports or to the generator/checker, never both.
            with m.If(self.bench_mode):
                m.d.comb += [net_i.valid.eq(gen.o.valid), net_i.payload.eq(gen.o.payload),
                             gen.o.ready.eq(net_i.ready),
                             chk.i.valid.eq(net_o.valid), chk.i.payload.eq(net_o.payload),
                             net_o.ready.eq(chk.i.ready)]
            with m.Else():
                m.d.comb += [net_i.valid.eq(ext_i.valid), net_i.payload.eq(ext_i.payload),
                             ext_i.ready.eq(net_i.ready),
                             ext_o.valid.eq(net_o.valid), ext_o.payload.eq(net_o.payload),
                             net_o.ready.eq(ext_o.ready)]
            values = {"offered": gen.offered, "queued": gen.queued, "delivered": chk.delivered,
                      "eject_flits": chk.eject_flits, "lat_sum": chk.lat_sum,
                      "lat_max": chk.lat_max, "misrouted": chk.misrouted, "corrupt": chk.corrupt,
                      "inject_flits": gen.inject_flits, "dropped": gen.dropped}
            stats.append([values[s] for s in STATS] +
                         [chk.hist[b] for b in range(HIST_BINS if p.histogram else 0)])
            outstanding.append(gen.queued - chk.delivered)

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
    """Simulation factory of the ``noc`` block (keyword arguments of :class:`NoCParams`): the
    bench top :class:`NoCBench` with ``traffic_gen``, else the network alone."""
    p = NoCParams(**params)
    mesh = p.mesh_params()
    if p.traffic_gen:
        del mesh["message_ni"]      # False: NoCParams rejects it with traffic_gen
        return NoCBench(**mesh, histogram=p.histogram)
    return Mesh(**mesh)
