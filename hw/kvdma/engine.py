"""Paged KV-cache DMA engine (block ``kvdma``): the top that composes its components.

Structure (one descriptor at a time, in arrival order)::

    s_axil, s_desc --> Control --desc, pool, start--> Generator --segments--> ReadSide --AR--> m_axi
      (CSRs, ring     (ring AR, ID 2;    |  ^ table beats      |              R --> data buffer
       slot reads,     status AW/W)      |  TablePrefetch      +--segments--> WriteSide <---+
       checks)                           |  (GATHER, ID 1)                     --AW/W--> m_axi (or m_axis)
                                         +-- lookup AR (APPEND / BLOCK_COPY, ID 1)
    every component --error requests--> ErrorLatch --flush--> every component

* :class:`hw.kvdma.control.Control` — CSRs, descriptor intake (ring or push port), pool
  sampling and descriptor checks, completion (status write, counters, interrupt).
* :class:`hw.kvdma.generator.Generator` — walks planes and items, block-table lookups, emits
  (and merges) segments into two segment FIFOs.
* :class:`hw.kvdma.prefetch.TablePrefetch` — a GATHER's block table, read ahead.
* :class:`hw.kvdma.read_side.ReadSide` / :class:`hw.kvdma.write_side.WriteSide` — the data
  mover, each around a :class:`hw.burst.BurstSplitter`: reads reserved in the data buffer,
  writes issued once their data is buffered.
* :class:`hw.kvdma.ar_mux.AddressMux` — the AR channel (ring > table > data), and
  :class:`hw.kvdma.errors.ErrorLatch` — the first error of a descriptor.

This module only wires them and routes the AXI channels: R and B beats by ID, AW/W to the
status write while it runs, W to ``m_axis`` for a STREAM gather.

No byte realignment is done: the source and destination of a segment must be congruent modulo
the bus width (``MISALIGNED`` otherwise), which holds whenever pool base, strides and buffers are
bus-aligned. Lengths and offsets are byte-granular.
"""

from amaranth.hdl import Module, Mux
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..axi import AXI4LiteSignature, AXI4Signature, AXIStreamSignature, Burst
from .ar_mux import AddressMux
from .control import Control, csr_registers
from .descriptors import Flag, Op
from .errors import ErrorLatch
from .generator import Generator
from .links import ID_DATA, ID_RING, ID_TABLE
from .params import KVDMAParams
from .prefetch import TablePrefetch
from .read_side import ReadSide
from .write_side import WriteSide


__all__ = ["KVDMA"]

INFO_VERSION = 2


class KVDMA(wiring.Component):
    """Descriptor-driven paged KV-cache DMA engine with an AXI4 master and AXI4-Lite CSRs.

    Latency: a descriptor costs about ``2 * L_mem`` cycles of fixed overhead (block-table read,
    first data read) plus ``L_mem`` for the last write response and the status write, where
    ``L_mem`` is the memory's read latency. Throughput: one read beat and one write beat per
    cycle when ``outstanding * min(max_burst, S) >= L_mem``, ``buffer_beats - max_burst >= L_mem``
    and ``seg_depth * S >= L_mem`` (``S``: beats per segment; the write side runs ``L_mem``
    behind the reads, so that many beats of segments must be queued); a GATHER of ``N`` beats
    then takes about ``N + 3 * L_mem`` cycles. Items cost the generator 5 cycles each (plus a
    memory latency per block-table beat an APPEND or BLOCK_COPY lookup misses in its one-beat
    cache), so segments shorter than 5 beats are generator-bound (``S / 5`` of the bus).

    Parameters
    ----------
    bus_width : int
        AXI4 data width, 64..512 bits.
    max_burst : int
        Longest INCR burst in beats (power of two, 1..256).
    outstanding : int
        Read bursts and write bursts in flight (each), 1..64.
    buffer_beats : int
        Data FIFO depth in beats (power of two, at least ``2 * max_burst``); bounds the reads
        in flight.
    seg_depth : int
        Segment FIFO depth between generator and splitters. The write side runs one memory
        latency behind the read side, so the write segment FIFO must hold the segments of that
        many beats: short segments (1-token blocks) stream at full rate only when
        ``seg_depth * beats_per_segment >= L_mem``.
    pools : int
        Cache pools, 1..4.
    addr_width : int
        AXI address width, 12..32 (descriptor and CSR addresses are 32-bit words; their higher
        bits are dropped when narrower).
    id_width : int
        AXI ID width, 2..32 (three IDs are used).

    Members
    -------
    m_axi : Out(AXI4Signature(addr_width=addr_width, data_width=bus_width, id_width=id_width))
        AXI4 manager. INCR bursts only, ``AxSIZE`` = bus width. IDs: 0 data, 1 block tables,
        pair lists and status writes, 2 ring descriptors. ``rready`` and ``bready`` are always 1.
    s_axil : In(AXI4LiteSignature(addr_width=8, data_width=32))
        CSR port (:class:`hw.csr.CSRBlock`; 1-cycle response latency). Registers in
        :data:`hw.kvdma.descriptors.CSR_NAMES` order, 4 bytes apart.
    s_desc : In(stream.Signature(256))
        Descriptor push port (valid/ready). A descriptor is taken when the engine is idle,
        not halted and no ring descriptor is pending (the ring has priority).
    m_axis : Out(AXIStreamSignature(data_width=bus_width, keep=True, last=True))
        GATHER output of descriptors with the ``STREAM`` flag: the rows in destination order,
        one beat per source beat (no realignment: byte lanes are the source's, ``tkeep`` marks
        the valid bytes), ``tlast`` on the last beat of the descriptor. One beat per cycle when
        ``tready`` is high. A descriptor that fails ends without ``tlast`` (see its status).
    irq : Out(1)
        Level interrupt: ``ctrl.irq_enable & (irq_status != 0)``.
    """

    def __init__(self, *, bus_width=256, max_burst=64, outstanding=16, buffer_beats=512, seg_depth=32, pools=2,
                 addr_width=32, id_width=2):
        self.p = KVDMAParams(bus_width=bus_width, max_burst=max_burst, outstanding=outstanding,
                             buffer_beats=buffer_beats, seg_depth=seg_depth, pools=pools,
                             addr_width=addr_width, id_width=id_width)
        super().__init__({
            "m_axi": Out(AXI4Signature(addr_width=addr_width, data_width=bus_width, id_width=id_width)),
            "s_axil": In(AXI4LiteSignature(addr_width=8, data_width=32)),
            "s_desc": In(stream.Signature(256)),
            "m_axis": Out(AXIStreamSignature(data_width=bus_width, keep=True, last=True)),
            "irq": Out(1),
        })

    def registers(self):
        return csr_registers(self.p.pools)

    def info_word(self):
        """Value of the ``info`` CSR: log2 bus bytes, log2 max_burst, outstanding, log2 buffer,
        pools, version."""
        p = self.p
        return (exact_log2(p.bus_width // 8) | exact_log2(p.max_burst) << 4 | p.outstanding << 8
                | exact_log2(p.buffer_beats) << 16 | p.pools << 20 | INFO_VERSION << 24)

    def elaborate(self, platform):
        m = Module()
        p = self.p
        dw, addr_w = p.bus_width, p.addr_width
        lgB = exact_log2(dw // 8)
        axi = self.m_axi
        mover = dict(addr_width=addr_w, data_width=dw, max_burst=p.max_burst, outstanding=p.outstanding,
                     buffer_beats=p.buffer_beats)

        m.submodules.control = ctl = Control(addr_width=addr_w, data_width=dw, pools=p.pools, info=self.info_word())
        m.submodules.generator = gen = Generator(addr_width=addr_w, data_width=dw, seg_depth=p.seg_depth)
        m.submodules.prefetch = pf = TablePrefetch(addr_width=addr_w, data_width=dw)
        m.submodules.read_side = rd = ReadSide(**mover)
        m.submodules.write_side = wr = WriteSide(**mover)
        # requesters in priority order: ring slot, table prefetch, table lookup, data
        m.submodules.ar_mux = ar = AddressMux(addr_width=addr_w, ids=(ID_RING, ID_TABLE, ID_TABLE, ID_DATA),
                                              id_width=p.id_width)
        # error priority: data read, data write, generator, control
        m.submodules.errors = errors = ErrorLatch(addr_width=addr_w, sources=4)

        wiring.connect(m, wiring.flipped(self.s_axil), ctl.s_axil)
        wiring.connect(m, wiring.flipped(self.s_desc), ctl.s_desc)
        desc = ctl.desc
        is_g = desc.op == Op.GATHER
        to_stream = (desc.flags & Flag.STREAM).any()
        flush = errors.active

        # control <-> generator, prefetch, mover, error latch
        m.d.comb += [
            gen.desc.eq(desc), gen.pool.eq(ctl.pool), gen.start.eq(ctl.start),
            ctl.gen_done.eq(gen.done), ctl.mover_idle.eq(rd.idle & wr.idle), ctl.prefetch_idle.eq(pf.idle),
            pf.start.eq(gen.fetch_start), pf.table.eq(desc.a), pf.entries.eq(gen.fetch_entries),
            pf.planes.eq(ctl.pool.planes), gen.fetch_busy.eq(pf.ar.valid),
            wr.to_stream.eq(to_stream), wr.pattern.eq(desc.c), wr.level.eq(rd.level),
            ctl.err.eq(errors.active), ctl.err_code.eq(errors.code), ctl.err_addr.eq(errors.addr),
            ctl.err_item.eq(errors.item), errors.clear.eq(ctl.clear),
        ]
        for unit in (gen, pf, rd, wr):
            m.d.comb += unit.flush.eq(flush)
        wiring.connect(m, pf.o, gen.table)
        wiring.connect(m, gen.o_read, rd.i)
        wiring.connect(m, gen.o_write, wr.i)
        wiring.connect(m, rd.o, wr.data)
        for k, source in enumerate((rd.error, wr.error, gen.error, ctl.error)):
            wiring.connect(m, source, errors.i[k])

        # AR
        for k, requester in enumerate((ctl.ar, pf.ar, gen.lookup, rd.ar)):
            wiring.connect(m, requester, ar.i[k])
        m.d.comb += [
            axi.arvalid.eq(ar.o.valid), ar.o.ready.eq(axi.arready),
            axi.araddr.eq(ar.o.payload.addr), axi.arlen.eq(ar.o.payload.len), axi.arid.eq(ar.o.payload.id),
            axi.arsize.eq(lgB), axi.arburst.eq(Burst.INCR),
        ]

        # R and B, routed by ID (no back-pressure: every reader reserved room for its beats)
        m.d.comb += [axi.rready.eq(1), axi.bready.eq(1)]
        r_err = axi.rresp[1]      # SLVERR or DECERR
        b_err = axi.bresp[1]
        for reader, rid, valid in ((rd.r, ID_DATA, 1), (pf.r, ID_TABLE, is_g), (gen.lookup_r, ID_TABLE, 1),
                                   (ctl.r, ID_RING, 1)):
            m.d.comb += [reader.valid.eq(axi.rvalid & (axi.rid == rid) & valid), reader.data.eq(axi.rdata),
                         reader.err.eq(r_err), reader.last.eq(axi.rlast)]
        for writer, bid in ((wr.b, ID_DATA), (ctl.b, ID_TABLE)):
            m.d.comb += [writer.valid.eq(axi.bvalid & (axi.bid == bid)), writer.err.eq(b_err)]

        # AW/W: the write side's, except while the control writes the status word; a STREAM
        # gather's W beats go to m_axis instead. Port-facing multiplexers are plain expressions
        # (Icarus never evaluates a comb process whose inputs are all unchanged initialised
        # registers, which would leave AW/W valid at X until the first descriptor).
        status = ctl.status_write
        sw, ww = ctl.w.payload, wr.w.payload
        m.d.comb += [
            axi.awsize.eq(lgB), axi.awburst.eq(Burst.INCR),
            axi.awvalid.eq(Mux(status, ctl.aw.valid, wr.aw.valid)),
            axi.awaddr.eq(Mux(status, ctl.aw.payload.addr, wr.aw.payload.addr)),
            axi.awlen.eq(Mux(status, ctl.aw.payload.len, wr.aw.payload.len)),
            axi.awid.eq(Mux(status, ID_TABLE, ID_DATA)),
            ctl.aw.ready.eq(status & axi.awready), wr.aw.ready.eq(~status & axi.awready),
            axi.wvalid.eq(Mux(status, ctl.w.valid, wr.w.valid & ~to_stream)),
            axi.wdata.eq(Mux(status, sw.data, ww.data)),
            axi.wstrb.eq(Mux(status, sw.strb, ww.strb)),
            axi.wlast.eq(Mux(status, sw.last, ww.last)),
            ctl.w.ready.eq(status & axi.wready),
            wr.w.ready.eq(~status & Mux(to_stream, self.m_axis.tready, axi.wready)),
            self.m_axis.tvalid.eq(~status & wr.w.valid & to_stream),
            self.m_axis.tdata.eq(ww.data), self.m_axis.tkeep.eq(ww.strb), self.m_axis.tlast.eq(ww.tlast),
            self.irq.eq(ctl.irq),
        ]
        return m
