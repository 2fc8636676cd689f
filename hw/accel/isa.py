"""The accelerator's instruction set, defined once: instruction words, operand fields, unit masks
and error codes, as ``amaranth.lib.data`` layouts and ``amaranth.lib.enum`` enums. The
sequencer's gateware, the assembler (``scoville.sim.accel.asm``), the machine model and the
testbenches all pack and unpack through these.

An instruction is one 256-bit word, the width of one HBM atom (32 bytes), fetched in bursts from
HBM; a program is a sequence of them at a 32-byte aligned address. ``op`` is the low byte::

    [7:0]     op       Opcode
    [255:8]   body     the opcode's fields (one of the layouts below), from bit 8

The one variable-length instruction is ``KV``: the word after it is a KV-cache DMA descriptor
(``hw.kvdma.descriptors.Descriptor``, 256 bits) pushed unchanged to the KV-cache DMA.

Memory operands (``LOAD``/``STORE``, :data:`Move`) are 2-D windows of HBM: ``rows`` rows of
``row_bytes`` bytes, row ``r`` at ``addr + r * stride``; inside a ``REPEAT`` body, iteration
``i`` adds ``i * iter_stride`` to ``addr``. ``addr`` and ``stride`` are multiples of 32 (HBM
atoms); a row goes to (comes from) its unit port as ``ceil(row_bytes / 2**beat_log2)`` beats of
``2**beat_log2`` bytes in the beat's low bytes, the last beat of a row zero-padded on a load and
cut at ``row_bytes`` on a store. The beat size is the unit's: GEMM A ``R`` bytes, B ``C``, Q 8,
C ``4C`` (int32) or ``C`` (requantised); VPU rows ``lanes * element bytes``, P and S 8.
"""

from amaranth.hdl import signed, unsigned
from amaranth.lib import data, enum


__all__ = ["INSTR_BITS", "INSTR_BYTES", "Opcode", "LoadPort", "StorePort", "Unit", "ErrCode",
           "Move", "GemmBody", "VpuBody", "SemBody", "FenceBody", "RepeatBody", "Instr",
           "MAX_BEAT_LOG2", "ADDR_BITS", "SEMAPHORES", "ATOM_BYTES"]

INSTR_BITS = 256
INSTR_BYTES = INSTR_BITS // 8
ATOM_BYTES = 32          # HBM atom: addresses and strides of memory operands are multiples of it
ADDR_BITS = 40           # byte address fields (the configuration's HBM is smaller: see ErrCode.RANGE)
MAX_BEAT_LOG2 = 6        # unit beats of at most 64 bytes (GEMM C int32 on 16 columns)
SEMAPHORES = 16


class Opcode(enum.Enum, shape=8):
    """``op`` of an :data:`Instr`. 0 is no instruction: a program that runs into zeroed memory
    stops with ``BAD_OPCODE`` instead of running on."""
    END = 1       # the program ends once every unit has finished (status DONE, interrupt)
    LOAD = 2      # HBM -> a unit's input port (Move, LoadPort)
    STORE = 3     # a unit's output port -> HBM (Move, StorePort)
    GEMM = 4      # one GEMM engine command (hw.gemm.Command)
    VPU = 5       # one vector-unit command (hw.vpu.layouts.Command)
    KV = 6        # the next word is a KV-cache DMA descriptor
    SIGNAL = 7    # semaphore[sem] += count
    WAIT = 8      # wait until semaphore[sem] >= count, then subtract count (timeout: TIMEOUT)
    FENCE = 9     # wait until the units in the mask have finished all their issued work
    REPEAT = 10   # run the next `length` instructions `count` times
    NOP = 11


class LoadPort(enum.Enum, shape=4):
    """Destination of a ``LOAD``: a unit input stream of the tile."""
    GEMM_A = 0
    GEMM_B = 1
    GEMM_Q = 2
    VPU_A = 3
    VPU_B = 4
    VPU_P = 5


class StorePort(enum.Enum, shape=4):
    """Source of a ``STORE``: a unit output stream of the tile."""
    GEMM_C = 0
    VPU_Y = 1
    VPU_S = 2


class Unit(enum.Flag, shape=5):
    """Units of a tile, as a ``FENCE`` mask."""
    LOAD = 1
    STORE = 2
    GEMM = 4
    VPU = 8
    KV = 16


class ErrCode(enum.Enum, shape=4):
    """Why a program stopped (the tile's ``err_code`` CSR); ``err_pc`` holds the byte address
    of the instruction at fault."""
    NONE = 0
    BAD_OPCODE = 1     # an undefined opcode (0 included)
    BAD_OPERAND = 2    # a field out of range: port, a beat size the port does not take, zero
                       # rows or row_bytes, row_bytes > stride (rows > 1), an address (with
                       # the REPEAT offset) or stride (rows > 1) not a multiple of 32, a REPEAT
                       # inside a REPEAT body or of length 0, a KV whose descriptor word
                       # would fall outside its REPEAT body
    FETCH = 3          # the instruction fetch got an AXI error response
    LOAD = 4           # a LOAD got an AXI error response (SLVERR/DECERR)
    STORE = 5          # a STORE got an AXI error response
    UNIT = 6           # the GEMM engine or the vector unit answered a status other than OK
    TIMEOUT = 7        # a WAIT found its semaphore short for `timeout` cycles
    KV = 8             # the KV-cache DMA reported an error (err_pc: the last KV issued)
    RANGE = 9          # a LOAD/STORE window reaches beyond the HBM (refused before any access)
    ABORT = 10         # the host wrote ctrl.abort


#: Body of LOAD and STORE: a 2-D window of HBM and the unit port it moves to or from.
Move = data.StructLayout({
    "port": 4,                      # LoadPort or StorePort, by opcode
    "beat_log2": 3,                 # bytes per unit beat = 2**beat_log2, 0..MAX_BEAT_LOG2
    "_rsv7": 1,
    "addr": unsigned(ADDR_BITS),
    "rows": unsigned(16),           # 1..65535
    "row_bytes": unsigned(24),      # 1..stride (or any, for rows == 1)
    "stride": unsigned(32),
    "iter_stride": signed(32),
})

#: Body of GEMM: the engine's 64-bit command word, as ``hw.gemm.Command`` defines it.
GemmBody = data.StructLayout({"cmd": 64})
#: Body of VPU: the vector unit's 128-bit command word (``hw.vpu.layouts.Command``).
VpuBody = data.StructLayout({"cmd": 128})
#: Body of SIGNAL and WAIT. ``timeout`` (WAIT only) in cycles; 0 waits for ever.
SemBody = data.StructLayout({"sem": 4, "_rsv4": 4, "count": 8, "timeout": 32})
#: Body of FENCE.
FenceBody = data.StructLayout({"units": Unit})
#: Body of REPEAT: the next ``length`` words (1..4095, no REPEAT among them; a KV and its
#: descriptor count two) run
#: ``count`` times (1..65535; 0 skips them).
RepeatBody = data.StructLayout({"count": 16, "length": 12})

_Body = data.UnionLayout({"move": Move, "gemm": GemmBody, "vpu": VpuBody, "sem": SemBody,
                          "fence": FenceBody, "repeat": RepeatBody})

#: One instruction word (256 bits; the bits above the body are reserved, written 0).
Instr = data.StructLayout({
    "op": 8,        # an Opcode; a plain field so that an undefined one can be reported
    "body": _Body,
    "_rsv": INSTR_BITS - 8 - _Body.size,
})
