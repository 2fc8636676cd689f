"""cocotb tests of the ``noc`` mesh against the golden model (:mod:`verif.noc_model`).

Every endpoint stream gets a protocol checker; sources and ejection sinks stall at random;
the progress watchdog fails a test that stops moving while packets are outstanding. Every
packet is checked flit for flit against the scoreboard (right node, right class, intact, in
order per flow, exactly once). The ``bench*`` tests use the synthesizable per-node traffic
generators and checkers (``traffic_gen``) and read their counters at the end.
"""

import math
import os
import random

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge, Timer

from amaranth.lib import data

from scoville.hw.noc.ni import beat_layout, delivery_layout, message_layout

from .noc_model import NoCModel, PATTERNS, pattern_dst
from .stream import StreamBus, StreamSink, random_pause
from .tb import TB, bench_args, block_params, write_bench_result


class NoCTB(TB):
    """A :class:`TB` with one checked source and sink per (node, class) and the scoreboard."""

    def __init__(self, dut, *, stall="random", timeout=3000, sink_stall=None):
        super().__init__(dut, stall=stall, timeout=timeout)
        self.sink_stall = sink_stall
        self.attach()

    def attach(self):
        """Fresh scoreboard, sources, sinks and protocol checkers on every endpoint."""
        p = self.params
        self.model = NoCModel(**p)
        self.nodes, self.classes, self.w = self.model.nodes, p["classes"], p["flit_width"]
        self.message = p.get("message_ni", False)
        # Endpoint beat formats (the gateware's own layouts).
        self.beat = beat_layout(self.w)
        self.msg_in = message_layout(self.nodes, self.w)
        self.msg_out = delivery_layout(self.nodes, self.w)
        self.sources, self.sinks = {}, {}
        self.expected_beats = {}
        for n in range(self.nodes):
            for c in range(self.classes):
                self.sources[n, c] = self.source(StreamBus.amaranth(self.dut, f"n{n}_i{c}"))
                sink_bus = StreamBus.amaranth(self.dut, f"n{n}_o{c}")
                if self.sink_stall is None:
                    self.sinks[n, c] = self.sink(sink_bus)
                else:
                    self.sinks[n, c] = StreamSink(self.check(sink_bus), self.clk, self.sink_stall(),
                                                  self.watchdog)
                    self._drivers.append(self.sinks[n, c])
                self.expected_beats[n, c] = 0
        self.consumed = {key: 0 for key in self.sinks}

    def detach(self):
        """Stop every driver and checker (before a reset that abandons the traffic)."""
        for d in self._drivers:
            d.stop()
        for checker in self.checkers:
            checker.stop()
        self._drivers, self.checkers = [], []

    def send(self, src, dst, cls, length, rng=random, coordinates=None):
        """Queue a packet of flow (src, dst, cls) at its source and in the scoreboard. With
        ``coordinates`` (flit endpoints only), its head names that (column, row) instead of
        ``dst``'s, which must then be where the network delivers it."""
        if self.message:
            # Message beats: dst, data, last; the network interface adds the head flit.
            words = self.model.message(src, dst, cls, length, rng)
            self.sources[src, cls].extend(
                self.msg_in.const({"dst": dst, "data": d, "last": int(i == length - 1)}).as_bits()
                for i, d in enumerate(words))
            self.expected_beats[dst, cls] += length
            return words
        flits = self.model.packet(src, dst, cls, length, rng)
        if coordinates is not None:
            # The scoreboard holds this same list: it expects the rewritten head too.
            flits[0] = self.model.with_coordinates(flits[0], *coordinates)
            assert self.model.dst_of(flits[0]) == dst
        self.sources[src, cls].extend(
            self.beat.const({"data": f, "last": int(i == len(flits) - 1)}).as_bits()
            for i, f in enumerate(flits))
        self.expected_beats[dst, cls] += length
        return flits

    def score(self):
        """Feed every complete packet received so far to the scoreboard."""
        if self.message:
            return self._score_messages()
        for key, sink in self.sinks.items():
            items, start = sink.items, self.consumed[key]
            packet = []
            i = start
            while i < len(items):
                beat = data.Const(self.beat, items[i])
                packet.append(beat.data)
                if beat.last:
                    self.model.deliver(key[0], key[1], packet)
                    packet = []
                    start = i + 1
                i += 1
            self.consumed[key] = start

    def _score_messages(self):
        for key, sink in self.sinks.items():
            items, start = sink.items, self.consumed[key]
            words, src = [], None
            for i in range(start, len(items)):
                beat = data.Const(self.msg_out, items[i])
                if src is None:
                    src = beat.src
                assert beat.src == src, \
                    f"node {key[0]} class {key[1]}: source changed inside a message"
                words.append(beat.data)
                if beat.last:
                    self.model.deliver_message(key[0], key[1], src, words)
                    words, src = [], None
                    start = i + 1
            self.consumed[key] = start

    async def drain(self, extra=40):
        """Wait for every expected beat, score them, then check nothing else turns up."""
        self.expecting = "ejected packets"
        for key, sink in self.sinks.items():
            await sink.wait_for(self.expected_beats[key])
        self.score()
        self.model.check_all_delivered()
        await ClockCycles(self.clk, extra)
        for key, sink in self.sinks.items():
            assert len(sink.items) == self.expected_beats[key], \
                f"node {key[0]} class {key[1]}: {len(sink.items) - self.expected_beats[key]} " \
                "extra beat(s) after every packet was delivered (duplicate)"
        self.expecting = None


def _lengths(max_len, rng=random):
    return rng.randint(1, max_len)


@cocotb.test()
@cocotb.parametrize(pattern=list(PATTERNS))
async def traffic(dut, pattern):
    """Each pattern, random packet lengths and classes, random stalls on every port."""
    tb = NoCTB(dut)
    await tb.reset()
    rng = random.Random(random.getrandbits(32))
    # Fewer on big meshes, where the Python scoreboard and drivers bound the run time.
    per_node = int(os.environ.get("SCOVILLE_NOC_PACKETS", "30"))
    for _ in range(per_node):
        for src in range(tb.nodes):
            dst = pattern_dst(pattern, tb.model.cols, tb.model.rows, src, rng)
            tb.send(src, dst, rng.randrange(tb.classes), _lengths(5, rng), rng)
    await tb.drain()


@cocotb.test()
async def out_of_mesh_destinations(dut):
    """Heads naming a column or row beyond the mesh (the header fields are wider than the mesh
    when it is not a power of two on a side) are delivered, intact and in order, at the edge
    node nearest their destination, mixed with ordinary traffic: no packet is lost and no
    router waits forever for a link that does not exist."""
    tb = NoCTB(dut)
    model = tb.model
    outside = [(x, y) for x in range(1 << model.xb) for y in range(1 << model.yb)
               if x >= model.cols or y >= model.rows]
    assert outside, "this test needs a mesh whose sides are not both powers of two"
    await tb.reset()
    rng = random.Random(random.getrandbits(32))
    # Order holds per (source, destination *coordinates*, class) — the network interface picks
    # the VC from the coordinates — so each source uses one outside pair, and its ordinary
    # packets avoid the node that pair lands on, keeping every scoreboard flow one flow.
    target = {src: rng.choice(outside) for src in range(tb.nodes)}
    for _ in range(8):
        for src in range(tb.nodes):
            cls = rng.randrange(tb.classes)
            x, y = target[src]
            clamped = min(y, model.rows - 1) * model.cols + min(x, model.cols - 1)
            if rng.random() < 0.5:
                tb.send(src, clamped, cls, _lengths(4, rng), rng, coordinates=(x, y))
            else:
                dst = rng.choice([d for d in range(tb.nodes) if d != clamped])
                tb.send(src, dst, cls, _lengths(4, rng), rng)
    await tb.drain()


@cocotb.test()
async def saturation(dut):
    """Every node sends back to back to random nodes (hotspot corners half the time) with
    ejection backpressure: far beyond saturation; nothing lost, no deadlock, no starvation."""
    tb = NoCTB(dut, sink_stall=lambda: random_pause(0.5))
    await tb.reset()
    rng = random.Random(random.getrandbits(32))
    for _ in range(60):
        for src in range(tb.nodes):
            pattern = "hotspot" if rng.random() < 0.5 else "uniform"
            dst = pattern_dst(pattern, tb.model.cols, tb.model.rows, src, rng)
            tb.send(src, dst, rng.randrange(tb.classes), _lengths(4, rng), rng)
    await tb.drain()


@cocotb.test()
async def zero_load_latency(dut):
    """One packet alone in the network: latency is exactly the model's, for many pairs."""
    tb = NoCTB(dut, stall="none")
    await tb.reset()
    rng = random.Random(random.getrandbits(32))
    pairs = [(s, d) for s in range(tb.nodes) for d in range(tb.nodes)]
    rng.shuffle(pairs)
    # With buffers shorter than the 3-cycle credit loop, a VC sends buffer/3 flits per cycle:
    # the closed form (one flit per cycle after the head) holds for single flits only.
    max_len = 4 if tb.params["buffer"] >= 3 else 1
    for src, dst in pairs[:24]:
        length = rng.randint(1, max_len)
        cls = rng.randrange(tb.classes)
        src_bus, dst_bus = tb.sources[src, cls].bus, tb.sinks[dst, cls].bus
        tb.send(src, dst, cls, length, rng)
        # Count edges from the one at which the head is accepted to the one at which the
        # tail is taken, sampling both handshakes ourselves.
        accepted, latency, seen = None, None, 0
        while latency is None:
            await RisingEdge(tb.clk)
            if accepted is not None:
                accepted += 1
            if accepted is None and int(src_bus.valid.value) and int(src_bus.ready.value):
                accepted = 0
            if int(dst_bus.valid.value) and int(dst_bus.ready.value):
                seen += 1
                if seen == length:
                    latency = accepted
        expect = tb.model.zero_load_latency(src, dst, length)
        assert latency == expect, f"{src}->{dst}, {length} flits: {latency} cycles, model {expect}"
        await ClockCycles(tb.clk, 2)
    await tb.drain()


@cocotb.test()
async def class_isolation(dut):
    """A consumer refusing class 0 at one node (a memory waiting to send responses) does not
    stop class 1 anywhere: class 1 packets through and to that node are all delivered."""
    if block_params()["classes"] < 2:
        return
    blocked = 0
    tb = NoCTB(dut)
    await tb.reset()
    rng = random.Random(random.getrandbits(32))
    tb.sinks[blocked, 0].pause = iter(lambda: True, None)  # never ready
    for _ in range(15):
        for src in range(tb.nodes):
            tb.send(src, blocked, 0, _lengths(3, rng), rng)        # class 0 piles up
    for _ in range(15):
        for src in range(tb.nodes):
            dst = rng.choice([blocked, rng.randrange(tb.nodes)])
            tb.send(src, dst, 1, _lengths(3, rng), rng)
    tb.expecting = "class 1 packets"
    for n in range(tb.nodes):
        await tb.sinks[n, 1].wait_for(tb.expected_beats[n, 1])
    assert len(tb.sinks[blocked, 0].items) == 0
    tb.sinks[blocked, 0].pause = random_pause(0.3)
    await tb.drain()


@cocotb.test()
async def reset_mid_traffic(dut):
    """Reset while the mesh is full of traffic, then a fresh run is delivered exactly."""
    tb = NoCTB(dut, sink_stall=lambda: random_pause(0.5))
    await tb.reset()
    rng = random.Random(random.getrandbits(32))
    for _ in range(10):
        for src in range(tb.nodes):
            dst = pattern_dst("uniform", tb.model.cols, tb.model.rows, src, rng)
            tb.send(src, dst, rng.randrange(tb.classes), _lengths(4, rng), rng)
    await ClockCycles(tb.clk, 60)
    # Abandon that traffic and start over with a new scoreboard: the network must come out
    # of reset empty, with full credits and no VC held.
    tb.detach()
    await tb.reset(cycles=3)
    tb.attach()
    for _ in range(10):
        for src in range(tb.nodes):
            dst = pattern_dst("uniform", tb.model.cols, tb.model.rows, src, rng)
            tb.send(src, dst, rng.randrange(tb.classes), _lengths(4, rng), rng)
    await tb.drain()


# ---- hardware traffic generators ------------------------------------------------------------

STATS = ("offered", "queued", "delivered", "eject_flits", "lat_sum", "lat_max", "misrouted",
         "corrupt", "inject_flits", "dropped")


async def _read_stat(dut, node, sel):
    dut.stat_node.value = node
    dut.stat_sel.value = sel
    await Timer(1, unit="ns")
    return int(dut.stat_value.value)


async def run_generators(dut, *, traffic="uniform", rate=0.1, packet_flits=1, cycles=2000,
                         warmup=500, seed=1, drain_limit=100000):
    """Run the per-node generators and return the bench figures (see :func:`bench`)."""
    from scoville.hw.testbench.noc import HIST_BINS, hist_bin_range
    p = block_params()
    model = NoCModel(**p)
    n = model.nodes
    tb = TB(dut, stall="none", timeout=10 ** 9)
    dut.bench_mode.value = 1
    dut.bench_seed.value = seed & 0xFFFFFFFF
    dut.bench_pattern.value = PATTERNS.index(traffic)
    dut.bench_pflits.value = packet_flits
    dut.bench_rate.value = min(65536, round(rate / packet_flits * 65536))
    await tb.reset()
    dut.bench_load.value = 1
    await RisingEdge(dut.clk)
    dut.bench_load.value = 0
    dut.bench_gen.value = 1
    await ClockCycles(dut.clk, warmup)
    dut.bench_measure.value = 1
    await ClockCycles(dut.clk, cycles)
    dut.bench_measure.value = 0
    dut.bench_gen.value = 0
    drained = 0
    while drained < drain_limit:
        await ClockCycles(dut.clk, 100)
        drained += 100
        await RisingEdge(dut.clk)
        if int(dut.bench_outstanding.value) == 0:
            break
    totals = {s: 0 for s in STATS}
    hist = [0] * HIST_BINS
    for node in range(n):
        for k, s in enumerate(STATS):
            v = await _read_stat(dut, node, k)
            totals[s] = max(totals[s], v) if s == "lat_max" else totals[s] + v
        for b in range(HIST_BINS if p.get("histogram", True) else 0):
            hist[b] += await _read_stat(dut, node, 64 + b)
    delivered = totals["delivered"]
    p99 = None      # also without the histogram (`histogram=False`)
    if delivered and p.get("histogram", True):
        need, acc = math.ceil(0.99 * delivered), 0
        for b, count in enumerate(hist):
            acc += count
            if acc >= need:
                lo, hi = hist_bin_range(b)
                p99 = hi if hi is not None else totals["lat_max"]
                break
    return {
        "offered": round(totals["offered"] * packet_flits / (n * cycles), 4),
        "accepted": round(totals["eject_flits"] / (n * cycles), 4),
        "avg_latency": round(totals["lat_sum"] / delivered, 2) if delivered else None,
        "p99_latency": p99,
        "max_latency": totals["lat_max"],
        "zero_load_latency": round(model.bench_zero_load_latency(traffic, packet_flits), 2),
        "delivered": delivered,
        "lost": totals["queued"] - delivered,
        "misrouted": totals["misrouted"],
        "corrupt": totals["corrupt"],
        "dropped_at_source": totals["dropped"],
        "drain_cycles": drained,
        "traffic": traffic, "rate": rate, "packet_flits": packet_flits, "cycles": cycles,
    }


@cocotb.test()
async def bench(dut):
    """``scoville bench noc``: hardware traffic at the requested load; figures as JSON."""
    args = bench_args()
    result = await run_generators(
        dut, traffic=args.get("traffic", "uniform"), rate=float(args.get("rate", 0.1)),
        packet_flits=int(args.get("packet_flits", 1)), cycles=int(args.get("cycles", 10000)),
        warmup=int(args.get("warmup", 1000)), seed=int(args.get("traffic_seed", 1)))
    write_bench_result(result)
    assert result["lost"] == 0 and result["misrouted"] == 0 and result["corrupt"] == 0, result


@cocotb.test()
@cocotb.parametrize(pattern=list(PATTERNS))
async def bench_patterns(dut, pattern):
    """Generators at a load past saturation for each pattern, multi-flit packets: nothing lost,
    misrouted or corrupted, and the network drains (no deadlock)."""
    r = await run_generators(dut, traffic=pattern, rate=1.0, packet_flits=3, cycles=1500,
                             warmup=200, seed=random.getrandbits(32))
    dut._log.info(f"{pattern}: {r}")
    assert r["lost"] == 0 and r["misrouted"] == 0 and r["corrupt"] == 0, r
    assert r["delivered"] > 0, r


@cocotb.test()
async def bench_zero_load(dut):
    """At very low load the bench's average latency is the model's zero-load latency."""
    r = await run_generators(dut, traffic="uniform", rate=0.002, packet_flits=1, cycles=20000,
                             warmup=100, seed=random.getrandbits(32))
    dut._log.info(f"zero load: {r}")
    assert r["lost"] == 0 and r["misrouted"] == 0 and r["corrupt"] == 0, r
    assert abs(r["avg_latency"] - r["zero_load_latency"]) < 0.6, r
