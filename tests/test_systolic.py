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
