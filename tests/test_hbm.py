"""HBM pseudo-channel controller: cocotb tests on Verilator (full set) and Icarus (subset)."""

import json

import pytest

from conftest import run_block
from scoville.hw.hbm.timing import HBMParams
from scoville.hw.params import ParameterError

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
    # -O0 model: these tests are bound by the Python drivers and checkers, not by the model.
    run_block("hbm", SMALL, "scoville.verif.tb_hbm", sim="verilator", testcase=r"^(?!.*bench)", fast_compile=True)


def test_hbm_per_bank_refresh():
    """Per-bank refresh (with the closed-page policy; the other tests use the default open
    page): random traffic, refresh rate (REFPB count and every bank's deadline), bounded wait;
    the model checks tRFCpb, tRREFD and REFPB as an ACT for tRRD/tFAW."""
    run_block("hbm", {**SMALL, "refresh": "per_bank", "page_policy": "closed"}, "scoville.verif.tb_hbm", sim="verilator",
              testcase=r"short_mix|refresh_rate|bounded_wait|hot_rows", fast_compile=True)


def test_hbm_icarus(icarus):
    """The Icarus subset: error responses, read-after-write, idle latency."""
    run_block("hbm", SMALL, "scoville.verif.tb_hbm", sim=icarus,
              testcase=r"bad_addresses|read_after_write|idle_latency")


def _bench(tmp_path, workload, name, block="hbm", params=SMALL):
    """The block's bench on the same -O0 build as its Verilator tests (no second compile)."""
    out = tmp_path / f"{name}.json"
    run_block(block, params, "scoville.verif.tb_hbm", testcase=r"\.bench$", fast_compile=True,
              env={"SCOVILLE_BENCH_ARGS": json.dumps(workload), "SCOVILLE_BENCH_OUT": str(out)})
    return json.loads(out.read_text())


def test_hbm_bench_smoke(tmp_path):
    """The bench's hardware traffic generator with the timing model attached: JSON keys, no
    violation or data error, sequential reads near the refresh ceiling, mixed traffic correct."""
    keys = {"bytes", "cycles", "bandwidth_GBps", "efficiency", "row_hit_rate", "avg_read_latency",
            "max_read_latency", "refreshes", "timing_violations", "data_errors"}
    seq = _bench(tmp_path, {"pattern": "seq", "requests": 6000}, "seq")
    assert keys <= set(seq), sorted(keys - set(seq))
    assert seq["timing_violations"] == 0 and seq["data_errors"] == 0
    assert seq["of_refresh_ceiling"] >= 0.95, seq
    mixed = _bench(tmp_path, {"pattern": "mixed", "requests": 3000}, "mixed")
    assert mixed["writes"] > 500 and mixed["timing_violations"] == 0 and mixed["data_errors"] == 0


def test_hbm_trace_replay(tmp_path):
    """A DRAMsim3-format trace (0xADDR READ|WRITE CYCLE) replays through the bench."""
    trace = tmp_path / "example.trace"
    lines = ["# addr op cycle"]
    for n in range(300):
        op = "WRITE" if n % 3 == 0 else "READ"
        lines.append(f"{hex((n * 0x1040) % (1 << 20))} {op} {n * 3}")
    trace.write_text("\n".join(lines) + "\n")
    result = _bench(tmp_path, {"trace": str(trace)}, "trace")
    assert result["requests"] == 300 and result["writes"] == 100
    assert result["timing_violations"] == 0 and result["data_errors"] == 0


STACK = {"channels": 2, "rows": 8, "read_queue": 8, "write_queue": 8, "wq_high": 6, "wq_low": 2}


def test_hbm_stack_icarus(icarus):
    """Two interleaved pseudo-channels: a short random mix with stalls (bursts crossing the
    interleave granule answered SLVERR), error responses, every byte and every command of both
    channels checked. (Longer random mixes pass too but take minutes on Icarus.)"""
    run_block("hbm_stack", STACK, "scoville.verif.tb_hbm", sim=icarus, testcase=r"short_mix|bad_addresses")


def test_hbm_stack_verilator():
    """Two interleaved pseudo-channels on Verilator: random mixes with and without stalls over
    the whole stack (bursts crossing the 1 KiB interleave granule answered SLVERR), hot rows,
    read-after-write, error responses, idle row-hit latency through the stack, refresh of every
    channel, reset in the middle of traffic; every byte against the numpy golden memory and
    every command of both channels against its own timing model."""
    run_block("hbm_stack", STACK, "scoville.verif.tb_hbm", sim="verilator", fast_compile=True,
              testcase=r"random_mix|short_mix|hot_rows|read_after_write|bad_addresses|idle_latency|"
                       r"refresh_rate|reset_mid_traffic")


def test_hbm_stack_bench_smoke(tmp_path):
    """``scoville bench hbm_stack`` on the test build: the JSON, no violation or data error on
    either channel, sequential traffic spread evenly over the channels by the interleave, mixed
    random reads and writes correct. (Bandwidth is measured at the default queue sizes, see
    docs/hbm.md: with these 8-entry queues, fewer than the 32 atoms of a 1 KiB granule, the
    port waits on one channel at a time.)"""
    keys = {"channels", "bandwidth_GBps", "efficiency", "of_refresh_ceiling", "of_activation_bound",
            "of_port_bound", "channel_accesses", "timing_violations", "data_errors"}
    seq = _bench(tmp_path, {"pattern": "seq", "requests": 8000}, "stack_seq", "hbm_stack", STACK)
    assert keys <= set(seq), sorted(keys - set(seq))
    assert seq["channels"] == 2 and seq["timing_violations"] == 0 and seq["data_errors"] == 0, seq
    a, b = seq["channel_accesses"]
    assert a + b == 8000 and abs(a - b) <= 32, seq["channel_accesses"]  # 32 atoms per 1 KiB granule
    mixed = _bench(tmp_path, {"pattern": "mixed", "requests": 3000}, "stack_mixed", "hbm_stack", STACK)
    assert mixed["writes"] > 500 and mixed["timing_violations"] == 0 and mixed["data_errors"] == 0, mixed
    assert min(mixed["channel_accesses"]) > 1000, mixed["channel_accesses"]
