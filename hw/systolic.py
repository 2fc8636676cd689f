"""Systolic multiply-accumulate array, weight-stationary or output-stationary.

The array is a fixed-latency pipeline without handshakes: a systolic array cannot stall
cheaply (a global clock enable would fan out to every PE from the consumer's ``ready``), so the
controller that feeds it (:mod:`hw.gemm`) schedules every beat and the array only promises
exact timing. Every PE registers its outputs, so the longest path is one multiply-add.

Timing conventions used in the docstrings: a beat presented on the ports in cycle ``t`` (sampled
at the rising edge that ends cycle ``t``) produces its result in cycle ``t + latency``.
"""

from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Signal, signed, unsigned, Cat, Const
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .params import Params, ParameterError, check_choice, check_int, param


__all__ = ["SystolicParams", "SystolicBenchParams", "SystolicArray", "systolic", "lanes_layout"]


def lanes_layout(lanes, width, is_signed=True):
    """Layout of a vector port: ``lanes`` lanes of ``width`` bits, lane ``i`` at bits
    ``[i*width, (i+1)*width)`` (``a_data``, ``w_data``, ``b_data``: in_width; ``o_data``:
    acc_width)."""
    return data.ArrayLayout(signed(width) if is_signed else unsigned(width), lanes)


@dataclass(frozen=True)
class SystolicParams(Params):
    """Parameters of the ``systolic`` block as seen from the CLI."""
    rows: int = param(8, lo=1, hi=64, doc="PE rows R (WS: reduction lanes K; OS: output rows M)")
    cols: int = param(8, lo=1, hi=64, doc="PE columns C (output columns N)")
    dataflow: str = param("ws", choices=("ws", "os"), doc="weight- or output-stationary")
    in_width: int = param(8, lo=2, hi=18, doc="operand width in bits")
    acc_width: int = param(32, lo=8, hi=64, doc="accumulator width in bits")
    signed: bool = param(True, doc="operands are two's complement")
    tag_width: int = param(8, lo=1, hi=128, doc="width of the user tag carried to the output")

    def check(self):
        if self.acc_width < 2 * self.in_width:
            raise ParameterError(f"acc_width: {self.acc_width} is narrower than one product "
                                 f"(accepted: at least 2 * in_width = {2 * self.in_width})")


@dataclass(frozen=True)
class SystolicBenchParams(Params):
    """Workload of ``scoville bench systolic``: a stream of tiles scheduled back to back."""
    tiles: int = param(16, lo=1, hi=4096, doc="number of tiles")
    m: int = param(64, lo=1, hi=4096, doc="WS: activation rows per tile; OS: beats (K) per tile")


def _delay(m, sig, n, name):
    """``sig`` through ``n`` registers (``n = 0``: ``sig`` itself)."""
    for i in range(n):
        nxt = Signal.like(sig, name=f"{name}_d{i + 1}")
        m.d.sync += nxt.eq(sig)
        sig = nxt
    return sig


class SystolicArray(wiring.Component):
    """R x C array of multiply-accumulate PEs with input skew and output deskew.

    Ports take and give whole vectors per cycle: the input skew delays lane ``r`` (``c``) by
    ``r`` (``c``) cycles so operands meet in the right PE, and the output deskew delays column
    ``c`` by ``C - 1 - c`` so a whole output row leaves in one cycle. All inputs are registered
    once on entry. Lane ``i`` of a vector port is bits ``[i*w, (i+1)*w)``.

    **Weight-stationary** (``dataflow="ws"``): PE(r, c) holds weight ``W[r][c]`` in one of two
    banks. Activation vectors ``a`` (lane ``r`` = reduction index ``k``) flow right; partial sums
    flow down; column ``c`` delivers ``sum_r a[r] * W[r][c]``. Each activation beat names the
    bank it multiplies with (``a_bank``, which travels with the beat), so a tile in one bank can
    compute while the other bank loads: no bubble between tiles. A weight beat (``w_valid``,
    ``w_row``, ``w_bank``, ``w_data`` = one row of C weights) written in cycle ``tw`` becomes
    visible to PE(r, c) exactly where an activation beat presented in cycle ``tw + 1`` reaches
    it. Scheduling rule for the controller: the rows of a tile's weights may be sent in order
    ``0..R-1`` on consecutive cycles starting at ``t0`` if the first activation of that tile is
    presented at ``t0 + 1`` or later and the last activation of the previous tile using the same
    bank was presented at ``t0`` or earlier.

    Latency (WS): ``R + C`` cycles from ``a`` to ``o``; throughput one activation vector per
    cycle, one weight row per cycle (a full tile of weights in ``R`` cycles).

    **Output-stationary** (``dataflow="os"``): PE(r, c) accumulates ``C[r][c]`` in place. Each
    beat carries ``a`` (lane ``r`` = ``A[m0 + r][k]``) and ``b`` (lane ``c`` = ``B[k][n0 + c]``);
    ``a_first`` starts a new accumulation, ``a_last`` ends it and hands the result to a drain
    chain of two registers per PE that moves down half a row per cycle, which exactly matches the
    diagonal completion wavefront so draining overlaps the next tile's accumulation. The tile's
    ``R`` result rows leave on ``R`` consecutive cycles, row ``R-1`` first, starting
    ``R + C + 1`` cycles after the ``a_last`` beat (``o_row`` names the row, ``o_tag`` repeats
    the ``a_tag`` of the ``a_last`` beat). Scheduling rule: consecutive ``a_last`` beats at least
    ``R`` cycles apart (a tile of K beats therefore occupies ``max(K, R)`` cycles).

    Parameters
    ----------
    rows, cols : int
        Array size R x C, 1..64 each.
    dataflow : ``"ws"`` or ``"os"``
    in_width : int
        Operand width (8 for int8).
    acc_width : int
        Accumulator width; sums wrap modulo ``2**acc_width``.
    signed : bool
        Two's-complement operands.
    tag_width : int
        Width of the user tag that travels with a beat to its result.

    Members
    -------
    a_valid, a_data, a_tag : In
        Activation beat (R lanes); ``a_tag`` returns on ``o_tag`` with the result.
    a_bank : In(1)
        WS only: weight bank used by this beat.
    a_first, a_last, b_data : In
        OS only: accumulation boundaries; the B vector (C lanes) of the same ``k``.
    w_valid, w_row, w_bank, w_data : In
        WS only: weight row ``w_row`` (C lanes) written to bank ``w_bank``.
    o_valid, o_data, o_tag : Out
        Result row, C lanes of ``acc_width`` bits; no back-pressure.
    o_row : Out
        OS only: tile row of this result (``R-1`` first).
    """

    def __init__(self, *, rows=8, cols=8, dataflow="ws", in_width=8, acc_width=32, signed=True,
                 tag_width=8):
        p = SystolicParams(rows=rows, cols=cols, dataflow=dataflow, in_width=in_width,
                           acc_width=acc_width, signed=signed, tag_width=tag_width)
        self._p = p
        members = {
            "a_valid": In(1), "a_data": In(rows * in_width), "a_tag": In(tag_width),
        }
        if dataflow == "ws":
            members.update({
                "a_bank": In(1),
                "w_valid": In(1), "w_row": In(max(1, ceil_log2(rows))), "w_bank": In(1),
                "w_data": In(cols * in_width),
            })
        else:
            members.update({"a_first": In(1), "a_last": In(1), "b_data": In(cols * in_width)})
        members.update({"o_valid": Out(1), "o_data": Out(cols * acc_width), "o_tag": Out(tag_width)})
        if dataflow == "os":
            members["o_row"] = Out(max(1, ceil_log2(rows)))
        super().__init__(members)

    params = property(lambda self: self._p)
    rows = property(lambda self: self._p.rows)
    cols = property(lambda self: self._p.cols)
    dataflow = property(lambda self: self._p.dataflow)

    @property
    def latency(self):
        """WS: cycles from an ``a`` beat to its ``o`` row. OS: cycles from the ``a_last`` beat
        to the first result row (row ``R-1``); row ``r`` follows ``R - 1 - r`` cycles later."""
        return self.rows + self.cols + (1 if self.dataflow == "os" else 0)

    def elaborate(self, platform):
        m = Module()
        p = self._p
        R, C, W, A = p.rows, p.cols, p.in_width, p.acc_width
        op = signed(W) if p.signed else unsigned(W)

        # Input register stage: the ports are driven by memories and counters in the
        # controller; registering here keeps the skew fan-out off those paths.
        def reg(sig, name):
            r = Signal.like(sig, name=name)
            m.d.sync += r.eq(sig)
            return r

        a_valid = reg(self.a_valid, "a_valid_q")
        a_data = reg(self.a_data, "a_data_q")

        def lane(vec, i, name):
            s = Signal(op, name=name)
            m.d.comb += s.eq(lanes_layout(len(vec) // W, W, p.signed)(vec)[i])
            return s

        if p.dataflow == "ws":
            a_bank = reg(self.a_bank, "a_bank_q")
            w_valid = reg(self.w_valid, "w_valid_q")
            w_row = reg(self.w_row, "w_row_q")
            w_bank = reg(self.w_bank, "w_bank_q")
            w_data = reg(self.w_data, "w_data_q")

            # a[r][c], bank[r][c]: operand entering PE(r, c); psum[r][c]: partial sum entering
            # PE(r, c) from above (psum[R][c] leaves the array).
            a = [[None] * (C + 1) for _ in range(R)]
            bank = [[None] * (C + 1) for _ in range(R)]
            for r in range(R):
                a[r][0] = _delay(m, lane(a_data, r, f"a_lane{r}"), r, f"a_skew{r}")
                bank[r][0] = _delay(m, a_bank, r, f"bank_skew{r}")
            wcol = []
            for c in range(C):
                wcol.append((
                    _delay(m, w_valid, c, f"wv_skew{c}"), _delay(m, w_row, c, f"wr_skew{c}"),
                    _delay(m, w_bank, c, f"wb_skew{c}"),
                    _delay(m, lane(w_data, c, f"w_lane{c}"), c, f"w_skew{c}")))
            psum = [[Const(0, signed(A))] * C]
            for r in range(R):
                row = []
                for c in range(C):
                    w0 = Signal(op, name=f"w0_{r}_{c}")
                    w1 = Signal(op, name=f"w1_{r}_{c}")
                    wv, wr, wb, wd = wcol[c]
                    with m.If(wv & (wr == r)):
                        with m.If(wb):
                            m.d.sync += w1.eq(wd)
                        with m.Else():
                            m.d.sync += w0.eq(wd)
                    a[r][c + 1] = Signal(op, name=f"a_{r}_{c}")
                    bank[r][c + 1] = Signal(name=f"bank_{r}_{c}")
                    out = Signal(signed(A), name=f"psum_{r}_{c}")
                    weight = Mux(bank[r][c], w1, w0)
                    m.d.sync += [
                        a[r][c + 1].eq(a[r][c]),
                        bank[r][c + 1].eq(bank[r][c]),
                        out.eq(psum[r][c] + a[r][c] * weight),
                    ]
                    row.append(out)
                psum.append(row)
            cols_out = psum[R]
            m.d.comb += [
                self.o_valid.eq(_delay(m, a_valid, R + C - 1, "o_valid_line")),
                self.o_tag.eq(_delay(m, reg(self.a_tag, "a_tag_q"), R + C - 1, "o_tag_line")),
            ]
        else:
            a_first = reg(self.a_first, "a_first_q")
            a_last = reg(self.a_last, "a_last_q")
            b_data = reg(self.b_data, "b_data_q")
            a = [[None] * (C + 1) for _ in range(R)]
            flags = [[None] * (C + 1) for _ in range(R)]
            b = [[None] * C for _ in range(R + 1)]
            for r in range(R):
                a[r][0] = _delay(m, lane(a_data, r, f"a_lane{r}"), r, f"a_skew{r}")
                flags[r][0] = _delay(m, Cat(a_valid, a_first, a_last), r, f"flags_skew{r}")
            for c in range(C):
                b[0][c] = _delay(m, lane(b_data, c, f"b_lane{c}"), c, f"b_skew{c}")
            # Drain chain: two registers per PE (positions 2r and 2r+1 of column c's chain).
            d1_above = [Const(0, signed(A))] * C
            for r in range(R):
                d1_row = []
                for c in range(C):
                    a[r][c + 1] = Signal(op, name=f"a_{r}_{c}")
                    flags[r][c + 1] = Signal(3, name=f"flags_{r}_{c}")
                    b[r + 1][c] = Signal(op, name=f"b_{r}_{c}")
                    acc = Signal(signed(A), name=f"acc_{r}_{c}")
                    d0 = Signal(signed(A), name=f"d0_{r}_{c}")
                    d1 = Signal(signed(A), name=f"d1_{r}_{c}")
                    valid, first, last = flags[r][c][0], flags[r][c][1], flags[r][c][2]
                    total = Signal(signed(A), name=f"sum_{r}_{c}")
                    m.d.comb += total.eq(Mux(first, 0, acc) + a[r][c] * b[r][c])
                    m.d.sync += [
                        a[r][c + 1].eq(a[r][c]), flags[r][c + 1].eq(flags[r][c]),
                        b[r + 1][c].eq(b[r][c]),
                        d1.eq(d0),
                    ]
                    with m.If(valid):
                        m.d.sync += acc.eq(total)
                    with m.If(valid & last):
                        m.d.sync += d0.eq(total)
                    with m.Else():
                        m.d.sync += d0.eq(d1_above[c])
                    d1_row.append(d1)
                d1_above = d1_row
            cols_out = d1_above
            # Result rows of a tile start R + C + 1 cycles after its a_last beat; a counter
            # expands the one delayed trigger into R rows (the scheduling rule keeps bursts
            # apart).
            start = _delay(m, a_valid & a_last, R + C, "o_start_line")  # a_valid is registered
            start_tag = _delay(m, self.a_tag, R + C + 1, "o_tag_line")
            left = Signal(range(R), name="o_left")
            row = Signal(range(R), name="o_row_q")
            tag = Signal.like(self.a_tag, name="o_tag_q")
            with m.If(start):
                m.d.comb += [self.o_valid.eq(1), self.o_row.eq(R - 1), self.o_tag.eq(start_tag)]
                m.d.sync += [left.eq(R - 1), row.eq(R - 2 if R > 1 else 0), tag.eq(start_tag)]
            with m.Elif(left != 0):
                m.d.comb += [self.o_valid.eq(1), self.o_row.eq(row), self.o_tag.eq(tag)]
                m.d.sync += [left.eq(left - 1), row.eq(row - 1)]

        # Output deskew: column c waits C - 1 - c cycles so a whole row leaves together.
        o_lanes = lanes_layout(C, A, p.signed)(self.o_data)
        for c in range(C):
            m.d.comb += o_lanes[c].eq(_delay(m, cols_out[c], C - 1 - c, f"deskew{c}"))
        return m


def systolic(**params):
    """Factory of the ``systolic`` block (keyword arguments of :class:`SystolicParams`)."""
    return SystolicArray(**params)
