"""cocotb tests of the ``hbm`` block: controller + behavioural device, checked by the independent
model of ``verif/hbm_model.py`` on every command and against a numpy memory on every byte."""

import collections
import json
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from scoville.hw.axi import Resp
from scoville.hw.hbm.controller import ATOM_BITS, ATOM_SIZE, HBMController
from scoville.hw.hbm.timing import HBMParams

from .hbm_model import HBMChannelModel, model_timing
from .stream import axi_channel_buses
from .tb import TB, bench_args, block_params, block_ports, write_bench_result
from .trace import parse_trace


ATOM = ATOM_BITS // 8
DECERR, SLVERR, OKAY = Resp.DECERR, Resp.SLVERR, Resp.OKAY
_GOLDEN = {}


def channel_ports(params):
    """``[(monitor prefix, stats prefix)]`` per pseudo-channel: ``hbm`` has ``mon_*``/``stats_*``,
    ``hbm_stack`` ``mon<k>_*``/``stats<k>_*``."""
    if "channels" not in params:
        return [("mon", "stats")]
    return [(f"mon{k}", f"stats{k}") for k in range(params["channels"])]


def channel_stat(dut, params, name):
    """Counter ``name`` (``reads``, ``refreshes``, ...) summed over the pseudo-channels."""
    return sum(int(getattr(dut, f"{stats}_{name}").value) for _, stats in channel_ports(params))


def capacity(params):
    """Bytes of the device (of all pseudo-channels for ``hbm_stack``)."""
    t = model_timing(params)
    return t["BG"] * t["BA"] * t["ROWS"] * t["COLS"] * ATOM * params.get("channels", 1)


def expected_resp(params, size_bytes, addr, length, size, burst):
    """The response the block owes a burst (same for every beat)."""
    if size != ATOM_SIZE or burst != 1:
        return SLVERR
    return OKAY if (addr // ATOM + length + 1) * ATOM <= size_bytes else DECERR


def to_int(buf):
    return int.from_bytes(bytes(buf), "little")


def from_int(value):
    return np.frombuffer(value.to_bytes(ATOM, "little"), dtype=np.uint8)


class HBMTB(TB):
    """TB plus an AXI4 manager built from checked stream drivers, a numpy golden memory and the
    independent channel model. Reads/writes are issued only when they do not overlap an
    outstanding access in a way AXI leaves unordered (read vs. un-acknowledged write, write vs.
    outstanding read), so every returned byte has exactly one correct value."""

    def __init__(self, dut, *, stall="random", timeout=4000, strict=True, timing_check=True):
        super().__init__(dut, stall=stall, timeout=timeout)
        self.timing = model_timing(self.params)
        self.size = capacity(self.params)
        # The device memory survives between tests of one simulator run: so does the golden copy.
        self.golden = _GOLDEN.setdefault("mem", np.zeros(self.size, dtype=np.uint8))
        self.models = [HBMChannelModel(dut, self.timing, prefix=mon, strict=strict, log=dut._log)
                       for mon, _ in channel_ports(self.params)] if timing_check else []
        self.model = self.models[0] if self.models else None
        self._tasks = []
        self.ar_order = collections.deque()  # per read in AR order: [AR handshake cycle]
        self._make_drivers()
        self.rexp = collections.defaultdict(collections.deque)  # id -> beats (data bytes|None, resp, last, meta)
        self.bexp = collections.defaultdict(collections.deque)  # id -> (resp, atoms)
        self.reading = collections.Counter()   # atom -> outstanding read beats
        self.writing = collections.Counter()   # atom -> un-acknowledged write beats
        self.latencies = []  # per read burst: AR handshake to its last R handshake, cycles
        self.errors = []
        self.r_seen = 0
        self.b_seen = 0
        self.reads_issued = 0
        self.writes_issued = 0

    def _make_drivers(self):
        buses = axi_channel_buses(self.dut, "s_axi")
        self.ar, self.aw, self.w = self.source(buses["ar"]), self.source(buses["aw"]), self.source(buses["w"])
        self.r, self.b = self.sink(buses["r"]), self.sink(buses["b"])
        self.r_seen = self.b_seen = 0
        self.ar_order.clear()
        self._tasks = [cocotb.start_soon(self._check_r()), cocotb.start_soon(self._check_b()),
                       cocotb.start_soon(self._watch_ar())]

    async def reset_abandoning_traffic(self, cycles=3):
        """Reset with traffic in flight: the manager abandons every transaction (new drivers),
        and nothing outstanding is expected any more."""
        self.rst.value = 1
        await RisingEdge(self.clk)
        for task in self._tasks:
            task.cancel()
        for drv in (self.ar, self.aw, self.w, self.r, self.b):
            drv.stop()
            self._drivers.remove(drv)
        for q in list(self.rexp.values()) + list(self.bexp.values()):
            q.clear()
        self.reading.clear()
        self.writing.clear()
        self._make_drivers()
        await ClockCycles(self.clk, cycles)
        self.rst.value = 0
        await RisingEdge(self.clk)

    def _pending(self):
        busy = super()._pending()
        if busy:
            return busy
        outstanding = sum(len(q) for q in self.rexp.values()) + sum(len(q) for q in self.bexp.values())
        return f"{outstanding} outstanding AXI responses" if outstanding else None

    # ------------------------------------------------------------------ issuing
    def atoms_of(self, addr, length):
        first = addr // ATOM
        return [first + k for k in range(length + 1)]

    def can_read(self, addr, length):
        return not any(self.writing[a] for a in self.atoms_of(addr, length))

    def can_write(self, addr, length):
        return not any(self.reading[a] or self.writing[a] for a in self.atoms_of(addr, length))

    def read(self, addr, length=0, ident=0, size=ATOM_SIZE, burst=1):
        atoms = self.atoms_of(addr, length)
        resp = expected_resp(self.params, self.size, addr, length, size, burst)
        handshake = [None]  # filled in by _watch_ar
        self.ar_order.append(handshake)
        for k, a in enumerate(atoms):
            data = bytes(self.golden[a * ATOM:(a + 1) * ATOM]) if resp == OKAY else bytes(ATOM)
            self.rexp[ident].append((data, resp, k == length, (addr, k, handshake, a)))
            if resp == OKAY:
                self.reading[a] += 1
        self.ar.send_nowait({"id": ident, "addr": addr, "len": length, "size": size, "burst": burst})
        self.reads_issued += 1

    def write(self, addr, datas, strbs=None, ident=0, size=ATOM_SIZE, burst=1):
        length = len(datas) - 1
        atoms = self.atoms_of(addr, length)
        resp = expected_resp(self.params, self.size, addr, length, size, burst)
        strbs = strbs or [(1 << ATOM) - 1] * len(datas)
        for a, data, strb in zip(atoms, datas, strbs):
            if resp == OKAY:
                mask = np.array([(strb >> k) & 1 for k in range(ATOM)], dtype=bool)
                row = self.golden[a * ATOM:(a + 1) * ATOM]
                row[mask] = from_int(data)[mask]
                self.writing[a] += 1
        self.bexp[ident].append((resp, atoms if resp == OKAY else []))
        self.aw.send_nowait({"id": ident, "addr": addr, "len": length, "size": size, "burst": burst})
        for k, (data, strb) in enumerate(zip(datas, strbs)):
            self.w.send_nowait({"data": data, "strb": strb, "last": int(k == length)})
        self.writes_issued += 1

    # ------------------------------------------------------------------ checking
    async def _watch_ar(self):
        """Stamp each read with its AR handshake cycle (the AR source sends in issue order)."""
        sent = self.ar.sent
        while True:
            await RisingEdge(self.clk)
            while sent != self.ar.sent:
                sent += 1
                self.ar_order.popleft()[0] = self.cycle

    async def _check_r(self):
        while True:
            await self.r.wait_for(self.r_seen + 1)
            while self.r_seen < len(self.r.items):
                beat = self.r.items[self.r_seen]
                self.r_seen += 1
                ident = beat["id"]
                if not self.rexp[ident]:
                    self._error(f"R beat for ID {ident} with no read outstanding: {beat}")
                    continue
                data, resp, last, (addr, k, issued, atom) = self.rexp[ident].popleft()
                where = f"read ID {ident} addr {addr:#x} beat {k} (atom {atom:#x})"
                if beat["resp"] != resp:
                    self._error(f"{where}: RRESP {beat['resp']} expected {resp}")
                if beat["last"] != int(last):
                    self._error(f"{where}: RLAST {beat['last']} expected {int(last)}")
                got = beat["data"].to_bytes(ATOM, "little")
                if got != data:
                    bad = [i for i in range(ATOM) if got[i] != data[i]]
                    self._error(f"{where}: {len(bad)} byte(s) differ, first at byte {bad[0]}: "
                                f"got {got[bad[0]]:#04x} expected {data[bad[0]]:#04x}")
                if resp == OKAY:
                    self.reading[atom] -= 1
                if last:
                    self.latencies.append(self.cycle - issued[0])

    async def _check_b(self):
        while True:
            await self.b.wait_for(self.b_seen + 1)
            while self.b_seen < len(self.b.items):
                beat = self.b.items[self.b_seen]
                self.b_seen += 1
                ident = beat["id"]
                if not self.bexp[ident]:
                    self._error(f"B for ID {ident} with no write outstanding")
                    continue
                resp, atoms = self.bexp[ident].popleft()
                if beat["resp"] != resp:
                    self._error(f"write ID {ident}: BRESP {beat['resp']} expected {resp}")
                for a in atoms:
                    self.writing[a] -= 1

    def _error(self, text):
        self.errors.append(text)
        self.dut._log.error(text)
        raise AssertionError(text)

    def outstanding(self):
        return sum(len(q) for q in self.rexp.values()) + sum(len(q) for q in self.bexp.values())

    async def drain(self, limit=200000):
        start = self.cycle
        while self.outstanding() or self.ar.busy or self.aw.busy or self.w.busy:
            await RisingEdge(self.clk)
            assert self.cycle - start < limit, f"responses still outstanding after {limit} cycles"
        # Writes are posted (B when queued): wait until the write queues are empty too, or a
        # reset (the next test's) would discard writes the golden memory already holds.
        while any(int(getattr(self.dut, f"{stats}_wq_level").value) for _, stats in channel_ports(self.params)):
            await RisingEdge(self.clk)
            assert self.cycle - start < limit, f"write queue not drained after {limit} cycles"

    async def sweep(self, lo=0, hi=None):
        """Read back [lo, hi) in 8-beat bursts and compare every byte with the golden memory."""
        hi = self.size if hi is None else hi
        for addr in range(lo, hi, 8 * ATOM):
            self.read(addr, min(8, (hi - addr) // ATOM) - 1, ident=random.randrange(4))
            while self.outstanding() > 64:
                await RisingEdge(self.clk)
        await self.drain()

    def finish_checks(self):
        assert not self.errors, self.errors[0]
        for model in self.models:
            assert not model.violations, model.violations[0]
            assert model.data_errors == 0

    def latency_summary(self):
        """``{min, mean, p99, max}`` of the read latencies (AR to last R handshake), or None."""
        if not self.latencies:
            return None
        lat = np.array(self.latencies)
        return {"min": int(lat.min()), "mean": round(float(lat.mean()), 2),
                "p99": float(np.percentile(lat, 99)), "max": int(lat.max())}


def controller_of(params):
    """The :class:`HBMController` the ``hbm`` block was elaborated with (for its stated bounds)."""
    names = set(HBMParams.__dataclass_fields__)
    return HBMController(params=HBMParams(**{k: v for k, v in params.items() if k in names}))


def random_data():
    return random.getrandbits(ATOM * 8)


async def random_traffic(tb, count, *, region=None, max_len=7, write_frac=0.5, ids=4, outstanding=48):
    """``count`` random INCR bursts over ``region`` (bytes), respecting the ordering rules."""
    region = region or tb.size
    issued = 0
    while issued < count:
        length = random.randrange(max_len + 1)
        addr = random.randrange(0, region // ATOM - length) * ATOM
        ident = random.randrange(ids)
        if tb.outstanding() >= outstanding:
            await RisingEdge(tb.clk)
            continue
        if random.random() < write_frac:
            if not tb.can_write(addr, length):
                await RisingEdge(tb.clk)
                continue
            strbs = [random.choice([(1 << ATOM) - 1, random.getrandbits(ATOM)]) for _ in range(length + 1)]
            tb.write(addr, [random_data() for _ in range(length + 1)], strbs, ident=ident)
        else:
            if not tb.can_read(addr, length):
                await RisingEdge(tb.clk)
                continue
            tb.read(addr, length, ident=ident)
        issued += 1
        if random.random() < 0.5:
            await RisingEdge(tb.clk)


@cocotb.test()
@cocotb.parametrize(stall=["none", "random"])
async def random_mix(dut, stall):
    """Random reads/writes (bursts 1-8, strobes, 4 IDs) over the whole device, every byte
    compared, zero timing violations, then a full read-back."""
    tb = HBMTB(dut, stall=stall)
    await tb.reset()
    await random_traffic(tb, 600 if stall == "none" else 400)
    await tb.drain()
    await tb.sweep()
    tb.finish_checks()
    dut._log.info(f"commands {tb.model.counts}, cycles {tb.cycle}")


@cocotb.test()
async def short_mix(dut):
    """A short random mix over 16 KiB with stalls, then its read-back (for slow simulators)."""
    tb = HBMTB(dut, stall="random")
    await tb.reset()
    await random_traffic(tb, 60, region=16 * 1024, max_len=3)
    await tb.drain()
    await tb.sweep(0, 16 * 1024)
    tb.finish_checks()


@cocotb.test()
async def hot_rows(dut):
    """Heavy traffic on a few rows of few banks: row hits, conflicts, read-after-write, write
    draining, all checked."""
    tb = HBMTB(dut, stall="random")
    await tb.reset()
    # Two rows of each of two banks (with the default ro_ba_co_bg map: 4 KiB per bank-row set).
    await random_traffic(tb, 800, region=16 * 1024, max_len=3, write_frac=0.6)
    await tb.drain()
    await tb.sweep(0, 16 * 1024)
    tb.finish_checks()


@cocotb.test()
async def read_after_write(dut):
    """A read issued right after each write's B sees the write (the write is still queued)."""
    tb = HBMTB(dut, stall="none")
    await tb.reset()
    for n in range(100):
        addr = random.randrange(0, 4096 // ATOM) * ATOM
        tb.write(addr, [random_data()], ident=1)
        await tb.drain()
        tb.read(addr, 0, ident=2)
        await tb.drain()
    tb.finish_checks()


@cocotb.test()
async def bad_addresses(dut):
    """Bursts reaching beyond the device get DECERR, unsupported kinds SLVERR; nothing is written."""
    tb = HBMTB(dut, stall="random")
    await tb.reset()
    top = tb.size
    tb.write(top - ATOM, [random_data(), random_data()], ident=1)        # crosses the end
    tb.write(top, [random_data()], ident=2)                              # beyond the end
    tb.write((1 << 31), [random_data()] * 4, ident=3)                    # far beyond
    tb.write(0, [random_data()] * 2, ident=1, burst=2)                   # WRAP: SLVERR
    tb.write(64, [random_data()], ident=1, size=4)                       # narrow: SLVERR
    tb.read(top - 2 * ATOM, 3, ident=0)
    tb.read(1 << 30, 0, ident=1)
    tb.read(0, 1, ident=2, burst=0)
    # Not errors: an unaligned start inside the last atom of a 1 KiB block (the stack's granule
    # by default); the burst's beats are whole atoms from the one holding the address.
    tb.read(1024 - ATOM + 8, 0, ident=3)
    tb.read(2048 - 2 * ATOM + 1, 1, ident=3)
    await tb.drain()
    await tb.sweep(0, 4096)
    await tb.sweep(top - 4096, top)
    tb.finish_checks()
    writes = sum(model.counts["WR"] for model in tb.models)
    assert writes == 0, f"{writes} WR commands for rejected writes"


@cocotb.test()
async def idle_latency(dut):
    """Idle row-hit read latency (AR handshake to R handshake) <= CL + burst + 3."""
    tb = HBMTB(dut, stall="none")
    await tb.reset()
    t = tb.timing
    events = {"ar": [], "r": []}

    async def watch():
        while True:
            await RisingEdge(dut.clk)
            if int(dut.s_axi_arvalid.value) and int(dut.s_axi_arready.value):
                events["ar"].append(tb.cycle)
            if int(dut.s_axi_rvalid.value) and int(dut.s_axi_rready.value):
                events["r"].append(tb.cycle)
    cocotb.start_soon(watch())
    for n in range(20):
        tb.read(ATOM * 4 * (n % 4), 0)  # one bank, one row: after the first, every read is a row hit
        await tb.drain()
        await ClockCycles(dut.clk, 20)
    lat = [r - a for a, r in zip(events["ar"], events["r"])]
    bound = t["CL"] + t["BL"] + 3
    # Latency: cycles from the AR handshake edge to the R handshake edge.
    hits = lat[1:]
    dut._log.info(f"idle read latencies {lat}, bound {bound}")
    assert max(hits) <= bound, f"idle row-hit latency {max(hits)} > CL + burst + 3 = {bound}"
    tb.finish_checks()
    write_bench_result({"idle_row_hit_latency": max(hits)})


@cocotb.test()
async def bounded_wait(dut):
    """Adversarial row conflicts: a stream of row hits to one bank and reads of another row of the
    same bank; every read completes within the controller's stated wait bound + CL + pipeline."""
    tb = HBMTB(dut, stall="none", timeout=20000)
    await tb.reset()
    p, t = tb.params, tb.timing
    row_bytes = t["BG"] * t["BA"] * t["COLS"] * ATOM  # with ro_ba_co_bg, row r of bank 0 starts here
    victims = 0
    for n in range(3000):
        if n % 200 == 100:
            tb.read(row_bytes * 3, 0, ident=1)  # bank 0, another row: a conflict
            victims += 1
        else:
            tb.read(ATOM * 4 * (n % 8), 0, ident=0)  # bank 0 (bank group 0), row 0: hits
        while tb.outstanding() > 40:
            await RisingEdge(tb.clk)
    await tb.drain()
    # The controller's stated bound, AR handshake to R handshake; + 1 because this testbench's
    # cycle counter and its AR/R monitors wake on the same clock edge in no fixed order.
    bound = controller_of(p).read_latency_bound + 1
    worst = max(tb.latencies)
    dut._log.info(f"bounded_wait: worst latency {worst}, bound {bound}, {victims} conflicting reads")
    assert worst <= bound, f"a read waited {worst} cycles > bound {bound}"
    tb.finish_checks()


@cocotb.test()
async def refresh_rate(dut):
    """Refresh keeps up under load and idle: the model checks each deadline; the count matches."""
    tb = HBMTB(dut, stall="none", timeout=20000)
    await tb.reset()
    t = tb.timing
    start = tb.cycle
    await random_traffic(tb, 300, write_frac=0.3)
    await tb.drain()
    await ClockCycles(dut.clk, 2 * t["tREFI"])
    await random_traffic(tb, 300, write_frac=0.3)
    await tb.drain()
    elapsed = tb.cycle - start
    if t["PER_BANK"]:
        command, other, banks = "REFPB", "REF", t["BG"] * t["BA"]
        interval, postpone = t["tREFI"] // banks, t["POSTPONE"] * banks
    else:
        command, other, interval, postpone = "REF", "REFPB", t["tREFI"], t["POSTPONE"]
    for model, (mon, stats) in zip(tb.models, channel_ports(tb.params)):
        refs = model.counts[command]
        assert model.counts[other] == 0, f"{mon}: {model.counts[other]} {other} in {command} mode"
        assert refs >= elapsed // interval - postpone, f"{mon}: {refs} {command} in {elapsed} cycles"
        assert refs <= elapsed // interval + 1, f"{mon}: {refs} {command} in {elapsed} cycles: too many"
        assert int(getattr(dut, f"{stats}_refreshes").value) == refs, f"{stats}_refreshes != {refs}"
    tb.finish_checks()


@cocotb.test()
async def reset_mid_traffic(dut):
    """Reset with reads and writes in flight, then fresh traffic is served and checked."""
    tb = HBMTB(dut, stall="random")
    await tb.reset()
    await random_traffic(tb, 150, region=32 * 1024)
    await ClockCycles(dut.clk, 30)
    await tb.reset_abandoning_traffic()
    # Writes in flight at reset may or may not have landed: rewrite the region before checking it.
    for addr in range(0, 32 * 1024, 8 * ATOM):
        tb.write(addr, [random_data() for _ in range(8)], ident=addr // 256 % 4)
        while tb.outstanding() > 32:
            await RisingEdge(tb.clk)
    await tb.drain()
    await random_traffic(tb, 200, region=32 * 1024)
    await tb.drain()
    await tb.sweep(0, 32 * 1024)
    tb.finish_checks()


# ---------------------------------------------------------------------- bench
PATTERNS = {"seq": 0, "random": 1, "strided": 2, "mixed": 3}


@cocotb.test()
async def bench(dut):
    """``scoville bench hbm`` / ``hbm_stack``: the hardware traffic generator drives the
    controller (the stack's AXI port); Python only runs the independent timing model of each
    pseudo-channel (``--timing-check``) and reads the counters at the end.

    Bounds, for ``N`` pseudo-channels (1 for ``hbm``): peak ``N * 32 B / burst`` per cycle;
    refresh-limited ceiling ``1 - (tRTP + tRP + tRFC + tRCD_RD) / tREFI`` of the peak;
    activation bound ``N * min(1/tRRD_S, 4/tFAW) * 32 B * ceiling`` per cycle. The stack's one
    AXI port also carries at most one 32-byte beat per cycle per direction (``port_bound``)."""
    args = bench_args()
    pattern = args.get("pattern", "seq")
    requests = int(args.get("requests", 20000))
    trace = args.get("trace")
    params = block_params()
    t = model_timing(params)
    channels = channel_ports(params)
    if trace:
        tb = HBMTB(dut, stall="none", timeout=100000, strict=False,
                   timing_check=args.get("timing_check", True))
        await tb.reset()
        models = tb.models
    else:
        # No TB: its cycle counter and watchdog would be two more Python wake-ups per cycle.
        for port, info in block_ports().items():
            if info["direction"] == "in" and port != "clk":
                getattr(dut, port).value = 0
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        dut.rst.value = 1
        await ClockCycles(dut.clk, 2)
        dut.rst.value = 0
        await RisingEdge(dut.clk)
        models = [HBMChannelModel(dut, t, prefix=mon, strict=False, log=dut._log) for mon, _ in channels] \
            if args.get("timing_check", True) else []
    if trace:
        result = await _replay_trace(tb, trace)
    else:
        dut.tg_pattern.value = PATTERNS[pattern]
        dut.tg_requests.value = requests
        dut.tg_stride.value = int(args.get("stride", 33))
        dut.tg_seed.value = 0x1234567 + (int(os.environ.get("COCOTB_RANDOM_SEED", "1")) & 0xFFFF)
        dut.tg_wr_ratio.value = int(args.get("write_ratio", 0))
        dut.tg_start.value = 1
        await RisingEdge(dut.clk)
        limit = 64 * requests + 100000
        waited = 0
        while not int(dut.tg_done.value):
            await ClockCycles(dut.clk, 1024)
            waited += 1024
            assert waited < limit, f"traffic generator not done after {waited} cycles (hang)"
        cycles = int(dut.tg_cycles.value)
        reads = int(dut.tg_reads.value)
        writes = int(dut.tg_writes.value)
        result = {"requests": requests, "reads": reads, "writes": writes,
                  "bytes": (reads + writes) * ATOM, "cycles": cycles,
                  "avg_read_latency": round(int(dut.tg_lat_sum.value) / reads, 2) if reads else None,
                  "max_read_latency": int(dut.tg_lat_max.value) if reads else None,
                  "data_errors": int(dut.tg_data_errors.value) + int(dut.tg_resp_errors.value)}
    hits, misses, conflicts = (channel_stat(dut, params, n) for n in ("row_hits", "row_misses", "row_conflicts"))
    columns = hits + misses + conflicts
    tck_ns = {"hbm2": 1.0, "hbm3": 0.625}[params.get("preset", "hbm2")]
    n = len(channels)
    peak = n * ATOM / t["BL"]  # bytes per cycle
    cycles = max(1, result["cycles"])
    rate = result["bytes"] / cycles
    ceiling = 1 - (t["tRTP"] + t["tRP"] + t["tRFC"] + t["tRCDRD"]) / t["tREFI"]
    act_bound = n * min(1 / t["tRRDS"], 4 / t["tFAW"]) * ATOM * ceiling
    violations = [v for model in models for v in model.violations]
    result.update({
        "pattern": "trace" if trace else pattern, "preset": params.get("preset", "hbm2"),
        "bandwidth_GBps": round(rate / tck_ns, 3),
        "efficiency": round(rate / peak, 4),
        "refresh_ceiling": round(ceiling, 4),
        "of_refresh_ceiling": round(rate / peak / ceiling, 4),
        "of_activation_bound": round(rate / act_bound, 4),
        "row_hit_rate": round(hits / columns, 4) if columns else None,
        "refreshes": channel_stat(dut, params, "refreshes"),
        "timing_violations": len(violations) if models else None,
        "timing_checked": bool(models),
    })
    if "channels" in params:
        # One 256-bit port: a read beat and a write beat per cycle at most.
        port = max(result["reads"], result["writes"]) * ATOM / cycles
        result.update({
            "channels": n, "port_bound_bytes_per_cycle": ATOM, "of_port_bound": round(port / ATOM, 4),
            # Column commands per channel: sequential traffic should spread evenly (interleave).
            "channel_accesses": [int(getattr(dut, f"{st}_reads").value) + int(getattr(dut, f"{st}_writes").value)
                                 for _, st in channels]})
    if violations:
        result["first_violation"] = violations[0]
    dut._log.info("bench result " + json.dumps(result))
    write_bench_result(result)
    assert not violations, violations[0]
    assert result["data_errors"] == 0, f"{result['data_errors']} data/response errors"


async def _replay_trace(tb, path):
    """Replay a trace through the AXI port: one single-beat request per line, in trace order,
    issued no earlier than its cycle stamp; addresses folded into the device; writes carry
    random data. As a manager must, a read of an atom with a write not yet acknowledged (B)
    waits for that B, and a write waits for outstanding reads of its atom, so every read has
    one correct value: every byte is compared with the golden memory. Read latency is from the
    AR handshake to the R handshake."""
    entries = parse_trace(path)
    start = tb.cycle
    reads = writes = 0
    for addr, is_write, when in entries:
        atom_addr = (addr % tb.size) // ATOM * ATOM
        while tb.cycle - start < when or not (tb.can_write(atom_addr, 0) if is_write
                                              else tb.can_read(atom_addr, 0)):
            await RisingEdge(tb.clk)
        if is_write:
            tb.write(atom_addr, [random_data()], ident=1)
            writes += 1
        else:
            tb.read(atom_addr, 0, ident=0)
            reads += 1
    await tb.drain(limit=100 * len(entries) + 100000)
    lat = tb.latency_summary()
    return {"requests": len(entries), "reads": reads, "writes": writes, "bytes": (reads + writes) * ATOM,
            "cycles": tb.cycle - start, "avg_read_latency": lat and lat["mean"],
            "max_read_latency": lat and lat["max"], "read_latency": lat,
            "data_errors": len(tb.errors) + sum(m.data_errors for m in tb.models)}
