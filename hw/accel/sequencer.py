"""A tile's sequencer: fetches its program from HBM and issues each instruction to its unit.

The program is a sequence of :data:`~.isa.Instr` words (``hw/accel/isa.py``). The sequencer
issues in program order, one instruction per cycle at best (LOAD and STORE take two: operand
products, then checks and issue), into the units' command streams; the units then run concurrently,
each in its own command order. The sequencer keeps, per unit, the byte address of every
command it has issued and not yet seen the status of (at most ``outstanding``), so an error
status names the instruction that caused it.

Synchronisation is explicit, as the compiler writes it: data between a DMA move and a unit
command meet on the unit's stream (a GEMM ``LOAD_B`` takes the beats a ``LOAD gemm_b`` brings);
``FENCE units`` waits until the units in the mask have answered every command issued so far;
``SIGNAL``/``WAIT`` use the shared :class:`~.semaphores.SemaphoreBank`; ``END`` waits for every
unit, then reports DONE.

Instruction fetch: a prefetch FIFO of ``fetch_depth`` words, filled by AXI4 INCR bursts of up
to ``fetch_burst`` beats that never leave an aligned ``32 * fetch_burst``-byte block (so never
a 4 KiB boundary), one burst in flight at a time. A REPEAT iteration (and a skipped body)
redirects the fetch: the FIFO is cleared and the R beats of the burst in flight are dropped, so
each redirect costs one fetch round trip (``L_fetch`` cycles) before the next instruction issues.

Errors (:class:`~.isa.ErrCode`) stop the program: the first one sets ``err_code`` and
``err_pc``; the sequencer then stops issuing, raises ``dma_abort`` until ``dma_busy`` falls
(every AXI transaction of the tile's DMA has completed), pulses ``unit_reset`` (the tile resets
its GEMM engine, vector unit and stream adapters, so no unit is left waiting for data that
will not come) and enters ERROR. A LOAD/STORE window outside ``[0, hbm_bytes)`` is refused
before it is issued (RANGE), so nothing is read or written for it.

Latency: ``start`` to the first instruction issued is one fetch round trip plus 2 cycles.
Throughput: one instruction per cycle (LOAD/STORE: one per 2 cycles) while the prefetch FIFO
holds instructions and the target unit takes commands; fetch supplies ``fetch_burst`` words per
``L_fetch + fetch_burst`` cycles.

Members
-------
m_axi : Out(AXI4Signature(addr_width, 256, id_width))
    Instruction fetch: reads only (AR, R; AW/W idle, ``bready`` high). ``rready`` is always 1.
start : In(1)
    Pulse: begin the program at ``prog_base`` (low 5 bits ignored) unless RUNNING.
abort : In(1)
    Pulse: stop a running program with ABORT.
state : Out(SeqState); err_code : Out(ErrCode); err_pc : Out(addr_width)
retired : Out(32)
    Instructions issued since ``start``.
m_load, m_store : Out(stream.Signature(Move))
    Resolved moves (the REPEAT offset applied, ``iter_stride`` 0, ``port`` checked).
s_load_sts, s_store_sts : In(stream.Signature(2))
    One AXI response code per move, in move order (OKAY, or the worst of the move).
m_gemm : Out(AXIStreamSignature(64)); s_gemm_sts : In(AXIStreamSignature(8))
m_vpu : Out(AXIStreamSignature(128)); s_vpu_sts : In(AXIStreamSignature(16))
m_kv : Out(stream.Signature(256))
    KV-cache DMA descriptors; ``kv_busy`` (the KV-cache DMA has work) and ``kv_error`` (it
    reported an error) come back as levels.
m_post, m_take : Out(stream.Signature(SemRequest))
dma_abort : Out(1); dma_busy : In(1); unit_reset : Out(1)
"""

from amaranth.hdl import Cat, Const, Module, Mux, ResetInserter, Signal, signed
from amaranth.lib import data, enum, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..axi import AXI4Signature, AXIStreamSignature, Burst, Resp
from ..gemm import StatusWord as GemmStatus
from ..params import check_int
from ..vpu.layouts import StatusWord as VpuStatus
from .isa import (ATOM_BYTES, INSTR_BITS, INSTR_BYTES, MAX_BEAT_LOG2, ErrCode, Instr, LoadPort,
                  Move, Opcode, StorePort, Unit)
from .semaphores import SemRequest


__all__ = ["SeqState", "Sequencer"]


class SeqState(enum.Enum, shape=2):
    IDLE = 0
    RUNNING = 1
    DONE = 2
    ERROR = 3


class _PendingUnit:
    """The byte addresses of a unit's commands awaiting their status (a FIFO): ``room`` when
    another may issue, ``idle`` when none is pending; ``pop``/``pc_out`` on a status."""

    def __init__(self, m, name, pc_bits, depth, clear):
        q = fifo.SyncFIFOBuffered(width=pc_bits, depth=depth)
        m.submodules[name] = ResetInserter(clear)(q)
        self.push, self.pc_in = q.w_en, q.w_data
        self.pop, self.pc_out = q.r_en, q.r_data
        self.room, self.idle = q.w_rdy, q.level == 0


class Sequencer(wiring.Component):
    def __init__(self, *, addr_width=34, hbm_bytes=None, id_width=4, fetch_depth=16,
                 fetch_burst=8, outstanding=8, load_beats=None, store_beats=None):
        # Beat sizes each port takes: {port: set of beat_log2}; a move with another size is
        # BAD_OPERAND (its beats would not be the unit's, and the unit would wait for ever).
        every = set(range(MAX_BEAT_LOG2 + 1))
        self._load_beats = load_beats or {p: every for p in LoadPort}
        self._store_beats = store_beats or {p: every for p in StorePort}
        self._aw = check_int("addr_width", addr_width, 12, 40)
        self._hbm = hbm_bytes if hbm_bytes is not None else 1 << addr_width
        check_int("hbm_bytes", self._hbm, ATOM_BYTES, 1 << addr_width)
        self._iw = check_int("id_width", id_width, 1, 16)
        self._burst = check_int("fetch_burst", fetch_burst, 1, 16)
        self._depth = check_int("fetch_depth", fetch_depth, fetch_burst, 256)
        self._out = check_int("outstanding", outstanding, 1, 64)
        super().__init__({
            "m_axi": Out(AXI4Signature(addr_width=addr_width, data_width=INSTR_BITS, id_width=id_width)),
            "start": In(1), "prog_base": In(addr_width), "abort": In(1),
            "state": Out(SeqState), "err_code": Out(ErrCode), "err_pc": Out(addr_width),
            "retired": Out(32),
            "m_load": Out(stream.Signature(Move)), "s_load_sts": In(stream.Signature(2)),
            "m_store": Out(stream.Signature(Move)), "s_store_sts": In(stream.Signature(2)),
            "m_gemm": Out(AXIStreamSignature(data_width=64, keep=False, last=False)),
            "s_gemm_sts": In(AXIStreamSignature(data_width=8, keep=False, last=False)),
            "m_vpu": Out(AXIStreamSignature(data_width=128, keep=False, last=False)),
            "s_vpu_sts": In(AXIStreamSignature(data_width=16, keep=False, last=False)),
            "m_kv": Out(stream.Signature(256)), "kv_busy": In(1), "kv_error": In(1),
            "m_post": Out(stream.Signature(SemRequest)), "m_take": Out(stream.Signature(SemRequest)),
            "dma_abort": Out(1), "dma_busy": In(1), "unit_reset": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        AW, B = self._aw, self._burst
        axi = self.m_axi
        running = self.state == SeqState.RUNNING

        # ---- instruction fetch -----------------------------------------------------------
        # Words enter with their fetch error bit; the FIFO is cleared on every redirect.
        redirect = Signal()              # clear the FIFO and fetch from redirect_pc
        redirect_pc = Signal(AW)
        fq = fifo.SyncFIFOBuffered(width=INSTR_BITS + 1, depth=self._depth)
        m.submodules.fetch_q = ResetInserter(redirect)(fq)
        fetch_pc = Signal(AW)            # next address to fetch
        ar_addr = Signal(AW)
        ar_beats = Signal(range(B + 1))
        ar_pending = Signal()
        inflight = Signal(range(self._depth + 1))   # beats requested (AR issued), not arrived
        drop = Signal(range(self._depth + 1))       # of those, beats to discard (stale)
        halting = Signal()                          # an error is being handled
        blk = fetch_pc[5:5 + (B - 1).bit_length()] if B > 1 else Const(0, 1)
        beats = Signal(range(B + 1))
        m.d.comb += beats.eq(B - blk)
        room = Signal(range(2 * self._depth + 1))
        m.d.comb += room.eq(self._depth - fq.level - inflight)

        m.d.comb += [
            axi.arid.eq(0), axi.araddr.eq(ar_addr), axi.arlen.eq(ar_beats - 1),
            axi.arsize.eq(5), axi.arburst.eq(Burst.INCR), axi.arvalid.eq(ar_pending),
            axi.rready.eq(1), axi.bready.eq(1),
        ]
        r_beat = axi.rvalid
        issue_ar = ~ar_pending & running & ~halting & ~redirect & (inflight == 0) & (room >= beats)
        with m.If(ar_pending & axi.arready):
            m.d.sync += ar_pending.eq(0)
        with m.If(issue_ar):
            m.d.sync += [ar_pending.eq(1), ar_addr.eq(Cat(Const(0, 5), fetch_pc[5:])),
                         ar_beats.eq(beats), fetch_pc.eq(fetch_pc + beats * INSTR_BYTES),
                         inflight.eq(inflight + beats - r_beat)]
        with m.Else():
            m.d.sync += inflight.eq(inflight - r_beat)
        # A redirect drops every beat not yet arrived (an AR cannot be withdrawn once raised).
        with m.If(redirect):
            m.d.sync += [fetch_pc.eq(redirect_pc), drop.eq(inflight - r_beat)]
        with m.Elif(r_beat & (drop != 0)):
            m.d.sync += drop.eq(drop - 1)
        m.d.comb += [fq.w_data.eq(Cat(axi.rdata, axi.rresp != Resp.OKAY)),
                     fq.w_en.eq(r_beat & (drop == 0) & ~redirect)]

        head = data.View(Instr, fq.r_data[:INSTR_BITS])
        head_err = fq.r_data[INSTR_BITS]
        head_valid = fq.r_rdy
        pc = Signal(AW)                  # byte address of the head word

        # ---- pending work per unit ---------------------------------------------------------
        clear = Signal()                 # unit_reset: pending lists forget everything
        units = {name: _PendingUnit(m, f"pending_{name}", AW, self._out, clear)
                 for name in ("load", "store", "gemm", "vpu")}
        sts = {"load": (self.s_load_sts.valid, self.s_load_sts.payload != Resp.OKAY, ErrCode.LOAD),
               "store": (self.s_store_sts.valid, self.s_store_sts.payload != Resp.OKAY, ErrCode.STORE),
               "gemm": (self.s_gemm_sts.tvalid,
                        data.View(GemmStatus, self.s_gemm_sts.tdata).code.as_value() != 0, ErrCode.UNIT),
               "vpu": (self.s_vpu_sts.tvalid,
                       data.View(VpuStatus, self.s_vpu_sts.tdata).code.as_value() != 0, ErrCode.UNIT)}
        m.d.comb += [self.s_load_sts.ready.eq(1), self.s_store_sts.ready.eq(1),
                     self.s_gemm_sts.tready.eq(1), self.s_vpu_sts.tready.eq(1)]

        # First error wins; `fault` reports one this cycle (from the decoder or a status).
        fault, fault_code, fault_pc = Signal(), Signal(ErrCode), Signal(AW)
        for name, (valid, bad, code) in reversed(sts.items()):
            u = units[name]
            m.d.comb += u.pop.eq(valid)
            with m.If(valid & bad):
                m.d.comb += [fault.eq(1), fault_code.eq(code), fault_pc.eq(u.pc_out)]
        last_kv_pc = Signal(AW)
        with m.If(self.kv_error & running & ~halting):
            m.d.comb += [fault.eq(1), fault_code.eq(ErrCode.KV), fault_pc.eq(last_kv_pc)]

        # ---- REPEAT state ----------------------------------------------------------------
        loop_on = Signal()
        loop_start, loop_end = Signal(AW), Signal(AW)
        loop_iter, loop_count = Signal(16), Signal(16)

        # advance: pop the head, step the PC (closing a loop iteration where it ends)
        advance = Signal()
        next_pc = Signal(AW)
        m.d.comb += next_pc.eq(pc + INSTR_BYTES)
        with m.If(advance):
            m.d.sync += self.retired.eq(self.retired + 1)
            with m.If(loop_on & (next_pc == loop_end)):
                with m.If(loop_iter + 1 < loop_count):
                    m.d.sync += [loop_iter.eq(loop_iter + 1), pc.eq(loop_start)]
                    m.d.comb += [redirect.eq(1), redirect_pc.eq(loop_start)]
                with m.Else():
                    m.d.sync += [loop_on.eq(0), pc.eq(next_pc)]
            with m.Else():
                m.d.sync += pc.eq(next_pc)
        m.d.comb += fq.r_en.eq(advance)

        # ---- move operands: products in one cycle, checks and issue in the next --------------
        mv = head.body.move
        off = Signal(signed(50))         # iteration offset
        span = Signal(48)                # (rows - 1) * stride
        eff = Signal(signed(52))
        m.d.sync += [off.eq(Mux(loop_on, loop_iter * mv.iter_stride, 0)),
                     span.eq((mv.rows - 1) * mv.stride)]
        m.d.comb += eff.eq(mv.addr + off)
        end = Signal(signed(56))
        m.d.comb += end.eq(eff + span + mv.row_bytes)
        is_load = head.op == Opcode.LOAD
        load_ok, store_ok = Const(0), Const(0)
        for port, sizes in self._load_beats.items():
            load_ok |= (mv.port == port.value) & Const(sum(1 << b for b in sizes), 8).bit_select(mv.beat_log2, 1)
        for port, sizes in self._store_beats.items():
            store_ok |= (mv.port == port.value) & Const(sum(1 << b for b in sizes), 8).bit_select(mv.beat_log2, 1)
        port_ok = Mux(is_load, load_ok, store_ok)
        multi = mv.rows > 1
        operand_ok = (port_ok & (mv.rows != 0) & (mv.row_bytes != 0)
                      & (eff[:5] == 0) & (~multi | ((mv.stride[:5] == 0) & (mv.row_bytes <= mv.stride))))
        range_ok = (eff >= 0) & (end <= self._hbm)
        resolved = Signal(Move)
        m.d.comb += [resolved.eq(mv), resolved.addr.eq(eff[:AW]), resolved.iter_stride.eq(0)]
        m.d.comb += [self.m_load.payload.eq(resolved), self.m_store.payload.eq(resolved)]

        # ---- unit command payloads -------------------------------------------------------
        m.d.comb += [self.m_gemm.tdata.eq(head.body.gemm.cmd), self.m_vpu.tdata.eq(head.body.vpu.cmd),
                     self.m_kv.payload.eq(fq.r_data[:INSTR_BITS]),
                     self.m_post.payload.sem.eq(head.body.sem.sem),
                     self.m_post.payload.count.eq(head.body.sem.count),
                     self.m_take.payload.sem.eq(head.body.sem.sem),
                     self.m_take.payload.count.eq(head.body.sem.count)]
        for name in units:
            m.d.comb += units[name].pc_in.eq(pc)

        wait_cnt = Signal(32)
        fence = head.body.fence.units.as_value()
        idle_of = {Unit.LOAD: units["load"].idle, Unit.STORE: units["store"].idle,
                   Unit.GEMM: units["gemm"].idle, Unit.VPU: units["vpu"].idle, Unit.KV: ~self.kv_busy}
        fenced = Const(1)
        for unit, idle in idle_of.items():
            fenced &= ~fence[unit.value.bit_length() - 1] | idle
        all_idle = (units["load"].idle & units["store"].idle & units["gemm"].idle
                    & units["vpu"].idle & ~self.kv_busy)

        # decoder faults
        dec_fault, dec_code = Signal(), Signal(ErrCode)
        rp = head.body.repeat

        with m.FSM(name="seq"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.comb += [redirect.eq(1), redirect_pc.eq(self.prog_base & ~0x1F), clear.eq(1)]
                    m.d.sync += [pc.eq(self.prog_base & ~0x1F), self.state.eq(SeqState.RUNNING), halting.eq(0),
                                 self.err_code.eq(ErrCode.NONE), self.err_pc.eq(0),
                                 self.retired.eq(0), loop_on.eq(0)]
                    m.next = "ISSUE"

            with m.State("ISSUE"):
                with m.If(head_valid & ~fault):
                    with m.If(head_err):
                        m.d.comb += [dec_fault.eq(1), dec_code.eq(ErrCode.FETCH)]
                    with m.Else():
                        with m.Switch(head.op):
                            with m.Case(Opcode.NOP):
                                m.d.comb += advance.eq(1)
                            with m.Case(Opcode.END):
                                with m.If(all_idle):
                                    m.d.sync += self.state.eq(SeqState.DONE)
                                    m.next = "IDLE"
                            with m.Case(Opcode.LOAD, Opcode.STORE):
                                m.next = "MOVE"         # the products are ready next cycle
                            with m.Case(Opcode.GEMM):
                                m.d.comb += self.m_gemm.tvalid.eq(units["gemm"].room)
                                with m.If(self.m_gemm.tready & units["gemm"].room):
                                    m.d.comb += [units["gemm"].push.eq(1), advance.eq(1)]
                            with m.Case(Opcode.VPU):
                                m.d.comb += self.m_vpu.tvalid.eq(units["vpu"].room)
                                with m.If(self.m_vpu.tready & units["vpu"].room):
                                    m.d.comb += [units["vpu"].push.eq(1), advance.eq(1)]
                            with m.Case(Opcode.KV):
                                # its descriptor must be the next word of the same loop body
                                with m.If(loop_on & (next_pc == loop_end)):
                                    m.d.comb += [dec_fault.eq(1), dec_code.eq(ErrCode.BAD_OPERAND)]
                                with m.Else():
                                    m.d.sync += last_kv_pc.eq(pc)
                                    m.d.comb += advance.eq(1)
                                    m.next = "KV_DESC"
                            with m.Case(Opcode.SIGNAL):
                                m.d.comb += self.m_post.valid.eq(1)
                                with m.If(self.m_post.ready):
                                    m.d.comb += advance.eq(1)
                            with m.Case(Opcode.WAIT):
                                m.d.comb += self.m_take.valid.eq(1)
                                with m.If(self.m_take.ready):
                                    m.d.comb += advance.eq(1)
                                    m.d.sync += wait_cnt.eq(0)
                                with m.Elif((head.body.sem.timeout != 0) &
                                            (wait_cnt + 1 >= head.body.sem.timeout)):
                                    m.d.comb += [dec_fault.eq(1), dec_code.eq(ErrCode.TIMEOUT)]
                                with m.Else():
                                    m.d.sync += wait_cnt.eq(wait_cnt + 1)
                            with m.Case(Opcode.FENCE):
                                with m.If(fenced):
                                    m.d.comb += advance.eq(1)
                            with m.Case(Opcode.REPEAT):
                                with m.If(loop_on | (rp.length == 0)):
                                    m.d.comb += [dec_fault.eq(1), dec_code.eq(ErrCode.BAD_OPERAND)]
                                with m.Elif(rp.count == 0):
                                    skip = pc + INSTR_BYTES * (rp.length + 1)
                                    m.d.sync += [pc.eq(skip), self.retired.eq(self.retired + 1)]
                                    m.d.comb += [redirect.eq(1), redirect_pc.eq(skip)]
                                with m.Else():
                                    m.d.sync += [loop_on.eq(1), loop_iter.eq(0), loop_count.eq(rp.count),
                                                 loop_start.eq(next_pc),
                                                 loop_end.eq(next_pc + INSTR_BYTES * rp.length)]
                                    m.d.comb += advance.eq(1)
                            with m.Default():
                                m.d.comb += [dec_fault.eq(1), dec_code.eq(ErrCode.BAD_OPCODE)]
                with m.If(self.abort):
                    m.d.comb += [dec_fault.eq(1), dec_code.eq(ErrCode.ABORT)]
                with m.If(fault | dec_fault):
                    m.next = "DRAIN"

            with m.State("MOVE"):
                port = Mux(is_load, self.m_load.ready, self.m_store.ready)
                room_ok = Mux(is_load, units["load"].room, units["store"].room)
                with m.If(~operand_ok):
                    m.d.comb += [dec_fault.eq(1), dec_code.eq(ErrCode.BAD_OPERAND)]
                with m.Elif(~range_ok):
                    m.d.comb += [dec_fault.eq(1), dec_code.eq(ErrCode.RANGE)]
                with m.Elif(~fault & room_ok):
                    m.d.comb += [self.m_load.valid.eq(is_load), self.m_store.valid.eq(~is_load)]
                    with m.If(port):
                        m.d.comb += [advance.eq(1), units["load"].push.eq(is_load),
                                     units["store"].push.eq(~is_load)]
                        m.next = "ISSUE"
                with m.If(self.abort):
                    m.d.comb += [dec_fault.eq(1), dec_code.eq(ErrCode.ABORT)]
                with m.If(fault | dec_fault):
                    m.next = "DRAIN"

            with m.State("KV_DESC"):
                with m.If(head_valid & ~fault):
                    with m.If(head_err):
                        m.d.comb += [dec_fault.eq(1), dec_code.eq(ErrCode.FETCH)]
                    with m.Else():
                        m.d.comb += self.m_kv.valid.eq(1)
                        with m.If(self.m_kv.ready):
                            m.d.comb += advance.eq(1)
                            m.next = "ISSUE"
                with m.If(self.abort):
                    m.d.comb += [dec_fault.eq(1), dec_code.eq(ErrCode.ABORT)]
                with m.If(fault | dec_fault):
                    m.next = "DRAIN"

            with m.State("DRAIN"):
                # Stop the DMA, wait for its AXI transactions to end, then reset the units.
                m.d.comb += self.dma_abort.eq(1)
                with m.If(~self.dma_busy):
                    m.d.comb += [self.unit_reset.eq(1), clear.eq(1)]
                    m.d.sync += [self.state.eq(SeqState.ERROR), halting.eq(0)]
                    m.next = "IDLE"

        # record the first fault
        # The first fault is recorded; `halting` freezes it while DRAIN runs (later statuses of
        # the aborted work are ignored). The state reads RUNNING until the units are reset.
        with m.If((fault | dec_fault) & running & ~halting):
            m.d.sync += [self.err_code.eq(Mux(dec_fault, dec_code, fault_code)),
                         self.err_pc.eq(Mux(dec_fault, pc, fault_pc)), halting.eq(1)]
        return m
