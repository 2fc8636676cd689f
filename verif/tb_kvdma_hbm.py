"""``kvdma`` through the HBM pseudo-channel controller (``hw.hbm``) instead of a RAM model.

The DUT (:class:`KVDMAOverHBM`, test-only) connects the engine's AXI4 master to the HBM
controller and its behavioural device. Memory is only reachable through the engine, so the test
initialises it with FILL descriptors (a 4-byte FILL writes one word: tables), runs random GATHER
(to memory and to ``m_axis``), APPEND, BLOCK_COPY and COPY descriptors against the numpy model,
and finally streams the whole device out with a STREAM gather over an identity block table and
compares it with the model's image byte for byte.

``tests/test_kvdma.py`` runs a small configuration (a 256 KiB device with short queues, a light
engine, -O0 Verilator model) in ``make test`` and the default-sized one as a slow test.
"""

import json
import os
import random
from dataclasses import dataclass

import cocotb
import numpy as np
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from scoville.hw.axi import AXI4LiteSignature, AXIStreamSignature
from scoville.hw.hbm.controller import HBMController
from scoville.hw.hbm.device import HBMDevice
from scoville.hw.hbm.timing import HBMParams
from scoville.hw.kvdma import KVDMA
from scoville.hw.kvdma.descriptors import Flag, Op, pack_descriptor
from scoville.hw.params import Params, param
from .kv_model import KVConfig
from .tb import block_params
from .tb_kvdma import KVTB, Scratch, pool_geometries, random_descriptor


@dataclass(frozen=True)
class KVDMAHBMParams(Params):
    """The test top's parameters: the HBM device's size and queues, the engine's buffers."""
    rows: int = param(32, lo=2, hi=1024, power_of_two=True, doc="HBM rows per bank (capacity 32 KiB per row)")
    read_queue: int = param(32, lo=4, hi=64, power_of_two=True, doc="HBM controller read queue")
    write_queue: int = param(32, lo=4, hi=64, power_of_two=True, doc="HBM controller write queue")
    wq_high: int = param(24, lo=1, hi=64, doc="HBM write drain high mark")
    wq_low: int = param(8, lo=0, hi=63, doc="HBM write drain low mark")
    max_burst: int = param(64, lo=1, hi=256, power_of_two=True, doc="kvdma longest burst")
    buffer_beats: int = param(512, lo=2, hi=4096, power_of_two=True, doc="kvdma data FIFO")
    outstanding: int = param(16, lo=1, hi=64, doc="kvdma bursts in flight")
    seg_depth: int = param(32, lo=2, hi=64, doc="kvdma segment FIFOs")
    pools: int = param(2, lo=1, hi=4, doc="kvdma cache pools")


class KVDMAOverHBM(wiring.Component):
    """Test top: ``KVDMA`` (256-bit) -> ``HBMController`` -> ``HBMDevice``; the engine's CSR,
    descriptor and stream ports are the top's."""

    def __init__(self, *, rows=32, read_queue=32, write_queue=32, wq_high=24, wq_low=8, max_burst=64,
                 buffer_beats=512, outstanding=16, seg_depth=32, pools=2):
        self.dma = KVDMA(bus_width=256, max_burst=max_burst, buffer_beats=buffer_beats, outstanding=outstanding,
                         seg_depth=seg_depth, pools=pools)
        self.ctrl = HBMController(HBMParams(id_width=2, rows=rows, read_queue=read_queue, write_queue=write_queue,
                                            wq_high=wq_high, wq_low=wq_low))
        self.device = HBMDevice(self.ctrl.timing)
        super().__init__({
            "s_axil": In(AXI4LiteSignature(addr_width=8, data_width=32)),
            "s_desc": In(stream.Signature(256)),
            "m_axis": Out(AXIStreamSignature(data_width=256, keep=True, last=True)),
            "irq": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.dma, m.submodules.ctrl, m.submodules.device = self.dma, self.ctrl, self.device
        wiring.connect(m, self.dma.m_axi, self.ctrl.s_axi)
        wiring.connect(m, self.ctrl.phy, self.device.phy)
        wiring.connect(m, wiring.flipped(self.s_axil), self.dma.s_axil)
        wiring.connect(m, wiring.flipped(self.s_desc), self.dma.s_desc)
        wiring.connect(m, self.dma.m_axis, wiring.flipped(self.m_axis))
        m.d.comb += self.irq.eq(self.dma.irq)
        return m


def kvdma_hbm(**params):
    return KVDMAOverHBM(**params)


async def fill(tb, model, addr, length, pattern):
    await tb.run(model, {"op": Op.FILL, "b": addr, "count": length, "c": pattern})


async def sync_words(tb, model, before):
    """Make the device match words the test wrote into the model image (tables)."""
    diff = np.flatnonzero(tb.mem != before)
    for word in sorted(set(int(a) // 4 for a in diff)):
        value = int.from_bytes(bytes(tb.mem[4 * word:4 * word + 4]), "little")
        tb.mem[4 * word:4 * word + 4] = before[4 * word:4 * word + 4]
        await fill(tb, model, 4 * word, 4, value)


@cocotb.test()
async def through_hbm(dut):
    opts = json.loads(os.environ.get("SCOVILLE_KV", "{}"))
    capacity = 16 * block_params().get("rows", 32) * 32 * 32
    tb = KVTB(dut, mem_size=capacity, ram=False, stall=0.2, timeout=5000)
    await tb.reset()
    rng = random.Random(random.getrandbits(32))
    model = await tb.configure(pool_geometries(tb, rng, block_size=4, heads=2, head_dim=64, elem_bytes=1,
                                               num_blocks=8))
    # varied contents: FILLs of random patterns over the pools and the scratch half
    for _ in range(int(opts.get("fills", 24))):
        start = rng.randrange(0, capacity - 4096)
        await fill(tb, model, start, rng.randint(1, 4096), rng.getrandbits(32))
    scratch = Scratch(tb)
    for _ in range(int(opts.get("count", 10))):
        before = tb.mem.copy()
        fields = random_descriptor(tb, scratch, rng, errors=False, ops=[Op.GATHER, Op.BLOCK_COPY, Op.COPY, Op.FILL])
        fields["status"] = 0     # a status word would land where the model does not look
        await sync_words(tb, model, before)
        await tb.run(model, fields)
    # APPEND from whatever a region holds, on every pool
    for pool, cfg in enumerate(tb.cfgs):
        bt = rng.sample(range(cfg.num_blocks), 2)
        before = tb.mem.copy()
        a = scratch.alloc(8, 4)
        tb.mem[a:a + 8] = np.asarray(bt, "<u4").view(np.uint8)
        await sync_words(tb, model, before)
        planes = 2 * (cfg.heads if cfg.layout else 1)
        await tb.run(model, {"op": Op.APPEND, "pool": pool, "flags": Flag.K | Flag.V, "count": 3, "a": a,
                             "b": scratch.alloc(3 * cfg.token_stride * planes), "c": 1, "d": 2})
    # read the whole device back through a STREAM gather over an identity table
    chunk = 4096
    n = capacity // chunk
    table = scratch.alloc(4 * n, 4)
    ident = KVConfig(pool_base=0, num_blocks=n, block_size=1, token_stride=chunk, block_stride=chunk,
                     layer_stride=0, v_offset=0, bus_bytes=32)
    for k in range(n):
        await fill(tb, model, table + 4 * k, 4, k)
    expected = tb.mem.copy()
    await tb.configure(ident)
    tb.axis.items = []
    tb.desc.send_nowait(pack_descriptor(Op.GATHER, flags=Flag.K | Flag.STREAM, count=n, a=table, d=n))
    irq = await tb.wait_done(limit=5_000_000)
    assert irq == 1, f"readback: irq_status {irq}"
    got = b"".join(beat["tdata"].to_bytes(32, "little") for beat in tb.axis.items)
    assert len(got) == capacity, f"readback: {len(got)} bytes, expected {capacity}"
    diff = np.flatnonzero(np.frombuffer(got, np.uint8) != expected)
    assert not len(diff), f"{len(diff)} bytes differ in the device, first at {int(diff[0]):#x}"
