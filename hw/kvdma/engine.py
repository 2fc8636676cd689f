"""Paged KV-cache DMA engine (block ``kvdma``): descriptor generator, data mover, AXI4 master.

Structure (one descriptor at a time, in arrival order)::

    s_desc / ring --> control --> generator --segments--> read splitter --AR--> m_axi
                                   |  (block table                 R --> data FIFO
                                   |   reads, ID 1)                         |
                                   +--segments--> write splitter --AW--> W side --W--> m_axi

The *generator* walks the descriptor's planes (layer x K/V) and items (GATHER: logical blocks,
APPEND: tokens, BLOCK_COPY: block pairs, COPY: rows, FILL: one range), takes block-table
entries from a prefetch FIFO (GATHER, which walks its table in order) or through a one-beat
cache (APPEND, BLOCK_COPY), checks them and emits *segments* (source, destination,
byte length). Segments that continue the previous one in both address spaces (physically
contiguous blocks) are merged into one. The *read splitter* cuts a segment into INCR bursts of
at most ``max_burst`` beats that never cross a 4 KiB boundary and issues a burst only once its
beats are reserved in the data FIFO (so R is always accepted: ``rready`` is tied high and the read
side can never deadlock the write side). The *write splitter* cuts the same segment by the
destination's own 4 KiB boundaries and issues AW only when all beats of that burst are already
in the FIFO; the W side then streams them with WSTRB trimming the first and last beat.

No byte realignment is done: the source and destination of a segment must be congruent modulo
the bus width (``MISALIGNED`` otherwise), which holds whenever pool base, strides and buffers are
bus-aligned. Lengths and offsets are byte-granular.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..axi import AXI4LiteSignature, AXI4Signature, AXIStreamSignature, Burst
from ..burst import BurstSplitter
from ..csr import CSRBlock, Register
from .descriptors import POOL_FIELDS, Descriptor, Err, Flag, Geometry, HeadRange, Layout, Op, Status, csr_names, pool_reg
from .params import KVDMAParams


__all__ = ["KVDMA"]

ID_DATA, ID_TABLE, ID_RING = 0, 1, 2
MAX_SEG = (1 << 31) - 1   # merged segments stay below 2 GiB so 32-bit length sums cannot wrap
TBL_BEATS = 8             # block-table prefetch FIFO depth (beats)


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
        widths = {"ring_size_log2": 5, "reserved13": 1, "reserved14": 1, "reserved15": 1}
        ro = {"ring_tail", "status", "done_count", "err_code", "err_addr", "err_item",
              "irq_status", "info", "reserved13", "reserved14", "reserved15"}
        return [Register(name, "ro" if name in ro else "rw", widths.get(name, 32),
                         strobe=(name == "ack")) for name in csr_names(self.p.pools)]

    def elaborate(self, platform):
        m = Module()
        p = self.p
        dw = p.bus_width
        addr_w = p.addr_width
        B = dw // 8
        lgB = exact_log2(B)
        ones = (1 << B) - 1
        axi = self.m_axi

        m.submodules.csr = csr = CSRBlock(registers=self.registers(), addr_width=8, data_width=32)
        wiring.connect(m, wiring.flipped(self.s_axil), csr.s_axil)
        m.d.comb += csr.info.eq(lgB | exact_log2(p.max_burst) << 4 | p.outstanding << 8
                                | exact_log2(p.buffer_beats) << 16 | p.pools << 20 | 2 << 24)

        # ---------------------------------------------------------------- descriptor registers
        desc = Signal(Descriptor)
        d_op, d_flags, d_pool, d_layer0 = desc.op, desc.flags, desc.pool, desc.layer0
        d_layers = Signal(8)
        m.d.comb += d_layers.eq(Mux(desc.layers == 0, 1, desc.layers))
        d_count, d_a, d_b, d_c, d_d, d_e, d_status = desc.count, desc.a, desc.b, desc.c, desc.d, desc.e, desc.status
        d_range = HeadRange(d_e)

        # ---------------------------------------------------------------- pool configuration
        # The descriptor's pool registers are sampled when it starts (ctl START), together with
        # the values derived from them (block mask, block bytes, head count, plane count): the
        # CSR multiplexer and the variable shift stay off the generator's address paths, and
        # software may reprogram one pool while a descriptor on another runs.
        cfg = {f: Signal(32, name=f"cfg_{f}") for f in POOL_FIELDS}
        sel = {f: (getattr(csr, pool_reg(0, f)) if p.pools == 1
                   else Array(getattr(csr, pool_reg(k, f)) for k in range(p.pools))[d_pool])
               for f in POOL_FIELDS}
        geo = Geometry(cfg["geometry"])
        bs_log2, hnd = geo.block_size_log2, geo.layout == Layout.HND
        bs_mask, blk_bytes = Signal(addr_w), Signal(addr_w)    # block_size - 1, token_stride * block_size
        n_heads = Signal(16)                                    # planes per (layer, K/V): HND heads, else 1
        h_end = Signal(17)                                      # h_first + n_heads
        n_planes = Signal(32)
        head_bad = Signal()
        h_first, h_num = d_range.first, d_range.num              # HND head range (descriptor word 6)

        # ---------------------------------------------------------------- error latch
        # First error of a descriptor wins; it aborts everything not yet issued.
        err = Signal()
        err_code, err_addr, err_item = Signal(8), Signal(addr_w), Signal(32)
        err_reqs = []   # (valid, code, addr, item), highest priority first

        def raise_error(valid, code, addr, item):
            err_reqs.append((valid, code, addr, item))

        # ---------------------------------------------------------------- FIFOs
        m.submodules.rseg = rseg = fifo.SyncFIFOBuffered(width=addr_w + 64, depth=p.seg_depth)  # src len item
        m.submodules.wseg = wseg = fifo.SyncFIFOBuffered(width=addr_w + 66, depth=p.seg_depth)  # dst len item fill last
        m.submodules.data = data = fifo.SyncFIFOBuffered(width=dw, depth=p.buffer_beats)
        m.submodules.rinfo = rinfo = fifo.SyncFIFOBuffered(width=addr_w + 32, depth=p.outstanding)  # addr item
        m.submodules.winfo = winfo = fifo.SyncFIFOBuffered(width=addr_w + 32, depth=p.outstanding)
        nw = exact_log2(p.max_burst) + 1
        m.submodules.tbl = tbl = fifo.SyncFIFOBuffered(width=dw + 1, depth=TBL_BEATS)   # table beat, error
        tbl_widx = Signal(max(1, lgB - 2))
        m.submodules.wcmd = wcmd = fifo.SyncFIFOBuffered(width=nw + 2 * B + 2, depth=p.outstanding)

        # ---------------------------------------------------------------- AR arbitration
        # Requesters hold valid and payload until accepted; the lock keeps the choice while a
        # request waits, so the visible AR payload never changes under valid.
        gar_valid, gar_addr = Signal(), Signal(addr_w)          # generator: table beats
        mar_valid, mar_addr, mar_len = Signal(), Signal(addr_w), Signal(8)  # mover: data bursts
        car_valid, car_addr, car_len = Signal(), Signal(addr_w), Signal(8)  # control: ring
        ar_lock, ar_lock_sel = Signal(), Signal(2)
        # Port-facing multiplexers are plain expressions, not If/Switch processes: Icarus never
        # evaluates an `always @*` whose inputs are all initialised registers that have not
        # changed yet, which would leave AR/AW/W valid at X until the first descriptor.
        ar_sel = Signal(2)
        m.d.comb += ar_sel.eq(Mux(ar_lock, ar_lock_sel, Mux(car_valid, 2, Mux(gar_valid, 1, 0))))
        m.d.comb += [axi.arsize.eq(lgB), axi.arburst.eq(Burst.INCR), axi.arid.eq(ar_sel)]
        m.d.comb += [
            axi.arvalid.eq(Mux(ar_sel == 0, mar_valid, Mux(ar_sel == 1, gar_valid, car_valid))),
            axi.araddr.eq(Mux(ar_sel == 0, mar_addr, Mux(ar_sel == 1, gar_addr, car_addr))),
            axi.arlen.eq(Mux(ar_sel == 0, mar_len, Mux(ar_sel == 1, 0, car_len))),
        ]
        m.d.sync += [ar_lock.eq(axi.arvalid & ~axi.arready), ar_lock_sel.eq(ar_sel)]
        ar_fire = axi.arvalid & axi.arready
        mar_fire = ar_fire & (ar_sel == 0)
        gar_fire = ar_fire & (ar_sel == 1)
        car_fire = ar_fire & (ar_sel == 2)
        with m.If(gar_fire):
            m.d.sync += gar_valid.eq(0)
        with m.If(car_fire):
            m.d.sync += car_valid.eq(0)

        m.d.comb += [axi.rready.eq(1), axi.bready.eq(1)]
        r_err = axi.rresp[1]      # SLVERR or DECERR
        b_err = axi.bresp[1]

        # ---------------------------------------------------------------- read splitter
        out_rd = Signal(range(p.outstanding + 1))
        space = Signal(range(p.buffer_beats + 1))    # beats in the FIFO or reserved for reads in flight
        m.submodules.rsplit = rsplit = BurstSplitter(addr_width=addr_w, data_width=dw, max_beats=p.max_burst,
                                                     length_width=32, user_width=32)
        rb = rsplit.o.payload
        rd_load = Signal()
        m.d.comb += [rsplit.i.valid.eq(rseg.r_rdy), rsplit.i.payload.eq(rseg.r_data),
                     rseg.r_en.eq(rsplit.i.ready & rseg.r_rdy), rsplit.flush.eq(err),
                     rsplit.o.ready.eq((out_rd < p.outstanding) & rinfo.w_rdy
                                       & (space + rb.beats <= p.buffer_beats) & (~mar_valid | mar_fire)),
                     rd_load.eq(rsplit.o.valid & rsplit.o.ready),
                     rinfo.w_en.eq(rd_load), rinfo.w_data.eq(Cat(rb.addr, rb.user))]
        with m.If(rd_load):
            m.d.sync += [mar_valid.eq(1), mar_addr.eq(rb.addr), mar_len.eq(rb.beats - 1)]
        with m.Elif(mar_fire):
            m.d.sync += mar_valid.eq(0)

        # R data: every ID-0 beat has reserved room, so it is always written.
        rd_beat = Signal(8)
        data_r = axi.rvalid & (axi.rid == ID_DATA)
        m.d.comb += [data.w_en.eq(data_r), data.w_data.eq(axi.rdata)]
        rd_done = data_r & axi.rlast
        with m.If(data_r):
            m.d.sync += rd_beat.eq(Mux(axi.rlast, 0, rd_beat + 1))
        m.d.comb += rinfo.r_en.eq(rd_done)
        raise_error(data_r & r_err, Err.READ_ERR, rinfo.r_data[:addr_w] + (rd_beat << lgB), rinfo.r_data[addr_w:])

        # ---------------------------------------------------------------- write splitter
        out_wr = Signal(range(p.outstanding + 1))
        committed = Signal(range(p.buffer_beats + 1))   # FIFO beats promised to issued AWs
        maw_valid, maw_addr, maw_len = Signal(), Signal(addr_w), Signal(8)
        to_stream = (d_flags & Flag.STREAM).any()     # GATHER to m_axis: no AW/W/B at all
        m.submodules.wsplit = wsplit = BurstSplitter(addr_width=addr_w, data_width=dw, max_beats=p.max_burst,
                                                     length_width=32, user_width=32 + 2 + 2 * B)
        wb = wsplit.o.payload
        wb_item, wb_fill, wb_last = wb.user[:32], wb.user[32], wb.user[33]
        wb_fmask, wb_lmask = wb.user[34:34 + B], wb.user[34 + B:]
        maw_fire = Signal()
        wr_load = Signal()
        ws_dst, ws_len = wseg.r_data[:addr_w], wseg.r_data[addr_w:addr_w + 32]
        ws_end = Signal(lgB)
        m.d.comb += ws_end.eq(ws_dst + ws_len)
        m.d.comb += [
            wsplit.i.valid.eq(wseg.r_rdy), wseg.r_en.eq(wsplit.i.ready & wseg.r_rdy), wsplit.flush.eq(err),
            wsplit.i.payload.eq(Cat(ws_dst, ws_len, wseg.r_data[addr_w + 32:],
                                    (Const(ones, B) << ws_dst[:lgB])[:B],
                                    Mux(ws_end == 0, ones, (Const(1, B + 1) << ws_end) - 1)[:B])),
            wsplit.o.ready.eq(wcmd.w_rdy & (wb_fill | (data.level >= committed + wb.beats))
                              & (to_stream | ((out_wr < p.outstanding) & winfo.w_rdy & (~maw_valid | maw_fire)))),
            wr_load.eq(wsplit.o.valid & wsplit.o.ready),
            wcmd.w_en.eq(wr_load),
            wcmd.w_data.eq(Cat(wb.beats, Mux(wb.first, wb_fmask, ones), Mux(wb.last, wb_lmask, ones), wb_fill,
                               wb_last & wb.last)),
            winfo.w_en.eq(wr_load & ~to_stream), winfo.w_data.eq(Cat(wb.addr, wb_item)),
        ]
        with m.If(wr_load):
            m.d.sync += [maw_valid.eq(~to_stream), maw_addr.eq(wb.addr), maw_len.eq(wb.beats - 1)]
        with m.Elif(maw_fire):
            m.d.sync += maw_valid.eq(0)

        # W side: one burst per wcmd entry; its data is already in the FIFO (or is the pattern).
        w_active, w_cnt, w_first, w_fill = Signal(), Signal(nw), Signal(), Signal()
        w_fmask, w_lmask = Signal(B), Signal(B)
        w_tlast = Signal()
        fill_pattern = Signal(32)
        mw_valid = Signal()
        m.d.comb += mw_valid.eq(w_active & (w_fill | data.r_rdy))
        mw_last = w_cnt == 1
        mw_fire = Signal()
        mw_data = Mux(w_fill, Cat(*([fill_pattern] * (dw // 32))), data.r_data)
        mw_strb = Mux(w_first, w_fmask, ones) & Mux(mw_last, w_lmask, ones)
        w_next = wcmd.r_rdy & (~w_active | (mw_fire & mw_last))
        m.d.comb += wcmd.r_en.eq(w_next)
        with m.If(w_next):
            m.d.sync += [
                w_active.eq(1), w_first.eq(1), w_cnt.eq(wcmd.r_data[0:nw]),
                w_fmask.eq(wcmd.r_data[nw:nw + B]), w_lmask.eq(wcmd.r_data[nw + B:nw + 2 * B]),
                w_fill.eq(wcmd.r_data[nw + 2 * B]), w_tlast.eq(wcmd.r_data[nw + 2 * B + 1]),
            ]
        with m.Elif(mw_fire):
            m.d.sync += [w_cnt.eq(w_cnt - 1), w_first.eq(0)]
            with m.If(mw_last):
                m.d.sync += w_active.eq(0)
        # After an abort, beats no issued burst will use are dropped (reads still in flight
        # land here too), which returns their reserved room. "No issued burst will use them" is
        # `committed == 0`, not "wcmd empty": a wcmd entry pushed in the cycle before the abort is
        # not visible at the FIFO output yet, and dropping its beats sent wrong data (and hung).
        discard = err & (committed == 0) & data.r_rdy
        pop = Signal()
        m.d.comb += pop.eq((mw_fire & ~w_fill) | discard)
        m.d.comb += data.r_en.eq(pop)

        m.d.sync += [
            out_rd.eq(out_rd + rd_load - rd_done),
            space.eq(space + Mux(rd_load, rb.beats, 0) - pop),
            committed.eq(committed + Mux(wr_load & ~wb_fill, wb.beats, 0) - (mw_fire & ~w_fill)),
        ]

        data_b = axi.bvalid & (axi.bid == ID_DATA)
        m.d.comb += winfo.r_en.eq(data_b)
        m.d.sync += out_wr.eq(out_wr + (wr_load & ~to_stream) - data_b)
        raise_error(data_b & b_err, Err.WRITE_ERR, winfo.r_data[:addr_w], winfo.r_data[addr_w:])

        mover_idle = Signal()
        m.d.comb += mover_idle.eq(rsplit.i.ready & ~rseg.r_rdy & (out_rd == 0) & ~mar_valid
                                  & wsplit.i.ready & ~wseg.r_rdy & ~wcmd.r_rdy & ~w_active & (out_wr == 0)
                                  & ~maw_valid & ~data.r_rdy)

        # ---------------------------------------------------------------- generator
        gen_start, gen_done = Signal(), Signal()
        plane_base = Signal(addr_w)
        prod_l, prod_h, kv_base = Signal(addr_w), Signal(addr_w), Signal(addr_w)
        # layer and head counters hold absolute indices, so the plane products have no adder
        # in front of their multipliers
        li, kv, hi = Signal(9), Signal(), Signal(17)
        mul_a, mul_b = Signal(32), Signal(32)     # operands of tokoff, registered in ITEM
        j = Signal(32)
        gitem = Signal(32)                # item index across all planes (reported on errors)
        rem = Signal(32)                  # GATHER: tokens of this plane not yet covered
        dcur, scur, hoff = Signal(addr_w), Signal(addr_w), Signal(addr_w)
        waddr = Signal(addr_w)
        cache_valid, cache_tag, cache_data = Signal(), Signal(addr_w - lgB), Signal(dw)
        x0, x1 = Signal(32), Signal(32)
        prod_a, prod_b, tokoff = Signal(addr_w), Signal(addr_w), Signal(addr_w)
        s_src, s_dst, s_len, s_fill = Signal(addr_w), Signal(addr_w), Signal(32), Signal()
        pv, p_src, p_dst, p_len, p_fill, p_item = (Signal(), Signal(addr_w), Signal(addr_w), Signal(32),
                                                   Signal(), Signal(32))
        ts = cfg["token_stride"]
        nb = cfg["num_blocks"]
        is_g, is_a, is_bc = d_op == Op.GATHER, d_op == Op.APPEND, d_op == Op.BLOCK_COPY
        planar = is_g | is_a | is_bc
        has_k, has_v = (d_flags & Flag.K).any(), (d_flags & Flag.V).any()
        # Items per plane, and block-table entries the GATHER prefetch reads per plane. Their
        # inputs (descriptor, pool registers sampled in START) are constant from CFG on, so they
        # are registered every cycle and valid from RUN on: the add and shift stay off the
        # generator's and prefetch's paths.
        n_items, n_items_c = Signal(32), Signal(32)
        with m.Switch(d_op):
            with m.Case(Op.GATHER):
                m.d.comb += n_items_c.eq((d_count + bs_mask) >> bs_log2)
            with m.Case(Op.APPEND, Op.BLOCK_COPY):
                m.d.comb += n_items_c.eq(d_count)
            with m.Case(Op.COPY):
                m.d.comb += n_items_c.eq(Mux(d_c == 0, 1, d_c))
            with m.Case(Op.FILL):
                m.d.comb += n_items_c.eq(1)
        m.d.sync += n_items.eq(n_items_c)
        pos = Signal(32)
        m.d.comb += pos.eq(d_c + j)
        ntok = Signal(9)
        m.d.comb += ntok.eq(Mux(rem > bs_mask, bs_mask + 1, rem))
        gen_err = Signal()
        g_code, g_addr = Signal(8), Signal(addr_w)
        # Sub-row (a head range): bytes [sub_off, sub_off + sub_len) of every token row.
        sub_off, sub_len = d_range.first, d_range.num
        sub = (is_g | is_a) & ~hnd & (sub_len != 0)     # HND pools: word 6 is a head range
        row_len = Signal(32)
        m.d.comb += row_len.eq(Mux(sub, sub_len, ts))
        t_cnt, t_off, t_sub = Signal(9), Signal(addr_w), Signal(addr_w)
        more_tokens = is_g & sub & (t_cnt + 1 < ntok)
        raise_error(gen_err, g_code, g_addr, gitem)
        word_idx = waddr[2:lgB]
        src_host, dst_host = (d_flags & Flag.SRC_HOST).any(), (d_flags & Flag.DST_HOST).any()

        push, push_last = Signal(), Signal()
        m.d.comb += [
            rseg.w_en.eq(push & ~p_fill), rseg.w_data.eq(Cat(p_src, p_len, p_item)),
            wseg.w_en.eq(push), wseg.w_data.eq(Cat(p_dst, p_len, p_item, p_fill, push_last)),
        ]
        can_push = wseg.w_rdy & (rseg.w_rdy | p_fill)
        idx = Signal(32)
        m.d.comb += idx.eq(Mux(is_g, j, pos >> bs_log2))
        bad, skip = Signal(), Signal()
        m.d.comb += [
            skip.eq(~is_bc & (x0 == 0xFFFFFFFF)),
            bad.eq(Mux(is_bc, (~src_host & (x0 >= nb)) | (~dst_host & (x1 >= nb)), x0 >= nb)),
        ]
        contiguous = Signal()
        m.d.comb += contiguous.eq(pv & ~p_fill & ~s_fill & (s_src == p_src + p_len) & (s_dst == p_dst + p_len)
                                  & (p_len + s_len <= MAX_SEG))
        misaligned = Signal()
        m.d.comb += misaligned.eq(~s_fill & ((s_src ^ s_dst)[:lgB] != 0))
        pos_err, tbl_err, bad_err, mis_err = Signal(), Signal(), Signal(), Signal()

        def advance():
            """Statements moving the generator past the current item."""
            m.d.sync += [j.eq(j + 1), gitem.eq(gitem + 1)]
            with m.Switch(d_op):
                with m.Case(Op.GATHER):
                    m.d.sync += [dcur.eq(dcur + tokoff), rem.eq(rem - ntok)]
                with m.Case(Op.APPEND):
                    m.d.sync += scur.eq(scur + row_len)
                with m.Case(Op.COPY):
                    m.d.sync += [scur.eq(scur + d_d), dcur.eq(dcur + d_e)]

        with m.FSM(name="gen") as gen:
            with m.State("IDLE"):
                with m.If(gen_start):
                    m.d.sync += [li.eq(d_layer0), kv.eq(~has_k), hi.eq(h_first), j.eq(0), gitem.eq(0), pv.eq(0),
                                 cache_valid.eq(0),
                                 hoff.eq(0), dcur.eq(d_b), scur.eq(Mux(is_a, d_b, d_a))]
                    with m.If(planar):
                        with m.If(has_k | has_v):
                            m.next = "PLANE"
                        with m.Else():
                            m.next = "IDLE"
                    with m.Elif((d_op == Op.COPY) | (d_op == Op.FILL)):
                        m.next = "ITEM"
                    with m.Else():
                        m.next = "IDLE"
            with m.State("PLANE"):
                # a plane is (layer, K/V, head): HND heads are planes of their own
                m.d.sync += [
                    prod_l.eq(li * cfg["layer_stride"]),
                    prod_h.eq(Mux(hnd, hi * cfg["head_stride"], 0)),
                    kv_base.eq(cfg["base"] + Mux(kv, cfg["v_offset"], 0)),
                    j.eq(0), rem.eq(d_count),
                ]
                m.next = "PLANE_SUM"
            with m.State("PLANE_SUM"):
                m.d.sync += plane_base.eq(kv_base + prod_l + prod_h)
                m.next = "ITEM"
            with m.State("ITEM"):
                with m.If(err):
                    m.next = "STOP"
                with m.Elif(j == n_items):
                    with m.If(planar):
                        m.d.sync += hoff.eq(hoff + blk_bytes)
                        with m.If(hi + 1 < h_end):
                            m.d.sync += hi.eq(hi + 1)
                            m.next = "PLANE"
                        with m.Elif(~kv & has_v):
                            m.d.sync += [kv.eq(1), hi.eq(h_first)]
                            m.next = "PLANE"
                        with m.Elif(li + 1 < d_layer0 + d_layers):
                            m.d.sync += [li.eq(li + 1), kv.eq(~has_k), hi.eq(h_first)]
                            m.next = "PLANE"
                        with m.Else():
                            m.next = "FLUSH"
                    with m.Else():
                        m.next = "FLUSH"
                with m.Elif(is_g | is_a):
                    m.d.sync += [waddr.eq(d_a + (idx << 2)),
                                 mul_a.eq(Mux(is_g, ntok, pos & bs_mask)), mul_b.eq(Mux(is_g, row_len, ts))]
                    with m.If(idx >= d_d):
                        m.next = "STOP"
                    with m.Elif(is_g):
                        m.next = "TBL"
                    with m.Else():
                        m.next = "LOOKUP"
                with m.Elif(is_bc):
                    m.d.sync += waddr.eq(d_a + (j << 3))
                    m.next = "LOOKUP"
                with m.Elif(d_op == Op.COPY):
                    m.d.sync += [s_src.eq(scur), s_dst.eq(dcur), s_len.eq(d_count), s_fill.eq(0)]
                    m.next = "EMIT"
                with m.Else():   # FILL
                    m.d.sync += [s_src.eq(0), s_dst.eq(d_b), s_len.eq(d_count), s_fill.eq(1),
                                 fill_pattern.eq(d_c)]
                    m.next = "EMIT"
            with m.State("TBL"):
                # GATHER walks its table in order: entries come from the prefetch FIFO.
                with m.If(tbl.r_rdy):
                    m.d.sync += [x0.eq(tbl.r_data.word_select(tbl_widx, 32)), x1.eq(0)]
                    with m.If(tbl.r_data[dw] | err):
                        m.next = "STOP"
                    with m.Else():
                        m.next = "CHECK"
            with m.State("LOOKUP"):
                with m.If(cache_valid & (cache_tag == waddr[lgB:])):
                    m.d.sync += [x0.eq(cache_data.word_select(word_idx, 32)),
                                 x1.eq(cache_data.word_select(word_idx | 1, 32))]
                    m.next = "CHECK"
                with m.Else():
                    m.d.sync += [gar_valid.eq(1), gar_addr.eq(waddr & ~(B - 1))]
                    m.next = "LOOKUP_WAIT"
            with m.State("LOOKUP_WAIT"):
                with m.If(axi.rvalid & (axi.rid == ID_TABLE)):
                    m.d.sync += [cache_data.eq(axi.rdata), cache_tag.eq(waddr[lgB:]), cache_valid.eq(~r_err)]
                    with m.If(r_err):
                        m.next = "STOP"
                    with m.Else():
                        m.next = "LOOKUP"
            with m.State("CHECK"):
                # Products are registered here and used in SEG (one multiplier stage per cycle).
                id_a = x0
                m.d.sync += [
                    prod_a.eq(id_a * Mux(is_bc & src_host, d_d, cfg["block_stride"])),
                    prod_b.eq(x1 * Mux(dst_host, d_d, cfg["block_stride"])),
                    tokoff.eq(mul_a * mul_b),
                    t_cnt.eq(0), t_off.eq(0), t_sub.eq(0),
                ]
                with m.If(err):
                    m.next = "STOP"
                with m.Elif(skip):
                    m.next = "SKIP"
                with m.Elif(bad):
                    m.next = "STOP"
                with m.Else():
                    m.next = "SEG"
            with m.State("SKIP"):
                # tokoff is valid now (registered in CHECK)
                m.next = "ADVANCE"
            with m.State("SEG"):
                m.d.sync += s_fill.eq(0)
                with m.Switch(d_op):
                    with m.Case(Op.GATHER):
                        # to the stream the destination is the source's own byte lanes
                        # a sub-row gather emits one segment per token (t_off/t_sub step per token)
                        g_src = plane_base + prod_a + t_off + Mux(sub, sub_off, 0)
                        m.d.sync += [s_src.eq(g_src), s_dst.eq(Mux(to_stream, g_src, dcur + t_sub)),
                                     s_len.eq(Mux(sub, sub_len, tokoff))]
                    with m.Case(Op.APPEND):
                        m.d.sync += [s_src.eq(scur), s_dst.eq(plane_base + prod_a + tokoff + Mux(sub, sub_off, 0)),
                                     s_len.eq(row_len)]
                    with m.Default():   # BLOCK_COPY
                        m.d.sync += [
                            s_src.eq(Mux(src_host, d_b + prod_a + hoff, plane_base + prod_a)),
                            s_dst.eq(Mux(dst_host, d_b + prod_b + hoff, plane_base + prod_b)),
                            s_len.eq(blk_bytes),
                        ]
                m.next = "EMIT"
            with m.State("EMIT"):
                def next_token_or_item():
                    # The item's advance happens on the way out of EMIT (one cycle per item
                    # less than a state of its own: APPEND items of one head row each are
                    # bound by the generator's cycles per item).
                    with m.If(more_tokens):
                        m.next = "NEXT_TOK"
                    with m.Else():
                        advance()
                        m.next = "ITEM"
                with m.If(err):
                    m.next = "STOP"
                with m.Elif(misaligned):
                    m.next = "STOP"
                with m.Elif(s_len == 0):
                    next_token_or_item()
                with m.Elif(contiguous):
                    m.d.sync += p_len.eq(p_len + s_len)
                    next_token_or_item()
                with m.Elif(~pv | can_push):
                    m.d.sync += [pv.eq(1), p_src.eq(s_src), p_dst.eq(s_dst), p_len.eq(s_len),
                                 p_fill.eq(s_fill), p_item.eq(gitem)]
                    next_token_or_item()
            with m.State("NEXT_TOK"):
                m.d.sync += [t_cnt.eq(t_cnt + 1), t_off.eq(t_off + ts), t_sub.eq(t_sub + sub_len)]
                m.next = "SEG"
            with m.State("ADVANCE"):
                advance()
                m.next = "ITEM"
            with m.State("FLUSH"):
                with m.If(err):
                    m.next = "STOP"
                with m.Elif(~pv):
                    m.next = "IDLE"
                with m.Elif(can_push):
                    m.d.sync += pv.eq(0)
                    m.next = "IDLE"
            with m.State("STOP"):
                # An error stops the descriptor: the pending segment is dropped unissued.
                m.d.sync += pv.eq(0)
                with m.If(~gar_valid):
                    m.next = "IDLE"

        m.d.comb += [
            pos_err.eq(gen.ongoing("ITEM") & ~err & (j != n_items) & (is_g | is_a) & (idx >= d_d)),
            tbl_err.eq((gen.ongoing("LOOKUP_WAIT") & axi.rvalid & (axi.rid == ID_TABLE) & r_err)
                       | (gen.ongoing("TBL") & ~err & tbl.r_rdy & tbl.r_data[dw])),
            bad_err.eq(gen.ongoing("CHECK") & ~err & ~skip & bad),
            mis_err.eq(gen.ongoing("EMIT") & ~err & misaligned),
            gen_err.eq(pos_err | tbl_err | bad_err | mis_err),
            g_code.eq(Mux(pos_err, Err.POS_RANGE, Mux(tbl_err, Err.TABLE_ERR,
                                                      Mux(bad_err, Err.BAD_BLOCK, Err.MISALIGNED)))),
            g_addr.eq(Mux(pos_err, d_a + (idx << 2), Mux(tbl_err | bad_err, waddr, s_src))),
            push_last.eq(gen.ongoing("FLUSH")),
            push.eq((gen.ongoing("EMIT") & ~err & ~misaligned & (s_len != 0) & ~contiguous & pv & can_push)
                    | (gen.ongoing("FLUSH") & ~err & pv & can_push)),
        ]

        # ---------------------------------------------------------------- table prefetch (GATHER)
        # The block table of a GATHER is read ahead, one beat per AR, into a small FIFO whose
        # room is reserved before each read (as for data); each plane re-reads it. The lookup
        # latency is then hidden behind the data of earlier blocks even for 1-token blocks.
        n_fetch = Signal(32)
        m.d.sync += n_fetch.eq(Mux(n_items_c < d_d, n_items_c, d_d))     # registered, see n_items
        pf_plane_beats = Signal(32)
        m.d.comb += pf_plane_beats.eq(Mux(n_fetch == 0, 0, ((d_a & (B - 1)) + (n_fetch << 2) + (B - 1)) >> lgB))
        pf_left, pf_planes = Signal(32), Signal(32)
        pf_addr = Signal(addr_w)
        pf_space = Signal(range(TBL_BEATS + 1))
        pf_load = Signal()
        m.d.comb += pf_load.eq((pf_left != 0) & ~err & (pf_space < TBL_BEATS) & (~gar_valid | gar_fire))
        with m.If(gen_start & is_g):
            m.d.sync += [pf_planes.eq(n_planes),
                         pf_left.eq(0), pf_addr.eq(d_a & ~(B - 1))]
        with m.Elif(pf_load):
            m.d.sync += [gar_valid.eq(1), gar_addr.eq(pf_addr), pf_addr.eq(pf_addr + B), pf_left.eq(pf_left - 1)]
        with m.Elif((pf_left == 0) & (pf_planes != 0) & ~err):
            m.d.sync += [pf_planes.eq(pf_planes - 1), pf_left.eq(pf_plane_beats), pf_addr.eq(d_a & ~(B - 1))]
        with m.If(err):
            m.d.sync += [pf_left.eq(0), pf_planes.eq(0)]
        tbl_pop = Signal()
        m.d.comb += [
            tbl_widx.eq(d_a[2:lgB] + j),
            tbl.w_en.eq(axi.rvalid & (axi.rid == ID_TABLE) & is_g), tbl.w_data.eq(Cat(axi.rdata, r_err)),
            tbl_pop.eq(gen.ongoing("TBL") & tbl.r_rdy
                       & ((tbl_widx == B // 4 - 1) | (j + 1 == n_fetch) | tbl.r_data[dw] | err)),
            # after an error, table beats still arriving are dropped
            tbl.r_en.eq(tbl_pop | (err & ~gen.ongoing("TBL") & tbl.r_rdy)),
        ]
        m.d.sync += pf_space.eq(pf_space + pf_load - tbl.r_en)
        pf_idle = (pf_space == 0) & ~gar_valid & (pf_left == 0) & (pf_planes == 0)

        # ---------------------------------------------------------------- control
        halted = Signal()
        from_ring = Signal()
        ring_tail = Signal(32)
        done_count = Signal(32)
        irq_status = Signal(2)
        last_code, last_addr, last_item = Signal(8), Signal(addr_w), Signal(32)
        ring_mask = Signal(32)
        m.d.comb += ring_mask.eq((Const(1, 33) << csr.ring_size_log2) - 1)
        ring_pending = csr.ctrl[0] & ((csr.ring_head & ring_mask) != ring_tail)
        ring_addr = Signal(addr_w)
        m.d.comb += ring_addr.eq(csr.ring_base + (ring_tail << 5))
        ring_beats = max(1, 32 // B)
        ring_beat = Signal(range(ring_beats + 1))
        busy = Signal()
        caw_valid, cw_valid = Signal(), Signal()
        status_ctl = Signal()
        c_err = Signal()
        c_code, c_addr = Signal(8), Signal(addr_w)
        raise_error(c_err, c_code, c_addr, 0)
        op_bad, cfg_bad, base_bad, pool_bad = Signal(), Signal(), Signal(), Signal()
        m.d.comb += [
            op_bad.eq((d_op > Op.FILL) | (to_stream & ~is_g)),
            pool_bad.eq(planar & (d_pool >= p.pools)), cfg_bad.eq(planar & (bs_log2 > 8)),
            base_bad.eq((d_status[:3] != 0) | ((is_g | is_a) & (d_a[:2] != 0)) | (is_bc & (d_a[:3] != 0))),
        ]
        m.d.comb += [csr.ring_tail.eq(ring_tail), csr.done_count.eq(done_count),
                     csr.irq_status.eq(irq_status), csr.err_code.eq(last_code),
                     csr.err_addr.eq(last_addr), csr.err_item.eq(last_item),
                     csr.status.eq(Cat(busy, halted, Const(0, 6), last_code)),
                     self.irq.eq(csr.ctrl[1] & (irq_status != 0))]
        with m.If(csr.ack_wstb):
            m.d.sync += irq_status.eq(irq_status & ~csr.ack[:2])
            with m.If(csr.ack[1]):
                m.d.sync += halted.eq(0)

        with m.FSM(name="ctl") as ctl:
            with m.State("IDLE"):
                with m.If(~halted & ring_pending):
                    m.d.sync += [car_valid.eq(1), car_addr.eq(ring_addr & ~(B - 1)),
                                 car_len.eq(ring_beats - 1), ring_beat.eq(0), from_ring.eq(1)]
                    m.next = "RING"
                with m.Elif(~halted):
                    with m.If(self.s_desc.valid):
                        m.d.sync += [desc.eq(self.s_desc.payload), from_ring.eq(0)]
                        m.next = "START"
            with m.State("RING"):
                with m.If(axi.rvalid & (axi.rid == ID_RING)):
                    if B >= 32:
                        m.d.sync += desc.eq(axi.rdata.word_select(ring_addr[5:lgB], 256) if B > 32
                                            else axi.rdata)
                    else:
                        m.d.sync += desc.as_value().word_select(ring_beat, dw).eq(axi.rdata)
                    m.d.sync += ring_beat.eq(ring_beat + 1)
                    with m.If(axi.rlast):
                        m.next = "START"
            with m.State("START"):
                # sample the pool (see "pool configuration"); checked in CFG
                s_geo = Geometry(sel["geometry"])
                s_lg, s_hnd = s_geo.block_size_log2, s_geo.layout == Layout.HND
                s_heads = Mux(s_hnd & planar, Mux(h_num == 0, s_geo.heads - h_first, h_num), 1)
                m.d.sync += [cfg[f].eq(sel[f]) for f in POOL_FIELDS]
                m.d.sync += [
                    bs_mask.eq((Const(1, addr_w) << s_lg) - 1),
                    blk_bytes.eq(sel["token_stride"] << s_lg),
                    n_heads.eq(s_heads), h_end.eq(h_first + s_heads[:16]),
                    n_planes.eq(d_layers * (has_k.as_unsigned() + has_v.as_unsigned()) * s_heads[:16]),
                    head_bad.eq(s_hnd & planar & Mux(h_num == 0, h_first >= s_geo.heads,
                                                     h_first + h_num > s_geo.heads)),
                ]
                with m.If(err):
                    # The ring slot could not be read: there is no trustworthy status address.
                    m.next = "FINISH"
                with m.Else():
                    m.next = "CFG"
            with m.State("CFG"):
                with m.If(op_bad | pool_bad | cfg_bad | base_bad | head_bad):
                    m.next = "DRAIN"
                with m.Else():
                    m.d.comb += gen_start.eq(1)
                    m.next = "RUN"
            with m.State("RUN"):
                with m.If(gen_done):
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                with m.If(mover_idle & gen_done & pf_idle):
                    # a misaligned status address is reported in the CSRs only
                    with m.If((d_status != 0) & (d_status[:3] == 0)):
                        m.d.sync += [caw_valid.eq(1), cw_valid.eq(1)]
                        m.next = "STATUS"
                    with m.Else():
                        m.next = "FINISH"
            with m.State("STATUS"):
                with m.If(axi.awready):
                    m.d.sync += caw_valid.eq(0)
                with m.If(axi.wready):
                    m.d.sync += cw_valid.eq(0)
                with m.If(axi.bvalid & (axi.bid == ID_TABLE)):
                    m.next = "FINISH"
            with m.State("FINISH"):
                m.d.sync += [done_count.eq(done_count + 1), irq_status[0].eq(1), err.eq(0)]
                with m.If(err):
                    m.d.sync += [halted.eq(1), irq_status[1].eq(1), last_code.eq(err_code),
                                 last_addr.eq(err_addr), last_item.eq(err_item)]
                with m.If(from_ring):
                    m.d.sync += ring_tail.eq((ring_tail + 1) & ring_mask)
                m.next = "IDLE"

        # AW/W: the mover's, except while the control FSM writes the status word.
        status_word = Signal(Status)
        m.d.comb += [status_word.code.eq(Mux(err, err_code, Err.OK)), status_word.op.eq(d_op),
                     status_word.done.eq(1), status_word.item.eq(Mux(err, err_item, 0))]
        m.d.comb += [axi.awsize.eq(lgB), axi.awburst.eq(Burst.INCR)]
        ring_err, start_err, st_err = Signal(), Signal(), Signal()
        m.d.comb += [
            ring_err.eq(ctl.ongoing("RING") & axi.rvalid & (axi.rid == ID_RING) & r_err),
            start_err.eq(ctl.ongoing("CFG") & ~err & (op_bad | pool_bad | cfg_bad | base_bad | head_bad)),
            st_err.eq(ctl.ongoing("STATUS") & axi.bvalid & (axi.bid == ID_TABLE) & b_err),
            c_err.eq(ring_err | start_err | st_err),
            c_code.eq(Mux(ring_err, Err.TABLE_ERR, Mux(st_err, Err.WRITE_ERR,
                      Mux(op_bad, Err.BAD_OPCODE, Mux(pool_bad, Err.BAD_POOL, Mux(cfg_bad, Err.BAD_CONFIG,
                      Mux(base_bad, Err.MISALIGNED, Err.HEAD_RANGE))))))),
            c_addr.eq(Mux(ring_err, ring_addr, Mux(st_err, d_status,
                      Mux(op_bad | pool_bad | cfg_bad | ~base_bad, 0, Mux(d_status[:3] != 0, d_status, d_a))))),
        ]
        m.d.comb += [
            status_ctl.eq(ctl.ongoing("STATUS")), busy.eq(~ctl.ongoing("IDLE")),
            gen_done.eq(gen.ongoing("IDLE")),
            self.s_desc.ready.eq(ctl.ongoing("IDLE") & ~halted & ~ring_pending),
            axi.awvalid.eq(Mux(status_ctl, caw_valid, maw_valid)),
            axi.awaddr.eq(Mux(status_ctl, d_status & ~(B - 1), maw_addr)),
            axi.awlen.eq(Mux(status_ctl, 0, maw_len)),
            axi.awid.eq(Mux(status_ctl, ID_TABLE, ID_DATA)),
            axi.wvalid.eq(Mux(status_ctl, cw_valid, mw_valid & ~to_stream)),
            self.m_axis.tvalid.eq(~status_ctl & mw_valid & to_stream),
            self.m_axis.tdata.eq(data.r_data), self.m_axis.tkeep.eq(mw_strb),
            self.m_axis.tlast.eq(w_tlast & mw_last),
            axi.wdata.eq(Mux(status_ctl, Cat(*([status_word.as_value()] * (B // 8))), mw_data)),
            axi.wstrb.eq(Mux(status_ctl, Const(0xFF, B) << d_status[:lgB], mw_strb)),
            axi.wlast.eq(status_ctl | mw_last),
            maw_fire.eq(~status_ctl & maw_valid & axi.awready),
            mw_fire.eq(~status_ctl & mw_valid & Mux(to_stream, self.m_axis.tready, axi.wready)),
        ]

        # Error latch (after every raise_error above).
        with m.If(~err):
            for valid, code, addr, item in reversed(err_reqs):
                with m.If(valid):
                    m.d.sync += [err.eq(1), err_code.eq(code), err_addr.eq(addr), err_item.eq(item)]
        return m
