"""Interfaces between the components of the ``kvdma`` engine (see :mod:`hw.kvdma.engine`).

Segments flow from the generator to the read and write sides; address requests from each
requester to the AXI AR/AW channels; beats of the AXI R and B channels back to the component
whose ID they carry; error requests from every component to the error latch.
"""

from amaranth.hdl import unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import Out

from .descriptors import POOL_FIELDS, Geometry


__all__ = ["ID_DATA", "ID_TABLE", "ID_RING", "LENGTH_WIDTH", "ITEM_WIDTH", "read_segment_layout",
           "write_segment_layout", "address_layout", "table_beat_layout", "w_beat_layout", "info_layout",
           "pool_config_layout", "ErrorSignature", "RBeatSignature", "BBeatSignature"]

# AXI IDs: data bursts; block-table / pair-list reads and status writes; ring descriptor reads.
ID_DATA, ID_TABLE, ID_RING = 0, 1, 2
LENGTH_WIDTH = 32   # segment byte lengths
ITEM_WIDTH = 32     # item index reported with an error


def read_segment_layout(addr_width):
    """A segment's read half: ``length`` bytes from ``src``; ``item`` for error reports. Its
    bit order is :func:`hw.burst.request_layout`'s (``addr``, ``length``, ``user`` = item)."""
    return data.StructLayout({"src": unsigned(addr_width), "length": unsigned(LENGTH_WIDTH),
                              "item": unsigned(ITEM_WIDTH)})


def write_segment_layout(addr_width):
    """A segment's write half: ``length`` bytes to ``dst``; ``fill`` writes the FILL pattern
    instead of read data; ``last`` ends the descriptor (``tlast`` of a STREAM gather)."""
    return data.StructLayout({"dst": unsigned(addr_width), "length": unsigned(LENGTH_WIDTH),
                              "item": unsigned(ITEM_WIDTH), "fill": unsigned(1), "last": unsigned(1)})


def address_layout(addr_width):
    """One AR or AW request: a beat-aligned address and AXI ``AxLEN`` (beats - 1)."""
    return data.StructLayout({"addr": unsigned(addr_width), "len": unsigned(8)})


def info_layout(addr_width):
    """What a side keeps per burst in flight to report an error: its address and item."""
    return data.StructLayout({"addr": unsigned(addr_width), "item": unsigned(ITEM_WIDTH)})


def table_beat_layout(data_width):
    """One prefetched block-table beat and whether its read failed."""
    return data.StructLayout({"data": unsigned(data_width), "err": unsigned(1)})


def w_beat_layout(data_width):
    """One W beat (``data``, ``strb``, ``last``) plus ``tlast`` when it ends a STREAM gather."""
    return data.StructLayout({"data": unsigned(data_width), "strb": unsigned(data_width // 8),
                              "last": unsigned(1), "tlast": unsigned(1)})


def pool_config_layout(addr_width):
    """The descriptor's pool as sampled when it starts: the pool's registers
    (:data:`hw.kvdma.descriptors.POOL_FIELDS`, ``geometry`` as :class:`Geometry`) and the values
    derived from them once per descriptor (``block_mask`` = block_size - 1, ``block_bytes`` =
    token_stride * block_size, HND ``heads`` of the head range and ``head_end`` = its first head
    + heads (1 and first + 1 in NHD), ``planes`` = layers x (K, V) x heads)."""
    fields = {f: (Geometry if f == "geometry" else unsigned(32)) for f in POOL_FIELDS}
    return data.StructLayout({**fields, "block_mask": unsigned(addr_width), "block_bytes": unsigned(addr_width),
                              "heads": unsigned(16), "head_end": unsigned(17), "planes": unsigned(32)})


class ErrorSignature(wiring.Signature):
    """An error request: while ``valid``, ``code`` (:class:`Err`), faulting ``addr`` and ``item``."""

    def __init__(self, addr_width):
        super().__init__({"valid": Out(1), "code": Out(8), "addr": Out(addr_width), "item": Out(ITEM_WIDTH)})


class RBeatSignature(wiring.Signature):
    """An R beat routed to one component by its ID (``rready`` is always 1: no back-pressure);
    ``err`` is SLVERR or DECERR."""

    def __init__(self, data_width):
        super().__init__({"valid": Out(1), "data": Out(data_width), "err": Out(1), "last": Out(1)})


class BBeatSignature(wiring.Signature):
    """A B response routed to one component by its ID (``bready`` is always 1)."""

    def __init__(self):
        super().__init__({"valid": Out(1), "err": Out(1)})
