"""cocotb tests of ``gemm``: every result element against numpy, compute cycles against the
cycle model, protocol checkers on every stream port, random stalls on the data ports.

Cycle-exact checks need the status port never to stall (its handshake is the measured end);
the tests with random stalls stall every port, status included, and check data only.
"""

import math
import random

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge

from amaranth.lib import data

from scoville.hw.gemm import (Command, Op, QParam, Status, StatusWord, operand_layout,
                              result_layout)
from .gemm_model import gemm_cycles, gemm_ref, ideal_cycles, requant_ref, scalesim_cycles
from .stream import StreamBus, StreamSink, no_pause
from .tb import TB, bench_args, write_bench_result


def _chunks(vec, n):
    """``vec`` split in beats of ``n`` lanes (:func:`operand_layout`); the last beat is padded
    with junk (ignored)."""
    layout = operand_layout(n)
    out = []
    for i in range(0, len(vec), n):
        part = [int(v) for v in vec[i:i + n]]
        part += [random.randint(-128, 127) for _ in range(n - len(part))]
        out.append(layout.const(part).as_bits())
    return out


_OP = Command["op"]


def command(op, m=0, k=0, n=0, acc=False, bias=False, requant=False):
    """A :data:`Command` word. ``op`` is an :class:`Op`, or an int for an undefined opcode
    (which no enum member can carry: it goes into the op field by the layout's own offset)."""
    fields = {"m": m, "k": k, "n": n, "accumulate": int(acc), "bias": int(bias),
              "requant": int(requant)}
    if isinstance(op, Op):
        return Command.const({"op": op, **fields}).as_bits()
    assert 0 <= op < 1 << _OP.width and op not in {o.value for o in Op}, op
    return Command.const(fields).as_bits() | op << _OP.offset


def command_op(word):
    """The op field of a command word, as a plain int (undefined opcodes included)."""
    return (word >> _OP.offset) & ((1 << _OP.width) - 1)


def status_code(raw):
    """The :class:`Status` of a raw ``m_sts`` beat."""
    return data.Const(StatusWord, raw).code


class GemmTB(TB):
    def __init__(self, dut, stall="random", status_stall=False, timeout=5000):
        super().__init__(dut, stall=stall, timeout=timeout)
        p = self.params
        self.R, self.C, self.df = p["rows"], p["cols"], p["dataflow"]
        self.cmd = self.source(StreamBus.axis(dut, "s_cmd"))
        self.a = self.source(StreamBus.axis(dut, "s_axis_a"))
        self.b = self.source(StreamBus.axis(dut, "s_axis_b"))
        self.q = self.source(StreamBus.axis(dut, "s_axis_q"))
        self.c = self.sink(StreamBus.axis(dut, "m_axis_c"))
        sts_bus = StreamBus.axis(dut, "m_sts")
        if status_stall:
            self.sts = self.sink(sts_bus)
        else:
            self.sts = StreamSink(self.check(sts_bus), self.clk, no_pause(), self.watchdog)
            self._drivers.append(self.sts)
        self.cmd_cycles, self.sts_cycles = [], []
        cocotb.start_soon(self._monitor())
        self.expecting = None

    async def _monitor(self):
        while True:
            await RisingEdge(self.clk)
            if str(self.dut.rst.value) != "0":
                continue
            if int(self.dut.s_cmd_tvalid.value) and int(self.dut.s_cmd_tready.value):
                self.cmd_cycles.append(self.cycle)
            if int(self.dut.m_sts_tvalid.value) and int(self.dut.m_sts_tready.value):
                self.sts_cycles.append(self.cycle)

    async def issue(self, word):
        """Send one command; return its status code after checking the echoed op."""
        count = len(self.sts.items)
        self.expecting = "status"
        self.cmd.send_nowait(word)
        await self.sts.wait_for(count + 1)
        self.expecting = None
        raw = self.sts.items[count]
        st = data.Const(StatusWord, raw)
        assert st.op == command_op(word), \
            f"status {raw:#x} echoes op {st.op}, sent {command_op(word)}"
        return st.code

    async def run(self, word, expect=Status.OK):
        code = await self.issue(word)
        assert code == expect, f"command {word:#x}: status code {code}, expected {expect}"

    async def load_a(self, a):
        m, k = a.shape
        if self.df == "ws":
            beats = [w for row in a for w in _chunks(row, self.R)]
        else:
            beats = [w for col in a.T for w in _chunks(col, self.R)]
        self.a.extend(beats)
        await self.run(command(Op.LOAD_A, m, k))

    async def load_b(self, b):
        k, n = b.shape
        self.b.extend([w for row in b for w in _chunks(row, self.C)])
        await self.run(command(Op.LOAD_B, k=k, n=n))

    async def load_q(self, bias, mult, shift):
        self.q.extend([QParam.const({"bias": int(bi), "mult": int(mu), "shift": int(sh)}).as_bits()
                       for bi, mu, sh in zip(bias, mult, shift)])
        await self.run(command(Op.LOAD_Q, n=len(bias)))

    async def compute(self, m, k, n, acc=False):
        """Run one COMPUTE; return its cycles (command handshake to status handshake)."""
        first = len(self.cmd_cycles)
        await self.run(command(Op.COMPUTE, m, k, n, acc=acc))
        return self.sts_cycles[-1] - self.cmd_cycles[first]

    async def store(self, m, n, bias=False, requant=False):
        start = len(self.c.items)
        await self.run(command(Op.STORE, m, n=n, bias=bias, requant=requant))
        beats = self.c.items[start:]
        per_row = math.ceil(n / self.C)
        assert len(beats) == m * per_row, f"{len(beats)} result beats, expected {m * per_row}"
        out = np.zeros((m, n), dtype=np.int64)
        width = 8 if requant else 32
        layout = result_layout(self.C, requant)
        for i, beat in enumerate(beats):
            row, nt = divmod(i, per_row)
            lanes = min(self.C, n - nt * self.C)
            want_keep = (1 << (lanes * width // 8)) - 1
            assert beat["tkeep"] == want_keep, f"beat {i}: tkeep {beat['tkeep']:#x}, expected {want_keep:#x}"
            assert beat["tlast"] == int(i == len(beats) - 1), f"beat {i}: tlast {beat['tlast']}"
            word = data.Const(layout, beat["tdata"])
            if requant:
                assert word.pad == 0, f"beat {i}: bits above the int8 lanes set"
            for j in range(lanes):
                out[row, nt * self.C + j] = word.lanes[j]
        return out

    def rand(self, shape, extreme=False):
        if extreme:
            return np.full(shape, -128, dtype=np.int64)
        return np.random.randint(-128, 128, size=shape).astype(np.int64)

    def model_cycles(self, shapes):
        return gemm_cycles(self.R, self.C, self.df, shapes)

    async def gemm(self, m, k, n, extreme=False, check_cycles=True):
        """Load random A, B; compute; store; compare every element and the cycle count."""
        a, b = self.rand((m, k), extreme), self.rand((k, n), extreme)
        await self.load_a(a)
        await self.load_b(b)
        busy0, fd0 = int(self.dut.perf_busy.value), int(self.dut.perf_fill_drain.value)
        cycles = await self.compute(m, k, n)
        busy = int(self.dut.perf_busy.value) - busy0
        fill_drain = int(self.dut.perf_fill_drain.value) - fd0
        got = await self.store(m, n)
        want = gemm_ref(a, b)
        bad = np.argwhere(got != want)
        assert not len(bad), (f"{m}x{k}x{n}: {len(bad)} wrong elements, first at {tuple(bad[0])}: "
                              f"{got[tuple(bad[0])]} != {want[tuple(bad[0])]}")
        if check_cycles:
            model = self.model_cycles([(m, k, n)])[0]
            assert cycles == model, f"{m}x{k}x{n}: {cycles} compute cycles, model {model}"
            # Counters: busy from the cycle after the command handshake until the status is
            # queued; fill/drain = compute cycles without an activation read.
            if self.df == "ws":
                beats = m * math.ceil(k / self.R) * math.ceil(n / self.C)
            else:
                beats = k * math.ceil(m / self.R) * math.ceil(n / self.C)
            assert busy == model - 2, f"{m}x{k}x{n}: perf_busy {busy}, expected {model - 2}"
            assert fill_drain == model - 6 - beats, \
                f"{m}x{k}x{n}: perf_fill_drain {fill_drain}, expected {model - 6 - beats}"
        return cycles


def _fits(tb, m, k, n):
    p = tb.params
    a_words = m * math.ceil(k / tb.R) if tb.df == "ws" else k * math.ceil(m / tb.R)
    return (a_words <= p["a_depth"] and k * math.ceil(n / tb.C) <= p["b_depth"]
            and m * math.ceil(n / tb.C) <= p["c_depth"] and n <= p["max_n"])


def _shapes(tb):
    R, C = tb.R, tb.C
    shapes = [(1, 1, 1), (1, 2 * R + 1, 2 * C + 1), (R, R, C), (R + 1, 2 * R - 1 or 1, C + 2),
              (2 * R + 3, 3, 1), (3, 4 * R + 3, C - 1 or 1), (5, 7, 9)]
    return [s for s in shapes if _fits(tb, *s)]


@cocotb.test()
async def shapes_exact(dut):
    """1x1x1, M = 1 (matrix-vector), ragged edges, K > R: every element and the cycle count."""
    np.random.seed(random.getrandbits(31))
    tb = GemmTB(dut, stall="none")
    await tb.reset()
    for shape in _shapes(tb):
        await tb.gemm(*shape)


@cocotb.test()
async def random_stalls(dut):
    """Random stalls on every stream port (status included), protocol checkers attached: the
    data still matches and the compute time is unchanged (it runs from the buffers)."""
    np.random.seed(random.getrandbits(31))
    tb = GemmTB(dut, stall="random", status_stall=True)
    await tb.reset()
    for shape in _shapes(tb)[:4]:
        await tb.gemm(*shape, check_cycles=False)


@cocotb.test()
async def extremes_large_k(dut):
    """A = B = -128 over the largest K that fits: 16384 * K in every element."""
    tb = GemmTB(dut, stall="none")
    await tb.reset()
    k = 1
    while _fits(tb, 2, k + 1, tb.C):
        k += 1
    await tb.gemm(2, k, tb.C, extreme=True)


@cocotb.test()
async def accumulate_bias_requant(dut):
    """C = A1.B1; C += A2.B2; store raw, with bias, and requantised (random multipliers and
    shifts, including 0 and shifts that saturate): bit-exact with the golden model."""
    np.random.seed(random.getrandbits(31))
    tb = GemmTB(dut, stall="random")
    await tb.reset()
    m, k, n = tb.R + 1, tb.R + 2, tb.C + 1
    m, k, n = (m, k, n) if _fits(tb, m, k, n) else (2, 2, 2)
    a1, b1, a2, b2 = tb.rand((m, k)), tb.rand((k, n)), tb.rand((m, k)), tb.rand((k, n))
    await tb.load_a(a1)
    await tb.load_b(b1)
    await tb.compute(m, k, n)
    await tb.load_a(a2)
    await tb.load_b(b2)
    await tb.compute(m, k, n, acc=True)
    c = gemm_ref(a2, b2, gemm_ref(a1, b1), accumulate=True)
    got = await tb.store(m, n)
    assert (got == c).all(), "accumulated C differs"
    bias = np.random.randint(-(1 << 31), 1 << 31, size=n, dtype=np.int64)
    bias[0] = (1 << 31) - 1     # c + bias must be exact (33 bits), not wrapped, before the multiply
    mult = np.random.randint(-(1 << 15), 1 << 15, size=n, dtype=np.int64)
    shift = np.random.randint(0, 40, size=n, dtype=np.int64)
    shift[0] = 0
    if n > 1:
        shift[1] = 63
    await tb.load_q(bias, mult, shift)
    got = await tb.store(m, n, bias=True)
    want = requant_ref(c, bias, bias_en=True)
    assert (got == want).all(), f"bias: got {got[got != want][:4]}, want {want[got != want][:4]}"
    for bias_en in (False, True):
        got = await tb.store(m, n, bias=bias_en, requant=True)
        want = requant_ref(c, bias, mult, shift, bias_en=bias_en, requant_en=True)
        assert (got == want).all(), \
            f"requant (bias {bias_en}): got {got[got != want][:4]}, want {want[got != want][:4]}"
    # Milder parameters so results span the int8 range rather than saturating.
    shift = np.full(n, 14, dtype=np.int64)
    mult = np.random.randint(1, 64, size=n, dtype=np.int64)
    await tb.load_q(np.zeros(n, np.int64), mult, shift)
    got = await tb.store(m, n, requant=True)
    assert (got == requant_ref(c, None, mult, shift, requant_en=True)).all(), "requant (mild) differs"


async def _back_to_back(tb, first_shape, second_shape):
    """Issue COMPUTE ``first_shape`` then an accumulating COMPUTE ``second_shape`` with no gap;
    both must succeed, each finishing exactly when the cycle model says."""
    first = len(tb.cmd_cycles)
    tb.cmd.send_nowait(command(Op.COMPUTE, *first_shape))
    tb.cmd.send_nowait(command(Op.COMPUTE, *second_shape, acc=True))
    count = len(tb.sts.items)
    await tb.sts.wait_for(count + 2)
    codes = [status_code(s) for s in tb.sts.items[count:]]
    assert codes == [Status.OK, Status.OK], f"statuses {tb.sts.items[count:]}"
    cycles = [t - tb.cmd_cycles[first] for t in tb.sts_cycles[-2:]]
    model = tb.model_cycles([first_shape, second_shape])
    assert cycles == model, f"{first_shape} then {second_shape}: cycles {cycles}, model {model}"


@cocotb.test()
async def back_to_back(dut):
    """Two COMPUTEs queued back to back: the second starts without an idle gap (total cycles
    equal the model of the concatenated tile sequence) and both results are right."""
    np.random.seed(random.getrandbits(31))
    tb = GemmTB(dut, stall="none")
    await tb.reset()
    m, k, n = 2 * tb.R + 1, 2 * tb.R, tb.C + 1
    if not _fits(tb, m, k, n):
        m, k, n = tb.R, tb.R, tb.C
    a, b = tb.rand((m, k)), tb.rand((k, n))
    await tb.load_a(a)
    await tb.load_b(b)
    await _back_to_back(tb, (m, k, n), (m, k, n))
    got = await tb.store(m, n)
    assert (got == gemm_ref(a, b) * 2).all(), "C after two accumulating GEMMs differs"


@cocotb.test()
async def back_to_back_mixed(dut):
    """Back-to-back COMPUTEs of different shapes over the same buffers (the second one
    accumulating into a corner of C): per-tile sizes change mid-stream without a gap."""
    np.random.seed(random.getrandbits(31))
    tb = GemmTB(dut, stall="none")
    await tb.reset()
    R, C = tb.R, tb.C
    m1, k1, n1 = 2 * R + 1, 2 * R, C + 2
    if not _fits(tb, m1, k1, n1):
        m1, k1, n1 = R + 1, R + 1, C + 1

    def same_tiles(x, y, d):
        return y >= 1 and math.ceil(x / d) == math.ceil(y / d)

    n2 = n1 - 1 if same_tiles(n1, n1 - 1, C) else n1
    if tb.df == "ws":     # A's row stride is ceil(K/R): keep it, shrink M freely
        m2 = max(1, m1 // 2)
        k2 = k1 - 1 if same_tiles(k1, k1 - 1, R) else k1
    else:                 # A^T's row stride is ceil(M/R): keep it, shrink K freely
        m2 = m1 - 1 if same_tiles(m1, m1 - 1, R) else m1
        k2 = max(1, k1 // 2)
    a, b = tb.rand((m1, k1)), tb.rand((k1, n1))
    await tb.load_a(a)
    await tb.load_b(b)
    await _back_to_back(tb, (m1, k1, n1), (m2, k2, n2))
    want = gemm_ref(a, b)
    want[:m2, :n2] += gemm_ref(a[:m2, :k2], b[:k2, :n2])
    got = await tb.store(m1, n1)
    bad = np.argwhere(got != want)
    assert not len(bad), f"{len(bad)} wrong elements, first at {tuple(bad[0])}"


@cocotb.test()
async def reset_mid_gemm(dut):
    """Reset in the middle of a COMPUTE, then a complete GEMM is exact."""
    np.random.seed(random.getrandbits(31))
    tb = GemmTB(dut, stall="none")
    await tb.reset()
    m, k, n = _shapes(tb)[-1]
    await tb.load_a(tb.rand((m, k)))
    await tb.load_b(tb.rand((k, n)))
    tb.cmd.send_nowait(command(Op.COMPUTE, m, k, n))
    await ClockCycles(tb.clk, 12)
    await tb.reset()
    await ClockCycles(tb.clk, 3)
    assert int(dut.m_sts_tvalid.value) == 0, "status survived reset"
    await tb.gemm(m, k, n)


@cocotb.test()
async def bad_commands(dut):
    """Zero sizes, sizes beyond the buffers and unknown ops answer an error status, consume no
    data and leave the buffers as they were."""
    np.random.seed(random.getrandbits(31))
    tb = GemmTB(dut, stall="random")
    await tb.reset()
    p = tb.params
    m, k, n = 3, tb.R + 1, 2
    a, b = tb.rand((m, k)), tb.rand((k, n))
    await tb.load_a(a)
    await tb.load_b(b)
    await tb.compute(m, k, n)
    big_m = p["c_depth"] + 1
    big_k = p["b_depth"] + 1
    bad = [command(Op.COMPUTE, 0, k, n), command(Op.COMPUTE, m, 0, n), command(Op.COMPUTE, m, k, 0),
           command(Op.COMPUTE, big_m, k, n), command(Op.COMPUTE, m, big_k, n),
           command(Op.LOAD_A, 0, k), command(Op.LOAD_A, p["a_depth"] * tb.R + 1, 1 if tb.df == "os" else tb.R),
           command(Op.LOAD_B, k=big_k, n=1), command(Op.LOAD_B, k=1, n=0),
           command(Op.LOAD_Q, n=0), command(Op.LOAD_Q, n=p["max_n"] + 1),
           command(Op.STORE, 0, n=n), command(Op.STORE, m, n=p["max_n"] + 1),
           command(Op.STORE, big_m, n=1)]
    for word in bad:
        await tb.run(word, Status.BAD_SIZE)
    for op in (0, 6, 7):
        await tb.run(command(op, 1, 1, 1), Status.BAD_OP)
    assert not tb.a.busy and not tb.b.busy
    got = await tb.store(m, n)
    assert (got == gemm_ref(a, b)).all(), "C changed by rejected commands"
    await tb.gemm(m, k, n, check_cycles=False)


def tb_model_cycles(dut, m, k, n):
    from .tb import block_params
    p = block_params()
    return gemm_cycles(p["rows"], p["cols"], p["dataflow"], [(m, k, n)])[0]


@cocotb.test()
async def bench(dut):
    """``scoville bench gemm --m M --k K --n N``: compute cycles and utilisation of one GEMM."""
    args = bench_args()
    m, k, n = int(args.get("m", 64)), int(args.get("k", 64)), int(args.get("n", 64))
    np.random.seed(random.getrandbits(31))
    # The watchdog counts stream transfers; a COMPUTE makes none until its status.
    timeout = 2 * tb_model_cycles(dut, m, k, n) + 1000
    tb = GemmTB(dut, stall="none", timeout=timeout)
    await tb.reset()
    assert _fits(tb, m, k, n), f"{m}x{k}x{n} does not fit the buffers of {tb.params}"
    a, b = tb.rand((m, k)), tb.rand((k, n))
    await tb.load_a(a)
    await tb.load_b(b)
    busy0, fd0 = int(dut.perf_busy.value), int(dut.perf_fill_drain.value)
    cycles = await tb.compute(m, k, n)
    busy, fill_drain = int(dut.perf_busy.value) - busy0, int(dut.perf_fill_drain.value) - fd0
    got = await tb.store(m, n)
    correct = bool((got == gemm_ref(a, b)).all())
    ideal = ideal_cycles(tb.R, tb.C, m, k, n)
    model = tb.model_cycles([(m, k, n)])[0]
    result = {"rows": tb.R, "cols": tb.C, "dataflow": tb.df, "m": m, "k": k, "n": n,
              "cycles": cycles, "ideal_cycles": ideal, "utilization": round(ideal / cycles, 4),
              "model_cycles": model,
              "noverlap_cycles": scalesim_cycles(tb.R, tb.C, m, k, n, tb.df),
              "perf_busy": busy, "perf_fill_drain": fill_drain, "correct": correct}
    if tb.df == "ws":
        # Every weight byte enters the array once per tile.
        weight_bytes = math.ceil(k / tb.R) * tb.R * math.ceil(n / tb.C) * tb.C
        result["weight_bytes_per_cycle"] = round(weight_bytes / cycles, 3)
        result["weight_port_bytes"] = tb.C
    write_bench_result(result)
    assert correct, "GEMM result differs from numpy"
    assert cycles == model, f"{cycles} cycles, model {model}"


