"""cocotb tests of one ``noc_router`` (interior router (1, 1) of a 3x3 mesh).

The testbench plays the five upstream senders (holding credits, interleaving VCs flit by flit)
and the five downstream receivers (buffers of ``buffer`` flits per VC that drain after random
delays and return credits). It checks, per output link: the router never sends into a full
VC (credits right), every flit of a packet goes to the port the routing function names, on the
VC it came in on, flits of two packets never interleave on one output VC (wormhole), and every
(input, VC, output) flow arrives intact and in order; at the end every credit is back.
"""

import collections
import random

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from amaranth.hdl import unsigned
from amaranth.lib import data

from scoville.hw.noc.flit import dest_layout, flit_layout
from scoville.hw.noc.router import route_port, turn_allowed
from .noc_model import fit_layout
from .tb import TB


X, Y, COLS, ROWS = 1, 1, 3, 3
DESTS = [(x, y) for x in range(COLS) for y in range(ROWS)]


class RouterTB(TB):
    def __init__(self, dut, *, drain_delay=3, send_idle=0.2):
        super().__init__(dut, stall="none", timeout=2000)
        p = self.params
        self.v, self.b, self.w, self.routing = p["vcs"], p["buffer"], p["flit_width"], p["routing"]
        self.flit_layout = flit_layout(self.w, self.v)
        # Test head: routing header, input port of the packet, 8-bit sequence, filler.
        self.head_layout = fit_layout([("dst", dest_layout(COLS, ROWS)), ("src_port", unsigned(3)),
                                       ("seq", unsigned(8))], self.w)
        self.drain_delay, self.send_idle = drain_delay, send_idle
        self.queues = {(i, v): collections.deque() for i in range(5) for v in range(self.v)}
        self.credits = {(i, v): self.b for i in range(5) for v in range(self.v)}
        self.expected = collections.defaultdict(collections.deque)   # (in, vc, out) -> packets
        self.occupancy = {(o, v): 0 for o in range(5) for v in range(self.v)}
        self.open = {}          # (out, vc) -> [in, flits so far] of the packet being received
        self.pending = 0
        self.rng = random.Random(random.getrandbits(32))
        cocotb.start_soon(self._senders())
        cocotb.start_soon(self._receivers())

    def flit(self, payload, head, tail, vc):
        return self.flit_layout.const({"data": payload, "head": head, "tail": tail, "vc": vc}).as_bits()

    def src_port(self, payload):
        """The input port a head flit's ``data`` names (:attr:`head_layout`)."""
        return data.Const(self.head_layout, payload).src_port

    def packet(self, src_port, vc, dst, length, seq):
        dx, dy = dst
        layout = self.head_layout
        fields = {name: value & ((1 << layout[name].width) - 1)
                  for name, value in (("src_port", src_port), ("seq", seq)) if name in layout.members}
        if "filler" in layout.members:
            fields["filler"] = self.rng.getrandbits(layout["filler"].width)
        head = layout.const({"dst": {"x": dx, "y": dy}, **fields}).as_bits()
        words = [head] + [self.rng.getrandbits(self.w) for _ in range(length - 1)]
        out = route_port(self.routing, X, Y, dx, dy)
        self.expected[src_port, vc, out].append(words)
        for k, d in enumerate(words):
            self.queues[src_port, vc].append((d, k == 0, k == length - 1))
        self.pending += 1

    async def _senders(self):
        while True:
            await RisingEdge(self.clk)
            if int(self.rst.value):
                continue  # registers are X on Icarus until the first reset edge
            for i in range(5):
                credit = int(getattr(self.dut, f"i_{i}_credit").value)
                for v in range(self.v):
                    if credit >> v & 1:
                        self.credits[i, v] += 1
                        assert self.credits[i, v] <= self.b, f"input {i} VC {v}: credit beyond {self.b}"
                ready = [v for v in range(self.v) if self.queues[i, v] and self.credits[i, v] > 0]
                valid = getattr(self.dut, f"i_{i}_valid")
                if ready and self.rng.random() >= self.send_idle:
                    v = self.rng.choice(ready)
                    d, h, t = self.queues[i, v].popleft()
                    self.credits[i, v] -= 1
                    getattr(self.dut, f"i_{i}_flit").value = self.flit(d, int(h), int(t), v)
                    valid.value = 1
                else:
                    valid.value = 0

    async def _receivers(self):
        returns = {(o, v): collections.deque() for o in range(5) for v in range(self.v)}
        cycle = 0
        while True:
            await RisingEdge(self.clk)
            cycle += 1
            if int(self.rst.value):
                continue
            for o in range(5):
                if int(getattr(self.dut, f"o_{o}_valid").value):
                    f = int(getattr(self.dut, f"o_{o}_flit").value)
                    self._receive(o, f)
                    vc = data.Const(self.flit_layout, f).vc
                    returns[o, vc].append(cycle + self.rng.randint(1, self.drain_delay))
                bits = 0
                for v in range(self.v):
                    q = returns[o, v]
                    if q and q[0] <= cycle:  # one flit leaves a downstream VC buffer per cycle
                        q.popleft()
                        self.occupancy[o, v] -= 1
                        bits |= 1 << v
                getattr(self.dut, f"o_{o}_credit").value = bits

    def _receive(self, o, f):
        self.watchdog.kick()
        flit = data.Const(self.flit_layout, f)
        payload, head, tail, vc = flit.data, flit.head, flit.tail, flit.vc
        assert vc < self.v, f"output {o}: VC {vc} does not exist"
        self.occupancy[o, vc] += 1
        assert self.occupancy[o, vc] <= self.b, \
            f"output {o} VC {vc}: flit sent without a credit (downstream buffer of {self.b} overflows)"
        key = (o, vc)
        if head:
            assert key not in self.open, f"output {o} VC {vc}: a head interleaves another packet"
            src = self.src_port(payload)
            self.open[key] = [src, []]
        assert key in self.open, f"output {o} VC {vc}: body flit without a head"
        src, flits = self.open[key]
        flits.append(payload)
        if tail:
            del self.open[key]
            queue = self.expected[src, vc, o]
            assert queue, f"output {o} VC {vc}: packet from input {src} not expected here " \
                          f"(misrouted, duplicated or VC changed)"
            expect = queue.popleft()
            assert flits == expect, f"output {o} VC {vc}: packet from input {src} differs " \
                                    f"from the next of its flow (corrupt or out of order)"
            self.pending -= 1

    async def finish(self):
        self.expecting = "packets through the router"
        while self.pending:
            await RisingEdge(self.clk)
        await ClockCycles(self.clk, 3 * self.drain_delay + 10)
        assert all(c == self.b for c in self.credits.values()), f"credits not all back: {self.credits}"
        assert not self.open
        self.expecting = None


@cocotb.test()
@cocotb.parametrize(drain_delay=[1, 6])
async def random_traffic(dut, drain_delay):
    """Random packets from every input VC to every destination, slow and fast downstream."""
    tb = RouterTB(dut, drain_delay=drain_delay)
    await tb.reset()
    seq = collections.Counter()
    for _ in range(400):
        i, v = tb.rng.randrange(5), tb.rng.randrange(tb.v)
        # Only destinations dimension-order routing can ask for from this input (the router
        # has no crossbar path for the other turns).
        dst = tb.rng.choice([d for d in DESTS
                             if turn_allowed(tb.routing, i, route_port(tb.routing, X, Y, *d))])
        tb.packet(i, v, dst, tb.rng.randint(1, 5), seq[i, v])
        seq[i, v] += 1
    await tb.finish()


@cocotb.test()
async def full_rate(dut):
    """One flow per input, each to a different output, no stalls: one flit per cycle on every
    output (the single-cycle allocation keeps all five links busy)."""
    tb = RouterTB(dut, drain_delay=1, send_idle=0.0)
    await tb.reset()
    # input -> destination giving a permutation of outputs (local, east, west, north, south)
    # (only straight-on paths and local ones: legal under XY and YX alike)
    plan = {0: (1, 2), 1: (0, 1), 2: (2, 1), 3: (1, 0), 4: (1, 1)}
    flits = 200
    for i, dst in plan.items():
        for k in range(flits // 4):
            tb.packet(i, 0, dst, 4, k)
    start = tb.cycle
    await tb.finish()
    cycles = tb.cycle - start
    # This testbench's downstream returns a credit 4 cycles after the flit left the router
    # (one more than a neighbouring router), so with buffer < 4 the credits, not the router,
    # bound the rate at buffer/4 flits per cycle.
    rate = min(1.0, tb.b / 4)
    bound = flits / rate + 3 * tb.drain_delay + 20
    assert cycles <= bound, f"{cycles} cycles for {flits} flits per output (bound {bound:.0f})"


@cocotb.test()
async def fairness(dut):
    """Four inputs stream into one output (north under XY, east under YX): each gets its
    share (round robin, no starvation)."""
    tb = RouterTB(dut, drain_delay=1, send_idle=0.0)
    await tb.reset()
    got = collections.Counter()
    target, target_port, inputs = (((1, 2), 3, (0, 1, 2, 4)) if tb.routing == "xy"
                                   else ((2, 1), 1, (0, 2, 3, 4)))
    original = tb._receive

    def counting(o, f):
        if o == target_port:
            flit = data.Const(tb.flit_layout, f)
            got[tb.src_port(flit.data) if flit.head else -1] += 1
        original(o, f)
    tb._receive = counting
    for i in inputs:
        for k in range(60):
            tb.packet(i, k % tb.v, target, 1, k)
    await ClockCycles(tb.clk, 120)
    shares = [got[i] for i in inputs]
    assert max(shares) - min(shares) <= 2 and min(shares) >= 15, \
        f"heads per input into output {target_port} over 120 cycles: {shares} (not round robin)"
    await tb.finish()
