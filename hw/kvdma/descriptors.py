"""Descriptor format, opcodes, flags, error codes and the CSR map of the ``kvdma`` engine.

These constants are shared by the gateware (:mod:`hw.kvdma.engine`), the golden model
(:mod:`verif.kv_model`) and the testbenches, so that the three never disagree.

Descriptor: 256 bits = eight little-endian 32-bit words (32 bytes in a ring slot; the same
vector on the ``s_desc`` stream port, word ``k`` at bits ``[32k, 32k+32)``)::

    w0  [3:0] opcode   [7:4] pool   [15:8] flags   [23:16] layer0   [31:24] layers (0 means 1)
    w1  count    GATHER: seq_len tokens; APPEND: new tokens; BLOCK_COPY: pairs;
                 COPY: bytes per row; FILL: bytes
    w2  a        GATHER/APPEND: block table address (4-byte entries);
                 BLOCK_COPY: pair list address (8-byte entries: src id, dst id); COPY: source
    w3  b        GATHER: destination; APPEND: source buffer; BLOCK_COPY: host base;
                 COPY/FILL: destination
    w4  c        APPEND: position of the first new token; FILL: 32-bit pattern; COPY: rows (0 = 1)
    w5  d        GATHER/APPEND: block table length (entries); BLOCK_COPY: host block stride;
                 COPY: source row stride
    w6  e        COPY: destination row stride; head range of GATHER/APPEND (and BLOCK_COPY
                 in an HND pool): NHD pool: [15:0] byte offset, [31:16] bytes of each token row
                 (0: the whole row); HND pool: [15:0] first head, [31:16] heads (0: the rest)
    w7  status   address of the 8-byte completion status (0: none); 8-byte aligned
"""

from amaranth.hdl import Mux, unsigned
from amaranth.lib import data, enum

__all__ = ["Op", "Flag", "Err", "Layout", "Descriptor", "Status", "Geometry", "DESC_BYTES", "TABLE_ENTRY_BYTES",
           "PAIR_BYTES", "STATUS_BYTES", "MAX_POOLS",
           "POOL_FIELDS", "CSR_NAMES", "csr_names", "csr_address", "pool_reg", "geometry_word", "pack_descriptor",
           "unpack_descriptor", "status_word", "head_range_word", "HeadRange"]


class Op(enum.IntEnum, shape=4):
    """Descriptor opcodes (word 0 ``[3:0]``)."""
    FENCE = 0
    GATHER = 1
    APPEND = 2
    BLOCK_COPY = 3
    COPY = 4
    FILL = 5


# Names by value, for logs (values outside the enum are bad opcodes: callers fall back to the number).
Op.NAMES = {op.value: op.name for op in Op}


class Flag(enum.IntFlag, shape=8):
    """Descriptor flags (word 0 ``[15:8]``)."""
    K = 1 << 0          # GATHER/APPEND/BLOCK_COPY: the K plane
    V = 1 << 1          # ... and/or the V plane
    SRC_HOST = 1 << 2   # BLOCK_COPY: source ids index host memory (swap in)
    DST_HOST = 1 << 3   # BLOCK_COPY: destination ids index host memory (swap out)
    STREAM = 1 << 4     # GATHER: out of the m_axis port instead of into memory


class Err(enum.IntEnum, shape=8):
    """Error codes (status word ``[7:0]``, ``err_code`` CSR)."""
    OK = 0
    BAD_OPCODE = 1      # unknown opcode, or STREAM on anything but GATHER
    MISALIGNED = 2      # base not aligned, or source/destination not congruent modulo the bus width
    BAD_BLOCK = 3       # block id >= num_blocks (and not the -1 "skip" marker)
    POS_RANGE = 4       # position beyond the block table (index >= block table length)
    READ_ERR = 5        # SLVERR/DECERR on a data read
    WRITE_ERR = 6       # SLVERR/DECERR on a data write
    TABLE_ERR = 7       # SLVERR/DECERR reading a block table, pair list or ring descriptor
    BAD_CONFIG = 8      # block_size_log2 > 8
    BAD_POOL = 9        # pool index >= the engine's `pools` (GATHER/APPEND/BLOCK_COPY)
    HEAD_RANGE = 10     # HND pool: head range beyond the pool's heads (or empty)


class Layout(enum.IntEnum, shape=1):
    """Cache layout of a pool (``geometry`` CSR bit 8)."""
    NHD = 0     # [num_blocks, block_size, heads, head_dim]: a token row holds every head
    HND = 1     # [num_blocks, heads, block_size, head_dim]: a head's tokens are contiguous


class Descriptor(data.Struct):
    """The 256-bit descriptor (field order is bit order, LSB first; see the module docstring).

    ``op`` is a plain 4-bit field, not :class:`Op`: the wire can carry an unknown opcode, which
    the engine must accept and answer with ``BAD_OPCODE``. ``layers`` 0 means 1.
    """
    op: unsigned(4)
    pool: unsigned(4)
    flags: Flag
    layer0: unsigned(8)
    layers: unsigned(8)
    count: unsigned(32)
    a: unsigned(32)
    b: unsigned(32)
    c: unsigned(32)
    d: unsigned(32)
    e: unsigned(32)
    status: unsigned(32)

    def layer_count(self):
        """Layers the descriptor covers (the ``layers`` field, 0 meaning 1)."""
        return Mux(self.layers == 0, 1, self.layers)


class HeadRange(data.Struct):
    """Descriptor word 6 as a head range: NHD pools bytes, HND pools heads (see module docstring)."""
    first: unsigned(16)
    num: unsigned(16)


class Status(data.Struct):
    """The 64-bit completion status the engine writes (8-byte aligned)."""
    code: Err
    _pad0: unsigned(8)
    op: unsigned(8)     # the descriptor's opcode as received (also an unknown one)
    _pad1: unsigned(7)
    done: unsigned(1)
    item: unsigned(32)  # index of the faulting item (0 when OK)


class Geometry(data.Struct):
    """A pool's ``geometry`` register."""
    block_size_log2: unsigned(4)
    _pad0: unsigned(4)
    layout: Layout
    _pad1: unsigned(7)
    heads: unsigned(16)  # HND: the pool's KV heads


DESC_BYTES = 32
TABLE_ENTRY_BYTES = 4   # a block-table entry: one 32-bit block id (0xFFFFFFFF: skip)
PAIR_BYTES = 8          # a BLOCK_COPY pair-list entry: source id, destination id
STATUS_BYTES = 8        # the completion status word (8-byte aligned)

# CSR map: register k at byte offset 4k. Global registers first, then pool k's eight registers
# at 16 + 8k (13..15 are reserved and read 0). See hw.kvdma.engine.KVDMA for each field.
MAX_POOLS = 4
GLOBAL_CSRS = ["ctrl", "ring_base", "ring_size_log2", "ring_head", "ring_tail", "status", "done_count",
               "err_code", "err_addr", "err_item", "irq_status", "ack", "info",
               "reserved13", "reserved14", "reserved15"]
POOL_FIELDS = ["base", "num_blocks", "geometry", "token_stride", "head_stride", "block_stride",
               "layer_stride", "v_offset"]


def pool_reg(pool, field):
    """Name of pool ``pool``'s register ``field`` (one of :data:`POOL_FIELDS`)."""
    return f"pool{pool}_{field}"


def csr_names(pools):
    """Register names of an engine with ``pools`` cache pools, in address order."""
    return GLOBAL_CSRS + [pool_reg(k, f) for k in range(pools) for f in POOL_FIELDS]


CSR_NAMES = csr_names(MAX_POOLS)


def csr_address(name):
    """Byte address of register ``name`` (the same for every ``pools``)."""
    return 4 * CSR_NAMES.index(name)


def _pack(layout, fields):
    return layout.const(fields).as_value().value


def geometry_word(block_size_log2, layout=Layout.NHD, heads=0):
    """Value of a pool's ``geometry`` register (:class:`Geometry`)."""
    return _pack(Geometry, {"block_size_log2": block_size_log2 & 0xF, "layout": Layout(layout & 1),
                            "heads": heads & 0xFFFF})


_DESC_WORDS = ("count", "a", "b", "c", "d", "e", "status")


def pack_descriptor(op, *, pool=0, flags=0, layer0=0, layers=1, count=0, a=0, b=0, c=0, d=0, e=0, status=0):
    """The 256-bit :class:`Descriptor` as an ``int`` (``.to_bytes(32, "little")`` for a ring slot).

    Values are truncated to their fields' widths (tests deliberately send out-of-range ones).
    """
    words = dict(count=count, a=a, b=b, c=c, d=d, e=e, status=status)
    return _pack(Descriptor, {"op": op & 0xF, "pool": pool & 0xF, "flags": Flag(flags & 0xFF),
                              "layer0": layer0 & 0xFF, "layers": layers & 0xFF,
                              **{k: v & 0xFFFFFFFF for k, v in words.items()}})


def unpack_descriptor(value):
    """The fields of a 256-bit descriptor ``value`` as a dict (``layers`` 0 read as 1)."""
    view = data.Const(Descriptor, value)
    fields = {name: int(view[name]) for name in ("op", "pool", "flags", "layer0", "layers") + _DESC_WORDS}
    fields["layers"] = fields["layers"] or 1
    return fields


def status_word(op, code, item):
    """The 64-bit :class:`Status` word the engine writes: done, opcode, error code, faulting item."""
    return _pack(Status, {"code": Err(code), "op": op & 0xFF, "done": 1, "item": item & 0xFFFFFFFF})


def head_range_word(first, num):
    """Descriptor word 6 (:class:`HeadRange`): NHD bytes ``[first, first + num)`` of every token row
    (``num`` 0: the whole row); HND heads ``[first, first + num)`` (``num`` 0: the rest)."""
    return _pack(HeadRange, {"first": first & 0xFFFF, "num": num & 0xFFFF})
