"""cocotb tests of ``burst_splitter`` against a numpy model of the AXI4 burst split.

Requests are random byte ranges (short ones, ranges straddling a ``boundary``, exactly
``max_beats`` beats and one byte more, long multi-page ones, empty ones). Every burst is checked
against the model and, independently of it, against the AXI rules it must keep (no boundary
crossed, at most ``max_beats`` beats, the bursts of a request tile its beats in order).
"""

import random

import cocotb
import numpy as np
from amaranth.lib import data
from cocotb.triggers import ReadOnly, RisingEdge

from ..hw.burst import burst_layout, request_layout
from .tb import TB


def model_bursts(addr, length, *, beat_bytes, max_beats, boundary):
    """``[(addr, beats, first, last)]``: the beats the range touches, cut into runs that stay
    within one ``boundary``-sized page, each run cut into chunks of at most ``max_beats``."""
    if length == 0:
        return []
    beats = np.arange(addr // beat_bytes, (addr + length - 1) // beat_bytes + 1)
    page = beats * beat_bytes // boundary
    chunks = []
    for run in np.split(beats, np.flatnonzero(np.diff(page)) + 1):
        chunks += [run[k:k + max_beats] for k in range(0, len(run), max_beats)]
    return [(int(c[0]) * beat_bytes, len(c), k == 0, k == len(chunks) - 1) for k, c in enumerate(chunks)]


class BurstTB(TB):
    def __init__(self, dut, **kwargs):
        super().__init__(dut, **kwargs)
        p = self.params
        self.B, self.max_beats, self.boundary = p["data_width"] // 8, p["max_beats"], p["boundary"]
        self.req_layout = request_layout(addr_width=p["addr_width"], length_width=p["length_width"],
                                         user_width=p["user_width"])
        self.burst_layout = burst_layout(addr_width=p["addr_width"], max_beats=p["max_beats"],
                                         user_width=p["user_width"])

    def random_requests(self, count):
        """``[(addr, length, user)]`` mixing the cases that exercise each limit."""
        p, B, page, top = self.params, self.B, self.boundary, 1 << self.params["addr_width"]
        max_len = (1 << p["length_width"]) - 1
        longest = self.max_beats * B
        requests = []
        for _ in range(count):
            kind = random.choice(["short", "cross", "max", "max+1", "long", "empty"])
            if kind == "cross":      # starts just below a page boundary
                addr = random.randrange(1, top // page) * page - random.randint(1, 2 * B)
                length = random.randint(1, 4 * B)
            elif kind in ("max", "max+1"):   # exactly max_beats beats from an aligned start, or one byte more
                addr = random.randrange(0, top // (2 * longest)) * longest
                length = longest + (kind == "max+1")
            elif kind == "long":
                addr = random.randrange(0, top // 2)
                length = random.randint(1, 3 * page + 3 * longest)
            elif kind == "empty":
                addr, length = random.randrange(0, top // 2), 0
            else:
                addr, length = random.randrange(0, top // 2), random.randint(1, 3 * B)
            length = min(length, max_len, top - 1 - addr)
            requests.append((addr, length, random.getrandbits(p["user_width"]) if p["user_width"] else 0))
        return requests

    def pack(self, request):
        addr, length, user = request
        fields = {"addr": addr, "length": length, **({"user": user} if self.params["user_width"] else {})}
        return self.req_layout.const(fields).as_value().value

    def unpack(self, value):
        view = data.Const(self.burst_layout, value)
        user = int(view.user) if self.params["user_width"] else 0
        return int(view.addr), int(view.beats), bool(view.first), bool(view.last), user

    def expected(self, request):
        addr, length, user = request
        return [(*b, user) for b in model_bursts(addr, length, beat_bytes=self.B, max_beats=self.max_beats,
                                                 boundary=self.boundary)]

    def check_rules(self, request, bursts):
        """The AXI rules on one request's bursts, without the model."""
        addr, length, _ = request
        B = self.B
        cur = addr - addr % B
        for baddr, beats, *_ in bursts:
            assert baddr == cur, f"request {request}: burst at {baddr:#x}, expected {cur:#x} (gap or overlap)"
            assert 1 <= beats <= self.max_beats, f"request {request}: burst of {beats} beats"
            assert baddr // self.boundary == (baddr + beats * B - 1) // self.boundary, (
                f"request {request}: burst {baddr:#x}+{beats} beats crosses a {self.boundary}-byte boundary")
            cur += beats * B
        if length:
            assert cur == (addr + length - 1) // B * B + B, f"request {request}: bursts end at {cur:#x}"


async def _split(tb, requests):
    source, sink = tb.source(tb.stream("i")), tb.sink(tb.stream("o"))
    expected = [b for r in requests for b in tb.expected(r)]
    tb.expecting = "bursts"
    source.extend(tb.pack(r) for r in requests)
    await sink.wait_for(len(expected))
    await source.wait_idle()
    tb.expecting = None
    got = [tb.unpack(v) for v in sink.items]
    for k, (g, e) in enumerate(zip(got, expected)):
        assert g == e, f"burst {k}: got (addr, beats, first, last, user) {g}, expected {e}"
    at = 0
    for r in requests:
        n = len(tb.expected(r))
        tb.check_rules(r, got[at:at + n])
        at += n
    for _ in range(5):
        await RisingEdge(tb.clk)
        assert int(tb.dut.o_valid.value) == 0, "o_valid high with no burst left (extra burst)"


@cocotb.test()
@cocotb.parametrize(stall=["none", "periodic", "random"])
async def split_random(dut, stall):
    """Random requests under stalls on source and sink: every burst as the model says."""
    tb = BurstTB(dut, stall=stall)
    await tb.reset()
    await _split(tb, tb.random_requests(300))


class _Monitor:
    """Records the cycle of every request and burst transfer (and the flush input)."""

    def __init__(self, tb):
        self.tb, self.events = tb, []
        cocotb.start_soon(self._run())

    async def _run(self):
        dut = self.tb.dut
        while True:
            await RisingEdge(self.tb.clk)
            if int(dut.i_valid.value) and int(dut.i_ready.value):
                self.events.append((self.tb.cycle, "i", None))
            if int(dut.o_valid.value) and int(dut.o_ready.value):
                self.events.append((self.tb.cycle, "o", self.tb.unpack(int(dut.o_payload.value))))
            if int(dut.flush.value):
                self.events.append((self.tb.cycle, "flush", None))


@cocotb.test()
async def timing(dut):
    """No stalls: a request of k bursts takes exactly 2k + 1 cycles (first burst 2 cycles after
    the request, one burst per 2 cycles, the next request the cycle after the last burst)."""
    tb = BurstTB(dut, stall="none")
    await tb.reset()
    monitor = _Monitor(tb)
    requests = tb.random_requests(100)
    await _split(tb, requests)
    takes = [c for c, kind, _ in monitor.events if kind == "i"]
    fires = [c for c, kind, _ in monitor.events if kind == "o"]
    counts = [len(tb.expected(r)) for r in requests]
    at = 0
    for k, (take, n) in enumerate(zip(takes, counts)):
        mine = fires[at:at + n]
        assert mine == [take + 2 * (q + 1) for q in range(n)], (
            f"request {k} taken at cycle {take}: bursts at {mine}, expected every 2 cycles from {take + 2}")
        if k + 1 < len(takes):
            assert takes[k + 1] == take + 2 * n + 1, (
                f"request {k + 1} taken at {takes[k + 1]}, expected {take + 2 * n + 1}")
        at += n
    assert len(takes) == len(requests) and len(fires) == sum(counts)
    assert takes[-1] - takes[0] == sum(2 * n + 1 for n in counts[:-1]), "2k + 1 cycles per request"


@cocotb.test()
async def flush(dut):
    """Random one-cycle flushes: no burst in a flush cycle, each request's bursts are a prefix
    of the model's, and a request no flush touched is complete. (``o`` has no protocol checker
    here: flush drops ``o.valid`` without a transfer by design.)"""
    tb = BurstTB(dut, stall="random")
    await tb.reset()
    monitor = _Monitor(tb)
    source = tb.source(tb.stream("i"))
    sink = _ReadySink(tb)
    requests = tb.random_requests(200)
    source.extend(tb.pack(r) for r in requests)
    tb.expecting = "requests"
    while source.busy:
        await RisingEdge(tb.clk)
        dut.flush.value = int(random.random() < 0.02)
    await RisingEdge(tb.clk)
    dut.flush.value = 0
    while not int(dut.i_ready.value):    # the last request runs to its end (watchdog-guarded)
        await RisingEdge(tb.clk)
    tb.expecting = None
    sink.stop()
    per_request, flushed, current = [[] for _ in requests], [False] * len(requests), -1
    flush_cycles = {c for c, kind, _ in monitor.events if kind == "flush"}
    for cycle, kind, burst in monitor.events:
        if kind == "i":
            current += 1
        elif kind == "o":
            assert cycle not in flush_cycles, f"burst {burst} transferred at cycle {cycle} with flush high"
            assert current >= 0 and not flushed[current], f"burst {burst} after its request was flushed"
            per_request[current].append(burst)
        elif current >= 0 and len(per_request[current]) < len(tb.expected(requests[current])):
            flushed[current] = True   # (a flush between requests touches none)
    assert current == len(requests) - 1
    complete = 0
    for k, (r, got) in enumerate(zip(requests, per_request)):
        want = tb.expected(r)
        assert got == want[:len(got)], f"request {k} {r}: bursts {got} are not a prefix of {want}"
        if not flushed[k]:
            assert got == want, f"request {k} {r} (never flushed): bursts {got}, expected {want}"
            complete += 1
    assert complete > len(requests) // 2, f"only {complete} requests ran without a flush"


class _ReadySink:
    """``o.ready`` from a random pause pattern, no protocol checker (see ``flush``)."""

    def __init__(self, tb):
        self.tb, self.running = tb, True
        cocotb.start_soon(self._run())

    async def _run(self):
        while self.running:
            await RisingEdge(self.tb.clk)
            if int(self.tb.dut.o_valid.value) and int(self.tb.dut.o_ready.value):
                self.tb.watchdog.kick()
            self.tb.dut.o_ready.value = int(random.random() < 0.7)

    def stop(self):
        self.running = False
