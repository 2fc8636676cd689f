"""cocotb tests of the tile DMA (``tile_dma``) against its numpy model (:mod:`verif.tile_dma_model`).

Memory is :class:`verif.axi_mem.AxiMemory` (read and write latency, random pauses on all five
channels, error ranges, guard regions; ``full_width_incr`` rejects any narrow or non-INCR burst
and any burst crossing 4 KiB). The whole image starts random and is compared byte for byte with
the model after every batch, so every byte outside a written window is a guard byte; the bytes
just around each written window and between its rows are also guard regions, reported at the
first write into one. Reads and writes of a batch run concurrently on disjoint halves of the
memory. Every command, data and status port and every AXI channel has a protocol checker (on
the ports abort may clear, ``abort`` counts as a reset); sources and sinks pause at random; a
progress watchdog fails a test that stops moving. Every burst is compared with the model's list.

Workload options come from ``SCOVILLE_TDMA`` (JSON: ``count``, ``latency``, ``stall``), so one
build serves several workloads.
"""

import json
import os
import random

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiBus, AxiResp

from scoville.hw.accel.tile_dma import DMACommand
from .axi_mem import AxiMemory
from .stream import ProtocolChecker, StreamSink, StreamSource
from .tb import TB
from .tile_dma_model import ATOM_ALIGN, PAGE, Command, DMAModel, Faults


def _opts():
    return json.loads(os.environ.get("SCOVILLE_TDMA", "{}"))


class _AbortOrReset:
    """A reset handle for the checkers of ports ``abort`` may clear: high in reset or abort."""

    def __init__(self, rst, abort):
        self.rst, self.abort = rst, abort

    @property
    def value(self):
        return int(self.rst.value) | int(self.abort.value)


class _Monitor:
    """Cycle (counted from this monitor's start) of every transfer on the engine's ports and AXI
    channels (``at[name]``; ``ends``: the ``m_rd`` beats with ``end``), and the ``busy`` rule:
    high in every cycle in which a command has been taken and its status not yet delivered, or
    an AXI transaction is in flight. Abort drops commands without a status: from a cycle with
    ``abort`` high the command part of the rule is suspended until ``busy`` is low again."""

    PORTS = ("s_rd", "m_rd", "m_rd_sts", "s_wr", "s_wr_data", "m_wr_sts")

    def __init__(self, tb):
        self.tb, self.cycle = tb, 0
        self.buses = {name: tb.stream(name) for name in self.PORTS}
        self.buses.update({"m_axi_" + ch: bus for ch, bus in tb.axi.items()})
        self.at = {name: [] for name in self.buses}
        self.ends = []
        self.commands = self.ar_beats = self.aw_open = 0
        self.forgetting = False
        self._end_bit = 8 * tb.P + 1
        cocotb.start_soon(self._run())

    async def _run(self):
        dut = self.tb.dut
        while True:
            await RisingEdge(self.tb.clk)
            self.cycle += 1
            if int(dut.rst.value):
                continue
            busy = int(dut.busy.value)
            # abort as the engine saw it in the cycle that just ended (commands dropped from there)
            self.forgetting |= bool(int(dut.abort.value))
            if not busy and self.forgetting:
                self.forgetting, self.commands = False, 0
            assert busy or ((self.commands == 0 or self.forgetting) and self.ar_beats == 0 and self.aw_open == 0), (
                f"busy low at cycle {self.cycle} with {self.commands} command(s) without status, "
                f"{self.ar_beats} R beat(s) and {self.aw_open} B response(s) owed")
            fired = {name for name, bus in self.buses.items() if int(bus.valid.value) and int(bus.ready.value)}
            for name in fired:
                self.at[name].append(self.cycle)
            if "m_rd" in fired and int(self.buses["m_rd"].fields["payload"].value) >> self._end_bit & 1:
                self.ends.append(self.cycle)
            self.commands += (("s_rd" in fired) + ("s_wr" in fired) - ("m_rd_sts" in fired)
                              - ("m_wr_sts" in fired))
            if "m_axi_ar" in fired:
                self.ar_beats += int(self.buses["m_axi_ar"].fields["len"].value) + 1
            self.ar_beats -= "m_axi_r" in fired
            self.aw_open += ("m_axi_aw" in fired) - ("m_axi_b" in fired)


class DMATB(TB):
    """The engine with an :class:`AxiMemory`, command/data sources and data/status sinks.

    ``unit_stall``: pause pattern of the unit-side sources and sinks (``TB`` ``stall``);
    ``stall``: pause probability of every memory channel."""

    def __init__(self, dut, *, latency=None, write_latency=4, stall=None, unit_stall="random", jitter=0,
                 mem_size=1 << 20, timeout=3000):
        super().__init__(dut, stall=unit_stall, timeout=timeout)
        opts = _opts()
        latency = opts.get("latency", 12) if latency is None else latency
        stall = opts.get("stall", 0.2) if stall is None else stall
        p = self.params
        self.D, self.P = p["data_width"] // 8, p["port_bits"] // 8
        self.max_beat_log2 = self.P.bit_length() - 1
        self.model = DMAModel(atom_bytes=self.D, port_bytes=self.P, max_burst=p["max_burst"],
                              addr_width=p["addr_width"])
        self.layout = DMACommand(p["addr_width"])
        self.latency, self.write_latency = latency, write_latency
        self.axi = self.check_axi("m_axi")
        self.mem = AxiMemory(AxiBus.from_prefix(dut, "m_axi"), self.clk, self.rst, size=mem_size,
                             read_latency=latency, read_jitter=jitter, write_latency=write_latency, stall=stall,
                             full_width_incr=True)
        self.mem.image[:] = np.frombuffer(random.randbytes(mem_size), np.uint8)
        self.faults = Faults(mem_size, errors=self.mem.errors)
        self._abort_or_reset = _AbortOrReset(self.rst, dut.abort)
        self._checked = {}
        self.rd_cmd, self.wr_cmd, self.wr_data = (self._driver(StreamSource, n) for n in ("s_rd", "s_wr", "s_wr_data"))
        self.rd_data, self.rd_sts, self.wr_sts = (self._driver(StreamSink, n) for n in ("m_rd", "m_rd_sts", "m_wr_sts"))
        self.rng = random.Random(random.getrandbits(32))
        self.mon = _Monitor(self)

    def _driver(self, cls, prefix):
        """A source or sink on ``prefix`` whose checker treats ``abort`` as a reset (one checker
        per port, kept when the driver is replaced after an abort)."""
        if prefix not in self._checked:
            bus = self.stream(prefix)
            self.checkers.append(ProtocolChecker(bus, self.clk, self._abort_or_reset, self.watchdog))
            self._checked[prefix] = bus
        driver = cls(self._checked[prefix], self.clk, self._pause(), self.watchdog)
        self._drivers.append(driver)
        return driver

    def restart_sources(self):
        """Drop every command and data beat not yet taken (as a sequencer does on abort)."""
        for d in (self.rd_cmd, self.wr_cmd, self.wr_data):
            d.stop()
            self._drivers.remove(d)
        self.rd_cmd, self.wr_cmd, self.wr_data = (self._driver(StreamSource, n) for n in ("s_rd", "s_wr", "s_wr_data"))

    # ------------------------------------------------------------------ workloads
    def pack(self, cmd):
        return self.layout.const(cmd.fields()).as_value().value

    def random_window(self, lo, hi, *, beat_log2=None, max_rows=12, max_row_bytes=1500):
        """A random window inside ``[lo, hi)`` (``None`` if it does not fit): row_bytes mostly not
        a multiple of 32 nor of B, strides above row_bytes, sometimes crossing a 4 KiB page."""
        rng = self.rng
        rows = rng.choice([1, 1, 2, 3, rng.randint(1, max_rows)])
        row_bytes = rng.choice([rng.randint(1, 40), rng.randint(1, 300), rng.randint(1, max_row_bytes),
                                32 * rng.randint(1, 8), 64 * rng.randint(1, 4) + 1])
        stride = -(-row_bytes // ATOM_ALIGN) * ATOM_ALIGN + ATOM_ALIGN * rng.choice([0, 0, 1, 2, rng.randint(0, 40)])
        bl = rng.randint(0, self.max_beat_log2) if beat_log2 is None else beat_log2
        span = (rows - 1) * stride + row_bytes
        if hi - lo < span + 2 * ATOM_ALIGN:
            return None
        addr = lo + ATOM_ALIGN + rng.randrange(0, hi - lo - span - ATOM_ALIGN) // ATOM_ALIGN * ATOM_ALIGN
        if rng.random() < 0.4:      # straddle a page
            page = (addr // PAGE + 1) * PAGE
            cand = page - ATOM_ALIGN * rng.randint(1, max(1, min(40, row_bytes // ATOM_ALIGN + 2)))
            if lo + ATOM_ALIGN <= cand and cand + span + ATOM_ALIGN <= hi:
                addr = cand
        return Command(addr, rows, row_bytes, stride, bl)

    def window_in(self, lo, hi, **kwargs):
        """A random window inside ``[lo, hi)`` (retried until one fits)."""
        while (cmd := self.random_window(lo, hi, **kwargs)) is None:
            pass
        return cmd

    def random_windows(self, count, lo, hi, **kwargs):
        """Up to ``count`` non-overlapping windows in ``[lo, hi)``, in random order."""
        out, cursor = [], lo
        for _ in range(count * 3):
            if len(out) == count:
                break
            room = min(hi, cursor + max(PAGE, (hi - lo) // max(count, 1)))
            cmd = self.random_window(cursor, room, **kwargs)
            if cmd is None:
                continue
            out.append(cmd)
            cursor = (cmd.extent()[1] + ATOM_ALIGN) // ATOM_ALIGN * ATOM_ALIGN
        self.rng.shuffle(out)
        return out

    def write_beats(self, cmd):
        """Random unit beats for a write command (random bytes above B and past row_bytes too)."""
        return [self.rng.randbytes(self.P) for _ in range(self.model.unit_beats(cmd))]

    def guard(self, cmd):
        """Guard regions around a write window and between its first rows."""
        lo, hi = cmd.extent()
        if cmd.empty:
            return
        self.mem.add_guard(max(lo - ATOM_ALIGN, 0), lo, f"before window {lo:#x}")
        self.mem.add_guard(hi, hi + ATOM_ALIGN, f"after window {lo:#x}")
        for r in range(min(cmd.rows - 1, 4)):
            gap_lo, gap_hi = cmd.row_addr(r) + cmd.row_bytes, cmd.row_addr(r + 1)
            if gap_lo < gap_hi:
                self.mem.add_guard(gap_lo, gap_hi, f"after row {r} of window {lo:#x}")

    # ------------------------------------------------------------------ running and checking
    def _beat(self, value):
        mask = (1 << 8 * self.P) - 1
        return ((value & mask).to_bytes(self.P, "little"), bool(value >> 8 * self.P & 1),
                bool(value >> (8 * self.P + 1) & 1))

    async def run(self, reads=(), writes=(), *, guards=True, faults=None):
        """Run ``reads`` and ``writes`` concurrently; check every beat, status, burst and byte."""
        faults = faults or self.faults
        before = self.mem.image.copy()
        want_rd = [self.model.read(before, c, faults) for c in reads]
        want_image = before.copy()
        datas = [self.write_beats(c) for c in writes]
        want_wr = [self.model.write(want_image, c, d, faults) for c, d in zip(writes, datas)]
        if guards:
            for c in writes:
                self.guard(c)
        rd0, rs0, ws0 = len(self.rd_data.items), len(self.rd_sts.items), len(self.wr_sts.items)
        nr, nw = len(self.mem.read_bursts), len(self.mem.write_bursts)
        at, e0 = self.mon.at, len(self.mon.ends)
        t_rs0, t_ws0, t_b0 = len(at["m_rd_sts"]), len(at["m_wr_sts"]), len(at["m_axi_b"])
        start = self.cycle
        self.rd_cmd.extend(self.pack(c) for c in reads)
        self.wr_cmd.extend(self.pack(c) for c in writes)
        self.wr_data.extend(int.from_bytes(b, "little") for d in datas for b in d)
        self.expecting = "read beats and statuses, write statuses"
        await self.rd_data.wait_for(rd0 + sum(len(b) for b, _ in want_rd))
        await self.rd_sts.wait_for(rs0 + len(reads))
        await self.wr_sts.wait_for(ws0 + len(writes))
        self.expecting = None
        cycles = self.cycle - start
        await self.wait_idle()

        got = [self._beat(v) for v in self.rd_data.items[rd0:]]
        at = 0
        for k, (cmd, (beats, resp)) in enumerate(zip(reads, want_rd)):
            for j, want in enumerate(beats):
                have = got[at + j]
                if have != want:
                    diff = next((i for i, (a, b) in enumerate(zip(have[0], want[0])) if a != b), None)
                    raise AssertionError(f"read {k} {cmd}: beat {j} (last, end) {have[1:]} expected {want[1:]}"
                                         + (f", first differing byte {diff}: {have[0][diff]:#04x} expected "
                                            f"{want[0][diff]:#04x}" if diff is not None else ""))
            at += len(beats)
        assert len(got) == at, f"{len(got)} read beats, expected {at}"
        sts = self.rd_sts.items[rs0:]
        assert sts == [r for _, r in want_rd], f"read statuses {sts}, expected {[r for _, r in want_rd]}"
        sts = self.wr_sts.items[ws0:]
        assert sts == want_wr, f"write statuses {sts}, expected {want_wr}"
        self.check_order(reads, writes, e0, t_rs0, t_ws0, t_b0)
        want_bursts = [b for c in reads for b in self.model.bursts(c)]
        assert self.mem.read_bursts[nr:] == want_bursts, \
            f"read bursts {self.mem.read_bursts[nr:][:8]}..., expected {want_bursts[:8]}..."
        want_bursts = [b for c in writes for b in self.model.bursts(c)]
        assert self.mem.write_bursts[nw:] == want_bursts, \
            f"write bursts {self.mem.write_bursts[nw:][:8]}..., expected {want_bursts[:8]}..."
        self.mem.check_guards()
        self.mem.compare(want_image)
        self.mem.clear_guards()
        return cycles

    def check_order(self, reads, writes, e0, t_rs0, t_ws0, t_b0):
        """Each read status after its command's last beat, each write status after its last B."""
        at, ends = self.mon.at, self.mon.ends[e0:]
        k_end = 0
        for k, cmd in enumerate(reads):
            t_sts = at["m_rd_sts"][t_rs0 + k]
            if not cmd.empty:
                assert t_sts > ends[k_end], f"read {k} {cmd}: status at cycle {t_sts}, last beat at {ends[k_end]}"
                k_end += 1
        assert len(ends) == k_end, f"{len(ends)} beats with end, expected {k_end}"
        k_b = 0
        for k, cmd in enumerate(writes):
            t_sts = at["m_wr_sts"][t_ws0 + k]
            k_b += len(self.model.bursts(cmd))
            if k_b:
                t_b = at["m_axi_b"][t_b0 + k_b - 1]
                assert t_sts > t_b, f"write {k} {cmd}: status at cycle {t_sts}, its last B at {t_b}"

    async def wait_idle(self, limit=200):
        for _ in range(limit):
            if not int(self.dut.busy.value):
                break
            await RisingEdge(self.clk)
        else:
            raise AssertionError(f"busy still high {limit} cycles after the last status")
        self.check_axi_balanced()

    def check_axi_balanced(self):
        """Every AR answered by its R beats, every AW by its W beats and one B."""
        t = {ch: next(c.transfers for c in self.checkers if c.bus is bus) for ch, bus in self.axi.items()}
        assert t["r"] == sum(n for _, n in self.mem.read_bursts), f"{t['r']} R beats for bursts {t['ar']}"
        assert t["w"] == sum(n for _, n in self.mem.write_bursts) and t["b"] == t["aw"], \
            f"{t['aw']} AW, {t['w']} W, {t['b']} B"

    def regions(self):
        half = self.mem.size // 2
        return (0, half), (half, self.mem.size)


async def _setup(dut, **kwargs):
    tb = DMATB(dut, **kwargs)
    await tb.reset()
    return tb


# ------------------------------------------------------------------------------ tests

@cocotb.test()
@cocotb.parametrize(unit_stall=["none", "random"])
async def random_windows(dut, unit_stall):
    """Random windows (every beat size, rows crossing 4 KiB, ragged row lengths), reads and
    writes concurrently, random stalls on the memory and (variant) on every unit-side port."""
    tb = await _setup(dut, unit_stall=unit_stall)
    (rlo, rhi), (wlo, whi) = tb.regions()
    seen = set()
    for _ in range(_opts().get("batches", 3)):
        n = _opts().get("count", 12)
        reads, writes = tb.random_windows(n, rlo, rhi), tb.random_windows(n, wlo, whi)
        for kind, cmds in (("read", reads), ("write", writes)):
            seen |= {(kind, f) for c in cmds for f in _features(tb, c)}
        await tb.run(reads, writes)
    # (the weakest feature turns up in about 30 % of windows: checked when there are 30 or more)
    missing = {(k, f) for k in ("read", "write") for f in FEATURES} - seen
    assert n * _opts().get("batches", 3) < 30 or not missing, f"the random windows never had {sorted(missing)}"


FEATURES = ("row crosses 4 KiB", "row of several bursts", "row of one burst", "row_bytes % 32", "row_bytes % B",
            "several rows", "stride > row_bytes")


def _features(tb, cmd):
    B = tb.model.beat_bytes(cmd)
    bursts = [tb.model.row_bursts(cmd, r) for r in range(cmd.rows)]
    found = {"row crosses 4 KiB": any(len({a // PAGE for a, _ in b}) > 1 for b in bursts),
             "row of several bursts": any(len(b) > 1 for b in bursts),
             "row of one burst": any(len(b) == 1 for b in bursts),
             "row_bytes % 32": cmd.row_bytes % 32 != 0, "row_bytes % B": cmd.row_bytes % B != 0,
             "several rows": cmd.rows > 1, "stride > row_bytes": cmd.rows > 1 and cmd.stride > cmd.row_bytes}
    return {f for f, yes in found.items() if yes}


@cocotb.test()
async def every_beat_size(dut):
    """Every beat_log2 the port allows, each with row lengths around B and D (one short of,
    equal to, one past), multi-row, both directions; then the same again back to back."""
    tb = await _setup(dut)
    (rlo, rhi), (wlo, whi) = tb.regions()
    reads, writes = [], []
    for bl in range(tb.max_beat_log2 + 1):
        B = 1 << bl
        for n in sorted({1, B - 1, B, B + 1, tb.D - 1, tb.D + 1, 2 * tb.D + B + 1, 3 * B + 5} - {0}):
            stride = -(-n // ATOM_ALIGN) * ATOM_ALIGN + ATOM_ALIGN
            reads.append(Command(0, 3, n, stride, bl))
            writes.append(Command(0, 3, n, stride, bl))
    place = lambda cmds, lo: [Command(lo + k * 1024, c.rows, c.row_bytes, c.stride, c.beat_log2)
                              for k, c in enumerate(cmds)]
    for part in range(0, len(reads), 24):
        await tb.run(place(reads[part:part + 24], rlo), place(writes[part:part + 24], wlo))


@cocotb.test()
async def bus_errors(dut):
    """SLVERR and DECERR ranges under reads and writes: statuses are the worst response of the
    command, every beat is still delivered (error atoms read as zero), failed write beats are not
    written and the rest of the window is."""
    tb = await _setup(dut)
    (rlo, rhi), (wlo, whi) = tb.regions()
    for _ in range(3):
        reads, writes = tb.random_windows(8, rlo, rhi), tb.random_windows(8, wlo, whi)
        tb.mem.clear_errors()
        for cmd in tb.rng.sample(reads, 4) + tb.rng.sample(writes, 4):
            for resp in tb.rng.sample([AxiResp.SLVERR, AxiResp.DECERR], tb.rng.randint(1, 2)):
                r = tb.rng.randrange(cmd.rows)
                a = cmd.row_addr(r) + tb.rng.randrange(cmd.row_bytes)
                tb.mem.inject_error(a, a + tb.rng.randint(1, 80), resp)
        await tb.run(reads, writes)
    # beyond the memory (or wrapping round the address space): DECERR from the memory itself
    top = tb.mem.size
    await tb.run([Command(top - 64, 2, 100, 128, 5)], [])
    await tb.run([], [Command(top - 96, 1, 200, 256, 3)], guards=False)


@cocotb.test()
async def write_bursts_whole(dut):
    """The unit side stalls at random, the memory never: every write burst's W beats go out on
    consecutive cycles (an AW is issued only once its data is buffered, so W never waits for
    the unit)."""
    tb = await _setup(dut, stall=0.0, unit_stall="random")
    (_, _), (wlo, whi) = tb.regions()
    nw, nb = len(tb.mem.write_bursts), len(tb.mon.at["m_axi_w"])
    await tb.run([], tb.random_windows(12, wlo, whi))
    w = tb.mon.at["m_axi_w"][nb:]
    at = 0
    for addr, beats in tb.mem.write_bursts[nw:]:
        span = w[at + beats - 1] - w[at] + 1
        assert span == beats, f"write burst {addr:#x}+{beats}: W beats spread over {span} cycles"
        at += beats


@cocotb.test()
async def odd_commands(dut):
    """Commands outside the ISA's rules: no row or no byte (nothing moves, status OKAY), a
    misaligned address or stride (zeros delivered, nothing written, SLVERR), a beat size above
    the port (taken as the port's); mixed with ordinary ones, the engine never hangs."""
    tb = await _setup(dut)
    (rlo, rhi), (wlo, whi) = tb.regions()
    big = tb.max_beat_log2 + 1 if tb.max_beat_log2 < 7 else tb.max_beat_log2
    odd = [Command(0, 0, 100, 128, 3), Command(0, 3, 0, 128, 3), Command(8, 2, 100, 128, 5),
           Command(0, 3, 70, 100, 2), Command(0, 2, 150, 192, big), Command(0, 2, 150, 192, 7),
           Command(16, 0, 0, 0, 0)]
    for rep in range(2):
        cmds = [c for o in odd for c in (o, tb.window_in(0, 4096))]
        reads = [Command(rlo + 8192 * k + c.addr, c.rows, c.row_bytes, c.stride, c.beat_log2)
                 for k, c in enumerate(cmds)]
        writes = [Command(wlo + 8192 * k + c.addr, c.rows, c.row_bytes, c.stride, c.beat_log2)
                  for k, c in enumerate(cmds)]
        await tb.run(reads, writes, guards=False)


@cocotb.test()
@cocotb.parametrize(mode=["pulse", "level"])
async def abort_then_transfer(dut, mode):
    """Abort while idle, then while long reads and writes are in flight, early or late (a pulse,
    or a level held until busy falls): busy falls, every AXI transaction completed (R and B all taken, W beats all sent),
    no beat or status arrives afterwards, nothing outside the aborted write windows changed
    (inside them each byte is old or new); then ordinary transfers are exact."""
    tb = await _setup(dut, latency=30)
    (rlo, rhi), (wlo, whi) = tb.regions()
    # an abort while idle changes nothing
    dut.abort.value = 1
    await RisingEdge(tb.clk)
    dut.abort.value = 0
    await tb.wait_idle(limit=3)
    for trial in range(3):
        s = tb.D // 8       # windows of about 1200 and 1000 atoms at 32-byte atoms, a quarter at 8
        reads = [Command(rlo + 0x100, 40, 250 * s, 1024, 5), Command(rlo + 0x10000, 30, 194 * s + 1, 800, 6)]
        writes = [Command(wlo + 0x100, 40, 250 * s, 1024, 5), Command(wlo + 0x10000, 30, 194 * s + 1, 800, 3)]
        before = tb.mem.image.copy()
        new = before.copy()
        datas = [tb.write_beats(c) for c in writes]
        for c, d in zip(writes, datas):
            tb.model.write(new, c, d, tb.faults)
        tb.rd_cmd.extend(tb.pack(c) for c in reads)
        tb.wr_cmd.extend(tb.pack(c) for c in writes)
        tb.wr_data.extend(int.from_bytes(b, "little") for d in datas for b in d)
        w = next(c for c in tb.checkers if c.bus is tb.axi["w"])
        w0, r0 = w.transfers, len(tb.rd_data.items)
        if trial == 0:      # early: commands just taken, the first bursts barely issued
            await ClockCycles(tb.clk, tb.rng.randint(1, 12))
        else:
            wait = tb.rng.randint(20, 400) * trial
            tb.expecting = "transfers to begin"
            while w.transfers < w0 + wait // 4 or len(tb.rd_data.items) < r0 + wait // 8:
                await RisingEdge(tb.clk)
            tb.expecting = None
        dut.abort.value = 1
        tb.restart_sources()
        await RisingEdge(tb.clk)
        if mode == "pulse":
            dut.abort.value = 0
        for k in range(5000):
            if not int(dut.busy.value):
                break
            await RisingEdge(tb.clk)
        else:
            raise AssertionError("busy never fell after abort")
        dut.abort.value = 0
        n_rd, n_rs, n_ws = len(tb.rd_data.items), len(tb.rd_sts.items), len(tb.wr_sts.items)
        await ClockCycles(tb.clk, 50)
        assert (len(tb.rd_data.items), len(tb.rd_sts.items), len(tb.wr_sts.items)) == (n_rd, n_rs, n_ws), \
            "beats or statuses after busy fell"
        tb.check_axi_balanced()
        image = tb.mem.image
        inside = np.zeros(tb.mem.size, bool)
        for c in writes:
            for lo, hi in c.row_ranges():
                inside[lo:hi] = True
        changed = image != before
        assert not (changed & ~inside).any(), \
            f"abort: byte {int(np.flatnonzero(changed & ~inside)[0]):#x} outside the windows was written"
        wrong = changed & (image != new)
        assert not wrong.any(), f"abort: byte {int(np.flatnonzero(wrong)[0]):#x} is neither old nor new"
        # the sinks' items of aborted commands are ignored from here on
        await tb.run(tb.random_windows(4, rlo, rhi), tb.random_windows(4, wlo, whi))


@cocotb.test()
async def command_latency(dut):
    """No stalls, fixed latency L (AR handshake to first R handshake) and Lw (last W handshake to
    B handshake): a one-row command takes exactly the docstring's cycles, read and write, for
    rows of 1 atom to one full burst and every beat size (a row of several bursts only where the
    bursts in flight cover the latency)."""
    tb = await _setup(dut, latency=10, write_latency=5, stall=0.0, unit_stall="none")
    L, Lw = tb.latency + 2, tb.write_latency + 2
    stamps = tb.mon
    (rlo, _), (wlo, _) = tb.regions()
    maxb, O = tb.params["max_burst"], tb.params["outstanding"]
    for bl in range(tb.max_beat_log2 + 1):
        for n in sorted({1, tb.D, tb.D + 1, maxb * tb.D - 3, maxb * tb.D}):
            cmd = Command(rlo, 1, n, 4096, bl)
            A, U = tb.model.atoms(cmd), tb.model.unit_beats(cmd)
            n_ar = len(stamps.at["m_axi_ar"])
            await tb.run([cmd], [])
            t0, ar, last, sts = (stamps.at["s_rd"][-1], stamps.at["m_axi_ar"][n_ar], stamps.at["m_rd"][-1],
                                 stamps.at["m_rd_sts"][-1])
            split = _split_start(tb, cmd)
            want = L + 5 + max(A, U) + split
            if split and (O - 1) * maxb < L + 3:
                want = last - t0    # the formula needs the bursts in flight to cover L
            assert (ar - t0, last - t0, sts - last) == (3 + split, want, 1), \
                f"read {cmd}: AR at +{ar - t0}, last beat at +{last - t0}, status {sts - last} later; " \
                f"expected +{3 + split}, +{want} (L {L}, A {A}, U {U}), 1"
            cmd = Command(wlo, 1, n, 4096, bl)
            A, U = tb.model.atoms(cmd), tb.model.unit_beats(cmd)
            await tb.run([], [cmd])
            t0, sts = stamps.at["s_wr"][-1], stamps.at["m_wr_sts"][-1]
            if len(tb.model.bursts(cmd)) > 1 and (O - 1) * maxb < Lw + 2:
                continue        # the formula needs the bursts in flight to cover Lw
            k = tb.model.bursts(cmd)[-1][1]
            want = max(A, U) + k + Lw + 4
            assert sts - t0 == want, f"write {cmd}: status at +{sts - t0}, expected max(A, U) + k + Lw + 4 = " \
                                     f"+{want} (Lw {Lw}, A {A}, U {U}, last burst k {k})"


def _split_start(tb, cmd):
    """2 when the first row needs the burst splitter (its first burst comes 2 cycles later)."""
    return 2 if len(tb.model.row_bursts(cmd, 0)) > 1 else 0


def _gaps(cycles):
    """``[(index, cycles)]`` where consecutive transfers are more than one cycle apart."""
    return [(k + 1, b - a) for k, (a, b) in enumerate(zip(cycles, cycles[1:])) if b - a > 1][:10]


@cocotb.test()
async def throughput(dut):
    """Long transfers without stalls: a read of A atoms and U unit beats takes exactly
    L + 5 + max(A, U) cycles to its last beat (+ 2 when its first row needs the splitter), a
    write max(A, U) + k + Lw + 4 to its status (k: beats of its last burst), for B = D, 2D and
    D/4, at a short latency and at the longest the bursts in flight still cover
    ((outstanding - 1) * max_burst = L + 3 = Lw + 2); 32 back-to-back commands cost no cycle
    more than one long one; a read and a write together each still move one atom a cycle."""
    tb = await _setup(dut, latency=1, write_latency=1, stall=0.0, unit_stall="none")
    stamps = tb.mon
    (rlo, _), (wlo, _) = tb.regions()
    lg_d = tb.D.bit_length() - 1
    O, M = tb.params["outstanding"], tb.params["max_burst"]
    edge = (O - 1) * M
    if edge < 6:
        dut._log.warning("throughput: (outstanding - 1) * max_burst = %d covers no memory latency (L >= 3): "
                         "nothing to check", edge)
        return
    rows, row_bytes = 4, min(PAGE, 8 * M * tb.D)     # rows of 8 full bursts
    sizes = sorted({lg_d, min(lg_d + 1, tb.max_beat_log2), max(lg_d - 2, 0)})

    def check_read(cmds, what):
        A = sum(tb.model.atoms(c) for c in cmds)
        U = sum(tb.model.unit_beats(c) for c in cmds)
        took = stamps.at["m_rd"][-1] - stamps.at["s_rd"][-len(cmds)]
        want = tb.mem.read_latency + 2 + 5 + max(A, U) + _split_start(tb, cmds[0])
        assert took == want, f"{what}: {took} cycles, expected L + 5 + max(A, U) (+ 2 split) = {want}; " \
                             f"gaps (beat, cycles) {_gaps(stamps.at['m_rd'][-U:])}"

    def check_write(cmds, what):
        A = sum(tb.model.atoms(c) for c in cmds)
        U = sum(tb.model.unit_beats(c) for c in cmds)
        k = tb.model.bursts(cmds[-1])[-1][1]
        took = stamps.at["m_wr_sts"][-1] - stamps.at["s_wr"][-len(cmds)]
        want = max(A, U) + k + tb.mem.write_latency + 2 + 4
        assert took == want, f"{what}: {took} cycles, expected max(A, U) + k + Lw + 4 = {want}; " \
                             f"W gaps {_gaps(stamps.at['m_axi_w'][-A:])}"

    # AxiMemory latency n gives L = n + 2 (Lw likewise); 1 is its least
    short = (max(min(30, edge - 5), 1), max(min(20, edge - 4), 1))
    for lat, wlat in sorted({short, (max(edge - 5, 1), max(edge - 4, 1))}):
        tb.mem.read_latency, tb.mem.write_latency = lat, wlat
        for bl in sizes:
            for direction in ("read", "write"):
                base = rlo if direction == "read" else wlo
                cmd = Command(base, rows, row_bytes, PAGE, bl)
                what = f"{direction} {cmd} (L {tb.mem.read_latency + 2}, Lw {tb.mem.write_latency + 2})"
                if direction == "read":
                    await tb.run([cmd], [])
                    check_read([cmd], what)
                else:
                    await tb.run([], [cmd])
                    check_write([cmd], what)
    tb.mem.read_latency, tb.mem.write_latency = short
    cmds = [Command(rlo + 512 * k, 1, 8 * tb.D, 512, lg_d) for k in range(32)]
    await tb.run(cmds, [])
    check_read(cmds, "32 back-to-back reads of 8 atoms")
    cmds = [Command(wlo + 512 * k, 1, 8 * tb.D, 512, lg_d) for k in range(32)]
    await tb.run([], cmds)
    check_write(cmds, "32 back-to-back writes of 8 atoms")
    # both directions at once, B = D: each at one atom a cycle
    rd, wr = Command(rlo, rows, row_bytes, PAGE, lg_d), Command(wlo, rows, row_bytes, PAGE, lg_d)
    await tb.run([rd], [wr])
    check_read([rd], "read beside a write")
    check_write([wr], "write beside a read")
