"""The numpy paged-KV model checked against itself: the byte-level descriptor semantics agree
with numpy fancy indexing of the cache tensors, and APPEND followed by GATHER returns the rows."""

import numpy as np
import pytest

from hw.kvdma.descriptors import Err, Flag, Op, pack_descriptor
from verif.kv_model import KVConfig, PagedKV


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
