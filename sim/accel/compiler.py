"""A compiler from a small graph of tensor operations to per-tile programs and an HBM layout.

::

    g = Graph()
    x = g.input("x", (9, 40))                                   # int8 activations, M x K
    w = g.weight("w", w_int8)                                   # int8 weights, K x N
    h = g.matmul(x, w, bias=b, mult=m, shift=s)                 # int8 out (or out="int32")
    y = g.silu(h, mult_a=64, shift_a=0, mult_b=1, shift_b=4)    # vector-unit ops on rows
    g.output("y", y)
    c = compile(g, config, tiles=2)
    image = c.memory_image({"x": x_int8})                       # weights, programs, inputs
    ... run the programs (``scoville.sim.accel.runtime.run``) ...
    c.read_output(image, "y")

Tensors are 2-D (rows x columns), int8/int16/int32 (int64 for the vector unit's row scalars),
row-major in HBM, each row padded to 32 bytes (an :meth:`~.alloc.HBMAllocator.matrix`
region), so any row range is a LOAD/STORE window.

``matmul`` (``gemv``: the same with M = 1..8) is tiled onto the GEMM engine of a
:class:`~.config.TileConfig` (array R x C, buffers of ``a_depth``/``b_depth``/``c_depth`` words,
``max_n``): output columns in N chunks of ``n_t <= max_n``, rows in M chunks, the reduction in K
chunks accumulated in the C buffer (``COMPUTE accumulate``), with

* ``m_t * ceil(k_t / R) <= a_depth``, ``k_t * ceil(n_t / C) <= b_depth``,
  ``m_t * ceil(n_t / C) <= c_depth``;
* ``k_t`` = K or a multiple of 32 (an A window starts on an HBM atom), and every N chunk's
  first output byte on an atom; the compiler lays out each N chunk's weights (and
  bias/multiplier/shift words) in a region of their own, so weights never constrain it;
* a buffer loaded once when it stays valid (A across N chunks with one M and K chunk, B across M
  chunks with one K chunk); the tiling is the one with the fewest bytes moved (A and B loads,
  plus the detour below), among those that fit.

An int8 output whose N chunks cannot start on atoms (``max_n`` below 32) is computed as int32
into a scratch matrix and requantised by the vector unit (``REQUANT``: the same arithmetic as
the GEMM engine's, bit for bit: ``sat8(rshr((c + bias) * mult, shift))``).

With ``tiles=T`` a matmul's N is split into one column slice per tile (slices start on atoms),
each tile runs its own program and finds its weights on its own channel (``t % channels``);
vector-unit ops split their rows across the tiles. Inside a tile a ``FENCE store`` precedes any
LOAD of bytes a STORE of that tile wrote since its last fence; across tiles, an op that reads
what another tile wrote since the last barrier is preceded by a barrier: every tile fences its
stores, signals every other tile's semaphore and waits for its own (two semaphores per tile,
alternating, so that a fast tile's next signal is never taken for this one).

Vector-unit ops (``hw/vpu``): rows of ``n`` elements from HBM, results to HBM: elementwise maps
(``scale``, ``silu``, ``gelu``), ``softmax``, per-channel ops with a parameter table
(``requant``, ``rmsnorm``, ``layernorm``), ``requant_dyn`` (int8 rows plus each row's absolute
maximum) and reductions (``max``, ``sum``, ``sumsq``, ``argmax``: one int64 per row). Command
fields (``mult_a``, ``shift_a``, ``mult_b``, ``shift_b``, ``len``, ``causal``) are passed as
they are (``docs/vpu.md``). The two-operand ``add``, ``mul`` and ``rope`` (``b``: a {cos, sin}
pair per element) feed ``b`` through the tile's row buffer in front of the vector unit: a REPEAT
over groups of rows, each a LOAD of ``b`` rows (as many as the buffer holds) and the LOAD of the
``a`` rows they pair with, the STORE of the results issued before them.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from scoville.hw.accel.isa import ATOM_BYTES, SEMAPHORES
from scoville.hw.gemm import QParam
from scoville.hw.params import ParameterError, check_int
from scoville.hw.vpu.layouts import (ChannelParam, Fmt, Op as VpuOp, REDUCTIONS, Status as VpuStatus,
                                     USES_B, USES_CHANNELS)
from scoville.verif.vpu_model import check_command

from . import asm
from .alloc import HBMAllocator, round_up
from .config import TileConfig


__all__ = ["CompileError", "Tensor", "Graph", "Layout", "TileProgram", "Compiled", "compile",
           "matmul_tiling"]


class CompileError(ParameterError):
    """A graph the compiler cannot map onto the configuration (the message names the limit)."""


DTYPES = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64}
_FMT = {"int8": Fmt.INT8, "int16": Fmt.INT16, "int32": Fmt.INT32}
_MAX_FIELD = 65535                  # rows/m/k/n fields of moves and unit commands


def _log2(x):
    return x.bit_length() - 1


# ---- the graph -------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Tensor:
    """A value of the graph: ``shape`` (rows, columns), ``dtype`` a key of :data:`DTYPES`;
    ``kind`` "input", "weight" or "value" (an op's result)."""
    name: str
    shape: tuple
    dtype: str
    kind: str
    argmax: bool = False        # ARGMAX row scalars: (value, index) in one int64

    @property
    def rows(self):
        return self.shape[0]

    @property
    def cols(self):
        return self.shape[1]

    @property
    def elem(self):
        return np.dtype(DTYPES[self.dtype]).itemsize


@dataclass
class _Matmul:
    x: Tensor
    w: Tensor
    out: Tensor
    bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    use_bias: bool


@dataclass
class _Vpu:
    op: VpuOp
    a: Tensor
    b: Tensor
    y: Tensor            # rows out (None for reductions)
    s: Tensor            # row scalars (reductions, requant_dyn)
    params: np.ndarray   # (n, 3) offset, mult, shift for the per-channel ops
    fields: dict


def _int_vector(name, value, n, lo, hi):
    v = np.broadcast_to(np.asarray(value if value is not None else 0), (n,))
    if v.dtype.kind not in "iub" or ((v < lo) | (v > hi)).any():
        raise CompileError(f"{name}: values must be integers in {lo}..{hi} (one per output column, "
                           f"{n}), got {value!r}"[:300])
    return v.astype(np.int64)


class Graph:
    """Tensors and the operations between them, in program order (see the module docstring).
    Every method returns the :class:`Tensor` it makes; names are unique."""

    def __init__(self):
        self.tensors, self.ops, self.outputs, self.data = {}, [], {}, {}

    def _new(self, name, shape, dtype, kind, argmax=False):
        if not isinstance(name, str) or not name:
            raise CompileError(f"name: {name!r} is not accepted (accepted: a non-empty string)")
        if name in self.tensors:
            raise CompileError(f"{name!r}: a tensor of that name exists already")
        if len(shape) != 2:
            raise CompileError(f"{name}: shape {shape} is not 2-D (accepted: (rows, columns))")
        for what, v in zip(("rows", "columns"), shape):
            check_int(f"{name} {what}", int(v), 1, 1 << 24)
        t = Tensor(name, (int(shape[0]), int(shape[1])), dtype, kind, argmax)
        self.tensors[name] = t
        return t

    def _auto(self, name, what):
        return name or f"{what}{len(self.ops)}"

    def _mine(self, *tensors):
        for t in tensors:
            if t is not None and self.tensors.get(t.name) is not t:
                raise CompileError(f"{t.name}: not a tensor of this graph")

    def input(self, name, shape, dtype="int8"):
        """A tensor the host writes before the run (:meth:`Compiled.memory_image`)."""
        if dtype not in _FMT:
            raise CompileError(f"{name}: dtype {dtype!r} is not accepted (accepted: int8, int16, int32)")
        return self._new(name, shape, dtype, "input")

    def weight(self, name, array):
        """A constant int8 matrix (K x N weights of a matmul), placed by the compiler."""
        a = np.asarray(array)
        if a.ndim != 2 or a.dtype.kind not in "iu" or a.min() < -128 or a.max() > 127:
            raise CompileError(f"{name}: a 2-D array of int8 values is needed")
        t = self._new(name, a.shape, "int8", "weight")
        self.data[name] = a.astype(np.int8)
        return t

    def matmul(self, x, w, *, bias=None, mult=None, shift=None, out="int8", name=None):
        """``x @ w`` (x: M x K int8, w: a K x N :meth:`weight`), then per output column: int8
        ``sat8(rshr((acc + bias) * mult, shift))`` (``out="int8"``, ``mult`` and ``shift``
        needed) or int32 ``acc + bias`` (``out="int32"``, wrapped). ``bias`` int32, ``mult``
        int16, ``shift`` 0..63: arrays of N or scalars."""
        self._mine(x, w)
        if x.dtype != "int8" or w.kind != "weight":
            raise CompileError("matmul: x must be an int8 tensor and w a weight")
        if x.cols != w.rows:
            raise CompileError(f"matmul: x is {x.shape}, w is {w.shape} (accepted: x columns == w rows)")
        if out not in ("int8", "int32"):
            raise CompileError(f"matmul out: {out!r} is not accepted (accepted: int8, int32)")
        n = w.cols
        if out == "int8" and (mult is None or shift is None):
            raise CompileError("matmul: an int8 output needs mult and shift (per output column)")
        if out == "int32" and (mult is not None or shift is not None):
            raise CompileError("matmul: an int32 output takes no mult or shift (only a bias)")
        b = _int_vector("bias", bias, n, -(1 << 31), (1 << 31) - 1)
        m = _int_vector("mult", mult, n, -(1 << 15), (1 << 15) - 1)
        s = _int_vector("shift", shift, n, 0, 63)
        y = self._new(self._auto(name, "matmul"), (x.rows, n), out, "value")
        self.ops.append(_Matmul(x, w, y, b, m, s, bias is not None))
        return y

    def gemv(self, x, w, **kw):
        """:meth:`matmul` for decode: x has 1..8 rows."""
        if not 1 <= x.rows <= 8:
            raise CompileError(f"gemv: x has {x.rows} rows (accepted: 1..8; use matmul)")
        return self.matmul(x, w, **kw)

    def vpu(self, op, a, b=None, *, params=None, out="int8", name=None, **fields):
        """One vector-unit operation on the rows of ``a`` (``op`` a ``hw.vpu.layouts.Op`` or its
        name). ``b``: the second operand of ADD/MUL (same shape and dtype); ``params``: the
        per-channel (offset, mult, shift) table of REQUANT/RMSNORM/LAYERNORM, an (n, 3) array;
        ``out``: the output format; ``fields``: the command's other fields. Returns the result
        rows, or for a reduction the row scalars (rows x 1, int64); REQUANT_DYN returns
        ``(rows, scalars)``."""
        self._mine(a, b)
        try:
            op = op if isinstance(op, VpuOp) else VpuOp[str(op).upper()]
        except KeyError:
            raise CompileError(f"vpu op: {op!r} is not accepted (accepted: one of "
                               + ", ".join(o.name.lower() for o in VpuOp if o is not VpuOp.LOAD_P)
                               + ")") from None
        if op is VpuOp.LOAD_P:
            raise CompileError("vpu op: load_p is not compiled (it comes with the per-channel ops)")
        if a.dtype not in _FMT:
            raise CompileError(f"vpu {op.name.lower()}: input {a.name} is {a.dtype} (accepted: int8, int16, int32)")
        if out not in _FMT:
            raise CompileError(f"vpu out: {out!r} is not accepted (accepted: int8, int16, int32)")
        if (op in USES_B) != (b is not None):
            raise CompileError(f"vpu {op.name.lower()}: " + ("needs a second operand b" if op in USES_B
                                                             else "takes no second operand"))
        b_dtype = "int32" if op is VpuOp.ROPE else a.dtype      # ROPE: a {cos, sin} pair per element
        if b is not None and (b.shape != a.shape or b.dtype != b_dtype):
            raise CompileError(f"vpu {op.name.lower()}: b is {b.shape} {b.dtype}, a is {a.shape} {a.dtype} "
                               f"(accepted: b of a's shape, {b_dtype})")
        n = a.cols
        table = None
        if op in USES_CHANNELS:
            if params is None:
                raise CompileError(f"vpu {op.name.lower()}: needs params, an (n, 3) table of (offset, mult, shift)")
            table = np.asarray(params, np.int64)
            if table.shape != (n, 3):
                raise CompileError(f"vpu {op.name.lower()}: params is {table.shape} (accepted: ({n}, 3))")
            _int_vector("params offset", table[:, 0], n, -(1 << 31), (1 << 31) - 1)
            _int_vector("params mult", table[:, 1], n, -(1 << 15), (1 << 15) - 1)
            _int_vector("params shift", table[:, 2], n, 0, 63)
        elif params is not None:
            raise CompileError(f"vpu {op.name.lower()}: takes no params")
        if op is VpuOp.SOFTMAX:
            fields.setdefault("len", n)
        cmd = {"op": op.value, "n": n, "rows": 1, "in_fmt": _FMT[a.dtype].value,
               "out_fmt": _FMT["int8" if op is VpuOp.REQUANT_DYN else out].value, **fields}
        try:
            asm.vpu(**cmd)          # field names and widths
        except ParameterError as e:
            raise CompileError(f"vpu {op.name.lower()}: {e}") from None
        name = self._auto(name, op.name.lower())
        y = s = None
        if op not in REDUCTIONS:
            y = self._new(name, a.shape, "int8" if op is VpuOp.REQUANT_DYN else out, "value")
        if op in REDUCTIONS or op is VpuOp.REQUANT_DYN:
            s = self._new(name + ".scale" if y is not None else name, (a.rows, 1), "int64", "value",
                          argmax=op is VpuOp.ARGMAX)
        self.ops.append(_Vpu(op, a, b, y, s, table, cmd))
        return (y, s) if y is not None and s is not None else (y if y is not None else s)

    # the common ones by name
    def scale(self, a, *, mult_a, shift_a=0, out="int8", name=None):
        return self.vpu(VpuOp.SCALE, a, out=out, name=name, mult_a=mult_a, shift_a=shift_a)

    def silu(self, a, *, mult_a, shift_a=0, mult_b=1, shift_b=0, out="int8", name=None):
        return self.vpu(VpuOp.SILU, a, out=out, name=name, mult_a=mult_a, shift_a=shift_a,
                        mult_b=mult_b, shift_b=shift_b)

    def gelu(self, a, *, mult_a, shift_a=0, mult_b=1, shift_b=0, out="int8", name=None):
        return self.vpu(VpuOp.GELU, a, out=out, name=name, mult_a=mult_a, shift_a=shift_a,
                        mult_b=mult_b, shift_b=shift_b)

    def softmax(self, a, *, mult_a, shift_a=0, len=None, causal=False, out="int8", name=None):
        kw = {"len": a.cols if len is None else len, "causal": causal}
        return self.vpu(VpuOp.SOFTMAX, a, out=out, name=name, mult_a=mult_a, shift_a=shift_a, **kw)

    def rmsnorm(self, a, params, *, eps_mult=1, eps_shift=0, out="int8", name=None):
        return self.vpu(VpuOp.RMSNORM, a, params=params, out=out, name=name, mult_b=eps_mult, shift_b=eps_shift)

    def layernorm(self, a, params, *, eps_mult=1, eps_shift=0, out="int8", name=None):
        return self.vpu(VpuOp.LAYERNORM, a, params=params, out=out, name=name, mult_b=eps_mult,
                        shift_b=eps_shift)

    def requant(self, a, params, *, out="int8", name=None):
        return self.vpu(VpuOp.REQUANT, a, params=params, out=out, name=name)

    def requant_dyn(self, a, *, name=None):
        return self.vpu(VpuOp.REQUANT_DYN, a, name=name)

    def add(self, a, b, *, mult_a=1, mult_b=1, shift_a=0, out="int8", name=None):
        return self.vpu(VpuOp.ADD, a, b, out=out, name=name, mult_a=mult_a, mult_b=mult_b, shift_a=shift_a)

    def mul(self, a, b, *, mult_a=1, shift_a=0, out="int8", name=None):
        return self.vpu(VpuOp.MUL, a, b, out=out, name=name, mult_a=mult_a, shift_a=shift_a)

    def rope(self, a, coef, *, mult_a=1, shift_a=0, halves=False, out="int8", name=None):
        """Rotary embedding of the rows of ``a`` (int8/int16) by ``coef``: int32 of a's shape,
        element j's ``{cos, sin}`` in Q1.14 (``hw.vpu.layouts.RopeCoef``: cos in the low 16
        bits, sin in the high 16); pairs (2i, 2i+1), or (j, j + n/2) with ``halves``."""
        return self.vpu(VpuOp.ROPE, a, coef, out=out, name=name, mult_a=mult_a, shift_a=shift_a, halves=halves)

    def reduce(self, op, a, *, name=None):
        """MAX, SUM, SUMSQ or ARGMAX of every row (rows x 1 int64; ARGMAX: value in the low 32
        bits, index in the high 32, see :meth:`Compiled.read_output`)."""
        return self.vpu(op, a, name=name)

    def output(self, name, tensor):
        """Name ``tensor`` as an output of the graph (:meth:`Compiled.read_output`)."""
        self._mine(tensor)
        if name in self.outputs:
            raise CompileError(f"output {name!r} exists already")
        self.outputs[name] = tensor
        return tensor


# ---- layouts and the result ------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """Where a tensor lives: ``rows`` rows of ``cols`` ``dtype`` elements, row ``r`` at
    ``addr + r * stride``."""
    name: str
    addr: int
    rows: int
    cols: int
    dtype: str
    stride: int
    argmax: bool = False

    @property
    def elem(self):
        return np.dtype(DTYPES[self.dtype]).itemsize

    @property
    def row_bytes(self):
        return self.cols * self.elem

    def read(self, image):
        """The tensor from a memory image (an ``np.uint8`` array from address 0)."""
        image = np.asarray(image, np.uint8)
        idx = self.addr + np.arange(self.rows)[:, None] * self.stride + np.arange(self.row_bytes)[None, :]
        return np.ascontiguousarray(image[idx]).view(np.dtype(DTYPES[self.dtype]).newbyteorder("<")) \
            .reshape(self.rows, self.cols).astype(DTYPES[self.dtype])

    def write(self, image, value):
        v = np.asarray(value)
        if v.shape != (self.rows, self.cols):
            raise CompileError(f"{self.name}: value of shape {v.shape} (accepted: {(self.rows, self.cols)})")
        info = np.iinfo(DTYPES[self.dtype])
        if v.dtype.kind not in "iu" or (v.size and (v.min() < info.min or v.max() > info.max)):
            raise CompileError(f"{self.name}: values must be {self.dtype} integers")
        raw = v.astype(np.dtype(DTYPES[self.dtype]).newbyteorder("<")).view(np.uint8).reshape(self.rows, -1)
        for r in range(self.rows):
            image[self.addr + r * self.stride: self.addr + r * self.stride + self.row_bytes] = raw[r]


@dataclass
class TileProgram:
    """One tile's program: its words at byte address ``base``."""
    tile: int
    base: int
    words: list

    @property
    def bytes(self):
        return asm.to_bytes(self.words)

    def text(self, addresses=True):
        return asm.disassemble(self.words, base=self.base, addresses=addresses)


@dataclass
class Compiled:
    """What :func:`compile` made: ``programs`` (one :class:`TileProgram` per tile that runs),
    ``image`` (the HBM from address 0: weights, parameter tables, programs; inputs zero),
    ``inputs``/``outputs`` (name -> :class:`Layout`), ``regions`` (the allocator), ``plans``
    (per op, how it was mapped: for tests and reading)."""
    config: TileConfig
    tiles: int
    programs: list
    image: np.ndarray
    inputs: dict
    outputs: dict
    regions: HBMAllocator
    plans: list = field(default_factory=list)

    def memory_image(self, inputs=None):
        """A copy of :attr:`image` with ``inputs`` (name -> array) written."""
        image = self.image.copy()
        inputs = dict(inputs or {})
        missing = set(self.inputs) - set(inputs)
        unknown = set(inputs) - set(self.inputs)
        if missing or unknown:
            raise CompileError(f"inputs: missing {sorted(missing)}, unknown {sorted(unknown)} "
                               f"(accepted: exactly {sorted(self.inputs)})")
        for name, value in inputs.items():
            self.inputs[name].write(image, value)
        return image

    def read_output(self, image, name):
        """Output ``name`` from a memory image after the run (ARGMAX rows: (value, index))."""
        if name not in self.outputs:
            raise CompileError(f"output {name!r}: no such output (accepted: one of {sorted(self.outputs)})")
        lay = self.outputs[name]
        v = lay.read(image)
        if lay.argmax:
            return np.stack([(v[:, 0] << 32 >> 32), (v[:, 0] >> 32) & 0xFFFFFFFF], axis=1)
        return v


# ---- tiling ----------------------------------------------------------------------------------

def _chunks(total, size):
    return [(i, min(size, total - i)) for i in range(0, total, size)]


def matmul_tiling(config, M, K, W, out_bytes):
    """``(m_t, k_t, n_t, direct)``: the chunking of an M x K by K x W product on ``config``'s
    GEMM engine with the fewest bytes moved (module docstring); ``direct`` False: int32 to a
    scratch matrix, requantised by the vector unit. ``out_bytes``: 1 (int8) or 4 (int32).
    Raises :class:`CompileError` when no chunking fits."""
    p = config.gemm
    R, C = p.rows, p.cols
    kq = math.lcm(R, ATOM_BYTES)
    best = None
    modes = [(True, out_bytes)] + ([(False, 4)] if out_bytes == 1 else [])
    for direct, elem in modes:
        for n_t in range(min(W, p.max_n, _MAX_FIELD), 0, -1):
            if n_t < W and (n_t * elem) % ATOM_BYTES:
                continue
            nb = -(-n_t // C)
            k_max = min(p.b_depth // nb, p.a_depth * R, _MAX_FIELD)
            k_t = K if k_max >= K else k_max // kq * kq
            if k_t == 0 or p.c_depth < nb:
                continue
            m_t = min(M, p.a_depth // -(-k_t // R), p.c_depth // nb, _MAX_FIELD)
            nN, nK, nM = -(-W // n_t), -(-K // k_t), -(-M // m_t)
            a_bytes = M * K * (1 if nM == 1 and nK == 1 else nN)
            b_bytes = K * W * (1 if nK == 1 else nM)
            detour = 0 if direct else 9 * M * W         # int32 out and in, int8 out
            cost = a_bytes + b_bytes + detour + 64 * nN * nM * nK
            if best is None or cost < best[0]:
                best = (cost, (m_t, k_t, n_t, direct))
    if best is None:
        raise CompileError(f"matmul {M}x{K}x{W}: no tiling fits the GEMM engine (R {R}, C {C}, a_depth "
                           f"{p.a_depth}, b_depth {p.b_depth}, c_depth {p.c_depth}, max_n {p.max_n}; a K chunk "
                           f"is K or a multiple of {kq}, an N chunk's output starts on a {ATOM_BYTES}-byte atom)")
    return best[1]


# ---- emission --------------------------------------------------------------------------------

def _overlap(spans, lo, hi):
    return any(a < hi and lo < b for a, b in spans)


def _span(addr, rows, row_bytes, stride, iters=1, iter_stride=0):
    lo = addr + min(0, (iters - 1) * iter_stride)
    hi = addr + max(0, (iters - 1) * iter_stride) + (rows - 1) * stride + row_bytes
    return lo, hi


class _Tile:
    """One tile's program under construction, with the windows its STOREs wrote since its last
    ``FENCE store`` (a LOAD overlapping one is preceded by a fence)."""

    def __init__(self, index, config):
        self.index, self.cfg = index, config
        self.prog = asm.Program(config=config)
        self.pending = []

    def fence_stores(self):
        self.prog.fence("store")
        self.pending.clear()

    def before_loads(self, *spans):
        if any(_overlap(self.pending, lo, hi) for lo, hi in spans):
            self.fence_stores()

    def load(self, port, addr, rows, row_bytes, stride, beat, iter_stride=0, iters=1):
        self.before_loads(_span(addr, rows, row_bytes, stride, iters, iter_stride))
        self.prog.load(port, addr, rows, row_bytes, stride if rows > 1 else 0, _log2(beat),
                       iter_stride=iter_stride)

    def store(self, port, addr, rows, row_bytes, stride, beat, iter_stride=0, iters=1):
        self.prog.store(port, addr, rows, row_bytes, stride if rows > 1 else 0, _log2(beat),
                        iter_stride=iter_stride)
        self.pending.append(_span(addr, rows, row_bytes, stride, iters, iter_stride))


def _pack_table(layout, columns):
    """Little-endian words of ``layout`` (64 bits), one per row of the ``columns`` arrays
    (name -> values), placed by the layout's field offsets."""
    assert layout.size == 64
    n = len(next(iter(columns.values())))
    words = np.zeros(n, np.uint64)
    for name, values in columns.items():
        f = layout[name]
        v = (np.asarray(values, np.int64) & ((1 << f.width) - 1)).astype(np.uint64)
        words |= v << np.uint64(f.offset)
    return words.astype("<u8").view(np.uint8)


class _Compiler:
    def __init__(self, graph, config, tiles):
        self.g, self.cfg, self.T = graph, config, tiles
        self.alloc = HBMAllocator.for_config(config)
        self.blobs = []                         # (addr, bytes) of the image
        self.layouts = {}
        self.tiles = [_Tile(t, config) for t in range(tiles)]
        self.plans = []
        self.writes = {}                        # tensor -> [(tile, r0, r1, c0, c1)] since the barrier
        self.parity = 0

    # -- memory ------------------------------------------------------------------------------
    def channel(self, tile):
        return tile % self.alloc.channels

    def place(self, t, channel=None):
        """The :class:`Layout` of tensor ``t`` (allocated on first use)."""
        if t.name not in self.layouts:
            reg = self.alloc.matrix(t.name, t.rows, t.cols * t.elem, channel=channel)
            self.layouts[t.name] = Layout(t.name, reg.addr, t.rows, t.cols, t.dtype, reg.stride, t.argmax)
        return self.layouts[t.name]

    def constant(self, name, blob, channel):
        reg = self.alloc.alloc(name, len(blob), channel=channel)
        self.blobs.append((reg.addr, bytes(blob)))
        return reg.addr

    def scratch(self, name, rows, cols, dtype, channel):
        reg = self.alloc.matrix(name, rows, cols * np.dtype(DTYPES[dtype]).itemsize, channel=channel)
        return Layout(name, reg.addr, rows, cols, dtype, reg.stride)

    # -- synchronisation ---------------------------------------------------------------------
    def reads(self, tile, t, r0, r1, c0, c1):
        """Tile ``tile`` is about to read rows r0..r1, columns c0..c1 of ``t``: whether another
        tile wrote any of them since the last barrier."""
        return any(w != tile and a < r1 and r0 < b and c < c1 and c0 < d
                   for w, a, b, c, d in self.writes.get(t.name, ()))

    def wrote(self, tile, t, r0, r1, c0, c1):
        self.writes.setdefault(t.name, []).append((tile, r0, r1, c0, c1))

    def barrier(self):
        """Every tile: FENCE store, SIGNAL each other tile, WAIT for all of them."""
        T, base = self.T, self.parity * self.T
        for tile in self.tiles:
            tile.fence_stores()
            for other in range(T):
                if other != tile.index:
                    tile.prog.signal(base + other, 1)
            tile.prog.wait(base + tile.index, T - 1)
        self.parity ^= 1
        self.writes.clear()

    def sync_for(self, reads):
        """``reads``: [(tile, tensor, r0, r1, c0, c1)] of the next op: a barrier first if any of
        them crosses tiles."""
        if self.T > 1 and any(self.reads(*r) for r in reads):
            self.barrier()

    # -- matmul ------------------------------------------------------------------------------
    def slices(self, N, elem):
        """Column slices ``[(tile, c0, width)]`` of an N-column output over the tiles, each
        starting on an atom."""
        q = math.lcm(ATOM_BYTES // math.gcd(ATOM_BYTES, elem), self.cfg.gemm.cols)
        width = round_up(-(-N // self.T), q)
        return [(t, c0, min(width, N - c0)) for t, c0 in enumerate(range(0, N, width))]

    def matmul(self, op):
        x, w, y = op.x, op.w, op.out
        M, K, N = x.rows, x.cols, w.cols
        R, C = self.cfg.gemm.rows, self.cfg.gemm.cols
        xl = self.place(x)
        yl = self.place(y)
        slices = self.slices(N, y.elem)
        self.sync_for([(t, x, 0, M, 0, K) for t, _, _ in slices])
        weights = self.g.data[w.name]
        plan = {"op": "matmul", "out": y.name, "M": M, "K": K, "N": N, "tiles": []}
        for t, c0, W in slices:
            tile, ch = self.tiles[t], self.channel(t)
            m_t, k_t, n_t, direct = matmul_tiling(self.cfg, M, K, W, y.elem)
            plan["tiles"].append({"tile": t, "c0": c0, "width": W, "m_t": m_t, "k_t": k_t, "n_t": n_t,
                                  "direct": direct, "channel": ch})
            requant = y.dtype == "int8"
            q_needed = direct and (requant or op.use_bias)
            dst = yl if direct else self.scratch(f"{y.name}.acc[t{t}]", M, W, "int32", ch)
            dcol = c0 if direct else 0
            elem = dst.elem
            nchunks = _chunks(W, n_t)
            b_at, q_at = [], []
            for j, (n0, nj) in enumerate(nchunks):
                blk = np.zeros((K, round_up(nj, ATOM_BYTES)), np.int8)
                blk[:, :nj] = weights[:, c0 + n0:c0 + n0 + nj]
                b_at.append((self.constant(f"{w.name}[t{t}.n{j}]", blk.view(np.uint8).tobytes(), ch), blk.shape[1]))
                if q_needed:
                    cols = slice(c0 + n0, c0 + n0 + nj)
                    qb = _pack_table(QParam, {"bias": op.bias[cols] if op.use_bias else np.zeros(nj),
                                              "mult": op.mult[cols], "shift": op.shift[cols]})
                    q_at.append(self.constant(f"{y.name}.q[t{t}.n{j}]", qb, ch))
            a_res = b_res = q_res = None
            P = tile.prog
            for j, (n0, nj) in enumerate(nchunks):
                for i, (m0, mi) in enumerate(_chunks(M, m_t)):
                    for l, (k0, kl) in enumerate(_chunks(K, k_t)):
                        if a_res != (i, l):
                            tile.load("gemm_a", xl.addr + m0 * xl.stride + k0, mi, kl, xl.stride, R)
                            P.gemm("load_a", m=mi, k=kl)
                            a_res = (i, l)
                        if b_res != (l, j):
                            at, stride = b_at[j]
                            tile.load("gemm_b", at + k0 * stride, kl, nj, stride, C)
                            P.gemm("load_b", k=kl, n=nj)
                            b_res = (l, j)
                        P.gemm("compute", m=mi, k=kl, n=nj, accumulate=l > 0)
                    if q_needed and q_res != j:
                        tile.load("gemm_q", q_at[j], 1, 8 * nj, 0, 8)
                        P.gemm("load_q", n=nj)
                        q_res = j
                    P.gemm("store", m=mi, n=nj, bias=direct and op.use_bias, requant=direct and requant)
                    tile.store("gemm_c", dst.addr + m0 * dst.stride + (dcol + n0) * elem, mi, nj * elem,
                               dst.stride, C * elem)
            if not direct:
                table = np.stack([op.bias[c0:c0 + W], op.mult[c0:c0 + W], op.shift[c0:c0 + W]], axis=1)
                self.requant_rows(tile, dst, yl, c0, table, f"{y.name}.p[t{t}]")
            self.wrote(t, y, 0, M, c0, c0 + W)
        self.plans.append(plan)

    def requant_rows(self, tile, src, dst, c0, table, name):
        """The vector unit's REQUANT of int32 ``src`` (all rows) into columns c0.. of ``dst``,
        in pieces of at most ``channels`` columns starting on atoms."""
        v = self.cfg.vpu
        W = src.cols
        piece = W if W <= v.channels else v.channels // ATOM_BYTES * ATOM_BYTES
        if piece == 0:
            raise CompileError(f"matmul {dst.name}: {W} columns to requantise on the vector unit, beyond "
                               f"its {v.channels} channels (accepted: a configuration with max_n >= 32 "
                               "or vpu channels >= 32)")
        for p0, pw in _chunks(W, piece):
            at = self.constant(f"{name}{p0}", _pack_table(ChannelParam, {
                "offset": table[p0:p0 + pw, 0], "mult": table[p0:p0 + pw, 1], "shift": table[p0:p0 + pw, 2]}),
                self.channel(tile.index))
            self.vpu_rows(tile, VpuOp.REQUANT, {"op": VpuOp.REQUANT.value, "n": pw, "in_fmt": Fmt.INT32.value,
                                                "out_fmt": Fmt.INT8.value},
                          0, src.rows, _View(src, p0, pw), _View(dst, c0 + p0, pw), None, at)

    # -- vector unit -------------------------------------------------------------------------
    def row_split(self, rows):
        per = -(-rows // self.T)
        return [(t, r0, min(per, rows - r0)) for t, r0 in enumerate(range(0, rows, per))]

    def vpu(self, op):
        a, y, s = op.a, op.y, op.s
        n, rows = a.cols, a.rows
        v = self.cfg.vpu
        cmd = dict(op.fields)
        status = check_command(dict(cmd, rows=1), lanes=v.lanes, buffer=v.buffer, channels=v.channels,
                               rope_max=v.rope_max)
        if status is not VpuStatus.OK:
            raise CompileError(f"vpu {op.op.name.lower()} on {a.name} ({rows} x {n}): the vector unit answers "
                               f"{status.name} (lanes {v.lanes}, buffer {v.buffer}, channels {v.channels}; "
                               "docs/vpu.md)")
        al = self.place(a)
        bl = self.place(op.b) if op.b is not None else None
        yl = self.place(y) if y is not None else None
        sl = self.place(s) if s is not None else None
        split = self.row_split(rows)
        self.sync_for([(t, x, r0, r0 + nr, 0, n) for t, r0, nr in split for x in (a, op.b) if x is not None])
        plan = {"op": op.op.name.lower(), "out": (y or s).name, "rows": rows, "n": n, "tiles": []}
        for t, r0, nr in split:
            tile = self.tiles[t]
            p_at = None
            if op.params is not None:
                p_at = self.constant(f"{(y or s).name}.p[t{t}]", _pack_table(ChannelParam, {
                    "offset": op.params[:, 0], "mult": op.params[:, 1], "shift": op.params[:, 2]}),
                    self.channel(t))
            if bl is not None:
                self.binary_rows(tile, cmd, r0, nr, al, bl, yl)
            else:
                self.vpu_rows(tile, op.op, cmd, r0, nr, _View(al), _View(yl) if yl else None, sl, p_at)
            for out in (y, s):
                if out is not None:
                    self.wrote(t, out, r0, r0 + nr, 0, out.cols)
            plan["tiles"].append({"tile": t, "r0": r0, "rows": nr})
        self.plans.append(plan)

    def vpu_rows(self, tile, op, cmd, r0, nrows, a, y, s, p_at):
        """One tile's vector-unit op on rows r0.. of the window ``a`` into ``y`` (``s``, one
        atom per row), in commands of at most 65535 rows."""
        lanes = self.cfg.vpu.lanes
        P = tile.prog
        n = cmd["n"]
        if p_at is not None:
            tile.load("vpu_p", p_at, 1, 8 * n, 0, 8)
            P.vpu("load_p", n=n, rows=1)
        for q0, qn in _chunks(nrows, _MAX_FIELD):
            q0 += r0
            part = dict(cmd, rows=qn)
            if cmd.get("causal"):           # row r keeps len + r elements: r counts from row 0
                part["len"] = min(cmd["len"] + q0, _MAX_FIELD)
            P.vpu(**part)
            a_at = a.row(q0)
            tile.load("vpu_a", a_at, qn, a.row_bytes, a.stride, lanes * a.elem)
            if y is not None and s is not None:
                # REQUANT_DYN: each row's scalar leaves before its row; take them in that order
                with P.loop(qn):
                    tile.store("vpu_s", s.addr + q0 * s.stride, 1, 8, 0, 8, iter_stride=s.stride, iters=qn)
                    tile.store("vpu_y", y.row(q0), 1, y.row_bytes, 0, lanes * y.elem, iter_stride=y.stride,
                               iters=qn)
            elif y is not None:
                tile.store("vpu_y", y.row(q0), qn, y.row_bytes, y.stride, lanes * y.elem)
            else:
                tile.store("vpu_s", s.addr + q0 * s.stride, qn, 8, s.stride, 8)

    def binary_rows(self, tile, cmd, r0, nrows, a, b, y):
        """ADD, MUL, ROPE on rows r0.. of ``a`` and ``b`` into ``y``. The tile feeds ``b`` through
        a row buffer of ``buffer / lanes`` beats in front of the vector unit (``hw/accel/tile.py``),
        and the load DMA delivers one LOAD after another, so each group of rows is a LOAD of
        ``b`` (as many rows as the buffer holds), then the LOAD of ``a`` it pairs with, in a
        REPEAT over the groups; the STORE of ``y`` is issued before them (it takes the rows as
        they come). Rows longer than the buffer go in column pieces starting on atoms."""
        v = self.cfg.vpu
        lanes, n, name = v.lanes, cmd["n"], VpuOp(cmd["op"]).name.lower()
        q = ATOM_BYTES // min(a.elem, b.elem, y.elem)           # elements per atom, at most
        piece = n if n <= v.buffer else v.buffer // q * q
        if piece == 0 or (cmd.get("halves") and piece < n):
            raise CompileError(f"vpu {name}: rows of {n} elements do not fit the vector unit's b row buffer "
                               f"({v.buffer} elements" + (", and halves pairs cannot be cut)" if piece else
                                                          f"; pieces start on {q}-element atoms)"))
        P = tile.prog
        for p0, pw in _chunks(n, piece):
            av, bv, yv = _View(a, p0, pw), _View(b, p0, pw), _View(y, p0, pw)
            group = max(1, (v.buffer // lanes) // -(-pw // lanes))
            for q0, qn in _chunks(nrows, _MAX_FIELD):
                q0 += r0
                tile.before_loads(*[_span(w.row(q0), qn, w.row_bytes, w.stride) for w in (av, bv)])
                P.vpu(**dict(cmd, n=pw, rows=qn))
                tile.store("vpu_y", yv.row(q0), qn, yv.row_bytes, yv.stride, lanes * y.elem)
                full, tail = divmod(qn, group)
                if full > 1:
                    with P.loop(full):
                        for w in (bv, av):
                            P.load("vpu_" + ("b" if w is bv else "a"), w.row(q0), group, w.row_bytes,
                                   w.stride if group > 1 else 0, _log2(lanes * w.elem), iter_stride=group * w.stride)
                for g0, gn in ([(0, group)] if full == 1 else []) + ([(full * group, tail)] if tail else []):
                    for w in (bv, av):
                        P.load("vpu_" + ("b" if w is bv else "a"), w.row(q0 + g0), gn, w.row_bytes,
                               w.stride if gn > 1 else 0, _log2(lanes * w.elem))

    # -- the whole graph -----------------------------------------------------------------------
    def run(self):
        g = self.g
        for t in g.tensors.values():
            if t.kind == "input":
                self.place(t)
        for op in g.ops:
            (self.matmul if isinstance(op, _Matmul) else self.vpu)(op)
        for name, t in g.outputs.items():
            if t.name not in self.layouts:
                raise CompileError(f"output {name!r}: {t.name} is not computed (an input or weight)")
        programs = []
        for tile in self.tiles:
            tile.prog.end()
            words = tile.prog.words
            base = self.alloc.alloc(f"program[t{tile.index}]", len(words) * asm.INSTR_BYTES,
                                    channel=self.channel(tile.index)).addr
            self.blobs.append((base, asm.to_bytes(words)))
            programs.append(TileProgram(tile.index, base, words))
        size = round_up(max(r.end for r in self.alloc), ATOM_BYTES)
        image = np.zeros(size, np.uint8)
        for addr, blob in self.blobs:
            image[addr:addr + len(blob)] = np.frombuffer(blob, np.uint8)
        inputs = {t.name: self.layouts[t.name] for t in g.tensors.values() if t.kind == "input"}
        outputs = {name: self.layouts[t.name] for name, t in g.outputs.items()}
        return Compiled(self.cfg, self.T, programs, image, inputs, outputs, self.alloc, self.plans)


class _View:
    """Columns c0..c0+cols of a :class:`Layout` (all of them by default), as windows."""

    def __init__(self, layout, c0=0, cols=None):
        self.layout, self.c0 = layout, c0
        self.cols = layout.cols - c0 if cols is None else cols
        self.elem, self.stride, self.addr = layout.elem, layout.stride, layout.addr + c0 * layout.elem
        self.row_bytes = self.cols * self.elem
        assert self.addr % ATOM_BYTES == 0

    def row(self, r):
        return self.addr + r * self.stride


def compile(graph, config=None, *, tiles=1):
    """Programs for ``tiles`` tiles of ``config`` (a :class:`~.config.TileConfig`) computing
    ``graph``, and the HBM image they run on: a :class:`Compiled`."""
    config = config or TileConfig()
    check_int("tiles", tiles, 1, SEMAPHORES // 2)
    if not graph.outputs:
        raise CompileError("graph: no outputs (accepted: at least one Graph.output)")
    return _Compiler(graph, config, tiles).run()
