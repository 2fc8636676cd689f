"""One HBM pseudo-channel controller: AXI4 subordinate, FR-FCFS scheduler with an age limit,
JEDEC timing enforcement, all-bank refresh with postponement, and a simple PHY command bus."""

import enum

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..axi import AXI4Signature, Burst, Resp
from .mapping import AddressMap
from .timing import HBMParams


__all__ = ["RowCmd", "ColCmd", "PHYSignature", "StatsSignature", "HBMController", "ATOM_BYTES",
           "ATOM_BITS", "ATOM_SIZE"]

ATOM_BYTES = 32
ATOM_BITS = ATOM_BYTES * 8
# AXI AxSIZE of a full-width beat (log2 of the bytes per beat); also the byte-offset bits of an atom.
ATOM_SIZE = ATOM_BYTES.bit_length() - 1


class RowCmd(enum.IntEnum):
    """Row command bus encodings (the row and column buses are separate, as in HBM)."""
    NOP = 0
    ACT = 1
    PRE = 2
    PREA = 3
    REF = 4
    REFPB = 5  # per-bank refresh (HBM2 "REFSB") of ``row_bank``


class ColCmd(enum.IntEnum):
    NOP = 0
    RD = 1
    WR = 2


def _bits(n):
    return max(1, (n - 1).bit_length())


class PHYSignature(wiring.Signature):
    """Controller-side command/data bus of one pseudo-channel (a DFI-like abstraction).

    Row bus: ``row_cmd`` (:class:`RowCmd`), ``row_bank`` (flat ``bg*banks_per_group+ba``; also
    the bank of REFPB), ``row_row``. Column bus: ``col_cmd`` (:class:`ColCmd`), ``col_bank``, ``col_col`` (atom in the
    row). A command is issued in every cycle its bus is not NOP (no handshake). Write data
    (``wr_valid``, ``wr_data``, ``wr_strb``: one 32-byte atom) is driven exactly ``cwl`` cycles
    after its WR; read data (``rd_valid``, ``rd_data``) arrives exactly ``cl`` cycles after its RD.
    """

    def __init__(self, timing):
        self.timing = timing
        super().__init__({
            "row_cmd": Out(3), "row_bank": Out(_bits(timing.banks)), "row_row": Out(_bits(timing.rows)),
            "col_cmd": Out(2), "col_bank": Out(_bits(timing.banks)), "col_col": Out(_bits(timing.columns)),
            "wr_valid": Out(1), "wr_data": Out(ATOM_BITS), "wr_strb": Out(ATOM_BYTES),
            "rd_valid": In(1), "rd_data": In(ATOM_BITS),
        })


STAT_NAMES = ("reads", "writes", "row_hits", "row_misses", "row_conflicts", "refreshes",
              "activates", "precharges")


class StatsSignature(wiring.Signature):
    """Free-running 32-bit event counters and the current queue levels (all ``Out``)."""

    def __init__(self, read_queue, write_queue):
        super().__init__({
            **{name: Out(32) for name in STAT_NAMES},
            "rq_level": Out(range(read_queue + 1)), "wq_level": Out(range(write_queue + 1)),
        })


class _Timer:
    """A "not before" down-counter: 0 means the guarded command may issue this cycle.

    An event that forbids the command for ``n`` cycles loads ``n - 1`` at the event's clock edge
    unless the counter already holds more, so each counter is the maximum of its constraints.
    """

    def __init__(self, m, name, loads):
        self.loads = [(cond, n - 1) for cond, n in loads if n - 1 > 0]
        top = max([v for _, v in self.loads], default=0)
        self.sig = Signal(range(top + 1), name=name)
        self.ready = self.sig == 0
        dec = Mux(self.sig == 0, 0, self.sig - 1)
        value = dec
        for cond, v in self.loads:
            value = Mux(cond & (value < v), v, value)
        m.d.sync += self.sig.eq(value)


def _oldest(m, name, bits, head, n):
    """``(any, index)`` of the set bit of ``bits`` (entry order) closest after ``head``.

    Queues are circular buffers allocated at the tail, so "closest after the head" is "oldest".
    """
    vec = Signal(n, name=f"{name}_vec")
    rot = Signal(n, name=f"{name}_rot")
    rel = Signal(range(n), name=f"{name}_rel")
    idx = Signal(range(n), name=f"{name}_idx")
    m.d.comb += [vec.eq(Cat(*bits)), rot.eq((Cat(vec, vec) >> head)[:n])]
    for k in reversed(range(n)):
        with m.If(rot[k]):
            m.d.comb += rel.eq(k)
    m.d.comb += idx.eq((rel + head)[:max(1, (n - 1).bit_length())])
    return vec.any(), idx


class HBMController(wiring.Component):
    """Controller of one HBM pseudo-channel.

    Requests arrive on an AXI4 subordinate port with 32-byte beats; every beat becomes one
    32-byte column access (an "atom"). Reads and writes wait in separate queues; the scheduler
    issues at most one row command (ACT/PRE/PREA/REF) and one column command (RD/WR) per cycle,
    every JEDEC constraint being held by "not before" counters per bank, per bank group and per
    channel (tRCD_RD/WR, tRP, tRAS, tRC, tCCD_S/L, tRRD_S/L, tFAW, tWTR_S/L, RD->WR turnaround,
    tRTP, tWR, tRFC, tREFI).

    Scheduling is FR-FCFS: among the requests of the current direction, the oldest row hit gets
    the column bus, the oldest request needing a row command gets the row bus (PRE of a row only
    once no queued request hits it). A row bus cycle the current direction leaves unused goes to
    the oldest request of the other direction that can open its row (ACT, or PRE of a row no
    queued request hits) in a bank the current direction has no queued request for, so a
    direction switch finds its rows open; not while a request of either direction is starved.
    Age limit: when the oldest request of a direction has waited ``age_limit`` cycles, only it
    may get a column command and it may precharge its bank regardless of pending hits; both
    directions then alternate command by command, so a request
    waits at most ``age_limit + wait_slack`` cycles (see :attr:`wait_bound`).

    Writes are posted: B is returned once the last beat is in the write queue. The queue drains
    (write mode) from ``wq_high`` entries (once no read hits an open row, unless the queue is out
    of slots) down to ``wq_low`` (and on while a write hits an open row), when no read is schedulable, when
    the oldest write is starved, or when the oldest read depends on a queued write to the same
    atom (read-after-write order: such a read is held until those writes have issued).

    Read responses leave a reorder buffer in request order, so responses are in order for every
    ID (and across IDs). Beats of a burst outside the device (``addr + 32*len >= capacity``) are
    answered DECERR, bursts other than INCR or narrower than 32 bytes SLVERR; neither touches
    the memory (write data is consumed and dropped).

    Latency (idle, row hit): AR handshake at cycle 0, RD at cycle 1, data at ``1 + cl``, R valid
    at ``cl + 3`` with a ready manager. Row miss: ``+ trcd_rd``; conflict: ``+ trp + trcd_rd``
    (plus whatever of tRAS/tRTP/tWR is still running). Throughput: one 32-byte beat per
    ``burst`` cycles for row hits alternating bank groups (tCCD_S = burst), one per ``tccd_l``
    within one bank group.

    Refresh, ``refresh="all_bank"``: every ``trefi`` cycles one all-bank refresh becomes owed;
    it is issued when no request is queued, or forced once more than ``refresh_postpone`` are
    owed (all banks are then closed with PREA and REF issued; requests wait). Each due refresh
    is thus issued within ``refresh_postpone * trefi + trc + cwl + burst + twr + trp`` cycles of
    its due time. ``refresh="per_bank"``: every ``trefi // banks`` cycles a refresh of the next
    bank in round-robin order becomes owed; REFPB is issued when that bank has no queued request
    (after closing it if open), or forced once more than ``refresh_postpone * banks`` are owed
    (column commands and ACTs to that bank stop, it is precharged, REFPB issued). The other
    banks keep working: tRFCpb blocks only the refreshed bank; REFPB is spaced from other REFPBs
    and ACTs by tRREFD and, like an ACT, counts for tRRD and tFAW (conservative: LPDDR4/DDR5
    state it, the HBM2 figures at hand do not).

    Parameters
    ----------
    params : HBMParams
        Or the same as keyword arguments.

    Members
    -------
    s_axi : In(AXI4Signature(addr_width, 256, id_width))
        AXI4 subordinate. ``arready = ~burst_in_progress & reorder_buffer_not_full``;
        ``awready`` high when no write burst is open (or its last beat transfers);
        ``wready`` when a burst is open, the write queue has room and (last beat) B has room.
    phy : Out(PHYSignature)
        Command and data bus to the device (combinational from the scheduler state).
    stats : Out(StatsSignature)
        Event counters and queue levels.
    """

    def __init__(self, *, params=None, **kwargs):
        self.params = params if params is not None else HBMParams(**kwargs)
        self.timing = self.params.timing()
        self.amap = AddressMap(self.timing, self.params.mapping, self.params.xor_bank)
        super().__init__({
            "s_axi": In(AXI4Signature(addr_width=self.params.addr_width, data_width=ATOM_BITS,
                                      id_width=self.params.id_width)),
            "phy": Out(PHYSignature(self.timing)),
            "stats": Out(StatsSignature(self.params.read_queue, self.params.write_queue)),
        })

    @property
    def wait_bound(self):
        """Cycles a request may wait from enqueue to its column command (a stated upper bound).

        ``age_limit`` plus: one command of the other direction (both starved), the turnaround,
        closing its bank (tRAS or write recovery, tRP), opening its row (tRCD) and one refresh
        (PREA after tRAS/tWR, tRP, tRFC).
        """
        t = self.timing
        close = max(t.tras, t.wr_to_pre, t.trtp) + t.trp
        one = close + max(t.trcd_rd, t.trcd_wr) + max(t.rtw, t.wtr(True)) + t.tccd_l
        refresh = close + (t.trfc if self.params.refresh == "all_bank" else t.trfcpb + t.trrefd)
        return self.params.age_limit + 2 * one + refresh

    @property
    def read_latency_bound(self):
        """Cycles from a single-beat read's AR handshake to its R handshake (ready manager).

        :attr:`wait_bound` to its RD, then ``cl`` to the data, one cycle into the data memory and
        one through the response register (idle row hit: RD one cycle after AR, R at ``cl + 3``).
        """
        return self.wait_bound + self.timing.cl + 2

    def elaborate(self, platform):
        m = Module()
        t, p, amap = self.timing, self.params, self.amap
        axi, phy, stats = self.s_axi, self.phy, self.stats
        NB, NG, NBG = t.banks, t.bank_groups, t.banks_per_group
        RQ, WQ = p.read_queue, p.write_queue
        rq_bits, wq_bits = (RQ - 1).bit_length(), (WQ - 1).bit_length()
        atom_bits = amap.atom_bits
        ba_bits = (NBG - 1).bit_length()
        id_w = p.id_width

        def bg_of(bank):  # bank group of a flat bank index (int)
            return bank >> ba_bits

        now = Signal(16)  # wraps; ages are compared modulo 2**16 (age_limit < 2**14)
        m.d.sync += now.eq(now + 1)

        # ---------------------------------------------------------------- decisions (comb)
        row_issue = Signal(RowCmd)
        row_bank = Signal(range(NB))
        row_row = Signal(_bits(t.rows))
        col_issue = Signal(ColCmd)
        col_bank = Signal(range(NB))
        col_col = Signal(_bits(t.columns))
        m.d.comb += [phy.row_cmd.eq(row_issue), phy.row_bank.eq(row_bank), phy.row_row.eq(row_row),
                     phy.col_cmd.eq(col_issue), phy.col_bank.eq(col_bank), phy.col_col.eq(col_col)]

        is_act = row_issue == RowCmd.ACT
        is_pre = row_issue == RowCmd.PRE
        is_prea = row_issue == RowCmd.PREA
        is_ref = row_issue == RowCmd.REF
        is_refpb = row_issue == RowCmd.REFPB
        act_like = is_act | is_refpb  # for tRRD and tFAW
        is_rd = col_issue == ColCmd.RD
        is_wr = col_issue == ColCmd.WR
        col_bg = col_bank >> ba_bits if ba_bits else col_bank
        row_bg = row_bank >> ba_bits if ba_bits else row_bank

        # ---------------------------------------------------------------- bank state + timers
        is_open = Signal(NB)
        open_row = Array(Signal(_bits(t.rows), name=f"open_row{b}") for b in range(NB))
        with m.If(is_act):
            m.d.sync += [is_open.bit_select(row_bank, 1).eq(1), open_row[row_bank].eq(row_row)]
        with m.If(is_pre):
            m.d.sync += is_open.bit_select(row_bank, 1).eq(0)
        with m.If(is_prea):
            m.d.sync += is_open.eq(0)

        b_act, b_rd, b_wr, b_pre = [], [], [], []
        for b in range(NB):
            act_b = is_act & (row_bank == b)
            pre_b = (is_pre & (row_bank == b)) | (is_prea & is_open[b])
            refpb_b = is_refpb & (row_bank == b)
            b_act.append(_Timer(m, f"b{b}_act", [(act_b, t.trc), (pre_b, t.trp), (is_ref, t.trfc),
                                                 (refpb_b, t.trfcpb)]))
            b_rd.append(_Timer(m, f"b{b}_rd", [(act_b, t.trcd_rd)]))
            b_wr.append(_Timer(m, f"b{b}_wr", [(act_b, t.trcd_wr)]))
            b_pre.append(_Timer(m, f"b{b}_pre", [(act_b, t.tras), (is_rd & (col_bank == b), t.trtp),
                                                 (is_wr & (col_bank == b), t.wr_to_pre)]))
        g_act, g_rd, g_wr = [], [], []
        for g in range(NG):
            same_act = act_like & (row_bg == g)
            same_col = col_bg == g
            g_act.append(_Timer(m, f"g{g}_act", [(same_act, t.trrd_l)]))
            g_rd.append(_Timer(m, f"g{g}_rd", [
                (is_rd & same_col, t.tccd_l), (is_rd & ~same_col, t.tccd_s),
                (is_wr & same_col, max(t.wtr(True), t.tccd_l)),
                (is_wr & ~same_col, max(t.wtr(False), t.tccd_s))]))
            g_wr.append(_Timer(m, f"g{g}_wr", [
                (is_wr & same_col, t.tccd_l), (is_wr & ~same_col, t.tccd_s),
                (is_rd, max(t.rtw, t.tccd_l))]))
        act_any = _Timer(m, "act_any", [(is_act, t.trrd_s), (is_refpb, max(t.trrd_s, t.trrefd))])
        # tFAW: four slots, each busy for tfaw cycles after the ACT it holds; an ACT needs a free slot.
        faw = [Signal(range(t.tfaw), name=f"faw{k}") for k in range(4)]
        faw_free = Cat(*[f == 0 for f in faw])
        faw_ok = faw_free.any()
        taken = Const(0, 1)
        for k, f in enumerate(faw):
            take = act_like & faw_free[k] & ~taken
            taken = taken | faw_free[k]
            m.d.sync += f.eq(Mux(take, t.tfaw - 1, Mux(f == 0, 0, f - 1)))

        bank_act_ok = Signal(NB)
        bank_rd_ok = Signal(NB)
        bank_wr_ok = Signal(NB)
        bank_pre_ok = Signal(NB)
        for b in range(NB):
            m.d.comb += [
                bank_act_ok[b].eq(b_act[b].ready & g_act[bg_of(b)].ready & act_any.ready & faw_ok),
                bank_rd_ok[b].eq(b_rd[b].ready & g_rd[bg_of(b)].ready),
                bank_wr_ok[b].eq(b_wr[b].ready & g_wr[bg_of(b)].ready),
                bank_pre_ok[b].eq(b_pre[b].ready),
            ]
        all_act_idle = Cat(*[x.ready for x in b_act]).all()

        # ---------------------------------------------------------------- read queue / ROB
        FREE, QUEUED, ISSUED, DATA = range(4)
        r_state = [Signal(2, name=f"r{i}_state") for i in range(RQ)]
        r_atom = [Signal(atom_bits, name=f"r{i}_atom") for i in range(RQ)]
        r_id = [Signal(id_w, name=f"r{i}_id") for i in range(RQ)]
        r_last = [Signal(name=f"r{i}_last") for i in range(RQ)]
        r_resp = [Signal(2, name=f"r{i}_resp") for i in range(RQ)]
        r_stamp = [Signal(16, name=f"r{i}_stamp") for i in range(RQ)]
        r_cls = [Signal(2, name=f"r{i}_cls") for i in range(RQ)]
        r_raw = [Signal(WQ, name=f"r{i}_raw") for i in range(RQ)]
        r_head = Signal(rq_bits + 1)
        r_tail = Signal(rq_bits + 1)
        r_count = Signal(range(RQ + 1))
        m.d.comb += r_count.eq(r_tail - r_head)
        r_head_i = r_head[:rq_bits] if rq_bits else Const(0, 1)
        r_tail_i = r_tail[:rq_bits] if rq_bits else Const(0, 1)

        # ---------------------------------------------------------------- write queue
        w_valid = Signal(WQ)
        w_atom = [Signal(atom_bits, name=f"w{j}_atom") for j in range(WQ)]
        w_stamp = [Signal(16, name=f"w{j}_stamp") for j in range(WQ)]
        w_cls = [Signal(2, name=f"w{j}_cls") for j in range(WQ)]
        w_head = Signal(wq_bits + 1)
        w_tail = Signal(wq_bits + 1)
        w_head_i = w_head[:wq_bits]
        w_tail_i = w_tail[:wq_bits]
        w_slots = Signal(range(WQ + 1))  # tail - head, holes included
        w_cnt = Signal(range(WQ + 1))    # valid entries
        m.d.comb += w_slots.eq(w_tail - w_head)
        # The head skips entries already issued (holes), freeing their slots for allocation.
        with m.If((w_slots != 0) & ~w_valid.bit_select(w_head_i, 1)):
            m.d.sync += w_head.eq(w_head + 1)

        wdata_mem = Memory(shape=ATOM_BITS + ATOM_BYTES, depth=WQ, init=[])
        m.submodules.wdata_mem = wdata_mem
        wdata_wp = wdata_mem.write_port()
        wdata_rp = wdata_mem.read_port(domain="sync")

        rdata_mem = Memory(shape=ATOM_BITS, depth=RQ, init=[])
        m.submodules.rdata_mem = rdata_mem
        rdata_wp = rdata_mem.write_port()
        rdata_rp = rdata_mem.read_port(domain="sync")

        # ---------------------------------------------------------------- per-entry analysis
        def fields(atom):
            return amap.split_hw(atom)

        # Row-hit flags are kept per entry and updated from the row commands, rather than
        # recomputed every cycle through a per-entry bank mux of the open rows (64 x 16-way).
        def hit_next(cur, bank, row):
            value = Mux(is_act & (row_bank == bank), row_row == row, cur)
            return Mux((is_pre & (row_bank == bank)) | is_prea, 0, value)

        def hit_now(atom):
            bank, row, _ = fields(atom)
            return is_open.bit_select(bank, 1) & (open_row[bank] == row)

        r_bank, r_row, r_col, r_hit, r_q, r_ready = [], [], [], [], [], []
        for i in range(RQ):
            bank, row, col = fields(r_atom[i])
            hit = Signal(name=f"r{i}_hit")
            r_bank.append(bank); r_row.append(row); r_col.append(col)
            r_hit.append(hit)
            r_q.append(r_state[i] == QUEUED)
            r_ready.append((r_state[i] == QUEUED) & (r_raw[i] == 0))
        w_bank, w_row, w_col, w_hit = [], [], [], []
        for j in range(WQ):
            bank, row, col = fields(w_atom[j])
            hit = Signal(name=f"w{j}_hit")
            w_bank.append(bank); w_row.append(row); w_col.append(col)
            w_hit.append(hit)

        # Oldest queued request of each direction, its age, and starvation.
        r_old_any, r_old = _oldest(m, "r_old", r_q, r_head_i, RQ)
        w_old_any, w_old = _oldest(m, "w_old", [w_valid[j] for j in range(WQ)], w_head_i, WQ)
        r_age = Signal(16)
        w_age = Signal(16)
        m.d.comb += [r_age.eq(now - Array(r_stamp)[r_old]), w_age.eq(now - Array(w_stamp)[w_old])]
        r_starved = Signal()
        w_starved = Signal()
        r_old_blocked = Signal()
        m.d.comb += [r_starved.eq(r_old_any & (r_age > p.age_limit)),
                     w_starved.eq(w_old_any & (w_age > p.age_limit)),
                     r_old_blocked.eq(r_old_any & (Array(r_raw)[r_old] != 0))]
        r_any = Signal()
        m.d.comb += r_any.eq(Cat(*r_ready).any())
        r_want, w_want = Signal(NB), Signal(NB)  # banks with a queued request, per direction
        acc_r, acc_w = Const(0, NB), Const(0, NB)
        for i in range(RQ):
            acc_r = acc_r | Mux(r_q[i], Const(1, NB) << r_bank[i], 0)
        for j in range(WQ):
            acc_w = acc_w | Mux(w_valid[j], Const(1, NB) << w_bank[j], 0)
        m.d.comb += [r_want.eq(acc_r), w_want.eq(acc_w)]

        # ---------------------------------------------------------------- refresh
        per_bank = p.refresh == "per_bank"
        interval = t.trefi // NB if per_bank else t.trefi
        postpone = p.refresh_postpone * (NB if per_bank else 1)
        refi = Signal(range(interval))
        owed = Signal(range(postpone + 3))
        ref_active = Signal()  # all-bank refresh under way: no new ACT or column command
        due = refi == 0
        m.d.sync += refi.eq(Mux(due, interval - 1, refi - 1))
        m.d.sync += owed.eq(owed + due - (is_refpb if per_bank else is_ref))
        idle = ~Cat(*r_q).any() & (w_cnt == 0)
        if not per_bank:
            with m.If(~ref_active & (owed != 0) & ((owed > postpone) | idle)):
                m.d.sync += ref_active.eq(1)
            with m.If(is_ref):
                m.d.sync += ref_active.eq(0)
        # Per-bank: the owed refreshes go to banks in round-robin order.
        ref_bank = Signal(range(NB))
        with m.If(is_refpb):
            m.d.sync += ref_bank.eq(ref_bank + 1 if NB > 1 else 0)
        pb_want = Signal()    # the next per-bank refresh may go now
        pb_forced = Signal()  # ... and must: ACTs and column commands to ref_bank stop
        pb_bank = Signal(NB)  # one-hot of ref_bank while pb_want (held closed)
        if per_bank:
            m.d.comb += [pb_forced.eq(owed > postpone),
                         pb_want.eq((owed != 0) & (pb_forced | ~(r_want | w_want).bit_select(ref_bank, 1))),
                         pb_bank.eq(Mux(pb_want, Const(1, NB) << ref_bank, 0))]
        col_held = Mux(pb_forced, pb_bank, 0)  # banks no column command may use

        # ---------------------------------------------------------------- mode (read / write)
        wmode = Signal()
        served = Signal()  # a column command was issued since the last direction switch
        r_starved_ok = r_starved & ~r_old_blocked
        # Symmetrically, reaching wq_high the reads' open-row hits are served first unless the
        # write queue is out of slots (AW would stall).
        r_hit_left = Signal()
        w_full = Signal()
        to_write = (w_cnt != 0) & (((w_cnt >= p.wq_high) & (~r_hit_left | w_full)) | ~r_any | r_old_blocked
                                   | w_starved) \
            & (served | ~r_any | ~r_starved_ok)
        # Below wq_low the drain still goes on while a write hits an open row: a write run
        # (KV APPEND) arriving while reads are backlogged was otherwise cut into drains of
        # wq_high - wq_low writes, each paying a turnaround pair and, reads and writes being in
        # other rows of the same banks, row conflicts in both directions. Starved reads still
        # end the drain (r_starved_ok), so the wait bound is unchanged.
        w_hit_left = Signal()
        to_read = (w_cnt == 0) | (r_any & ~r_old_blocked & (((w_cnt <= p.wq_low) & ~w_hit_left) | r_starved_ok)
                                  & (served | ~w_starved))
        switch = Mux(wmode, to_read, to_write)
        with m.If(switch):
            m.d.sync += [wmode.eq(~wmode), served.eq(0)]
        with m.Elif(col_issue != ColCmd.NOP):
            m.d.sync += served.eq(1)

        # ---------------------------------------------------------------- column command
        r_starve_mode = r_starved & ~wmode
        w_starve_mode = w_starved & wmode
        r_col_ok = [r_ready[i] & r_hit[i] & bank_rd_ok.bit_select(r_bank[i], 1)
                    & ~col_held.bit_select(r_bank[i], 1)
                    & (~r_starve_mode | (r_old == i)) for i in range(RQ)]
        w_col_ok = [w_valid[j] & w_hit[j] & bank_wr_ok.bit_select(w_bank[j], 1)
                    & ~col_held.bit_select(w_bank[j], 1)
                    & (~w_starve_mode | (w_old == j)) for j in range(WQ)]
        rc_any, rc_idx = _oldest(m, "rcol", r_col_ok, r_head_i, RQ)
        wc_any, wc_idx = _oldest(m, "wcol", w_col_ok, w_head_i, WQ)
        col_block = ref_active | switch
        with m.If(~col_block & ~wmode & rc_any):
            m.d.comb += [col_issue.eq(ColCmd.RD), col_bank.eq(Array(r_bank)[rc_idx]),
                         col_col.eq(Array(r_col)[rc_idx])]
        with m.If(~col_block & wmode & wc_any):
            m.d.comb += [col_issue.eq(ColCmd.WR), col_bank.eq(Array(w_bank)[wc_idx]),
                         col_col.eq(Array(w_col)[wc_idx])]
        rd_issue = Signal()
        wr_issue = Signal()
        m.d.comb += [rd_issue.eq(col_issue == ColCmd.RD), wr_issue.eq(col_issue == ColCmd.WR)]

        # ---------------------------------------------------------------- row command
        # Banks with a queued row hit in the current direction: their row stays open for it.
        hit_pending = Signal(NB)
        hit_any = Signal(NB)  # either direction (closed-page policy)
        r_dec = [Mux(r_ready[i] & r_hit[i], Const(1, NB) << r_bank[i], 0) for i in range(RQ)]
        w_dec = [Mux(w_valid[j] & w_hit[j], Const(1, NB) << w_bank[j], 0) for j in range(WQ)]
        r_hits, w_hits = Signal(NB), Signal(NB)
        acc_r, acc_w = Const(0, NB), Const(0, NB)
        for v in r_dec:
            acc_r = acc_r | v
        for v in w_dec:
            acc_w = acc_w | v
        m.d.comb += [r_hits.eq(acc_r), w_hits.eq(acc_w),
                     hit_pending.eq(Mux(wmode, w_hits, r_hits)), hit_any.eq(r_hits | w_hits),
                     w_hit_left.eq(w_hits.any()), r_hit_left.eq(r_hits.any()), w_full.eq(w_slots == WQ)]
        old_bank = Signal(range(NB))
        m.d.comb += old_bank.eq(Mux(wmode, Array(w_bank)[w_old], Array(r_bank)[r_old]))
        starve_mode = Mux(wmode, w_starve_mode, r_starve_mode)

        old_hit = Mux(wmode, Array(w_hit)[w_old], Array(r_hit)[r_old])
        col_busy = Signal(NB)  # the bank of this cycle's column command may not be precharged
        m.d.comb += col_busy.eq(Mux(col_issue != ColCmd.NOP, Const(1, NB) << col_bank, 0))

        # Row commands, as per-bank masks (one lookup of the entry's bank each, not one per
        # condition): ACT to a closed bank when tRC/tRP/tRRD/tFAW allow (not the bank held for
        # per-bank refresh); PRE of an open bank when tRAS/tRTP/tWR allow and no queued hit of
        # the current direction keeps it (a starved request that is not a hit may close its
        # bank despite them), nor this cycle's column command.
        starve_close = Mux(starve_mode & ~old_hit, Const(1, NB) << old_bank, 0)
        keep = (hit_pending & ~starve_close) | col_busy
        cur_act = Signal(NB)
        cur_pre = Signal(NB)
        m.d.comb += [cur_act.eq(~is_open & bank_act_ok & ~pb_bank),
                     cur_pre.eq(is_open & bank_pre_ok & ~keep)]

        # Row preparation for the other direction: when the row bus has nothing to do for the
        # current one, the oldest request of the other direction may open its row (ACT, or PRE
        # of a row no queued request hits) in a bank the current direction has no queued
        # request for. A switch then finds its rows open instead of paying tRP + tRCD on an
        # idle data bus (the KV trace's write runs land in banks the read runs left open in
        # other rows). Not while a request of either direction is starved, so the wait bound
        # is unchanged.
        cur_want = Mux(wmode, w_want, r_want)
        prep_en = ~r_starved & ~w_starved
        prep_act = Signal(NB)
        prep_pre = Signal(NB)
        m.d.comb += [prep_act.eq(Mux(prep_en, cur_act & ~cur_want, 0)),
                     prep_pre.eq(Mux(prep_en, is_open & bank_pre_ok & ~cur_want & ~hit_any & ~col_busy, 0))]
        r_act, r_pre = Mux(wmode, prep_act, cur_act), Mux(wmode, prep_pre, cur_pre)
        w_act, w_pre = Mux(wmode, cur_act, prep_act), Mux(wmode, cur_pre, prep_pre)
        r_row_ok = [r_ready[i] & (r_act.bit_select(r_bank[i], 1) | (~r_hit[i] & r_pre.bit_select(r_bank[i], 1)))
                    for i in range(RQ)]
        w_row_ok = [w_valid[j] & (w_act.bit_select(w_bank[j], 1) | (~w_hit[j] & w_pre.bit_select(w_bank[j], 1)))
                    for j in range(WQ)]
        rr_any, rr_idx = _oldest(m, "rrow", r_row_ok, r_head_i, RQ)
        wr_any, wr_idx = _oldest(m, "wrow", w_row_ok, w_head_i, WQ)
        q_any = Mux(wmode, wr_any, rr_any)    # current direction
        o_any = Mux(wmode, rr_any, wr_any)    # other direction (preparation)
        rr_bank, wr_bank = Array(r_bank)[rr_idx], Array(w_bank)[wr_idx]
        q_bank = Signal(range(NB))
        q_row = Signal(_bits(t.rows))
        o_bank = Signal(range(NB))
        o_row = Signal(_bits(t.rows))
        m.d.comb += [q_bank.eq(Mux(wmode, wr_bank, rr_bank)),
                     q_row.eq(Mux(wmode, Array(w_row)[wr_idx], Array(r_row)[rr_idx])),
                     o_bank.eq(Mux(wmode, rr_bank, wr_bank)),
                     o_row.eq(Mux(wmode, Array(r_row)[rr_idx], Array(w_row)[wr_idx]))]
        # Closed-page policy: close any bank nobody is waiting on, as soon as tRAS/tRTP/tWR allow.
        idle_close = Signal(NB)
        if p.page_policy == "closed":
            m.d.comb += idle_close.eq(is_open & ~hit_any & bank_pre_ok
                                      & ~col_busy)
        ic_bank = Signal(range(NB))
        for b in reversed(range(NB)):
            with m.If(idle_close[b]):
                m.d.comb += ic_bank.eq(b)

        # Per-bank refresh: close ref_bank (when no column command uses it this cycle), then REFPB.
        pb_open = is_open.bit_select(ref_bank, 1)
        pb_go = pb_want & Mux(pb_open, bank_pre_ok.bit_select(ref_bank, 1) & ~col_busy.bit_select(ref_bank, 1),
                              bank_act_ok.bit_select(ref_bank, 1))
        pb_cmd = Mux(pb_open, RowCmd.PRE, RowCmd.REFPB)

        with m.If(ref_active):
            # Close every bank at once (PREA) when each open bank allows it, then refresh.
            with m.If(is_open.any()):
                with m.If((bank_pre_ok | ~is_open).all()):
                    m.d.comb += row_issue.eq(RowCmd.PREA)
            with m.Elif(all_act_idle):
                m.d.comb += row_issue.eq(RowCmd.REF)
        with m.Elif(pb_forced & pb_go):
            m.d.comb += [row_bank.eq(ref_bank), row_issue.eq(pb_cmd)]
        with m.Elif(q_any):
            m.d.comb += [row_bank.eq(q_bank), row_row.eq(q_row),
                         row_issue.eq(Mux(is_open.bit_select(q_bank, 1), RowCmd.PRE, RowCmd.ACT))]
        with m.Elif(pb_go):
            m.d.comb += [row_bank.eq(ref_bank), row_issue.eq(pb_cmd)]
        with m.Elif(o_any):
            m.d.comb += [row_bank.eq(o_bank), row_row.eq(o_row),
                         row_issue.eq(Mux(is_open.bit_select(o_bank, 1), RowCmd.PRE, RowCmd.ACT))]
        with m.Elif(idle_close.any()):
            m.d.comb += [row_bank.eq(ic_bank), row_issue.eq(RowCmd.PRE)]
        row_free = ~ref_active & ~(pb_forced & pb_go)
        row_prep = row_free & ~q_any & ~pb_go & o_any
        row_for_r = (row_free & q_any & ~wmode) | (row_prep & wmode)
        row_for_w = (row_free & q_any & wmode) | (row_prep & ~wmode)

        # ---------------------------------------------------------------- AXI read front end
        ar_active = Signal()
        ar_atom = Signal(atom_bits + 1)
        ar_left = Signal(8)
        ar_id = Signal(id_w)
        ar_resp = Signal(2)
        atoms = amap.atoms
        beat_valid = Signal()
        beat_atom = Signal(atom_bits + 1)
        beat_id = Signal(id_w)
        beat_resp = Signal(2)
        beat_last = Signal()
        rob_space = r_count != RQ
        m.d.comb += axi.arready.eq(~ar_active & rob_space)
        new_atom = axi.araddr[ATOM_SIZE:]
        ar_bad_range = (new_atom + axi.arlen) >= atoms
        ar_bad_kind = (axi.arsize != ATOM_SIZE) | (axi.arburst != Burst.INCR)
        new_resp = Mux(ar_bad_kind, Resp.SLVERR, Mux(ar_bad_range, Resp.DECERR, Resp.OKAY))
        with m.If(ar_active):
            m.d.comb += [beat_valid.eq(1), beat_atom.eq(ar_atom), beat_id.eq(ar_id),
                         beat_resp.eq(ar_resp), beat_last.eq(ar_left == 0)]
        with m.Else():
            m.d.comb += [beat_valid.eq(axi.arvalid), beat_atom.eq(new_atom), beat_id.eq(axi.arid),
                         beat_resp.eq(new_resp), beat_last.eq(axi.arlen == 0)]
        enq = beat_valid & rob_space
        with m.If(enq):
            m.d.sync += [ar_active.eq(~beat_last), ar_atom.eq(beat_atom + 1),
                         ar_left.eq(Mux(ar_active, ar_left, axi.arlen) - 1)]
            with m.If(~ar_active):
                m.d.sync += [ar_id.eq(axi.arid), ar_resp.eq(new_resp)]
            m.d.sync += r_tail.eq(r_tail + 1)
        # Read-after-write: the writes to this atom still waiting in the write queue.
        raw_mask = Signal(WQ)
        m.d.comb += raw_mask.eq(Cat(*[w_valid[j] & (w_atom[j] == beat_atom[:atom_bits])
                                      for j in range(WQ)]))

        # ---------------------------------------------------------------- AXI write front end
        aw_active = Signal()
        aw_atom = Signal(atom_bits + 1)
        aw_left = Signal(8)
        aw_id = Signal(id_w)
        aw_resp = Signal(2)
        m.submodules.bfifo = bfifo = SyncFIFOBuffered(width=id_w + 2, depth=4)
        wq_space = w_slots != WQ
        w_last_beat = aw_left == 0
        m.d.comb += axi.wready.eq(aw_active & ((aw_resp != Resp.OKAY) | wq_space)
                                  & (~w_last_beat | bfifo.w_rdy))
        w_xfer = axi.wvalid & axi.wready
        m.d.comb += axi.awready.eq(~aw_active | (w_xfer & w_last_beat))
        with m.If(axi.awvalid & axi.awready):
            aw_new = axi.awaddr[ATOM_SIZE:]
            bad_range = (aw_new + axi.awlen) >= atoms
            bad_kind = (axi.awsize != ATOM_SIZE) | (axi.awburst != Burst.INCR)
            m.d.sync += [aw_active.eq(1), aw_atom.eq(aw_new), aw_left.eq(axi.awlen), aw_id.eq(axi.awid),
                         aw_resp.eq(Mux(bad_kind, Resp.SLVERR, Mux(bad_range, Resp.DECERR, Resp.OKAY)))]
        with m.Elif(w_xfer):
            # (A new AW accepted with the last W beat takes precedence over the increment.)
            m.d.sync += [aw_atom.eq(aw_atom + 1), aw_left.eq(aw_left - 1), aw_active.eq(~w_last_beat)]
        w_alloc = w_xfer & (aw_resp == Resp.OKAY)
        m.d.comb += [wdata_wp.addr.eq(w_tail_i), wdata_wp.data.eq(Cat(axi.wdata, axi.wstrb)),
                     wdata_wp.en.eq(w_alloc)]
        with m.If(w_alloc):
            m.d.sync += w_tail.eq(w_tail + 1)
        m.d.comb += [bfifo.w_en.eq(w_xfer & w_last_beat), bfifo.w_data.eq(Cat(aw_id, aw_resp)),
                     axi.bvalid.eq(bfifo.r_rdy), axi.bid.eq(bfifo.r_data[:id_w]),
                     axi.bresp.eq(bfifo.r_data[id_w:]), bfifo.r_en.eq(axi.bready)]

        # ---------------------------------------------------------------- write queue updates
        m.d.sync += w_cnt.eq(w_cnt + w_alloc - wr_issue)
        w_in_bank, w_in_row, _ = fields(aw_atom[:atom_bits])
        w_in_hit = hit_now(aw_atom[:atom_bits])
        for j in range(WQ):
            with m.If(w_alloc & (w_tail_i == j)):
                m.d.sync += w_hit[j].eq(hit_next(w_in_hit, w_in_bank, w_in_row))
            with m.Else():
                m.d.sync += w_hit[j].eq(hit_next(w_hit[j], w_bank[j], w_row[j]))
            with m.If(w_alloc & (w_tail_i == j)):
                m.d.sync += [w_valid[j].eq(1), w_atom[j].eq(aw_atom[:atom_bits]), w_stamp[j].eq(now),
                             w_cls[j].eq(0)]
            with m.If(wr_issue & (wc_idx == j)):
                m.d.sync += w_valid[j].eq(0)
            with m.If(row_for_w & (wr_idx == j)):
                m.d.sync += w_cls[j].eq(Mux(is_open.bit_select(wr_bank, 1), 2, Mux(w_cls[j] == 0, 1, w_cls[j])))

        # WR data: read the queue's data memory in the WR cycle, delay it to WR + cwl.
        m.d.comb += [wdata_rp.addr.eq(wc_idx), wdata_rp.en.eq(1)]
        wv = Signal()
        m.d.sync += wv.eq(wr_issue)
        stage_v, stage_d = wv, wdata_rp.data
        for k in range(t.cwl - 1):
            nv, nd = Signal(name=f"wpipe{k}_v"), Signal(ATOM_BITS + ATOM_BYTES, name=f"wpipe{k}_d")
            m.d.sync += [nv.eq(stage_v), nd.eq(stage_d)]
            stage_v, stage_d = nv, nd
        m.d.comb += [phy.wr_valid.eq(stage_v), phy.wr_data.eq(stage_d[:ATOM_BITS]),
                     phy.wr_strb.eq(Mux(stage_v, stage_d[ATOM_BITS:], 0))]

        # ---------------------------------------------------------------- read queue updates
        m.submodules.tags = tags = SyncFIFO(width=max(1, rq_bits), depth=RQ)
        m.d.comb += [tags.w_en.eq(rd_issue), tags.w_data.eq(rc_idx), tags.r_en.eq(phy.rd_valid)]
        m.d.comb += [rdata_wp.addr.eq(tags.r_data), rdata_wp.data.eq(phy.rd_data),
                     rdata_wp.en.eq(phy.rd_valid)]

        # Response stage: the R payload comes straight from the data memory's read register,
        # which holds (en low) while the manager stalls.
        o_valid = Signal()
        o_id = Signal(id_w)
        o_last = Signal()
        o_resp = Signal(2)
        head_state = Array(r_state)[r_head_i]
        pop = (head_state == DATA) & (r_count != 0) & (~o_valid | axi.rready)
        m.d.comb += [rdata_rp.addr.eq(r_head_i), rdata_rp.en.eq(pop)]
        with m.If(pop):
            m.d.sync += [o_valid.eq(1), o_id.eq(Array(r_id)[r_head_i]), o_last.eq(Array(r_last)[r_head_i]),
                         o_resp.eq(Array(r_resp)[r_head_i]), r_head.eq(r_head + 1)]
        with m.Elif(axi.rready):
            m.d.sync += o_valid.eq(0)
        m.d.comb += [axi.rvalid.eq(o_valid), axi.rid.eq(o_id), axi.rlast.eq(o_last), axi.rresp.eq(o_resp),
                     axi.rdata.eq(Mux(o_resp == Resp.OKAY, rdata_rp.data, 0))]

        r_in_bank, r_in_row, _ = fields(beat_atom[:atom_bits])
        r_in_hit = hit_now(beat_atom[:atom_bits])
        for i in range(RQ):
            with m.If(enq & (r_tail_i == i)):
                m.d.sync += r_hit[i].eq(hit_next(r_in_hit, r_in_bank, r_in_row))
            with m.Else():
                m.d.sync += r_hit[i].eq(hit_next(r_hit[i], r_bank[i], r_row[i]))
            with m.If(enq & (r_tail_i == i)):
                m.d.sync += [r_state[i].eq(Mux(beat_resp == Resp.OKAY, QUEUED, DATA)),
                             r_atom[i].eq(beat_atom[:atom_bits]), r_id[i].eq(beat_id),
                             r_last[i].eq(beat_last), r_resp[i].eq(beat_resp), r_stamp[i].eq(now),
                             r_cls[i].eq(0), r_raw[i].eq(raw_mask & ~Mux(wr_issue, Const(1, WQ) << wc_idx, 0))]
            with m.Else():
                m.d.sync += r_raw[i].eq(r_raw[i] & ~Mux(wr_issue, Const(1, WQ) << wc_idx, 0))
            with m.If(rd_issue & (rc_idx == i)):
                m.d.sync += r_state[i].eq(ISSUED)
            with m.If(phy.rd_valid & (tags.r_data == i)):
                m.d.sync += r_state[i].eq(DATA)
            with m.If(pop & (r_head_i == i)):
                m.d.sync += r_state[i].eq(FREE)
            with m.If(row_for_r & (rr_idx == i)):
                m.d.sync += r_cls[i].eq(Mux(is_open.bit_select(rr_bank, 1), 2, Mux(r_cls[i] == 0, 1, r_cls[i])))

        # ---------------------------------------------------------------- statistics
        col_cls = Mux(rd_issue, Array(r_cls)[rc_idx], Array(w_cls)[wc_idx])
        col_any = rd_issue | wr_issue
        events = {"reads": rd_issue, "writes": wr_issue, "row_hits": col_any & (col_cls == 0),
                  "row_misses": col_any & (col_cls == 1), "row_conflicts": col_any & (col_cls == 2),
                  "refreshes": is_ref | is_refpb, "activates": is_act, "precharges": is_pre | is_prea}
        for name, ev in events.items():
            m.d.sync += getattr(stats, name).eq(getattr(stats, name) + ev)
        m.d.comb += [stats.rq_level.eq(r_count), stats.wq_level.eq(w_cnt)]
        return m
