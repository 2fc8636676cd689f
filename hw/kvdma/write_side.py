"""The ``kvdma`` write side: segments to AW bursts whose data is buffered, W beats, B responses."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for, exact_log2

from ..burst import BurstSplitter
from .descriptors import Err
from .links import ITEM_WIDTH, LENGTH_WIDTH, BBeatSignature, ErrorSignature, address_layout, info_layout, \
    w_beat_layout, write_segment_layout


__all__ = ["WriteSide"]


class WriteSide(wiring.Component):
    """Writes segments from the data buffer: an AW is issued only when all its beats are there.

    Each segment is cut by a :class:`hw.burst.BurstSplitter` on the destination's own 4 KiB
    boundaries; a burst is issued (AW, and its W command queued) once the buffer holds its
    beats beyond those promised to bursts already issued (FILL bursts need none), so W never
    waits for data and nothing half-formed is ever written. W streams one beat per cycle,
    WSTRB trimming the first and last beat of the segment. A STREAM gather sends the same beats
    to ``m_axis`` instead, without AW or B. Throughput: one burst per 2 cycles, one W beat per
    cycle, ``outstanding`` bursts awaiting B; the AW request is registered.

    Parameters
    ----------
    addr_width, data_width, max_burst, outstanding, buffer_beats : int
        As :class:`hw.kvdma.engine.KVDMA`.

    Members
    -------
    i : In(stream.Signature(write_segment_layout(addr_width)))
        Segments ``{dst, length, item, fill, last}``.
    data : In(stream.Signature(data_width))
        The data buffer's read port (a beat is taken per W beat of a non-FILL burst).
    level : In(range(buffer_beats + 1))
        Beats in the data buffer.
    aw : Out(stream.Signature(address_layout(addr_width)))
        Data write bursts, registered, held until accepted.
    w : Out(stream.Signature(w_beat_layout(data_width)))
        W beats (``tlast`` marks the last beat of a STREAM gather); ``valid`` never waits on ``ready``.
    b : In(BBeatSignature())
        B responses of ID 0.
    to_stream : In(1)
        The descriptor is a STREAM gather: no AW, no B (constant during a descriptor).
    pattern : In(32)
        FILL pattern (constant during a descriptor).
    flush : In(1)
        Stop issuing; once no issued burst still needs buffered beats, the buffer is drained
        (reads still in flight land there too), which returns their reserved room.
    error : Out(ErrorSignature(addr_width))
        A write failed: ``WRITE_ERR`` with the address of the burst and its item.
    idle : Out(1)
        No segment queued or in progress, no burst waiting, in W or awaiting B.
    """

    def __init__(self, *, addr_width, data_width, max_burst, outstanding, buffer_beats):
        self._aw, self._dw = addr_width, data_width
        self._max_burst, self._outstanding, self._buffer_beats = max_burst, outstanding, buffer_beats
        super().__init__({
            "i": In(stream.Signature(write_segment_layout(addr_width))),
            "data": In(stream.Signature(data_width)),
            "level": In(range(buffer_beats + 1)),
            "aw": Out(stream.Signature(address_layout(addr_width))),
            "w": Out(stream.Signature(w_beat_layout(data_width))),
            "b": In(BBeatSignature()),
            "to_stream": In(1),
            "pattern": In(32),
            "flush": In(1),
            "error": Out(ErrorSignature(addr_width)),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        B = self._dw // 8
        lg_beat = exact_log2(B)
        ones = (1 << B) - 1
        seg = self.i.payload

        # The splitter carries what W needs per segment as its user tag: the item, FILL, the
        # descriptor-end mark and the byte masks of the segment's first and last beat.
        tag = data.StructLayout({"item": unsigned(ITEM_WIDTH), "fill": unsigned(1), "last": unsigned(1),
                                 "first_mask": unsigned(B), "last_mask": unsigned(B)})
        m.submodules.split = split = BurstSplitter(addr_width=self._aw, data_width=self._dw,
                                                   max_beats=self._max_burst, length_width=LENGTH_WIDTH,
                                                   user_width=tag.size)
        burst = split.o.payload
        btag = data.View(tag, burst.user)
        seg_end = Signal(lg_beat)
        m.d.comb += [
            seg_end.eq(seg.dst + seg.length),
            split.i.valid.eq(self.i.valid), self.i.ready.eq(split.i.ready), split.flush.eq(self.flush),
            split.i.payload.eq(Cat(seg.dst, seg.length, seg.item, seg.fill, seg.last,
                                   (Const(ones, B) << seg.dst[:lg_beat])[:B],
                                   Mux(seg_end == 0, ones, (Const(1, B + 1) << seg_end) - 1)[:B])),
        ]

        # W command per issued burst: beats, first/last beat strobes, FILL, tlast.
        cmd = data.StructLayout({"beats": unsigned(bits_for(self._max_burst)), "first_strb": unsigned(B),
                                 "last_strb": unsigned(B), "fill": unsigned(1), "tlast": unsigned(1)})
        m.submodules.cmd = cmd_fifo = fifo.SyncFIFOBuffered(width=cmd.size, depth=self._outstanding)
        info = info_layout(self._aw)
        m.submodules.info = info_fifo = fifo.SyncFIFOBuffered(width=info.size, depth=self._outstanding)

        in_flight = Signal(range(self._outstanding + 1))
        committed = Signal(range(self._buffer_beats + 1))   # buffered beats promised to issued bursts
        issue = Signal()
        m.d.comb += [
            split.o.ready.eq(cmd_fifo.w_rdy & (btag.fill | (self.level >= committed + burst.beats))
                             & (self.to_stream | ((in_flight < self._outstanding) & info_fifo.w_rdy
                                                  & (~self.aw.valid | self.aw.ready)))),
            issue.eq(split.o.valid & split.o.ready),
            cmd_fifo.w_en.eq(issue),
            cmd_fifo.w_data.eq(Cat(burst.beats, Mux(burst.first, btag.first_mask, ones),
                                   Mux(burst.last, btag.last_mask, ones), btag.fill, btag.last & burst.last)),
            info_fifo.w_en.eq(issue & ~self.to_stream), info_fifo.w_data.eq(Cat(burst.addr, btag.item)),
        ]
        with m.If(issue):
            m.d.sync += [self.aw.valid.eq(~self.to_stream), self.aw.payload.eq(Cat(burst.addr, burst.beats - 1))]
        with m.Elif(self.aw.ready):
            m.d.sync += self.aw.valid.eq(0)

        # W: one burst per command; its data is already in the buffer (or is the pattern).
        head = data.View(cmd, cmd_fifo.r_data)
        active, left, first, fill = Signal(), Signal.like(head.beats), Signal(), Signal()
        first_strb, last_strb, tlast = Signal(B), Signal(B), Signal()
        last = left == 1
        fire = self.w.valid & self.w.ready
        strb = Mux(first, first_strb, ones) & Mux(last, last_strb, ones)
        m.d.comb += [
            self.w.valid.eq(active & (fill | self.data.valid)),
            self.w.payload.eq(Cat(Mux(fill, Cat(*([self.pattern] * (self._dw // 32))), self.data.payload),
                                  strb, last, tlast & last)),
        ]
        next_cmd = cmd_fifo.r_rdy & (~active | (fire & last))
        m.d.comb += cmd_fifo.r_en.eq(next_cmd)
        with m.If(next_cmd):
            m.d.sync += [active.eq(1), first.eq(1), left.eq(head.beats), first_strb.eq(head.first_strb),
                         last_strb.eq(head.last_strb), fill.eq(head.fill), tlast.eq(head.tlast)]
        with m.Elif(fire):
            m.d.sync += [left.eq(left - 1), first.eq(0)]
            with m.If(last):
                m.d.sync += active.eq(0)
        # After a flush, beats no issued burst will use are dropped. "No issued burst will use
        # them" is `committed == 0`, not "no W command queued": a command pushed in the cycle
        # before the flush is not visible at the FIFO output yet, and dropping its beats sent
        # wrong data (and hung).
        discard = self.flush & (committed == 0)
        m.d.comb += self.data.ready.eq((fire & ~fill) | discard)
        m.d.sync += committed.eq(committed + Mux(issue & ~btag.fill, burst.beats, 0) - (fire & ~fill))

        # B
        done = self.b.valid
        head_info = data.View(info, info_fifo.r_data)
        m.d.comb += [
            info_fifo.r_en.eq(done),
            self.error.valid.eq(done & self.b.err), self.error.code.eq(Err.WRITE_ERR),
            self.error.addr.eq(head_info.addr), self.error.item.eq(head_info.item),
        ]
        m.d.sync += in_flight.eq(in_flight + (issue & ~self.to_stream) - done)
        m.d.comb += self.idle.eq(split.i.ready & ~self.i.valid & ~cmd_fifo.r_rdy & ~active & (in_flight == 0)
                                 & ~self.aw.valid)
        return m
