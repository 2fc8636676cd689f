"""Golden model of the ``kvdma`` engine: a numpy paged KV cache over a flat memory image.

:class:`KVConfig` is what software programs into one pool's CSRs (base, strides, block size,
layout). :class:`PagedKV` holds the configurations of the engine's pools (a descriptor names
its pool) and views a pool in a memory image as per-(layer, K/V) caches:

* NHD (token-major): ``[num_blocks, block_size, token_stride]`` bytes, a row holding all heads of
  one token; a descriptor's head range is a byte range ``[off, off + len)`` of every row;
* HND (head-major): ``[num_blocks, heads, block_size, token_stride]`` bytes (``token_stride``
  is one head's ``head_dim`` elements, padded if software wants), head ``h`` of block ``b`` at
  ``b * block_stride + h * head_stride``; a descriptor's head range is ``[h0, h0 + nh)``.

A *plane* is one (layer, K/V) cache, and in HND one head of it; planes run layer by layer, K
before V, heads innermost. Every descriptor is implemented with numpy indexing through the
block table:

* GATHER  plane by plane, ``dst[p] = plane[bt[p // bs], p % bs]`` for p < seq_len (NHD: the
  head range's bytes of the row); destination ``[plane][token][row]``, i.e. the cache's own
  layout with the paging removed (HND: ``[layer][K, V][head][token][head_dim]``); a ``-1``
  entry leaves its rows untouched; with the STREAM flag the same rows leave on ``m_axis``
  instead (:meth:`PagedKV.stream_bytes`);
* APPEND  ``plane[bt[p // bs], p % bs] = src[plane][i]`` for p = start + i (the source has the
  destination layout of GATHER);
* BLOCK_COPY ``plane[dst_id] = plane[src_id]`` per pair (either side in host memory, where a
  block id addresses ``[plane][block_size][row]``);
* COPY (1-D / 2-D strided), FILL (32-bit pattern), FENCE (nothing).

:meth:`PagedKV.execute` returns the writes item by item plus the first error
(``Err`` code, item index), exactly where the engine stops; writes of items before a fault may
or may not have landed (they are *maybe* writes), writes at or after it must not land.
"""

from dataclasses import dataclass, field

import numpy as np

from amaranth.lib import data

from scoville.hw.kvdma.descriptors import (Err, Flag, HeadRange, Layout, Op, geometry_word, pool_reg,
                                           unpack_descriptor)


__all__ = ["KVConfig", "Result", "PagedKV", "unpack_descriptor"]


@dataclass
class KVConfig:
    pool_base: int
    num_blocks: int
    block_size: int
    token_stride: int         # bytes per token row (NHD: all heads; HND: one head), maybe padded
    block_stride: int
    layer_stride: int
    v_offset: int
    bus_bytes: int = 32
    layout: int = Layout.NHD
    heads: int = 0            # HND: KV heads of the pool
    head_stride: int = 0      # HND: bytes from one head of a block to the next
    head_bytes: int = 0       # head_dim * element bytes (not a register: NHD head ranges are bytes)

    @property
    def block_size_log2(self):
        return self.block_size.bit_length() - 1

    def csr_values(self, pool=0):
        """Register name -> value for pool ``pool``."""
        values = {"base": self.pool_base, "num_blocks": self.num_blocks,
                  "geometry": geometry_word(self.block_size_log2, self.layout, self.heads),
                  "token_stride": self.token_stride, "head_stride": self.head_stride,
                  "block_stride": self.block_stride, "layer_stride": self.layer_stride,
                  "v_offset": self.v_offset}
        return {pool_reg(pool, k): v for k, v in values.items()}

    def pool_bytes(self, layers):
        """End of the highest byte of ``layers`` layers, relative to ``pool_base``."""
        last = (layers - 1) * self.layer_stride + self.v_offset + (self.num_blocks - 1) * self.block_stride
        if self.layout == Layout.HND:
            return last + (self.heads - 1) * self.head_stride + self.block_size * self.token_stride
        return last + self.block_size * self.token_stride


@dataclass
class Result:
    writes: list = field(default_factory=list)   # [(item, dst address, bytes)]
    code: int = Err.OK
    item: int = 0


def _head_range(d):
    """``(first, num)`` of descriptor word 6 (:class:`HeadRange`)."""
    e = data.Const(HeadRange, d["e"])
    return e.first, e.num


class _Fault(Exception):
    def __init__(self, code, item):
        self.code, self.item = code, item


class PagedKV:
    """The paged KV caches in ``mem`` (a ``np.uint8`` image) under the pool configurations
    ``pools``: one :class:`KVConfig`, or a list with one per pool of the engine (a descriptor
    naming a pool beyond the list fails with ``BAD_POOL``, as in the engine)."""

    def __init__(self, mem, pools):
        self.mem = mem
        self.pools = list(pools) if isinstance(pools, (list, tuple)) else [pools]
        self.bus_bytes = self.pools[0].bus_bytes

    @property
    def cfg(self):
        """Pool 0's configuration."""
        return self.pools[0]

    # -- tensor views ----------------------------------------------------------------------
    def plane_base(self, layer, kv, head=0, pool=0):
        c = self.pools[pool]
        base = c.pool_base + layer * c.layer_stride + (c.v_offset if kv else 0)
        return base + (head * c.head_stride if c.layout == Layout.HND else 0)

    def cache(self, layer, kv, pool=0):
        """Byte view of one (layer, K/V) cache: NHD ``[num_blocks, block_size, token_stride]``,
        HND ``[num_blocks, heads, block_size, token_stride]``."""
        c = self.pools[pool]
        base = self.plane_base(layer, kv, pool=pool)
        assert base + c.pool_bytes(1) - c.v_offset <= len(self.mem), "cache view past the end of the memory image"
        if c.layout == Layout.HND:
            shape = (c.num_blocks, c.heads, c.block_size, c.token_stride)
            strides = (c.block_stride, c.head_stride, c.token_stride, 1)
        else:
            shape = (c.num_blocks, c.block_size, c.token_stride)
            strides = (c.block_stride, c.token_stride, 1)
        return np.lib.stride_tricks.as_strided(self.mem[base:], shape=shape, strides=strides, writeable=False)

    def table(self, addr, n):
        return self.mem[addr:addr + 4 * n].view("<u4").astype(np.int64) if n else np.zeros(0, np.int64)

    def gather_tensor(self, bt, seq_len, layer, kv, pool=0):
        """The rows of a sequence by numpy fancy indexing (no skips): NHD ``[seq_len, token_stride]``,
        HND ``[heads, seq_len, token_stride]``."""
        p = np.arange(seq_len)
        c = self.pools[pool]
        blocks, slots = np.asarray(bt)[p // c.block_size], p % c.block_size
        if c.layout == Layout.HND:
            return self.cache(layer, kv, pool)[blocks, :, slots].transpose(1, 0, 2)
        return self.cache(layer, kv, pool)[blocks, slots]

    # -- descriptors -----------------------------------------------------------------------
    @staticmethod
    def head_range(d, c):
        """``(first, count, ok)`` of an HND descriptor's head range (word 6; count 0: the rest)."""
        h0, nh = _head_range(d)
        if nh == 0:
            return h0, c.heads - h0, h0 < c.heads
        return h0, nh, h0 + nh <= c.heads

    def planes(self, d, c):
        """``(layer, kv, head)`` of every plane, in the engine's order (head 0 for NHD)."""
        h0, nh = self.head_range(d, c)[:2] if c.layout == Layout.HND else (0, 1)
        out = []
        for layer in range(d["layer0"], d["layer0"] + d["layers"]):
            for kv, flag in ((0, Flag.K), (1, Flag.V)):
                if d["flags"] & flag:
                    out += [(layer, kv, h) for h in range(h0, h0 + nh)]
        return out

    def execute(self, desc, *, block_size_log2=None):
        """Writes and first error of descriptor ``desc`` (an ``int`` or an unpacked dict)."""
        d = unpack_descriptor(desc) if isinstance(desc, int) else desc
        res = Result()
        try:
            if d["op"] > Op.FILL or (d["flags"] & Flag.STREAM and d["op"] != Op.GATHER):
                raise _Fault(Err.BAD_OPCODE, 0)
            planar = d["op"] in (Op.GATHER, Op.APPEND, Op.BLOCK_COPY)
            c = None
            if planar:
                if d["pool"] >= len(self.pools):
                    raise _Fault(Err.BAD_POOL, 0)
                c = self.pools[d["pool"]]
                lg = c.block_size_log2 if block_size_log2 is None else block_size_log2
                if lg > 8:
                    raise _Fault(Err.BAD_CONFIG, 0)
            if d["status"] % 8 or (d["op"] in (Op.GATHER, Op.APPEND) and d["a"] % 4) or \
                    (d["op"] == Op.BLOCK_COPY and d["a"] % 8):
                raise _Fault(Err.MISALIGNED, 0)
            if planar and c.layout == Layout.HND and not self.head_range(d, c)[2]:
                raise _Fault(Err.HEAD_RANGE, 0)
            getattr(self, "_" + Op.NAMES[d["op"]].lower())(d, res, c)
        except _Fault as fault:
            res.code, res.item = fault.code, fault.item
        return res

    def _emit(self, res, item, src, dst, length, aligned_to_src=False):
        # a STREAM gather has no destination address: its beats keep the source's byte lanes
        if not aligned_to_src and (src - dst) % self.bus_bytes:
            raise _Fault(Err.MISALIGNED, item)
        if length:
            res.writes.append((item, dst, self.mem[src:src + length].copy()))

    def _fence(self, d, res, c):
        pass

    def _sub_range(self, d, c):
        """NHD head range as bytes of the row: ``(offset, length)``, length 0 for the whole row."""
        if c.layout == Layout.HND:
            return 0, 0
        return _head_range(d)

    def _gather(self, d, res, c):
        L, bs = d["count"], c.block_size
        nblk = -(-L // bs)
        sub_off, sub_len = self._sub_range(d, c)
        row = sub_len or c.token_stride
        stream = bool(d["flags"] & Flag.STREAM)
        dst = d["b"]
        item = 0
        for layer, kv, head in self.planes(d, c):
            for j in range(nblk):
                if j >= d["d"]:
                    raise _Fault(Err.POS_RANGE, item)
                phys = int(self.table(d["a"] + 4 * j, 1)[0])
                ntok = min(bs, L - j * bs)
                if phys != 0xFFFFFFFF:
                    if phys >= c.num_blocks:
                        raise _Fault(Err.BAD_BLOCK, item)
                    src = self.plane_base(layer, kv, head, d["pool"]) + phys * c.block_stride
                    if sub_len:     # a head range: one segment per token
                        for t in range(ntok):
                            self._emit(res, item, src + t * c.token_stride + sub_off, dst + t * sub_len, sub_len,
                                       stream)
                    else:
                        self._emit(res, item, src, dst, ntok * c.token_stride, stream)
                dst += ntok * row
                item += 1

    def _append(self, d, res, c):
        bs, ts = c.block_size, c.token_stride
        sub_off, sub_len = self._sub_range(d, c)
        row = sub_len or ts
        src = d["b"]
        item = 0
        for layer, kv, head in self.planes(d, c):
            for i in range(d["count"]):
                p = d["c"] + i
                idx = p >> c.block_size_log2
                if idx >= d["d"]:
                    raise _Fault(Err.POS_RANGE, item)
                phys = int(self.table(d["a"] + 4 * idx, 1)[0])
                if phys != 0xFFFFFFFF:
                    if phys >= c.num_blocks:
                        raise _Fault(Err.BAD_BLOCK, item)
                    dst = self.plane_base(layer, kv, head, d["pool"]) + phys * c.block_stride + (p % bs) * ts
                    self._emit(res, item, src, dst + sub_off, row)
                src += row
                item += 1

    def _block_copy(self, d, res, c):
        blk = c.block_size * c.token_stride
        item = 0
        for pi, (layer, kv, head) in enumerate(self.planes(d, c)):
            base = self.plane_base(layer, kv, head, d["pool"])
            for j in range(d["count"]):
                sid, did = (int(x) for x in self.mem[d["a"] + 8 * j:d["a"] + 8 * j + 8].view("<u4"))
                src_host, dst_host = d["flags"] & Flag.SRC_HOST, d["flags"] & Flag.DST_HOST
                if (not src_host and sid >= c.num_blocks) or (not dst_host and did >= c.num_blocks):
                    raise _Fault(Err.BAD_BLOCK, item)
                src = d["b"] + sid * d["d"] + pi * blk if src_host else base + sid * c.block_stride
                dst = d["b"] + did * d["d"] + pi * blk if dst_host else base + did * c.block_stride
                self._emit(res, item, src % 2**32, dst % 2**32, blk)
                item += 1

    def _copy(self, d, res, c):
        rows = d["c"] or 1
        for r in range(rows):
            self._emit(res, r, d["a"] + r * d["d"], d["b"] + r * d["e"], d["count"])

    def _fill(self, d, res, c):
        pattern = np.frombuffer(d["c"].to_bytes(4, "little"), np.uint8)
        dst, n = d["b"], d["count"]
        # the pattern is aligned to the bus lane: byte at address x is pattern[x % 4]
        data = pattern[(np.arange(dst, dst + n)) % 4]
        if n:
            res.writes.append((0, dst, data))

    @staticmethod
    def stream_bytes(res):
        """The bytes a STREAM gather sends on ``m_axis`` (its writes, in order, without addresses)."""
        return b"".join(bytes(data) for _, _, data in res.writes)

    # -- applying results -------------------------------------------------------------------
    @staticmethod
    def apply(mem, res):
        """Apply every write of ``res`` (a successful descriptor) to ``mem``."""
        for _, dst, data in res.writes:
            mem[dst:dst + len(data)] = data

    @staticmethod
    def check_error_image(before, actual, res):
        """For a failed descriptor: bytes outside every write window must be unchanged; bytes
        inside may hold the old or the new value. Returns a message or ``None``."""
        maybe = before.copy()
        window = np.zeros(len(before), bool)
        for _, dst, data in res.writes:
            maybe[dst:dst + len(data)] = data
            window[dst:dst + len(data)] = True
        outside = (actual != before) & ~window
        if outside.any():
            a = int(np.flatnonzero(outside)[0])
            return f"write outside the descriptor's window at {a:#x}"
        bad = window & (actual != before) & (actual != maybe)
        if bad.any():
            a = int(np.flatnonzero(bad)[0])
            return f"byte {a:#x} holds neither the old nor the new value"
        return None
