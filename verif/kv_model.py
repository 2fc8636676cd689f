"""Golden model of the ``kvdma`` engine: a numpy paged KV cache over a flat memory image.

:class:`KVConfig` is what software programs into the CSRs (pool base, strides, block size).
:class:`PagedKV` views the pool in a memory image as per-(layer, K/V) caches of shape
``[num_blocks, block_size, row_bytes]`` (a row is one token's ``heads x head_dim`` elements in
NHD order) and implements every descriptor with numpy indexing through the block table:

* GATHER  ``dst[p] = cache[bt[p // bs], p % bs, off:off+len]`` (a head range; the whole row by
  default) for p < seq_len, planes laid out
  ``[layer][K, V][token]`` in the destination; a ``-1`` entry leaves its rows untouched; with
  the STREAM flag the same rows leave on ``m_axis`` instead (:meth:`PagedKV.stream_bytes`);
* APPEND  ``cache[bt[p // bs], p % bs] = src[i]`` for p = start + i;
* BLOCK_COPY ``cache[dst_id] = cache[src_id]`` per pair (either side in host memory);
* COPY (1-D / 2-D strided), FILL (32-bit pattern), FENCE (nothing).

:meth:`PagedKV.execute` returns the writes item by item plus the first error
(``Err`` code, item index), exactly where the engine stops; writes of items before a fault may
or may not have landed (they are *maybe* writes), writes at or after it must not land.
"""

from dataclasses import dataclass, field

import numpy as np

from hw.kvdma.descriptors import Err, Flag, Op


__all__ = ["KVConfig", "Result", "PagedKV", "unpack_descriptor"]


@dataclass
class KVConfig:
    pool_base: int
    num_blocks: int
    block_size: int
    token_stride: int         # bytes per token row (heads * head_dim * elem_bytes, or padded)
    block_stride: int
    layer_stride: int
    v_offset: int
    bus_bytes: int = 32

    @property
    def block_size_log2(self):
        return self.block_size.bit_length() - 1

    def csr_values(self):
        return {"pool_base": self.pool_base, "num_blocks": self.num_blocks,
                "block_size_log2": self.block_size_log2, "token_stride": self.token_stride,
                "block_stride": self.block_stride, "layer_stride": self.layer_stride,
                "v_offset": self.v_offset}


@dataclass
class Result:
    writes: list = field(default_factory=list)   # [(item, dst address, bytes)]
    code: int = Err.OK
    item: int = 0


def unpack_descriptor(value):
    words = [(value >> (32 * k)) & 0xFFFFFFFF for k in range(8)]
    w0 = words[0]
    return {"op": w0 & 0xF, "flags": (w0 >> 8) & 0xFF, "layer0": (w0 >> 16) & 0xFF,
            "layers": ((w0 >> 24) & 0xFF) or 1, "count": words[1], "a": words[2], "b": words[3],
            "c": words[4], "d": words[5], "e": words[6], "status": words[7]}


class _Fault(Exception):
    def __init__(self, code, item):
        self.code, self.item = code, item


class PagedKV:
    """The paged KV cache in ``mem`` (a ``np.uint8`` image) under configuration ``cfg``."""

    def __init__(self, mem, cfg):
        self.mem, self.cfg = mem, cfg

    # -- tensor views ----------------------------------------------------------------------
    def plane_base(self, layer, kv):
        c = self.cfg
        return c.pool_base + layer * c.layer_stride + (c.v_offset if kv else 0)

    def cache(self, layer, kv):
        """``[num_blocks, block_size, token_stride]`` byte view of one (layer, K/V) cache."""
        c = self.cfg
        base = self.plane_base(layer, kv)
        end = base + (c.num_blocks - 1) * c.block_stride + c.block_size * c.token_stride
        assert end <= len(self.mem), "cache view past the end of the memory image"
        return np.lib.stride_tricks.as_strided(
            self.mem[base:], shape=(c.num_blocks, c.block_size, c.token_stride),
            strides=(c.block_stride, c.token_stride, 1), writeable=False)

    def table(self, addr, n):
        return self.mem[addr:addr + 4 * n].view("<u4").astype(np.int64) if n else np.zeros(0, np.int64)

    def gather_tensor(self, bt, seq_len, layer, kv):
        """``[seq_len, token_stride]`` rows of a sequence by numpy fancy indexing (no skips)."""
        p = np.arange(seq_len)
        bs = self.cfg.block_size
        return self.cache(layer, kv)[np.asarray(bt)[p // bs], p % bs]

    # -- descriptors -----------------------------------------------------------------------
    def planes(self, d):
        out = []
        for layer in range(d["layer0"], d["layer0"] + d["layers"]):
            for kv, flag in ((0, Flag.K), (1, Flag.V)):
                if d["flags"] & flag:
                    out.append((layer, kv))
        return out

    def execute(self, desc, *, block_size_log2=None):
        """Writes and first error of descriptor ``desc`` (an ``int`` or an unpacked dict)."""
        d = unpack_descriptor(desc) if isinstance(desc, int) else desc
        res = Result()
        c = self.cfg
        lg = c.block_size_log2 if block_size_log2 is None else block_size_log2
        try:
            if d["op"] > Op.FILL or (d["flags"] & Flag.STREAM and d["op"] != Op.GATHER):
                raise _Fault(Err.BAD_OPCODE, 0)
            if lg > 8:
                raise _Fault(Err.BAD_CONFIG, 0)
            if d["status"] % 8 or (d["op"] in (Op.GATHER, Op.APPEND) and d["a"] % 4) or \
                    (d["op"] == Op.BLOCK_COPY and d["a"] % 8):
                raise _Fault(Err.MISALIGNED, 0)
            getattr(self, "_" + Op.NAMES[d["op"]].lower())(d, res)
        except _Fault as fault:
            res.code, res.item = fault.code, fault.item
        return res

    def _emit(self, res, item, src, dst, length, aligned_to_src=False):
        # a STREAM gather has no destination address: its beats keep the source's byte lanes
        if not aligned_to_src and (src - dst) % self.cfg.bus_bytes:
            raise _Fault(Err.MISALIGNED, item)
        if length:
            res.writes.append((item, dst, self.mem[src:src + length].copy()))

    def _fence(self, d, res):
        pass

    def _gather(self, d, res):
        c = self.cfg
        L, bs = d["count"], c.block_size
        nblk = -(-L // bs)
        sub_off, sub_len = d["e"] & 0xFFFF, d["e"] >> 16
        row = sub_len or c.token_stride
        stream = bool(d["flags"] & Flag.STREAM)
        dst = d["b"]
        item = 0
        for layer, kv in self.planes(d):
            for j in range(nblk):
                if j >= d["d"]:
                    raise _Fault(Err.POS_RANGE, item)
                phys = int(self.table(d["a"] + 4 * j, 1)[0])
                ntok = min(bs, L - j * bs)
                if phys != 0xFFFFFFFF:
                    if phys >= c.num_blocks:
                        raise _Fault(Err.BAD_BLOCK, item)
                    src = self.plane_base(layer, kv) + phys * c.block_stride
                    if sub_len:     # a head range: one segment per token
                        for t in range(ntok):
                            self._emit(res, item, src + t * c.token_stride + sub_off, dst + t * sub_len, sub_len,
                                       stream)
                    else:
                        self._emit(res, item, src, dst, ntok * c.token_stride, stream)
                dst += ntok * row
                item += 1

    def _append(self, d, res):
        c = self.cfg
        bs, ts = c.block_size, c.token_stride
        sub_off, sub_len = d["e"] & 0xFFFF, d["e"] >> 16
        row = sub_len or ts
        src = d["b"]
        item = 0
        for layer, kv in self.planes(d):
            for i in range(d["count"]):
                p = d["c"] + i
                idx = p >> c.block_size_log2
                if idx >= d["d"]:
                    raise _Fault(Err.POS_RANGE, item)
                phys = int(self.table(d["a"] + 4 * idx, 1)[0])
                if phys != 0xFFFFFFFF:
                    if phys >= c.num_blocks:
                        raise _Fault(Err.BAD_BLOCK, item)
                    dst = self.plane_base(layer, kv) + phys * c.block_stride + (p % bs) * ts
                    self._emit(res, item, src, dst + (sub_off if sub_len else 0), row)
                src += row
                item += 1

    def _block_copy(self, d, res):
        c = self.cfg
        blk = c.block_size * c.token_stride
        item = 0
        for pi, (layer, kv) in enumerate(self.planes(d)):
            base = self.plane_base(layer, kv)
            for j in range(d["count"]):
                sid, did = (int(x) for x in self.mem[d["a"] + 8 * j:d["a"] + 8 * j + 8].view("<u4"))
                src_host, dst_host = d["flags"] & Flag.SRC_HOST, d["flags"] & Flag.DST_HOST
                if (not src_host and sid >= c.num_blocks) or (not dst_host and did >= c.num_blocks):
                    raise _Fault(Err.BAD_BLOCK, item)
                src = d["b"] + sid * d["d"] + pi * blk if src_host else base + sid * c.block_stride
                dst = d["b"] + did * d["d"] + pi * blk if dst_host else base + did * c.block_stride
                self._emit(res, item, src % 2**32, dst % 2**32, blk)
                item += 1

    def _copy(self, d, res):
        rows = d["c"] or 1
        for r in range(rows):
            self._emit(res, r, d["a"] + r * d["d"], d["b"] + r * d["e"], d["count"])

    def _fill(self, d, res):
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
