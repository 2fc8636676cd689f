"""The VPU's back end: executes each command's second half in order and answers its status.

* errors: the status only;
* LOAD_P: ``n`` beats of ``s_axis_p`` into the channel-parameter memory (one channel per cycle);
* reductions: one ``m_axis_s`` beat per row from the row-scalar queue (``tlast`` on the last row);
* row operations: the row buffer's beats, one per cycle while the output queue has room, through
  a fixed pipeline of :data:`back_latency` cycles computing
  ``v = sat34(rshr(X * Y, s1))`` and ``y = sat_out(rshr(v * W, s2) + O)`` per lane, the operands
  chosen per opcode (``docs/vpu.md``): the identity for the single-pass opcodes the front end
  finished, the channel's ``(offset, mult, shift)`` for REQUANT, the row scalar for
  REQUANT_DYN and SOFTMAX (whose ``X`` is ``exp2neg(256*(M+1) - z)``), both for the norms.
  A two-pass row starts when its row scalar is there; REQUANT_DYN also sends the row's absolute
  maximum on ``m_axis_s``.

The status of a command is queued once its last output beat (and row scalar) has been taken
from the output queues, so it never overtakes its data; the next command starts then.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .decode import op_in
from .fixed import delay as _delay, rshr_sat, sat_to
from .front import BackCommand, row_beat_layout
from .funcs import Exp2Neg
from .layouts import (EXP_D_MAX, FMT_BITS, NORM_FRAC, REDUCTIONS, TWO_PASS, ChannelParam, Fmt,
                      Op, Status, StatusWord)
from .rowstats import RowScalar


__all__ = ["Back", "back_latency", "OUT_DEPTH"]

STATUS_DEPTH = 4
SCALAR_OUT_DEPTH = 4


def back_latency():
    """Cycles from a row-buffer beat's pop to its output-queue write: operand register, the exp2
    unit, operand select, two products, two roundings."""
    return 1 + Exp2Neg.LATENCY + 5


# Output queue: a beat is issued only with a credit (a free slot counting the beats in the
# pipeline), so a stopped sink never overflows it; the credit comes back a cycle after the pop,
# and the queue's write-to-read takes a cycle, so back_latency() + 3 credits keep an always-ready
# sink at one beat per cycle.
OUT_DEPTH = back_latency() + 3


class Back(wiring.Component):
    """See the module docstring.

    Members
    -------
    i_cmd : In(stream.Signature(BackCommand))
    i_beat : In(stream.Signature(row_beat_layout(lanes)))      the row buffer's output
    i_scalar : In(stream.Signature(RowScalar))                  the row-scalar queue's output
    p : In(stream.Signature(ChannelParam))                      ``s_axis_p``
    o_y : Out(stream.Signature(StructLayout(data, keep, last))) ``m_axis_y``
    o_s : Out(stream.Signature(StructLayout(data, last)))       ``m_axis_s``
    o_sts : Out(stream.Signature(StatusWord))                   ``m_sts``
    """

    def __init__(self, *, lanes, channels):
        self._lanes, self._channels = lanes, channels
        L = lanes
        self.y_layout = data.StructLayout({"data": 32 * L, "keep": 4 * L, "last": 1})
        self.s_layout = data.StructLayout({"data": 64, "last": 1})
        super().__init__({
            "i_cmd": In(stream.Signature(BackCommand)),
            "i_beat": In(stream.Signature(row_beat_layout(L))),
            "i_scalar": In(stream.Signature(RowScalar)),
            "p": In(stream.Signature(ChannelParam)),
            "o_y": Out(stream.Signature(self.y_layout)),
            "o_s": Out(stream.Signature(self.s_layout)),
            "o_sts": Out(stream.Signature(StatusWord)),
        })

    def elaborate(self, platform):
        m = Module()
        L = self._lanes
        lat = back_latency()

        def delay(sig, n, name):
            return _delay(m, sig, n, name)

        # ---- queues --------------------------------------------------------------------
        m.submodules.sts = sts = fifo.SyncFIFOBuffered(width=StatusWord.size, depth=STATUS_DEPTH)
        m.d.comb += [self.o_sts.payload.eq(sts.r_data), self.o_sts.valid.eq(sts.r_rdy),
                     sts.r_en.eq(self.o_sts.ready)]
        m.submodules.yq = yq = fifo.SyncFIFOBuffered(width=self.y_layout.size, depth=OUT_DEPTH)
        m.d.comb += [self.o_y.payload.eq(yq.r_data), self.o_y.valid.eq(yq.r_rdy),
                     yq.r_en.eq(self.o_y.ready)]
        m.submodules.sq = sq = fifo.SyncFIFOBuffered(width=65, depth=SCALAR_OUT_DEPTH)
        m.d.comb += [self.o_s.payload.eq(sq.r_data), self.o_s.valid.eq(sq.r_rdy),
                     sq.r_en.eq(self.o_s.ready)]

        # ---- channel parameters: one word of L channels per address -----------------------
        words = -(-self._channels // L)
        m.submodules.pmem = pmem = memory.Memory(shape=64 * L, depth=words, init=[])
        p_wr, p_rd = pmem.write_port(granularity=64), pmem.read_port()

        # ---- command sequencing --------------------------------------------------------
        cur = Signal(BackCommand)
        cmd = cur.cmd
        op = cmd.op
        is_ = {o: (op == o.value) for o in Op}
        two_pass = op_in(op, TWO_PASS)
        count = Signal(16)          # LOAD_P channel / reduction row / row of a row operation
        bidx = Signal(16)           # beat of the row (channel-parameter address)
        row_start = bidx == 0
        drain = Signal(range(lat + 1))
        ocredits = Signal(range(OUT_DEPTH + 1), init=OUT_DEPTH)
        issue = Signal()
        rs_reg = Signal(RowScalar)
        status_w = Signal(StatusWord)
        m.d.comb += [status_w.op.eq(op), status_w.code.eq(cur.status), sts.w_data.eq(status_w)]

        y_push = Signal()
        m.d.sync += ocredits.eq(ocredits - issue + (self.o_y.valid & self.o_y.ready))

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.i_cmd.ready.eq(1)
                with m.If(self.i_cmd.valid):
                    m.d.sync += [cur.eq(self.i_cmd.payload), count.eq(0), bidx.eq(0)]
                    c = self.i_cmd.payload
                    with m.If(c.status != Status.OK):
                        m.next = "STATUS"
                    with m.Elif(c.cmd.op == Op.LOAD_P.value):
                        m.next = "LOAD_P"
                    with m.Elif(op_in(c.cmd.op, REDUCTIONS)):
                        m.next = "REDUCE"
                    with m.Else():
                        m.next = "ROWS"
            with m.State("LOAD_P"):
                m.d.comb += [self.p.ready.eq(1), p_wr.addr.eq(count // L), p_wr.data.eq(
                    Cat(*([self.p.payload.as_value()] * L)))]
                with m.If(self.p.valid):
                    m.d.comb += p_wr.en.eq(1 << (count % L))
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == cmd.n - 1):
                        m.next = "STATUS"
            with m.State("REDUCE"):
                m.d.comb += [sq.w_data.eq(Cat(self.i_scalar.payload.emit, count == cmd.rows - 1)),
                             sq.w_en.eq(self.i_scalar.valid & sq.w_rdy),
                             self.i_scalar.ready.eq(sq.w_rdy)]
                with m.If(self.i_scalar.valid & sq.w_rdy):
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == cmd.rows - 1):
                        m.next = "STATUS"
            with m.State("ROWS"):
                dyn = is_[Op.REQUANT_DYN]
                scalar_ok = ~two_pass | ~row_start | (self.i_scalar.valid & (~dyn | sq.w_rdy))
                m.d.comb += issue.eq(self.i_beat.valid & (ocredits != 0) & scalar_ok)
                m.d.comb += [self.i_beat.ready.eq(issue),
                             self.i_scalar.ready.eq(issue & two_pass & row_start),
                             sq.w_en.eq(issue & dyn & row_start),
                             sq.w_data.eq(Cat(self.i_scalar.payload.emit, count == cmd.rows - 1))]
                with m.If(issue & two_pass & row_start):
                    m.d.sync += rs_reg.eq(self.i_scalar.payload)
                with m.If(issue):
                    m.d.sync += bidx.eq(bidx + 1)
                    with m.If(self.i_beat.payload.last):
                        m.d.sync += [bidx.eq(0), count.eq(count + 1)]
                        with m.If(count == cmd.rows - 1):
                            m.d.sync += drain.eq(lat)
                            m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.sync += drain.eq(drain - 1)
                with m.If(drain == 1):
                    m.next = "STATUS"
            with m.State("STATUS"):
                # the status leaves only after the command's data: both output queues empty
                done = (yq.level == 0) & (sq.level == 0)
                m.d.comb += sts.w_en.eq(done)
                with m.If(sts.w_rdy & done):
                    m.next = "IDLE"

        # ---- row pipeline --------------------------------------------------------------
        m.d.comb += [p_rd.addr.eq(bidx), p_rd.en.eq(1)]
        beat = Signal(row_beat_layout(L))
        rs = Signal(RowScalar)
        v1, last1 = Signal(), Signal()
        m.d.sync += [v1.eq(issue), beat.eq(self.i_beat.payload),
                     rs.eq(Mux(two_pass & row_start, self.i_scalar.payload, rs_reg))]
        prm = data.View(data.ArrayLayout(ChannelParam, L), p_rd.data)

        le = Exp2Neg.LATENCY
        assert le >= 2, "the LAYERNORM centring takes two cycles beside the exp2 unit"
        e, c = [], []
        for i in range(L):
            ex = Exp2Neg()
            m.submodules[f"exp{i}"] = ex
            t = beat.t[i]
            d = (rs.m + 1) * 256 - t       # >= 1: z <= 256*M + 255
            m.d.comb += [ex.en.eq(1), ex.d.eq(Mux(d > EXP_D_MAX, EXP_D_MAX, d))]
            e.append(ex.y)
            nt = Signal(signed(48), name=f"nt{i}")
            ci = Signal(signed(34), name=f"c{i}")
            m.d.sync += nt.eq(cmd.n * t)
            m.d.sync += ci.eq(nt - delay(rs.m, 1, f"s1_{i}"))
            c.append(delay(ci, le - 2, f"cd{i}"))
        beat2 = delay(beat, le, "beat2")
        rs2 = delay(rs, le, "rs2")
        prm2 = delay(prm, le, "prm2")
        v2 = delay(v1, le, "v2")

        # operand select
        xs = [Signal(signed(34), name=f"x{i}") for i in range(L)]
        ys = [Signal(signed(36), name=f"y{i}") for i in range(L)]
        s1 = [Signal(7, name=f"s1{i}") for i in range(L)]
        ws = [Signal(signed(17), name=f"w{i}") for i in range(L)]
        s2 = [Signal(7, name=f"s2{i}") for i in range(L)]
        os_ = [Signal(signed(32), name=f"o{i}") for i in range(L)]
        norm = is_[Op.RMSNORM] | is_[Op.LAYERNORM]
        scaled = is_[Op.REQUANT_DYN] | is_[Op.SOFTMAX] | norm
        for i in range(L):
            t = beat2.t[i]
            pr = prm2[i]
            x = Mux(is_[Op.REQUANT], t + pr.offset,
                Mux(is_[Op.SOFTMAX], Mux(beat2.live[i], e[i], 0),
                Mux(is_[Op.LAYERNORM], c[i], t)))
            m.d.sync += [
                xs[i].eq(x),
                ys[i].eq(Mux(is_[Op.REQUANT], pr.mult, Mux(scaled, rs2.k, 1))),
                s1[i].eq(Mux(is_[Op.REQUANT], pr.shift, Mux(scaled, rs2.sh, 0))),
                ws[i].eq(Mux(norm, pr.mult, 1)),
                s2[i].eq(Mux(norm, pr.shift + NORM_FRAC, 0)),
                os_[i].eq(Mux(norm, pr.offset, 0)),
            ]
        beat3, v3 = delay(beat2, 1, "beat3"), delay(v2, 1, "v3")

        p1 = [Signal(signed(64), name=f"p1_{i}") for i in range(L)]
        vv = [Signal(signed(34), name=f"v{i}") for i in range(L)]
        p2 = [Signal(signed(52), name=f"p2_{i}") for i in range(L)]
        yy = [Signal(signed(32), name=f"yy{i}") for i in range(L)]
        for i in range(L):
            m.d.sync += p1[i].eq(xs[i] * ys[i])
            m.d.sync += vv[i].eq(rshr_sat(p1[i], delay(s1[i], 1, f"s1d{i}"), 34))
            m.d.sync += p2[i].eq(vv[i] * delay(ws[i], 2, f"wd{i}"))
            # Clipping the rounded value to 33 bits first changes no output: past the int32
            # range by more than any offset, it stays past it with the offset added.
            y = rshr_sat(p2[i], delay(s2[i], 3, f"s2d{i}"), 33) + delay(os_[i], 3, f"od{i}")
            m.d.sync += yy[i].eq(sat_to(y, {f.value: b for f, b in FMT_BITS.items()}, cmd.out_fmt))
        beat6, v6 = delay(beat3, 4, "beat6"), delay(v3, 4, "v6")

        # pack
        packed = Const(0, 32 * L)
        keep = Const(0, 4 * L)
        for f, bits in FMT_BITS.items():
            nbytes = bits // 8
            # lanes past the row's end are 0 (tkeep clear): nothing stale leaves the unit
            word = Cat(*(Mux(beat6.keep[i], yy[i][:bits], 0) for i in range(L)))
            kw = Cat(*(beat6.keep[i].replicate(nbytes) for i in range(L)))
            packed = Mux(cmd.out_fmt == f.value, word, packed)
            keep = Mux(cmd.out_fmt == f.value, kw, keep)
        out = Signal(self.y_layout)
        m.d.comb += [out.data.eq(packed), out.keep.eq(keep), out.last.eq(beat6.last),
                     yq.w_data.eq(out), yq.w_en.eq(v6)]
        return m
