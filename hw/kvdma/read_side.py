"""The ``kvdma`` read side: segments to AR bursts, R data into the data buffer."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..burst import BurstSplitter
from .descriptors import Err
from .links import ITEM_WIDTH, LENGTH_WIDTH, ErrorSignature, RBeatSignature, address_layout, info_layout, \
    read_segment_layout


__all__ = ["ReadSide"]


class ReadSide(wiring.Component):
    """Reads segments into the data buffer: bursts reserved in the buffer before they are issued.

    Each segment is cut by a :class:`hw.burst.BurstSplitter` (4 KiB boundaries, ``max_burst``
    beats). A burst is issued only when its beats fit in the buffer beside those already there
    or reserved for reads in flight, so R is always accepted (``rready`` is 1) and the write
    side can never be starved into a deadlock. Throughput: one burst per 2 cycles (the
    splitter's), ``outstanding`` bursts in flight, one R beat per cycle into the buffer; the
    AR request is registered (1 cycle after the splitter's burst).

    Parameters
    ----------
    addr_width, data_width, max_burst, outstanding, buffer_beats : int
        As :class:`hw.kvdma.engine.KVDMA`.

    Members
    -------
    i : In(stream.Signature(read_segment_layout(addr_width)))
        Segments ``{src, length, item}``.
    ar : Out(stream.Signature(address_layout(addr_width)))
        Data bursts, registered, held until accepted.
    r : In(RBeatSignature(data_width))
        R beats of ID 0 (no back-pressure: every one has reserved room).
    o : Out(stream.Signature(data_width))
        The data buffer's read port; a transfer frees one beat of room.
    level : Out(range(buffer_beats + 1))
        Beats in the buffer.
    flush : In(1)
        Stop issuing: the segment in progress and queued segments are dropped (R beats of bursts
        in flight still land in the buffer).
    error : Out(ErrorSignature(addr_width))
        A data read failed: ``READ_ERR`` with the faulting beat's address and the item.
    idle : Out(1)
        No segment queued or in progress, no burst waiting or in flight, the buffer empty.
    """

    def __init__(self, *, addr_width, data_width, max_burst, outstanding, buffer_beats):
        self._aw, self._dw = addr_width, data_width
        self._max_burst, self._outstanding, self._buffer_beats = max_burst, outstanding, buffer_beats
        super().__init__({
            "i": In(stream.Signature(read_segment_layout(addr_width))),
            "ar": Out(stream.Signature(address_layout(addr_width))),
            "r": In(RBeatSignature(data_width)),
            "o": Out(stream.Signature(data_width)),
            "level": Out(range(buffer_beats + 1)),
            "flush": In(1),
            "error": Out(ErrorSignature(addr_width)),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        lg_beat = exact_log2(self._dw // 8)
        m.submodules.split = split = BurstSplitter(addr_width=self._aw, data_width=self._dw,
                                                   max_beats=self._max_burst, length_width=LENGTH_WIDTH,
                                                   user_width=ITEM_WIDTH)
        m.submodules.buffer = buffer = fifo.SyncFIFOBuffered(width=self._dw, depth=self._buffer_beats)
        info = info_layout(self._aw)
        m.submodules.info = info_fifo = fifo.SyncFIFOBuffered(width=info.size, depth=self._outstanding)
        burst = split.o.payload

        in_flight = Signal(range(self._outstanding + 1))
        space = Signal(range(self._buffer_beats + 1))   # beats in the buffer or reserved for reads in flight
        issue = Signal()
        m.d.comb += [
            split.i.valid.eq(self.i.valid), split.i.payload.eq(self.i.payload.as_value()), self.i.ready.eq(split.i.ready),
            split.flush.eq(self.flush),
            split.o.ready.eq((in_flight < self._outstanding) & info_fifo.w_rdy
                             & (space + burst.beats <= self._buffer_beats) & (~self.ar.valid | self.ar.ready)),
            issue.eq(split.o.valid & split.o.ready),
            info_fifo.w_en.eq(issue), info_fifo.w_data.eq(Cat(burst.addr, burst.user)),
        ]
        with m.If(issue):
            m.d.sync += [self.ar.valid.eq(1), self.ar.payload.eq(Cat(burst.addr, burst.beats - 1))]
        with m.Elif(self.ar.ready):
            m.d.sync += self.ar.valid.eq(0)

        # R: every beat has reserved room, so it is always written.
        beat = Signal(8)                # beat index within the burst (for the faulting address)
        done = self.r.valid & self.r.last
        with m.If(self.r.valid):
            m.d.sync += beat.eq(Mux(self.r.last, 0, beat + 1))
        head = data.View(info, info_fifo.r_data)
        m.d.comb += [
            buffer.w_en.eq(self.r.valid), buffer.w_data.eq(self.r.data), info_fifo.r_en.eq(done),
            self.error.valid.eq(self.r.valid & self.r.err), self.error.code.eq(Err.READ_ERR),
            self.error.addr.eq(head.addr + (beat << lg_beat)), self.error.item.eq(head.item),
        ]

        pop = self.o.valid & self.o.ready
        m.d.comb += [self.o.valid.eq(buffer.r_rdy), self.o.payload.eq(buffer.r_data), buffer.r_en.eq(pop),
                     self.level.eq(buffer.level)]
        m.d.sync += [in_flight.eq(in_flight + issue - done), space.eq(space + Mux(issue, burst.beats, 0) - pop)]
        m.d.comb += self.idle.eq(split.i.ready & ~self.i.valid & (in_flight == 0) & ~self.ar.valid & ~buffer.r_rdy)
        return m
