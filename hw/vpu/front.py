"""The VPU's front end: takes commands, maps each input beat elementwise and reduces each row.

Per command it consumes ``rows * ceil(n / lanes)`` beats of ``a`` (and of ``b`` for ADD, MUL,
ROPE), one per cycle while the row buffer and the row-scalar queue have room (credits), and
drives a fixed pipeline of :data:`FRONT_LATENCY` cycles:

* map: ``t = f(a, b)`` per lane — the whole operation for the single-pass opcodes (SCALE, ADD,
  MUL, GELU, SILU, ROPE), the identity or SOFTMAX's ``z = sat32(rshr(a*ma, sa))`` for the rest
  (formulas in :mod:`scoville.verif.vpu_model`);
* reduce: per-lane running absolute maximum, maximum with its index, sum, sum of squares and
  SOFTMAX's online (max, sum) pair, restarted at each row; at a row's last beat the lanes'
  states leave on ``o_stats`` for :class:`~.rowstats.RowStats`;
* the mapped beat (``t`` per lane, lane keep and unmasked bits, row end) leaves on ``o_beat``
  for the row buffer — except for the reductions (MAX, SUM, SUMSQ, ARGMAX), whose rows are
  not kept, so their n is not bounded by the buffer.

Every command is forwarded, with its status, on ``o_cmd`` when it is taken (one per cycle at
most, in order); a command with an error status, or LOAD_P (executed by the back end), moves
no data here. A command is taken ``FRONT_LATENCY + 1`` cycles after the previous command's
last beat (the pipeline holds one command's fields); within a command beats flow without a gap.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .decode import command_status, op_in
from .fixed import delay as _delay, rshr_sat
from .funcs import Exp2Neg, PWL
from .pairs import HalvesPairing
from .layouts import (FMT_BITS, M_INIT, REDUCTIONS, ROPE_FRAC, SOFTMAX_FRAC, TWO_PASS, USES_B,
                      Command, Fmt, Op, RopeCoef, Status)


__all__ = ["Front", "BackCommand", "row_beat_layout", "lane_stats_layout", "FRONT_LATENCY"]

#: A command as the back end receives it: the word and the status it answers.
BackCommand = data.StructLayout({"cmd": Command, "status": Status})

# Map pipeline: unpack (1), two products (1), sum + first rounding (1), PWL (its latency),
# third product (1), second rounding (1); then the reduce stage: exp2 of the fraction (its
# latency) and the update (1).
MAP_LATENCY = 5 + PWL.LATENCY
FRONT_LATENCY = MAP_LATENCY + Exp2Neg.LATENCY + 1


def row_beat_layout(lanes):
    """A row-buffer entry: mapped elements, which lanes hold an element, which are unmasked
    (SOFTMAX), whether the beat ends its row."""
    return data.StructLayout({"t": data.ArrayLayout(signed(32), lanes), "keep": lanes,
                              "live": lanes, "last": 1})


#: Per-lane reduction state.
LaneStats = data.StructLayout({
    "amax": unsigned(32), "max": signed(32), "arg": unsigned(16),
    "sum": signed(48), "sumsq": unsigned(48),
    "sm_m": signed(24), "sm_s": unsigned(32),
})


def lane_stats_layout(lanes):
    return data.ArrayLayout(LaneStats, lanes)


def _unpack(word, fmt, lanes):
    """Lanes of ``word`` (``32 * lanes`` bits) in format ``fmt``, sign-extended to 32 bits."""
    out = []
    for i in range(lanes):
        v = Const(0, signed(32))
        for code, bits in FMT_BITS.items():
            v = Mux(fmt == code.value, word[bits * i:bits * (i + 1)].as_signed(), v)
        out.append(v)
    return out


class Front(wiring.Component):
    """See the module docstring.

    Members
    -------
    i_cmd : In(stream.Signature(Command))
    o_cmd : Out(stream.Signature(BackCommand))
        To the back end's command queue; ``i_cmd`` is taken only when ``o_cmd`` is ready.
    a, b : In(stream.Signature(32 * lanes))
        Operand beats (``s_axis_a`` / ``s_axis_b`` payloads).
    o_beat : Out(stream.Signature(row_beat_layout(lanes)))
        Mapped beats; ``ready`` is ignored — the row buffer always has room (``beat_credit``).
    o_stats : Out(stream.Signature(...))
        A row's lane states, its command and row length; ``ready`` ignored (``scalar_credit``).
    beat_credit, scalar_credit : In(1)
        One row-buffer entry / one row scalar freed this cycle.
    """

    def __init__(self, *, lanes, buffer_beats, scalar_depth, buffer, channels, rope_max):
        self._lanes, self._beats, self._sdepth = lanes, buffer_beats, scalar_depth
        self._buffer, self._channels, self._rope_max = buffer, channels, rope_max
        self.stats_layout = data.StructLayout({"lanes": lane_stats_layout(lanes), "cmd": Command})
        super().__init__({
            "i_cmd": In(stream.Signature(Command)),
            "o_cmd": Out(stream.Signature(BackCommand)),
            "a": In(stream.Signature(32 * lanes)),
            "b": In(stream.Signature(32 * lanes)),
            "o_beat": Out(stream.Signature(row_beat_layout(lanes))),
            "o_stats": Out(stream.Signature(self.stats_layout)),
            "beat_credit": In(1),
            "scalar_credit": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        L = self._lanes
        lb = ceil_log2(L)

        # ---- command intake ------------------------------------------------------------
        cur = Signal(Command)
        busy = Signal()
        status = command_status(m, self.i_cmd.payload, lanes=L, buffer=self._buffer,
                                channels=self._channels, rope_max=self._rope_max)
        # The pipeline reads the command's fields at every stage, so a new command is taken
        # only once the previous one's beats have left it.
        drain = Signal(range(FRONT_LATENCY + 1))
        idle = ~busy & (drain == 0)
        m.d.comb += [self.o_cmd.payload.cmd.eq(self.i_cmd.payload),
                     self.o_cmd.payload.status.eq(status),
                     self.o_cmd.valid.eq(self.i_cmd.valid & idle),
                     self.i_cmd.ready.eq(self.o_cmd.ready & idle)]
        moves_data = (status == Status.OK) & (self.i_cmd.payload.op != Op.LOAD_P.value)

        op = cur.op
        uses_b = op_in(op, USES_B)
        keeps_rows = ~op_in(op, REDUCTIONS)
        row_scalar = op_in(op, TWO_PASS + REDUCTIONS)

        # ---- beat issue: position in the command, credits ----------------------------
        beat = Signal(16)           # beat index in the row
        row = Signal(16)
        rem = Signal(17)            # elements of the row from this beat on
        live_rem = Signal(signed(18))   # unmasked elements from this beat on (SOFTMAX)
        lim0 = Signal(17)           # len + r (causal) for this row
        credits = Signal(range(self._beats + 1), init=self._beats)
        scredits = Signal(range(self._sdepth + 1), init=self._sdepth)
        first = beat == 0
        last = rem <= L
        issue = Signal()
        need_credit = keeps_rows & (credits == 0)
        need_scredit = row_scalar & first & (scredits == 0)
        # ROPE with halves pairs: the beats come reordered from the pairing stage
        m.submodules.pairs = pairs = HalvesPairing(lanes=L, depth=max(1, self._rope_max // (2 * L)))
        halves = (op == Op.ROPE.value) & cur.halves
        m.d.comb += [pairs.start.eq(self.i_cmd.valid & self.i_cmd.ready),
                     pairs.half_beats.eq(cur.n >> (lb + 1)),
                     pairs.i_a.valid.eq(busy & halves & self.a.valid), pairs.i_a.payload.eq(self.a.payload),
                     pairs.i_b.valid.eq(busy & halves & self.b.valid), pairs.i_b.payload.eq(self.b.payload)]
        src_valid = Mux(halves, pairs.o.valid, self.a.valid & (self.b.valid | ~uses_b))
        m.d.comb += issue.eq(busy & src_valid & ~need_credit & ~need_scredit)
        m.d.comb += pairs.o.ready.eq(issue & halves)
        m.d.comb += [self.a.ready.eq(Mux(halves, busy & pairs.i_a.ready, issue)),
                     self.b.ready.eq(Mux(halves, busy & pairs.i_b.ready, issue & uses_b))]

        take_beat = issue & keeps_rows
        take_row = issue & first & row_scalar
        m.d.sync += credits.eq(credits - take_beat + self.beat_credit)
        m.d.sync += scredits.eq(scredits - take_row + self.scalar_credit)

        def row_limit(base):
            return Mux(base < cur.n, base, cur.n)

        with m.If(drain != 0):
            m.d.sync += drain.eq(drain - 1)
        with m.If(self.i_cmd.valid & self.i_cmd.ready):
            c = self.i_cmd.payload
            m.d.sync += [cur.eq(c), busy.eq(moves_data), beat.eq(0), row.eq(0), rem.eq(c.n),
                         lim0.eq(c.len)]
            m.d.sync += live_rem.eq(Mux(c.len < c.n, c.len, c.n))
        with m.Elif(issue):
            with m.If(last):
                next_lim = lim0 + cur.causal
                m.d.sync += [beat.eq(0), row.eq(row + 1), rem.eq(cur.n), lim0.eq(next_lim),
                             live_rem.eq(Mux(next_lim < cur.n, next_lim, cur.n))]
                with m.If(row == cur.rows - 1):
                    m.d.sync += [busy.eq(0), drain.eq(FRONT_LATENCY)]
            with m.Else():
                m.d.sync += [beat.eq(beat + 1), rem.eq(rem - L), live_rem.eq(live_rem - L)]

        # ---- stage 0: unpack and choose the multiplier operands -------------------------
        a_word = Mux(halves, pairs.o.payload.a, self.a.payload)
        b_word = Mux(halves, pairs.o.payload.b, self.b.payload)
        a = _unpack(a_word, cur.in_fmt, L)
        b = _unpack(b_word, cur.in_fmt, L)
        p_half = _unpack(pairs.o.payload.p, cur.in_fmt, L)
        coef = [data.View(RopeCoef, b_word[32 * i:32 * (i + 1)]) for i in range(L)]
        is_ = {o: (op == o.value) for o in Op}
        one = Const(1, signed(17))

        x1 = [Signal(signed(32), name=f"x1_{i}") for i in range(L)]
        y1 = [Signal(signed(17), name=f"y1_{i}") for i in range(L)]
        x2 = [Signal(signed(32), name=f"x2_{i}") for i in range(L)]
        y2 = [Signal(signed(17), name=f"y2_{i}") for i in range(L)]
        v0 = Signal()
        tag0 = Signal(row_beat_layout(L))    # t unused at this stage
        first0, arg0 = Signal(), Signal(16)
        m.d.sync += [v0.eq(issue), first0.eq(first), arg0.eq(beat << lb),
                     tag0.last.eq(last)]
        for i in range(L):
            # ROPE pairs: GGUF (2i, 2i+1) inside the beat, or halves from the pairing stage;
            # the sine's sign is -1 on the pair's first element
            partner = Mux(halves, p_half[i], a[i ^ 1])
            pair_first = Mux(halves, ~pairs.o.payload.second, i % 2 == 0)
            sin = Mux(pair_first, -coef[i].sin, coef[i].sin)
            m.d.sync += [
                tag0.keep[i].eq(rem > i),
                tag0.live[i].eq(live_rem > i),
                x1[i].eq(a[i]),
                y1[i].eq(Mux(is_[Op.ADD] | is_[Op.SCALE] | is_[Op.GELU] | is_[Op.SILU]
                             | is_[Op.SOFTMAX], cur.mult_a,
                         Mux(is_[Op.MUL], b[i], Mux(is_[Op.ROPE], coef[i].cos, one)))),
                x2[i].eq(Mux(is_[Op.ADD], b[i], Mux(is_[Op.ROPE], partner, 0))),
                y2[i].eq(Mux(is_[Op.ADD], cur.mult_b, Mux(is_[Op.ROPE], sin, 0))),
            ]

        # ---- stage 1: products; stage 2: sum and first rounding -------------------------
        p1 = [Signal(signed(49), name=f"p1_{i}") for i in range(L)]
        p2 = [Signal(signed(49), name=f"p2_{i}") for i in range(L)]
        for i in range(L):
            m.d.sync += [p1[i].eq(x1[i] * y1[i]), p2[i].eq(x2[i] * y2[i])]
        first_round = is_[Op.SCALE] | is_[Op.ADD] | is_[Op.GELU] | is_[Op.SILU] | is_[Op.SOFTMAX]
        u = [Signal(signed(34), name=f"u_{i}") for i in range(L)]
        for i in range(L):
            s = p1[i] + p2[i]
            m.d.sync += u[i].eq(Mux(first_round, rshr_sat(s, cur.shift_a, 32), s))
        # MUL's a*b (< 2**31) and ROPE's a*cos +- a'*sin (< 2**32) stay exact in 34 bits

        # ---- PWL (GELU, SiLU) or a delay of the same length ---------------------------
        w = []
        for i in range(L):
            pwl = PWL()
            m.submodules[f"pwl{i}"] = pwl
            m.d.comb += [pwl.en.eq(1), pwl.t.eq(u[i][:32].as_signed()), pwl.func.eq(is_[Op.SILU])]
            d = u[i]
            for k in range(PWL.LATENCY):
                r = Signal(signed(34), name=f"ud{k}_{i}")
                m.d.sync += r.eq(d)
                d = r
            w.append(Mux(is_[Op.GELU] | is_[Op.SILU], pwl.y, d))

        def delay(sig, n, name):
            return _delay(m, sig, n, name)

        # ---- stage 3: third product; stage 4: second rounding --------------------------
        y3 = Mux(is_[Op.GELU] | is_[Op.SILU], cur.mult_b, Mux(is_[Op.MUL] | is_[Op.ROPE], cur.mult_a, 1))
        s3 = Mux(is_[Op.GELU] | is_[Op.SILU], cur.shift_b,
                 Mux(is_[Op.MUL], cur.shift_a, Mux(is_[Op.ROPE], cur.shift_a + ROPE_FRAC, 0)))
        p3 = [Signal(signed(51), name=f"p3_{i}") for i in range(L)]
        t = [Signal(signed(32), name=f"t_{i}") for i in range(L)]
        for i in range(L):
            m.d.sync += p3[i].eq(w[i] * y3.as_signed())
            m.d.sync += t[i].eq(rshr_sat(p3[i], s3, 32))

        vm = delay(v0, MAP_LATENCY - 1, "v")
        tagm = delay(tag0, MAP_LATENCY - 1, "tag")
        firstm = delay(first0, MAP_LATENCY - 1, "first")
        argm = delay(arg0, MAP_LATENCY - 1, "arg")

        # ---- reduce: exp2 of the fraction of z (SOFTMAX), then the lane updates ---------
        e = []
        for i in range(L):
            ex = Exp2Neg()
            m.submodules[f"exp{i}"] = ex
            m.d.comb += [ex.en.eq(1), ex.d.eq(256 - t[i][:SOFTMAX_FRAC])]
            e.append(ex.y)
        le = Exp2Neg.LATENCY
        vr, tagr, firstr, argr = (delay(x, le, n) for x, n in
                                  ((vm, "vr"), (tagm, "tagr"), (firstm, "firstr"), (argm, "argr")))
        tr = [delay(t[i], le, f"tr{i}") for i in range(L)]

        state = Signal(lane_stats_layout(L))
        nxt = Signal(lane_stats_layout(L))
        init = {"amax": 0, "max": -(1 << 31), "arg": 0, "sum": 0, "sumsq": 0,
                "sm_m": M_INIT, "sm_s": 0}
        for i in range(L):
            base = Signal(LaneStats, name=f"base{i}")
            st, nx = state[i], nxt[i]
            for f, v in init.items():
                m.d.comb += getattr(base, f).eq(Mux(firstr, v, getattr(st, f)))
            x = tr[i]
            ax = Mux(x < 0, -x, x)[:32]
            k = x[SOFTMAX_FRAC:].as_signed()          # z >> 8, 24 bits
            m2 = Mux(k > base.sm_m, k, base.sm_m)
            sh_s = (m2 - base.sm_m).as_unsigned()
            sh_e = (m2 - k).as_unsigned()
            s_old = Mux(sh_s >= 32, 0, base.sm_s >> sh_s[:5])
            s_new = Mux(sh_e >= 32, 0, e[i] >> sh_e[:5])
            use = tagr.keep[i]
            # A row's first beat starts every lane's maximum (ties keep the earlier index)
            take_max = use & ((x > base.max) | firstr)
            x16 = x[:17].as_signed()      # SUMSQ and the norms take int8/int16 inputs only
            live = tagr.live[i]
            m.d.comb += [
                nx.amax.eq(Mux(use & (ax > base.amax), ax, base.amax)),
                nx.max.eq(Mux(take_max, x, base.max)),
                nx.arg.eq(Mux(take_max, argr + i, base.arg)),
                nx.sum.eq(base.sum + Mux(use, x, 0)),
                nx.sumsq.eq(base.sumsq + Mux(use, x16 * x16, 0)),
                nx.sm_m.eq(Mux(use & live, m2, base.sm_m)),
                nx.sm_s.eq(Mux(use & live, s_old + s_new, base.sm_s)),
            ]
        with m.If(vr):
            m.d.sync += state.eq(nxt)

        m.d.sync += [self.o_stats.valid.eq(vr & tagr.last & row_scalar),
                     self.o_stats.payload.lanes.eq(nxt), self.o_stats.payload.cmd.eq(cur)]
        m.d.sync += [self.o_beat.valid.eq(vr & keeps_rows), self.o_beat.payload.keep.eq(tagr.keep),
                     self.o_beat.payload.live.eq(tagr.live), self.o_beat.payload.last.eq(tagr.last)]
        for i in range(L):
            m.d.sync += self.o_beat.payload.t[i].eq(tr[i])
        return m
