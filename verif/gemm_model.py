"""Golden models of the systolic array and the GEMM engine: numpy arithmetic and cycle counts.

Arithmetic: int8 x int8 products summed exactly and wrapped to int32 (two's complement), an
optional int32 bias, and requantisation ``sat8(round_shift((c + bias) * mult, shift))`` with a
signed 16-bit per-column multiplier and a round-half-up arithmetic right shift.

Cycles: :func:`scalesim_cycles` gives the no-overlap SCALE-Sim counts (Samajdar et al., ISPASS 2020);
:func:`ws_schedule` / :func:`os_schedule` give the cycle at which the overlapped design issues
every tile, which the RTL must match exactly.
"""

import math

import numpy as np


__all__ = ["wrap32", "gemm_ref", "requant_ref", "scalesim_cycles", "ideal_cycles",
           "ws_schedule", "os_schedule"]


def wrap32(x):
    """Wrap integers (any numpy int array) to int32 two's complement."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int64)


def gemm_ref(a, b, c0=None, accumulate=False):
    """``C = A @ B (+ C0 if accumulate)`` with exact int64 sums wrapped to int32."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    out = a @ b
    if accumulate:
        out = out + np.asarray(c0, dtype=np.int64)
    return wrap32(out)


def requant_ref(c, bias=None, mult=None, shift=None, *, bias_en=False, requant_en=False):
    """The store path: ``c + bias`` (wrapped to int32 unless requantised) and, when
    ``requant_en``, ``clip(round_half_up(((c + bias) * mult) >> shift), -128, 127)``.

    ``c + bias`` is exact (33 bits) before the multiply, as in the RTL.
    """
    c = np.asarray(c, dtype=np.int64)
    n = c.shape[1]
    bias = np.zeros(n, np.int64) if bias is None else np.asarray(bias, dtype=np.int64)
    s = c + (bias[None, :] if bias_en else 0)
    if not requant_en:
        return wrap32(s)
    mult = np.asarray(mult, dtype=np.int64)[None, :]
    shift = np.asarray(shift, dtype=np.int64)[None, :]
    p = s * mult
    rounding = np.where(shift > 0, np.left_shift(1, np.maximum(shift - 1, 0)), 0)
    r = np.right_shift(p + rounding, shift)
    return np.clip(r, -128, 127)


def scalesim_cycles(rows, cols, m, k, n, dataflow):
    """No-overlap cycle count of SCALE-Sim for one GEMM (the published SCALE-Sim formulas)."""
    if dataflow == "ws":
        return math.ceil(k / rows) * math.ceil(n / cols) * (2 * rows + cols + m - 2)
    return math.ceil(m / rows) * math.ceil(n / cols) * (rows + cols + k - 2)


def ideal_cycles(rows, cols, m, k, n):
    return m * k * n / (rows * cols)


def ws_schedule(tile_ms, rows):
    """Issue cycles of a weight-stationary tile sequence, relative to the first weight row.

    ``tile_ms[j]`` is the number of activation rows of tile ``j``. Returns ``(t0, tf)``: the
    cycle each tile's first weight row is issued and the cycle its first activation row is
    issued. The rules are the RTL's: one weight row per cycle (``R`` per tile); a tile's weights
    may start loading once the previous tile has started computing (its bank is then free); its
    activations start one cycle after its first weight row and after the previous tile's
    activations.
    """
    t0, tf = [], []
    for j, m in enumerate(tile_ms):
        if j == 0:
            t0.append(0)
        else:
            t0.append(max(t0[-1] + rows, tf[-1]))
        tf.append(t0[-1] + 1 if j == 0 else max(tf[-1] + tile_ms[j - 1], t0[-1] + 1))
    return t0, tf


def os_schedule(tile_ks, rows):
    """Issue cycle of the first beat of each output-stationary tile (relative to the first):
    a tile of K beats occupies ``max(K, R)`` cycles (the drain chain needs ``R``)."""
    starts, t = [], 0
    for k in tile_ks:
        starts.append(t)
        t += max(k, rows)
    return starts


# Structural constants of hw.gemm.GEMM (cycles), used by gemm_cycles.
DISPATCH = 6    # command accepted (s_cmd handshake edge) -> first buffer read of its first tile
TAIL = 3        # array result row -> status beat transferred on m_sts (ready held high)


def gemm_issue_cycles(rows, cols, dataflow, shapes):
    """Cycle (relative to the first buffer read) of the last activation read of each COMPUTE in
    ``shapes`` = [(M, K, N), ...] issued back to back."""
    ends = []
    if dataflow == "ws":
        tiles, owner = [], []
        for i, (m, k, n) in enumerate(shapes):
            count = math.ceil(k / rows) * math.ceil(n / cols)
            tiles += [m] * count
            owner += [i] * count
        t0, tf = ws_schedule(tiles, rows)
        for i in range(len(shapes)):
            j = max(idx for idx, o in enumerate(owner) if o == i)
            ends.append(tf[j] + tiles[j] - 1)
        return ends
    ks, owner = [], []
    for i, (m, k, n) in enumerate(shapes):
        count = math.ceil(m / rows) * math.ceil(n / cols)
        ks += [k] * count
        owner += [i] * count
    starts = os_schedule(ks, rows)
    for i in range(len(shapes)):
        j = max(idx for idx, o in enumerate(owner) if o == i)
        ends.append(starts[j] + ks[j] - 1)
    return ends


def gemm_cycles(rows, cols, dataflow, shapes):
    """Cycles from the first COMPUTE's command handshake to each COMPUTE's status handshake,
    for back-to-back COMPUTEs (each queued before the previous one finishes issuing)."""
    ends = gemm_issue_cycles(rows, cols, dataflow, shapes)
    if dataflow == "ws":
        tail = 1 + rows + cols + TAIL           # buffer read, array, writeback + status
    else:
        tail = 1 + rows + cols + 1 + (rows - 1) + TAIL  # row 0 of the last tile leaves last
    return [DISPATCH + e + tail for e in ends]
