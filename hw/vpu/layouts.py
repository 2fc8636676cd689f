"""Wire formats of the vector unit, defined once: commands, statuses, channel parameters, row
scalars and data beats, as ``amaranth.lib.data`` layouts with the opcodes and codes as
``amaranth.lib.enum`` enums. The gateware, the golden model (``verif.vpu_model``) and the
testbench all pack and unpack through these.

Command word (``s_cmd_tdata``, 128 bits, :data:`Command`)::

    [4:0]     op        Op
    [6:5]     in_fmt    Fmt of the s_axis_a elements (int8/int16/int32)
    [8:7]     out_fmt   Fmt of the m_axis_y elements
    [9]       causal    SOFTMAX: row r keeps len + r elements (else len)
    [10]      halves    ROPE: pairs (j, j + n/2) (Hugging Face); else (2i, 2i+1) (GGUF)
    [31:16]   n         elements per row, 1..65535
    [47:32]   rows      rows, 1..65535
    [63:48]   len       SOFTMAX: unmasked elements of row 0
    [79:64]   mult_a    signed 16-bit multiplier of the first scaling
    [85:80]   shift_a   its right shift, 0..63
    [103:88]  mult_b    signed 16-bit multiplier of the second scaling (norms: eps mantissa)
    [109:104] shift_b   its right shift (norms: eps exponent)

The arithmetic of every opcode, in these fields, is in ``docs/vpu.md`` and in
:mod:`scoville.verif.vpu_model`, which the RTL matches bit for bit.
"""

from amaranth.hdl import signed, unsigned
from amaranth.lib import data, enum


__all__ = ["Op", "Fmt", "Status", "Command", "StatusWord", "ChannelParam", "ScalarWord",
           "ArgmaxWord", "RopeCoef", "ROPE_FRAC", "SOFTMAX_FRAC", "NORM_FRAC",
           "PWL_FRAC", "M_INIT", "EXP_D_MAX", "FMT_BITS", "FMT_MAX", "TWO_PASS", "USES_B", "USES_CHANNELS",
           "REDUCTIONS", "INT8_16_ONLY", "lane_layout"]


class Op(enum.Enum, shape=5):
    """Opcode of a :data:`Command`; other values answer ``BAD_OP``."""
    LOAD_P = 1       # n channel parameters from s_axis_p into the parameter memory
    REQUANT = 2      # per-channel (offset, mult, shift) from the parameter memory
    SCALE = 3        # per-tensor (mult_a, shift_a)
    REQUANT_DYN = 4  # per-row dynamic scale: the row's absolute maximum -> qmax
    ADD = 5          # a*mult_a + b*mult_b, >> shift_a
    MUL = 6          # a*b*mult_a >> shift_a
    MAX = 7          # row reductions onto m_axis_s
    SUM = 8
    SUMSQ = 9
    ARGMAX = 10
    SOFTMAX = 11
    RMSNORM = 12
    LAYERNORM = 13
    GELU = 14
    SILU = 15
    ROPE = 16


class Fmt(enum.Enum, shape=2):
    """Element format of a data stream: lane ``i`` of a beat is bits ``[w*i, w*i + w)``."""
    INT8 = 0
    INT16 = 1
    INT32 = 2


#: Element width and largest value of each format.
FMT_BITS = {Fmt.INT8: 8, Fmt.INT16: 16, Fmt.INT32: 32}
FMT_MAX = {Fmt.INT8: 127, Fmt.INT16: 32767, Fmt.INT32: (1 << 31) - 1}

#: Opcodes whose rows are normalised by a row scalar computed from the whole row first: their
#: rows wait in the row buffer, so n is bounded by its size.
TWO_PASS = (Op.REQUANT_DYN, Op.SOFTMAX, Op.RMSNORM, Op.LAYERNORM)
#: Opcodes that read a second operand row from s_axis_b.
USES_B = (Op.ADD, Op.MUL, Op.ROPE)
#: Opcodes that read the per-channel parameter memory (n bounded by its depth).
USES_CHANNELS = (Op.LOAD_P, Op.REQUANT, Op.RMSNORM, Op.LAYERNORM)
#: Opcodes that emit one m_axis_s beat per row and no m_axis_y data.
REDUCTIONS = (Op.MAX, Op.SUM, Op.SUMSQ, Op.ARGMAX)
#: Opcodes whose products need int8/int16 inputs (an int32 input answers BAD_FMT).
INT8_16_ONLY = (Op.MUL, Op.SUMSQ, Op.RMSNORM, Op.LAYERNORM, Op.ROPE)


class Status(enum.Enum, shape=4):
    """Code of a :data:`StatusWord`."""
    OK = 0
    BAD_SIZE = 1   # n or rows is 0, or n beyond the row buffer / parameter memory, or odd n for ROPE
    BAD_OP = 2     # undefined opcode
    BAD_FMT = 3    # undefined format, or a format the opcode does not accept


#: One beat of ``s_cmd`` (128 bits). The ``_rsv*`` fields are ignored.
Command = data.StructLayout({
    "op": 5, "in_fmt": 2, "out_fmt": 2, "causal": 1, "halves": 1, "_rsv11": 5,
    "n": 16, "rows": 16, "len": 16,
    "mult_a": signed(16), "shift_a": unsigned(6), "_rsv86": 2,
    "mult_b": signed(16), "shift_b": unsigned(6), "_rsv110": 18,
})

#: One beat of ``m_sts`` (16 bits). ``op`` echoes the command's op field as sent, so an
#: undefined opcode comes back as itself.
StatusWord = data.StructLayout({"op": 5, "_rsv5": 3, "code": Status, "_rsv12": 4})

#: One beat of ``s_axis_p`` (64 bits): the parameters of one channel (column) for REQUANT
#: (``(t + offset) * mult >> shift``) and the norms (gamma as ``mult >> shift``, beta as
#: ``offset`` in output units).
ChannelParam = data.StructLayout({"offset": signed(32), "mult": signed(16), "shift": unsigned(6),
                                  "_rsv54": 10})

#: One beat of ``m_axis_s`` (64 bits) for ARGMAX: the maximum and its index (first on ties).
ArgmaxWord = data.StructLayout({"value": signed(32), "index": unsigned(32)})
#: One beat of ``m_axis_s``: MAX, SUM, SUMSQ and REQUANT_DYN's absolute maximum as int64, or
#: ARGMAX's :data:`ArgmaxWord`.
ScalarWord = data.UnionLayout({"value": signed(64), "argmax": ArgmaxWord})


#: Lane ``j`` of an ``s_axis_b`` beat for ROPE (32 bits): cos and sin of element j's pair angle,
#: Q1.14 (16384 = 1.0).
RopeCoef = data.StructLayout({"cos": signed(16), "sin": signed(16)})
ROPE_FRAC = 14


#: Fixed-point formats of the datapaths (see ``docs/vpu.md``).
SOFTMAX_FRAC = 8            # SOFTMAX's z: log2 units, Q.8
NORM_FRAC = 16              # the normalised element v of the norms, Q.16
PWL_FRAC = 10               # GELU/SiLU argument and value, Q.10
M_INIT = -(1 << 23)         # SOFTMAX per-lane maximum before a row's first element (24 bits)
EXP_D_MAX = (1 << 16) - 1   # largest argument of the exp2 unit (Q8.8)


def lane_layout(lanes, fmt):
    """A beat of ``s_axis_a``/``s_axis_b``/``m_axis_y`` (``32 * lanes`` bits) holding ``lanes``
    elements of ``fmt``, packed from bit 0, the rest padding."""
    w = FMT_BITS[fmt]
    fields = {"lanes": data.ArrayLayout(signed(w), lanes)}
    if w < 32:
        fields["pad"] = (32 - w) * lanes
    return data.StructLayout(fields)
