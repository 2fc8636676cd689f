"""Row scalars: the lanes' reduction states of a row combined, and the row's normalisation
factor computed — one row per cycle, a fixed pipeline of :data:`ROWSTATS_LATENCY` cycles.

* the lanes are combined as a binary tree (lane 2i with 2i+1, then pairs of pairs), one level
  per cycle: maxima (ARGMAX: the larger value, the lower index on ties), sums, SOFTMAX's
  online pairs ``(m, s) + (m', s') = (M, (s >> (M - m)) + (s' >> (M - m')))``;
* the factor: REQUANT_DYN ``recip(max(A, 1))``, SOFTMAX ``recip(max(S, 1))``, RMSNORM
  ``rsqrt(Q + eps)``, LAYERNORM ``rsqrt(n * Q - S1**2 + eps)``; then ``K = qmax * R``.

Output (:data:`RowScalar`): ``emit`` for m_axis_s (the reductions' value, REQUANT_DYN's
absolute maximum), ``k`` and ``sh`` — the multiplier and shift the back end applies (``qmax*R``
and ``e + 17``, or ``G`` and ``h``), ``m`` — SOFTMAX's maximum or LAYERNORM's sum.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .decode import op_in
from .fixed import delay as _delay
from .front import LaneStats
from .funcs import Recip, Rsqrt
from .layouts import ArgmaxWord, Command, Fmt, FMT_MAX, Op


__all__ = ["RowStats", "RowScalar", "rowstats_latency"]

RowScalar = data.StructLayout({"emit": signed(64), "k": unsigned(34), "sh": unsigned(7),
                               "m": signed(32)})

_FUNC_LATENCY = max(Recip.LATENCY, Rsqrt.LATENCY)


def rowstats_latency(lanes):
    """Cycles from a row's lane states in to its :data:`RowScalar` out: input register, one
    per tree level, two for the variance sum, the function unit, the ``qmax * R`` product."""
    return 1 + ceil_log2(lanes) + 2 + _FUNC_LATENCY + 1


def _shr32(v, s):
    return Mux(s >= 32, 0, v >> s[:5])


def _combine(m, l, r, name):
    """One tree node: the combined :data:`LaneStats` of lanes ``l`` and ``r`` (registered)."""
    out = Signal(LaneStats, name=name)
    r_wins = (r.max > l.max) | ((r.max == l.max) & (r.arg < l.arg))
    mm = Mux(r.sm_m > l.sm_m, r.sm_m, l.sm_m)
    m.d.sync += [
        out.amax.eq(Mux(r.amax > l.amax, r.amax, l.amax)),
        out.max.eq(Mux(r_wins, r.max, l.max)),
        out.arg.eq(Mux(r_wins, r.arg, l.arg)),
        out.sum.eq(l.sum + r.sum),
        out.sumsq.eq(l.sumsq + r.sumsq),
        out.sm_m.eq(mm),
        out.sm_s.eq(_shr32(l.sm_s, (mm - l.sm_m).as_unsigned())
                    + _shr32(r.sm_s, (mm - r.sm_m).as_unsigned())),
    ]
    return out


class RowStats(wiring.Component):
    """See the module docstring. ``i`` and ``o`` ignore ``ready``: the row-scalar queue behind
    ``o`` is reserved by the front end's credits.

    Members
    -------
    i : In(stream.Signature(StructLayout({"lanes": lane states, "cmd": Command})))
    o : Out(stream.Signature(RowScalar))
    """

    def __init__(self, *, lanes, stats_layout):
        self._lanes = lanes
        self.latency = rowstats_latency(lanes)
        super().__init__({"i": In(stream.Signature(stats_layout)),
                          "o": Out(stream.Signature(RowScalar))})

    def elaborate(self, platform):
        m = Module()
        L = self._lanes
        depth = ceil_log2(L)

        def delay(sig, n, name):
            return _delay(m, sig, n, name)

        level = []
        for i in range(L):
            s = Signal(LaneStats, name=f"in{i}")
            m.d.sync += s.eq(self.i.payload.lanes[i])
            level.append(s)
        v = Signal()
        cmd = Signal(Command)
        m.d.sync += [v.eq(self.i.valid), cmd.eq(self.i.payload.cmd)]
        for d in range(depth):
            level = [_combine(m, level[2 * j], level[2 * j + 1], f"t{d}_{j}")
                     for j in range(len(level) // 2)]
        row = level[0]
        v, cmd = delay(v, depth, "v"), delay(cmd, depth, "cmd")

        op = cmd.op
        is_ = {o: (op == o.value) for o in Op}
        # Two cycles for the variance sum: n * Q and S1**2, then the difference plus eps.
        s1 = row.sum[:31].as_signed()        # |S1| < 2**30 for the norms' rows
        nq, s1sq, eps = Signal(64), Signal(62), Signal(57)
        m.d.sync += [nq.eq(cmd.n * row.sumsq), s1sq.eq(s1 * s1),
                     eps.eq(cmd.mult_b.as_unsigned() << cmd.shift_b)]
        row1, cmd1, v1 = delay(row, 1, "row1"), delay(cmd, 1, "cmd1"), delay(v, 1, "v1")
        x = Signal(64)
        is1 = {o: (cmd1.op == o.value) for o in Op}
        m.d.sync += x.eq(Mux(is1[Op.REQUANT_DYN], Mux(row1.amax == 0, 1, row1.amax),
                         Mux(is1[Op.SOFTMAX], Mux(row1.sm_s == 0, 1, row1.sm_s),
                         Mux(is1[Op.RMSNORM], row1.sumsq + eps,
                             nq - s1sq + eps))))
        row2, cmd2, v2 = delay(row1, 1, "row2"), delay(cmd1, 1, "cmd2"), delay(v1, 1, "v2")

        rc, rs = Recip(width=64), Rsqrt(width=64)
        m.submodules.recip, m.submodules.rsqrt = rc, rs
        m.d.comb += [rc.en.eq(1), rc.x.eq(x), rs.en.eq(1), rs.x.eq(x)]
        r_mant = delay(rc.mant, _FUNC_LATENCY - Recip.LATENCY, "rmant")
        r_exp = delay(rc.exp, _FUNC_LATENCY - Recip.LATENCY, "rexp")
        g_mant = delay(rs.mant, _FUNC_LATENCY - Rsqrt.LATENCY, "gmant")
        g_exp = delay(rs.half_exp, _FUNC_LATENCY - Rsqrt.LATENCY, "gexp")
        row3 = delay(row2, _FUNC_LATENCY, "row3")
        cmd3 = delay(cmd2, _FUNC_LATENCY, "cmd3")
        v3 = delay(v2, _FUNC_LATENCY, "v3")

        is3 = {o: (cmd3.op == o.value) for o in Op}
        norm = is3[Op.RMSNORM] | is3[Op.LAYERNORM]
        qmax = Mux(is3[Op.SOFTMAX] & (cmd3.out_fmt == Fmt.INT16.value),
                   FMT_MAX[Fmt.INT16], FMT_MAX[Fmt.INT8])
        emit = Signal(signed(64))
        argw = Signal(ArgmaxWord)
        m.d.comb += [argw.value.eq(row3.max), argw.index.eq(row3.arg)]
        m.d.comb += emit.eq(Mux(is3[Op.MAX], row3.max, Mux(is3[Op.SUM], row3.sum,
                            Mux(is3[Op.SUMSQ], row3.sumsq.as_signed(),
                            Mux(is3[Op.ARGMAX], argw.as_value().as_signed(), row3.amax)))))
        out = self.o.payload
        m.d.sync += [
            self.o.valid.eq(v3),
            out.emit.eq(emit),
            out.k.eq(Mux(norm, g_mant, r_mant * qmax)),
            out.sh.eq(Mux(norm, g_exp, r_exp + 17)),
            out.m.eq(Mux(is3[Op.SOFTMAX], row3.sm_m, row3.sum[:32])),
        ]
        return m
