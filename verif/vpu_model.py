"""Golden model of the vector unit: numpy arithmetic the RTL matches bit for bit, the float
function each operation approximates, and the command checks.

Notation (all integers exact, int64):

* ``rshr(v, s)`` — round half up, arithmetic: ``floor((v + 2**(s-1)) / 2**s)``, ``v`` for s = 0;
* ``sat32``, ``sat_out`` — clip to int32, to the output format's range;
* ``exp2neg``, ``recip``, ``rsqrt``, ``pwl`` — the table-driven function units of
  :mod:`scoville.verif.vpu_funcs` (formats there).

Per opcode, ``t`` is the element after the front end's map and ``y`` the output element; ``j``
the element index in its row, ``r`` the row index, ``(off_j, m_j, sh_j)`` channel ``j``'s
parameters, ``ma, sa, mb, sb`` the command's ``mult_a, shift_a, mult_b, shift_b``:

=============  ===========================================================================
SCALE          ``y = sat_out(sat32(rshr(a*ma, sa)))``
ADD            ``y = sat_out(sat32(rshr(a*ma + b*mb, sa)))``
MUL            ``y = sat_out(sat32(rshr(a*b*ma, sa)))``
GELU / SILU    ``x = sat32(rshr(a*ma, sa))`` (Q.10); ``y = sat_out(sat32(rshr(pwl(x)*mb, sb)))``
ROPE           ``y = sat_out(sat32(rshr((a_j*cos_j + s_j*a_p*sin_j)*ma, 14 + sa)))``, partner
               ``p`` and sign ``s_j`` (-1 for the pair's first element, +1 for its second)
REQUANT        ``y = sat_out(rshr((a + off_j)*m_j, sh_j))``
REQUANT_DYN    ``A = max|a|`` (1 if 0); ``(R, e) = recip(A)``; ``y = sat8(rshr(a*127*R, e + 17))``;
               A emitted on m_axis_s
SOFTMAX        ``z = sat32(rshr(a*ma, sa))``, log2 units in Q.8; online per-lane (max, sum) —
               see :func:`softmax_stats`; ``(R, e) = recip(S)``;
               ``y = rshr(exp2neg(min(256*(M+1) - z, 65535)) * qmax*R, e + 17)``, 0 if masked
RMSNORM        ``Q = sum a^2 + eps``; ``(G, h) = rsqrt(Q)``; ``v = rshr(a*G, h)`` (Q.16);
               ``y = sat_out(rshr(v*m_j, 16 + sh_j) + off_j)``
LAYERNORM      ``S1 = sum a``, ``D = n*sum a^2 - S1^2 + eps``; ``(G, h) = rsqrt(D)``;
               ``v = rshr((n*a - S1)*G, h)``; y as RMSNORM
MAX/SUM/SUMSQ  int64 on m_axis_s; ARGMAX the maximum and its first index
=============  ===========================================================================

``eps = (mult_b as unsigned 16) << shift_b`` for the norms. SOFTMAX keeps ``L_r = min(n, len +
(r if causal else 0))`` elements of row ``r``; a row with ``L_r = 0`` gives zeros.
"""

import math

import numpy as np

from scoville.hw.vpu.layouts import (EXP_D_MAX, FMT_BITS, FMT_MAX, INT8_16_ONLY, M_INIT,
                                     NORM_FRAC, PWL_FRAC, REDUCTIONS, ROPE_FRAC, SOFTMAX_FRAC,
                                     TWO_PASS, USES_B, USES_CHANNELS, Fmt, Op, Status)
from scoville.hw.vpu.decode import EPS_SHIFT_MAX
from .vpu_funcs import exp2neg, pwl, recip, rsqrt


__all__ = ["rshr", "sat", "check_command", "VPUModel", "float_ref", "softmax_stats",
           "EPS_SHIFT_MAX", "SOFTMAX_FRAC", "NORM_FRAC", "PWL_FRAC"]



def rshr(v, s):
    """Round-half-up arithmetic right shift by ``s`` (array or scalar, 0..127), exact."""
    v = np.asarray(v, dtype=np.int64)
    s = np.minimum(np.asarray(s, dtype=np.int64), 63)
    half = np.where(s > 0, np.left_shift(np.int64(1), np.maximum(s - 1, 0)), 0)
    return np.right_shift(v + half, s)


def sat(v, bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(np.asarray(v, dtype=np.int64), lo, hi)


def sat32(v):
    return sat(v, 32)


def check_command(cmd, *, lanes, buffer, channels, rope_max):
    """Status the VPU answers for command ``cmd`` (a dict of :data:`Command` fields) before
    touching any data: OK, or the error code (checked in the order BAD_OP, BAD_FMT, BAD_SIZE)."""
    try:
        op = Op(cmd["op"])
    except ValueError:
        return Status.BAD_OP
    in_fmt, out_fmt = cmd.get("in_fmt", 0), cmd.get("out_fmt", 0)
    if in_fmt == 3 or out_fmt == 3:
        return Status.BAD_FMT
    if op in INT8_16_ONLY and in_fmt == Fmt.INT32.value:
        return Status.BAD_FMT
    if op is Op.REQUANT_DYN and out_fmt != Fmt.INT8.value:
        return Status.BAD_FMT
    if op is Op.SOFTMAX and out_fmt == Fmt.INT32.value:
        return Status.BAD_FMT
    if op in (Op.RMSNORM, Op.LAYERNORM) and cmd.get("shift_b", 0) > EPS_SHIFT_MAX:
        return Status.BAD_FMT
    n, rows = cmd.get("n", 0), cmd.get("rows", 0)
    if n == 0 or rows == 0:
        return Status.BAD_SIZE
    if op in TWO_PASS and n > buffer:
        return Status.BAD_SIZE
    if op in USES_CHANNELS and n > channels:
        return Status.BAD_SIZE
    if op is Op.ROPE and (n % 2 or (cmd.get("halves", 0) and ((n // 2) % lanes or n > rope_max))):
        return Status.BAD_SIZE
    return Status.OK


def _lanes_of(t, lanes):
    """Split rows (rows, n) into lane sequences: lane l holds elements l, l + lanes, ..."""
    return [t[:, l::lanes] for l in range(lanes)]


def softmax_stats(z, valid, lanes):
    """Per-row ``(M, S)`` of the RTL's online softmax: per lane, for each unmasked ``z`` in
    element order, ``k = z >> 8``, ``e = exp2neg(256 - (z & 255))``, ``m' = max(m, k)``,
    ``s = (s >> (m' - m)) + (e >> (m' - k))`` (shifts of 32 or more give 0); then the lanes are
    combined pairwise as a binary tree (lane 2i with 2i+1, ...) by the same rule."""
    rows, n = z.shape
    ms, ss = [], []
    for l in range(lanes):
        m = np.full(rows, M_INIT, np.int64)
        s = np.zeros(rows, np.int64)
        for j in range(l, n, lanes):
            v = valid[:, j]
            k = z[:, j] >> SOFTMAX_FRAC
            e = exp2neg(256 - (z[:, j] & 255))
            m2 = np.maximum(m, k)
            s2 = _shr32(s, m2 - m) + _shr32(e, m2 - k)
            m, s = np.where(v, m2, m), np.where(v, s2, s)
        ms.append(m)
        ss.append(s)
    while len(ms) > 1:
        nm, ns = [], []
        for i in range(0, len(ms), 2):
            m2 = np.maximum(ms[i], ms[i + 1])
            nm.append(m2)
            ns.append(_shr32(ss[i], m2 - ms[i]) + _shr32(ss[i + 1], m2 - ms[i + 1]))
        ms, ss = nm, ns
    return ms[0], ss[0]


def _shr32(v, s):
    """``v >> s`` for an unsigned 32-bit ``v``; 0 when ``s`` >= 32."""
    s = np.asarray(s, dtype=np.int64)
    return np.where(s >= 32, 0, np.right_shift(v, np.minimum(s, 31)))


def softmax_valid(rows, n, length, causal):
    r = np.arange(rows)[:, None]
    lim = np.minimum(n, length + (r if causal else 0))
    return np.arange(n)[None, :] < lim


def rope_partner(a, halves):
    """(partner, sign) of every element of rows ``a``: GGUF pairs (2i, 2i+1), or halves."""
    n = a.shape[1]
    j = np.arange(n)
    if halves:
        h = n // 2
        p = np.where(j < h, j + h, j - h)
        sign = np.where(j < h, -1, 1)
    else:
        p = j ^ 1
        sign = np.where(j % 2 == 0, -1, 1)
    return a[:, p], sign[None, :]


class VPUModel:
    """The VPU's architectural state (the channel-parameter memory) and one method per command.

    ``run(cmd, a=None, b=None, p=None)`` returns ``(status, y, scalars)``: the status code, the
    output rows (rows, n) or None, the m_axis_s words (int64 per row; ARGMAX ``(value, index)``)
    or None. ``a``/``b`` are (rows, n) integer arrays of the input formats, ``b`` for ROPE the
    (cos, sin) pair per element as a (rows, n, 2) array; ``p`` for LOAD_P a (n, 3) array of
    (offset, mult, shift).
    """

    def __init__(self, *, lanes=8, buffer=4096, channels=2048, rope_max=256):
        self.lanes, self.buffer, self.channels, self.rope_max = lanes, buffer, channels, rope_max
        self.params = np.zeros((channels, 3), np.int64)

    def run(self, cmd, a=None, b=None, p=None):
        status = check_command(cmd, lanes=self.lanes, buffer=self.buffer, channels=self.channels,
                               rope_max=self.rope_max)
        if status is not Status.OK:
            return status, None, None
        op = Op(cmd["op"])
        n, rows = cmd["n"], cmd["rows"]
        if op is Op.LOAD_P:
            self.params[:n] = np.asarray(p, dtype=np.int64).reshape(n, 3)
            return status, None, None
        a = np.asarray(a, dtype=np.int64).reshape(rows, n)
        ma, sa = cmd.get("mult_a", 0), cmd.get("shift_a", 0)
        mb, sb = cmd.get("mult_b", 0), cmd.get("shift_b", 0)
        out_bits = FMT_BITS[Fmt(cmd.get("out_fmt", 0))]
        qmax = FMT_MAX[Fmt(cmd.get("out_fmt", 0))]
        off, m, sh = (self.params[:n, i][None, :] for i in range(3)) if op in USES_CHANNELS else (0, 0, 0)
        if op in REDUCTIONS:
            return status, None, self._reduce(op, a)
        scalars = None
        if op is Op.SCALE:
            y = sat32(rshr(a * ma, sa))
        elif op is Op.ADD:
            y = sat32(rshr(a * ma + np.asarray(b, np.int64).reshape(rows, n) * mb, sa))
        elif op is Op.MUL:
            y = sat32(rshr(a * np.asarray(b, np.int64).reshape(rows, n) * ma, sa))
        elif op in (Op.GELU, Op.SILU):
            x = sat32(rshr(a * ma, sa))
            y = sat32(rshr(pwl(x, 1 if op is Op.SILU else 0) * mb, sb))
        elif op is Op.ROPE:
            cs = np.asarray(b, np.int64).reshape(rows, n, 2)
            partner, sign = rope_partner(a, cmd.get("halves", 0))
            y = sat32(rshr((a * cs[..., 0] + sign * partner * cs[..., 1]) * ma, ROPE_FRAC + sa))
        elif op is Op.REQUANT:
            y = rshr((a + off) * m, sh)
        elif op is Op.REQUANT_DYN:
            amax = np.abs(a).max(axis=1)
            rm, re = recip(np.maximum(amax, 1))
            y = rshr(a * (127 * rm)[:, None], (re + 17)[:, None])
            scalars = amax
        elif op is Op.SOFTMAX:
            z = sat32(rshr(a * ma, sa))
            valid = softmax_valid(rows, n, cmd.get("len", 0), cmd.get("causal", 0))
            mx, s = softmax_stats(z, valid, self.lanes)
            rm, re = recip(np.maximum(s, 1))
            # masked elements may exceed the kept maximum (d < 0): their result is 0 whatever e is
            e = exp2neg(np.clip(256 * (mx[:, None] + 1) - z, 0, EXP_D_MAX))
            y = np.where(valid, rshr(e * (qmax * rm)[:, None], (re + 17)[:, None]), 0)
        elif op in (Op.RMSNORM, Op.LAYERNORM):
            eps = (mb & 0xFFFF) << sb
            s2 = (a * a).sum(axis=1)
            if op is Op.RMSNORM:
                g, h = rsqrt(s2 + eps)
                c = a
            else:
                s1 = a.sum(axis=1)
                g, h = rsqrt(n * s2 - s1 * s1 + eps)
                c = n * a - s1[:, None]
            v = rshr(c * g[:, None], h[:, None])
            y = rshr(v * m, NORM_FRAC + sh) + off
        return status, sat(y, out_bits), scalars

    @staticmethod
    def _reduce(op, a):
        if op is Op.MAX:
            return a.max(axis=1)
        if op is Op.SUM:
            return a.sum(axis=1)
        if op is Op.SUMSQ:
            return (a * a).sum(axis=1)
        return np.stack([a.max(axis=1), a.argmax(axis=1)], axis=1)


def _erf(x):
    return np.vectorize(math.erf)(x)


def float_ref(op, x, **kw):
    """The real function an operation approximates, on real (dequantised) inputs ``x`` (rows,
    n): softmax over the unmasked elements (``valid``), norms with ``gamma``/``beta``/``eps``,
    GELU (erf form), SiLU, RoPE with real ``cos``/``sin``."""
    op = Op(op)
    if op is Op.SOFTMAX:
        valid = kw["valid"]
        xm = np.where(valid, x, -np.inf)
        mx = np.max(xm, axis=1, keepdims=True)
        mx = np.where(np.isfinite(mx), mx, 0)
        e = np.where(valid, np.exp(xm - mx), 0)
        s = e.sum(axis=1, keepdims=True)
        return np.where(s > 0, e / np.where(s > 0, s, 1), 0)
    if op is Op.RMSNORM:
        return x / np.sqrt((x * x).mean(axis=1, keepdims=True) + kw["eps"]) * kw["gamma"]
    if op is Op.LAYERNORM:
        mu = x.mean(axis=1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
        return (x - mu) / np.sqrt(var + kw["eps"]) * kw["gamma"] + kw["beta"]
    if op is Op.GELU:
        return 0.5 * x * (1 + _erf(x / math.sqrt(2)))
    if op is Op.SILU:
        return x / (1 + np.exp(-x))
    if op is Op.ROPE:
        partner, sign = rope_partner(x, kw.get("halves", 0))
        return x * kw["cos"] + sign * partner * kw["sin"]
    raise ValueError(f"no float reference for {op.name}")


def reference(cmd, a, b=None, params=None):
    """The real-valued result each opcode approximates, in output LSBs, before saturation: the
    command's fixed-point scales applied exactly to the (integer) inputs, and the float function
    (exp, sqrt, erf, sigmoid) in place of the tables. ``params`` is the (n, 3) channel table."""
    op = Op(cmd["op"])
    a = np.asarray(a, dtype=np.float64)
    rows, n = a.shape
    ma, sa = cmd.get("mult_a", 0), cmd.get("shift_a", 0)
    mb, sb = cmd.get("mult_b", 0), cmd.get("shift_b", 0)
    qmax = FMT_MAX[Fmt(cmd.get("out_fmt", 0))]
    if op in USES_CHANNELS:
        off, m, sh = (np.asarray(params, np.float64)[:n, i][None, :] for i in range(3))
    if op is Op.SCALE:
        return a * ma / 2.0 ** sa
    if op is Op.ADD:
        return (a * ma + np.asarray(b, np.float64) * mb) / 2.0 ** sa
    if op is Op.MUL:
        return a * np.asarray(b, np.float64) * ma / 2.0 ** sa
    if op is Op.ROPE:
        cs = np.asarray(b, np.float64).reshape(rows, n, 2) / 2.0 ** ROPE_FRAC
        return float_ref(op, a, cos=cs[..., 0], sin=cs[..., 1], halves=cmd.get("halves", 0)) * ma / 2.0 ** sa
    if op in (Op.GELU, Op.SILU):
        x = a * ma / 2.0 ** sa / 2.0 ** PWL_FRAC
        return float_ref(op, x) * 2.0 ** PWL_FRAC * mb / 2.0 ** sb
    if op is Op.REQUANT:
        return (a + off) * m / 2.0 ** sh
    if op is Op.REQUANT_DYN:
        amax = np.maximum(np.abs(a).max(axis=1, keepdims=True), 1)
        return a * 127 / amax
    if op is Op.SOFTMAX:
        valid = softmax_valid(rows, n, cmd.get("len", 0), cmd.get("causal", 0))
        z = a * ma / 2.0 ** sa / 2.0 ** SOFTMAX_FRAC * math.log(2)
        return float_ref(op, z, valid=valid) * qmax
    if op in (Op.RMSNORM, Op.LAYERNORM):
        eps = float((mb & 0xFFFF) << sb)
        if op is Op.RMSNORM:
            norm = a / np.sqrt((a * a).sum(axis=1, keepdims=True) + eps)
        else:
            s1 = a.sum(axis=1, keepdims=True)
            d = n * (a * a).sum(axis=1, keepdims=True) - s1 * s1 + eps
            norm = (n * a - s1) / np.sqrt(np.maximum(d, 1))
        return norm * m / 2.0 ** sh + off
    raise ValueError(f"{op.name} is exact (no reference)")


def accuracy_of(cmd, a, b, y, model):
    """Largest |y - reference| in output LSBs (the reference saturated to the output range);
    0 for the exact reductions and for commands without output rows."""
    op = Op(cmd["op"])
    if y is None or op in REDUCTIONS:
        return 0.0
    bits = FMT_BITS[Fmt(cmd.get("out_fmt", 0))]
    ref = np.clip(reference(cmd, a, b, model.params), -(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return round(float(np.max(np.abs(np.asarray(y, np.float64) - ref))), 4)


def accuracy_table(rows=10_000, n=128, lanes=8, seed=1):
    """The accuracy figures of ``docs/vpu.md``: per opcode, the largest error in output LSBs
    against :func:`reference` — over every int8 input (and every int8 pair for ADD and MUL)
    for the elementwise opcodes, over ``rows`` random rows of ``n`` elements with outliers
    (2 % of the elements drawn from the whole range) for the row opcodes.

    ``python -m scoville.verif.vpu_model`` prints it."""
    rng = np.random.default_rng(seed)
    model = VPUModel(lanes=lanes, buffer=max(4096, n), channels=max(2048, n))
    every = np.arange(-128, 128, dtype=np.int64)[None, :]
    pairs_a = np.repeat(every, 256, axis=0).reshape(1, -1)
    pairs_b = np.tile(every, (256, 1)).reshape(1, -1)
    table = {}

    def measure(name, cmd, a, b=None, p=None):
        if p is not None:
            model.run({"op": Op.LOAD_P, "n": cmd["n"], "rows": 1}, p=p)
        status, y, _ = model.run(cmd, a, b)
        assert status is Status.OK, (name, status)
        table[name] = accuracy_of(cmd, a, b, y, model)

    i8 = Fmt.INT8.value
    for op in (Op.GELU, Op.SILU):
        # x = a/16 over [-8, 8) (Q.10: *64), y = value/16 in int8 (Q.10 -> *16/1024)
        measure(op.name, {"op": op, "n": 256, "rows": 1, "in_fmt": i8, "mult_a": 64, "shift_a": 0,
                          "mult_b": 1, "shift_b": 6}, every)
    measure("SCALE", {"op": Op.SCALE, "n": 256, "rows": 1, "in_fmt": i8, "mult_a": 23170, "shift_a": 15}, every)
    measure("ADD", {"op": Op.ADD, "n": 65536, "rows": 1, "in_fmt": i8, "mult_a": 23170, "mult_b": 9000,
                    "shift_a": 15}, pairs_a, pairs_b)
    measure("MUL", {"op": Op.MUL, "n": 65536, "rows": 1, "in_fmt": i8, "mult_a": 16384, "shift_a": 21},
            pairs_a, pairs_b)
    ang = rng.uniform(-np.pi, np.pi, size=(1, 256))
    cs = np.stack([np.round(np.cos(ang) * 16384), np.round(np.sin(ang) * 16384)], axis=-1).astype(np.int64)
    cs = cs[:, np.arange(256) & ~1]
    measure("ROPE", {"op": Op.ROPE, "n": 256, "rows": 1, "in_fmt": i8, "mult_a": 1, "shift_a": 0}, every, cs)

    def rows_with_outliers(bits):
        x = rng.normal(0, (1 << (bits - 1)) / 16, size=(rows, n))
        out = rng.random((rows, n)) < 0.02
        x = np.where(out, rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(rows, n)), x)
        return np.clip(np.round(x), -(1 << (bits - 1)), (1 << (bits - 1)) - 1).astype(np.int64)

    i16, i32 = Fmt.INT16.value, Fmt.INT32.value
    measure("REQUANT_DYN", {"op": Op.REQUANT_DYN, "n": n, "rows": rows, "in_fmt": i32}, rows_with_outliers(32))
    chan = np.stack([rng.integers(-1000, 1000, n), rng.integers(1 << 14, 1 << 15, n),
                     np.full(n, 24)], axis=1)
    measure("REQUANT", {"op": Op.REQUANT, "n": n, "rows": rows, "in_fmt": i32}, rows_with_outliers(24), p=chan)
    # logits: int32 accumulators, scale 1/sqrt(64) * s_q * s_k folded with log2(e) into mult_a
    measure("SOFTMAX", {"op": Op.SOFTMAX, "n": n, "rows": rows, "in_fmt": i32, "mult_a": 3000,
                        "shift_a": 12, "len": n, "out_fmt": i8}, rows_with_outliers(16))
    measure("SOFTMAX causal", {"op": Op.SOFTMAX, "n": n, "rows": rows, "in_fmt": i32, "mult_a": 3000,
                               "shift_a": 12, "len": 1, "causal": 1, "out_fmt": i8}, rows_with_outliers(16))
    # gamma * sqrt(n) / s_out, output rms about 32 LSB: mult >> 2 near 32 * sqrt(128)
    gamma = np.stack([rng.integers(-8, 8, n), rng.integers(1 << 10, 1 << 11, n), np.full(n, 2)], axis=1)
    for op in (Op.RMSNORM, Op.LAYERNORM):
        measure(op.name, {"op": op, "n": n, "rows": rows, "in_fmt": i16, "mult_b": 1, "shift_b": 4},
                rows_with_outliers(16), p=gamma)
    return table


if __name__ == "__main__":
    import json
    print(json.dumps(accuracy_table(), indent=1))
