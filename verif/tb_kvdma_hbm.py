"""``kvdma`` through the HBM pseudo-channel controller (``hw.hbm``) instead of a RAM model.

The DUT (:class:`KVDMAOverHBM`, test-only) connects the engine's AXI4 master to the HBM
controller and its behavioural device. Memory is only reachable through the engine, so the test
initialises it with FILL descriptors (a 4-byte FILL writes one word: tables), runs random GATHER
(to memory and to ``m_axis``), APPEND, BLOCK_COPY and COPY descriptors against the numpy model,
and finally streams the whole device out with a STREAM gather over an identity block table and
compares it with the model's image byte for byte.
"""

import random

import cocotb
import numpy as np
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.axi import AXI4LiteSignature, AXIStreamSignature
from hw.hbm.controller import HBMController
from hw.hbm.device import HBMDevice
from hw.hbm.timing import HBMParams
from hw.kvdma import KVDMA
from hw.kvdma.descriptors import Err, Flag, Op, pack_descriptor
from .kv_model import KVConfig, PagedKV
from .tb_kvdma import KVTB, Scratch, geometry, random_descriptor


class KVDMAOverHBM(wiring.Component):
    """Test top: ``KVDMA`` (256-bit) -> ``HBMController`` -> ``HBMDevice``; the engine's CSR,
    descriptor and stream ports are the top's."""

    def __init__(self, *, rows=32):
        self.dma = KVDMA(bus_width=256)
        self.ctrl = HBMController(HBMParams(id_width=2, rows=rows))
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


def kvdma_hbm(*, rows=32):
    return KVDMAOverHBM(rows=rows)


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
    capacity = 16 * int(tb_rows()) * 32 * 32
    tb = KVTB(dut, mem_size=capacity, ram=False, stall=0.2, timeout=5000)
    await tb.reset()
    rng = random.Random(random.getrandbits(32))
    cfg, layers = geometry(tb, rng, block_size=4, heads=2, head_dim=64, elem_bytes=1, num_blocks=8)
    await tb.configure(cfg)
    model = PagedKV(tb.mem, cfg)
    # varied contents: FILLs of random patterns over the pool and the scratch half
    for _ in range(24):
        start = rng.randrange(0, capacity - 4096)
        await fill(tb, model, start, rng.randint(1, 4096), rng.getrandbits(32))
    scratch = Scratch(tb)
    for _ in range(10):
        before = tb.mem.copy()
        fields = random_descriptor(tb, model, cfg, layers, scratch, rng, errors=False,
                                   ops=[Op.GATHER, Op.BLOCK_COPY, Op.COPY, Op.FILL])
        fields["status"] = 0     # a status word would land where the model does not look
        await sync_words(tb, model, before)
        await tb.run(model, fields)
    # APPEND from whatever a region holds
    bt = rng.sample(range(cfg.num_blocks), 2)
    before = tb.mem.copy()
    a = scratch.alloc(8, 4)
    tb.mem[a:a + 8] = np.asarray(bt, "<u4").view(np.uint8)
    await sync_words(tb, model, before)
    await tb.run(model, {"op": Op.APPEND, "flags": Flag.K | Flag.V, "count": 5, "a": a,
                         "b": scratch.alloc(5 * cfg.token_stride * 2), "c": 1, "d": 2})
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


def tb_rows():
    from .tb import block_params
    return block_params().get("rows", 32)
