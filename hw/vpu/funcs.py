"""Fixed-point function units of the VPU: 2**-x, 1/x, 1/sqrt(x) and the GELU/SiLU PWL.

Common interface. Each unit is a pipeline of ``LATENCY`` register stages (a class attribute)
with a clock enable ``en``: the inputs are sampled on a clock edge with ``en = 1`` and the
outputs show the result after ``LATENCY`` such edges, then hold it while ``en = 0``. Every
register, the ROM read ports included, advances only when ``en = 1``, so the enclosing pipeline
stalls by dropping ``en``; inputs presented on edges with ``en = 0`` are ignored. No valid/ready
inside: the enclosing pipeline carries the valid bits beside the unit. Throughput one result per
enabled cycle.

Each table is a :class:`~amaranth.lib.memory.Memory` with one synchronous read port (a block
RAM on an FPGA), loaded from :mod:`.tables`, the single source that the bit-exact models of
:mod:`scoville.verif.vpu_funcs` read too. Formats and formulas are in each class's docstring.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from . import tables


__all__ = ["Exp2Neg", "Recip", "Rsqrt", "PWL"]


def _check_int(name, value, lo, hi):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, not {value}")
    return value


def _leading_one(bits):
    """``(any, pos)`` of a value: whether it has a 1 bit, and the index of its most significant
    1 (0 when there is none). A binary tree of ``ceil_log2(width)`` levels of 2:1 muxes, each
    half's answer chosen by the upper half's ``any``, instead of a width-deep priority chain."""
    n = 1 << ceil_log2(max(len(bits), 2))
    padded = Cat(bits, Const(0, n - len(bits)))
    # first level from bit pairs: a zero-width position would leave [-1:0] wires in the Verilog
    level = [(padded[i + 1] | padded[i], padded[i + 1]) for i in range(0, n, 2)]
    while len(level) > 1:
        level = [(hi_any | lo_any, Cat(Mux(hi_any, hi_pos, lo_pos), hi_any))
                 for (lo_any, lo_pos), (hi_any, hi_pos) in zip(level[0::2], level[1::2])]
    return level[0]


class Exp2Neg(wiring.Component):
    """``y ~ 2**16 * 2**(-d / 2**F)`` for a fixed-point ``d >= 0`` (``F`` = ``frac_bits``).

    ``k = d >> F`` and ``f = d mod 2**F``; ``T[f] = rnd(2**16 * 2**(-f / 2**F))``
    (:func:`.tables.exp2neg_table`, T[0] = 65536); ``y = T[f]`` if k = 0, else
    ``(T[f] + 2**(k-1)) >> k`` (rounded to nearest, half up; 0 once k >= 18).

    ``LATENCY = 2``: the ROM read (with k saturated at 18 in a register beside it), then the
    rounding shift into the output register.

    Parameters
    ----------
    frac_bits : int
        ``F``, 1..12; the ROM has ``2**F`` words of 17 bits.
    int_bits : int
        Integer bits of ``d``, 1..16.

    Members
    -------
    en : In(1)
        Clock enable of every stage.
    d : In(int_bits + frac_bits)
        Argument, unsigned Q(int_bits).(frac_bits); sampled on an enabled edge.
    y : Out(17)
        Result, unsigned Q.16 (0..65536); valid ``LATENCY`` enabled edges after ``d`` was
        sampled, held while ``en = 0``.
    """

    LATENCY = 2

    def __init__(self, *, frac_bits=8, int_bits=8):
        self._frac_bits = _check_int("frac_bits", frac_bits, 1, 12)
        self._int_bits = _check_int("int_bits", int_bits, 1, 16)
        super().__init__({
            "en": In(1),
            "d": In(int_bits + frac_bits),
            "y": Out(tables.EXP2_OUT_BITS),
        })

    frac_bits = property(lambda self: self._frac_bits)
    int_bits = property(lambda self: self._int_bits)

    def elaborate(self, platform):
        m = Module()
        F = self._frac_bits
        out_bits = tables.EXP2_OUT_BITS
        table = tables.exp2neg_table(F)
        m.submodules.rom = rom = memory.Memory(shape=unsigned(out_bits), depth=len(table),
                                               init=table)
        rd = rom.read_port()
        m.d.comb += [rd.addr.eq(self.d[:F]), rd.en.eq(self.en)]

        # Any k >= 18 gives 0 (2 * T < 2**18), so the shifter needs only 5 bits of k.
        k = self.d[F:]
        k_max = out_bits + 1
        k_q = Signal(range(k_max + 1))
        with m.If(self.en):
            m.d.sync += k_q.eq(Mux(k > k_max, k_max, k))

        # (T + 2**(k-1)) >> k == ((2T >> k) + 1) >> 1 for k >= 1, and the same expression is T
        # for k = 0: one shifter and an incrementer, no rounding constant to shift and no mux.
        y = Signal(out_bits)
        with m.If(self.en):
            m.d.sync += y.eq(((Cat(Const(0, 1), rd.data) >> k_q) + 1) >> 1)
        m.d.comb += self.y.eq(y)
        return m


class Recip(wiring.Component):
    """``1/x ~ mant * 2**-(exp + 17)`` for an unsigned ``x`` (x = 0 is treated as x = 1).

    ``exp = p``, the position of the most significant 1 of ``x``; ``idx`` = the 10 bits just
    below it (bits p-1..p-10 of x, zeros below bit 0 when p < 10); ``mant = R[idx]`` with
    ``R[i] = rnd(2**17 / (1 + (i + 0.5) / 1024))`` (:func:`.tables.recip_table`, 18 bits).

    ``LATENCY = 2``: a leading-one tree into a register (with ``x``), then the normalising
    shift as the ROM address; ``mant`` is the ROM's read register, ``exp`` a register beside it.

    Parameters
    ----------
    width : int
        Width of ``x``, 2..128.

    Members
    -------
    en : In(1)
        Clock enable of every stage.
    x : In(width)
        Argument, unsigned; sampled on an enabled edge.
    mant : Out(18)
        Mantissa of 1/x (65 552..131 008).
    exp : Out(range(width))
        ``p``; ``mant`` and ``exp`` are valid ``LATENCY`` enabled edges after ``x`` was
        sampled, held while ``en = 0``.
    """

    LATENCY = 2

    def __init__(self, *, width=64):
        self._width = _check_int("width", width, 2, 128)
        super().__init__({
            "en": In(1),
            "x": In(width),
            "mant": Out(tables.RECIP_MANT_BITS),
            "exp": Out(range(width)),
        })

    width = property(lambda self: self._width)

    def elaborate(self, platform):
        m = Module()
        idx_bits = tables.RECIP_IDX_BITS
        table = tables.recip_table()
        m.submodules.rom = rom = memory.Memory(shape=unsigned(tables.RECIP_MANT_BITS),
                                               depth=len(table), init=table)
        rd = rom.read_port()

        # x = 0 needs no case: the tree then answers p = 0 and the bits below bit 0 are zeros,
        # which is exactly x = 1.
        _, p = _leading_one(self.x)
        x_q = Signal(self._width)
        p_q = Signal(range(self._width))
        exp = Signal(range(self._width))
        with m.If(self.en):
            m.d.sync += [x_q.eq(self.x), p_q.eq(p), exp.eq(p_q)]
        # Zeros appended below bit 0 make "bits p-1..p-10" one right shift for every p.
        m.d.comb += [
            rd.addr.eq((Cat(Const(0, idx_bits), x_q) >> p_q)[:idx_bits]),
            rd.en.eq(self.en),
            self.mant.eq(rd.data),
            self.exp.eq(exp),
        ]
        return m


class Rsqrt(wiring.Component):
    """``1/sqrt(x) ~ mant * 2**-(16 + half_exp)`` for an unsigned ``x`` (x = 0 is treated as
    x = 1).

    ``q`` = the position of the most significant 1 of ``x`` rounded down to even, ``half_exp =
    q/2``; ``m = x / 2**q`` in [1, 4); ``idx = floor(m * 512) - 512`` in 0..1535 (x shifted
    right by q-9, left when q < 9); ``mant = Q[idx]`` with ``Q[i] = rnd(2**16 / sqrt((i + 512 +
    0.5) / 512))`` (:func:`.tables.rsqrt_table`, 17 bits).

    ``LATENCY = 2``: a leading-one tree into a register (with ``x``, 0 replaced by 1), then the
    normalising shift as the ROM address; ``mant`` is the ROM's read register, ``half_exp`` a
    register beside it.

    Parameters
    ----------
    width : int
        Width of ``x``, 2..128.

    Members
    -------
    en : In(1)
        Clock enable of every stage.
    x : In(width)
        Argument, unsigned; sampled on an enabled edge.
    mant : Out(17)
        Mantissa of 1/sqrt(x) (32 772..65 504).
    half_exp : Out(range((width - 1) // 2 + 1))
        ``q/2``; ``mant`` and ``half_exp`` are valid ``LATENCY`` enabled edges after ``x`` was
        sampled, held while ``en = 0``.
    """

    LATENCY = 2

    def __init__(self, *, width=64):
        self._width = _check_int("width", width, 2, 128)
        super().__init__({
            "en": In(1),
            "x": In(width),
            "mant": Out(tables.RSQRT_MANT_BITS),
            "half_exp": Out(range((width - 1) // 2 + 1)),
        })

    width = property(lambda self: self._width)

    def elaborate(self, platform):
        m = Module()
        lo = tables.RSQRT_IDX_LO            # 512
        lo_bits = ceil_log2(lo)             # 9
        table = tables.rsqrt_table()
        m.submodules.rom = rom = memory.Memory(shape=unsigned(tables.RSQRT_MANT_BITS),
                                               depth=len(table), init=table)
        rd = rom.read_port()

        # Unlike Recip, x = 0 must become 1 here (m = 0 is outside the table); the tree's "any"
        # is that zero test for free.
        nonzero, p = _leading_one(self.x)
        x_q = Signal(self._width)
        h_q = Signal(range((self._width - 1) // 2 + 1))
        half_exp = Signal.like(h_q)
        with m.If(self.en):
            m.d.sync += [x_q.eq(Cat(self.x[0] | ~nonzero, self.x[1:])), h_q.eq(p[1:]),
                         half_exp.eq(h_q)]
        # floor(m * 512) = (x * 2**9) >> q: 11 bits, 512..2047. Subtracting 512 only touches the
        # top two bits (01, 10, 11 -> 00, 01, 10).
        w = (Cat(Const(0, lo_bits), x_q) >> Cat(Const(0, 1), h_q))[:lo_bits + 2]
        m.d.comb += [
            rd.addr.eq(Cat(w[:lo_bits], w[lo_bits:] - 1)),
            rd.en.eq(self.en),
            self.mant.eq(rd.data),
            self.half_exp.eq(half_exp),
        ]
        return m


class PWL(wiring.Component):
    """GELU (erf form) or SiLU of a Q.10 value, piecewise linear over 128 segments of [-8, 8).

    ``u = t + 8192``; for 0 <= u < 16384: ``seg = u >> 7``, ``dx = u & 127``, ``y = Y[seg] +
    ((S[seg] * dx + 64) >> 7)`` (arithmetic shift: floor), with knots ``Y[s] = rnd(1024 *
    f(-8 + s/8))`` and rises ``S[s] = Y[s+1] - Y[s]`` of the selected function
    (:func:`.tables.pwl_knots`, :func:`.tables.pwl_slopes`). Outside: ``y = t`` for t >= 8192,
    ``y = 0`` for t < -8192. ``Y`` and ``S`` share one ROM word (a 256-word ROM, both
    functions), so each element is one read.

    ``LATENCY = 3``: the ROM read (range flags, dx and t in registers beside it), the
    ``S * dx`` product into a register, then the sum or the out-of-range value into the output
    register.

    Members
    -------
    en : In(1)
        Clock enable of every stage.
    t : In(signed(32))
        Argument, Q.10; sampled on an enabled edge with ``func``.
    func : In(1)
        0 GELU, 1 SiLU.
    y : Out(signed(32))
        Result, Q.10; valid ``LATENCY`` enabled edges after ``t`` was sampled, held while
        ``en = 0``.
    """

    LATENCY = 3

    def __init__(self):
        super().__init__({
            "en": In(1),
            "t": In(signed(32)),
            "func": In(1),
            "y": Out(signed(32)),
        })

    def elaborate(self, platform):
        m = Module()
        seg_bits, dx_bits = tables.PWL_SEG_BITS, tables.PWL_DX_BITS
        y_bits, s_bits = tables.pwl_field_bits()
        word = data.StructLayout({"y": signed(y_bits), "s": signed(s_bits)})
        table = tables.pwl_table()
        m.submodules.rom = rom = memory.Memory(
            shape=word, depth=len(table), init=[{"y": y, "s": s} for y, s in table])
        rd = rom.read_port()

        u = self.t + tables.PWL_OFFSET
        inside = (u >= 0) & (u < tables.PWL_SPAN)
        m.d.comb += [rd.addr.eq(Cat(u[dx_bits:dx_bits + seg_bits], self.func)),
                     rd.en.eq(self.en)]

        # Stage 1: beside the ROM read.
        t1, in1, dx1 = Signal(signed(32)), Signal(), Signal(dx_bits)
        # Stage 2: product and knot.
        t2, in2 = Signal(signed(32)), Signal()
        prod = Signal(signed(s_bits + dx_bits + 1))
        y2 = Signal(signed(y_bits))
        y = Signal(signed(32))
        with m.If(self.en):
            m.d.sync += [t1.eq(self.t), in1.eq(inside), dx1.eq(u[:dx_bits])]
            m.d.sync += [t2.eq(t1), in2.eq(in1), prod.eq(rd.data.s * dx1), y2.eq(rd.data.y)]
            # t2 < 0 outside the range means t < -8192 (f(t) ~ 0); else t >= 8192 (f(t) ~ t).
            half = 1 << (dx_bits - 1)
            m.d.sync += y.eq(Mux(in2, y2 + ((prod + half) >> dx_bits), Mux(t2 < 0, 0, t2)))
        m.d.comb += self.y.eq(y)
        return m
