"""The systolic array on Verilator (full matrix of sizes and both dataflows) and Icarus (subset)."""

import pytest

from conftest import run_block


ARRAYS = [(1, 1), (2, 3), (4, 4), (8, 8), (16, 16)]


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("rows,cols", ARRAYS, ids=[f"{r}x{c}" for r, c in ARRAYS])
def test_systolic(rows, cols, dataflow):
    run_block("systolic", {"rows": rows, "cols": cols, "dataflow": dataflow}, "scoville.verif.tb_systolic",
              fast_compile=True)


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_systolic_icarus(icarus, dataflow):
    run_block("systolic", {"rows": 2, "cols": 3, "dataflow": dataflow}, "scoville.verif.tb_systolic",
              sim=icarus)


def test_lanes_layout_roundtrip():
    """Vector ports: lane i at bits [i*w, (i+1)*w), signed or not, through lanes_layout."""
    from amaranth.lib import data
    from scoville.hw.systolic import SystolicArray, lanes_layout

    dut = SystolicArray(rows=3, cols=2, in_width=8, acc_width=32)
    assert lanes_layout(3, 8).size == len(dut.a_data) and lanes_layout(2, 32).size == len(dut.o_data)
    for values, is_signed in (([-128, 127, -1], True), ([0, 255, 7], False)):
        bits = lanes_layout(3, 8, is_signed).const(values).as_bits()
        got = data.Const(lanes_layout(3, 8, is_signed), bits)
        assert [got[i] for i in range(3)] == values
