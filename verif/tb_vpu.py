"""cocotb tests of ``vpu``: every output element and row scalar against the golden model
(:mod:`verif.vpu_model`), statuses, ``tkeep``/``tlast``, padding bits; protocol checkers on
every stream port, random stalls, the progress watchdog; cycle counts against the formulas of
:mod:`hw.vpu.vpu`.
"""

import math
import random

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge

from amaranth.lib import data

from scoville.hw.vpu.back import back_latency
from scoville.hw.vpu.front import FRONT_LATENCY
from scoville.hw.vpu.layouts import (FMT_BITS, REDUCTIONS, TWO_PASS, USES_B, ArgmaxWord,
                                     ChannelParam, Command, Fmt, Op, RopeCoef, Status, StatusWord)
from .stream import StreamBus, StreamSink, no_pause
from .tb import TB, bench_args, write_bench_result
from .vpu_model import VPUModel

_OP = Command["op"]
OUT_ELEMENTS = {Op.LOAD_P: False}


def command(op, n, rows=1, **fields):
    """A :data:`Command` word; ``op`` an :class:`Op` or an undefined opcode as an int."""
    raw_op = op.value if isinstance(op, Op) else op
    word = Command.const({k: v for k, v in fields.items()} | {"n": n, "rows": rows}).as_bits()
    return word | raw_op << _OP.offset


def pack_rows(a, lanes, fmt, rng):
    """Rows (rows, n) of ints as beats of ``lanes`` elements of ``fmt``; lanes past the row's
    end and the padding above the elements are random junk (the VPU must ignore them)."""
    w = FMT_BITS[Fmt(fmt)]
    mask = (1 << w) - 1
    beats = []
    for row in a:
        for i in range(0, len(row), lanes):
            word = rng.getrandbits(32 * lanes)
            for j in range(lanes):
                word &= ~(mask << (w * j))
                v = int(row[i + j]) if i + j < len(row) else rng.getrandbits(w)
                word |= (v & mask) << (w * j)
            beats.append(word)
    return beats


def pack_rope(cs, lanes, rng):
    """(rows, n, 2) cos/sin as s_axis_b beats of :data:`RopeCoef` lanes."""
    beats = []
    for row in cs:
        for i in range(0, len(row), lanes):
            word = 0
            for j in range(lanes):
                c, s = (row[i + j] if i + j < len(row) else (rng.randint(-99, 99), 1))
                word |= RopeCoef.const({"cos": int(c), "sin": int(s)}).as_bits() << (32 * j)
            beats.append(word)
    return beats


class VpuTB(TB):
    def __init__(self, dut, stall="random", timeout=3000):
        super().__init__(dut, stall=stall, timeout=timeout)
        p = self.params
        self.lanes = p.get("lanes", 8)
        self.buffer = p.get("buffer", 4096)
        self.channels = p.get("channels", 2048)
        self.rope_max = p.get("rope_max", 256)
        self.model = VPUModel(lanes=self.lanes, buffer=self.buffer, channels=self.channels,
                              rope_max=self.rope_max)
        self.rng = random.Random(random.getrandbits(32))
        self.cmd = self.source(StreamBus.axis(dut, "s_cmd"))
        self.a = self.source(StreamBus.axis(dut, "s_axis_a"))
        self.b = self.source(StreamBus.axis(dut, "s_axis_b"))
        self.p = self.source(StreamBus.axis(dut, "s_axis_p"))
        self.y = self.sink(StreamBus.axis(dut, "m_axis_y"))
        self.s = self.sink(StreamBus.axis(dut, "m_axis_s"))
        sts = StreamBus.axis(dut, "m_sts")
        if stall == "none":
            self.sts = StreamSink(self.check(sts), self.clk, no_pause(), self.watchdog)
            self._drivers.append(self.sts)
        else:
            self.sts = self.sink(sts)
        self.a_cycles, self.y_cycles = [], []
        self.expected = []       # (cmd fields, status, y, scalars) in command order
        cocotb.start_soon(self._monitor())

    async def _monitor(self):
        while True:
            await RisingEdge(self.clk)
            if str(self.dut.rst.value) != "0":
                continue
            if int(self.dut.s_axis_a_tvalid.value) and int(self.dut.s_axis_a_tready.value):
                self.a_cycles.append(self.cycle)
            if int(self.dut.m_axis_y_tvalid.value) and int(self.dut.m_axis_y_tready.value):
                self.y_cycles.append(self.cycle)

    # ---- issuing -------------------------------------------------------------------------
    def send(self, fields, a=None, b=None, p=None):
        """Queue one command and its data; the model's answer is appended to ``expected``.
        The data go out only for commands the VPU accepts (an erroneous one consumes none)."""
        status, y, scalars = self.model.run(fields, a, b, p)
        op = fields["op"]
        if status is Status.OK:
            L = self.lanes
            if op is Op.LOAD_P:
                self.p.extend([ChannelParam.const({"offset": int(o), "mult": int(mu), "shift": int(sh)})
                               .as_bits() for o, mu, sh in p])
            else:
                self.a.extend(pack_rows(a, L, fields.get("in_fmt", 0), self.rng))
                if op is Op.ROPE:
                    self.b.extend(pack_rope(b, L, self.rng))
                elif op in USES_B:
                    self.b.extend(pack_rows(b, L, fields.get("in_fmt", 0), self.rng))
        word = command(op, fields["n"], fields["rows"],
                       **{k: v for k, v in fields.items() if k not in ("op", "n", "rows")})
        self.cmd.send_nowait(word)
        self.expected.append((fields, status, y, scalars))

    async def drain(self):
        """Wait for every queued command's status; check statuses, rows and scalars."""
        want = self.expected
        self.expected = []
        self.expecting = "status"
        base_sts = getattr(self, "_sts_seen", 0)
        await self.sts.wait_for(base_sts + len(want))
        self.expecting = None
        self._sts_seen = base_sts + len(want)
        ys, ss = self.y.items, self.s.items
        yi, si = getattr(self, "_y_seen", 0), getattr(self, "_s_seen", 0)
        for k, (fields, status, y, scalars) in enumerate(want):
            raw = self.sts.items[base_sts + k]
            st = data.Const(StatusWord, raw)
            name = f"command {k} ({fields['op'] if isinstance(fields['op'], int) else fields['op'].name}, n={fields['n']}, rows={fields['rows']})"
            op_raw = fields["op"].value if isinstance(fields["op"], Op) else fields["op"]
            assert st.op == op_raw, f"{name}: status echoes op {st.op}"
            assert st.code == status, f"{name}: status {st.code}, model {status}"
            if y is not None:
                yi = self._check_rows(name, fields, y, ys, yi)
            if scalars is not None:
                si = self._check_scalars(name, fields, scalars, ss, si)
        assert len(ys) == yi, f"{len(ys) - yi} unexpected m_axis_y beats"
        assert len(ss) == si, f"{len(ss) - si} unexpected m_axis_s beats"
        self._y_seen, self._s_seen = yi, si

    def _check_rows(self, name, fields, y, ys, yi):
        L = self.lanes
        w = FMT_BITS[Fmt(fields.get("out_fmt", 0))]
        rows, n = y.shape
        per_row = math.ceil(n / L)
        assert len(ys) >= yi + rows * per_row, f"{name}: {len(ys) - yi} beats, want {rows * per_row}"
        got = np.zeros_like(y)
        for r in range(rows):
            for bt in range(per_row):
                beat = ys[yi]
                yi += 1
                k = min(L, n - bt * L)
                keep = (1 << (k * w // 8)) - 1
                assert beat["tkeep"] == keep, f"{name}: row {r} beat {bt}: tkeep {beat['tkeep']:#x} want {keep:#x}"
                assert beat["tlast"] == int(bt == per_row - 1), f"{name}: row {r} beat {bt}: tlast"
                word = beat["tdata"]
                assert word >> (w * L) == 0, f"{name}: row {r} beat {bt}: bits above the elements set"
                for j in range(L):
                    v = (word >> (w * j)) & ((1 << w) - 1)
                    v -= (v >> (w - 1)) << w
                    if j < k:
                        got[r, bt * L + j] = v
                    else:
                        assert v == 0, f"{name}: row {r} beat {bt}: lane {j} past the row is {v}"
        bad = np.argwhere(got != y)
        assert not len(bad), (f"{name}: {len(bad)} wrong elements, first at {tuple(bad[0])}: "
                              f"{got[tuple(bad[0])]} != model {y[tuple(bad[0])]}; row {bad[0][0]}: "
                              f"got {got[bad[0][0]].tolist()} model {y[bad[0][0]].tolist()}; {fields}")
        return yi

    def _check_scalars(self, name, fields, scalars, ss, si):
        rows = fields["rows"]
        assert len(ss) >= si + rows, f"{name}: {len(ss) - si} scalars, want {rows}"
        for r in range(rows):
            beat = ss[si]
            si += 1
            assert beat["tlast"] == int(r == rows - 1), f"{name}: scalar {r}: tlast"
            word = beat["tdata"]
            if fields["op"] is Op.ARGMAX:
                got = data.Const(ArgmaxWord, word)
                want = tuple(int(v) for v in scalars[r])
                assert (got.value, got.index) == want, f"{name}: row {r}: argmax {(got.value, got.index)} != {want}"
            else:
                got = word - ((word >> 63) << 64)
                assert got == int(scalars[r]), f"{name}: row {r}: scalar {got} != model {int(scalars[r])}"
        return si


# ---- workloads: realistic formats and scales per opcode ------------------------------------

def _ints(rng, shape, bits, outliers=True):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1))
    x = rng.integers(lo // 8, hi // 8, size=shape)
    if outliers and x.size:
        idx = rng.random(shape) < 0.02
        x = np.where(idx, rng.integers(lo, hi, size=shape), x)
    return x.astype(np.int64)


def workload(op, n, rows, rng, lanes, extreme=None, rope_max=256):
    """(fields, a, b, p-for-LOAD_P-or-None) of one command of ``op`` with sensible scales.
    ``extreme`` = "min" / "max" / "zero" fills a (and b) with that value."""
    f = {"op": op, "n": n, "rows": rows}
    b = p = None
    if op in (Op.SCALE, Op.REQUANT, Op.REQUANT_DYN, Op.MAX, Op.SUM, Op.ARGMAX, Op.SOFTMAX):
        f["in_fmt"] = Fmt.INT32.value
        bits = 32 if op is not Op.SOFTMAX else 20
    elif op in (Op.SUMSQ, Op.RMSNORM, Op.LAYERNORM):
        f["in_fmt"], bits = Fmt.INT16.value, 16
    else:
        f["in_fmt"], bits = Fmt.INT8.value, 8
    a = _ints(rng, (rows, n), bits)
    if op is Op.SCALE:
        f |= {"mult_a": int(rng.integers(1, 1 << 15)), "shift_a": int(rng.integers(20, 34)),
              "out_fmt": int(rng.integers(0, 3))}
    elif op is Op.ADD or op is Op.MUL:
        b = _ints(rng, (rows, n), 8)
        f |= {"mult_a": int(rng.integers(-(1 << 15), 1 << 15)), "mult_b": int(rng.integers(-(1 << 15), 1 << 15)),
              "shift_a": int(rng.integers(12, 20)) + (7 if op is Op.MUL else 0)}
    elif op is Op.ROPE:
        ang = rng.uniform(-np.pi, np.pi, size=(rows, n))
        cs = np.stack([np.round(np.cos(ang) * 16384), np.round(np.sin(ang) * 16384)], axis=-1)
        halves = int(n % (2 * lanes) == 0 and n <= rope_max and rng.integers(0, 2))
        pair = np.arange(n) % (n // 2) if halves else np.arange(n) & ~1
        b = cs[:, pair].astype(np.int64)
        f |= {"mult_a": int(rng.integers(1, 3)), "shift_a": 0, "halves": halves}
    elif op in (Op.GELU, Op.SILU):
        f |= {"mult_a": 20480, "shift_a": 8, "mult_b": 812, "shift_b": 16}
    elif op is Op.SOFTMAX:
        f |= {"mult_a": int(rng.integers(1, 1 << 12)), "shift_a": int(rng.integers(8, 14)),
              "len": int(rng.integers(0, n + 2)), "causal": int(rng.integers(0, 2)),
              "out_fmt": int(rng.integers(0, 2))}
    elif op in (Op.RMSNORM, Op.LAYERNORM):
        f |= {"mult_b": int(rng.integers(0, 1 << 16)), "shift_b": int(rng.integers(0, 12))}
    if extreme is not None:
        lo = {8: -128, 16: -32768, 20: -(1 << 19), 32: -(1 << 31)}[bits]
        v = {"min": lo, "max": -lo - 1, "zero": 0}[extreme]
        a = np.full_like(a, v)
        if b is not None and op is not Op.ROPE:
            b = np.full_like(b, -128 if extreme == "min" else (127 if extreme == "max" else 0))
    return f, a, b


def channel_params(op, n, rng):
    """(n, 3) channel parameters (offset, mult, shift) suited to ``op``."""
    if op is Op.REQUANT:
        return np.stack([rng.integers(-(1 << 20), 1 << 20, n), rng.integers(-(1 << 15), 1 << 15, n),
                         rng.integers(16, 40, n)], axis=1)
    # gamma * sqrt(n) / s_out as mult >> (16 + shift) of v (Q.16), beta in output units
    return np.stack([rng.integers(-20, 20, n), rng.integers(1 << 9, 1 << 12, n),
                     rng.integers(0, 4, n)], axis=1)


async def run_op(tb, op, n, rows, rng, extreme=None):
    if op in (Op.REQUANT, Op.RMSNORM, Op.LAYERNORM):
        p = channel_params(op, n, rng)
        tb.send({"op": Op.LOAD_P, "n": n, "rows": 1}, p=p)
    f, a, b = workload(op, n, rows, rng, tb.lanes, extreme, tb.rope_max)
    tb.send(f, a, b)


ALL_OPS = [o for o in Op if o is not Op.LOAD_P]


def _lengths(tb, op):
    L = tb.lanes
    longest = tb.buffer if op in TWO_PASS else (tb.channels if op is Op.REQUANT else 3 * L + 1)
    ns = [1, L + 3, 2 * L, longest]
    if op is Op.ROPE:
        ns = [2, L + 2, 2 * L, 4 * L, 4 * L, tb.rope_max, tb.rope_max]
    return ns


@cocotb.test()
async def every_op(dut):
    """Every opcode with n = 1, n not a multiple of the lanes, whole beats, the longest row:
    bit-exact with the golden model (rows, scalars, statuses, tkeep/tlast, padding)."""
    tb = VpuTB(dut, stall="none", timeout=20000)
    await tb.reset()
    rng = np.random.default_rng(tb.rng.getrandbits(32))
    for op in ALL_OPS:
        for n in _lengths(tb, op):
            await run_op(tb, op, n, 1 if n >= tb.buffer // 2 else 3, rng)
            await tb.drain()


@cocotb.test()
async def extremes(dut):
    """All-minimum, all-maximum and all-zero rows for every opcode, and a fully masked
    SOFTMAX row (zeros)."""
    tb = VpuTB(dut, stall="none", timeout=20000)
    await tb.reset()
    rng = np.random.default_rng(tb.rng.getrandbits(32))
    for op in ALL_OPS:
        for ex in ("min", "max", "zero"):
            await run_op(tb, op, tb.lanes + 3 if op is not Op.ROPE else tb.lanes + 2, 2, rng, extreme=ex)
    f, a, b = workload(Op.SOFTMAX, 2 * tb.lanes, 2, rng, tb.lanes)
    f |= {"len": 0, "causal": 0}
    tb.send(f, a, b)
    await tb.drain()


@cocotb.test()
async def random_stalls(dut):
    """Random stalls on every stream port, back-to-back commands of different opcodes queued
    at once: everything still bit-exact and in order."""
    tb = VpuTB(dut, stall="random", timeout=20000)
    await tb.reset()
    rng = np.random.default_rng(tb.rng.getrandbits(32))
    ops = ALL_OPS * 2
    tb.rng.shuffle(ops)
    for op in ops:
        n = int(rng.integers(1, 4 * tb.lanes)) if op is not Op.ROPE else 2 * int(rng.integers(1, 2 * tb.lanes))
        await run_op(tb, op, n, int(rng.integers(1, 4)), rng)
    await tb.drain()


@cocotb.test()
async def vocabulary_argmax(dut):
    """Greedy sampling: ARGMAX over a 49 152-entry vocabulary row of int32 logits (a
    reduction keeps no row, so n is not bounded by the buffer), the maximum planted late and
    repeated (the first index wins)."""
    tb = VpuTB(dut, stall="random", timeout=5000)
    await tb.reset()
    rng = np.random.default_rng(tb.rng.getrandbits(32))
    n = 49152
    a = rng.integers(-(1 << 31), 1 << 30, size=(2, n))
    a[0, n - 7] = a[0, n - 3] = (1 << 31) - 1
    a[1, 5] = a[1, 4000] = (1 << 31) - 1
    tb.send({"op": Op.ARGMAX, "n": n, "rows": 2, "in_fmt": Fmt.INT32.value}, a)
    await tb.drain()


@cocotb.test()
async def bad_commands(dut):
    """n = 0, rows = 0, n beyond the row buffer / parameter memory, odd n for ROPE, undefined
    opcodes and formats, formats an opcode does not take: an error status, no data consumed
    or emitted, no hang; a good command afterwards is exact."""
    tb = VpuTB(dut, stall="random", timeout=5000)
    await tb.reset()
    rng = np.random.default_rng(tb.rng.getrandbits(32))
    bad = [
        {"op": Op.SCALE, "n": 0, "rows": 1}, {"op": Op.SCALE, "n": 4, "rows": 0},
        {"op": Op.SOFTMAX, "n": tb.buffer + 1, "rows": 1},
        {"op": Op.LAYERNORM, "n": tb.buffer + 1, "rows": 1, "in_fmt": 1},
        {"op": Op.REQUANT, "n": tb.channels + 1, "rows": 1, "in_fmt": 2},
        {"op": Op.LOAD_P, "n": tb.channels + 1, "rows": 1},
        {"op": Op.ROPE, "n": 5, "rows": 1},
        {"op": Op.ROPE, "n": 2 * tb.lanes + 2, "rows": 1, "halves": 1},
        {"op": Op.ROPE, "n": tb.rope_max + 2 * tb.lanes, "rows": 1, "halves": 1},
        {"op": 0, "n": 4, "rows": 1}, {"op": 17, "n": 4, "rows": 1}, {"op": 31, "n": 4, "rows": 1},
        {"op": Op.ADD, "n": 4, "rows": 1, "in_fmt": 3}, {"op": Op.ADD, "n": 4, "rows": 1, "out_fmt": 3},
        {"op": Op.MUL, "n": 4, "rows": 1, "in_fmt": 2}, {"op": Op.REQUANT_DYN, "n": 4, "rows": 1, "out_fmt": 1},
        {"op": Op.SOFTMAX, "n": 4, "rows": 1, "out_fmt": 2},
        {"op": Op.RMSNORM, "n": 4, "rows": 1, "in_fmt": 1, "shift_b": 41},
    ]
    for f in bad:
        status, _, _ = tb.model.run(f)
        assert status is not Status.OK, f
        tb.send(f)
    await run_op(tb, Op.SOFTMAX, 2 * tb.lanes + 1, 2, rng)
    await tb.drain()


@cocotb.test()
async def reset_mid_row(dut):
    """Reset in the middle of a row: nothing survives, and the next commands are exact."""
    tb = VpuTB(dut, stall="none", timeout=5000)
    await tb.reset()
    rng = np.random.default_rng(tb.rng.getrandbits(32))
    f, a, b = workload(Op.SOFTMAX, 4 * tb.lanes, 4, rng, tb.lanes)
    tb.send(f, a, b)
    await ClockCycles(tb.clk, 6)
    tb.rst.value = 1
    await ClockCycles(tb.clk, 1)
    tb.expected.clear()
    # a source may still hold a beat it presented before the reset: replace the sources
    for name, port in (("cmd", "s_cmd"), ("a", "s_axis_a"), ("b", "s_axis_b"), ("p", "s_axis_p")):
        getattr(tb, name).stop()
        setattr(tb, name, tb.source(StreamBus.axis(dut, port)))
    await tb.reset()
    await ClockCycles(tb.clk, 3)
    assert int(dut.m_sts_tvalid.value) == 0, "status survived reset"
    tb._sts_seen, tb._y_seen, tb._s_seen = len(tb.sts.items), len(tb.y.items), len(tb.s.items)
    await run_op(tb, Op.SOFTMAX, 4 * tb.lanes, 3, rng)
    await run_op(tb, Op.ADD, tb.lanes + 1, 2, rng)
    await tb.drain()


def expected_cycles(op, n, rows, lanes, halves=False):
    """First input beat to last output beat of a single-pass command, every port ready
    (docs/vpu.md): one beat per cycle (ROPE halves: three half-rows of cycles per row), then
    the front end, the row buffer, the back end and the output queue."""
    beats = math.ceil(n / lanes) if not halves else 3 * n // (2 * lanes)
    # both ends counted; a buffered FIFO (row buffer, output queue) takes 2 cycles write to read
    return rows * beats + FRONT_LATENCY + 2 + back_latency() + 2


async def measure(tb, op, n, rows, rng, **fields):
    """Cycles from the command's first s_axis_a beat to its last m_axis_y beat (channel
    parameters loaded beforehand, outside the count)."""
    if op in (Op.REQUANT, Op.RMSNORM, Op.LAYERNORM):
        tb.send({"op": Op.LOAD_P, "n": n, "rows": 1}, p=channel_params(op, n, rng))
        await tb.drain()
    a0, y0 = len(tb.a_cycles), len(tb.y_cycles)
    f, a, b = workload(op, n, rows, rng, tb.lanes, None, tb.rope_max)
    tb.send(f | fields, a, b)     # any cos/sin values: the check is bit-exactness
    await tb.drain()
    return tb.y_cycles[-1] - tb.a_cycles[a0] + 1 if len(tb.y_cycles) > y0 else None


@cocotb.test()
async def throughput(dut):
    """Every port ready: single-pass opcodes take exactly the formula's cycles (one beat per
    cycle, no bubble between rows); two-pass opcodes on rows of 4 x lanes sustain at least
    0.9 x lanes elements per cycle between their first and last output beats."""
    tb = VpuTB(dut, stall="none", timeout=20000)
    await tb.reset()
    rng = np.random.default_rng(tb.rng.getrandbits(32))
    L, rows, n = tb.lanes, 32, 4 * tb.lanes
    for halves in (0, 1):
        cycles = await measure(tb, Op.ROPE, n, rows, rng, halves=halves)
        want = expected_cycles(Op.ROPE, n, rows, L, halves)
        assert cycles == want, f"ROPE halves={halves}: {cycles} cycles, formula {want}"
    for op in (Op.SCALE, Op.ADD, Op.GELU, Op.REQUANT, *TWO_PASS):
        y0 = len(tb.y_cycles)
        cycles = await measure(tb, op, n, rows, rng)
        if op in TWO_PASS:
            span = tb.y_cycles[-1] - tb.y_cycles[y0] + 1
            rate = n * rows / span
            assert rate >= 0.9 * L, f"{op.name}: {rate:.2f} elements/cycle sustained, want >= {0.9 * L}"
        else:
            want = expected_cycles(op, n, rows, L)
            assert cycles == want, f"{op.name}: {cycles} cycles, formula {want}"


@cocotb.test()
async def bench(dut):
    """``scoville bench vpu --op OP --n N --rows M``: cycles (first input beat to last output
    beat, channel parameters loaded beforehand), sustained rate and accuracy of one command."""
    from .vpu_model import accuracy_of
    args = bench_args()
    op = Op[str(args.get("op", "softmax")).upper()]
    n, rows = int(args.get("n", 256)), int(args.get("rows", 64))
    tb = VpuTB(dut, stall="none", timeout=100000)
    await tb.reset()
    rng = np.random.default_rng(tb.rng.getrandbits(32))
    if op in (Op.REQUANT, Op.RMSNORM, Op.LAYERNORM):
        tb.send({"op": Op.LOAD_P, "n": n, "rows": 1}, p=channel_params(op, n, rng))
        await tb.drain()
    a0, y0, s0 = len(tb.a_cycles), len(tb.y_cycles), len(tb.s.items)
    f, a, b = workload(op, n, rows, rng, tb.lanes, None, tb.rope_max)
    if op is Op.SOFTMAX:
        f["out_fmt"] = Fmt.INT8.value      # the attention path's format (int16: see docs/vpu.md)
    if op is Op.ROPE:
        f["halves"] = int(args.get("pairs", "gguf") == "halves")
    tb.send(f, a, b)
    expected = tb.expected[-1]
    assert expected[1] is Status.OK, (f"{op.name} n={n} rows={rows} is not accepted by this VPU "
                                      f"({expected[1].name}; {tb.params})")
    mismatch = None
    try:
        await tb.drain()
    except AssertionError as exc:
        mismatch = str(exc)
    outputs = len(tb.y_cycles) > y0
    end = tb.y_cycles[-1] if outputs else tb.cycle
    cycles = end - tb.a_cycles[a0] + 1
    result = {"op": op.name.lower(), "lanes": tb.lanes, "n": n, "rows": rows, "cycles": cycles,
              "elements": n * rows, "elements_per_cycle": round(n * rows / cycles, 3),
              "max_error_lsb": accuracy_of(f, a, b, expected[2], tb.model),
              "mismatches": int(mismatch is not None), "correct": mismatch is None}
    if outputs and len(tb.y_cycles) - y0 > 1:
        span = tb.y_cycles[-1] - tb.y_cycles[y0] + 1
        result["sustained_elements_per_cycle"] = round(n * rows / span, 3)
    write_bench_result(result)
    assert mismatch is None, mismatch
