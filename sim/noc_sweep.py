"""Latency/throughput sweeps of the ``noc`` block and their plot (``scoville bench noc --sweep``).

Every point is one run of the ``bench`` cocotb test (hardware traffic generators, one build
for the whole sweep). ``sweep()`` returns the list of bench results; ``plot()`` draws average
(and p99) latency against offered load and marks the zero-load latency and the saturation
throughput.
"""

__all__ = ["bench_point", "sweep", "saturation", "plot", "DEFAULT_RATES"]

DEFAULT_RATES = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 1.0)


def bench_point(params, workload, *, sim="verilator", seed=None, fast_compile=True):
    """One ``bench`` run of the ``noc`` block; returns the result dict. ``fast_compile``: an
    -O0 Verilator model (a 4x4 mesh compiles several times faster; the cycles are the same)."""
    from .blocks import get_block
    from .bench import run_bench
    block = get_block("noc")
    return run_bench(block, block.configure(**params).as_dict(), workload, sim=sim, seed=seed,
                     fast_compile=fast_compile)


def sweep(params, workload, rates=DEFAULT_RATES, *, sim="verilator", seed=None, progress=None,
          fast_compile=True):
    """Bench results for each offered load in ``rates`` (other workload options as given)."""
    results = []
    for rate in rates:
        result = bench_point(params, {**workload, "rate": rate}, sim=sim, seed=seed,
                             fast_compile=fast_compile)
        results.append(result)
        if progress:
            progress(result)
    return results


def saturation(results, factor=3.0):
    """Saturation throughput of a sweep, two ways: the highest accepted load, and the highest
    offered load whose average latency stays under ``factor`` x zero-load latency."""
    best = max(r["accepted"] for r in results)
    zl = results[0]["zero_load_latency"]
    knee = max((r["offered"] for r in results
                if r["avg_latency"] is not None and r["avg_latency"] <= factor * zl), default=0.0)
    return {"max_accepted": best, f"offered_at_{factor:g}x_zero_load": knee}


def plot(results, path, title=None):
    """Latency against offered load (average and p99), accepted load on a second axis."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    offered = [r["offered"] for r in results]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(offered, [r["avg_latency"] for r in results], "o-", label="average latency")
    ax.plot(offered, [r["p99_latency"] for r in results], "s--", alpha=0.6, label="p99 latency")
    zl = results[0]["zero_load_latency"]
    ax.axhline(zl, color="grey", linestyle=":", label=f"zero-load model ({zl:g} cycles)")
    ax.set_xlabel("offered load (flits/node/cycle)")
    ax.set_ylabel("latency (cycles, creation to tail ejected)")
    worst = max(max(r["avg_latency"] or 0, r["p99_latency"] or 0) for r in results)
    top = max(4 * zl, min(250, worst * 1.1))
    ax.set_ylim(0, top)
    ax2 = ax.twinx()
    ax2.plot(offered, [r["accepted"] for r in results], "^-", color="tab:green", alpha=0.7,
             label="accepted load")
    ax2.set_ylabel("accepted load (flits/node/cycle)")
    ax2.set_ylim(0, 1.05)
    sat = saturation(results)
    ax.set_title(title or f"NoC sweep: saturation {sat['max_accepted']:.3f} flits/node/cycle")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper left", fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
