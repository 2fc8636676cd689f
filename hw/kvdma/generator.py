"""The ``kvdma`` segment generator: walks a descriptor's planes and items, emits segments."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from .descriptors import PAIR_BYTES, TABLE_ENTRY_BYTES, Descriptor, Err, Flag, HeadRange, Layout, Op
from .links import LENGTH_WIDTH, ErrorSignature, RBeatSignature, address_layout, pool_config_layout, \
    read_segment_layout, table_beat_layout, write_segment_layout


__all__ = ["Generator", "MAX_SEG", "SKIP"]

MAX_SEG = (1 << 31) - 1   # merged segments stay below 2 GiB so 32-bit length sums cannot wrap
SKIP = 0xFFFFFFFF         # a block-table entry (or APPEND token slot) that is skipped


class Generator(wiring.Component):
    """Walks the planes and items of a descriptor and emits its segments.

    Planes are (layer, K/V) in an NHD pool and (layer, K/V, head) in an HND pool, heads
    innermost; items are GATHER's logical blocks, APPEND's tokens, BLOCK_COPY's block pairs,
    COPY's rows and FILL's one range. Block ids come from the table prefetch (GATHER, which
    walks its table in order) or through a one-beat cache (APPEND, BLOCK_COPY: an AR of ID 1 per
    miss). Each item is checked (block id, position, alignment) and becomes a segment (source,
    destination, byte length); a segment that continues the previous one in both address
    spaces (physically contiguous blocks) is merged into it. A segment goes to both FIFOs at
    once (FILL segments only to the write side's).

    Timing: a plane costs 2 cycles (its base: products, then their sum); an item 5 cycles
    (ITEM, TBL/LOOKUP, CHECK, SEG, EMIT; the item's advance is folded into EMIT), plus a memory
    latency per block-table beat an APPEND or BLOCK_COPY lookup misses, plus the cycles EMIT
    waits for room in the segment FIFOs. A sub-row GATHER token costs 2 more cycles each
    (NEXT_TOK, SEG).

    Parameters
    ----------
    addr_width, data_width, seg_depth : int
        As :class:`hw.kvdma.engine.KVDMA`.

    Members
    -------
    desc : In(Descriptor)
        The descriptor (constant while it runs).
    pool : In(pool_config_layout(addr_width))
        Its pool, sampled at start.
    start : In(1)
        Start the descriptor (one cycle; ``done`` must be high).
    done : Out(1)
        Idle: the descriptor's segments are all emitted, or it stopped.
    flush : In(1)
        An error is latched: stop (the segment being merged is dropped unissued).
    fetch_start, fetch_entries : Out(1), Out(32)
        To :class:`hw.kvdma.prefetch.TablePrefetch`: a GATHER starts; table entries per plane
        (registered, valid from the cycle after ``start``).
    fetch_busy : In(1)
        The prefetch still has a table read waiting (the generator stops only after it).
    table : In(stream.Signature(table_beat_layout(data_width)))
        Prefetched table beats (GATHER).
    lookup : Out(stream.Signature(address_layout(addr_width)))
        One-beat table reads of the APPEND / BLOCK_COPY lookup cache, held until accepted.
    lookup_r : In(RBeatSignature(data_width))
        R beats of ID 1 (the lookup's answer).
    o_read : Out(stream.Signature(read_segment_layout(addr_width)))
        Segments to read, through a ``seg_depth`` FIFO.
    o_write : Out(stream.Signature(write_segment_layout(addr_width)))
        Segments to write, through a ``seg_depth`` FIFO.
    error : Out(ErrorSignature(addr_width))
        ``POS_RANGE``, ``TABLE_ERR``, ``BAD_BLOCK`` or ``MISALIGNED`` with address and item.
    """

    def __init__(self, *, addr_width, data_width, seg_depth):
        self._aw, self._dw, self._seg_depth = addr_width, data_width, seg_depth
        super().__init__({
            "desc": In(Descriptor),
            "pool": In(pool_config_layout(addr_width)),
            "start": In(1), "done": Out(1), "flush": In(1),
            "fetch_start": Out(1), "fetch_entries": Out(32), "fetch_busy": In(1),
            "table": In(stream.Signature(table_beat_layout(data_width))),
            "lookup": Out(stream.Signature(address_layout(addr_width))),
            "lookup_r": In(RBeatSignature(data_width)),
            "o_read": Out(stream.Signature(read_segment_layout(addr_width))),
            "o_write": Out(stream.Signature(write_segment_layout(addr_width))),
            "error": Out(ErrorSignature(addr_width)),
        })

    def elaborate(self, platform):
        m = Module()
        addr_w, dw = self._aw, self._dw
        B = dw // 8
        lgB = exact_log2(B)
        lg_entry, lg_pair = exact_log2(TABLE_ENTRY_BYTES), exact_log2(PAIR_BYTES)
        desc, pool, err = self.desc, self.pool, self.flush
        bs_log2, hnd = pool.geometry.block_size_log2, pool.geometry.layout == Layout.HND
        bs_mask, ts, nb = pool.block_mask, pool.token_stride, pool.num_blocks
        head_range = HeadRange(desc.e)

        # Segment FIFOs: a segment is pushed into both at once (FILL: write side only).
        m.submodules.rseg = rseg = fifo.SyncFIFOBuffered(width=read_segment_layout(addr_w).size,
                                                         depth=self._seg_depth)
        m.submodules.wseg = wseg = fifo.SyncFIFOBuffered(width=write_segment_layout(addr_w).size,
                                                         depth=self._seg_depth)
        for port, queue in ((self.o_read, rseg), (self.o_write, wseg)):
            m.d.comb += [port.valid.eq(queue.r_rdy), port.payload.eq(queue.r_data), queue.r_en.eq(port.ready)]

        plane_base = Signal(addr_w)
        prod_l, prod_h, kv_base = Signal(addr_w), Signal(addr_w), Signal(addr_w)
        # layer and head counters hold absolute indices, so the plane products have no adder
        # in front of their multipliers
        li, kv, hi = Signal(9), Signal(), Signal(17)
        mul_a, mul_b = Signal(32), Signal(32)     # operands of tokoff, registered in ITEM
        j = Signal(32)                    # item index within the plane
        gitem = Signal(32)                # item index across all planes (reported on errors)
        rem = Signal(32)                  # GATHER: tokens of this plane not yet covered
        dcur, scur, hoff = Signal(addr_w), Signal(addr_w), Signal(addr_w)
        waddr = Signal(addr_w)            # table entry (or pair) address of the item
        cache_valid, cache_tag, cache_data = Signal(), Signal(addr_w - lgB), Signal(dw)
        x0, x1 = Signal(32), Signal(32)   # the item's block id (BLOCK_COPY: source, destination)
        prod_a, prod_b, tokoff = Signal(addr_w), Signal(addr_w), Signal(addr_w)
        # the segment being built, and the pending one (which may still grow by merging)
        s_src, s_dst, s_len, s_fill = Signal(addr_w), Signal(addr_w), Signal(LENGTH_WIDTH), Signal()
        pv, p_src, p_dst, p_len, p_fill, p_item = (Signal(), Signal(addr_w), Signal(addr_w), Signal(LENGTH_WIDTH),
                                                   Signal(), Signal(32))
        is_g, is_a, is_bc = desc.op == Op.GATHER, desc.op == Op.APPEND, desc.op == Op.BLOCK_COPY
        planar = is_g | is_a | is_bc
        has_k, has_v = (desc.flags & Flag.K).any(), (desc.flags & Flag.V).any()
        src_host, dst_host = (desc.flags & Flag.SRC_HOST).any(), (desc.flags & Flag.DST_HOST).any()
        to_stream = (desc.flags & Flag.STREAM).any()

        # Items per plane, and block-table entries the GATHER prefetch reads per plane. Their
        # inputs (descriptor, pool sampled at start) are constant from then on, so they are
        # registered every cycle and valid from the first plane on: the add and shift stay off
        # the generator's and prefetch's paths.
        n_items, n_items_c = Signal(32), Signal(32)
        with m.Switch(desc.op):
            with m.Case(Op.GATHER):
                m.d.comb += n_items_c.eq((desc.count + bs_mask) >> bs_log2)
            with m.Case(Op.APPEND, Op.BLOCK_COPY):
                m.d.comb += n_items_c.eq(desc.count)
            with m.Case(Op.COPY):
                m.d.comb += n_items_c.eq(Mux(desc.c == 0, 1, desc.c))
            with m.Case(Op.FILL):
                m.d.comb += n_items_c.eq(1)
        m.d.sync += [n_items.eq(n_items_c),
                     self.fetch_entries.eq(Mux(n_items_c < desc.d, n_items_c, desc.d))]
        m.d.comb += self.fetch_start.eq(self.start & is_g)
        pos = Signal(32)                  # APPEND: the token's position
        m.d.comb += pos.eq(desc.c + j)
        ntok = Signal(9)                  # GATHER: tokens of this block
        m.d.comb += ntok.eq(Mux(rem > bs_mask, bs_mask + 1, rem))
        # Sub-row (an NHD head range): bytes [sub_off, sub_off + sub_len) of every token row.
        sub_off, sub_len = head_range.first, head_range.num
        sub = (is_g | is_a) & ~hnd & (sub_len != 0)     # HND pools: word 6 is a head range
        row_len = Signal(32)
        m.d.comb += row_len.eq(Mux(sub, sub_len, ts))
        t_cnt, t_off, t_sub = Signal(9), Signal(addr_w), Signal(addr_w)
        more_tokens = is_g & sub & (t_cnt + 1 < ntok)
        word_idx = waddr[lg_entry:lgB]              # the entry (a pair's first id) in the cached beat
        table_word = Signal(max(1, lgB - lg_entry))  # the entry in the prefetched beat
        m.d.comb += table_word.eq(desc.a[lg_entry:lgB] + j)

        push, push_last = Signal(), Signal()
        m.d.comb += [
            rseg.w_en.eq(push & ~p_fill), rseg.w_data.eq(Cat(p_src, p_len, p_item)),
            wseg.w_en.eq(push), wseg.w_data.eq(Cat(p_dst, p_len, p_item, p_fill, push_last)),
        ]
        can_push = wseg.w_rdy & (rseg.w_rdy | p_fill)
        idx = Signal(32)                  # block-table index of the item
        m.d.comb += idx.eq(Mux(is_g, j, pos >> bs_log2))
        bad, skip = Signal(), Signal()
        m.d.comb += [
            skip.eq(~is_bc & (x0 == SKIP)),
            bad.eq(Mux(is_bc, (~src_host & (x0 >= nb)) | (~dst_host & (x1 >= nb)), x0 >= nb)),
        ]
        contiguous = Signal()
        m.d.comb += contiguous.eq(pv & ~p_fill & ~s_fill & (s_src == p_src + p_len) & (s_dst == p_dst + p_len)
                                  & (p_len + s_len <= MAX_SEG))
        misaligned = Signal()
        m.d.comb += misaligned.eq(~s_fill & ((s_src ^ s_dst)[:lgB] != 0))

        def raise_error(code, addr):
            m.d.comb += [self.error.valid.eq(~err), self.error.code.eq(code), self.error.addr.eq(addr)]
        m.d.comb += self.error.item.eq(gitem)

        def advance():
            """Statements moving the generator past the current item."""
            m.d.sync += [j.eq(j + 1), gitem.eq(gitem + 1)]
            with m.Switch(desc.op):
                with m.Case(Op.GATHER):
                    m.d.sync += [dcur.eq(dcur + tokoff), rem.eq(rem - ntok)]
                with m.Case(Op.APPEND):
                    m.d.sync += scur.eq(scur + row_len)
                with m.Case(Op.COPY):
                    m.d.sync += [scur.eq(scur + desc.d), dcur.eq(dcur + desc.e)]

        with m.If(self.lookup.ready):
            m.d.sync += self.lookup.valid.eq(0)

        with m.FSM(name="gen"):
            with m.State("IDLE"):
                m.d.comb += self.done.eq(1)
                with m.If(self.start):
                    m.d.sync += [li.eq(desc.layer0), kv.eq(~has_k), hi.eq(head_range.first), j.eq(0), gitem.eq(0),
                                 pv.eq(0), cache_valid.eq(0),
                                 hoff.eq(0), dcur.eq(desc.b), scur.eq(Mux(is_a, desc.b, desc.a))]
                    with m.If(planar):
                        with m.If(has_k | has_v):
                            m.next = "PLANE"
                        with m.Else():
                            m.next = "IDLE"
                    with m.Elif((desc.op == Op.COPY) | (desc.op == Op.FILL)):
                        m.next = "ITEM"
                    with m.Else():
                        m.next = "IDLE"
            with m.State("PLANE"):
                # a plane is (layer, K/V, head): HND heads are planes of their own
                m.d.sync += [
                    prod_l.eq(li * pool.layer_stride),
                    prod_h.eq(Mux(hnd, hi * pool.head_stride, 0)),
                    kv_base.eq(pool.base + Mux(kv, pool.v_offset, 0)),
                    j.eq(0), rem.eq(desc.count),
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
                        m.d.sync += hoff.eq(hoff + pool.block_bytes)
                        with m.If(hi + 1 < pool.head_end):
                            m.d.sync += hi.eq(hi + 1)
                            m.next = "PLANE"
                        with m.Elif(~kv & has_v):
                            m.d.sync += [kv.eq(1), hi.eq(head_range.first)]
                            m.next = "PLANE"
                        with m.Elif(li + 1 < desc.layer0 + desc.layer_count()):
                            m.d.sync += [li.eq(li + 1), kv.eq(~has_k), hi.eq(head_range.first)]
                            m.next = "PLANE"
                        with m.Else():
                            m.next = "FLUSH"
                    with m.Else():
                        m.next = "FLUSH"
                with m.Elif(is_g | is_a):
                    m.d.sync += [waddr.eq(desc.a + (idx << lg_entry)),
                                 mul_a.eq(Mux(is_g, ntok, pos & bs_mask)), mul_b.eq(Mux(is_g, row_len, ts))]
                    with m.If(idx >= desc.d):
                        raise_error(Err.POS_RANGE, desc.a + (idx << lg_entry))
                        m.next = "STOP"
                    with m.Elif(is_g):
                        m.next = "TBL"
                    with m.Else():
                        m.next = "LOOKUP"
                with m.Elif(is_bc):
                    m.d.sync += waddr.eq(desc.a + (j << lg_pair))
                    m.next = "LOOKUP"
                with m.Elif(desc.op == Op.COPY):
                    m.d.sync += [s_src.eq(scur), s_dst.eq(dcur), s_len.eq(desc.count), s_fill.eq(0)]
                    m.next = "EMIT"
                with m.Else():   # FILL
                    m.d.sync += [s_src.eq(0), s_dst.eq(desc.b), s_len.eq(desc.count), s_fill.eq(1)]
                    m.next = "EMIT"
            with m.State("TBL"):
                # GATHER walks its table in order: entries come from the prefetch FIFO, whose
                # beat is taken once its last entry is used (or the table ends, or on an error).
                m.d.comb += self.table.ready.eq((table_word == B // TABLE_ENTRY_BYTES - 1) | (j + 1 == self.fetch_entries)
                                                | self.table.payload.err | err)
                with m.If(self.table.valid):
                    m.d.sync += [x0.eq(self.table.payload.data.word_select(table_word, 32)), x1.eq(0)]
                    with m.If(self.table.payload.err | err):
                        with m.If(self.table.payload.err):
                            raise_error(Err.TABLE_ERR, waddr)
                        m.next = "STOP"
                    with m.Else():
                        m.next = "CHECK"
            with m.State("LOOKUP"):
                with m.If(cache_valid & (cache_tag == waddr[lgB:])):
                    m.d.sync += [x0.eq(cache_data.word_select(word_idx, 32)),
                                 x1.eq(cache_data.word_select(word_idx | 1, 32))]
                    m.next = "CHECK"
                with m.Else():
                    m.d.sync += [self.lookup.valid.eq(1), self.lookup.payload.eq(Cat((waddr & ~(B - 1))[:addr_w], Const(0, 8)))]
                    m.next = "LOOKUP_WAIT"
            with m.State("LOOKUP_WAIT"):
                with m.If(self.lookup_r.valid):
                    m.d.sync += [cache_data.eq(self.lookup_r.data), cache_tag.eq(waddr[lgB:]),
                                 cache_valid.eq(~self.lookup_r.err)]
                    with m.If(self.lookup_r.err):
                        m.d.comb += [self.error.valid.eq(1), self.error.code.eq(Err.TABLE_ERR),
                                     self.error.addr.eq(waddr)]
                        m.next = "STOP"
                    with m.Else():
                        m.next = "LOOKUP"
            with m.State("CHECK"):
                # Products are registered here and used in SEG (one multiplier stage per cycle).
                m.d.sync += [
                    prod_a.eq(x0 * Mux(is_bc & src_host, desc.d, pool.block_stride)),
                    prod_b.eq(x1 * Mux(dst_host, desc.d, pool.block_stride)),
                    tokoff.eq(mul_a * mul_b),
                    t_cnt.eq(0), t_off.eq(0), t_sub.eq(0),
                ]
                with m.If(err):
                    m.next = "STOP"
                with m.Elif(skip):
                    m.next = "SKIP"
                with m.Elif(bad):
                    raise_error(Err.BAD_BLOCK, waddr)
                    m.next = "STOP"
                with m.Else():
                    m.next = "SEG"
            with m.State("SKIP"):
                # tokoff is valid now (registered in CHECK)
                m.next = "ADVANCE"
            with m.State("SEG"):
                m.d.sync += s_fill.eq(0)
                with m.Switch(desc.op):
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
                            s_src.eq(Mux(src_host, desc.b + prod_a + hoff, plane_base + prod_a)),
                            s_dst.eq(Mux(dst_host, desc.b + prod_b + hoff, plane_base + prod_b)),
                            s_len.eq(pool.block_bytes),
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
                    raise_error(Err.MISALIGNED, s_src)
                    m.next = "STOP"
                with m.Elif(s_len == 0):
                    next_token_or_item()
                with m.Elif(contiguous):
                    m.d.sync += p_len.eq(p_len + s_len)
                    next_token_or_item()
                with m.Elif(~pv | can_push):
                    m.d.comb += push.eq(pv)      # the pending segment leaves, this one takes its place
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
                    m.d.comb += [push.eq(1), push_last.eq(1)]
                    m.d.sync += pv.eq(0)
                    m.next = "IDLE"
            with m.State("STOP"):
                # An error stops the descriptor: the pending segment is dropped unissued.
                m.d.sync += pv.eq(0)
                with m.If(~self.lookup.valid & ~self.fetch_busy):
                    m.next = "IDLE"
        return m
