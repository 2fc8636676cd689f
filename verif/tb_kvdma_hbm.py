"""``kvdma`` through HBM memory (``hw.hbm``: one controller, or an ``hbm_stack``) instead of a RAM model.

The DUT (:class:`~scoville.hw.testbench.kvdma_hbm.KVDMAOverHBM`) connects the engine's AXI4
master to one HBM controller and its behavioural device, or (``channels >= 2``) to the
deliverable ``hbm_stack`` with a device per channel: the engine's bursts (up to ``max_burst`` x
32 bytes, 2 KiB by default) then cross the stack's interleave granules and are split by it.
Memory is only reachable through the engine, so the test initialises it with FILL descriptors
(a 4-byte FILL writes one word: tables), runs random GATHER (to memory and to ``m_axis``),
BLOCK_COPY, COPY and FILL descriptors (each of those kinds at least once) and an APPEND on every
pool against the numpy model, and finally streams the whole memory out with a STREAM gather
over an identity block table and compares it with the model's image byte for byte: every byte
outside a destination is a guard byte (FILLed with random patterns beforehand).

``tests/test_kvdma.py`` runs one channel (a small configuration in ``make test``, the default
one as a slow test); ``tests/test_kvdma_stack.py`` runs 2- and 4-channel stacks at the engine's
default parameters. With ``SCOVILLE_BENCH_OUT`` set the test writes its cycle counts there.
"""

import json
import os
import random

import cocotb
import numpy as np

from scoville.hw.kvdma.descriptors import Flag, Op, pack_descriptor
# The test top and its parameters, where tests/test_kvdma.py imports them from.
from scoville.hw.testbench.kvdma_hbm import KVDMAHBMParams, KVDMAOverHBM, kvdma_hbm  # noqa: F401
from .kv_model import KVConfig
from .tb import block_params, write_bench_result
from .tb_kvdma import KVTB, Scratch, pool_geometries, random_descriptor


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
    params = block_params()
    capacity = 16 * params.get("rows", 32) * 32 * 32 * params.get("channels", 1)
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
    ops = [Op.GATHER, Op.BLOCK_COPY, Op.COPY, Op.FILL]
    cycles = {}
    for n in range(int(opts.get("count", 10))):
        before = tb.mem.copy()
        # round robin over the kinds (random fields): each runs at least once from 4 descriptors
        fields = random_descriptor(tb, scratch, rng, errors=False, ops=[ops[n % len(ops)]])
        fields["status"] = 0     # a status word would land where the model does not look
        await sync_words(tb, model, before)
        start = tb.cycle
        await tb.run(model, fields)
        name = Op.NAMES.get(fields["op"], str(fields["op"]))
        cycles[name] = cycles.get(name, 0) + tb.cycle - start
    # APPEND from whatever a region holds, on every pool
    for pool, cfg in enumerate(tb.cfgs):
        bt = rng.sample(range(cfg.num_blocks), 2)
        before = tb.mem.copy()
        a = scratch.alloc(8, 4)
        tb.mem[a:a + 8] = np.asarray(bt, "<u4").view(np.uint8)
        await sync_words(tb, model, before)
        planes = 2 * (cfg.heads if cfg.layout else 1)
        start = tb.cycle
        await tb.run(model, {"op": Op.APPEND, "pool": pool, "flags": Flag.K | Flag.V, "count": 3, "a": a,
                             "b": scratch.alloc(3 * cfg.token_stride * planes), "c": 1, "d": 2})
        cycles["APPEND"] = cycles.get("APPEND", 0) + tb.cycle - start
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
    start = tb.cycle
    irq = await tb.wait_done(limit=5_000_000)
    readback = tb.cycle - start
    assert irq == 1, f"readback: irq_status {irq}"
    got = b"".join(beat["tdata"].to_bytes(32, "little") for beat in tb.axis.items)
    assert len(got) == capacity, f"readback: {len(got)} bytes, expected {capacity}"
    diff = np.flatnonzero(np.frombuffer(got, np.uint8) != expected)
    assert not len(diff), f"{len(diff)} bytes differ in the device, first at {int(diff[0]):#x}"
    # Readback: 4 KiB engine reads (bursts of max_burst beats) over the whole memory.
    result = {"channels": params.get("channels", 1), "capacity": capacity, "cycles_by_op": cycles,
              "readback_cycles": readback, "readback_bytes_per_cycle": round(capacity / readback, 2),
              "readback_of_port": round(capacity / readback / 32, 4)}
    dut._log.info("kvdma over hbm " + json.dumps(result))
    write_bench_result(result)
