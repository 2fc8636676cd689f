"""The tile's cycles: a :class:`~.model.CycleModel` that times the machine model's events.

``Machine(config, timing=Timing(config))`` runs as before and ``timing.cycles(tile)`` is then
the tile's cycles from ``start`` to DONE on ``hw/accel/tile.py`` behind a memory with a fixed
read latency (``verif/axi_mem.py``: the first R handshake ``read_latency + 2`` cycles after the
AR handshake, one beat per cycle, bursts answered in order; B ``write_latency + 2`` cycles
after the last W). The functional model calls the hooks in a causal order (a unit command is
issued only once the unit could take it), so every time is computed once, when its event
happens: no cycle stepping. Per unit:

* sequencer: one instruction a cycle, LOAD/STORE two more (operand products, checks); a unit's
  command waits for its command port (GEMM decoder idle, vector-unit front end idle), for room
  among its ``outstanding`` unanswered commands; FENCE and END for the statuses they need;
  instruction fetch in bursts of up to 8 words inside aligned 8-word blocks, one in flight, into
  a 16-word FIFO, a REPEAT iteration (or a skipped body) a redirect: the FIFO cleared, the burst
  in flight drained, a new fetch round trip;
* memory: one R channel shared by the fetch and the load DMA (bursts in time order, one beat a
  cycle), the read latency per burst;
* load DMA (``hw/accel/tile_dma.py``): each row a burst (split at 16 atoms and 4 KiB), at most
  ``outstanding`` bursts in flight, unit beats ``3`` cycles after their atom, one a cycle (one per
  ``B / 32`` cycles for beats wider than an atom), in LOAD order: a LOAD's beats after the
  previous LOAD's last was taken, its status after its own last;
* store DMA: unit beats taken in STORE order, one a cycle (``B / 32`` for wide beats), the status
  after the last burst's W beats and its B;
* GEMM engine (``hw/gemm.py``): LOAD_A/B/Q one beat a cycle from 5 cycles after the command,
  after every earlier COMPUTE; COMPUTE as ``verif.gemm_model.gemm_cycles``, back to back
  COMPUTEs chained by the weight-stationary tile schedule (``ws_schedule``); STORE one beat a
  cycle after its pipeline;
* vector unit (``hw/vpu``, ``docs/vpu.md``): the front end takes a beat (of ``a``, and ``b``
  together) a cycle while its row-buffer credits last, a command ``FRONT_LATENCY + 1`` cycles
  after the previous one's last input beat; single-pass results 23 cycles after their input,
  a two-pass row's once its row scalar is there (``rowstats_latency``); the back end one command
  at a time, its status once its outputs were taken; ``vpu_b`` through the tile's row buffer;
* the overlaps: every unit runs concurrently and a beat moves at the later of the cycle its
  producer offers it and the cycle its consumer takes it.

Not modelled: back-pressure of a full output queue on the unit feeding it (the compiler's
programs store as they compute), the read DMA's buffer room, stalls of the memory, the NoC and
HBM of the whole accelerator, the KV-cache DMA (a fixed :data:`KV_CYCLES` per descriptor).
Semaphores across tiles: a WAIT ends at the cycle its count has been posted.
"""

import bisect
from collections import deque

from scoville.hw.accel.isa import ATOM_BYTES, INSTR_BYTES, LoadPort, Opcode, StorePort, Unit
from scoville.hw.gemm import Op as GemmOp
from scoville.hw.vpu.front import FRONT_LATENCY
from scoville.hw.vpu.layouts import Op as VpuOp, REDUCTIONS, TWO_PASS, USES_B
from scoville.hw.vpu.rowstats import rowstats_latency
from scoville.hw.vpu.vpu import CMD_DEPTH

from .model import CycleModel


__all__ = ["Timing", "KV_CYCLES"]

KV_CYCLES = 64          # a KV descriptor, issue to done (the KV-cache DMA is outside the tile)

# ---- structural constants of the RTL, in cycles (each named by what it spans) --------------
FETCH_BURST, FETCH_DEPTH = 8, 16        # Sequencer defaults in hw/accel/tile.py
START_AR = 1            # start -> first fetch AR handshake
FETCH_NEXT_AR = 2       # a fetch burst's last R beat -> the next AR handshake
REDIRECT_AR = 2         # a redirect -> its AR handshake (nothing in flight)
FETCH_HEAD = 2          # an instruction's R beat -> the sequencer can issue it
MOVE = 1                # a LOAD/STORE at the head -> its move handshake (products, checks)
DMA_AR = 3              # move handshake -> first AR handshake
DMA_REFILL = 2          # a burst's last R beat -> the AR of the burst waiting for its place
DMA_BEAT = 3            # R beat -> the unit beat cut from it offered
LOAD_STATUS = 2         # a LOAD's last beat taken -> its status seen by the sequencer
B_FIFO = 2              # vpu_b row buffer: written -> readable
STORE_TAKE = 2          # STORE handshake -> its first unit beat can be taken
STORE_STATUS = 4        # the last W beat of a STORE -> its status seen (besides the B latency)
GEMM_LOAD = 5           # GEMM command handshake -> first LOAD_*/STORE beat cycle
GEMM_DONE = 2           # a load's last beat / a store's last beat taken -> decoder idle, status
GEMM_C_FIRST = 5        # STORE state -> first C beat offered
COMPUTE_DISPATCH = 6    # COMPUTE handshake -> first buffer read
COMPUTE_FREE = 5        # COMPUTE handshake -> the decoder takes the next command
STATUS_SEEN = 1         # a unit's status pushed -> seen by the sequencer
VPU_FRONT = 1           # VPU command handshake -> first input beat
VPU_TO_BACK = 13        # front input beat -> back end pop (single-pass: FRONT_LATENCY + row buffer)
VPU_BACK_OUT = 10       # back end pop -> output beat offered (back_latency + output queue)
VPU_REDUCE = 2          # a reduction's row scalar: 2 cycles more than a two-pass row's
VPU_STATUS = 3          # last output beat taken -> status seen
VPU_BACK_START = 2      # back end idle (status pushed) -> its next command's first pop
END_DONE = 2            # END issued -> state DONE seen by the testbench
GEMM_C_RUN = 5          # the store pipeline's credits: 5 C beats in every 6 cycles


class _Mem:
    """The memory's R channel: bursts of beats, each starting no earlier than its AR handshake
    plus the latency, served back to back (intervals kept sorted, a burst goes in the first gap
    it fits)."""

    def __init__(self, latency):
        self.latency = latency
        self.starts, self.ends = [], []         # busy [start, end) intervals, sorted

    def serve(self, ar, beats):
        """The cycle of the first R beat of a burst of ``beats`` whose AR was at ``ar``."""
        t = ar + self.latency
        i = bisect.bisect_right(self.ends, t)
        while i < len(self.starts) and self.starts[i] < t + beats:
            t = max(t, self.ends[i])
            i += 1
        self.starts.insert(i, t)
        self.ends.insert(i, t + beats)
        if len(self.starts) > 4096:             # forget the distant past
            del self.starts[:2048], self.ends[:2048]
        return t

    def unserve(self, start, beats):
        """Take back the burst served at ``start`` (a fetch the sequencer never issued)."""
        i = bisect.bisect_left(self.starts, start)
        if i < len(self.starts) and self.starts[i] == start and self.ends[i] == start + beats:
            del self.starts[i], self.ends[i]


class _Offers:
    """Beats a port's producer offers: segments ``[count, first cycle, period]``."""

    def __init__(self):
        self.segs = deque()
        self.count = 0

    def add(self, count, t0, dt=1):
        if count <= 0:
            return
        if self.segs:
            last = self.segs[-1]
            if last[2] == dt and last[1] + last[0] * dt == t0:
                last[0] += count
                self.count += count
                return
        self.segs.append([count, t0, dt])
        self.count += count

    def pop(self, k):
        """Up to ``k`` beats as ``(count, t0, dt)`` pieces."""
        out = []
        while k:
            seg = self.segs[0]
            m = min(k, seg[0])
            out.append((m, seg[1], seg[2]))
            seg[0] -= m
            seg[1] += m * seg[2]
            if not seg[0]:
                self.segs.popleft()
            k -= m
            self.count -= m
        return out

    def times(self, k):
        """The next ``k`` beats' offer cycles, one by one (popped)."""
        out = []
        for m, t0, dt in self.pop(k):
            out += [t0 + i * dt for i in range(m)]
        return out


def _transfer(pieces, cur, dc):
    """Beats offered as ``pieces`` taken by a consumer ready from ``cur``, one per ``dc``:
    ``(first, last)`` cycles (each beat at the later of its offer and its turn)."""
    first = last = None
    for m, t0, dt in pieces:
        f = max(t0, cur)
        last = max(t0 + (m - 1) * dt, f + (m - 1) * dc)
        cur = last + dc
        first = f if first is None else first
    return first, last


class _Cmd:
    """A unit command: its instruction's address, handshake cycle and fields."""
    __slots__ = ("pc", "t", "f", "cur", "dc", "first", "last", "extra")

    def __init__(self, pc, t, f):
        self.pc, self.t, self.f = pc, t, f
        self.cur = self.dc = self.first = self.last = None
        self.extra = None


class _TileTime:
    """One tile's units and their times (module docstring)."""

    def __init__(self, timing, index, pc):
        self.tm, self.cfg, self.index = timing, timing.config, index
        self.mem = _Mem(timing.read_latency + 2)
        self.end = None
        # sequencer and fetch
        self.t = 0                      # earliest cycle the next instruction can issue
        self.last_grant, self.dma_ars = "dma", deque(maxlen=64)
        self.expect = pc                # the pc the next issue has
        self.loop = None                # REPEAT: [body start, body end, count, iteration]
        self._redirect(0, pc, first=True)
        # units: issued commands awaiting unit_start, the running one, status cycles
        self.queued = {u: deque() for u in Unit}
        self.running = {u: None for u in Unit}
        self.status = {u: [] for u in Unit}
        self.offers = {p: _Offers() for p in list(LoadPort) + list(StorePort)}
        # load DMA
        self.ar_next = 0                # next AR handshake of the read walker
        self.r_last = deque()           # last R beat cycle of the bursts in flight (outstanding)
        self.rd_pending = _Offers()     # the running LOAD's beats, not yet put on its port
        self.rd_last = -1               # the previous LOAD's last beat taken
        self.b_reads = deque()          # vpu_b row buffer: cycles its beats b_base.. were read
        self.b_base = self.b_written = 0
        self.last_take = {}             # port -> cycle of its last beat taken
        self.wr_last = -1               # the previous STORE's last beat taken
        # GEMM engine
        self.g_free = 0                 # the decoder takes a command
        self.g_chain = None             # (t0, tf, m) of the last array tile issued
        self.g_compute_done = -1        # status cycle of the last COMPUTE
        # vector unit
        self.v_free = 0                 # the front end takes a command
        self.v_back_free = 0            # the back end takes its next command
        self.v_pops = deque()           # (first beat index, first pop cycle, count) per row: credits
        self.v_beats = 0                # input beats taken by the front end so far
        self.v_statuses = deque()       # status cycles of the commands the back end has (cmdq room)

    # ---- instruction fetch ---------------------------------------------------------------
    def _redirect(self, t, pc, first=False):
        if first and self.tm.fetch_tail >= 0:   # the previous program's last fetch, still arriving
            self.burst_end = self.tm.fetch_tail
            self.mem.starts.append(-1)
            self.mem.ends.append(self.burst_end + 1)
        if not first:
            self._fetch_until(t)            # the burst in flight at the redirect is drained
            while self.bursts and self.bursts[-1][0] > t:   # fetched ahead, never issued
                ar, r, beats = self.bursts.pop()
                self.mem.unserve(r, beats)
                self.burst_end = self.bursts[-1][1] + self.bursts[-1][2] - 1 if self.bursts else -10
        self.bursts = []                # (AR, first R, beats) of this stream's bursts
        drained = getattr(self, "burst_end", -10)
        self.words = {}
        self.reads = []                 # issue cycles of this stream's words, in order
        self.requested = 0
        self.fetch_pc = pc
        self.ar_ready = max(START_AR if first else t + REDIRECT_AR, drained + FETCH_NEXT_AR)

    def _next_ar(self):
        """The AR handshake of the next fetch burst and its beats: one burst in flight, room in
        the FIFO for all its words (None: room only once words not yet issued leave)."""
        beats = FETCH_BURST - (self.fetch_pc // INSTR_BYTES) % FETCH_BURST
        need = self.requested + beats - FETCH_DEPTH      # words that must have left the FIFO
        if need > len(self.reads):
            return None, beats
        return max(self.ar_ready, self.reads[need - 1] + 2 if need > 0 else 0), beats

    def _ar_slot(self, ar):
        """The AR cycle of a DMA burst ready at ``ar``: the fetch and the DMA share the AR
        channel through the round-robin mux (a tie goes to the one not granted last), and the
        fetch bursts issued before take the R channel first."""
        self._fetch_until(ar - 1)
        nxt, beats = self._next_ar()
        if nxt == ar and self.last_grant == "dma":
            self._fetch(ar, beats)
            ar += 1
        self.last_grant = "dma"
        self.dma_ars.append(ar)
        return ar

    def _fetch(self, ar, beats):
        while ar in self.dma_ars:           # the DMA had the AR channel that cycle
            ar += 1
        self.last_grant = "fetch"
        r = self.mem.serve(ar, beats)
        self.tm.log(self.index, "fAR", ar, beats, r)
        for i in range(beats):
            self.words[self.fetch_pc + i * INSTR_BYTES] = r + i
        self.requested += beats
        self.fetch_pc += beats * INSTR_BYTES
        self.burst_end = r + beats - 1
        self.bursts.append((ar, r, beats))
        self.ar_ready = self.burst_end + FETCH_NEXT_AR

    def _fetch_until(self, t):
        """Issue the fetch bursts the sequencer has issued by cycle ``t`` (it fetches ahead)."""
        while True:
            ar, beats = self._next_ar()
            if ar is None or ar > t:
                return
            self._fetch(ar, beats)

    def _avail(self, pc):
        """The cycle the word at ``pc`` can issue."""
        while pc not in self.words:
            ar, beats = self._next_ar()
            self._fetch(self.ar_ready if ar is None else ar, beats)
        return self.words[pc] + FETCH_HEAD

    # ---- the sequencer ---------------------------------------------------------------------
    def _room(self, unit, t):
        """``t`` or later: the unit has fewer than ``outstanding`` unanswered commands."""
        s = self.status[unit]
        issued = len(s) + len(self.queued[unit]) + (self.running[unit] is not None)
        if issued >= self.cfg.outstanding:
            older = issued - self.cfg.outstanding       # that command's status frees a place
            if older < len(s):
                t = max(t, s[older] + 1)
        return t

    def _all_done(self, units):
        t = -1
        for u in units:
            if self.status[u]:
                t = max(t, max(self.status[u][-self.cfg.outstanding:]))
        return t

    def issue(self, pc, op, f):
        if pc != self.expect:               # (the sequencer's own redirects are known already)
            self._redirect(self.t - 1, pc)
        t = max(self.t, self._avail(pc))
        self._fetch_until(t)
        nxt = pc + INSTR_BYTES
        if op in (Opcode.LOAD, Opcode.STORE):
            unit = Unit.LOAD if op == Opcode.LOAD else Unit.STORE
            t = self._room(unit, t + MOVE)
            self.queued[unit].append(_Cmd(pc, t, f))
        elif op == Opcode.GEMM:
            t = self._room(Unit.GEMM, max(t, self.g_free))
            self.g_free = t + (COMPUTE_FREE if f["op"] == GemmOp.COMPUTE.value else 1 << 60)
            self.queued[Unit.GEMM].append(_Cmd(pc, t, f))
        elif op == Opcode.VPU:
            t = max(t, self.v_free)
            if len(self.v_statuses) >= CMD_DEPTH:
                t = max(t, self.v_statuses[-CMD_DEPTH] + 1)
            t = self._room(Unit.VPU, t)
            self.v_free = 1 << 60           # until the command has its inputs
            self.queued[Unit.VPU].append(_Cmd(pc, t, f))
        elif op == Opcode.KV:
            t = max(self._avail(nxt), t + 1)
            nxt += INSTR_BYTES
            self.status[Unit.KV].append(t + KV_CYCLES)
        elif op == Opcode.FENCE:
            t = max(t, self._all_done([u for u in Unit if u in Unit(f["units"])]) + 1)
        elif op == Opcode.SIGNAL:
            self.tm.post(f["sem"], f["count"], t)
        elif op == Opcode.WAIT:
            t = self.tm.take(f["sem"], f["count"], t)
        elif op == Opcode.REPEAT and f["count"] == 0:
            nxt = pc + INSTR_BYTES * (f["length"] + 1)
            self._redirect(t, nxt)
        elif op == Opcode.REPEAT:
            self.loop = [nxt, nxt + INSTR_BYTES * f["length"], f["count"], 0]
        elif op == Opcode.END:
            t = max(t, self._all_done(list(Unit)) + 1)
            self.end = t + END_DONE
        self.reads.append(t)
        self.tm.log(self.index, op.name, t, pc)
        self.t = t + 1
        if self.loop and nxt == self.loop[1]:      # the body's last word: the next iteration
            self.loop[3] += 1
            if self.loop[3] < self.loop[2]:
                nxt = self.loop[0]
                self._redirect(t, nxt)
            else:
                self.loop = None
        self.expect = nxt

    # ---- units ----------------------------------------------------------------------------
    def unit_start(self, unit, cmd):
        c = self.queued[unit].popleft()
        c.f = cmd
        self.running[unit] = c
        getattr(self, "_start_" + unit.name.lower())(c)

    def unit_done(self, unit):
        c = self.running[unit]
        self.running[unit] = None
        self.status[unit].append(getattr(self, "_done_" + unit.name.lower())(c))
        self.tm.log(self.index, "sts_" + unit.name, self.status[unit][-1], c.pc)

    def fault(self):
        self.end = self.t + 2

    # -- the load DMA --------------------------------------------------------------------------
    def _start_load(self, c):
        mv = c.f
        beat = 1 << mv["beat_log2"]
        rows, rb, stride, addr = mv["rows"], mv["row_bytes"], mv["stride"], mv["addr"]
        per_row = -(-rb // beat)
        dt = max(1, beat // ATOM_BYTES)
        ready = max(self.rd_last + 1, 0)
        ar = max(c.t + DMA_AR, self.ar_next)
        outst = self.cfg.outstanding
        for r in range(rows):
            a0 = addr + r * stride
            bursts = _bursts(a0, rb)
            if len(bursts) > 1:
                ar += 2                     # through the burst splitter
            first = None
            for n_atoms in bursts:
                while len(self.r_last) >= outst:
                    ar = max(ar, self.r_last.popleft() + DMA_REFILL)
                ar = self._ar_slot(ar)
                t = self.mem.serve(ar, n_atoms)
                self.tm.log(self.index, "dAR", ar, n_atoms, t)
                first = t if first is None else first
                self.r_last.append(t + n_atoms - 1)
                ar += 2 if len(bursts) > 1 else 1
            t0 = max(first + DMA_BEAT + dt - 1, ready)
            self.rd_pending.add(per_row, t0, dt)
            ready = t0 + per_row * dt
        self.ar_next = ar
        c.extra = mv["port"]

    def _done_load(self, c):
        if c.extra is LoadPort.VPU_B:
            last = c.last                   # into the row buffer
        else:
            last = self.last_take.get(c.extra, c.t)
        self.rd_last = last
        return last + LOAD_STATUS

    def put_load(self, port, k):
        c = self.running[Unit.LOAD]
        if port is not LoadPort.VPU_B:
            for m, t0, dt in self.rd_pending.pop(k):
                self.offers[port].add(m, t0, dt)
            return
        depth = self.cfg.vpu.buffer // self.cfg.vpu.lanes
        for t in self.rd_pending.times(k):
            i = self.b_written - depth - self.b_base       # the beat whose slot this one takes
            if 0 <= i < len(self.b_reads):
                t = max(t, self.b_reads[i] + 1)
            t = max(t, (c.last or 0) + 1)
            self.b_written += 1
            self.offers[LoadPort.VPU_B].add(1, t + B_FIFO)
            c.last = t

    # -- the store DMA -------------------------------------------------------------------------
    def _start_store(self, c):
        mv = c.f
        beat = 1 << mv["beat_log2"]
        c.cur = max(c.t + STORE_TAKE, self.wr_last + 1)
        c.dc = max(1, beat // ATOM_BYTES)

    def take_store(self, port, k):
        c = self.running[Unit.STORE]
        first, last = _transfer(self.offers[port].pop(k), c.cur, c.dc)
        c.cur = last + c.dc
        c.last = last
        self.last_take[port] = last

    def _done_store(self, c):
        mv = c.f
        last = c.last if c.last is not None else c.t
        self.wr_last = last
        bursts = _bursts(mv["addr"] + (mv["rows"] - 1) * mv["stride"], mv["row_bytes"])
        return last + bursts[-1] + self.tm.write_latency + 2 + STORE_STATUS

    # -- the GEMM engine -----------------------------------------------------------------------
    def _start_gemm(self, c):
        f = c.f
        op = f["op"]
        if op == GemmOp.COMPUTE.value:
            c.last = self._compute(c)
            self.g_compute_done = c.last
            return
        c.cur = max(c.t + GEMM_LOAD, self.g_compute_done)
        c.dc = 1
        if op == GemmOp.STORE.value:
            R, C = self.cfg.gemm.rows, self.cfg.gemm.cols
            n = f["m"] * -(-f["n"] // C)
            t0 = c.cur + GEMM_C_FIRST
            for i in range(0, n, GEMM_C_RUN):
                self.offers[StorePort.GEMM_C].add(min(GEMM_C_RUN, n - i), t0 + i // GEMM_C_RUN * (GEMM_C_RUN + 1))

    def _compute(self, c):
        g = self.cfg.gemm
        R, C = g.rows, g.cols
        f = c.f
        tiles = -(-f["k"] // R) * -(-f["n"] // C)
        m = f["m"]
        t0 = c.t + COMPUTE_DISPATCH
        chain = self.g_chain or (-(1 << 40), -(1 << 40), 0)
        for _ in range(tiles):          # verif.gemm_model.ws_schedule, in absolute cycles
            p0, pf, pm = chain
            t0j = max(t0, p0 + R, pf)
            chain = (t0j, max(pf + pm, t0j + 1), m)
        self.g_chain = chain
        return chain[1] + m - 1 + 1 + R + C + 3

    def take_gemm(self, port, k):
        c = self.running[Unit.GEMM]
        first, last = _transfer(self.offers[port].pop(k), c.cur, c.dc)
        c.cur = last + 1
        c.last = self.last_take[port] = last

    def _done_gemm(self, c):
        if c.f["op"] == GemmOp.COMPUTE.value or c.f["op"] not in {o.value for o in GemmOp}:
            return c.last if c.last is not None else c.t + 5
        done = GEMM_DONE
        if c.f["op"] == GemmOp.STORE.value:
            last = self.last_take.get(StorePort.GEMM_C, c.cur)
            done += 1                       # its output FIFO empties the cycle after
        else:
            last = c.last if c.last is not None else c.cur
        self.g_free = last + done
        return last + done + STATUS_SEEN

    # -- the vector unit -----------------------------------------------------------------------
    def _start_vpu(self, c):
        f = c.f
        op = VpuOp(f["op"])
        c.extra = {"op": op, "back": max(c.t + VPU_BACK_START, self.v_back_free), "rows": 0,
                   "out_last": None}
        c.cur = c.t + VPU_FRONT
        if op is VpuOp.LOAD_P:
            self.v_free = c.t + 1
            c.cur = c.extra["back"]

    def take_vpu(self, port, k):
        c = self.running[Unit.VPU]
        x = c.extra
        op = x["op"]
        if op is VpuOp.LOAD_P:
            first, last = _transfer(self.offers[port].pop(k), c.cur, 1)
            c.cur = last + 1
            x["out_last"] = self.last_take[port] = last
            return
        if port is LoadPort.VPU_B:
            return                          # taken with a
        ta = self.offers[LoadPort.VPU_A].times(k)
        if op in USES_B:
            tb = self.offers[LoadPort.VPU_B].times(k)
            ta = [max(a, b) for a, b in zip(ta, tb)]
        cap = self.cfg.vpu.buffer // self.cfg.vpu.lanes
        keeps = op not in REDUCTIONS
        per_row = -(-c.f["n"] // self.cfg.vpu.lanes)
        halves = op is VpuOp.ROPE and c.f.get("halves")
        cur, ins = c.cur, []
        for t in ta:
            if keeps:
                t = max(t, self._pop(self.v_beats - cap) + 1)
            t = max(t, cur)
            ins.append(t)
            cur = t + 1
            self.v_beats += 1 if keeps else 0
            if op in USES_B:
                self.b_reads.append(t)
            x["pos"] = (x.get("pos", 0) + 1) % per_row
            if halves and x["pos"] == 0:
                cur += per_row // 2         # the first half's beats issue with their partners'
        c.cur = cur
        self.last_take[LoadPort.VPU_A] = cur - 1
        self._trim_b()
        x["ins"] = x.get("ins", []) + ins
        rows = c.f["rows"]
        while len(x["ins"]) >= per_row:
            row, x["ins"] = x["ins"][:per_row], x["ins"][per_row:]
            self._vpu_row(c, row)
        if x["rows"] == rows:
            self.v_free = c.cur - 1 + FRONT_LATENCY + 1

    def _pop(self, i):
        """The cycle the back end popped input beat ``i`` of the row buffer (credits)."""
        if i < 0:
            return -1
        while self.v_pops and self.v_pops[0][0] + self.v_pops[0][2] <= i - 4 * self.cfg.vpu.buffer:
            self.v_pops.popleft()
        for k0, t0, cnt in reversed(self.v_pops):
            if k0 <= i < k0 + cnt:
                return t0 + (i - k0)
        return -1

    def _vpu_row(self, c, ins):
        """A row's input beats taken at ``ins``: its outputs offered."""
        x = c.extra
        op = x["op"]
        lanes = self.cfg.vpu.lanes
        x["rows"] += 1
        last_in = ins[-1]
        back = x.get("back_cur", x["back"])
        if op in REDUCTIONS:
            t = max(last_in + VPU_TO_BACK + rowstats_latency(lanes) + VPU_REDUCE, back)
            self.offers[StorePort.VPU_S].add(1, t)
            x["back_cur"] = t + 1
            return
        if op is VpuOp.ROPE and c.f.get("halves"):
            # halves pairs (j, j + n/2): a first-half beat issues when its partner comes, the
            # second half's after them (docs/vpu.md: 3n / (2 lanes) cycles a row)
            h = len(ins) // 2
            ins = ins[h:] + [last_in + 1 + j for j in range(len(ins) - h)]
        pops = []
        start = last_in + VPU_TO_BACK + rowstats_latency(lanes) if op in TWO_PASS else -1
        for j, t in enumerate(ins):
            p = max(t + VPU_TO_BACK, back, start)
            pops.append(p)
            back = p + 1
        x["back_cur"] = back
        k0 = self.v_beats - len(ins)
        self.v_pops.append((k0, pops[0], len(pops)))   # consecutive in the common case
        if op is VpuOp.REQUANT_DYN:
            self.offers[StorePort.VPU_S].add(1, pops[0] + VPU_BACK_OUT)
        for p in pops:
            self.offers[StorePort.VPU_Y].add(1, p + VPU_BACK_OUT)

    def _trim_b(self):
        depth = self.cfg.vpu.buffer // self.cfg.vpu.lanes
        while len(self.b_reads) > 2 * depth:
            self.b_reads.popleft()
            self.b_base += 1

    def _done_vpu(self, c):
        x = c.extra
        op = x["op"]
        if op is VpuOp.LOAD_P:
            done = (x["out_last"] if x["out_last"] is not None else c.cur) + 2
        else:
            ports = [StorePort.VPU_S] if op in REDUCTIONS else [StorePort.VPU_Y]
            if op is VpuOp.REQUANT_DYN:
                ports.append(StorePort.VPU_S)
            done = max([self.last_take.get(p, c.t) for p in ports]) + VPU_STATUS
            if x["rows"] == 0:              # an error status: no data
                done = c.t + 4
                self.v_free = c.t + 1
        self.v_back_free = done
        self.v_statuses.append(done)
        return done

    # -- the KV-cache DMA ----------------------------------------------------------------------
    def _start_kv(self, c):
        pass

    def _done_kv(self, c):
        return c.t + KV_CYCLES


def _bursts(addr, nbytes):
    """Atoms per INCR burst of a row: at most 16, never across 4 KiB."""
    out = []
    a, end = addr - addr % ATOM_BYTES, addr + nbytes
    while a < end:
        page = (a // 4096 + 1) * 4096
        n = min(16, -(-(min(end, page) - a) // ATOM_BYTES))
        out.append(n)
        a += n * ATOM_BYTES
    return out


class Timing(CycleModel):
    """Cycles of every tile of a :class:`~.model.Machine` (module docstring).

    ``read_latency``/``write_latency``: the memory's (``verif.axi_mem.AxiMemory``; the tile
    testbench's default read latency is ``$SCOVILLE_MEM_LATENCY`` = 20). ``fetch_tail``: the
    cycle (after ``start``) until which a fetch burst of the program before is still arriving
    (the sequencer prefetches past END; a new program's first fetch waits for it: the
    testbench runs programs back to back), -1 for none. ``cycles(tile)``: from ``start`` to DONE
    (or to the error), None while the tile runs; :meth:`fetch_tail_after` the ``fetch_tail`` of
    a program started right after (as ``verif/tb_accel_tile.py`` starts the next job)."""

    def __init__(self, config, *, read_latency=20, write_latency=0, fetch_tail=-1):
        self.config, self.read_latency, self.write_latency = config, read_latency, write_latency
        self.fetch_tail = fetch_tail
        self.tiles = {}
        self.trace = None               # a list: every event's (tile, what, cycle, ...) goes there
        self.posts = {}                 # semaphore -> [(cycle, count)]
        self.taken = {}

    def log(self, *event):
        if self.trace is not None:
            self.trace.append(event)

    def cycles(self, tile):
        t = self.tiles.get(tile)
        return None if t is None else t.end

    def fetch_tail_after(self, tile):
        t = self.tiles[tile]
        return t.burst_end - t.end - 1 if t.end is not None and t.burst_end >= t.end else -1

    # -- semaphores across tiles -----------------------------------------------------------
    def post(self, sem, count, t):
        bisect.insort(self.posts.setdefault(sem, []), (t, count))

    def take(self, sem, count, t):
        need, total = self.taken.get(sem, 0) + count, 0
        for when, c in self.posts.get(sem, []):
            total += c
            if total >= need:
                t = max(t, when + 1)
                break
        self.taken[sem] = need
        return t

    # -- the hooks -------------------------------------------------------------------------
    def launch(self, tile, pc):
        self.tiles[tile] = _TileTime(self, tile, pc)
        if len(self.tiles) == 1:
            self.posts, self.taken = {}, {}

    def issue(self, tile, pc, opcode, fields):
        self.tiles[tile].issue(pc, opcode, fields)

    def unit_start(self, tile, unit, pc, cmd):
        self.tiles[tile].unit_start(unit, cmd)

    def unit_done(self, tile, unit, pc):
        self.tiles[tile].unit_done(unit)

    def beats(self, tile, port, count):
        t = self.tiles[tile]
        if count > 0:
            if isinstance(port, LoadPort):
                t.put_load(port, count)
            return                          # unit outputs: offered when computed
        k = -count
        if port in (StorePort.GEMM_C, StorePort.VPU_Y, StorePort.VPU_S):
            t.take_store(port, k)
        elif port in (LoadPort.GEMM_A, LoadPort.GEMM_B, LoadPort.GEMM_Q):
            t.take_gemm(port, k)
        else:
            t.take_vpu(port, k)

    def fault(self, tile, code, pc):
        self.tiles[tile].fault()
