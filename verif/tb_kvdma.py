"""cocotb tests of the ``kvdma`` engine against the numpy paged-KV model (:mod:`verif.kv_model`).

Memory is :class:`verif.axi_mem.AxiMemory` (built on cocotbext-axi's public channel objects): a
fixed read latency with pipelined bursts (64 ARs may be in flight), random pauses on every AXI
channel and SLVERR error injection (:meth:`~verif.axi_mem.AxiMemory.inject_error`); an access
outside the memory answers DECERR. The whole memory image starts random, so every byte
outside a descriptor's destination window is a guard byte: after each descriptor the whole
image is compared with the model. Protocol checkers sit on all five ``m_axi`` channels, on
``s_axil`` and on ``s_desc``; a progress watchdog fails a test that stops moving.

Workload options come from ``SCOVILLE_KV`` (JSON, set by the pytest wrapper) so one build per
hardware parameter set serves many cache geometries.
"""

import logging
import json
import os
import random

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster

from amaranth.lib import data

from scoville.hw.kvdma.descriptors import (DESC_BYTES, Err, Flag, HeadRange, Layout, Op, csr_address,
                                           head_range_word, pack_descriptor, status_word)
from .axi_mem import AxiMemory
from .kv_model import KVConfig, PagedKV, Result
from .stream import StreamBus, StreamSink, StreamSource, no_pause, random_pause
from .tb import TB, bench_args, block_params, write_bench_result


# ------------------------------------------------------------------------------ testbench

class KVTB(TB):
    def __init__(self, dut, *, mem_size=1 << 20, latency=None, stall=None, timeout=3000, ram=True):
        super().__init__(dut, stall="none", timeout=timeout)
        self.has_ram = ram
        opts = json.loads(os.environ.get("SCOVILLE_KV", "{}"))
        self.opts = opts
        self.bus_bytes = self.params.get("bus_width", 256) // 8
        latency = opts.get("latency", 20) if latency is None else latency
        stall = opts.get("stall", 0.2) if stall is None else stall
        self.check_axi("s_axil")
        if ram:
            self.check_axi("m_axi")
            self.ram = AxiMemory(AxiBus.from_prefix(dut, "m_axi"), self.clk, self.rst, size=mem_size,
                                 read_latency=latency, stall=stall, read_depth=64, full_width_incr=True)
        self.csr = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), self.clk, self.rst)
        if stall:
            for ch in (self.csr.write_if.aw_channel, self.csr.write_if.w_channel, self.csr.write_if.b_channel,
                       self.csr.read_if.ar_channel, self.csr.read_if.r_channel):
                ch.set_pause_generator(random_pause(stall))
        self.desc = StreamSource(self.check(StreamBus.amaranth(dut, "s_desc")), self.clk,
                                 random_pause(stall) if stall else no_pause(), self.watchdog)
        self._drivers.append(self.desc)
        self.axis = StreamSink(self.check(StreamBus.axis(dut, "m_axis")), self.clk,
                               random_pause(stall) if stall else no_pause(), self.watchdog)
        # live view of the RAM (without a RAM, e.g. behind the HBM controller: the model's image)
        self.mem = self.ram.image if ram else np.zeros(mem_size, np.uint8)
        for vip in (self.csr.write_if, self.csr.read_if):
            vip.log.setLevel(logging.WARNING)
        self.log = logging.getLogger("cocotb.kvdma.tb")
        self.done = 0

    async def write_csr(self, name, value):
        await self.csr.write_dword(csr_address(name), value & 0xFFFFFFFF)

    async def read_csr(self, name):
        return await self.csr.read_dword(csr_address(name))

    async def configure(self, cfgs, irq=True):
        """Program every pool (``cfgs``: one :class:`KVConfig` or a list, pools beyond it are
        zeroed) and return the model over this memory image."""
        cfgs = list(cfgs) if isinstance(cfgs, (list, tuple)) else [cfgs]
        npools = self.params.get("pools", 2)
        assert len(cfgs) <= npools, f"{len(cfgs)} pool configurations for {npools} pools"
        self.cfgs = cfgs
        unused = KVConfig(pool_base=0, num_blocks=0, block_size=1, token_stride=0, block_stride=0,
                          layer_stride=0, v_offset=0, bus_bytes=self.bus_bytes)
        full = cfgs + [unused] * (npools - len(cfgs))
        for k, cfg in enumerate(full):
            for name, value in cfg.csr_values(k).items():
                await self.write_csr(name, value)
        await self.write_csr("ctrl", 2 if irq else 0)
        return PagedKV(self.mem, full)

    async def wait_done(self, limit=2_000_000):
        """Wait for the interrupt (done or error), then acknowledge it; returns irq_status."""
        self.expecting = "descriptor completion"
        for _ in range(limit):
            await RisingEdge(self.clk)
            if int(self.dut.irq.value):
                break
        else:
            raise AssertionError("descriptor never completed")
        self.expecting = None
        irq = await self.read_csr("irq_status")
        await self.write_csr("ack", 1)      # the error bit (and the halt) stay until checked
        self.done += 1
        return irq

    async def run(self, model, desc_fields, *, ring=False):
        """Run one descriptor; check status, error CSRs and the whole memory image."""
        d = pack_descriptor(**desc_fields)
        if ring:
            await self.push_ring(d)
        before = self.mem.copy()
        res = model.execute(d)
        if not ring:
            self.desc.send_nowait(d)
        start = self.cycle
        irq = await self.wait_done()
        self.log.info("%s %s: code %d item %d, %d writes, %d cycles", name_of(desc_fields["op"]),
                      {k: v for k, v in desc_fields.items() if k != "op"}, res.code, res.item,
                      len(res.writes), self.cycle - start)
        count = await self.read_csr("done_count")
        assert count == self.done, f"done_count {count}, expected {self.done}"
        name = Op.NAMES.get(desc_fields["op"], desc_fields["op"])
        if desc_fields.get("flags", 0) & Flag.STREAM and desc_fields["op"] == Op.GATHER:
            self.check_stream(name, res)
            res = Result(writes=[], code=res.code, item=res.item)     # nothing lands in memory
        if not self.has_ram:
            # memory behind a controller: keep the model's image; the caller reads the device back
            assert irq == 1 and res.code == Err.OK, f"{name}: irq_status {irq}, model code {res.code}"
            model.apply(self.mem, res)
            return res
        if res.code == Err.OK:
            assert irq == 1, f"{name}: irq_status {irq:#x}, expected done only"
            expected = before.copy()
            model.apply(expected, res)
            # the status word is the one write the model leaves to us
            st = desc_fields.get("status", 0)
            if st:
                sw = int.from_bytes(bytes(self.mem[st:st + 8]), "little")
                assert sw == status_word(desc_fields["op"], 0, 0), f"{name}: status word {sw:#x}"
            self.ram.compare(expected, what=name, ignore=[(st, st + 8)] if st else ())
        else:
            assert irq == 3, f"{name}: irq_status {irq:#x}, expected done + error (code {res.code})"
            code, item = await self.read_csr("err_code"), await self.read_csr("err_item")
            assert (code, item) == (res.code, res.item), \
                f"{name}: error (code {code}, item {item}), model (code {res.code}, item {res.item})"
            st = desc_fields.get("status", 0)
            actual = self.mem.copy()
            if st:
                sw = int.from_bytes(bytes(actual[st:st + 8]), "little")
                assert sw == status_word(desc_fields["op"], res.code, res.item), f"{name}: status {sw:#x}"
                actual[st:st + 8] = before[st:st + 8]
            problem = PagedKV.check_error_image(before, actual, res)
            assert problem is None, f"{name} (error {res.code}): {problem}"
            status = await self.read_csr("status")
            assert status & 2, "engine not halted after an error"
            await self.write_csr("ack", 2)
            status = await self.read_csr("status")
            assert not status & 2, "halt not cleared by ack"
        return res

    def check_stream(self, name, res):
        beats, self.axis.items = self.axis.items, []
        got = b"".join(bytes(b for k, b in enumerate(beat["tdata"].to_bytes(self.bus_bytes, "little"))
                             if beat["tkeep"] >> k & 1) for beat in beats)
        lasts = [k for k, beat in enumerate(beats) if beat["tlast"]]
        want = PagedKV.stream_bytes(res)
        if res.code == Err.OK:
            assert got == want, f"{name} stream: {len(got)} bytes, expected {len(want)}" + (
                f", first difference at byte {next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), -1)}")
            assert lasts == ([len(beats) - 1] if beats else []), f"{name} stream: tlast on beats {lasts} of {len(beats)}"
        else:
            assert want.startswith(got), f"{name} stream (error {res.code}): bytes that are not a prefix of the rows"
            assert not lasts, f"{name} stream (error {res.code}): tlast on a failed descriptor"

    async def push_ring(self, d):
        base, size_log2 = self.ring
        head = await self.read_csr("ring_head")
        slot = base + DESC_BYTES * (head % (1 << size_log2))
        self.mem[slot:slot + DESC_BYTES] = np.frombuffer(d.to_bytes(DESC_BYTES, "little"), np.uint8)
        await self.write_csr("ring_head", (head + 1) % (1 << size_log2))


# ------------------------------------------------------------------------------ workloads

def name_of(op):
    return Op.NAMES.get(op, f"op{op}")


def geometry(tb, rng, *, base=64 << 10, limit=None, budget=96 << 10, layout=None, block_size=None, heads=None,
             head_dim=None, elem_bytes=None, num_blocks=None, layers=2, use_opts=True):
    """A random cache geometry of ``layers`` layers at ``base`` (about ``budget`` bytes), bus-aligned
    strides, NHD or HND; ``None`` when it does not end below ``limit`` (default: the lower half)."""
    o = tb.opts if use_opts else {}
    B = tb.bus_bytes
    bs = block_size or o.get("block_size") or rng.choice([1, 4, 16])
    heads = heads or o.get("heads") or rng.choice([1, 2, 4])
    hd = head_dim or o.get("head_dim") or rng.choice([32, 64, 80, 128])
    eb = elem_bytes or o.get("elem_bytes") or rng.choice([1, 2])
    layout = rng.choice([Layout.NHD, Layout.HND]) if layout is None else layout

    def pad(n):  # rows padded to the bus width
        return -(-n // B) * B

    if layout == Layout.NHD:
        ts = pad(heads * hd * eb)
        hstride, bstride = 0, bs * ts
    else:
        ts = pad(hd * eb)
        hstride = bs * ts + rng.choice([0, 0, B])      # heads of a block need not be packed
        bstride = heads * hstride
    nb = num_blocks or o.get("num_blocks") or max(4, min(64, budget // (bstride * 2 * layers)))
    vo = nb * bstride
    cfg = KVConfig(pool_base=base, num_blocks=nb, block_size=bs, token_stride=ts, block_stride=bstride,
                   layer_stride=2 * vo, v_offset=vo, bus_bytes=B, layout=layout, heads=heads,
                   head_stride=hstride, head_bytes=hd * eb)
    limit = len(tb.mem) // 2 - 4096 if limit is None else limit
    return cfg if base + cfg.pool_bytes(layers) <= limit else None


def pool_geometries(tb, rng, *, count=None, layers=2, **kw):
    """Geometries of ``count`` pools (default: all of the engine's) one after another in the lower
    half of memory; the first takes the workload options (``SCOVILLE_KV``) and ``kw``, the others
    are random and small. Layouts alternate from a random start unless ``layout`` is given."""
    count = count or tb.params.get("pools", 2)
    first = kw.pop("layout", None)
    first = rng.choice([Layout.NHD, Layout.HND]) if first is None else first
    cfg = geometry(tb, rng, layout=first, layers=layers, **kw)
    assert cfg is not None, "geometry does not fit"
    cfgs = [cfg]
    tb.layers = layers
    for k in range(1, count):
        end = cfgs[-1].pool_base + cfgs[-1].pool_bytes(layers)
        base = -(-end // 4096) * 4096
        for _ in range(50):
            cfg = geometry(tb, rng, base=base, budget=48 << 10, layout=(first + k) % 2, layers=layers,
                           use_opts=False, block_size=rng.choice([1, 2, 4, 16]), num_blocks=rng.randint(4, 8))
            if cfg is not None:
                cfgs.append(cfg)
                break
        else:
            break       # no room: fewer pools configured
    return cfgs


class Scratch:
    """Bump allocator for tables and buffers in the upper half of memory (bus-aligned)."""

    def __init__(self, tb):
        self.lo, self.hi = len(tb.mem) // 2, len(tb.mem) - 4096
        self.cur = self.lo
        self.B = tb.bus_bytes

    def alloc(self, n, align=None):
        align = align or self.B
        self.cur = -(-self.cur // align) * align
        addr = self.cur
        self.cur += n
        if self.cur > self.hi:
            self.cur = self.lo
            return self.alloc(n, align)
        return addr


def put_words(tb, addr, words):
    tb.mem[addr:addr + 4 * len(words)] = np.asarray(words, dtype="<u4").view(np.uint8)


def random_descriptor(tb, scratch, rng, *, errors=True, ops=None, pool=None):
    """A random descriptor's fields on a random configured pool (tables and source data written
    into memory). With ``errors``, some carry an injected fault (bad block id, position beyond
    the table, misaligned buffer, bad opcode, bad pool index, HND head range beyond the pool)."""
    ops = ops or [Op.GATHER, Op.GATHER, Op.APPEND, Op.APPEND, Op.BLOCK_COPY, Op.COPY, Op.FILL, Op.FENCE]
    op = rng.choice(ops)
    pool = rng.randrange(len(tb.cfgs)) if pool is None else pool
    cfg, layers = tb.cfgs[pool], tb.layers
    ts, bs, nb = cfg.token_stride, cfg.block_size, cfg.num_blocks
    flags = rng.choice([Flag.K, Flag.V, Flag.K | Flag.V])
    layer0 = rng.randrange(layers)
    nl = rng.randint(1, layers - layer0)
    status = scratch.alloc(8, 8) if rng.random() < 0.8 else 0
    fields = {"op": op, "pool": pool, "flags": flags, "layer0": layer0, "layers": nl, "status": status}
    inject = errors and rng.random() < 0.25
    sub, nh = 0, 1      # word 6 (head range); planes per (layer, K/V)
    if cfg.layout == Layout.HND and op in (Op.GATHER, Op.APPEND, Op.BLOCK_COPY):
        nh = cfg.heads
        if cfg.heads > 1 and rng.random() < 0.5:
            h0 = rng.randrange(cfg.heads)
            nh = rng.randint(1, cfg.heads - h0)
            sub = head_range_word(h0, 0 if h0 + nh == cfg.heads and rng.random() < 0.5 else nh)   # 0: the rest
        if inject and rng.random() < 0.3:
            sub = rng.choice([head_range_word(cfg.heads, 0), head_range_word(cfg.heads - 1, 2)])  # beyond the heads
    elif op in (Op.GATHER, Op.APPEND) and cfg.heads > 1 and rng.random() < 0.35:
        h0 = rng.randrange(cfg.heads)
        n = rng.randint(1, cfg.heads - h0)
        sub = head_range_word(h0 * cfg.head_bytes, n * cfg.head_bytes)     # NHD: heads [h0, h0 + n) as bytes
    nhd_sub = cfg.layout == Layout.NHD and sub
    sub_range = data.Const(HeadRange, sub)
    row = sub_range.num if nhd_sub else ts
    align = sub_range.first % tb.bus_bytes if nhd_sub else 0
    if op == Op.GATHER:
        L = rng.randint(1, min(4 * bs + 3, nb * bs))
        nblk = -(-L // bs)
        bt = rng.sample(range(nb), nblk)
        if rng.random() < 0.4 and nblk > 2:      # a physically contiguous run: merged bursts
            start = rng.randrange(nb - nblk + 1)
            bt = list(range(start, start + nblk))
        if rng.random() < 0.2:
            bt[rng.randrange(nblk)] = 0xFFFFFFFF
        if inject:
            bt[rng.randrange(nblk)] = rng.choice([nb, nb + 7, 0x7FFFFFFF])
        tlen = nblk - (1 if inject and rng.random() < 0.3 else 0)
        a = scratch.alloc(4 * nblk, 4)
        put_words(tb, a, bt)
        dst = scratch.alloc(L * row * 2 * nl * nh) + align
        fields.update(count=L, a=a, b=dst, d=tlen, e=sub)
        if rng.random() < 0.3:
            fields["flags"] |= Flag.STREAM
    elif op == Op.APPEND:
        n = rng.randint(1, 2 * bs + 1)
        start = rng.randrange(0, max(1, 4 * bs - n))
        nidx = (start + n - 1) // bs + 1
        bt = rng.sample(range(nb), min(nb, nidx)) + [0] * max(0, nidx - nb)
        if inject:
            bt[rng.randrange(nidx)] = nb + rng.randrange(5)
        a = scratch.alloc(4 * nidx, 4)
        put_words(tb, a, bt)
        src = scratch.alloc(n * row * 2 * nl * nh) + align
        fields.update(count=n, a=a, b=src, c=start, d=nidx, e=sub)
    elif op == Op.BLOCK_COPY:
        npairs = rng.randint(1, 3)
        ids = rng.sample(range(nb), min(nb, 2 * npairs))
        pairs = [(ids[2 * k], ids[2 * k + 1]) for k in range(len(ids) // 2)]
        mode = rng.choice([0, 0, Flag.SRC_HOST, Flag.DST_HOST])
        hstride = 2 * nl * nh * bs * ts
        host = scratch.alloc(hstride * (max(max(p) for p in pairs) + 1)) if mode else 0
        if inject and mode != Flag.SRC_HOST:
            pairs[-1] = (pairs[-1][0], nb + 1) if mode == 0 else (nb + 3, pairs[-1][1])
        a = scratch.alloc(8 * len(pairs), 8)
        put_words(tb, a, [w for pr in pairs for w in pr])
        fields.update(count=len(pairs), a=a, b=host, d=hstride, e=sub, flags=flags | mode)
    elif op == Op.COPY:
        rows = rng.choice([0, 1, 3])
        length = rng.randint(1, 3 * tb.bus_bytes + 40)
        off = rng.randrange(tb.bus_bytes)
        sstride = -(-(length + off) // tb.bus_bytes) * tb.bus_bytes + rng.choice([0, tb.bus_bytes])
        dstride = sstride + rng.choice([0, tb.bus_bytes])
        src = scratch.alloc(sstride * 3 + 64) + off
        dst = scratch.alloc(dstride * 3 + 64) + off
        if rng.random() < 0.3:       # straddle a 4 KiB boundary
            src = scratch.alloc(8192, 4096) + 4096 - tb.bus_bytes + off
        if inject:
            dst += 1 if tb.bus_bytes > 1 else 0
        fields.update(count=length, a=src, b=dst, c=rows, d=sstride, e=dstride)
    elif op == Op.FILL:
        length = rng.randint(1, 5 * tb.bus_bytes)
        dst = scratch.alloc(length + 64) + rng.randrange(tb.bus_bytes)
        fields.update(count=length, b=dst, c=rng.getrandbits(32))
    if errors and rng.random() < 0.03:
        fields["op"] = rng.choice([6, 9, 15])
    if errors and rng.random() < 0.03:
        fields["pool"] = rng.randrange(tb.params.get("pools", 2), 16)
    if errors and op != Op.GATHER and rng.random() < 0.02:
        fields["flags"] = fields.get("flags", 0) | Flag.STREAM
    return fields


async def setup(dut, **kw):
    tb = KVTB(dut, **kw)
    await tb.reset()
    # random background: every byte outside a destination window is a guard byte
    tb.mem[:] = np.frombuffer(random.randbytes(len(tb.mem)), np.uint8)
    return tb


async def session(dut, *, stall=None, pools=None, **geometry_kw):
    """The common preamble: reset, random memory, random geometries of the pools (``pools`` of
    them, default all; ``geometry_kw`` shape the first), programmed. Returns
    ``(tb, rng, model, scratch)``; ``tb.cfgs`` holds the pool configurations."""
    tb = await setup(dut, stall=stall)
    rng = random.Random(random.getrandbits(32))
    model = await tb.configure(pool_geometries(tb, rng, count=pools, **geometry_kw))
    return tb, rng, model, Scratch(tb)


# ------------------------------------------------------------------------------ tests

@cocotb.test()
async def gather_append_basic(dut):
    """GATHER and APPEND through block tables (random geometries and layouts, every pool), with
    status words."""
    tb, rng, model, scratch = await session(dut)
    for _ in range(int(tb.opts.get("count", 6))):
        await tb.run(model, random_descriptor(tb, scratch, rng, errors=False, ops=[Op.GATHER, Op.APPEND]))


@cocotb.test()
async def random_operations(dut):
    """Random sequences of every operation on every pool (NHD and HND pools interleaved), with
    injected descriptor errors (bad block ids, positions beyond the table, misaligned buffers,
    bad opcodes, bad pool indices, head ranges beyond the pool); whole image after each."""
    tb = await setup(dut)
    rng = random.Random(random.getrandbits(32))
    for _ in range(int(tb.opts.get("geometries", 2))):
        model = await tb.configure(pool_geometries(tb, rng, layout=tb.opts.get("layout")))
        scratch = Scratch(tb)
        for _ in range(int(tb.opts.get("count", 12))):
            await tb.run(model, random_descriptor(tb, scratch, rng))


@cocotb.test()
async def hnd_layout(dut):
    """Head-major pools on their own: GATHER (to memory and to m_axis), APPEND and BLOCK_COPY
    (pool-side and host-side) with head ranges, checked against the numpy model."""
    tb, rng, model, scratch = await session(dut, layout=Layout.HND, heads=tb_opt(dut, "heads", 4))
    for pool in range(len(tb.cfgs)):
        cfg = tb.cfgs[pool]
        assert cfg.layout == (Layout.HND + pool) % 2
    hnd = [k for k, cfg in enumerate(tb.cfgs) if cfg.layout == Layout.HND]
    for _ in range(int(tb.opts.get("count", 10))):
        await tb.run(model, random_descriptor(tb, scratch, rng, errors=False, pool=rng.choice(hnd),
                                              ops=[Op.GATHER, Op.APPEND, Op.BLOCK_COPY]))


@cocotb.test()
async def pool_errors(dut):
    """A descriptor naming a pool beyond the engine's ``pools``, a pool with block_size_log2 > 8
    and an HND head range beyond the pool stop with BAD_POOL, BAD_CONFIG and HEAD_RANGE; nothing
    is written, and the next descriptor on another pool is exact."""
    tb, rng, model, scratch = await session(dut)
    npools = tb.params.get("pools", 2)
    st = scratch.alloc(8, 8)
    await tb.run(model, {"op": Op.GATHER, "pool": npools + rng.randrange(16 - npools), "flags": Flag.K, "count": 1,
                         "a": scratch.alloc(4, 4), "b": scratch.alloc(256), "d": 1, "status": st})
    cfg = tb.cfgs[-1]
    bad = KVConfig(**{**cfg.__dict__, "block_size": 512})
    for name, value in bad.csr_values(len(tb.cfgs) - 1).items():
        await tb.write_csr(name, value)
    model.pools[len(tb.cfgs) - 1] = bad
    await tb.run(model, {"op": Op.APPEND, "pool": len(tb.cfgs) - 1, "flags": Flag.V, "count": 1,
                         "a": scratch.alloc(4, 4), "b": scratch.alloc(256), "d": 1, "status": st})
    model = await tb.configure(tb.cfgs)
    hnd = next((k for k, c in enumerate(tb.cfgs) if c.layout == Layout.HND), None)
    if hnd is not None:
        heads = tb.cfgs[hnd].heads
        for e in (head_range_word(heads, 0), head_range_word(heads - 1, 2), head_range_word(0, heads + 1)):
            await tb.run(model, {"op": Op.BLOCK_COPY, "pool": hnd, "flags": Flag.K, "count": 1, "e": e,
                                 "a": scratch.alloc(8, 8), "status": st})
    await tb.run(model, random_descriptor(tb, scratch, rng, errors=False, pool=0,
                                          ops=[Op.GATHER, Op.APPEND, Op.BLOCK_COPY]))


def tb_opt(dut, name, default):
    return json.loads(os.environ.get("SCOVILLE_KV", "{}")).get(name, default)


@cocotb.test()
async def ring_descriptors(dut):
    """Descriptors read from the ring in memory (head/tail registers), wrapping around."""
    tb, rng, model, scratch = await session(dut)
    tb.ring = (len(tb.mem) // 2 - 1024, 2)     # below the scratch area, above the pools
    await tb.write_csr("ring_base", tb.ring[0])
    await tb.write_csr("ring_size_log2", 2)
    await tb.write_csr("ctrl", 3)
    for _ in range(6):
        await tb.run(model, random_descriptor(tb, scratch, rng), ring=True)
    tail = await tb.read_csr("ring_tail")
    assert tail == 6 % 4, f"ring_tail {tail}, expected 2"


@cocotb.test()
async def bus_errors(dut):
    """SLVERR on a data read, a data write and a block-table read: error code, the faulting
    address inside the bad range, nothing written outside the window, no hang."""
    tb, rng, model, scratch = await session(dut, num_blocks=8, layout=Layout.NHD)
    cfg = tb.cfgs[0]
    L = 3 * cfg.block_size
    for kind in ("read", "write", "table"):
        bt = rng.sample(range(cfg.num_blocks), 3)
        a = scratch.alloc(12, 4)
        put_words(tb, a, bt)
        dst = scratch.alloc(L * cfg.token_stride)
        st = scratch.alloc(8, 8)
        fields = {"op": Op.GATHER, "flags": Flag.K, "count": L, "a": a, "b": dst, "d": 3, "status": st}
        res = model.execute(pack_descriptor(**fields))
        if kind == "read":
            lo = model.plane_base(0, 0) + bt[1] * cfg.block_stride
            tb.ram.inject_error(lo, lo + 1)
            code = Err.READ_ERR
        elif kind == "write":
            lo = dst + cfg.block_size * cfg.token_stride
            tb.ram.inject_error(lo, lo + 1)
            code = Err.WRITE_ERR
        else:
            tb.ram.inject_error(a, a + 4)
            lo, code = a, Err.TABLE_ERR
        before = tb.mem.copy()
        aw0 = len(tb.ram.write_bursts)
        tb.desc.send_nowait(pack_descriptor(**fields))
        irq = await tb.wait_done()
        tb.ram.clear_errors()
        assert irq == 3, f"{kind}: irq_status {irq}"
        got = await tb.read_csr("err_code")
        addr = await tb.read_csr("err_addr")
        assert got == code, f"{kind}: err_code {got}, expected {code}"
        if kind == "write":   # the start of the one issued burst that holds the bad byte
            bursts = [(s, n) for s, n in tb.ram.write_bursts[aw0:] if s <= lo < s + n * tb.bus_bytes]
            assert len(bursts) == 1, f"{kind}: AW bursts over {lo:#x}: {bursts}"
            assert addr == bursts[0][0], \
                f"{kind}: err_addr {addr:#x}, failing burst at {bursts[0][0]:#x} (bad byte at {lo:#x})"
        else:
            assert addr == lo - lo % (4 if kind == "table" else tb.bus_bytes), \
                f"{kind}: err_addr {addr:#x}, bad byte at {lo:#x}"
        actual = tb.mem.copy()
        sw = int.from_bytes(bytes(actual[st:st + 8]), "little")
        item = await tb.read_csr("err_item")
        assert sw == status_word(Op.GATHER, code, item), f"{kind}: status word {sw:#x}, err_item {item}"
        actual[st:st + 8] = before[st:st + 8]
        problem = PagedKV.check_error_image(before, actual, res)
        assert problem is None, f"{kind}: {problem}"
        await tb.write_csr("ack", 2)
    # the engine still works afterwards (the aborted reads returned their reserved FIFO room)
    await tb.run(model, {"op": Op.FILL, "b": scratch.alloc(100), "count": 77, "c": 0xA5A55A5A, "status": 0})
    for _ in range(3):
        await tb.run(model, random_descriptor(tb, scratch, rng, errors=False,
                                              ops=[Op.GATHER, Op.APPEND, Op.BLOCK_COPY]))


@cocotb.test()
async def merged_bursts(dut):
    """Physically contiguous blocks become one segment: the data reads of a GATHER over blocks
    5..8 are exactly the 4 KiB- and max_burst-limited bursts of one range; scattered blocks are not
    merged."""
    tb, rng, model, scratch = await session(dut, stall=0.0, block_size=4, num_blocks=16, heads=1, head_dim=64,
                                            elem_bytes=1, layout=Layout.NHD)
    B, max_burst = tb.bus_bytes, tb.params["max_burst"]
    cfg = tb.cfgs[0]
    for bt, merged in (([5, 6, 7, 8], True), ([9, 3, 12, 1], False)):
        a = scratch.alloc(16, 4)
        put_words(tb, a, bt)
        L = 4 * len(bt)
        dst = scratch.alloc(L * cfg.token_stride)
        tb.ram.read_bursts.clear()
        await tb.run(model, {"op": Op.GATHER, "flags": Flag.K, "count": L, "a": a, "b": dst, "d": len(bt)})
        data = [(addr, n) for addr, n in tb.ram.read_bursts if not a - a % B <= addr < a + 16]
        ranges = [(model.plane_base(0, 0) + b * cfg.block_stride, cfg.block_stride) for b in bt]
        if merged:
            ranges = [(ranges[0][0], len(bt) * cfg.block_stride)]
        expected = []
        for start, length in ranges:
            addr, end = start, start + length
            while addr < end:
                n = min((end - addr) // B, max_burst, (4096 - addr % 4096) // B)
                expected.append((addr, n))
                addr += n * B
        assert data == expected, f"blocks {bt}: read bursts {data}, expected {expected}"


@cocotb.test()
async def reset_mid_gather(dut):
    """Reset in the middle of a long GATHER; after it the engine is idle and a fresh GATHER is exact."""
    tb, rng, model, scratch = await session(dut, block_size=16, num_blocks=16, heads=2, head_dim=64, elem_bytes=1,
                                            layout=Layout.NHD)
    cfg = tb.cfgs[0]
    bt = rng.sample(range(16), 8)
    a = scratch.alloc(32, 4)
    put_words(tb, a, bt)
    dst = scratch.alloc(16 * 8 * cfg.token_stride * 2)
    fields = {"op": Op.GATHER, "flags": Flag.K | Flag.V, "count": 16 * 8, "a": a, "b": dst, "d": 8}
    before = tb.mem.copy()
    res = model.execute(pack_descriptor(**fields))
    tb.desc.send_nowait(pack_descriptor(**fields))
    await ClockCycles(dut.clk, rng.randrange(150, 400))
    await tb.reset()
    # only the gather's own window may have changed
    problem = PagedKV.check_error_image(before, tb.mem.copy(), res)
    assert problem is None, f"after reset: {problem}"
    assert await tb.read_csr("status") == 0, "engine not idle after reset"
    tb.done = 0
    model = await tb.configure(tb.cfgs)
    await tb.run(model, fields)


@cocotb.test()
async def bench(dut):
    """``scoville bench kvdma``: one GATHER / APPEND / COPY, bus utilisation of the read bus."""
    args = bench_args()
    op = args.get("op", "gather")
    bs, heads, hd = args.get("block_size", 16), args.get("heads", 8), args.get("head_dim", 128)
    eb, L, lat = args.get("elem_bytes", 1), args.get("seq_len", 4096), args.get("latency", 100)
    stall = 0.2 if args.get("stall", "none") == "random" else 0.0
    B = block_params()["bus_width"] // 8
    hnd = args.get("layout", "nhd") == "hnd"
    ts = -(-(hd if hnd else heads * hd) * eb // B) * B      # token stride: one head (HND) or all (NHD)
    tok = heads * ts if hnd else ts                           # bytes per token and plane
    nblk = -(-L // bs)
    nb = nblk + 8
    plane = nb * bs * tok
    need = (64 << 10) + 2 * plane + 8192 + 4 * nblk + 2 * L * tok + (64 << 10)
    size = 1 << max(20, (need - 1).bit_length())
    tb = KVTB(dut, mem_size=size, latency=lat, stall=stall, timeout=5000)
    await tb.reset()
    cfg = KVConfig(pool_base=64 << 10, num_blocks=nb, block_size=bs, token_stride=ts, block_stride=bs * tok,
                   layer_stride=2 * plane, v_offset=plane, bus_bytes=B, layout=int(hnd), heads=heads,
                   head_stride=bs * ts if hnd else 0)
    model = await tb.configure(cfg)
    rng = random.Random(1)
    pool_end = cfg.pool_base + 2 * plane
    tb.mem[cfg.pool_base:pool_end] = np.frombuffer(rng.randbytes(2 * plane), np.uint8)
    a = -(-pool_end // 4096) * 4096
    buf = a + 4096 + (-(-4 * nblk // 4096)) * 4096
    if op == "gather":
        bt = rng.sample(range(nb), nblk)
        put_words(tb, a, bt)
        fields = {"op": Op.GATHER, "flags": Flag.K | Flag.V, "count": L, "a": a, "b": buf, "d": nblk}
        nbytes = 2 * L * tok
    elif op == "append":
        bt = rng.sample(range(nb), nblk)
        put_words(tb, a, bt)
        tb.mem[buf:buf + 2 * L * tok] = np.frombuffer(rng.randbytes(2 * L * tok), np.uint8)
        fields = {"op": Op.APPEND, "flags": Flag.K | Flag.V, "count": L, "a": a, "b": buf, "c": 0, "d": nblk}
        nbytes = 2 * L * tok
    else:
        fields = {"op": Op.COPY, "count": L * tok, "a": cfg.pool_base, "b": buf}
        nbytes = L * tok
    res = model.execute(pack_descriptor(**fields))
    expected = tb.mem.copy()
    model.apply(expected, res)
    r_checker = next(c for c in tb.checkers if c.bus.name == "m_axi_r")
    beats0 = r_checker.transfers
    tb.desc.send_nowait(pack_descriptor(**fields))
    start = tb.cycle
    await tb.wait_done(limit=50_000_000)
    cycles = tb.cycle - start
    beats = r_checker.transfers - beats0
    # Every count is non-negative and each one alone makes the run incorrect: the model must
    # accept the workload, the engine must report no error, and every byte must match.
    err_code = int(await tb.read_csr("err_code"))
    bad_bytes = int(np.count_nonzero(tb.mem != expected))
    errors = (res.code != Err.OK) + (err_code != Err.OK) + bad_bytes
    data_beats = -(-nbytes // B)
    write_bench_result({
        "op": op, "bytes": nbytes, "cycles": cycles, "read_beats": beats,
        "bus_utilization": round(data_beats / cycles, 4), "errors": errors,
        "layout": "hnd" if hnd else "nhd", "block_size": bs, "heads": heads, "head_dim": hd, "seq_len": L,
        "latency": lat,
        "bus_width": 8 * B, "model_code": int(res.code), "err_code": err_code, "bad_bytes": bad_bytes,
        "correct": res.code == Err.OK and err_code == Err.OK and bad_bytes == 0,
    })
    assert errors == 0, f"model code {res.code}, engine err_code {err_code}, {bad_bytes} mismatching bytes"
