"""Assembler and disassembler of the accelerator's instruction set (``hw/accel/isa.py``).

Every word is packed and unpacked through the ISA's layouts (``Instr``, ``Move``, the GEMM
engine's ``Command``, the vector unit's ``Command``, the KV-cache DMA's ``Descriptor``); nothing
here restates a bit position. Three forms of a program:

* the Python API: one function per opcode returning its words (:func:`load`, :func:`store`,
  :func:`gemm`, :func:`vpu`, :func:`kv`, :func:`signal`, :func:`wait`, :func:`fence`,
  :func:`repeat`, :func:`nop`, :func:`end`, :func:`word`), and :class:`Program`, a builder with
  the same methods that appends and returns each instruction's byte address;
* words (``int``, 256 bits) and bytes: :func:`to_bytes` / :func:`from_bytes`, 32 bytes per word,
  little-endian;
* text, one instruction per line, ``#`` to the end of a line a comment::

      load gemm_b addr=0x1000 rows=16 row_bytes=16 stride=32 beat=16
      gemm load_b k=16 n=16
      gemm compute m=20 k=16 n=16 accumulate
      store gemm_c addr=0x3000 rows=20 row_bytes=16 stride=32 beat=16 iter_stride=-64
      vpu silu n=64 rows=4 mult_a=64 mult_b=1 shift_b=6
      kv gather flags=k|v count=16 a=0x8000 b=0x9000 d=1
      signal sem=0 count=1
      wait sem=0 count=2 timeout=1000
      fence load|store
      repeat count=4 length=3
      nop
      end
      word 0x0                       # any 256-bit word, as it is

  :func:`assemble` reads it, :func:`disassemble` writes it; ``assemble(disassemble(w)) == w``
  for every list of words ``w`` (a word the assembler would refuse, or one with reserved bits
  set, comes back as ``word`` with the reason in a comment).

Validation: the assembler refuses, with a one-line :class:`~scoville.hw.params.ParameterError`
naming the field and its accepted range, what the sequencer refuses with ``BAD_OPERAND``
(:func:`move_problem`; an ``iter_stride`` that is not a multiple of 32, since the sequencer
checks the alignment of every iteration's address ``addr + i * iter_stride``; REPEAT of length
0 or inside a REPEAT body; a KV whose descriptor word would fall outside its REPEAT body),
values that do not fit their fields, and one thing the ISA's docstring forbids that the
sequencer cannot check: a REPEAT body that runs past the end of the program. With a
:class:`~.config.TileConfig` it also checks beat sizes against the port (the tile's sequencer
refuses other sizes: ``docs/accel.md``, ``hw/accel/tile.py``). ``check=False`` keeps only the
field widths (for tests of the machine's error paths).
"""

import enum as py_enum
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache, wraps

from amaranth.hdl import Shape
from amaranth.lib import data
from amaranth.lib import enum as amaranth_enum

from scoville.hw.accel.isa import (ATOM_BYTES, INSTR_BYTES, MAX_BEAT_LOG2, Instr, LoadPort,
                                   Opcode, StorePort, Unit)
from scoville.hw.gemm import Command as GemmCommand, Op as GemmOp
from scoville.hw.kvdma.descriptors import Descriptor, Flag as KvFlag, Op as KvOp
from scoville.hw.params import ParameterError, check_int
from scoville.hw.vpu.layouts import Command as VpuCommand, Fmt, Op as VpuOp

from .config import PORT_NAMES


__all__ = ["Instruction", "Program", "load", "store", "gemm", "vpu", "kv", "signal", "wait",
           "fence", "repeat", "nop", "end", "word", "encode", "decode", "assemble", "disassemble",
           "to_bytes", "from_bytes", "move_problem", "decode_word", "pack", "unpack", "ParameterError",
           "BODY_LAYOUT", "MOVE_LAYOUT", "SEM_LAYOUT", "REPEAT_LAYOUT", "FENCE_LAYOUT", "GEMM_LAYOUT",
           "VPU_LAYOUT", "KV_LAYOUT"]

BODY_LAYOUT = data.Layout.cast(Instr["body"].shape)
KV_LAYOUT = data.Layout.cast(Descriptor)
_WORD_MASK = (1 << (8 * INSTR_BYTES)) - 1


# ---- packing through the layouts ----------------------------------------------------------

def _shape(layout, name):
    return Shape.cast(layout[name].shape)


def field_range(layout, name):
    """``(lo, hi)`` of the values field ``name`` of ``layout`` holds."""
    s = _shape(layout, name)
    return (-(1 << (s.width - 1)), (1 << (s.width - 1)) - 1) if s.signed else (0, (1 << s.width) - 1)


def pack(layout, fields):
    """``layout.const(fields)`` as an ``int``. An enum-shaped field may be given a value outside
    its enum (a wire can carry one: the unit answers it with BAD_OP); it is placed by the
    field's offset, since ``const`` accepts only members."""
    clean, patches = {}, {}
    for name, value in fields.items():
        shape = layout[name].shape
        if isinstance(shape, amaranth_enum.EnumType) and not isinstance(value, shape):
            members = {m.value for m in shape}
            if issubclass(shape, amaranth_enum.Flag) or value in members:
                value = shape(value)
            else:
                patches[name] = value
                value = next(iter(shape))
        clean[name] = value
    word = layout.const(clean).as_value().value
    for name, value in patches.items():
        f = layout[name]
        word = (word & ~(((1 << f.width) - 1) << f.offset)) | (value << f.offset)
    return word


_TABLES = {}


def _table(layout):
    """``[(name, offset, width, signed)]`` of ``layout`` (computed once: the layouts'
    properties are slow to ask, and the model decodes every instruction it fetches)."""
    key = id(layout)
    if key not in _TABLES:
        _TABLES[key] = (layout, [(name, f.offset, f.width, Shape.cast(f.shape).signed) for name, f in layout])
    return _TABLES[key][1]


def unpack(layout, value):
    """Every field of ``layout`` in ``value`` as a raw ``int`` (signed fields sign-extended),
    by the fields' offsets: an enum-shaped field outside its enum reads as its number."""
    out = {}
    for name, offset, width, signed in _table(layout):
        bits = (value >> offset) & ((1 << width) - 1)
        if signed and bits >> (width - 1):
            bits -= 1 << width
        out[name] = bits
    return out


def _public(layout):
    return [name for name, _ in layout if not name.startswith("_")]


# ---- instruction kinds ----------------------------------------------------------------------

# The layouts of the bodies (isa.py) and of the unit commands they carry.
MOVE_LAYOUT = data.Layout.cast(BODY_LAYOUT["move"].shape)
SEM_LAYOUT = data.Layout.cast(BODY_LAYOUT["sem"].shape)
REPEAT_LAYOUT = data.Layout.cast(BODY_LAYOUT["repeat"].shape)
FENCE_LAYOUT = data.Layout.cast(BODY_LAYOUT["fence"].shape)
GEMM_LAYOUT = data.Layout.cast(GemmCommand)
VPU_LAYOUT = data.Layout.cast(VpuCommand)

_OPCODE_VALUES = {o.value for o in Opcode}
#: Fields of each opcode, in text order, with the layout they live in.
_FIELDS = {
    Opcode.LOAD: (MOVE_LAYOUT, ["port", "addr", "rows", "row_bytes", "stride", "beat_log2", "iter_stride"]),
    Opcode.STORE: (MOVE_LAYOUT, ["port", "addr", "rows", "row_bytes", "stride", "beat_log2", "iter_stride"]),
    Opcode.GEMM: (GEMM_LAYOUT, ["op", "m", "k", "n", "accumulate", "bias", "requant"]),
    Opcode.VPU: (VPU_LAYOUT, ["op", "n", "rows", "in_fmt", "out_fmt", "causal", "halves", "len",
                            "mult_a", "shift_a", "mult_b", "shift_b"]),
    Opcode.KV: (KV_LAYOUT, _public(KV_LAYOUT)),
    Opcode.SIGNAL: (SEM_LAYOUT, ["sem", "count"]),
    Opcode.WAIT: (SEM_LAYOUT, ["sem", "count", "timeout"]),
    Opcode.FENCE: (FENCE_LAYOUT, ["units"]),
    Opcode.REPEAT: (REPEAT_LAYOUT, ["count", "length"]),
    Opcode.NOP: (None, []),
    Opcode.END: (None, []),
}
assert set(_FIELDS) == set(Opcode)
_BODY_NAME = {Opcode.LOAD: "move", Opcode.STORE: "move", Opcode.GEMM: "gemm", Opcode.VPU: "vpu",
              Opcode.SIGNAL: "sem", Opcode.WAIT: "sem", Opcode.FENCE: "fence",
              Opcode.REPEAT: "repeat"}
#: One-bit flags: bare words in the text form.
_FLAGS = {Opcode.GEMM: ("accumulate", "bias", "requant"), Opcode.VPU: ("causal", "halves")}


def _port_enum(op):
    return LoadPort if op == Opcode.LOAD else StorePort


@dataclass
class Instruction:
    """One decoded instruction: the opcode byte ``op``, its fields as raw ``int`` values (the
    unit command's fields for GEMM and VPU, the descriptor's for KV), and its words."""
    op: int
    fields: dict = field(default_factory=dict)
    words: tuple = ()
    problem: str = None      # why it is shown as a raw word (None: a normal instruction)

    @property
    def opcode(self):
        """The :class:`Opcode`, or None for an undefined one."""
        return Opcode(self.op) if self.op in {o.value for o in Opcode} else None

    def text(self):
        return _format(self)


# ---- validation ---------------------------------------------------------------------------

def _fit(layout, name, value, label=None):
    lo, hi = field_range(layout, name)
    return check_int(label or name, value, lo, hi)


def move_problem(op, f, config=None, addr=None):
    """The first operand of a LOAD/STORE body ``f`` (raw fields) that the sequencer refuses
    with BAD_OPERAND, as a one-line message naming the field and its accepted range, or None:
    port, beat size (``beat_log2`` at most ``MAX_BEAT_LOG2``; with a ``config``, a size the
    port takes), zero rows or row_bytes, an unaligned address, and for more than one row an
    unaligned stride or ``row_bytes > stride``. ``addr``: the effective address the sequencer
    checks (``f["addr"]`` plus the REPEAT iteration's offset; by default ``f["addr"]``)."""
    ports = _port_enum(op)
    if f["port"] not in {p.value for p in ports}:
        return (f"port: {f['port']} is not accepted (accepted: one of "
                + ", ".join(PORT_NAMES[p] for p in ports) + ")")
    if f["beat_log2"] > MAX_BEAT_LOG2:
        return f"beat_log2: {f['beat_log2']} is out of range (accepted: an integer in 0..{MAX_BEAT_LOG2})"
    if config is not None:
        port = ports(f["port"])
        sizes = config.beat_sizes(port)
        if (1 << f["beat_log2"]) not in sizes:
            return (f"beat: {1 << f['beat_log2']} is not a beat of port {PORT_NAMES[port]} "
                    "(accepted: " + " or ".join(map(str, sizes)) + " bytes)")
    if f["rows"] == 0:
        return f"rows: 0 is out of range (accepted: an integer in 1..{field_range(MOVE_LAYOUT, 'rows')[1]})"
    if f["row_bytes"] == 0:
        return ("row_bytes: 0 is out of range (accepted: an integer in "
                f"1..{field_range(MOVE_LAYOUT, 'row_bytes')[1]}, at most the stride when rows > 1)")
    if addr is None:
        addr = f["addr"]
    if addr % ATOM_BYTES:
        what = "addr" if addr == f["addr"] else "iteration address"
        return f"{what}: {addr:#x} is not a multiple of {ATOM_BYTES} (accepted: a multiple of {ATOM_BYTES})"
    if f["rows"] > 1:
        if f["stride"] % ATOM_BYTES:
            return (f"stride: {f['stride']} is not a multiple of {ATOM_BYTES} "
                    f"(accepted: a multiple of {ATOM_BYTES} when rows > 1)")
        if f["row_bytes"] > f["stride"]:
            return (f"row_bytes: {f['row_bytes']} is out of range (accepted: an integer in "
                    f"1..{f['stride']}, the stride, when rows > 1)")
    return None


def _check_fields(op, f, config):
    """The assembler's checks of one instruction (raw fields): ParameterError on the first."""
    if op in (Opcode.LOAD, Opcode.STORE):
        problem = move_problem(op, f, config)
        if problem:
            raise ParameterError(problem)
        if f["iter_stride"] % ATOM_BYTES:
            raise ParameterError(f"iter_stride: {f['iter_stride']} is not a multiple of {ATOM_BYTES} "
                                 f"(accepted: a multiple of {ATOM_BYTES}: the sequencer refuses an "
                                 "unaligned iteration address with BAD_OPERAND)")
    elif op == Opcode.REPEAT and f["length"] == 0:
        raise ParameterError(f"length: 0 is out of range (accepted: an integer in "
                             f"1..{field_range(REPEAT_LAYOUT, 'length')[1]})")


class _Context:
    """Program-level rules over a sequence of instructions: REPEAT bodies do not nest and do
    not end between a KV and its descriptor (both BAD_OPERAND), and do not run past the end of
    the program."""

    def __init__(self):
        self.body_left = 0      # words of the open REPEAT body still to come
        self.repeat_at = None

    def problem(self, op, pc, nwords, f):
        if op == Opcode.REPEAT:
            if self.body_left:
                return (f"repeat: inside the body of the REPEAT at {self.repeat_at:#x} "
                        "(accepted: no REPEAT in a REPEAT body)")
        elif self.body_left and nwords > self.body_left:
            return (f"kv: its descriptor would be outside the body of the REPEAT at {self.repeat_at:#x} "
                    f"(accepted: a body ending after a KV's descriptor word; the sequencer refuses "
                    "the KV with BAD_OPERAND)")
        return None

    def advance(self, op, pc, nwords, f):
        self.body_left = max(0, self.body_left - nwords)
        if op == Opcode.REPEAT:
            self.body_left, self.repeat_at = f["length"], pc

    def finish(self):
        if self.body_left:
            raise ParameterError(f"repeat: the body of the REPEAT at {self.repeat_at:#x} runs past the "
                                 f"end of the program ({self.body_left} more words needed; accepted: "
                                 "a body inside the program)")


# ---- encoding ------------------------------------------------------------------------------

def _enum_value(value, enum_cls, what):
    """A member, its lower-case name, or a plain int -> int."""
    if isinstance(value, str):
        try:
            return enum_cls[value.upper()].value
        except KeyError:
            raise ParameterError(f"{what}: {value!r} is not accepted (accepted: one of "
                                 + ", ".join(m.name.lower() for m in enum_cls) + ")") from None
    if isinstance(value, py_enum.Enum):
        return value.value
    return value


def _flag_value(value, flag_cls, what):
    """A flag, ``"a|b"``, a list of names or an int -> int."""
    if isinstance(value, str):
        value = [n for n in re.split(r"[|,+]", value) if n]
    if isinstance(value, (list, tuple)):
        total = 0
        for name in value:
            if isinstance(name, str) and not name.isdigit():
                try:
                    total |= flag_cls[name.upper()].value
                except KeyError:
                    raise ParameterError(f"{what}: {name!r} is not accepted (accepted: names among "
                                         + ", ".join(m.name.lower() for m in flag_cls) + ")") from None
            else:
                total |= int(name)
        return total
    return int(value.value) if hasattr(value, "value") else value


def _normalise(op, fields):
    """User-facing field values (names, members, booleans) -> raw ints, widths checked."""
    layout, names = _FIELDS[op]
    unknown = set(fields) - set(names)
    if unknown:
        name = sorted(unknown)[0]
        raise ParameterError(f"{name}: not a field of {op.name.lower()} (accepted: "
                             + ", ".join(names) + ")")
    out = {}
    for name in names:
        value = fields.get(name, 0)
        if op in (Opcode.LOAD, Opcode.STORE) and name == "port":
            value = _enum_value(value, _port_enum(op), "port")
        elif op == Opcode.GEMM and name == "op":
            value = _enum_value(value, GemmOp, "op")
        elif op == Opcode.VPU and name == "op":
            value = _enum_value(value, VpuOp, "op")
        elif op == Opcode.VPU and name in ("in_fmt", "out_fmt"):
            value = _enum_value(value, Fmt, name)
        elif op == Opcode.KV and name == "op":
            value = _enum_value(value, KvOp, "op")
        elif op == Opcode.KV and name == "flags":
            value = _flag_value(value, KvFlag, "flags")
        elif op == Opcode.FENCE:
            value = _flag_value(value, Unit, "units")
        if isinstance(value, bool):
            value = int(value)
        out[name] = _fit(layout, name, value)
    return out


def _words_of(op, f):
    """Pack raw fields ``f`` of opcode ``op`` into its words."""
    return list(_words_cached(op, tuple(f.items())))


@lru_cache(maxsize=4096)
def _words_cached(op, items):
    # Layout.const is slow (about 0.2 ms a word): programs repeat their instructions a lot
    f = dict(items)
    if op == Opcode.KV:
        return (pack(Instr, {"op": op.value}), pack(KV_LAYOUT, f))
    if op in (Opcode.GEMM, Opcode.VPU):
        layout = GEMM_LAYOUT if op == Opcode.GEMM else VPU_LAYOUT
        body = {_BODY_NAME[op]: {"cmd": pack(layout, f)}}
    elif op in _BODY_NAME:
        body = {_BODY_NAME[op]: f}
    else:
        body = {}
    fields = {"op": op.value}
    if body:
        fields["body"] = body
    return (pack(Instr, fields),)


def encode(opcode, /, *, config=None, check=True, **fields):
    """The words of one instruction ``opcode`` (an :class:`Opcode` or its name) with ``fields``
    (names or members accepted for ports, opcodes, formats and flags)."""
    op = Opcode[opcode.upper()] if isinstance(opcode, str) else Opcode(opcode)
    f = _normalise(op, fields)
    if check:
        _check_fields(op, f, config)
    return _words_of(op, f)


def load(port, addr, rows, row_bytes, stride, beat_log2, iter_stride=0, **kw):
    """LOAD: ``rows`` rows of ``row_bytes`` at ``addr + r * stride`` (plus ``i * iter_stride``
    in REPEAT iteration ``i``) into ``port`` (a :class:`LoadPort` or its name) as beats of
    ``2**beat_log2`` bytes."""
    return encode(Opcode.LOAD, port=port, addr=addr, rows=rows, row_bytes=row_bytes, stride=stride,
                  beat_log2=beat_log2, iter_stride=iter_stride, **kw)


def store(port, addr, rows, row_bytes, stride, beat_log2, iter_stride=0, **kw):
    """STORE: ``port`` (a :class:`StorePort` or its name) into the window (as :func:`load`)."""
    return encode(Opcode.STORE, port=port, addr=addr, rows=rows, row_bytes=row_bytes, stride=stride,
                  beat_log2=beat_log2, iter_stride=iter_stride, **kw)


def gemm(op, m=0, k=0, n=0, accumulate=False, bias=False, requant=False, **kw):
    """GEMM: one engine command (``op`` a ``hw.gemm.Op``, its name or a raw number)."""
    return encode(Opcode.GEMM, op=op, m=m, k=k, n=n, accumulate=accumulate, bias=bias,
                  requant=requant, **kw)


def vpu(op, n=0, rows=0, *, in_fmt=0, out_fmt=0, causal=False, halves=False, len=0, mult_a=0,
        shift_a=0, mult_b=0, shift_b=0, **kw):
    """VPU: one vector-unit command (``op`` a ``hw.vpu.layouts.Op``, its name or a number;
    formats a ``Fmt``, ``"int8"``/``"int16"``/``"int32"`` or a number)."""
    return encode(Opcode.VPU, op=op, n=n, rows=rows, in_fmt=in_fmt, out_fmt=out_fmt, causal=causal,
                  halves=halves, len=len, mult_a=mult_a, shift_a=shift_a, mult_b=mult_b,
                  shift_b=shift_b, **kw)


def kv(descriptor=None, **fields):
    """KV and its descriptor word: ``descriptor`` a 256-bit ``int`` (``pack_descriptor``), or
    the descriptor's fields as keywords (``op`` a name or number, ``flags`` names or a number)."""
    if descriptor is not None:
        if fields:
            raise ParameterError("kv: give a descriptor word or its fields, not both")
        check_int("descriptor", descriptor, 0, _WORD_MASK)
        fields = unpack(KV_LAYOUT, descriptor)
    kw = {k: fields.pop(k) for k in ("config", "check") if k in fields}
    return encode(Opcode.KV, **fields, **kw)


def signal(sem, count=1, **kw):
    """SIGNAL: semaphore ``sem`` += ``count``."""
    return encode(Opcode.SIGNAL, sem=sem, count=count, **kw)


def wait(sem, count=1, timeout=0, **kw):
    """WAIT until semaphore ``sem`` >= ``count``, then take ``count`` (``timeout`` cycles, 0
    for ever)."""
    return encode(Opcode.WAIT, sem=sem, count=count, timeout=timeout, **kw)


def fence(units, **kw):
    """FENCE on ``units``: a :class:`Unit` mask, ``"load|store"``, or a list of names."""
    return encode(Opcode.FENCE, units=units, **kw)


def repeat(count, length, **kw):
    """REPEAT the next ``length`` words ``count`` times (a KV and its descriptor are two)."""
    return encode(Opcode.REPEAT, count=count, length=length, **kw)


def nop(**kw):
    return encode(Opcode.NOP, **kw)


def end(**kw):
    return encode(Opcode.END, **kw)


def word(value):
    """A raw 256-bit word, as it is (an undefined opcode, reserved bits, anything)."""
    return [check_int("word", value, 0, _WORD_MASK)]


# ---- decoding ------------------------------------------------------------------------------

def decode_word(w):
    """``(opcode, fields)`` of one word: the :class:`Opcode` (or the number of an undefined
    one, with ``fields`` None) and its body's fields as raw ints (a GEMM's or VPU's: the unit
    command's; a KV's: none, its descriptor being the next word)."""
    instr = unpack(Instr, w)
    if instr["op"] not in _OPCODE_VALUES:
        return instr["op"], None
    op = Opcode(instr["op"])
    layout, names = _FIELDS[op]
    if layout is None or op == Opcode.KV:
        return op, {}
    name = _BODY_NAME[op]
    value = unpack(BODY_LAYOUT, instr["body"])[name]
    if op in (Opcode.GEMM, Opcode.VPU):
        value = unpack(BODY_LAYOUT[name].shape, value)["cmd"]
    full = unpack(layout, value)
    return op, {k: full[k] for k in names}


def _decode_one(words, i):
    """Instruction at word ``i`` (raw fields; KV takes the next word as its descriptor)."""
    w = words[i]
    op, f = decode_word(w)
    if f is None:
        return Instruction(op, {}, (w,), f"undefined opcode {op}")
    ws = (w,)
    if op == Opcode.KV:
        if i + 1 >= len(words):
            return Instruction(op.value, {}, ws, "kv: no descriptor word follows")
        f, ws = unpack(KV_LAYOUT, words[i + 1]), (w, words[i + 1])
    ins = Instruction(op.value, f, ws)
    if list(ws) != _words_of(op, f):
        ins.problem = "reserved bits set"
    return ins


def decode(words, *, config=None, base=0):
    """``[(byte address, Instruction)]`` of ``words`` (a program at byte address ``base``).
    An instruction the assembler would refuse has ``problem`` set (the reason)."""
    out, i, ctx = [], 0, _Context()
    while i < len(words):
        ins = _decode_one(words, i)
        pc = base + i * INSTR_BYTES
        op = ins.opcode
        if ins.problem is None:
            try:
                _check_fields(op, ins.fields, config)
            except ParameterError as e:
                ins.problem = f"{op.name.lower()}: {e}"
        if ins.problem is None:
            ins.problem = ctx.problem(op, pc, len(ins.words), ins.fields)
        if ins.problem is not None:
            ins.words = ins.words[:1]
            op = None
        ctx.advance(op, pc, len(ins.words), ins.fields)
        out.append((pc, ins))
        i += len(ins.words)
    try:
        ctx.finish()
    except ParameterError as e:     # the open REPEAT is shown raw, so the text assembles
        dict(out)[ctx.repeat_at].problem = str(e)
    return out


# ---- text ----------------------------------------------------------------------------------

def _name(enum_cls, value):
    try:
        return enum_cls(value).name.lower()
    except ValueError:
        return str(value)


def _flags_text(flag_cls, value):
    names = [m.name.lower() for m in flag_cls if value & m.value]
    rest = value & ~sum(m.value for m in flag_cls)
    return "|".join(names + ([str(rest)] if rest else [])) or "0"


def _format(ins):
    if ins.problem is not None:
        return f"word {ins.words[0]:#x}  # {ins.problem}"
    op = ins.opcode
    f = ins.fields
    parts = [op.name.lower()]
    if op in (Opcode.LOAD, Opcode.STORE):
        parts += [_name(_port_enum(op), f["port"]), f"addr={f['addr']:#x}", f"rows={f['rows']}",
                  f"row_bytes={f['row_bytes']}", f"stride={f['stride']}", f"beat={1 << f['beat_log2']}"]
        if f["iter_stride"]:
            parts.append(f"iter_stride={f['iter_stride']}")
    elif op in (Opcode.GEMM, Opcode.VPU):
        parts.append(_name(GemmOp if op == Opcode.GEMM else VpuOp, f["op"]))
        for name in _FIELDS[op][1][1:]:
            if name in _FLAGS[op]:
                if f[name]:
                    parts.append(name)
            elif name in ("in_fmt", "out_fmt"):
                if f[name]:
                    parts.append(f"{name}={_name(Fmt, f[name])}")
            elif f[name] or (op == Opcode.VPU and name in ("n", "rows")):
                parts.append(f"{name}={f[name]}")
    elif op == Opcode.KV:
        parts.append(_name(KvOp, f["op"]))
        for name in _FIELDS[op][1][1:]:
            if name == "flags":
                if f[name]:
                    parts.append(f"flags={_flags_text(KvFlag, f[name])}")
            elif f[name]:
                parts.append(f"{name}={f[name]:#x}" if name in ("a", "b", "status") else f"{name}={f[name]}")
    elif op == Opcode.FENCE:
        parts.append(_flags_text(Unit, f["units"]))
    elif op == Opcode.WAIT:
        parts += [f"sem={f['sem']}", f"count={f['count']}"] + ([f"timeout={f['timeout']}"] if f["timeout"] else [])
    else:
        parts += [f"{k}={v}" for k, v in f.items()]
    return " ".join(parts)


def disassemble(words, *, config=None, base=0, addresses=False):
    """The text of ``words``, one instruction a line. ``addresses`` prefixes every line with
    its byte address (for reading only: :func:`assemble` does not take that prefix)."""
    lines = []
    for pc, ins in decode(list(words), config=config, base=base):
        text = ins.text()
        lines.append(f"{pc:#07x}:  {text}" if addresses else text)
    return "\n".join(lines) + ("\n" if lines else "")


def _number(text, what):
    try:
        return int(text, 0)
    except ValueError:
        raise ParameterError(f"{what}: {text!r} is not a number (accepted: decimal, 0x hex, 0b binary)") from None


def _parse_line(tokens):
    mnemonic = tokens[0].lower()
    if mnemonic == "word":
        if len(tokens) != 2:
            raise ParameterError("word: one value expected (accepted: word VALUE)")
        return word(_number(tokens[1], "word"))
    try:
        op = Opcode[mnemonic.upper()]
    except KeyError:
        raise ParameterError(f"{mnemonic!r} is not an instruction (accepted: one of "
                             + ", ".join(o.name.lower() for o in Opcode) + ", word)") from None
    args = tokens[1:]
    fields = {}
    if op in (Opcode.LOAD, Opcode.STORE, Opcode.GEMM, Opcode.VPU, Opcode.KV, Opcode.FENCE):
        key = {Opcode.LOAD: "port", Opcode.STORE: "port", Opcode.FENCE: "units"}.get(op, "op")
        if args and "=" not in args[0]:
            first = args.pop(0)
            fields[key] = _number(first, key) if first[0].isdigit() and key != "units" else first
    for arg in args:
        if "=" not in arg:
            if arg.lower() in _FLAGS.get(op, ()):
                fields[arg.lower()] = 1
                continue
            raise ParameterError(f"{arg!r}: expected name=value (accepted fields: "
                                 + ", ".join(_FIELDS[op][1]) + ")")
        name, value = arg.split("=", 1)
        name = name.lower()
        if name in fields or (name == "beat" and "beat_log2" in fields):
            raise ParameterError(f"{name}: given twice")
        if name == "beat" and op in (Opcode.LOAD, Opcode.STORE):
            b = _number(value, "beat")
            if b <= 0 or b & (b - 1):
                raise ParameterError(f"beat: {b} is not a power of two (accepted: 1, 2, 4, ... "
                                     f"{1 << MAX_BEAT_LOG2} bytes)")
            fields["beat_log2"] = b.bit_length() - 1
        elif name in ("port", "op", "in_fmt", "out_fmt", "flags", "units") and not value.lstrip("-")[:1].isdigit():
            fields[name] = value
        else:
            fields[name] = _number(value, name)
    return op, fields


def assemble(text, *, config=None, check=True, base=0):
    """The words of the program ``text`` (see the module docstring). A bad line raises a
    ParameterError ``line N: <instruction>: <field>: <value> ... (accepted: ...)``."""
    words, ctx = [], _Context()
    for lineno, line in enumerate(text.splitlines(), 1):
        tokens = line.split("#", 1)[0].split()
        if not tokens:
            continue
        pc = base + len(words) * INSTR_BYTES
        try:
            parsed = _parse_line(tokens)
            if isinstance(parsed, list):
                words += parsed
                ctx.advance(None, pc, 1, {})
                continue
            op, fields = parsed
            try:
                ws = encode(op, config=config, check=check, **fields)
            except ParameterError as e:
                raise ParameterError(f"{op.name.lower()}: {e}") from None
            if check:
                raw = _decode_one(ws, 0).fields
                problem = ctx.problem(op, pc, len(ws), raw)
                if problem:
                    raise ParameterError(problem)
                ctx.advance(op, pc, len(ws), raw)
            words += ws
        except ParameterError as e:
            raise ParameterError(f"line {lineno}: {e}") from None
    if check:
        ctx.finish()
    return words


# ---- bytes ---------------------------------------------------------------------------------

def to_bytes(words):
    """Little-endian bytes of ``words``, 32 per word."""
    return b"".join(int(w).to_bytes(INSTR_BYTES, "little") for w in words)


def from_bytes(blob):
    """The words of ``blob`` (a multiple of 32 bytes)."""
    blob = bytes(blob)
    if len(blob) % INSTR_BYTES:
        raise ParameterError(f"bytes: {len(blob)} is not a multiple of {INSTR_BYTES} "
                             f"(accepted: whole {INSTR_BYTES}-byte words)")
    return [int.from_bytes(blob[i:i + INSTR_BYTES], "little") for i in range(0, len(blob), INSTR_BYTES)]


# ---- the builder ---------------------------------------------------------------------------

class Program:
    """A program under construction at byte address ``base``: each method appends one
    instruction (the functions of this module, same arguments) and returns its byte address.

    ``config`` adds the beat-size checks; ``check=False`` keeps only field widths.
    :meth:`loop` opens a REPEAT whose length is counted from the body."""

    def __init__(self, *, base=0, config=None, check=True):
        check_int("base", base, 0, (1 << 40) - INSTR_BYTES)
        if base % INSTR_BYTES:
            raise ParameterError(f"base: {base:#x} is not a multiple of {INSTR_BYTES} (accepted: a "
                                 f"multiple of {INSTR_BYTES})")
        self.base, self.config, self.check = base, config, check
        self._words = []
        self._ctx = _Context()

    def __len__(self):
        return len(self._words)

    @property
    def pc(self):
        """Byte address of the next instruction."""
        return self.base + len(self._words) * INSTR_BYTES

    def _append(self, fn, *args, **kw):
        pc = self.pc
        try:
            ws = fn(*args, **kw) if fn is word else fn(*args, config=self.config, check=self.check, **kw)
        except ParameterError as e:
            raise ParameterError(f"{fn.__name__}: {e}") from None
        ins = _decode_one(ws, 0)
        if self.check and ins.opcode is not None:
            problem = self._ctx.problem(ins.opcode, pc, len(ws), ins.fields)
            if problem:
                raise ParameterError(problem)
        self._ctx.advance(ins.opcode, pc, len(ws), ins.fields)
        self._words += ws
        return pc

    @contextmanager
    def loop(self, count):
        """``with program.loop(count): ...``: a REPEAT of the body written inside."""
        at = self.pc
        self.repeat(count, 1)           # length patched below
        start = len(self._words)
        self._ctx.body_left = 1 << 30   # the body is open until the block ends
        yield at
        length = len(self._words) - start
        self._ctx.body_left = 0
        if length == 0 and self.check:
            raise ParameterError("repeat: length: 0 is out of range (accepted: an integer in 1..4095)")
        self._words[start - 1] = repeat(count, length, check=self.check)[0]

    @property
    def words(self):
        """The program's words (checked: no REPEAT body left open past the end)."""
        if self.check:
            self._ctx.finish()
        return list(self._words)

    def to_bytes(self):
        return to_bytes(self.words)

    def text(self):
        return disassemble(self.words, config=self.config, base=self.base)


def _builder_method(fn):
    @wraps(fn)
    def method(self, *args, **kw):
        return self._append(fn, *args, **kw)
    method.__doc__ = (fn.__doc__ or "") + "\n\nAppended to the program; returns its byte address."
    return method


for _fn in (load, store, gemm, vpu, kv, signal, wait, fence, repeat, nop, end, word):
    setattr(Program, _fn.__name__, _builder_method(_fn))
