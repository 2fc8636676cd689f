"""HBM pseudo-channel controller, behavioural device, N-channel stack and their parameters.

Deliverable RTL only; the blocks' simulation tops (device + traffic generator) are in
:mod:`scoville.hw.testbench.hbm`."""

from dataclasses import dataclass

from ..params import Params, param
from .timing import HBMParams, HBMTiming, PRESETS


__all__ = ["HBMParams", "HBMTiming", "PRESETS", "HBMBenchParams", "hbm_controller"]


@dataclass(frozen=True)
class HBMBenchParams(Params):
    """Workload of ``scoville bench hbm`` (hardware parameters such as ``--preset`` are separate)."""
    pattern: str = param("seq", choices=("seq", "random", "strided", "mixed"), doc="address pattern")
    requests: int = param(20000, lo=1, hi=1 << 30, doc="32-byte requests to issue")
    stride: int = param(33, lo=1, hi=1 << 20, doc="stride in 32-byte atoms (strided pattern)")
    write_ratio: int = param(0, lo=0, hi=256, doc="writes per 256 requests (mixed: 0 means 85)")
    trace: str = param("", doc="DRAMsim3-style trace file (lines: 0xADDR READ|WRITE CYCLE)")
    timing_check: bool = param(True, doc="run the independent timing model on every command")


def hbm_controller(**params):
    """The ``hbm`` block's deliverable RTL: one pseudo-channel controller (AXI4 in, PHY out)."""
    from .controller import HBMController
    return HBMController(params=HBMParams(**params))
