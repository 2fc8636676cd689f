"""Lookup tables of the VPU's function units (:mod:`.funcs`), generated once, here.

The gateware loads these lists into its ROMs and the bit-exact models
(:mod:`scoville.verif.vpu_funcs`) index the same lists, so a table exists in exactly one place.
Plain Python (``math``), no numpy: the gateware side imports this module.

Every entry is ``rnd(v) = floor(v + 1/2)`` of a real value ``v`` evaluated in float64. No entry
lies within ``1e-6`` of a rounding tie (asserted when the table is built), and float64 is good to
about ``1e-11`` on these magnitudes, so each entry is the correctly rounded value of the exact
real, independent of the platform's libm.

Tables (``F`` = ``frac_bits``):

=================  ======  ================================================================
``exp2neg_table``  2**F    ``T[f] = rnd(2**16 * 2**(-f / 2**F))``, f = 0..2**F-1; T[0] = 65536
``recip_table``    1024    ``R[i] = rnd(2**17 / (1 + (i + 0.5) / 1024))``
``rsqrt_table``    1536    ``Q[i] = rnd(2**16 / sqrt((i + 512 + 0.5) / 512))``
``pwl_knots``      129     ``Y[func][s] = rnd(1024 * f(-8 + s/8))``, s = 0..128
``pwl_slopes``     128     ``S[func][s] = Y[func][s+1] - Y[func][s]``
=================  ======  ================================================================

``f`` is GELU in its erf form ``x * Phi(x)`` (func 0) or SiLU ``x * sigmoid(x)`` (func 1).
"""

import math


__all__ = [
    "EXP2_OUT_FRAC", "EXP2_OUT_BITS", "exp2neg_table",
    "RECIP_IDX_BITS", "RECIP_FRAC", "RECIP_MANT_BITS", "recip_table",
    "RSQRT_IDX_LO", "RSQRT_DEPTH", "RSQRT_FRAC", "RSQRT_MANT_BITS", "rsqrt_table",
    "PWL_FRAC", "PWL_SEG_BITS", "PWL_DX_BITS", "PWL_OFFSET", "PWL_SPAN", "PWL_FUNCS",
    "gelu", "silu", "pwl_knots", "pwl_slopes", "pwl_field_bits", "pwl_table",
]


# ---- Exp2Neg -----------------------------------------------------------------------------------
EXP2_OUT_FRAC = 16                  # y = 2**16 * 2**-x
EXP2_OUT_BITS = EXP2_OUT_FRAC + 1   # 17: T[0] = 2**16 itself needs the extra bit

# ---- Recip ---------------------------------------------------------------------------------------
RECIP_IDX_BITS = 10                 # mantissa bits below the leading one that index the table
RECIP_FRAC = 17                     # 1/x ~ mant * 2**-(p + 17)
RECIP_MANT_BITS = 18

# ---- Rsqrt ---------------------------------------------------------------------------------------
RSQRT_IDX_LO = 512                  # floor(m * 512) for m in [1, 4) is 512..2047
RSQRT_DEPTH = 3 * RSQRT_IDX_LO      # 1536 entries
RSQRT_FRAC = 16                     # 1/sqrt(x) ~ mant * 2**-(16 + q/2)
RSQRT_MANT_BITS = 17

# ---- PWL (GELU, SiLU) ----------------------------------------------------------------------------
PWL_FRAC = 10                       # argument t and result y are Q.10
PWL_SEG_BITS = 7                    # 128 segments ...
PWL_DX_BITS = 7                     # ... of 128 LSB (1/8) each
PWL_OFFSET = 8 << PWL_FRAC          # u = t + 8192 maps [-8, 8) to 0..16383
PWL_SPAN = 1 << (PWL_SEG_BITS + PWL_DX_BITS)
PWL_FUNCS = ("gelu", "silu")        # the func input's encoding: 0 GELU, 1 SiLU


def _rnd(v, what):
    """``floor(v + 1/2)``, refusing values whose float64 evaluation could round the wrong way."""
    frac = v - math.floor(v)
    if abs(frac - 0.5) < 1e-6:
        raise ArithmeticError(f"{what}: {v!r} is too close to a rounding tie for float64")
    return math.floor(v + 0.5)


def exp2neg_table(frac_bits=8):
    """``T[f] = rnd(2**16 * 2**(-f / 2**frac_bits))`` for f = 0..2**frac_bits - 1 (17-bit values,
    T[0] = 65536, strictly decreasing for frac_bits <= 12)."""
    if not isinstance(frac_bits, int) or not 1 <= frac_bits <= 12:
        raise ValueError(f"frac_bits must be an integer in 1..12, not {frac_bits!r}")
    n = 1 << frac_bits
    return [_rnd(2.0 ** (EXP2_OUT_FRAC - f / n), f"T[{f}]") for f in range(n)]


def recip_table():
    """``R[i] = rnd(2**17 / (1 + (i + 0.5) / 1024))`` for i = 0..1023: the reciprocal at the middle
    of mantissa interval i, which minimises the interval's largest relative error."""
    n = 1 << RECIP_IDX_BITS
    return [_rnd(2.0 ** RECIP_FRAC / (1 + (i + 0.5) / n), f"R[{i}]") for i in range(n)]


def rsqrt_table():
    """``Q[i] = rnd(2**16 / sqrt((i + 512 + 0.5) / 512))`` for i = 0..1535 (m = x / 2**q in
    [1, 4) in steps of 1/512, the value at the middle of each step)."""
    lo = RSQRT_IDX_LO
    return [_rnd(2.0 ** RSQRT_FRAC / math.sqrt((i + lo + 0.5) / lo), f"Q[{i}]")
            for i in range(RSQRT_DEPTH)]


def gelu(x):
    """GELU, erf form: ``x * 0.5 * (1 + erf(x / sqrt 2))``, written with ``erfc`` so the tail at
    large negative x keeps its precision."""
    return x * 0.5 * math.erfc(-x / math.sqrt(2))


def silu(x):
    """SiLU: ``x * sigmoid(x)``."""
    return x / (1 + math.exp(-x))


def pwl_knots(func):
    """The 129 knots ``Y[s] = rnd(1024 * f(-8 + s/8))``, s = 0..128, of function ``func``
    (0 GELU, 1 SiLU), in Q.10."""
    f = (gelu, silu)[func]
    step = 1 << PWL_DX_BITS
    return [_rnd((1 << PWL_FRAC) * f((s * step - PWL_OFFSET) / (1 << PWL_FRAC)),
                 f"Y[{func}][{s}]") for s in range((1 << PWL_SEG_BITS) + 1)]


def pwl_slopes(func):
    """The 128 segment rises ``S[s] = Y[s+1] - Y[s]`` of function ``func``: exact differences,
    so consecutive segments meet at the knots."""
    y = pwl_knots(func)
    return [b - a for a, b in zip(y, y[1:])]


def _signed_bits(values):
    return max(max(v.bit_length() for v in values), max((-v - 1).bit_length() for v in values)) + 1


def pwl_field_bits():
    """``(y_bits, s_bits)``: the signed widths that hold every knot ``Y[s]`` (s < 128) and every
    rise ``S[s]`` of both functions (14 and 9 for these tables)."""
    ys = [y for func in range(len(PWL_FUNCS)) for y in pwl_knots(func)[:-1]]
    ss = [s for func in range(len(PWL_FUNCS)) for s in pwl_slopes(func)]
    return _signed_bits(ys), _signed_bits(ss)


def pwl_table():
    """The PWL ROM, one ``(Y, S)`` pair per word, at address ``func * 128 + seg``."""
    return [(y, s) for func in range(len(PWL_FUNCS))
            for y, s in zip(pwl_knots(func), pwl_slopes(func))]
