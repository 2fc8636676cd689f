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
