"""Parameter sets of the ``kvdma`` block: hardware (:class:`KVDMAParams`) and bench workload."""

from dataclasses import dataclass

from ..params import Params, ParameterError, param


__all__ = ["KVDMAParams", "KVDMABenchParams"]


@dataclass(frozen=True)
class KVDMAParams(Params):
    """Hardware parameters of the ``kvdma`` engine."""
    bus_width: int = param(256, lo=64, hi=512, power_of_two=True, doc="AXI4 data width in bits")
    max_burst: int = param(64, lo=1, hi=256, power_of_two=True, doc="longest INCR burst in beats")
    outstanding: int = param(16, lo=1, hi=64, doc="read bursts and write bursts in flight (each)")
    buffer_beats: int = param(512, lo=2, hi=4096, power_of_two=True,
                              doc="data FIFO depth in beats (>= 2 * max_burst)")
    seg_depth: int = param(32, lo=2, hi=64, doc="segment FIFO depth (>= read latency / beats per segment for full rate)")
    pools: int = param(2, lo=1, hi=4, doc="cache pools (each with its own base, geometry, layout and strides)")
    addr_width: int = param(32, lo=12, hi=32,
                            doc="AXI address width (descriptor and CSR addresses are 32 bits; 4 KiB pages need 12)")
    id_width: int = param(2, lo=2, hi=32, doc="AXI ID width (IDs 0 data, 1 tables and status, 2 ring)")

    def check(self):
        if self.buffer_beats < 2 * self.max_burst:
            raise ParameterError(f"buffer_beats, max_burst: buffer_beats {self.buffer_beats} is less than "
                                 f"2 * max_burst = {2 * self.max_burst} (accepted: buffer_beats >= 2 * max_burst)")


@dataclass(frozen=True)
class KVDMABenchParams(Params):
    """Workload of ``scoville bench kvdma``: one descriptor over a random block table."""
    op: str = param("gather", choices=("gather", "append", "copy"), doc="operation to time")
    layout: str = param("nhd", choices=("nhd", "hnd"), doc="cache layout (token-major / head-major)")
    block_size: int = param(16, lo=1, hi=256, power_of_two=True, doc="tokens per block")
    heads: int = param(8, lo=1, hi=64, doc="KV heads")
    head_dim: int = param(128, lo=1, hi=512, doc="elements per head")
    elem_bytes: int = param(1, choices=(1, 2), doc="element width in bytes (int8 / fp16)")
    seq_len: int = param(4096, lo=1, hi=65536, doc="tokens gathered (or appended, or rows copied)")
    latency: int = param(100, lo=0, hi=1000, doc="memory read latency in cycles")
    stall: str = param("none", choices=("none", "random"), doc="random stalls on every AXI channel")
