"""Simulation tops of the accelerator: a tile with its own semaphore bank; the whole accelerator
with behavioural HBM devices."""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..accel.semaphores import SemaphoreBank
from ..accel.sequencer import SeqState
from ..accel.isa import ErrCode, SEMAPHORES
from ..accel.tile import Tile, TileParams
from ..accel.accel import Accel, AccelParams
from .hbm import attach_device


__all__ = ["TileSystem", "tile_system", "AccelSystem", "accel_system"]


class TileSystem(wiring.Component):
    """One :class:`~scoville.hw.accel.tile.Tile` and a one-client
    :class:`~scoville.hw.accel.semaphores.SemaphoreBank`: the ``accel_tile`` block's simulation
    top. ``m_axi`` goes to the testbench's memory; ``m_kv`` descriptors to the testbench
    (``kv_busy``/``kv_error`` are inputs); ``sem_reset`` clears the semaphores."""

    def __init__(self, *, params=None, **kwargs):
        self.tile = Tile(params=params if params is not None else TileParams(**kwargs))
        p = self.tile.params
        super().__init__({
            "m_axi": Out(self.tile.m_axi.signature),
            "start": In(1), "prog_base": In(p.addr_width), "abort": In(1),
            "state": Out(SeqState), "err_code": Out(ErrCode), "err_pc": Out(p.addr_width),
            "retired": Out(32), "sem_reset": In(1),
            "m_kv": Out(stream.Signature(256)), "kv_busy": In(1), "kv_error": In(1),
            "perf_gemm_busy": Out(32), "perf_gemm_fill_drain": Out(32),
            **{f"sem{s}": Out(16) for s in range(SEMAPHORES)},
        })

    def elaborate(self, platform):
        m = Module()
        t = m.submodules.tile = self.tile
        bank = m.submodules.sem = SemaphoreBank(clients=1)
        wiring.connect(m, t.m_axi, wiring.flipped(self.m_axi))
        wiring.connect(m, t.m_kv, wiring.flipped(self.m_kv))
        wiring.connect(m, t.m_post, bank.post0)
        wiring.connect(m, t.m_take, bank.take0)
        m.d.comb += [t.start.eq(self.start), t.prog_base.eq(self.prog_base), t.abort.eq(self.abort),
                     self.state.eq(t.state), self.err_code.eq(t.err_code), self.err_pc.eq(t.err_pc),
                     self.retired.eq(t.retired), t.kv_busy.eq(self.kv_busy), t.kv_error.eq(self.kv_error),
                     bank.reset_all.eq(self.sem_reset),
                     self.perf_gemm_busy.eq(t.perf_gemm_busy),
                     self.perf_gemm_fill_drain.eq(t.perf_gemm_fill_drain)]
        for s in range(SEMAPHORES):
            m.d.comb += getattr(self, f"sem{s}").eq(getattr(bank, f"value{s}"))
        return m


def tile_system(**params):
    """Factory of the ``accel_tile`` block's simulation top."""
    return TileSystem(**params)


class AccelSystem(wiring.Component):
    """The :class:`~scoville.hw.accel.accel.Accel` with a behavioural HBM device on every channel's
    PHY port: the ``accel`` block's simulation top (host ports ``s_axil``, ``s_axi``, ``irq``)."""

    def __init__(self, *, params=None, **kwargs):
        self.accel = Accel(params=params if params is not None else AccelParams(**kwargs))
        super().__init__({name: self.accel.signature.members[name]
                          for name in ("s_axil", "s_axi", "irq")})

    def elaborate(self, platform):
        m = Module()
        a = m.submodules.accel = self.accel
        wiring.connect(m, wiring.flipped(self.s_axil), a.s_axil)
        wiring.connect(m, wiring.flipped(self.s_axi), a.s_axi)
        m.d.comb += self.irq.eq(a.irq)
        timing = a.params.hbm_params().timing()
        for c in range(a.params.hbm_channels):
            attach_device(m, f"device{c}", getattr(a, f"phy{c}"), timing)
        return m


def accel_system(**params):
    """Factory of the ``accel`` block's simulation top."""
    return AccelSystem(**params)
