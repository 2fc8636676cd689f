"""``scoville bench accel``: whole workloads compiled and run on the accelerator, from HBM to HBM.

Workloads (:class:`AccelBenchParams`): ``gemm`` (``M x K`` int8 activations times ``K x N``
int8 weights, requantised to int8 per output channel), ``gemv`` (the same with ``M = batch``:
decode). The result: ``cycles`` (launch to the last tile's end, the ``cycles`` CSR on the RTL),
``correct`` (every output byte against numpy), ``utilization`` (the arrays' ideal MAC cycles
``M*K*N / (R*C*tiles)`` over ``cycles``), ``bytes_moved`` (the bytes the programs' LOADs and
STOREs move, whole 32-byte atoms per row, REPEATs expanded), ``roofline_fraction``
(``bytes_moved / (32 * hbm_channels)`` cycles, the time those bytes take at the configuration's
aggregate HBM peak of one 32-byte atom per channel per cycle, over ``cycles``), and
``of_refresh_ceiling`` (the same against the sequential-read ceiling a channel sustains with
refresh, 90.70 %: docs/hbm.md).
"""

from dataclasses import dataclass

import numpy as np

from scoville.hw.accel.accel import AccelParams
from scoville.hw.accel.isa import ATOM_BYTES, Opcode
from scoville.hw.params import ParameterError, Params, param
from scoville.verif.gemm_model import gemm_ref, requant_ref

from . import asm
from .compiler import Graph, compile
from .runtime import run
from .system import accel_config, run_on_accel


__all__ = ["AccelBenchParams", "bench_accel", "bytes_moved", "SEQ_CEILING"]

SEQ_CEILING = 0.9070      # docs/hbm.md: scoville bench hbm --pattern seq --requests 30000


@dataclass(frozen=True)
class AccelBenchParams(Params):
    """Workload of ``scoville bench accel``."""
    workload: str = param("gemm", choices=("gemm", "gemv"), doc="what to run")
    m: int = param(16, lo=1, hi=65535, doc="gemm: activation rows")
    k: int = param(64, lo=1, hi=65535, doc="reduction length")
    n: int = param(64, lo=1, hi=65535, doc="output columns")
    batch: int = param(1, lo=1, hi=8, doc="gemv: activation rows (decode batch)")
    engine: str = param("rtl", choices=("rtl", "model"), doc="the RTL on Verilator, or the machine model")


def bytes_moved(programs):
    """Bytes the LOADs and STOREs of ``programs`` move (whole atoms per row; REPEATs expanded)."""
    total = 0
    for prog in programs:
        words, i, reps = prog.words, 0, []
        while i < len(words):
            op, f = asm.decode_word(words[i])
            times = 1
            for end, count in reps:
                times *= count
            if op in (Opcode.LOAD, Opcode.STORE):
                total += times * f["rows"] * -(-f["row_bytes"] // ATOM_BYTES) * ATOM_BYTES
            i += 2 if op == Opcode.KV else 1
            if op == Opcode.REPEAT:
                reps.append((i + f["length"], f["count"]))
            reps = [(end, count) for end, count in reps if i < end]
    return total


def _workload(p, w, rng):
    m = w.m if w.workload == "gemm" else w.batch
    x = rng.integers(-128, 128, (m, w.k))
    wt = rng.integers(-128, 128, (w.k, w.n))
    bias = rng.integers(-5000, 5000, w.n)
    mult, shift = rng.integers(1, 1 << 14, w.n), rng.integers(10, 20, w.n)
    g = Graph()
    g.output("y", g.matmul(g.input("x", (m, w.k)), g.weight("w", wt), bias=bias, mult=mult, shift=shift))
    want = requant_ref(gemm_ref(x, wt), bias, mult, shift, bias_en=True, requant_en=True)
    return g, {"x": x}, want, m


def bench_accel(params, workload, *, seed=1, fast_compile=True):
    """Compile ``workload`` for ``params``, run it on its engine, return the JSON-ready result."""
    p = params if isinstance(params, AccelParams) else AccelParams(**params)
    w = workload if isinstance(workload, AccelBenchParams) else AccelBenchParams(**workload)
    rng = np.random.default_rng(seed)
    graph, inputs, want, m = _workload(p, w, rng)
    compiled = compile(graph, accel_config(p), tiles=p.tiles)
    if w.engine == "rtl":
        result = run_on_accel(compiled, inputs, p, fast_compile=fast_compile, seed=seed)
    else:
        result = run(compiled, inputs, engine="model")
    if not result.ok:
        raise ParameterError(f"workload: the program stopped on {w.engine}: "
                             + "; ".join(f"tile {t.tile} {t.state} {t.err_code!r} at {t.err_pc:#x}"
                                         for t in result.tiles))
    got = result.outputs["y"]
    moved = bytes_moved(compiled.programs)
    out = {"engine": w.engine, "m": m, "k": w.k, "n": w.n,
           "tiles": len(compiled.programs), "cycles": result.cycles,
           "correct": bool(np.array_equal(np.asarray(got), want)),
           "mismatches": int(np.count_nonzero(np.asarray(got) != want)), "bytes_moved": moved}
    if result.cycles:
        ideal = m * w.k * w.n / (p.rows * p.cols * p.tiles)
        bound = moved / (ATOM_BYTES * p.hbm_channels)
        out.update({"utilization": round(ideal / result.cycles, 4),
                    "roofline_fraction": round(bound / result.cycles, 4),
                    "of_refresh_ceiling": round(bound / SEQ_CEILING / result.cycles, 4)})
    else:
        out.update({"utilization": None, "roofline_fraction": None, "of_refresh_ceiling": None})
    return out
