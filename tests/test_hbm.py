"""HBM pseudo-channel controller: cocotb tests on Verilator (full set) and Icarus (subset)."""

import json
import random

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


# The address mappings other than the default, xor_bank and the hbm3 preset, each simulated;
# combined so that three builds cover them all.
OTHER_CONFIGS = {
    "ro_ba_bg_co+xor_bank": {"mapping": "ro_ba_bg_co", "xor_bank": True},
    "ro_co_ba_bg+hbm3": {"mapping": "ro_co_ba_bg", "preset": "hbm3"},
    "ba_bg_ro_co": {"mapping": "ba_bg_ro_co"},
}


@pytest.mark.parametrize("config", list(OTHER_CONFIGS))
def test_hbm_other_configs(config):
    """Each mapping, xor_bank on, the hbm3 preset: random mixes with stalls (short mix, hot
    rows), read-after-write, error responses and refresh, every byte against the golden memory
    and every command against the independent timing model (0 violations)."""
    run_block("hbm", {**SMALL, **OTHER_CONFIGS[config]}, "scoville.verif.tb_hbm", sim="verilator",
              testcase=r"short_mix|hot_rows|read_after_write|bad_addresses|refresh_rate", fast_compile=True)


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


def kv_trace(path, kind, *, runs=60, run_atoms=64, write_every=5, size=256 * 1024, burst=2, seed=11):
    """The KV cache's pattern as a DRAMsim3 trace: ``run_atoms``-atom sequential runs at random
    rows (2 KiB aligned), one run in ``write_every`` a write run (APPEND), the others read runs
    (GATHER), half of which re-read a run written earlier; one line every ``burst`` cycles (the
    peak rate). ``kind`` "reads"/"writes" turns every run into a read/write run at the same
    addresses and times. Returns the number of write runs of the mixed trace."""
    rnd = random.Random(seed)
    slots = size // (run_atoms * 32)
    written, lines, n, write_runs = [], [], 0, 0
    for k in range(runs):
        is_write = k % write_every == write_every - 1
        if not is_write and written and rnd.random() < 0.5:
            slot = rnd.choice(written)
        else:
            slot = rnd.randrange(slots)
        if is_write:
            written.append(slot)
            write_runs += 1
        op = {"mixed": "WRITE" if is_write else "READ", "reads": "READ", "writes": "WRITE"}[kind]
        for a in range(run_atoms):
            lines.append(f"{hex((slot * run_atoms + a) * 32)} {op} {n * burst}")
            n += 1
    path.write_text("\n".join(lines) + "\n")
    return write_runs


def mixed_bound(read_eff, write_eff, write_share, requests, write_runs, timing):
    """Efficiency the mixed trace must reach (docs/hbm.md, "Mixed traffic"): the read and write
    shares take the time they take alone, plus one read->write->read round trip per write run,
    each losing ``rtw + wtr_L - 2 tCCD_S`` cycles of column slots."""
    turnaround = timing.rtw + timing.wtr(True) - 2 * timing.tccd_s
    cycles = requests * timing.burst * ((1 - write_share) / read_eff + write_share / write_eff) \
        + write_runs * turnaround
    return requests * timing.burst / cycles


def test_hbm_mixed_trace_efficiency(tmp_path):
    """APPEND writes between GATHER reads (issue 11): the mixed trace reaches the bound built
    from the read-only and write-only replays of the same addresses; 0 timing violations, every
    read byte checked (half the read runs re-read written rows)."""
    timing = HBMParams(**SMALL).timing()
    res = {}
    for kind in ("mixed", "reads", "writes"):
        kv_trace(tmp_path / f"{kind}.trace", kind)
        res[kind] = _bench(tmp_path, {"trace": str(tmp_path / f"{kind}.trace")}, kind)
        assert res[kind]["timing_violations"] == 0 and res[kind]["data_errors"] == 0, res[kind]
    mixed = res["mixed"]
    share = mixed["writes"] / mixed["requests"]
    write_runs = kv_trace(tmp_path / "mixed.trace", "mixed")
    bound = mixed_bound(res["reads"]["efficiency"], res["writes"]["efficiency"], share,
                        mixed["requests"], write_runs, timing)
    print({k: (r["efficiency"], r["row_hit_rate"], r["read_latency"]) for k, r in res.items()}, bound)
    assert mixed["efficiency"] >= bound, (mixed["efficiency"], bound, res)


STACK = {"channels": 2, "rows": 8, "read_queue": 8, "write_queue": 8, "wq_high": 6, "wq_low": 2}


def test_hbm_stack_icarus(icarus):
    """Two interleaved pseudo-channels: a short random mix with stalls (bursts crossing the
    interleave granule are split by the stack into per-channel parts; they must return OKAY and
    the golden data like any other burst), error responses, every byte and every command of both
    channels checked. (Longer random mixes pass too but take minutes on Icarus.)"""
    run_block("hbm_stack", STACK, "scoville.verif.tb_hbm", sim=icarus, testcase=r"short_mix|bad_addresses")


def test_hbm_stack_verilator():
    """Two interleaved pseudo-channels on Verilator: random mixes with and without stalls over
    the whole stack (bursts crossing the 1 KiB interleave granule split into per-channel parts,
    OKAY and their data checked like any other), hot rows, read-after-write, error responses,
    idle row-hit latency through the stack, refresh of every channel, reset in the middle of
    traffic; every byte against the numpy golden memory and every command of both channels
    against its own timing model."""
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
