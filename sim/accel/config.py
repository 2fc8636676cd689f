"""The configuration of one accelerator tile as the software sees it: the GEMM engine's and the
vector unit's parameters, the HBM address map and the sequencer's limits.

The assembler (:mod:`.asm`) uses it to check beat sizes against the units, the allocator
(:mod:`.alloc`) for the address map and the machine model (:mod:`.model`) for everything.
"""

from dataclasses import dataclass, field

from scoville.hw.accel.isa import ATOM_BYTES, LoadPort, MAX_BEAT_LOG2, StorePort
from scoville.hw.gemm import GEMMParams
from scoville.hw.params import ParameterError, check_int
from scoville.hw.vpu.vpu import VPUParams


__all__ = ["TileConfig", "PORT_NAMES"]

#: Text names of the unit ports (the enums' member names, lower case).
PORT_NAMES = {**{p: p.name.lower() for p in LoadPort}, **{p: p.name.lower() for p in StorePort}}


def _log2_exact(name, value):
    if value <= 0 or value & (value - 1):
        raise ParameterError(f"{name}: {value} is not a power of two (accepted: a power of two "
                             f"in 1..{1 << MAX_BEAT_LOG2}, a beat being 2**beat_log2 bytes)")
    return value.bit_length() - 1


@dataclass(frozen=True)
class TileConfig:
    """One tile (every tile of a machine is alike) and the HBM it sees.

    ``hbm_bytes``: the size of the HBM address space ``[0, hbm_bytes)`` (a LOAD/STORE window
    outside it stops with RANGE); channel ``c`` owns ``[c << channel_shift, (c + 1) <<
    channel_shift)``. ``outstanding``: commands per unit the sequencer keeps track of (it stops
    issuing to a unit that has that many unanswered), as ``hw.accel.sequencer.Sequencer``.
    Unit beats are ``2**beat_log2`` bytes, so R, C and lanes are powers of two, and the widest
    beats (GEMM C int32 ``4C``, VPU int32 ``4 * lanes``) at most ``2**MAX_BEAT_LOG2`` bytes.
    """
    gemm: GEMMParams = field(default_factory=lambda: GEMMParams(rows=16, cols=16))
    vpu: VPUParams = field(default_factory=VPUParams)
    hbm_bytes: int = 1 << 30
    channel_shift: int = 28
    outstanding: int = 8

    def __post_init__(self):
        check_int("hbm_bytes", self.hbm_bytes, ATOM_BYTES, 1 << 40)
        check_int("channel_shift", self.channel_shift, 5, 40)
        check_int("outstanding", self.outstanding, 1, 64)
        _log2_exact("gemm rows", self.gemm.rows)
        _log2_exact("gemm cols", self.gemm.cols)
        check_int("gemm cols", self.gemm.cols, 1, (1 << MAX_BEAT_LOG2) // 4)
        check_int("vpu lanes", self.vpu.lanes, 1, (1 << MAX_BEAT_LOG2) // 4)

    @classmethod
    def from_tile_params(cls, p, *, channel_shift=28):
        """The configuration of a ``hw.accel.tile.TileParams`` (any object with its fields:
        rows, cols, a_depth, b_depth, c_depth, max_n, lanes, vpu_buffer, vpu_channels,
        addr_width, hbm_bytes (0: ``2**addr_width``), outstanding)."""
        gemm = GEMMParams(rows=p.rows, cols=p.cols, dataflow="ws", a_depth=p.a_depth, b_depth=p.b_depth,
                          c_depth=p.c_depth, max_n=p.max_n)
        vpu = VPUParams(lanes=p.lanes, buffer=p.vpu_buffer, channels=p.vpu_channels)
        return cls(gemm=gemm, vpu=vpu, hbm_bytes=p.hbm_bytes or 1 << p.addr_width,
                   channel_shift=min(channel_shift, p.addr_width), outstanding=p.outstanding)

    def to_tile_params(self, *, id_width=None):
        """The ``hw.accel.tile.TileParams`` of a tile with this configuration (the inverse of
        :meth:`from_tile_params`): ``addr_width`` the bits of ``hbm_bytes``. Raises
        ParameterError for what a tile cannot be: an output-stationary array, a vector unit
        whose ``rope_max`` is not the tile's default."""
        from scoville.hw.accel.tile import TileParams
        g, v = self.gemm, self.vpu
        if g.dataflow != "ws":
            raise ParameterError(f"gemm dataflow: {g.dataflow!r} is not a tile's (accepted: ws)")
        if v.rope_max != VPUParams().rope_max:
            raise ParameterError(f"vpu rope_max: {v.rope_max} is not a tile's (accepted: {VPUParams().rope_max})")
        extra = {} if id_width is None else {"id_width": id_width}
        return TileParams(rows=g.rows, cols=g.cols, a_depth=g.a_depth, b_depth=g.b_depth, c_depth=g.c_depth,
                          max_n=g.max_n, lanes=v.lanes, vpu_buffer=v.buffer, vpu_channels=v.channels,
                          addr_width=max(12, (self.hbm_bytes - 1).bit_length()), hbm_bytes=self.hbm_bytes,
                          outstanding=self.outstanding, **extra)

    @property
    def channels(self):
        """Channels of the address map (the last one may be partly populated)."""
        return (self.hbm_bytes + (1 << self.channel_shift) - 1) >> self.channel_shift

    def port_bytes(self, port):
        """Width in bytes of the unit word on ``port`` (a LoadPort or StorePort)."""
        R, C, lanes = self.gemm.rows, self.gemm.cols, self.vpu.lanes
        return {LoadPort.GEMM_A: R, LoadPort.GEMM_B: C, LoadPort.GEMM_Q: 8,
                LoadPort.VPU_A: 4 * lanes, LoadPort.VPU_B: 4 * lanes, LoadPort.VPU_P: 8,
                StorePort.GEMM_C: 4 * C, StorePort.VPU_Y: 4 * lanes, StorePort.VPU_S: 8}[port]

    def beat_sizes(self, port):
        """The beat sizes (bytes) the unit behind ``port`` works with (isa.py: GEMM A ``R``,
        B ``C``, Q 8, C ``4C`` or ``C``; VPU rows ``lanes`` x 1, 2 or 4 bytes, P and S 8)."""
        R, C, lanes = self.gemm.rows, self.gemm.cols, self.vpu.lanes
        return {LoadPort.GEMM_A: (R,), LoadPort.GEMM_B: (C,), LoadPort.GEMM_Q: (8,),
                LoadPort.VPU_A: (lanes, 2 * lanes, 4 * lanes),
                LoadPort.VPU_B: (lanes, 2 * lanes, 4 * lanes), LoadPort.VPU_P: (8,),
                StorePort.GEMM_C: (C, 4 * C), StorePort.VPU_Y: (lanes, 2 * lanes, 4 * lanes),
                StorePort.VPU_S: (8,)}[port]
