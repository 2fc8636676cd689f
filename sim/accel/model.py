"""Functional model of the accelerator's tiles running programs: the bit-exact data semantics of
every instruction of ``hw/accel/isa.py``, no cycles.

A :class:`Machine` holds the HBM (:class:`Memory`: an ``np.uint8`` image of part of the address
space, with a base address), the semaphores shared by its tiles and one :class:`TileModel` per
tile. A tile is what ``hw/accel/tile.py`` builds: a sequencer issuing in program order into the
command queues of five units that run concurrently, each in its own command order —

* the load DMA (LOAD: a window of HBM into a unit port as beats of ``2**beat_log2`` bytes, the
  last beat of each row zero-padded; each beat in the low bytes of the port's word),
* the store DMA (STORE: ``ceil(row_bytes / beat)`` beats per row from a unit port, the low
  ``beat`` bytes of each word, cut at ``row_bytes``: only the window's bytes are written),
* the GEMM engine (:class:`GemmEngine`: ``hw.gemm.GEMM``'s A/B/C/Q buffers and commands),
* the vector unit (``verif.vpu_model.VPUModel``, fed row by row from its ports),
* the KV-cache DMA (``verif.kv_model.PagedKV`` on the same memory).

Units meet on the port queues (a GEMM ``LOAD_B`` takes the beats a ``LOAD gemm_b`` brings,
whichever is issued first); a unit command that needs beats not yet there waits, and takes
them as they come. As in the tile, the load DMA delivers in LOAD order (one router): a LOAD's
beats reach its port once every beat of the LOAD before has been taken, and a LOAD is answered
(its error too) after its last beat was taken — except ``vpu_b``, whose beats go into the row
buffer in front of the vector unit (``buffer / lanes`` beats): such a LOAD is answered once its
beats are in the buffer, and while the buffer is full it waits, with every LOAD after it. The
vector unit takes a beat of ``a`` and of ``b`` together (ADD, MUL, ROPE), so a program loads a
row of ``b``, then the row of ``a`` it pairs with (``a`` first hangs). A GEMM or vector-unit
command is answered once its output has been taken from its port (``hw.gemm``: output buffer
empty; ``hw.vpu``: status after the data): a LOAD whose beats no unit takes, or a result no
STORE takes, leaves its unit waiting (the beats are the hung tile's ``leftover``).
The units' command ports are the tile's: the GEMM engine takes a command once the LOAD_*/STORE
before it is done (a COMPUTE it hands on at once), the vector unit once the previous command
has taken its last input beat; until then the sequencer waits (so a program that issues a
unit's second command before the data of its first hangs, as on the tile).
Output queues are not bounded here (the units' output buffers are: 8 GEMM beats, a few VPU
rows), so an order of STOREs that overflows one is not seen. The sequencer
waits on FENCE (the units of the mask idle), WAIT (the semaphore), END (every unit idle) and
on a unit with ``outstanding`` unanswered commands. The model runs the tiles round-robin, one
instruction per tile per round, each followed by its units running as far as their data lets
them; since every queue has one producer and one consumer, the results do not depend on that
order. When no tile can move, a WAIT with a timeout ends with TIMEOUT (the model has no cycles:
"never satisfied" is all it can tell) and any other blocked tile is reported *hung* with what
it waits for (the hardware would wait for ever).

Errors (:class:`~scoville.hw.accel.isa.ErrCode`) stop the tile with ``err_code`` and
``err_pc``, as the sequencer: BAD_OPCODE (0 included), BAD_OPERAND (:func:`.asm.move_problem`
with the tile's beat sizes on the effective address ``addr + iter * iter_stride``, so an
iteration off the atom grid stops at its LOAD/STORE before any access; REPEAT of length 0 or
inside a body; a KV that is the last word of a REPEAT body, its descriptor outside it),
FETCH/LOAD/STORE (an AXI error response: an atom in one of :class:`Memory`'s ``errors``
ranges), UNIT (a GEMM or VPU status other than OK, at the address of the command's instruction),
TIMEOUT, KV (the descriptor's error; its status word is written), RANGE (a window outside
``[0, hbm_bytes)``, refused before any access) and ABORT (:meth:`Machine.abort`). After an
error the tile's queues and unit commands are dropped (the sequencer's unit reset); buffer
memories keep their contents. Launching tiles while none runs clears the semaphores (a new
launch starts from 0).

Not an ErrCode: :class:`ModelError`, for what the model cannot decide — an access inside the
HBM but outside the image, a STREAM gather (the accelerator gives it no destination).

Hazards: a LOAD that reads bytes a STORE or KV descriptor of any tile has written with no
FENCE on that unit since is a race on the hardware (the DMAs run concurrently), though the
model, running eagerly, sees the data written. Each is recorded in the tile's ``hazards``.

Cycles: none here. Every event goes through a :class:`CycleModel` (``timing=``), whose methods
this model calls and ignores; :class:`~.timing.Timing` turns them into the tile's cycles.
"""

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from scoville.hw.accel.isa import (ATOM_BYTES, INSTR_BYTES, SEMAPHORES, ErrCode, LoadPort,
                                   Opcode, StorePort, Unit)
from scoville.hw.gemm import Op as GemmOp, QParam, Status as GemmStatus
from scoville.hw.kvdma.descriptors import Err as KvErr, Flag as KvFlag, status_word
from scoville.hw.vpu.layouts import (ChannelParam, FMT_BITS, Fmt, Op as VpuOp, ScalarWord,
                                     Status as VpuStatus, USES_B)
from scoville.verif.gemm_model import wrap32
from scoville.verif.kv_model import KVConfig, PagedKV, unpack_descriptor
from scoville.verif.vpu_model import VPUModel, check_command

from .asm import decode_word, move_problem, pack, unpack
from .config import PORT_NAMES, TileConfig


__all__ = ["Memory", "Machine", "TileModel", "TileResult", "GemmEngine", "CycleModel", "ModelError",
           "run_program"]

_OPCODES = {o.value for o in Opcode}
_GEMM_OPS = {o.value for o in GemmOp}
_ALL_UNITS = Unit(sum(u.value for u in Unit))


class ModelError(Exception):
    """Something the model cannot decide (not an error the hardware reports)."""


class _Fault(Exception):
    def __init__(self, code, pc=None):
        super().__init__(code)
        self.code, self.pc = code, pc


# ---- memory ----------------------------------------------------------------------------------

class Memory:
    """The HBM as the tiles see it: addresses ``[0, hbm_bytes)``, of which ``[base, base +
    len(data))`` are modelled by ``data`` (an ``np.uint8`` array, shared, not copied).
    ``errors``: ``(lo, hi)`` address ranges that answer an AXI error (SLVERR/DECERR)."""

    def __init__(self, hbm_bytes, *, base=0, size=None, data=None, errors=()):
        if data is None:
            data = np.zeros(hbm_bytes - base if size is None else size, np.uint8)
        self.data = data if isinstance(data, np.ndarray) else np.frombuffer(bytearray(data), np.uint8)
        if self.data.dtype != np.uint8 or self.data.ndim != 1:
            raise ModelError("memory data: a 1-D np.uint8 array is needed")
        self.hbm_bytes, self.base = hbm_bytes, base
        if base < 0 or base + len(self.data) > hbm_bytes:
            raise ModelError(f"memory image [{base:#x}, {base + len(self.data):#x}) is not inside the "
                             f"HBM [0, {hbm_bytes:#x})")
        self.errors = [tuple(e) for e in errors]

    def _offset(self, addr, n):
        if addr < self.base or addr + n > self.base + len(self.data):
            raise ModelError(f"access [{addr:#x}, {addr + n:#x}) is outside the modelled image "
                             f"[{self.base:#x}, {self.base + len(self.data):#x})")
        return addr - self.base

    def read(self, addr, n):
        o = self._offset(addr, n)
        return self.data[o:o + n].copy()

    def write(self, addr, values):
        values = np.frombuffer(bytes(values), np.uint8) if not isinstance(values, np.ndarray) else values
        o = self._offset(addr, len(values))
        self.data[o:o + len(values)] = values

    def window(self, addr, rows, row_bytes, stride):
        """The window's bytes as a ``(rows, row_bytes)`` array (a copy)."""
        o = self._offset(addr, (rows - 1) * stride + row_bytes)
        idx = o + np.arange(rows)[:, None] * stride + np.arange(row_bytes)[None, :]
        return self.data[idx]

    def faulty(self, addr, n):
        """Whether ``[addr, addr + n)`` touches an error range."""
        return any(addr < hi and lo < addr + n for lo, hi in self.errors)

    def faulty_atoms(self, addr, n):
        """Per 32-byte atom of ``[addr, addr + n)`` (``addr`` aligned), whether its bytes touch
        an error range: the AXI granule (a read atom there comes back as zeros, a write atom is
        not written; ``verif.tile_dma_model``'s rule)."""
        lo = addr + np.arange(0, n, ATOM_BYTES)
        hi = np.minimum(lo + ATOM_BYTES, addr + n)
        bad = np.zeros(len(lo), bool)
        for elo, ehi in self.errors:
            bad |= (lo < ehi) & (elo < hi)
        return bad

    def __len__(self):
        return self.base + len(self.data)

    def __getitem__(self, key):
        """Absolute-address slices (the view ``verif.kv_model.PagedKV`` indexes)."""
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise ModelError("memory: only address slices are modelled")
        start = key.start or 0
        stop = len(self) if key.stop is None else key.stop
        o = self._offset(start, stop - start)
        return self.data[o:o + stop - start]


# ---- cycle model hooks -------------------------------------------------------------------------

class CycleModel:
    """The hooks of a cycle model (:class:`~.timing.Timing` is the tile's). The machine calls
    each method at the event it names, in the functional model's order (causal: a unit command
    is issued only once the unit could take it, see the module docstring), and ignores what it
    returns; this base class does nothing. ``unit`` is a :class:`~scoville.hw.accel.isa.Unit`;
    ``cmd``/``fields`` the command's fields (a LOAD/STORE's resolved: effective ``addr``,
    ``port`` a LoadPort/StorePort)."""

    def launch(self, tile, pc):
        """``tile`` starts its program at ``pc``."""

    def issue(self, tile, pc, opcode, fields):
        """The sequencer of ``tile`` issued the instruction at ``pc``."""

    def blocked(self, tile, pc, reason):
        """The sequencer cannot issue the instruction at ``pc`` yet."""

    def unit_start(self, tile, unit, pc, cmd):
        """``unit`` began the command issued by the instruction at ``pc``."""

    def unit_done(self, tile, unit, pc):
        """``unit`` answered that command."""

    def beats(self, tile, port, count):
        """``count`` beats entered (``count > 0``: put by the port's producer) or left (taken by
        its consumer) a port queue; the vector unit's two operands are taken together, ``a``
        first."""

    def memory(self, tile, unit, kind, addr, rows, row_bytes, stride):
        """``unit`` read (``kind`` "read") or wrote ("write") an HBM window."""

    def fault(self, tile, code, pc):
        """``tile`` stopped with an error."""


# ---- the GEMM engine -------------------------------------------------------------------------

def _bytes_rows(beats, width):
    """Beats (bytes objects of ``width`` bytes) as a ``(len, width)`` uint8 array."""
    return np.frombuffer(b"".join(beats), np.uint8).reshape(len(beats), width)


def _i8(a):
    return a.view(np.int8).astype(np.int64)


class GemmEngine:
    """``hw.gemm.GEMM``'s architectural state and commands, word for word: the A buffer
    (``a_depth`` words of R int8), B (``b_depth`` x C int8), C (``c_depth`` x C int32) and the
    store parameters (``ceil(max_n / C)`` words of C :data:`~scoville.hw.gemm.QParam`), all
    starting at zero. Commands read and write the buffers from word 0 in the layouts of the
    module docstring of ``hw/gemm.py``; COMPUTE writes only the C lanes inside N, so lanes past
    N keep what they held, and STORE sends whole words (past-N lanes included)."""

    def __init__(self, params):
        self.p = p = params
        R, C = p.rows, p.cols
        self.a = np.zeros((p.a_depth, R), np.int8)
        self.b = np.zeros((p.b_depth, C), np.int8)
        self.c = np.zeros((p.c_depth, C), np.int32)
        self.q = np.zeros((-(-p.max_n // C), C, 3), np.int64)    # bias, mult, shift

    def sizes(self, f):
        R, C = self.p.rows, self.p.cols
        kt, mt, nt = -(-f["k"] // R), -(-f["m"] // R), -(-f["n"] // C)
        a_words = f["m"] * kt if self.p.dataflow == "ws" else f["k"] * mt
        return kt, mt, nt, a_words, f["k"] * nt, f["m"] * nt

    def status(self, f):
        """The status the engine answers for command ``f`` (raw fields) before touching data."""
        if f["op"] not in {o.value for o in GemmOp}:
            return GemmStatus.BAD_OP
        op, m, k, n, p = GemmOp(f["op"]), f["m"], f["k"], f["n"], self.p
        _, _, _, a_words, b_words, c_words = self.sizes(f)
        a_ok, b_ok, c_ok, n_ok = a_words <= p.a_depth, b_words <= p.b_depth, c_words <= p.c_depth, n <= p.max_n
        ok = {GemmOp.LOAD_A: m and k and a_ok, GemmOp.LOAD_B: k and n and b_ok, GemmOp.LOAD_Q: n and n_ok,
              GemmOp.COMPUTE: m and k and n and a_ok and b_ok and c_ok,
              GemmOp.STORE: m and n and c_ok and n_ok}[op]
        return GemmStatus.OK if ok else GemmStatus.BAD_SIZE

    def run(self, f, take, put):
        """Execute command ``f`` (a generator: ``take(port, n)`` yields until ``n`` beats are
        there, ``put(port, words)`` emits). Returns the status."""
        status = self.status(f)
        if status is not GemmStatus.OK:
            return status
        op, R, C = GemmOp(f["op"]), self.p.rows, self.p.cols
        kt, mt, nt, a_words, b_words, c_words = self.sizes(f)
        if op is GemmOp.LOAD_A:
            self.a[:a_words] = _bytes_rows((yield from take(LoadPort.GEMM_A, a_words)), R).view(np.int8)
        elif op is GemmOp.LOAD_B:
            self.b[:b_words] = _bytes_rows((yield from take(LoadPort.GEMM_B, b_words)), C).view(np.int8)
        elif op is GemmOp.LOAD_Q:
            for i, beat in enumerate((yield from take(LoadPort.GEMM_Q, f["n"]))):
                q = unpack(QParam, int.from_bytes(beat, "little"))
                self.q[i // C, i % C] = (q["bias"], q["mult"], q["shift"])
        elif op is GemmOp.COMPUTE:
            self._compute(f, kt, mt, nt)
        else:
            put(StorePort.GEMM_C, self._store(f, nt))
        return status

    def _compute(self, f, kt, mt, nt):
        m, k, n, R, C = f["m"], f["k"], f["n"], self.p.rows, self.p.cols
        if self.p.dataflow == "ws":
            # row m in words m*kt .. m*kt+kt-1; lanes past K meet the zero weights of rows past K
            a = self.a[:m * kt].astype(np.int64).reshape(m, kt * R)[:, :k]
        else:
            # word k*mt + t holds rows t*R .. t*R+R-1 of column k
            a = self.a[:k * mt].astype(np.int64).reshape(k, mt * R)[:, :m].T
        b = self.b[:k * nt].astype(np.int64).reshape(k, nt * C)
        c = self.c[:m * nt].reshape(m, nt * C)      # a view: written in place
        old = c[:, :n].astype(np.int64) if f["accumulate"] else 0
        c[:, :n] = wrap32(a @ b[:, :n] + old).astype(np.int32)

    def _store(self, f, nt):
        m, C = f["m"], self.p.cols
        words = self.c[:m * nt].astype(np.int64)
        q = self.q[np.arange(m * nt) % nt]
        s = words + (q[..., 0] if f["bias"] else 0)
        if f["requant"]:
            shift = q[..., 2]
            rounding = np.where(shift > 0, np.left_shift(np.int64(1), np.maximum(shift - 1, 0)), 0)
            out = np.zeros((m * nt, 4 * C), np.uint8)
            out[:, :C] = np.clip((s * q[..., 1] + rounding) >> shift, -128, 127).astype(np.int8).view(np.uint8)
        else:
            out = wrap32(s).astype("<i4").view(np.uint8).reshape(m * nt, 4 * C)
        return [bytes(row) for row in out]


# ---- results -----------------------------------------------------------------------------------

@dataclass
class TileResult:
    """How a tile's program ended: ``state`` "done", "error" or "hung" (``hung`` says what it
    waits for); ``err_code``/``err_pc`` as the tile's CSRs; ``retired`` instructions issued
    (a KV and its descriptor count two, END none, as the sequencer's counter); ``leftover``
    beats still in a port queue at the end, by port name; ``hazards`` (module docstring)."""
    tile: int
    state: str
    err_code: ErrCode = ErrCode.NONE
    err_pc: int = 0
    retired: int = 0
    hung: str = None
    leftover: dict = field(default_factory=dict)
    hazards: list = field(default_factory=list)

    @property
    def ok(self):
        return self.state == "done"


class _UnitState:
    def __init__(self, unit):
        self.unit, self.cmds, self.gen, self.pc, self.waiting = unit, deque(), None, None, None
        self.cmd, self.input_done = None, False

    @property
    def pending(self):
        return len(self.cmds) + (self.gen is not None)


class _Hazards:
    """Windows written by a STORE or KV descriptor, per (tile, unit), until a FENCE on it."""

    def __init__(self):
        self.writes = {}

    def wrote(self, tile, unit, pc, starts, ends):
        self.writes.setdefault((tile, unit), []).append((pc, np.asarray(starts), np.asarray(ends)))

    def fence(self, tile, units):
        for u in list(self.writes):
            if u[0] == tile and u[1] in units:
                del self.writes[u]

    def check(self, tile, unit, starts, ends):
        """``(address, writer tile, writer unit, writer pc)`` of the first overlap, or None."""
        starts, ends = np.asarray(starts), np.asarray(ends)
        for (wt, wu), entries in self.writes.items():
            if (wt, wu) == (tile, unit):
                continue
            for pc, ws, we in entries:
                j = np.searchsorted(we, starts, side="right")
                hit = (j < len(ws)) & (ws[np.minimum(j, len(ws) - 1)] < ends)
                if hit.any():
                    i = int(np.flatnonzero(hit)[0])
                    return max(int(starts[i]), int(ws[j[i]])), wt, wu, pc
        return None


def _rows(addr, rows, row_bytes, stride):
    starts = addr + np.arange(rows, dtype=np.int64) * stride
    return starts, starts + row_bytes


# ---- one tile ------------------------------------------------------------------------------------

class TileModel:
    """One tile: sequencer state, units, port queues (see the module docstring)."""

    def __init__(self, machine, index):
        self.machine, self.index, self.cfg = machine, index, machine.config
        v = self.cfg.vpu
        self.gemm = GemmEngine(self.cfg.gemm)
        self.vpu = VPUModel(lanes=v.lanes, buffer=v.buffer, channels=v.channels, rope_max=v.rope_max)
        self.queues = {p: deque() for p in list(LoadPort) + list(StorePort)}
        self.units = {u: _UnitState(u) for u in Unit}
        self.state, self.pc, self.retired = "idle", 0, 0
        self.err_code, self.err_pc = ErrCode.NONE, 0
        self.hazards, self.hung = [], None
        self.loop_on, self.loop_start, self.loop_end, self.loop_iter, self.loop_count = False, 0, 0, 0, 0
        self.blocked_on = None       # (kind, detail) of the instruction the sequencer waits on
        self.blocked_timeout = 0     # the timeout of the WAIT it waits on
        self.events = 0

    @property
    def timing(self):
        return self.machine.timing

    # -- control ---------------------------------------------------------------------------
    def start(self, pc):
        """Launch the program at byte address ``pc`` (low 5 bits ignored, as ``prog_base``)."""
        self.state, self.pc, self.retired = "running", pc & ~(INSTR_BYTES - 1), 0
        self.err_code, self.err_pc, self.hazards, self.hung = ErrCode.NONE, 0, [], None
        self.loop_on, self.blocked_on, self.blocked_timeout = False, None, 0
        self.timing.launch(self.index, self.pc)

    def _reset_units(self):
        for q in self.queues.values():
            q.clear()
        for u in self.units.values():
            u.cmds.clear()
            u.gen = u.waiting = None

    def fault(self, code, pc):
        if self.state != "running":
            return
        self.state, self.err_code, self.err_pc = "error", ErrCode(code), pc
        self.blocked_on = None
        self._reset_units()
        self.timing.fault(self.index, self.err_code, pc)

    def result(self):
        leftover = {PORT_NAMES[p]: len(q) for p, q in self.queues.items() if q}
        return TileResult(self.index, self.state, self.err_code, self.err_pc, self.retired, self.hung,
                          leftover, list(self.hazards))

    # -- the sequencer -----------------------------------------------------------------------
    def _fetch(self, pc):
        mem = self.machine.memory
        if pc + INSTR_BYTES > self.cfg.hbm_bytes or mem.faulty(pc, INSTR_BYTES):
            raise _Fault(ErrCode.FETCH, pc)
        return int.from_bytes(mem.read(pc, INSTR_BYTES).tobytes(), "little")

    def _advance(self):
        self.retired += 1
        nxt = self.pc + INSTR_BYTES
        if self.loop_on and nxt == self.loop_end:
            if self.loop_iter + 1 < self.loop_count:
                self.loop_iter += 1
                self.pc = self.loop_start
                return
            self.loop_on = False
        self.pc = nxt

    def _idle(self, units):
        return all(self.units[u].pending == 0 for u in Unit if u in units)

    def _push(self, unit, pc, cmd):
        self.units[unit].cmds.append((pc, cmd))

    def step(self):
        """Issue at most one instruction, then run the units as far as they go. Returns
        whether anything changed."""
        if self.state != "running":
            return False
        before = self.events
        try:
            self._issue()
        except _Fault as f:
            self.fault(f.code, f.pc)
        self._run_units()
        return self.events != before

    def _blocked(self, kind, detail):
        if self.blocked_on != (kind, detail):
            self.timing.blocked(self.index, self.pc, detail)
        self.blocked_on = (kind, detail)

    def _issue(self):
        pc = self.pc
        op, f = decode_word(self._fetch(pc))
        if f is None:
            raise _Fault(ErrCode.BAD_OPCODE, pc)
        issued, advance = True, True
        if op in (Opcode.LOAD, Opcode.STORE):
            issued = self._move(op, pc, f)
            f = self._moved if issued else f
        elif op in (Opcode.GEMM, Opcode.VPU):
            issued = self._unit_cmd(Unit.GEMM if op == Opcode.GEMM else Unit.VPU, pc, f)
        elif op == Opcode.KV:
            if self.loop_on and pc + INSTR_BYTES == self.loop_end:
                raise _Fault(ErrCode.BAD_OPERAND, pc)   # its descriptor would be outside the body
            self._advance()                     # the descriptor is the word after
            f = self._fetch(self.pc)
            self._push(Unit.KV, pc, f)
        elif op == Opcode.SIGNAL:
            self.machine.post(f["sem"], f["count"])
        elif op == Opcode.WAIT:
            issued = self.machine.take(f["sem"], f["count"])
            if not issued:
                self._blocked("wait", f"WAIT at {pc:#x}: semaphore {f['sem']} = "
                                      f"{self.machine.semaphores[f['sem']]} < {f['count']}")
                self.blocked_timeout = f["timeout"]
        elif op == Opcode.FENCE:
            units = Unit(f["units"])
            issued = self._idle(units)
            if issued:
                self.machine.hazards.fence(self.index, [u for u in Unit if u in units])
            else:
                self._blocked("fence", f"FENCE at {pc:#x}: " + self._busy_text(units))
        elif op == Opcode.REPEAT:
            if self.loop_on or f["length"] == 0:
                raise _Fault(ErrCode.BAD_OPERAND, pc)
            advance = False
            if f["count"] == 0:                 # skip the body
                self.retired += 1
                self.pc = pc + INSTR_BYTES * (f["length"] + 1)
            else:
                self._advance()
                self.loop_on, self.loop_iter, self.loop_count = True, 0, f["count"]
                self.loop_start, self.loop_end = self.pc, self.pc + INSTR_BYTES * f["length"]
        elif op == Opcode.END:
            issued, advance = self._idle(_ALL_UNITS), False
            if issued:                          # not counted: the sequencer's END does not advance
                self.state = "done"
                self.machine.hazards.fence(self.index, list(Unit))
            else:
                self._blocked("end", f"END at {pc:#x}: " + self._busy_text(_ALL_UNITS))
        if not issued:
            return
        self.blocked_on = None
        if advance:
            self._advance()
        self.events += 1
        self.timing.issue(self.index, pc, op, f)

    def _busy_text(self, units):
        busy = []
        for u in Unit:
            s = self.units[u]
            if u in units and s.pending:
                what = s.waiting or "running"
                busy.append(f"{u.name.lower()} ({s.pending} pending; the command at {s.pc:#x} waits for {what})"
                            if s.gen is not None else f"{u.name.lower()} ({s.pending} pending)")
        return "; ".join(busy) or "nothing"

    def _room(self, unit, pc):
        if self.units[unit].pending < self.cfg.outstanding:
            return True
        self._blocked("room", f"{unit.name} at {pc:#x}: {self.cfg.outstanding} commands outstanding")
        return False

    def _move(self, op, pc, f):
        eff = f["addr"] + (self.loop_iter * f["iter_stride"] if self.loop_on else 0)
        if move_problem(op, f, self.cfg, addr=eff):
            raise _Fault(ErrCode.BAD_OPERAND, pc)
        end = eff + (f["rows"] - 1) * f["stride"] + f["row_bytes"]
        if eff < 0 or end > self.cfg.hbm_bytes:
            raise _Fault(ErrCode.RANGE, pc)
        unit = Unit.LOAD if op == Opcode.LOAD else Unit.STORE
        if not self._room(unit, pc):
            return False
        port = (LoadPort if op == Opcode.LOAD else StorePort)(f["port"])
        self._moved = dict(f, addr=eff, iter_stride=0, port=port)
        self._push(unit, pc, self._moved)
        return True

    def _unit_cmd(self, unit, pc, f):
        if not self._room(unit, pc) or not self._takes_command(unit, pc):
            return False
        self._push(unit, pc, f)
        return True

    def _takes_command(self, unit, pc):
        """Whether the unit's command port is ready, as in the tile: the GEMM engine's decoder
        holds one command until it is done, except a COMPUTE, which it hands on at once (so a
        LOAD_*/STORE blocks the sequencer until it has finished); the vector unit's front end
        takes a command once the previous one has taken all its input beats."""
        s = self.units[unit]
        cmds = ([s.cmd] if s.gen is not None else []) + [c for _, c in s.cmds]
        if unit is Unit.GEMM:
            busy = next((c for c in cmds if c.get("op") != GemmOp.COMPUTE.value), None)
            what = busy and f"the GEMM engine is busy with {GemmOp(busy['op']).name if busy['op'] in _GEMM_OPS else busy['op']}"
        else:
            busy = s.cmds or (s.gen is not None and not s.input_done)
            what = busy and "the vector unit has not taken all the inputs of its previous command"
        if not busy:
            return True
        at = s.pc if s.gen is not None else s.cmds[0][0]
        self._blocked("busy", f"{unit.name} at {pc:#x}: {what} (at {at:#x})")
        return False

    # -- the units -----------------------------------------------------------------------------
    def _run_units(self):
        while self.state == "running":
            before = self.events
            for u in self.units.values():
                self._drive(u)
            if self.events == before:
                return

    def _drive(self, u):
        while self.state == "running":
            if u.gen is None:
                if not u.cmds:
                    return
                u.pc, cmd = u.cmds.popleft()
                u.cmd, u.input_done = cmd, False
                u.gen = getattr(self, "_exec_" + u.unit.name.lower())(cmd)
                u.waiting = None
                self.events += 1
                self.timing.unit_start(self.index, u.unit, u.pc, cmd)
            try:
                u.waiting = next(u.gen)
                return
            except StopIteration:
                u.gen = u.waiting = None
                self.events += 1
                self.timing.unit_done(self.index, u.unit, u.pc)
            except _Fault as f:
                self.fault(f.code, u.pc)
                return

    def _take(self, port, n):
        """``n`` beats from ``port``, taken as they come (a generator)."""
        q, got = self.queues[port], []
        while True:
            k = min(n - len(got), len(q))
            if k:
                got += [q.popleft() for _ in range(k)]
                self.events += 1
                self.timing.beats(self.index, port, -k)
            if len(got) == n:
                return got
            yield f"{n} beats on {PORT_NAMES[port]} (has {len(got)})"

    def _take_pair(self, pa, pb, n):
        """``n`` beats of ``pa`` and of ``pb`` taken together, beat by beat (the vector unit's
        two operands): a beat of one waits for the other's."""
        qa, qb, got = self.queues[pa], self.queues[pb], []
        while True:
            k = min(n - len(got), len(qa), len(qb))
            if k:
                got += [(qa.popleft(), qb.popleft()) for _ in range(k)]
                self.events += 1
                self.timing.beats(self.index, pa, -k)
                self.timing.beats(self.index, pb, -k)
            if len(got) == n:
                return [a for a, _ in got], [b for _, b in got]
            yield (f"{n} beats on {PORT_NAMES[pa]} and {PORT_NAMES[pb]} together (has {len(got)}; "
                   f"{len(qa)} and {len(qb)} waiting)")

    def _drained(self, port):
        """Wait until ``port``'s beats have been taken: a unit answers a command once its
        output has left (the GEMM engine's output buffer, the vector unit's queues empty)."""
        q = self.queues[port]
        while q:
            yield f"its {len(q)} beats on {PORT_NAMES[port]} to be taken"

    def _put(self, port, words):
        self.queues[port].extend(words)
        self.events += 1
        self.timing.beats(self.index, port, len(words))

    def _hazard(self, unit, pc, starts, ends):
        hit = self.machine.hazards.check(self.index, unit, starts, ends)
        if hit:
            addr, wt, wu, wpc = hit
            self.hazards.append(f"{unit.name} at {pc:#x} reads {addr:#x}, written by the {wu.name} at "
                                f"{wpc:#x} of tile {wt} with no FENCE {wu.name.lower()} since")

    def _bad_atoms(self, addr, rows, rb, stride):
        """``(rows, ceil(rb / 32))``: the atoms of the window that get an AXI error (``addr``
        and, for several rows, ``stride`` are aligned: the sequencer refused anything else)."""
        mem, na = self.machine.memory, -(-rb // ATOM_BYTES)
        if not mem.errors:
            return np.zeros((rows, na), bool)
        return np.stack([mem.faulty_atoms(addr + r * stride, rb) for r in range(rows)])

    def _exec_load(self, mv):
        mem, beat = self.machine.memory, 1 << mv["beat_log2"]
        addr, rows, rb, stride = mv["addr"], mv["rows"], mv["row_bytes"], mv["stride"]
        starts, ends = _rows(addr, rows, rb, stride)
        self._hazard(Unit.LOAD, self.units[Unit.LOAD].pc, starts, ends)
        bad = self._bad_atoms(addr, rows, rb, stride)
        window = mem.window(addr, rows, rb, stride) if not bad.all() else np.zeros((rows, rb), np.uint8)
        window[np.repeat(bad, ATOM_BYTES, axis=1)[:, :rb]] = 0
        self.timing.memory(self.index, Unit.LOAD, "read", addr, rows, rb, stride)
        nb = -(-rb // beat)
        width = self.cfg.port_bytes(mv["port"])
        words = np.zeros((rows * nb, width), np.uint8)
        padded = np.zeros((rows, nb * beat), np.uint8)
        padded[:, :rb] = window
        words[:, :beat] = padded.reshape(rows * nb, beat)
        port, q = mv["port"], self.queues[mv["port"]]
        beats = [bytes(w) for w in words]
        if port is LoadPort.VPU_B:
            # the row buffer in front of the vector unit's b: the LOAD ends once its beats are
            # in; while it is full, the DMA (and every LOAD after this one) waits
            room = self.cfg.vpu.buffer // self.cfg.vpu.lanes
            while beats:
                k = min(len(beats), room - len(q))
                if k:
                    self._put(port, beats[:k])
                    del beats[:k]
                if beats:
                    yield f"room in the vpu_b row buffer for {len(beats)} more beats (holds {room})"
        else:
            self._put(port, beats)
            # in order: the next LOAD's beats come once its unit has taken all of these, and
            # the status (an AXI error included) follows the last one
            while q:
                yield f"{PORT_NAMES[port]} to take {len(q)} more beats"
        if bad.any():
            raise _Fault(ErrCode.LOAD)

    def _exec_store(self, mv):
        mem, beat = self.machine.memory, 1 << mv["beat_log2"]
        addr, rows, rb, stride = mv["addr"], mv["rows"], mv["row_bytes"], mv["stride"]
        nb, pc = -(-rb // beat), self.units[Unit.STORE].pc
        bad = self._bad_atoms(addr, rows, rb, stride)
        for r in range(rows):
            words = yield from self._take(mv["port"], nb)
            row = np.frombuffer(b"".join(w[:beat] for w in words)[:rb], np.uint8)
            a = addr + r * stride
            if not bad[r].any():
                mem.write(a, row)
                continue
            for j in np.flatnonzero(~bad[r]):       # an atom with an AXI error is not written
                mem.write(a + j * ATOM_BYTES, row[j * ATOM_BYTES:(j + 1) * ATOM_BYTES])
        starts, ends = _rows(addr, rows, rb, stride)
        self.machine.hazards.wrote(self.index, Unit.STORE, pc, starts, ends)
        self.timing.memory(self.index, Unit.STORE, "write", addr, rows, rb, stride)
        if bad.any():
            raise _Fault(ErrCode.STORE)

    def _exec_gemm(self, f):
        status = yield from self.gemm.run(f, self._take, self._put)
        if status is not GemmStatus.OK:
            raise _Fault(ErrCode.UNIT)
        yield from self._drained(StorePort.GEMM_C)

    def _exec_vpu(self, f):
        v = self.cfg.vpu
        if check_command(f, lanes=v.lanes, buffer=v.buffer, channels=v.channels,
                         rope_max=v.rope_max) is not VpuStatus.OK:
            raise _Fault(ErrCode.UNIT)
        op, n, rows, lanes = VpuOp(f["op"]), f["n"], f["rows"], v.lanes
        unit = self.units[Unit.VPU]
        unit.input_done = op is VpuOp.LOAD_P        # the back end takes LOAD_P's beats
        if op is VpuOp.LOAD_P:
            params = [unpack(ChannelParam, int.from_bytes(b, "little"))
                      for b in (yield from self._take(LoadPort.VPU_P, n))]
            p = np.array([[q["offset"], q["mult"], q["shift"]] for q in params], np.int64)
            self.vpu.run({"op": op, "n": n, "rows": rows}, p=p)
            return
        nb = -(-n // lanes)
        in_w = FMT_BITS[Fmt(f["in_fmt"])] // 8
        for r in range(rows):
            b = None
            if op in USES_B:
                wa, words = yield from self._take_pair(LoadPort.VPU_A, LoadPort.VPU_B, nb)
                a = self._elements(wa, in_w, n)
                if op is VpuOp.ROPE:
                    b = _bytes_rows(words, 4 * lanes).view("<i2").reshape(nb * lanes, 2)[:n].astype(np.int64)
                    b = b[None]
                else:
                    b = self._elements(words, in_w, n)[None]
            else:
                a = self._elements((yield from self._take(LoadPort.VPU_A, nb)), in_w, n)
            unit.input_done = r == rows - 1
            row = dict(f, rows=1)
            if op is VpuOp.SOFTMAX and f["causal"]:
                row.update(causal=0, len=f["len"] + r)      # row r keeps len + r elements
            status, y, scalars = self.vpu.run(row, a[None], b)
            assert status is VpuStatus.OK
            if y is not None:
                self._put(StorePort.VPU_Y, self._beats(y[0], FMT_BITS[Fmt(f["out_fmt"])] // 8))
            if scalars is not None:
                s = np.asarray(scalars)[0]
                word = pack(ScalarWord, {"argmax": {"value": int(s[0]), "index": int(s[1])}}
                            if op is VpuOp.ARGMAX else {"value": int(s)})
                self._put(StorePort.VPU_S, [word.to_bytes(8, "little")])
        yield from self._drained(StorePort.VPU_Y)
        yield from self._drained(StorePort.VPU_S)

    def _elements(self, words, w, n):
        """Elements ``0..n-1`` of a row's beats: lane ``i`` of a beat at bytes ``[w*i, w*i+w)``."""
        lanes = self.cfg.vpu.lanes
        rows = _bytes_rows(words, 4 * lanes)[:, :lanes * w]
        return np.ascontiguousarray(rows).view(f"<i{w}").reshape(-1)[:n].astype(np.int64)

    def _beats(self, y, w):
        lanes = self.cfg.vpu.lanes
        nb = -(-len(y) // lanes)
        out = np.zeros((nb, 4 * lanes), np.uint8)
        packed = np.zeros(nb * lanes, f"<i{w}")
        packed[:len(y)] = y
        out[:, :lanes * w] = packed.view(np.uint8).reshape(nb, lanes * w)
        return [bytes(row) for row in out]

    def _exec_kv(self, desc):
        d = unpack_descriptor(desc)
        pc = self.units[Unit.KV].pc
        if d["flags"] & KvFlag.STREAM and d["op"] == 1:
            raise ModelError(f"KV at {pc:#x}: a STREAM gather has no destination in the accelerator")
        res = self.machine.kv.execute(desc)
        mem = self.machine.memory
        for item, dst, data in res.writes:
            if res.code != KvErr.OK and item >= res.item:
                break
            mem.write(dst, data)
            self.machine.hazards.wrote(self.index, Unit.KV, pc, [dst], [dst + len(data)])
        if d["status"]:
            mem.write(d["status"], status_word(d["op"], res.code, res.item).to_bytes(8, "little"))
        if res.code != KvErr.OK:
            raise _Fault(ErrCode.KV)
        return
        yield


# ---- the machine -------------------------------------------------------------------------------

class Machine:
    """``tiles`` tiles of ``config`` (a :class:`~.config.TileConfig`) on one ``memory`` (a
    :class:`Memory`; by default ``image_bytes`` of zeros from address 0), with the shared
    semaphores (16-bit, saturating, as ``hw.accel.semaphores``) and the KV-cache DMA's pool
    configurations ``kv_pools`` (``verif.kv_model.KVConfig``, one per pool)."""

    def __init__(self, config=None, *, tiles=1, memory=None, image_bytes=1 << 20, kv_pools=(),
                 timing=None):
        self.config = config or TileConfig()
        self.memory = memory or Memory(self.config.hbm_bytes, size=min(image_bytes, self.config.hbm_bytes))
        if self.memory.hbm_bytes != self.config.hbm_bytes:
            raise ModelError(f"memory: hbm_bytes {self.memory.hbm_bytes:#x} is not the configuration's "
                             f"{self.config.hbm_bytes:#x}")
        self.timing = timing or CycleModel()
        self.semaphores = [0] * SEMAPHORES
        self.hazards = _Hazards()
        self.kv = PagedKV(self.memory, list(kv_pools) or [KVConfig(0, 0, 1, 0, 0, 0, 0)])
        self.kv.pools = list(kv_pools)
        self.tiles = [TileModel(self, i) for i in range(tiles)]

    # -- semaphores -------------------------------------------------------------------------
    def post(self, sem, count):
        self.semaphores[sem] = min(0xFFFF, self.semaphores[sem] + count)

    def take(self, sem, count):
        if self.semaphores[sem] < count:
            return False
        self.semaphores[sem] -= count
        return True

    # -- programs ---------------------------------------------------------------------------
    def load(self, addr, program):
        """Write a program (words, or bytes) at ``addr``."""
        blob = program if isinstance(program, (bytes, bytearray)) else b"".join(
            int(w).to_bytes(INSTR_BYTES, "little") for w in program)
        self.memory.write(addr, blob)

    def start(self, pcs):
        """Launch tile ``i`` at ``pcs[i]`` (a list, or a dict tile -> pc; an int: tile 0)."""
        pcs = {0: pcs} if isinstance(pcs, int) else dict(enumerate(pcs)) if isinstance(pcs, list) else pcs
        if not any(t.state == "running" for t in self.tiles):
            self.semaphores = [0] * SEMAPHORES
        for i, pc in pcs.items():
            self.tiles[i].start(pc)

    def abort(self, tile):
        """The host's ``ctrl.abort``: ABORT at the instruction the tile is on (a running or
        hung tile)."""
        t = self.tiles[tile]
        if t.state == "hung":
            t.state, t.hung = "running", None
        t.fault(ErrCode.ABORT, t.pc)
        return t.result()

    def step(self):
        """One round: each running tile issues one instruction. Returns whether any moved."""
        moved = False
        for t in self.tiles:
            moved |= t.step()
        return moved

    def settle(self):
        """Step until no running tile can move; then end the WAITs that have a timeout with
        TIMEOUT (and step again), and mark the rest of the running tiles hung. Returns the
        results of the tiles that were started."""
        while True:
            while self.step():
                pass
            running = [t for t in self.tiles if t.state == "running"]
            timed = [t for t in running if t.blocked_on and t.blocked_on[0] == "wait" and t.blocked_timeout]
            if not timed:
                break
            for t in timed:
                t.fault(ErrCode.TIMEOUT, t.pc)
        for t in running:
            t.state, t.hung = "hung", t.blocked_on[1] if t.blocked_on else "nothing to do"
        return [t.result() for t in self.tiles if t.state != "idle"]

    def run(self, pcs):
        """Launch (:meth:`start`) and run to the end (:meth:`settle`): one :class:`TileResult`
        per launched tile."""
        self.start(pcs)
        return self.settle()


def run_program(program, *, config=None, memory=None, at=None, **machine_args):
    """Load ``program`` (words, or an :class:`~.asm.Program` at its base) at ``at`` on a
    one-tile machine and run it; returns ``(result, machine)``."""
    words = program.words if hasattr(program, "words") else program
    at = at if at is not None else getattr(program, "base", 0)
    m = Machine(config, memory=memory, **machine_args)
    m.load(at, words)
    return m.run(at)[0], m
