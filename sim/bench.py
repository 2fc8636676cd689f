"""Cycle-accurate benchmarks: run a block's ``bench`` cocotb test, and the ``make bench`` suite.

A bench is the block's testbench module's ``bench`` test, handed its workload as JSON in
``SCOVILLE_BENCH_ARGS`` and writing its result dict to ``SCOVILLE_BENCH_OUT`` (see
:mod:`scoville.verif.tb`). Cycle counts depend only on the design, workload and seed.
"""

import json
import sys
import tempfile
from pathlib import Path

from .blocks import BLOCKS
from .elaborate import build_root
from .runner import run


__all__ = ["run_bench", "SUITE", "run_suite"]


def run_bench(block, params, workload, *, sim="verilator", seed=None, fast_compile=False):
    """Run ``block``'s ``bench`` cocotb test; return its result dict, identified by block,
    parameters, workload, simulator and the seed it ran with (repeat it with ``--seed``).
    ``fast_compile``: an -O0 Verilator model (same cycles; for large designs run briefly).
    Input files the workload names are checked first: a bad one fails before any build; a
    relative path is taken from the current directory (the simulator runs elsewhere)."""
    block.check_workload(workload)
    if block.bench_runner is not None:
        result = block.bench_runner(params, workload, sim=sim, seed=seed, fast_compile=fast_compile)
        return {"block": block.name, "params": params, "workload": workload, "sim": sim,
                "seed": seed or 1, **result}
    workload = {**workload, **{name: str(Path(workload[name]).resolve())
                               for name, _ in block.input_files if workload.get(name)}}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        ran = run(block, params, module=block.testbench, sim=sim, testcase=r"\.bench$", seed=seed,
            env={"SCOVILLE_BENCH_ARGS": json.dumps(workload), "SCOVILLE_BENCH_OUT": str(out)},
            fast_compile=fast_compile and sim == "verilator")
        result = json.loads(out.read_text())
    return {"block": block.name, "params": params, "workload": workload, "sim": sim, "seed": ran.seed, **result}



ACCEL_SMALL = {"tiles": 2, "rows": 4, "cols": 4, "lanes": 2, "a_depth": 64, "b_depth": 64, "c_depth": 64,
               "max_n": 16, "vpu_buffer": 32, "vpu_channels": 32, "hbm_channels": 2, "hbm_rows": 8}

# (block, hardware parameters, workload): defaults unless a docs/ figure needs another set. Every
# block with a bench appears (tests/test_bench_suite.py checks it); heavy runs belong here, not in
# `make test`. The figures README.md and docs/ quote that take more than a minute (a build of
# their own, or a long run) are here, with the command the document gives; the cheap ones are
# re-checked by tests/test_doc_figures.py.
SUITE = [
    ("skid_buffer", {"width": 32}, {"beats": 100000, "stall": "none"}),
    ("skid_buffer", {"width": 32}, {"beats": 100000, "stall": "random"}),
    ("rr_arbiter", {"n": 16}, {"cycles": 100000, "load": 50}),
    ("csr", {}, {"accesses": 2000}),
    ("systolic", {}, {}),
    ("gemm", {}, {}),
    # docs/gemm.md, README: scoville bench gemm --rows 16 --cols 16 --dataflow D --m M --k K --n N
    ("gemm", {"rows": 16, "cols": 16, "dataflow": "ws"}, {"m": 256, "k": 256, "n": 256}),  # 65 578, 99.94 %
    ("gemm", {"rows": 16, "cols": 16, "dataflow": "os"}, {"m": 256, "k": 256, "n": 256}),  # 65 593
    ("gemm", {"rows": 16, "cols": 16, "dataflow": "ws"}, {"m": 1, "k": 512, "n": 512}),    # 16 411
    ("hbm", {}, {}),
    # docs/hbm.md, README: scoville bench hbm [--PARAM VALUE] --pattern P --requests N
    ("hbm", {}, {"pattern": "seq", "requests": 460000}),                         # 1 020 708 cycles
    ("hbm", {"refresh": "per_bank"}, {"pattern": "seq", "requests": 30000}),     # 60 101
    ("hbm", {"refresh": "per_bank"}, {"pattern": "random", "requests": 30000}),  # 124 745
    ("hbm", {"preset": "hbm3"}, {"pattern": "seq", "requests": 30000}),          # 66 273
    ("hbm", {"preset": "hbm3"}, {"pattern": "random", "requests": 30000}),       # 203 931
    ("hbm", {"read_queue": 32}, {"pattern": "random", "requests": 30000}),       # 166 706
    ("hbm", {"age_limit": 512, "page_policy": "closed"}, {"pattern": "random", "requests": 30000}),  # 162 653
    ("hbm_stack", {}, {}),
    # docs/hbm.md, README: scoville bench hbm_stack --channels N --rows 32 --pattern P --requests M
    ("hbm_stack", {"channels": 2, "rows": 32}, {"pattern": "seq", "requests": 60000}),      # 66 217
    ("hbm_stack", {"channels": 2, "rows": 32}, {"pattern": "random", "requests": 60000}),   # 142 722
    ("hbm_stack", {"channels": 4, "rows": 32}, {"pattern": "seq", "requests": 120000}),     # 125 420
    ("hbm_stack", {"channels": 4, "rows": 32}, {"pattern": "random", "requests": 120000}),  # 161 749
    ("kvdma", {}, {}),
    # docs/kvdma.md: the two rows tests/test_doc_figures.py leaves out
    ("kvdma", {}, {"layout": "hnd"}),                                            # 262 951
    ("kvdma", {"bus_width": 64}, {"seq_len": 512}),                              # 131 398
    ("noc", {}, {}),
    # docs/noc.md, README: scoville bench noc [--cols 8 --rows 8] --buffer 8 --rate R --cycles 5000
    ("noc", {"buffer": 8}, {"rate": 1.0, "cycles": 5000}),     # docs/noc.md: saturation 0.7217
    ("noc", {"cols": 8, "rows": 8, "buffer": 8}, {"rate": 0.01, "cycles": 5000}),   # 8x8 zero-load
    ("noc", {"cols": 8, "rows": 8, "buffer": 8}, {"rate": 1.0, "cycles": 5000}),    # 8x8 saturation
    # docs/vpu.md: the throughput table's rows at the defaults
    *[("vpu", {}, {"op": op, "n": n, "rows": rows}) for op, n, rows in (
        ("softmax", 32, 256), ("softmax", 256, 64), ("softmax", 4096, 4), ("layernorm", 256, 64),
        ("gelu", 256, 64), ("rope", 256, 64), ("argmax", 49152, 1))],
    ("vpu", {}, {"op": "rope", "pairs": "halves", "n": 256, "rows": 64}),
    # docs/accel.md: whole workloads from HBM to HBM on the small configuration (the one
    # tests/test_accel.py builds), RTL and model
    *[("accel", ACCEL_SMALL, {"workload": wl, "m": m, "k": k, "n": n, "engine": e})
      for wl, m, k, n in (("gemm", 16, 64, 64), ("gemv", 1, 128, 128)) for e in ("rtl", "model")],
]


def run_suite(only=()):
    """Run every ``SUITE`` entry (or those of the blocks named in ``only``): each result is
    printed as a JSON line, and ``build/bench/BLOCK.json`` gets the list of that block's runs.
    Returns 1 if any run failed (the others still run), else 0."""
    only = set(only)
    unknown = only - set(BLOCKS)
    if unknown:
        raise ValueError(f"unknown block(s) {', '.join(sorted(unknown))} (accepted: {', '.join(BLOCKS)})")
    out_dir = build_root() / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    failed, runs = 0, {}
    for name, params, workload in SUITE:
        if only and name not in only:
            continue
        block = BLOCKS[name]
        full = block.configure(**params).as_dict()
        work = block.bench_params(**workload).as_dict() if block.bench_params else {}
        try:
            result = run_bench(block, full, work)
        except Exception as exc:  # one failed run is reported; the suite goes on
            result = {"block": name, "params": full, "workload": work, "error": str(exc)}
            print(f"{name} {params} {workload}: FAILED: {exc}", file=sys.stderr)
            failed += 1
        else:
            print(json.dumps(result), flush=True)
        runs.setdefault(name, []).append(result)
        (out_dir / f"{name}.json").write_text(json.dumps(runs[name], indent=1))
    return 1 if failed else 0
