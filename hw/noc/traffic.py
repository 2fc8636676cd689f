"""Synthesizable traffic generator and ejection checker for the NoC bench.

They keep Python off the per-cycle path of throughput/latency sweeps: each node gets a
Bernoulli packet source with a pattern-driven destination and an ejection checker whose
counters (and a latency histogram) the testbench reads once at the end.

Bench head flit (low bits first): ``dst_x``, ``dst_y`` (the routing header), ``src`` (node
number), ``ts`` (16-bit creation time), ``measured`` (created inside the measurement window).
Body flit ``k`` of a packet carries :func:`body_word` of (src, ts, k), so corruption,
truncation and packets glued together are all detected.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .flit import header_fields
from .ni import beat_layout


__all__ = ["PATTERNS", "HIST_BINS", "hist_bin", "bench_header_bits", "TrafficGen",
           "EjectChecker", "body_word", "STATS"]

PATTERNS = ("uniform", "transpose", "bitcomp", "hotspot", "neighbor")
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


def node_bits(nodes):
    return max(1, (nodes - 1).bit_length())


def bench_header_bits(cols, rows):
    xb, yb = header_fields(cols, rows)
    return xb + yb + node_bits(cols * rows) + TS_BITS + 1


def body_word(src, ts, k, width):
    """Expected data of body flit ``k`` (Python twin; the gateware repeats this pattern)."""
    word = ((k & 0xFF) | (ts << 8) | (src << 24)) ^ 0x5A5A5A5A
    out, pos = 0, 0
    while pos < width:
        out |= word << pos
        pos += 32
    return out & ((1 << width) - 1)


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
        head_word = Cat(dst_x, dst_y, Const(src, node_bits(N)), head_ts, head_measured)
        k = Signal(8)
        m.d.comb += k.eq(idx)
        body = Cat(k, cur_ts, Const(src, 8)) ^ 0x5A5A5A5A
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
        h_x, h_y = d[:xb], d[xb:xb + yb]
        h_src = d[xb + yb:xb + yb + nb]
        h_ts = d[xb + yb + nb:xb + yb + nb + TS_BITS]
        h_measured = d[xb + yb + nb + TS_BITS]

        is_head = ~in_packet
        ts = Mux(is_head, h_ts, cur_ts)
        measured = Mux(is_head, h_measured, cur_measured)
        k = Mux(is_head, 0, idx)
        body = Cat(idx, cur_ts, cur_src.as_unsigned()[:8] if nb >= 8 else Cat(cur_src, Const(0, 8 - nb))) ^ 0x5A5A5A5A
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
