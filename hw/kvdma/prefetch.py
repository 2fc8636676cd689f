"""The ``kvdma`` block-table prefetch of a GATHER."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from .descriptors import TABLE_ENTRY_BYTES
from .links import RBeatSignature, address_layout, table_beat_layout


__all__ = ["TablePrefetch", "TABLE_BEATS"]

TABLE_BEATS = 8     # prefetch FIFO depth (beats); also the reads in flight it allows


class TablePrefetch(wiring.Component):
    """Reads a GATHER's block table ahead, one beat per AR, once per plane.

    A GATHER walks its table in order, plane after plane, so the table beats are fetched into
    a ``TABLE_BEATS``-beat FIFO ahead of the generator: a beat's room is reserved before its
    read is issued (as for data), so R is always accepted. The lookup latency is then hidden
    behind the data of earlier blocks even for 1-token blocks. Throughput: one AR per cycle
    while there is room; a plane's ``ceil((table % bus_bytes + 4 * entries) / bus_bytes)``
    beats (4-byte entries), then the next plane restarts at the table's first beat.

    Parameters
    ----------
    addr_width, data_width : int
        As :class:`hw.kvdma.engine.KVDMA`.

    Members
    -------
    start : In(1)
        A GATHER starts: sample ``planes`` (``table`` and ``entries`` must hold until it ends).
    table : In(addr_width)
        Block-table address.
    entries : In(32)
        Table entries each plane reads (valid from the cycle after ``start``).
    planes : In(32)
        Planes of the GATHER.
    ar : Out(stream.Signature(address_layout(addr_width)))
        One-beat table reads, registered, held until accepted.
    r : In(RBeatSignature(data_width))
        R beats of the table reads.
    o : Out(stream.Signature(table_beat_layout(data_width)))
        Table beats in table order, ``err`` set when the read failed.
    flush : In(1)
        Stop reading; beats queued or still arriving are dropped.
    idle : Out(1)
        No read waiting, in flight or to come, nothing queued.
    """

    def __init__(self, *, addr_width, data_width):
        self._aw, self._dw = addr_width, data_width
        super().__init__({
            "start": In(1), "table": In(addr_width), "entries": In(32), "planes": In(32),
            "ar": Out(stream.Signature(address_layout(addr_width))),
            "r": In(RBeatSignature(data_width)),
            "o": Out(stream.Signature(table_beat_layout(data_width))),
            "flush": In(1),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        B = self._dw // 8
        lg_beat = exact_log2(B)
        m.submodules.beats = beats = fifo.SyncFIFOBuffered(width=self._dw + 1, depth=TABLE_BEATS)

        plane_beats = Signal(32)
        m.d.comb += plane_beats.eq(Mux(self.entries == 0, 0,
                                       ((self.table & (B - 1)) + (self.entries << exact_log2(TABLE_ENTRY_BYTES)) + (B - 1)) >> lg_beat))
        left, planes = Signal(32), Signal(32)       # beats of this plane to read, planes after it
        addr = Signal(self._aw)
        reserved = Signal(range(TABLE_BEATS + 1))   # beats queued or read in flight
        first_beat = self.table & ~(B - 1)
        issue = Signal()
        m.d.comb += issue.eq((left != 0) & ~self.flush & (reserved < TABLE_BEATS)
                             & (~self.ar.valid | self.ar.ready))
        with m.If(self.ar.ready):
            m.d.sync += self.ar.valid.eq(0)
        with m.If(self.start):
            m.d.sync += [planes.eq(self.planes), left.eq(0), addr.eq(first_beat)]
        with m.Elif(issue):
            m.d.sync += [self.ar.valid.eq(1), self.ar.payload.eq(Cat(addr, Const(0, 8))),
                         addr.eq(addr + B), left.eq(left - 1)]
        with m.Elif((left == 0) & (planes != 0) & ~self.flush):
            m.d.sync += [planes.eq(planes - 1), left.eq(plane_beats), addr.eq(first_beat)]
        with m.If(self.flush):
            m.d.sync += [left.eq(0), planes.eq(0)]

        pop = Signal()
        m.d.comb += [
            beats.w_en.eq(self.r.valid), beats.w_data.eq(Cat(self.r.data, self.r.err)),
            self.o.valid.eq(beats.r_rdy), self.o.payload.eq(beats.r_data),
            pop.eq(beats.r_rdy & (self.o.ready | self.flush)), beats.r_en.eq(pop),
        ]
        m.d.sync += reserved.eq(reserved + issue - pop)
        m.d.comb += self.idle.eq((reserved == 0) & ~self.ar.valid & (left == 0) & (planes == 0))
        return m
