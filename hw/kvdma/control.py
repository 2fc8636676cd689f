"""The ``kvdma`` control: CSRs, descriptor intake (ring or push port), checks, completion."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..axi import AXI4LiteSignature
from ..csr import CSRBlock, Register
from .descriptors import DESC_BYTES, PAIR_BYTES, POOL_FIELDS, STATUS_BYTES, TABLE_ENTRY_BYTES, Descriptor, Err, Flag, Geometry, HeadRange, Layout, Op, Status, \
    csr_names, pool_reg
from .links import ITEM_WIDTH, BBeatSignature, ErrorSignature, RBeatSignature, address_layout, pool_config_layout, \
    w_beat_layout


__all__ = ["Control", "csr_registers"]

MAX_BLOCK_SIZE_LOG2 = 8     # 256-token blocks


def csr_registers(pools):
    """The engine's CSRs (:data:`hw.kvdma.descriptors.CSR_NAMES` order, 4 bytes apart)."""
    widths = {"ring_size_log2": 5, "reserved13": 1, "reserved14": 1, "reserved15": 1}
    ro = {"ring_tail", "status", "done_count", "err_code", "err_addr", "err_item",
          "irq_status", "info", "reserved13", "reserved14", "reserved15"}
    return [Register(name, "ro" if name in ro else "rw", widths.get(name, 32),
                     strobe=(name == "ack")) for name in csr_names(pools)]


class Control(wiring.Component):
    """Takes descriptors one at a time, checks them, starts the generator, writes the status.

    States: IDLE -> (RING: read the 32-byte slot, ID 2) -> START (sample the descriptor's pool
    and derive block mask, block bytes, head and plane counts) -> CFG (opcode, pool,
    configuration, alignment and head-range checks) -> RUN (generator) -> DRAIN (until the data
    mover and the table prefetch are idle) -> (STATUS: the 8-byte status write, ID 1) ->
    FINISH. Fixed cost per descriptor: 5 cycles from push to the generator's start (7 + a
    memory latency from a ring slot), DRAIN's wait for the last write response, and the status
    write's round trip. A descriptor is taken only when the previous one has completed.

    Parameters
    ----------
    addr_width, data_width, pools : int
        As :class:`hw.kvdma.engine.KVDMA`.
    info : int
        Value of the read-only ``info`` CSR.

    Members
    -------
    s_axil : In(AXI4LiteSignature(addr_width=8, data_width=32))
        CSR port (:class:`hw.csr.CSRBlock`, 1-cycle response).
    s_desc : In(stream.Signature(256))
        Descriptor push port: ready when idle, not halted and no ring descriptor is pending.
    desc : Out(Descriptor)
        The running descriptor.
    pool : Out(pool_config_layout(addr_width))
        Its pool, sampled in START (valid from CFG on).
    start : Out(1)
        One cycle: the generator (and a GATHER's table prefetch) starts.
    gen_done, mover_idle, prefetch_idle : In(1)
        The generator is idle; the data mover and the prefetch have nothing left.
    err, err_code, err_addr, err_item : In(1), In(8), In(addr_width), In(32)
        The error latch.
    clear : Out(1)
        The descriptor is finished: clear the error latch.
    ar : Out(stream.Signature(address_layout(addr_width)))
        Ring slot read, registered, held until accepted.
    r : In(RBeatSignature(data_width))
        R beats of ID 2.
    status_write : Out(1)
        The status write owns AW and W (STATUS state).
    aw : Out(stream.Signature(address_layout(addr_width)))
        The status write's address (ID 1).
    w : Out(stream.Signature(w_beat_layout(data_width)))
        The status word, one beat.
    b : In(BBeatSignature())
        B responses of ID 1.
    error : Out(ErrorSignature(addr_width))
        Descriptor check failures, ring-slot read and status-write errors.
    irq : Out(1)
        ``ctrl.irq_enable & (irq_status != 0)``.
    """

    def __init__(self, *, addr_width, data_width, pools, info):
        self._aw, self._dw, self._pools, self._info = addr_width, data_width, pools, info
        super().__init__({
            "s_axil": In(AXI4LiteSignature(addr_width=8, data_width=32)),
            "s_desc": In(stream.Signature(Descriptor.as_shape().size)),
            "desc": Out(Descriptor),
            "pool": Out(pool_config_layout(addr_width)),
            "start": Out(1),
            "gen_done": In(1), "mover_idle": In(1), "prefetch_idle": In(1),
            "err": In(1), "err_code": In(8), "err_addr": In(addr_width), "err_item": In(ITEM_WIDTH),
            "clear": Out(1),
            "ar": Out(stream.Signature(address_layout(addr_width))),
            "r": In(RBeatSignature(data_width)),
            "status_write": Out(1),
            "aw": Out(stream.Signature(address_layout(addr_width))),
            "w": Out(stream.Signature(w_beat_layout(data_width))),
            "b": In(BBeatSignature()),
            "error": Out(ErrorSignature(addr_width)),
            "irq": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        addr_w, dw = self._aw, self._dw
        B = dw // 8
        lgB = exact_log2(B)
        desc, pool, err = self.desc, self.pool, self.err

        m.submodules.csr = csr = CSRBlock(registers=csr_registers(self._pools), addr_width=8, data_width=32)
        wiring.connect(m, wiring.flipped(self.s_axil), csr.s_axil)
        m.d.comb += csr.info.eq(self._info)

        head_range = HeadRange(desc.e)
        is_g, is_a, is_bc = desc.op == Op.GATHER, desc.op == Op.APPEND, desc.op == Op.BLOCK_COPY
        planar = is_g | is_a | is_bc
        has_k, has_v = (desc.flags & Flag.K).any(), (desc.flags & Flag.V).any()
        to_stream = (desc.flags & Flag.STREAM).any()

        # The descriptor's pool registers are sampled when it starts (START), together with the
        # values derived from them: the CSR multiplexer and the variable shift stay off the
        # generator's address paths, and software may reprogram one pool while a descriptor on
        # another runs.
        sel = {f: (getattr(csr, pool_reg(0, f)) if self._pools == 1
                   else Array(getattr(csr, pool_reg(k, f)) for k in range(self._pools))[desc.pool])
               for f in POOL_FIELDS}
        head_bad = Signal()
        status_misaligned = desc.status[:exact_log2(STATUS_BYTES)] != 0
        op_bad, cfg_bad, base_bad, pool_bad = Signal(), Signal(), Signal(), Signal()
        m.d.comb += [
            op_bad.eq((desc.op > Op.FILL) | (to_stream & ~is_g)),
            pool_bad.eq(planar & (desc.pool >= self._pools)),
            cfg_bad.eq(planar & (pool.geometry.block_size_log2 > MAX_BLOCK_SIZE_LOG2)),
            base_bad.eq(status_misaligned | ((is_g | is_a) & (desc.a[:exact_log2(TABLE_ENTRY_BYTES)] != 0))
                        | (is_bc & (desc.a[:exact_log2(PAIR_BYTES)] != 0))),
        ]

        halted = Signal()
        from_ring = Signal()
        ring_tail = Signal(32)
        done_count = Signal(32)
        irq_status = Signal(2)             # bit 0 done, bit 1 error
        last_code, last_addr, last_item = Signal(8), Signal(addr_w), Signal(ITEM_WIDTH)
        ring_mask = Signal(32)
        m.d.comb += ring_mask.eq((Const(1, 33) << csr.ring_size_log2) - 1)
        ring_pending = csr.ctrl[0] & ((csr.ring_head & ring_mask) != ring_tail)
        ring_addr = Signal(addr_w)
        m.d.comb += ring_addr.eq(csr.ring_base + (ring_tail << exact_log2(DESC_BYTES)))
        ring_beats = max(1, DESC_BYTES // B)
        ring_beat = Signal(range(ring_beats + 1))
        busy = Signal()
        m.d.comb += [csr.ring_tail.eq(ring_tail), csr.done_count.eq(done_count),
                     csr.irq_status.eq(irq_status), csr.err_code.eq(last_code),
                     csr.err_addr.eq(last_addr), csr.err_item.eq(last_item),
                     csr.status.eq(Cat(busy, halted, Const(0, 6), last_code)),
                     self.irq.eq(csr.ctrl[1] & (irq_status != 0))]
        with m.If(csr.ack_wstb):
            m.d.sync += irq_status.eq(irq_status & ~csr.ack[:2])
            with m.If(csr.ack[1]):
                m.d.sync += halted.eq(0)

        # The status word, written once per descriptor (when it names a status address).
        status_word = Signal(Status)
        m.d.comb += [status_word.code.eq(Mux(err, self.err_code, Err.OK)), status_word.op.eq(desc.op),
                     status_word.done.eq(1), status_word.item.eq(Mux(err, self.err_item, 0))]
        m.d.comb += [
            self.aw.payload.eq(Cat((desc.status & ~(B - 1))[:addr_w], Const(0, 8))),
            self.w.payload.eq(Cat(Cat(*([status_word.as_value()] * (B // STATUS_BYTES))),
                                  (Const(0xFF, B) << desc.status[:lgB])[:B], Const(1, 1), Const(0, 1))),
        ]
        with m.If(self.ar.ready):
            m.d.sync += self.ar.valid.eq(0)

        def raise_error(code, addr):
            m.d.comb += [self.error.valid.eq(1), self.error.code.eq(code), self.error.addr.eq(addr)]
        m.d.comb += self.error.item.eq(0)

        with m.FSM(name="ctl") as ctl:
            with m.State("IDLE"):
                with m.If(~halted & ring_pending):
                    m.d.sync += [self.ar.valid.eq(1),
                                 self.ar.payload.eq(Cat((ring_addr & ~(B - 1))[:addr_w], Const(ring_beats - 1, 8))),
                                 ring_beat.eq(0), from_ring.eq(1)]
                    m.next = "RING"
                with m.Elif(~halted):
                    m.d.comb += self.s_desc.ready.eq(1)
                    with m.If(self.s_desc.valid):
                        m.d.sync += [desc.eq(self.s_desc.payload), from_ring.eq(0)]
                        m.next = "START"
            with m.State("RING"):
                with m.If(self.r.valid):
                    if B >= DESC_BYTES:
                        m.d.sync += desc.eq(self.r.data.word_select(ring_addr[exact_log2(DESC_BYTES):lgB],
                                                                    Descriptor.as_shape().size)
                                            if B > DESC_BYTES else self.r.data)
                    else:
                        m.d.sync += desc.as_value().word_select(ring_beat, dw).eq(self.r.data)
                    m.d.sync += ring_beat.eq(ring_beat + 1)
                    with m.If(self.r.err):
                        raise_error(Err.TABLE_ERR, ring_addr)
                    with m.If(self.r.last):
                        m.next = "START"
            with m.State("START"):
                # sample the pool; checked in CFG
                s_geo = Geometry(sel["geometry"])
                s_lg, s_hnd = s_geo.block_size_log2, s_geo.layout == Layout.HND
                s_heads = Mux(s_hnd & planar, Mux(head_range.num == 0, s_geo.heads - head_range.first,
                                                  head_range.num), 1)
                m.d.sync += [getattr(pool, f).eq(sel[f]) for f in POOL_FIELDS]
                m.d.sync += [
                    pool.block_mask.eq((Const(1, addr_w) << s_lg) - 1),
                    pool.block_bytes.eq(sel["token_stride"] << s_lg),
                    pool.heads.eq(s_heads), pool.head_end.eq(head_range.first + s_heads[:16]),
                    pool.planes.eq(desc.layer_count() * (has_k.as_unsigned() + has_v.as_unsigned()) * s_heads[:16]),
                    head_bad.eq(s_hnd & planar & Mux(head_range.num == 0, head_range.first >= s_geo.heads,
                                                     head_range.first + head_range.num > s_geo.heads)),
                ]
                with m.If(err):
                    # The ring slot could not be read: there is no trustworthy status address.
                    m.next = "FINISH"
                with m.Else():
                    m.next = "CFG"
            with m.State("CFG"):
                with m.If(op_bad | pool_bad | cfg_bad | base_bad | head_bad):
                    with m.If(~err):
                        bad_addr = Mux(op_bad | pool_bad | cfg_bad | ~base_bad, 0,
                                       Mux(status_misaligned, desc.status, desc.a))
                        raise_error(Mux(op_bad, Err.BAD_OPCODE, Mux(pool_bad, Err.BAD_POOL,
                                    Mux(cfg_bad, Err.BAD_CONFIG, Mux(base_bad, Err.MISALIGNED, Err.HEAD_RANGE)))),
                                    bad_addr)
                    m.next = "DRAIN"
                with m.Else():
                    m.d.comb += self.start.eq(1)
                    m.next = "RUN"
            with m.State("RUN"):
                with m.If(self.gen_done):
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                with m.If(self.mover_idle & self.gen_done & self.prefetch_idle):
                    # a misaligned status address is reported in the CSRs only
                    with m.If((desc.status != 0) & ~status_misaligned):
                        m.d.sync += [self.aw.valid.eq(1), self.w.valid.eq(1)]
                        m.next = "STATUS"
                    with m.Else():
                        m.next = "FINISH"
            with m.State("STATUS"):
                m.d.comb += self.status_write.eq(1)
                with m.If(self.aw.ready):
                    m.d.sync += self.aw.valid.eq(0)
                with m.If(self.w.ready):
                    m.d.sync += self.w.valid.eq(0)
                with m.If(self.b.valid):
                    with m.If(self.b.err):
                        raise_error(Err.WRITE_ERR, desc.status)
                    m.next = "FINISH"
            with m.State("FINISH"):
                m.d.comb += self.clear.eq(1)
                m.d.sync += [done_count.eq(done_count + 1), irq_status[0].eq(1)]
                with m.If(err):
                    m.d.sync += [halted.eq(1), irq_status[1].eq(1), last_code.eq(self.err_code),
                                 last_addr.eq(self.err_addr), last_item.eq(self.err_item)]
                with m.If(from_ring):
                    m.d.sync += ring_tail.eq((ring_tail + 1) & ring_mask)
                m.next = "IDLE"
        m.d.comb += busy.eq(~ctl.ongoing("IDLE"))
        return m
