"""The vector unit: a front end that maps and reduces rows, a row buffer, a row-scalar
pipeline and a back end that normalises rows, behind AXI4-Stream ports.

::

    s_cmd ──► Front ──(command, status)──────────────────────────► Back ──► m_sts
    s_axis_a ─►│  map: t = f(a, b)    ──► row buffer (buffer/lanes beats) ──►│ y = g(t, row scalar,
    s_axis_b ─►│  reduce per lane     ──► RowStats ──► row-scalar queue ───►│     channel params)
                                                         s_axis_p ────────►│ ──► m_axis_y, m_axis_s

Timing, with ``B = ceil(n / lanes)`` beats per row and every stream ready:

* single-pass opcodes (SCALE, ADD, MUL, GELU, SILU, ROPE, REQUANT): one beat per cycle,
  ``rows * B`` cycles plus the latency ``FRONT_LATENCY + 1 + back_latency()`` (+1 for the
  output queue) from the first input beat to the first output beat; no bubble between rows.
* two-pass opcodes (REQUANT_DYN, SOFTMAX, RMSNORM, LAYERNORM): a row's back-end pass starts
  ``rowstats_latency(lanes) + 1`` cycles after its last beat has entered the row buffer; the two
  passes of successive rows overlap, so ``rows * B`` cycles per command as long as the row buffer
  holds the rows in flight (``buffer >= n * (1 + ceil(R / B))`` for the row-scalar latency R,
  i.e. any row of at least ``4 * lanes`` elements with the default buffer) and at most
  ``SCALAR_DEPTH`` rows are in flight; a row of the whole buffer waits for the scalar
  latency once per row.
* reductions: one beat per cycle in, one ``m_axis_s`` beat per row out.

A command is taken ``FRONT_LATENCY + 1`` cycles after the previous one's last input beat; the
back end starts the next command ``back_latency()`` cycles after the last output beat of the
previous one.
"""

from dataclasses import dataclass

from amaranth.hdl import Module
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from ..axi import AXIStreamSignature
from ..params import Params, ParameterError, param
from .back import Back, back_latency
from .front import FRONT_LATENCY, BackCommand, Front, row_beat_layout
from .layouts import Command, StatusWord
from .rowstats import RowScalar, RowStats, rowstats_latency


__all__ = ["VPUParams", "VPUBenchParams", "VPU", "vpu", "SCALAR_DEPTH", "CMD_DEPTH"]

#: Rows whose scalar is computed and not yet used (the row-scalar queue's depth).
SCALAR_DEPTH = 16
#: Commands taken by the front end and not yet started by the back end.
CMD_DEPTH = 4


@dataclass(frozen=True)
class VPUParams(Params):
    """Parameters of the ``vpu`` block."""
    lanes: int = param(8, lo=2, hi=64, power_of_two=True, doc="elements per cycle")
    buffer: int = param(4096, lo=2, hi=16384, doc="row buffer in elements: the longest two-pass row")
    channels: int = param(2048, lo=2, hi=16384, doc="channel-parameter memory: the longest per-channel row")
    rope_max: int = param(256, lo=4, hi=4096, doc="longest ROPE row in the halves convention (pair memory)")

    def check(self):
        if self.rope_max % (2 * self.lanes):
            raise ParameterError(f"rope_max: {self.rope_max} is not a multiple of 2 x lanes "
                                 f"(accepted: a multiple of {2 * self.lanes} in 4..4096)")
        for name in ("buffer", "channels"):
            if getattr(self, name) % self.lanes:
                raise ParameterError(f"{name}: {getattr(self, name)} is not a multiple of lanes "
                                     f"{self.lanes} (accepted: a multiple of lanes in {self.lanes}..16384)")


@dataclass(frozen=True)
class VPUBenchParams(Params):
    """Workload of ``scoville bench vpu``."""
    op: str = param("softmax", choices=("scale", "requant", "requant_dyn", "add", "mul", "max", "sum",
                                        "sumsq", "argmax", "softmax", "rmsnorm", "layernorm", "gelu",
                                        "silu", "rope"), doc="operation")
    n: int = param(256, lo=1, hi=65535, doc="elements per row")
    rows: int = param(64, lo=1, hi=65535, doc="rows")
    pairs: str = param("gguf", choices=("gguf", "halves"), doc="ROPE pair convention: (2i, 2i+1) or (j, j + n/2)")


class VPU(wiring.Component):
    """Vector unit (see the module docstring and ``docs/vpu.md``).

    Members
    -------
    s_cmd : In(AXIStreamSignature(data_width=128))
        :data:`~.layouts.Command` words, taken one at a time.
    m_sts : Out(AXIStreamSignature(data_width=16))
        One :data:`~.layouts.StatusWord` per command, in command order, after its data.
    s_axis_a, s_axis_b : In(AXIStreamSignature(data_width=32 * lanes))
        Operand rows: ``ceil(n / lanes)`` beats per row, element ``i`` of a beat at bits
        ``[w*i, w*i + w)`` for the command's input format; ``tkeep``/``tlast`` are not needed
        (the command gives the row length) and not present.
    s_axis_p : In(AXIStreamSignature(data_width=64))
        :data:`~.layouts.ChannelParam` words for LOAD_P, one channel per beat.
    m_axis_y : Out(AXIStreamSignature(data_width=32 * lanes, keep, last))
        Result rows in the output format; ``tkeep`` marks the bytes of elements, ``tlast``
        the last beat of each row.
    m_axis_s : Out(AXIStreamSignature(data_width=64, last))
        One :data:`~.layouts.ScalarWord` per row of a reduction (and REQUANT_DYN's absolute
        maximum); ``tlast`` on the command's last row.
    """

    def __init__(self, *, lanes=8, buffer=4096, channels=2048, rope_max=256):
        self._p = VPUParams(lanes=lanes, buffer=buffer, channels=channels, rope_max=rope_max)
        L = lanes
        super().__init__({
            "s_cmd": In(AXIStreamSignature(data_width=128, keep=False, last=False)),
            "m_sts": Out(AXIStreamSignature(data_width=16, keep=False, last=False)),
            "s_axis_a": In(AXIStreamSignature(data_width=32 * L, keep=False, last=False)),
            "s_axis_b": In(AXIStreamSignature(data_width=32 * L, keep=False, last=False)),
            "s_axis_p": In(AXIStreamSignature(data_width=64, keep=False, last=False)),
            "m_axis_y": Out(AXIStreamSignature(data_width=32 * L, keep=True, last=True)),
            "m_axis_s": Out(AXIStreamSignature(data_width=64, keep=False, last=True)),
        })

    params = property(lambda self: self._p)

    def elaborate(self, platform):
        m = Module()
        p = self._p
        L = p.lanes
        beats = p.buffer // L
        m.submodules.front = front = Front(lanes=L, buffer_beats=beats, scalar_depth=SCALAR_DEPTH,
                                           buffer=p.buffer, channels=p.channels, rope_max=p.rope_max)
        m.submodules.rowstats = rowstats = RowStats(lanes=L, stats_layout=front.stats_layout)
        m.submodules.back = back = Back(lanes=L, channels=p.channels)
        m.submodules.cmdq = cmdq = fifo.SyncFIFOBuffered(width=BackCommand.size, depth=CMD_DEPTH)
        m.submodules.rowbuf = rowbuf = fifo.SyncFIFOBuffered(
            width=row_beat_layout(L).size, depth=beats)
        m.submodules.scalarq = scalarq = fifo.SyncFIFOBuffered(
            width=RowScalar.size, depth=SCALAR_DEPTH)

        def axis_in(port, sink):
            m.d.comb += [sink.valid.eq(port.tvalid), sink.payload.eq(port.tdata),
                         port.tready.eq(sink.ready)]

        axis_in(self.s_cmd, front.i_cmd)
        axis_in(self.s_axis_a, front.a)
        axis_in(self.s_axis_b, front.b)
        axis_in(self.s_axis_p, back.p)
        m.d.comb += [
            # command queue
            cmdq.w_en.eq(front.o_cmd.valid), cmdq.w_data.eq(front.o_cmd.payload),
            front.o_cmd.ready.eq(cmdq.w_rdy),
            back.i_cmd.valid.eq(cmdq.r_rdy), back.i_cmd.payload.eq(cmdq.r_data),
            cmdq.r_en.eq(back.i_cmd.ready),
            # row buffer and row scalars: room reserved by the front end's credits
            rowbuf.w_en.eq(front.o_beat.valid), rowbuf.w_data.eq(front.o_beat.payload),
            back.i_beat.valid.eq(rowbuf.r_rdy), back.i_beat.payload.eq(rowbuf.r_data),
            rowbuf.r_en.eq(back.i_beat.ready),
            front.beat_credit.eq(rowbuf.r_rdy & back.i_beat.ready),
            rowstats.i.valid.eq(front.o_stats.valid), rowstats.i.payload.eq(front.o_stats.payload),
            scalarq.w_en.eq(rowstats.o.valid), scalarq.w_data.eq(rowstats.o.payload),
            back.i_scalar.valid.eq(scalarq.r_rdy), back.i_scalar.payload.eq(scalarq.r_data),
            scalarq.r_en.eq(back.i_scalar.ready),
            front.scalar_credit.eq(scalarq.r_rdy & back.i_scalar.ready),
            # outputs
            self.m_sts.tvalid.eq(back.o_sts.valid), self.m_sts.tdata.eq(back.o_sts.payload),
            back.o_sts.ready.eq(self.m_sts.tready),
            self.m_axis_y.tvalid.eq(back.o_y.valid), self.m_axis_y.tdata.eq(back.o_y.payload.data),
            self.m_axis_y.tkeep.eq(back.o_y.payload.keep), self.m_axis_y.tlast.eq(back.o_y.payload.last),
            back.o_y.ready.eq(self.m_axis_y.tready),
            self.m_axis_s.tvalid.eq(back.o_s.valid), self.m_axis_s.tdata.eq(back.o_s.payload.data),
            self.m_axis_s.tlast.eq(back.o_s.payload.last), back.o_s.ready.eq(self.m_axis_s.tready),
        ]
        return m


def vpu(**params):
    """Factory of the ``vpu`` block (keyword arguments of :class:`VPUParams`)."""
    return VPU(**params)
