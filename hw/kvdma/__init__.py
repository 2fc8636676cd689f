"""Paged KV-cache DMA engine (block ``kvdma``); see :mod:`hw.kvdma.engine` and docs/kvdma.md."""

from .descriptors import (CSR_NAMES, DESC_BYTES, Err, Flag, Layout, Op, csr_address, geometry_word, pack_descriptor,
                          pool_reg, status_word)
from .engine import KVDMA
from .params import KVDMABenchParams, KVDMAParams


__all__ = ["KVDMA", "KVDMAParams", "KVDMABenchParams", "kvdma", "Op", "Flag", "Err", "Layout", "CSR_NAMES",
           "DESC_BYTES", "csr_address", "geometry_word", "pack_descriptor", "pool_reg", "status_word"]


def kvdma(*, bus_width=256, max_burst=64, outstanding=16, buffer_beats=512, seg_depth=32, pools=2, addr_width=32,
          id_width=2):
    """Factory of the ``kvdma`` registry block."""
    return KVDMA(bus_width=bus_width, max_burst=max_burst, outstanding=outstanding, buffer_beats=buffer_beats,
                 seg_depth=seg_depth, pools=pools, addr_width=addr_width, id_width=id_width)
