"""The numpy paged-KV model checked against itself: the byte-level descriptor semantics agree
with numpy fancy indexing of the cache tensors, and APPEND followed by GATHER returns the rows."""

import numpy as np
import pytest

from scoville.hw.kvdma.descriptors import Err, Flag, Layout, Op, pack_descriptor
from scoville.verif.kv_model import KVConfig, PagedKV


def _setup(rng, bs, heads, head_dim, elem, nb=12, layers=2, bus=32):
    ts = heads * head_dim * elem
    cfg = KVConfig(pool_base=4096, num_blocks=nb, block_size=bs, token_stride=ts, block_stride=bs * ts,
                   layer_stride=2 * nb * bs * ts, v_offset=nb * bs * ts, bus_bytes=bus)
    size = 4096 + layers * cfg.layer_stride + (1 << 20)
    mem = rng.integers(0, 256, size, dtype=np.uint8)
    return mem, cfg, PagedKV(mem, cfg), 4096 + layers * cfg.layer_stride


@pytest.mark.parametrize("bs,heads,head_dim,elem", [(1, 1, 128, 2), (16, 2, 80, 1), (4, 8, 64, 1), (256, 1, 32, 1)])
def test_gather_matches_tensor_indexing(bs, heads, head_dim, elem):
    rng = np.random.default_rng(bs * 1000 + head_dim)
    mem, cfg, kv, free = _setup(rng, bs, heads, head_dim, elem)
    L = min(cfg.num_blocks * bs, 3 * bs + 1)
    nblk = -(-L // bs)
    bt = rng.permutation(cfg.num_blocks)[:nblk]
    mem[free:free + 4 * nblk] = bt.astype("<u4").view(np.uint8)
    dst = free + 4096
    res = kv.execute(pack_descriptor(Op.GATHER, flags=Flag.K | Flag.V, layer0=1, count=L, a=free, b=dst, d=nblk))
    assert res.code == Err.OK
    out = mem.copy()
    kv.apply(out, res)
    ts = cfg.token_stride
    for plane, kvsel in enumerate((0, 1)):
        want = kv.gather_tensor(bt, L, 1, kvsel).reshape(-1)
        got = out[dst + plane * L * ts:dst + (plane + 1) * L * ts]
        assert np.array_equal(got, want)


def test_append_then_gather_round_trip():
    rng = np.random.default_rng(7)
    mem, cfg, kv, free = _setup(rng, 4, 2, 64, 1)
    ts = cfg.token_stride
    bt = rng.permutation(cfg.num_blocks)[:5]
    mem[free:free + 20] = bt.astype("<u4").view(np.uint8)
    rows = rng.integers(0, 256, (2, 18, ts), dtype=np.uint8)       # K and V rows of 18 tokens
    src = free + 4096
    mem[src:src + rows.size] = rows.reshape(-1)
    res = kv.execute(pack_descriptor(Op.APPEND, flags=Flag.K | Flag.V, count=18, a=free, b=src, c=0, d=5))
    kv.apply(mem, res)
    for kvsel in (0, 1):
        assert np.array_equal(kv.gather_tensor(bt, 18, 0, kvsel), rows[kvsel])


def test_errors_stop_at_the_faulting_item():
    rng = np.random.default_rng(3)
    mem, cfg, kv, free = _setup(rng, 16, 1, 32, 1)
    mem[free:free + 12] = np.array([1, 99, 2], "<u4").view(np.uint8)
    res = kv.execute(pack_descriptor(Op.GATHER, flags=Flag.K, count=40, a=free, b=free + 4096, d=3))
    assert (res.code, res.item, len(res.writes)) == (Err.BAD_BLOCK, 1, 1)
    res = kv.execute(pack_descriptor(Op.GATHER, flags=Flag.K, count=40, a=free, b=free + 4096, d=1))
    assert (res.code, res.item) == (Err.POS_RANGE, 1)       # the table has one entry
    assert kv.execute(pack_descriptor(9)).code == Err.BAD_OPCODE
    assert kv.execute(pack_descriptor(Op.COPY, count=8, a=free, b=free + 4097)).code == Err.MISALIGNED


def _hnd(base, nb, bs, heads, hd_bytes, layers=2, bus=32):
    ts = -(-hd_bytes // bus) * bus
    return KVConfig(pool_base=base, num_blocks=nb, block_size=bs, token_stride=ts, block_stride=heads * bs * ts,
                    layer_stride=2 * nb * heads * bs * ts, v_offset=nb * heads * bs * ts, bus_bytes=bus,
                    layout=Layout.HND, heads=heads, head_stride=bs * ts)


def test_hnd_and_nhd_pools_hold_the_same_tensor():
    """One logical cache [layer, K/V, block, token, head, dim] stored NHD in pool 0 and HND in
    pool 1: GATHER of all heads gives [token, head, dim] from pool 0 and [head, token, dim]
    from pool 1 (the cache's own layout without paging), and a head range selects the same rows."""
    rng = np.random.default_rng(11)
    nb, bs, heads, hd, layers = 6, 4, 3, 32, 2
    nhd = KVConfig(pool_base=0, num_blocks=nb, block_size=bs, token_stride=heads * hd, block_stride=bs * heads * hd,
                   layer_stride=2 * nb * bs * heads * hd, v_offset=nb * bs * heads * hd)
    hnd = _hnd(nhd.pool_bytes(layers), nb, bs, heads, hd)
    free = -(-(hnd.pool_base + hnd.pool_bytes(layers)) // 4096) * 4096
    mem = np.zeros(free + (1 << 16), np.uint8)
    kv = PagedKV(mem, [nhd, hnd])
    tensor = rng.integers(0, 256, (layers, 2, nb, bs, heads, hd), dtype=np.uint8)
    for layer in range(layers):
        for p in range(2):
            base0 = kv.plane_base(layer, p, pool=0)
            for b in range(nb):
                for t in range(bs):
                    a = base0 + b * nhd.block_stride + t * nhd.token_stride
                    mem[a:a + heads * hd] = tensor[layer, p, b, t].reshape(-1)
                    for h in range(heads):
                        a = kv.plane_base(layer, p, h, pool=1) + b * hnd.block_stride + t * hnd.token_stride
                        mem[a:a + hd] = tensor[layer, p, b, t, h]
    bt = [4, 1, 5]
    mem[free:free + 12] = np.asarray(bt, "<u4").view(np.uint8)
    L = 10
    want = tensor[1][:, bt][:, :, :, :, :].reshape(2, 3 * bs, heads, hd)[:, :L]      # [K/V, token, head, dim]
    out = free + 4096
    for pool, e, check in ((0, 0, lambda g: g.reshape(2, L, heads, hd)),
                           (1, 0, lambda g: g.reshape(2, heads, L, hd).transpose(0, 2, 1, 3)),
                           (1, 1 | 2 << 16, lambda g: g.reshape(2, 2, L, hd).transpose(0, 2, 1, 3))):
        res = kv.execute(pack_descriptor(Op.GATHER, pool=pool, flags=Flag.K | Flag.V, layer0=1, count=L, a=free,
                                         b=out, d=3, e=e))
        assert res.code == Err.OK
        image = mem.copy()
        kv.apply(image, res)
        nh = (e >> 16) or heads
        got = check(image[out:out + 2 * L * nh * hd])
        assert np.array_equal(got, want[:, :, (e & 0xFFFF):(e & 0xFFFF) + nh])
    # the HND tensor view agrees
    assert np.array_equal(kv.gather_tensor(bt, L, 1, 1, pool=1), want[1].transpose(1, 0, 2))


def test_hnd_append_then_gather_round_trip():
    rng = np.random.default_rng(5)
    cfg = _hnd(4096, 8, 4, 4, 64)
    free = 4096 + cfg.pool_bytes(2) + 4096
    mem = rng.integers(0, 256, free + (1 << 16), dtype=np.uint8)
    kv = PagedKV(mem, cfg)
    bt = rng.permutation(cfg.num_blocks)[:4]
    mem[free:free + 16] = bt.astype("<u4").view(np.uint8)
    rows = rng.integers(0, 256, (2, 2, 11, 64), dtype=np.uint8)    # [K/V, head 1..2, token, dim]
    src = free + 4096
    mem[src:src + rows.size] = rows.reshape(-1)
    res = kv.execute(pack_descriptor(Op.APPEND, flags=Flag.K | Flag.V, count=11, a=free, b=src, c=3, d=4,
                                     e=1 | 2 << 16))
    assert res.code == Err.OK
    kv.apply(mem, res)
    for p in (0, 1):
        assert np.array_equal(kv.gather_tensor(bt, 14, 0, p)[1:3, 3:14], rows[p])


def test_pool_and_head_range_errors():
    cfgs = [_hnd(0, 4, 2, 4, 32), _hnd(1 << 16, 4, 512, 1, 32)]
    kv = PagedKV(np.zeros(1 << 20, np.uint8), cfgs)
    assert kv.execute(pack_descriptor(Op.GATHER, pool=2, flags=Flag.K, count=1, d=1)).code == Err.BAD_POOL
    assert kv.execute(pack_descriptor(Op.COPY, pool=2, count=8)).code == Err.OK       # COPY has no pool
    assert kv.execute(pack_descriptor(Op.GATHER, pool=1, flags=Flag.K, count=1, d=1)).code == Err.BAD_CONFIG
    for e, code in ((3 | 2 << 16, Err.HEAD_RANGE), (4, Err.HEAD_RANGE), (3, Err.OK), (1 | 3 << 16, Err.OK)):
        assert kv.execute(pack_descriptor(Op.APPEND, flags=Flag.K, count=1, a=64, b=4096, d=1, e=e)).code == code


def test_descriptor_layout_round_trip():
    """pack_descriptor/unpack_descriptor, status_word and geometry_word go through the one
    lib.data definition: random fields survive a round trip and land in the documented words."""
    from amaranth.lib import data
    from scoville.hw.kvdma.descriptors import (Descriptor, Geometry, HeadRange, Status, geometry_word,
                                               head_range_word, status_word, unpack_descriptor)
    rng = np.random.default_rng(5)
    assert Descriptor.as_shape().size == 256 and Status.as_shape().size == 64
    for _ in range(200):
        f = {"pool": int(rng.integers(16)), "flags": int(rng.integers(32)), "layer0": int(rng.integers(256)),
             "layers": int(rng.integers(1, 256)),
             **{k: int(rng.integers(1 << 32)) for k in ("count", "a", "b", "c", "d", "e", "status")}}
        op = int(rng.integers(16))      # unknown opcodes travel too (the engine answers BAD_OPCODE)
        value = pack_descriptor(op, **f)
        assert unpack_descriptor(value) == {"op": op, **f}
        words = [(value >> (32 * k)) & 0xFFFFFFFF for k in range(8)]
        assert words[1:] == [f[k] for k in ("count", "a", "b", "c", "d", "e", "status")]
        e = data.Const(HeadRange, f["e"])
        assert head_range_word(e.first, e.num) == f["e"]
        code, item = Err(int(rng.integers(11))), int(rng.integers(1 << 32))
        sw = data.Const(Status, status_word(op, code, item))
        assert (sw.code, sw.op, sw.done, sw.item) == (code, op, 1, item)
    g = data.Const(Geometry, geometry_word(4, Layout.HND, 8))
    assert (g.block_size_log2, g.layout, g.heads) == (4, Layout.HND, 8)
    assert unpack_descriptor(pack_descriptor(Op.GATHER, layers=0))["layers"] == 1


def test_gateware_decodes_layout_descriptor():
    """A descriptor packed through the layout, pushed on s_desc, is decoded by the gateware: a
    FILL with a status address writes the pattern and a status word that unpacks through Status."""
    from amaranth.lib import data
    from amaranth.sim import Simulator
    from scoville.hw.kvdma import KVDMA
    from scoville.hw.kvdma.descriptors import Status, status_word
    dut = KVDMA(bus_width=64, max_burst=2, outstanding=1, buffer_beats=4, seg_depth=2, pools=1)
    desc = pack_descriptor(Op.FILL, count=8, b=0x100, c=0xA5A55A5A, status=0x208)
    seen = {}

    async def bench(ctx):
        ctx.set(dut.m_axi.awready, 1)
        ctx.set(dut.m_axi.wready, 1)
        ctx.set(dut.s_desc.payload, desc)
        ctx.set(dut.s_desc.valid, 1)
        await ctx.tick().until(dut.s_desc.ready)
        ctx.set(dut.s_desc.valid, 0)
        pending = 0
        for _ in range(200):
            aw_fire = ctx.get(dut.m_axi.awvalid)
            if aw_fire:
                seen.setdefault("aw", []).append(ctx.get(dut.m_axi.awaddr))
            if ctx.get(dut.m_axi.wvalid):
                seen.setdefault("w", []).append((ctx.get(dut.m_axi.wdata), ctx.get(dut.m_axi.wstrb)))
                if ctx.get(dut.m_axi.wlast):
                    pending += 1
            ctx.set(dut.m_axi.bvalid, pending > 0)
            ctx.set(dut.m_axi.bid, 0 if len(seen.get("aw", [])) < 2 else 1)
            if pending and ctx.get(dut.m_axi.bready):
                pending -= 1
            await ctx.tick()
            ctx.set(dut.m_axi.bvalid, 0)
            if len(seen.get("aw", [])) == 2 and not pending:
                break

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen["aw"] == [0x100, 0x208]
    (data_word, strb), (sw_word, sw_strb) = seen["w"]
    assert data_word == 0xA5A55A5A_A5A55A5A and strb == 0xFF
    sw = data.Const(Status, sw_word)
    assert sw_word == status_word(Op.FILL, Err.OK, 0) and (sw.op, sw.code, sw.done) == (Op.FILL, Err.OK, 1)


@pytest.mark.parametrize("kw,name", [({"addr_width": 11}, "addr_width"), ({"addr_width": 33}, "addr_width"),
                                     ({"id_width": 1}, "id_width"), ({"id_width": 33}, "id_width")])
def test_kvdma_width_parameters_validated(kw, name):
    # KVDMA(...) validates through KVDMAParams first (a KVDMA that fails to construct would
    # leave an unused-elaboratable warning behind)
    from scoville.hw.kvdma import KVDMAParams
    from scoville.hw.params import ParameterError
    with pytest.raises(ParameterError, match=rf"^{name}: .*accepted"):
        KVDMAParams(**kw)


def test_kvdma_width_parameters_reach_the_port():
    from scoville.hw.kvdma import KVDMA
    for kw, want in (({"addr_width": 24, "id_width": 4}, (24, 4)), ({}, (32, 2))):
        dut = KVDMA(**kw)
        dut._MustUse__silence = True      # signature only, never elaborated
        sig = dut.signature.members["m_axi"].signature
        assert (sig.addr_width, sig.id_width) == want
