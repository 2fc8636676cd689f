"""The GEMM engine on Verilator (array sizes x dataflows) and Icarus (a representative subset).

Buffers are kept small here (simulation build time); ``scoville bench gemm`` uses the defaults.
"""

import pytest

from conftest import run_block


SMALL = {"a_depth": 96, "b_depth": 96, "c_depth": 96, "max_n": 40}
CONFIGS = [(1, 1), (2, 3), (4, 4), (8, 8)]
TESTS = ("shapes_exact|random_stalls|extremes_large_k|accumulate_bias_requant|back_to_back|"
         "back_to_back_mixed|reset_mid_gemm|bad_commands")      # everything but bench


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("rows,cols", CONFIGS, ids=[f"{r}x{c}" for r, c in CONFIGS])
def test_gemm(rows, cols, dataflow):
    run_block("gemm", {"rows": rows, "cols": cols, "dataflow": dataflow, **SMALL}, "scoville.verif.tb_gemm",
              fast_compile=True, testcase=TESTS)


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_gemm_icarus(icarus, dataflow):
    run_block("gemm", {"rows": 2, "cols": 3, "dataflow": dataflow, **SMALL}, "scoville.verif.tb_gemm",
              sim=icarus, testcase="shapes_exact|accumulate_bias_requant|bad_commands")


# ---- wire formats: pure Python (layouts and enums), and the gateware's decode of them ----------

from amaranth.lib import data  # noqa: E402

from scoville.hw.gemm import (GEMM, Command, Op, QParam, Status, StatusWord,  # noqa: E402
                              operand_layout, result_layout)


def _roundtrip(layout, fields):
    bits = layout.const(fields).as_bits()
    assert 0 <= bits < 1 << layout.size
    return data.Const(layout, bits)


def test_layout_widths_match_ports():
    dut = GEMM(rows=2, cols=3, a_depth=8, b_depth=8, c_depth=8, max_n=4)
    assert Command.size == len(dut.s_cmd.tdata) == 64
    assert StatusWord.size == len(dut.m_sts.tdata) == 8
    assert QParam.size == len(dut.s_axis_q.tdata) == 64
    assert operand_layout(2).size == len(dut.s_axis_a.tdata)
    assert operand_layout(3).size == len(dut.s_axis_b.tdata)
    for requant in (False, True):
        assert result_layout(3, requant).size == len(dut.m_axis_c.tdata)


@pytest.mark.parametrize("op", list(Op))
def test_command_roundtrip(op):
    for m, k, n in ((0, 0, 0), (1, 2, 3), (65535, 1, 65535)):
        for flags in ((0, 0, 0), (1, 0, 1), (0, 1, 0), (1, 1, 1)):
            fields = {"op": op, "m": m, "k": k, "n": n, "accumulate": flags[0],
                      "bias": flags[1], "requant": flags[2]}
            got = _roundtrip(Command, fields)
            assert {f: getattr(got, f) for f in fields} == fields


def test_status_and_q_roundtrip():
    for op in range(16):
        for code in Status:
            got = _roundtrip(StatusWord, {"op": op, "code": code})
            assert (got.op, got.code) == (op, code)
    for bias, mult, shift in ((-(1 << 31), -(1 << 15), 0), ((1 << 31) - 1, (1 << 15) - 1, 63),
                              (-1, 1, 14)):
        got = _roundtrip(QParam, {"bias": bias, "mult": mult, "shift": shift})
        assert (got.bias, got.mult, got.shift) == (bias, mult, shift)


def test_lane_layouts_roundtrip():
    lanes = [-128, 127, 0, -1, 5]
    got = _roundtrip(operand_layout(5), lanes)
    assert [got[i] for i in range(5)] == lanes
    for requant, values in ((False, [-(1 << 31), (1 << 31) - 1, -7]), (True, [-128, 127, -7])):
        got = _roundtrip(result_layout(3, requant), {"lanes": values})
        assert [got.lanes[i] for i in range(3)] == values


def test_gateware_decodes_enums():
    """Amaranth's Python simulator: every Op with a zero size answers BAD_SIZE echoing that op,
    every undefined opcode BAD_OP echoing itself, a valid LOAD_Q OK — the enums are the codes the
    gateware decodes and emits."""
    from amaranth.sim import Simulator

    dut = GEMM(rows=1, cols=1, a_depth=4, b_depth=4, c_depth=4, max_n=2)
    results = []
    sent = [(Command.const({"op": op}).as_bits(), op.value, Status.BAD_SIZE) for op in Op]
    defined = {op.value for op in Op}
    sent += [(Command.const({}).as_bits() | v << Command["op"].offset, v, Status.BAD_OP)
             for v in range(1 << Command["op"].width) if v not in defined]
    sent.append((Command.const({"op": Op.LOAD_Q, "n": 1}).as_bits(), Op.LOAD_Q.value, Status.OK))

    async def bench(ctx):
        ctx.set(dut.m_sts.tready, 1)
        ctx.set(dut.s_axis_q.tvalid, 1)
        ctx.set(dut.s_axis_q.tdata, QParam.const({"bias": 1, "mult": 1, "shift": 0}).as_bits())
        for word, _, _ in sent:
            ctx.set(dut.s_cmd.tdata, word)
            ctx.set(dut.s_cmd.tvalid, 1)
            await ctx.tick().until(dut.s_cmd.tready)
            ctx.set(dut.s_cmd.tvalid, 0)
            raw, = await ctx.tick().sample(dut.m_sts.tdata).until(dut.m_sts.tvalid)
            results.append(data.Const(StatusWord, raw))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert [(r.op, r.code) for r in results] == [(op, code) for _, op, code in sent]
