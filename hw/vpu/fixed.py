"""Fixed-point building blocks of the VPU datapaths, as Amaranth expressions.

The same operations, in numpy, are ``verif.vpu_model.rshr`` and ``sat``: keep the two in step.
"""

from amaranth.hdl import Const, Mux, Signal, signed


__all__ = ["rshr", "sat", "sat_to", "delay"]


def rshr(v, s, *, max_shift=None):
    """``v`` shifted right arithmetically by the unsigned value ``s``, rounding half up:
    ``floor((v + 2**(s-1)) / 2**s)`` (``v`` for s = 0). A shift beyond the width of ``v`` gives 0,
    which is the exact result for every ``v`` (|v| < 2**(s-1)).

    The rounding term ``(1 << s) >> 1`` is 0 for s = 0, so no case for it is needed.
    """
    width = len(v)
    v = v.as_signed()
    half = ((Const(1, 1) << s) >> 1)[:width]
    total = (v + half.as_unsigned())          # width + 1 bits: cannot overflow
    shifted = (total >> s)[:width + 1].as_signed()
    return Mux(s > width, 0, shifted)


def sat(v, bits):
    """``v`` (signed) clipped to the signed range of ``bits`` bits, as a ``signed(bits)`` value."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if len(v) <= bits:
        return v.as_signed()
    return Mux(v > hi, Const(hi, signed(bits)), Mux(v < lo, Const(lo, signed(bits)), v[:bits].as_signed()))


def sat_to(v, bits_by_fmt, fmt):
    """``v`` saturated to the output format ``fmt`` (a 2-bit value), as a signed 32-bit value."""
    out = Const(0, signed(32))
    for code, bits in bits_by_fmt.items():
        out = Mux(fmt == code, sat(v, bits), out)
    return out


def delay(m, sig, cycles, name):
    """``sig`` through ``cycles`` registers of module ``m`` (a pipeline's side band kept in step
    with its data)."""
    for k in range(cycles):
        r = Signal.like(sig, name=f"{name}_d{k}")
        m.d.sync += r.eq(sig)
        sig = r
    return sig
