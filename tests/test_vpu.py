"""The vector unit on Verilator (two lane counts) and Icarus (a subset), against the golden
model; and the golden model against the float functions (accuracy figures of docs/vpu.md)."""

import pytest

from conftest import run_block


SMALL = {"buffer": 256, "channels": 128}
TESTS = "every_op|extremes|random_stalls|vocabulary_argmax|bad_commands|reset_mid_row|throughput"


@pytest.mark.parametrize("lanes", [16, 8])
def test_vpu(lanes):
    # The row buffer must hold the rows in flight during a row scalar's latency for the
    # two-pass rate (docs/vpu.md, Timing): 32 x lanes elements covers rows of 4 x lanes.
    params = {"lanes": lanes, "buffer": max(SMALL["buffer"], 32 * lanes), "channels": SMALL["channels"]}
    run_block("vpu", params, "scoville.verif.tb_vpu", fast_compile=True, testcase=TESTS)


def test_vpu_icarus(icarus):
    run_block("vpu", {"lanes": 2, "buffer": 64, "channels": 32}, "scoville.verif.tb_vpu", sim=icarus,
              testcase="bad_commands|extremes")
