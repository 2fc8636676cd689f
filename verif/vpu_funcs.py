"""Bit-exact numpy models of the VPU's function units (:mod:`scoville.hw.vpu.funcs`), the real
functions they approximate, and their measured accuracy.

The models are vectorised (any array shape; int64 results) and index the gateware's own tables
(:mod:`scoville.hw.vpu.tables`), written from the formats rather than from the gateware's
structure (the gateware's tricks, e.g. Exp2Neg's ``((2T >> k) + 1) >> 1``, are not repeated
here, so the unit tests compare two derivations):

==============================  ================================================================
``exp2neg(d, frac_bits=8)``     ``y = T[f]`` (k = 0), ``(T[f] + 2**(k-1)) >> k`` (k > 0);
                                ``k = d >> F``, ``f = d mod 2**F``; y ~ 2**16 * 2**(-d / 2**F)
``recip(x) -> (mant, exp)``     ``p`` = MSB of max(x, 1), ``mant = R[bits p-1..p-10 of x]``,
                                ``exp = p``; 1/x ~ mant * 2**-(p + 17)
``rsqrt(x) -> (mant, half)``    ``q`` = MSB of max(x, 1) rounded down to even, ``mant =
                                Q[floor(x * 2**(9-q)) - 512]``, ``half = q/2``; 1/sqrt(x) ~
                                mant * 2**-(16 + q/2)
``pwl(t, func)``                Q.10 GELU (func 0) / SiLU (func 1); ``u = t + 8192``; inside
                                0 <= u < 16384: ``Y[u >> 7] + ((S[u >> 7] * (u & 127) + 64)
                                >> 7)``; ``t`` for t >= 8192, 0 for t < -8192
==============================  ================================================================

``recip``/``rsqrt`` take unsigned values up to 2**64 - 1 (int64 arrays of non-negative values,
uint64 arrays or Python ints).

Measured accuracy (:func:`accuracy`, against the float references ``*_ref``; "LSB" is one unit
of the output field: of ``y`` for exp2neg and pwl, of ``mant`` at its exponent for recip/rsqrt):

=========  ===================================  ==========  ===================================
unit       domain                               max error   max relative error
=========  ===================================  ==========  ===================================
exp2neg    every d in 0..65535 (F = 8)          0.748 LSB   1.42e-5 over d < 256 (the table's
                                                            octave; octave k keeps 17 - k bits)
recip      x = 0..2**16 and 100 000 random      64.12 LSB   4.90e-4 = 2**-11.0 (x = 1025:
           64-bit values of random length                   m at an interval's left end)
rsqrt      same inputs as recip                 32.09 LSB   4.90e-4 = 2**-11.0 (x = 1026)
gelu       every t in -9000..9000               1.86 LSB    8.4e-4 where |f| >= 1 (t = -54)
silu       every t in -9000..9000               2.75 LSB    9.6e-4 where |f| >= 1 (t = 8192;
                                                            1.77 LSB inside [-8, 8))
=========  ===================================  ==========  ===================================

Where the figures come from: exp2neg, the table's rounding (1/2 LSB, halved by each shift) plus
the final rounding (1/2 LSB); recip and rsqrt, the table's step (one value per 1/1024 of the
mantissa for 1/x, per 1/512 of [1, 4) for 1/sqrt x): the value at the middle of a step is off
by half a step at its ends, 2**-11 relative for both at m = 1, which the exact inputs x = 2**p
* (1 + i/1024) reach; gelu, the linear interpolation over segments of 1/8 (``h**2/8 *
max|f''|`` = 1.56 LSB near 0, where GELU's curvature peaks) plus the roundings of the knots and
of the interpolation; silu, the ends of the range: SiLU(-8) = -0.00268 (-2.75 LSB) but t <
-8192 gives 0, and SiLU(8) = 8 - 0.00268 but t >= 8192 gives t. Over [-16, 16) (256 segments)
SiLU's error would be the 1.77 LSB of its interpolation; segments of 1/16 bring GELU to 1.10
and SiLU (over [-16, 16)) to 1.06 LSB.

:data:`ACCURACY_BOUNDS` holds these figures, rounded up; tests/test_vpu_funcs.py checks them.
"""

import math

import numpy as np

from scoville.hw.vpu import tables


__all__ = ["exp2neg", "recip", "rsqrt", "pwl", "exp2neg_ref", "recip_ref", "rsqrt_ref",
           "gelu_ref", "silu_ref", "pwl_ref", "accuracy", "ACCURACY_BOUNDS", "accuracy_inputs"]


# Tables as arrays, built once per process (they are the gateware's lists).
_EXP2 = {}
_RECIP = np.array(tables.recip_table(), dtype=np.int64)
_RSQRT = np.array(tables.rsqrt_table(), dtype=np.int64)
_PWL_Y = np.array([tables.pwl_knots(f) for f in range(len(tables.PWL_FUNCS))], dtype=np.int64)
_PWL_S = np.array([tables.pwl_slopes(f) for f in range(len(tables.PWL_FUNCS))], dtype=np.int64)


def _exp2_table(frac_bits):
    if frac_bits not in _EXP2:
        _EXP2[frac_bits] = np.array(tables.exp2neg_table(frac_bits), dtype=np.int64)
    return _EXP2[frac_bits]


# ---- bit-exact models ----------------------------------------------------------------------------

def exp2neg(d, frac_bits=8):
    """Exp2Neg: ``d`` (non-negative integers, the value d / 2**frac_bits) -> ``y`` (int64)."""
    d = np.asarray(d, dtype=np.int64)
    if np.any(d < 0):
        raise ValueError("exp2neg: d must be >= 0")
    table = _exp2_table(frac_bits)
    f = d & ((1 << frac_bits) - 1)
    k = d >> frac_bits
    # Any k > 40 gives 0 as well (T < 2**17); the clip keeps the int64 shifts defined.
    kc = np.minimum(k, 40)
    rounded = (table[f] + np.left_shift(np.int64(1), np.maximum(kc - 1, 0))) >> kc
    return np.where(k == 0, table[f], rounded)


def _as_u64(x):
    """Unsigned 64-bit array from int64 (non-negative), uint64 or Python ints (lists of Python
    ints go through ``object``: numpy would turn a list mixing int64 and larger values into
    float64 and lose the low bits)."""
    a = np.asarray(x) if isinstance(x, (np.ndarray, np.integer)) else np.array(x, dtype=object)
    if a.dtype == object:
        flat = [int(v) for v in a.ravel()]
        if any(not 0 <= v < 1 << 64 for v in flat):
            raise ValueError("x must be in 0..2**64-1")
        return np.array(flat, dtype=np.uint64).reshape(a.shape)
    if a.dtype.kind == "i":
        if np.any(a < 0):
            raise ValueError("x must be >= 0")
        return a.astype(np.uint64)
    if a.dtype.kind != "u":
        raise TypeError(f"x must be integers, not {a.dtype}")
    return a.astype(np.uint64)


def _msb(x):
    """Index of the most significant 1 of each uint64 (x >= 1), exact (no float log)."""
    p = np.zeros(x.shape, dtype=np.uint64)
    for s in (32, 16, 8, 4, 2, 1):
        p += np.uint64(s) * ((x >> (p + np.uint64(s))) != 0)
    return p


def _shift(x, left_by):
    """``x * 2**left_by`` (floor for negative ``left_by``), uint64 ``x``, int64 ``left_by``;
    only the low bits matter to the callers, so the left shift may drop high bits."""
    right = np.maximum(-left_by, 0).astype(np.uint64)
    left = np.maximum(left_by, 0).astype(np.uint64)
    return np.where(left_by >= 0, x << left, x >> right)


def recip(x):
    """Recip: unsigned ``x`` (0 treated as 1) -> ``(mant, exp)`` (int64 arrays),
    1/x ~ mant * 2**-(exp + 17)."""
    x = _as_u64(x)
    x = np.maximum(x, np.uint64(1))
    p = _msb(x)
    bits = tables.RECIP_IDX_BITS
    idx = _shift(x, bits - p.astype(np.int64)) & np.uint64((1 << bits) - 1)
    return _RECIP[idx.astype(np.int64)], p.astype(np.int64)


def rsqrt(x):
    """Rsqrt: unsigned ``x`` (0 treated as 1) -> ``(mant, half_exp)`` (int64 arrays),
    1/sqrt(x) ~ mant * 2**-(16 + half_exp)."""
    x = _as_u64(x)
    x = np.maximum(x, np.uint64(1))
    q = (_msb(x) & ~np.uint64(1)).astype(np.int64)
    lo = tables.RSQRT_IDX_LO
    w = _shift(x, int(math.log2(lo)) - q).astype(np.int64)    # floor(m * 512), 512..2047
    return _RSQRT[w - lo], q >> 1


def pwl(t, func):
    """PWL: Q.10 ``t`` (int32 range), ``func`` 0 GELU / 1 SiLU (scalar or array) -> Q.10 ``y``."""
    t = np.asarray(t, dtype=np.int64)
    func = np.broadcast_to(np.asarray(func, dtype=np.int64), t.shape)
    u = t + tables.PWL_OFFSET
    inside = (u >= 0) & (u < tables.PWL_SPAN)
    uc = np.clip(u, 0, tables.PWL_SPAN - 1)
    seg, dx = uc >> tables.PWL_DX_BITS, uc & ((1 << tables.PWL_DX_BITS) - 1)
    half = 1 << (tables.PWL_DX_BITS - 1)
    y = _PWL_Y[func, seg] + ((_PWL_S[func, seg] * dx + half) >> tables.PWL_DX_BITS)
    return np.where(inside, y, np.where(t >= tables.PWL_OFFSET, t, 0))


# ---- float references (from the definitions, not from the tables) -------------------------------

def exp2neg_ref(d, frac_bits=8):
    """``2**16 * 2**(-d / 2**frac_bits)``."""
    return 2.0 ** 16 * np.exp2(-np.asarray(d, dtype=np.float64) / 2.0 ** frac_bits)


def _as_float(x):
    return np.maximum(_as_u64(x), np.uint64(1)).astype(np.float64)


def recip_ref(x):
    """``1 / max(x, 1)``."""
    return 1.0 / _as_float(x)


def rsqrt_ref(x):
    """``1 / sqrt(max(x, 1))``."""
    return 1.0 / np.sqrt(_as_float(x))


_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def gelu_ref(x):
    """GELU, erf form, of real ``x``: ``x * 0.5 * (1 + erf(x / sqrt 2))``."""
    x = np.asarray(x, dtype=np.float64)
    return x * 0.5 * _erfc(-x / math.sqrt(2))


def silu_ref(x):
    """SiLU of real ``x``: ``x * sigmoid(x)``."""
    x = np.asarray(x, dtype=np.float64)
    return x / (1.0 + np.exp(-x))


def pwl_ref(t, func):
    """The real value the PWL output approximates, in Q.10 LSBs: ``1024 * f(t / 1024)``."""
    x = np.asarray(t, dtype=np.float64) / 2.0 ** tables.PWL_FRAC
    f = (gelu_ref, silu_ref)[func]
    return f(x) * 2.0 ** tables.PWL_FRAC


# ---- accuracy ------------------------------------------------------------------------------------

#: Largest errors :func:`accuracy` may report: ``(LSB, relative)`` per unit, the measured figures
#: of the module docstring rounded up a little (a drifting table fails the test).
ACCURACY_BOUNDS = {
    "exp2neg": (0.75, 1.45e-5),
    "recip": (64.2, 4.91e-4),
    "rsqrt": (32.1, 4.91e-4),
    "gelu": (1.87, 8.4e-4),
    "silu": (2.75, 9.7e-4),
}


def accuracy_inputs(seed=2024, n_random=100_000):
    """The recip/rsqrt inputs of :func:`accuracy`: every x in 0..2**16, then ``n_random`` random
    64-bit words each shifted right by a random 0..63, so every exponent is covered (uniform
    64-bit words alone would nearly all have their MSB at bit 63)."""
    rng = np.random.default_rng(seed)
    words = rng.integers(0, 1 << 64, size=n_random, dtype=np.uint64, endpoint=False)
    rand = words >> rng.integers(0, 64, size=n_random).astype(np.uint64)
    return np.concatenate([np.arange(0, (1 << 16) + 1, dtype=np.uint64), rand])


def accuracy():
    """Per unit, the largest error of the model against the float reference over the unit's
    test domain (see the module docstring's table): a dict ``unit -> {"lsb", "rel", "at"}``,
    ``lsb`` in units of the output LSB, ``rel`` the relative error (over the domain stated in
    the docstring), ``at`` the input of the largest LSB error."""
    out = {}

    d = np.arange(0, 1 << 16)
    err = np.abs(exp2neg(d) - exp2neg_ref(d))
    first = d < 256
    out["exp2neg"] = {"lsb": float(err.max()), "at": int(d[err.argmax()]),
                      "rel": float((err[first] / exp2neg_ref(d[first])).max())}

    x = accuracy_inputs()
    xf = _as_float(x)
    mant, e = recip(x)
    ideal = np.ldexp(1.0, (e + tables.RECIP_FRAC).astype(np.int32)) / xf   # 1/x in mant's LSBs
    err = np.abs(mant - ideal)
    out["recip"] = {"lsb": float(err.max()), "at": int(x[err.argmax()]),
                    "rel": float((err / ideal).max())}
    mant, h = rsqrt(x)
    ideal = 2.0 ** tables.RSQRT_FRAC / np.sqrt(xf / np.ldexp(1.0, (2 * h).astype(np.int32)))
    err = np.abs(mant - ideal)
    out["rsqrt"] = {"lsb": float(err.max()), "at": int(x[err.argmax()]),
                    "rel": float((err / ideal).max())}

    t = np.arange(-9000, 9001)
    for func, name in enumerate(tables.PWL_FUNCS):
        ref = pwl_ref(t, func)
        err = np.abs(pwl(t, func) - ref)
        big = np.abs(ref) >= 2 ** tables.PWL_FRAC
        out[name] = {"lsb": float(err.max()), "at": int(t[err.argmax()]),
                     "rel": float((err[big] / np.abs(ref[big])).max())}
    return out


if __name__ == "__main__":
    for unit, fig in accuracy().items():
        print(f"{unit:8s} {fig['lsb']:9.4f} LSB  rel {fig['rel']:.3e} (2**{math.log2(fig['rel']):.2f})"
              f"  worst at {fig['at']}")
