"""Simulation top: the ``kvdma`` engine with HBM-backed memory (one controller or a stack).

Test-only (``verif/tb_kvdma_hbm.py``): the engine's AXI4 master drives either one
:class:`~scoville.hw.hbm.controller.HBMController` with its behavioural device (``channels=1``)
or the deliverable :class:`~scoville.hw.hbm.stack.HBMStack` with a device per channel
(``channels >= 2``), so every engine burst goes through the real interleaver, burst splitting
included (the engine's bursts of up to ``max_burst * 32`` bytes cross its granules).
"""

from dataclasses import dataclass

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..axi import AXI4LiteSignature, AXIStreamSignature
from ..hbm.controller import HBMController
from ..hbm.stack import HBMStackParams
from ..hbm.timing import HBMParams
from ..kvdma import KVDMA
from ..params import Params, param
from .hbm import HBMStackDevices, attach_device


__all__ = ["KVDMAHBMParams", "KVDMAOverHBM", "kvdma_hbm"]


@dataclass(frozen=True)
class KVDMAHBMParams(Params):
    """The test top's parameters: the HBM memory's size, queues and channels, the engine's buffers
    (engine defaults are ``kvdma``'s)."""
    rows: int = param(32, lo=2, hi=1024, power_of_two=True, doc="HBM rows per bank (capacity 32 KiB per row)")
    read_queue: int = param(32, lo=4, hi=64, power_of_two=True, doc="HBM controller read queue")
    write_queue: int = param(32, lo=4, hi=64, power_of_two=True, doc="HBM controller write queue")
    wq_high: int = param(24, lo=1, hi=64, doc="HBM write drain high mark")
    wq_low: int = param(8, lo=0, hi=63, doc="HBM write drain low mark")
    channels: int = param(1, lo=1, hi=32, power_of_two=True, doc="pseudo-channels (1: one controller, else hbm_stack)")
    interleave: int = param(1024, lo=32, hi=1 << 16, power_of_two=True, doc="hbm_stack interleave granule (bytes)")
    max_burst: int = param(64, lo=1, hi=256, power_of_two=True, doc="kvdma longest burst")
    buffer_beats: int = param(512, lo=2, hi=4096, power_of_two=True, doc="kvdma data FIFO")
    outstanding: int = param(16, lo=1, hi=64, doc="kvdma bursts in flight")
    seg_depth: int = param(32, lo=2, hi=64, doc="kvdma segment FIFOs")
    pools: int = param(2, lo=1, hi=4, doc="kvdma cache pools")


class KVDMAOverHBM(wiring.Component):
    """``KVDMA`` (256-bit) -> HBM controller or stack -> behavioural device(s); the engine's CSR,
    descriptor and stream ports are the top's. No logic of its own: the engine's and the
    memory's latency and throughput.

    Members
    -------
    s_axil, s_desc, m_axis, irq :
        The engine's (:class:`~scoville.hw.kvdma.KVDMA`).
    """

    def __init__(self, *, rows=32, read_queue=32, write_queue=32, wq_high=24, wq_low=8, channels=1,
                 interleave=1024, max_burst=64, buffer_beats=512, outstanding=16, seg_depth=32, pools=2):
        self.dma = KVDMA(bus_width=256, max_burst=max_burst, buffer_beats=buffer_beats, outstanding=outstanding,
                         seg_depth=seg_depth, pools=pools)
        hbm = dict(id_width=2, rows=rows, read_queue=read_queue, write_queue=write_queue, wq_high=wq_high,
                   wq_low=wq_low)
        if channels == 1:
            self.mem = HBMController(params=HBMParams(**hbm))
        else:
            self.mem = HBMStackDevices(params=HBMStackParams(**hbm, channels=channels, interleave=interleave))
        super().__init__({
            "s_axil": In(AXI4LiteSignature(addr_width=8, data_width=32)),
            "s_desc": In(stream.Signature(256)),
            "m_axis": Out(AXIStreamSignature(data_width=256, keep=True, last=True)),
            "irq": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.dma, m.submodules.mem = self.dma, self.mem
        wiring.connect(m, self.dma.m_axi, self.mem.s_axi)
        if isinstance(self.mem, HBMController):
            attach_device(m, "device", self.mem.phy, self.mem.timing)
        wiring.connect(m, wiring.flipped(self.s_axil), self.dma.s_axil)
        wiring.connect(m, wiring.flipped(self.s_desc), self.dma.s_desc)
        wiring.connect(m, self.dma.m_axis, wiring.flipped(self.m_axis))
        m.d.comb += self.irq.eq(self.dma.irq)
        return m


def kvdma_hbm(**params):
    return KVDMAOverHBM(**params)
