"""cocotb tests of ``systolic``: every output row of random tile sequences checked against numpy,
at exactly the cycle the schedule model predicts, for both dataflows.

The array has no handshake (see :class:`hw.systolic.SystolicArray`), so there is no stream port
to stall here: the tests drive a cycle-exact schedule built by :mod:`verif.gemm_model` — the
same rules the GEMM controller implements — and check that nothing arrives at any other cycle.
"""

import random

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge


from amaranth.lib import data

from scoville.hw.systolic import lanes_layout

from .gemm_model import os_schedule, ws_schedule
from .tb import TB, bench_args, write_bench_result


def _pack(values, width):
    """A vector port word (:func:`lanes_layout`); each value wraps to ``width`` bits."""
    values = [int(v) & ((1 << width) - 1) for v in values]
    return lanes_layout(len(values), width, is_signed=False).const(values).as_bits()


def _unpack(word, n, width, signed=True):
    lanes = data.Const(lanes_layout(n, width, signed), word)
    return [lanes[i] for i in range(n)]


def _wrap(x, width):
    x = np.asarray(x, dtype=object)
    return [((int(v) + (1 << (width - 1))) % (1 << width)) - (1 << (width - 1)) for v in x]


class ArrayTB(TB):
    def __init__(self, dut):
        super().__init__(dut, stall="none")
        p = self.params
        self.R, self.C, self.W, self.A = p["rows"], p["cols"], p["in_width"], p["acc_width"]
        self.df, self.signed = p["dataflow"], p["signed"]
        self.latency = self.R + self.C + (1 if self.df == "os" else 0)
        lo, hi = (-(1 << (self.W - 1)), (1 << (self.W - 1)) - 1) if self.signed else (0, (1 << self.W) - 1)
        self.lo, self.hi = lo, hi

    def operands(self, shape, extreme=False):
        if extreme:
            return np.full(shape, self.lo, dtype=np.int64)
        return np.array([[random.randint(self.lo, self.hi) for _ in range(shape[1])]
                         for _ in range(shape[0])], dtype=np.int64)

    async def play(self, beats, expected, length):
        """Drive ``beats[cycle] = {port: value}`` and check outputs: ``expected[cycle]`` is
        ``(data lanes, tag[, row])``; any o_valid at another cycle is an error."""
        dut = self.dut
        inputs = sorted({k for b in beats.values() for k in b})
        got_rows = {}
        for cyc in range(length):
            for port in inputs:
                getattr(dut, port).value = beats.get(cyc, {}).get(port, 0)
            await RisingEdge(self.clk)
            if int(dut.o_valid.value):
                row = (_unpack(int(dut.o_data.value), self.C, self.A, True), int(dut.o_tag.value))
                if self.df == "os":
                    row += (int(dut.o_row.value),)
                got_rows[cyc] = row
        if sorted(got_rows) != sorted(expected):
            raise AssertionError(f"result rows at cycles {sorted(got_rows)[:12]}..., expected at "
                                 f"{sorted(expected)[:12]}... (timing differs from the model)")
        for cyc, want in expected.items():
            want = (list(want[0]),) + tuple(want[1:])
            assert got_rows[cyc] == want, f"cycle {cyc}: got (data, tag[, row]) {got_rows[cyc]}, expected {want}"

    def ws_program(self, tiles, start=2):
        """``tiles``: list of (weights R x C, activations M x R). Returns (beats, expected, end)."""
        R, C = self.R, self.C
        t0, tf = ws_schedule([len(act) for _, act in tiles], R)
        beats, expected = {}, {}
        for j, (w, act) in enumerate(tiles):
            for r in range(R):
                beats.setdefault(start + t0[j] + r, {}).update({"w_valid": 1, "w_row": r, "w_bank": j % 2,
                                                              "w_data": _pack(w[r], self.W)})
            for i, row in enumerate(act):
                cyc = start + tf[j] + i
                tag = random.getrandbits(self.params["tag_width"])
                beats.setdefault(cyc, {}).update({"a_valid": 1, "a_bank": j % 2, "a_tag": tag,
                                                  "a_data": _pack(row, self.W)})
                expected[cyc + self.latency] = (_wrap(np.asarray(row) @ w, self.A), tag)
        return beats, expected, max(expected) + 4

    def os_program(self, tiles, start=2):
        """``tiles``: list of (A tile R x K, B tile K x C)."""
        R = self.R
        starts = os_schedule([a.shape[1] for a, _ in tiles], R)
        beats, expected = {}, {}
        for j, (a, b) in enumerate(tiles):
            k = a.shape[1]
            tag = random.getrandbits(self.params["tag_width"])
            for kk in range(k):
                beats[start + starts[j] + kk] = {
                    "a_valid": 1, "a_first": int(kk == 0), "a_last": int(kk == k - 1),
                    "a_tag": tag if kk == k - 1 else random.getrandbits(self.params["tag_width"]),
                    "a_data": _pack(a[:, kk], self.W), "b_data": _pack(b[kk], self.W)}
            out = a @ b
            last = start + starts[j] + k - 1
            for r in range(R):
                expected[last + self.latency + (R - 1 - r)] = (_wrap(out[r], self.A), tag, r)
        return beats, expected, max(expected) + 4


def _ws_tiles(tb, ms, extreme=False):
    return [(tb.operands((tb.R, tb.C), extreme), tb.operands((m, tb.R), extreme)) for m in ms]


def _os_tiles(tb, ks, extreme=False):
    return [(tb.operands((tb.R, k), extreme), tb.operands((k, tb.C), extreme)) for k in ks]


@cocotb.test()
async def random_tiles(dut):
    """Back-to-back tiles of random sizes (including 1 and sizes around R): every row exact, at
    the modelled cycle, with no bubble beyond the scheduling rules."""
    tb = ArrayTB(dut)
    await tb.reset()
    for _ in range(3):
        if tb.df == "ws":
            ms = [random.choice([1, 2, tb.R - 1 or 1, tb.R, tb.R + 1, 2 * tb.R + 3]) for _ in range(6)]
            prog = tb.ws_program(_ws_tiles(tb, ms))
        else:
            ks = [random.choice([1, 2, tb.R, tb.R + 1, 3 * tb.R]) for _ in range(6)]
            prog = tb.os_program(_os_tiles(tb, ks))
        await tb.play(*prog)


@cocotb.test()
async def operand_extremes(dut):
    """Every operand at the most negative value: largest-magnitude products, no overflow."""
    tb = ArrayTB(dut)
    await tb.reset()
    if tb.df == "ws":
        await tb.play(*tb.ws_program(_ws_tiles(tb, [3, 1, tb.R + 2], extreme=True)))
    else:
        await tb.play(*tb.os_program(_os_tiles(tb, [tb.R, 4 * tb.R + 1], extreme=True)))


@cocotb.test()
async def reset_mid_run(dut):
    """Reset in the middle of a tile sequence, then a fresh sequence is exact (OS accumulators
    and WS weights from before the reset are not used: the new program loads its own)."""
    tb = ArrayTB(dut)
    await tb.reset()
    if tb.df == "ws":
        beats, _, length = tb.ws_program(_ws_tiles(tb, [tb.R + 3] * 3))
    else:
        beats, _, length = tb.os_program(_os_tiles(tb, [2 * tb.R] * 3))
    for cyc in range(length // 2):
        for port, value in beats.get(cyc, {}).items():
            getattr(dut, port).value = value
        await RisingEdge(tb.clk)
    for port in ("a_valid", "w_valid", "a_last", "a_first"):
        if hasattr(dut, port):
            getattr(dut, port).value = 0
    await tb.reset()
    if tb.df == "ws":
        await tb.play(*tb.ws_program(_ws_tiles(tb, [5, tb.R])))
    else:
        await tb.play(*tb.os_program(_os_tiles(tb, [3, tb.R + 2])))




@cocotb.test()
async def bench(dut):
    """``scoville bench systolic --tiles T --m M``: T tiles back to back (WS: M activation rows
    each; OS: M beats each). Utilisation counts array cycles from the first beat to the last
    result against T * M beats (one per cycle is the ideal)."""
    args = bench_args()
    tiles, m = int(args.get("tiles", 16)), int(args.get("m", 64))
    tb = ArrayTB(dut)
    await tb.reset()
    if tb.df == "ws":
        beats, expected, length = tb.ws_program(_ws_tiles(tb, [m] * tiles), start=0)
    else:
        beats, expected, length = tb.os_program(_os_tiles(tb, [m] * tiles), start=0)
    correct = True
    try:
        await tb.play(beats, expected, length)
    except AssertionError:
        correct = False
    cycles = max(expected) + 1          # cycle 0 is the first beat
    write_bench_result({"rows": tb.R, "cols": tb.C, "dataflow": tb.df, "tiles": tiles, "m": m,
                        "cycles": cycles, "ideal_cycles": tiles * m,
                        "utilization": round(tiles * m / cycles, 4), "correct": correct})
    assert correct, "array results differ from numpy (run the other tests for details)"
