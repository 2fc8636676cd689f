"""Fixed-point building blocks of the VPU datapaths, as Amaranth expressions.

The same operations, in numpy, are ``verif.vpu_model.rshr`` and ``sat``: keep the two in step.
"""

from amaranth.hdl import Cat, Const, Mux, Signal, signed


__all__ = ["rshr_sat", "sat", "sat_to", "delay"]


def _shr_window(v, s, width):
    """The low ``width`` bits of ``v >> s`` (arithmetic, ``s`` unsigned), as a signed value.

    A logarithmic shifter taken from its largest stage down, so that each stage keeps only the
    bits the remaining stages can still bring into the window: at 64 bits into 35 it has 2/3 of
    the 2:1 multiplexers (and of the long wires) of the full shifter Yosys builds for ``>>``.
    """
    cur = v.as_signed()
    for j in reversed(range(len(s))):
        step = 1 << j
        keep = min(width + step - 1, len(cur))
        cur = Mux(s[j], cur.shift_right(step), cur)[:keep].as_signed()
    return cur[:width].as_signed() if len(cur) > width else cur


def rshr_sat(v, s, bits):
    """``sat(rshr(v, s), bits)``: ``v`` (signed) shifted right arithmetically by the unsigned
    value ``s``, rounding half up — ``floor((v + 2**(s-1)) / 2**s)``, ``v`` for s = 0 — then
    clipped to the signed range of ``bits`` bits, as a ``signed(bits)`` value. Every ``v`` and
    ``s`` give the exact result (a shift of ``len(v)`` or more gives 0).

    With ``r = (2 v) >> s``, ``rshr(v, s) = (r + 1) >> 1`` for every s, 0 included: one
    shifter, no rounding constant, and the increment on the narrow result. Only the low
    ``bits + 1`` bits of ``r`` are built; whether the result fits is read from ``v`` itself
    (``r`` fits in ``bits + 1`` bits iff ``v`` fits in ``bits + s``: no bit of ``v`` from
    ``bits - 1 + s`` up differs from its sign); a result that does not fit has the sign of
    ``v``. The one value of ``r`` that fits but whose rounding does not, ``2**bits - 1``, is
    left to :func:`sat`.
    """
    w = len(v)
    v = v.as_signed()
    # any shift bit worth w or more: s >= w, whose exact result is 0 for every v
    low = max(1, (w - 1).bit_length())
    s_lo, zero = s[:low], (s[low:].any() if len(s) > low else Const(0, 1))
    r = _shr_window(Cat(Const(0, 1), v).as_signed(), s_lo, bits + 1)
    rounded = sat((r + 1) >> 1, bits)
    sign = v[w - 1]
    # above[i]: some bit of v from bits - 1 + i up to below the sign differs from the sign
    diff = Cat(*(v[j] ^ sign for j in range(bits - 1, w - 1)))
    above = Cat(*(diff[i:].any() for i in range(len(diff))))
    fits = ~(above >> s_lo)[0] if len(diff) else Const(1, 1)
    lo, hi = Const(-(1 << (bits - 1)), signed(bits)), Const((1 << (bits - 1)) - 1, signed(bits))
    return Mux(zero, 0, Mux(fits, rounded, Mux(sign, lo, hi)))


def sat(v, bits):
    """``v`` (signed) clipped to the signed range of ``bits`` bits, as a ``signed(bits)`` value.

    ``v`` fits when its bits from ``bits - 1`` up are all equal: a LUT test, no comparator."""
    v = v.as_signed()
    if len(v) <= bits:
        return v
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    top = v[bits - 1:]
    fits = (top == 0) | (top == (1 << len(top)) - 1)
    return Mux(fits, v[:bits].as_signed(), Mux(v[-1], Const(lo, signed(bits)), Const(hi, signed(bits))))


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
