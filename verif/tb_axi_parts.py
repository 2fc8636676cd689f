"""cocotb tests of the shared AXI parts: ``axi_mux``, ``axil_decoder``, ``axi_id``, ``axi_width``.

One module for the family: each test runs on the block it names (``SCOVILLE_BLOCK``) and is
skipped on the others. Third-party VIP drives every port: cocotbext-axi's ``AxiMaster`` /
``AxiLiteMaster`` on the manager side; on the subordinate side ``AxiLiteRam`` and the project's
AXI4 memory (:class:`verif.axi_mem.AxiMemory`, answering reads of different IDs out of order and with
their beats interleaved, after a random latency), with random
pause generators on all five channels of every one of them. Every RAM starts with random bytes
and a numpy copy of it is the golden memory: each write that completes OKAY is applied to the
copy, each read is compared byte for byte, and at the end the whole of every RAM — every byte
outside the written windows a guard byte — must equal its copy. Error responses are checked:
SLVERR from a page whose RAM hook raises, DECERR for the decoder's unmapped addresses. Protocol
checkers sit on every channel of every port, a progress watchdog fails a run that stops, and
monitors check each part's own rules cycle by cycle (the mux's W locking and ID source bits,
the ID adapter's remap table).
"""

import logging
import os
import random

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiLiteRam, AxiMaster
from cocotbext.axi.constants import AxiResp

from scoville.hw.axil_decoder import parse_address_map

from .axi_mem import AxiMemory, compare_bytes
from .stream import StreamSink, StreamSource, random_pause
from .tb import TB


PAGE = 4096
BLOCK = os.environ.get("SCOVILLE_BLOCK", "")


def _for(block):
    """``cocotb.test`` that runs only on ``block`` (the module serves the whole family)."""
    return cocotb.test(skip=BLOCK != block)


def _value(handle):
    return int(handle.value)


class PartsTB(TB):
    """Clock, reset, checkers; VIPs with random pauses; golden images of the RAMs."""

    def __init__(self, dut, *, stall=0.3, timeout=4000):
        super().__init__(dut, stall="none", timeout=timeout)
        self.rng = random.Random(random.getrandbits(32))
        self.stall_probability = stall
        self.rams, self.golden, self.bad_pages = [], [], []
        self.outstanding = 0
        self.counts = {"read": 0, "write": 0, "slverr": 0, "decerr": 0}

    def _pending(self):
        return f"{self.outstanding} AXI transactions" if self.outstanding else None

    def pause_all(self, vip):
        vip.write_if.log.setLevel(logging.ERROR)
        vip.read_if.log.setLevel(logging.ERROR)
        if self.stall_probability:
            for ch in (vip.write_if.aw_channel, vip.write_if.w_channel, vip.write_if.b_channel,
                       vip.read_if.ar_channel, vip.read_if.r_channel):
                ch.set_pause_generator(random_pause(self.stall_probability, self.rng))
        return vip

    def memory(self, prefix, size, **kwargs):
        """An :class:`AxiMemory` on AXI4 port ``prefix``: random stalls on all channels, reads of
        different IDs reordered and interleaved after 0..12 cycles."""
        mem = AxiMemory(AxiBus.from_prefix(self.dut, prefix), self.clk, self.rst, size=size,
                        read_latency=0, read_jitter=12, reorder=True, interleave=True,
                        stall=self.stall_probability, rng=self.rng)
        self.add_ram(mem, size, **kwargs)
        return mem

    def one_to_one(self, size):
        """A part between ``s_axi`` and ``m_axi``: checkers on both, a stalling ``AxiMaster``
        on ``s_axi``, a :meth:`memory` of ``size`` bytes on ``m_axi``."""
        self.check_axi("s_axi")
        self.check_axi("m_axi")
        master = self.pause_all(AxiMaster(AxiBus.from_prefix(self.dut, "s_axi"), self.clk, self.rst))
        return master, self.memory("m_axi", size)

    def lite_ram(self, prefix, size, **kwargs):
        """An ``AxiLiteRam`` on AXI4-Lite port ``prefix`` with random stalls."""
        ram = self.pause_all(AxiLiteRam(AxiLiteBus.from_prefix(self.dut, prefix), self.clk, self.rst, size=size))
        self.add_ram(ram, size, **kwargs)
        return ram

    def add_ram(self, ram, size, *, bad_pages=None):
        """Fill ``ram`` with random bytes, keep the golden copy, make ``bad_pages`` (4 KiB page
        numbers; default one random page of a RAM of two pages or more) answer SLVERR."""
        image = np.frombuffer(self.rng.randbytes(size), np.uint8).copy()
        if bad_pages is None:
            bad_pages = {self.rng.randrange(size // PAGE)} if size >= 2 * PAGE else set()
        pages = set(bad_pages)
        if isinstance(ram, AxiMemory):
            ram.load(0, image.tobytes())
            for page in pages:
                ram.inject_error(page * PAGE, (page + 1) * PAGE)
        else:
            ram.write(0, image.tobytes())
            _fail_pages(ram, pages)
        self.rams.append(ram)
        self.golden.append(image)
        self.bad_pages.append(pages)
        return len(self.rams) - 1

    def expected(self, ram, offset, nbytes):
        if ram is None:
            return AxiResp.DECERR
        touched = {offset // PAGE, (offset + nbytes - 1) // PAGE}
        return AxiResp.SLVERR if touched & self.bad_pages[ram] else AxiResp.OKAY

    async def access(self, master, kind, address, ram, offset, nbytes, what="", **kwargs):
        """One read or write through ``master`` at ``address`` (RAM ``ram`` at ``offset``, or
        ``None``: unmapped), checked against the golden image."""
        expect = self.expected(ram, offset, nbytes)
        self.outstanding += 1
        try:
            if kind == "write":
                payload = self.rng.randbytes(nbytes)
                resp = await master.write(address, payload, **kwargs)
                assert resp.resp == expect, \
                    f"{what}write {address:#x}+{nbytes} {kwargs}: {resp.resp!r}, expected {expect!r}"
                if expect == AxiResp.OKAY:
                    self.golden[ram][offset:offset + nbytes] = np.frombuffer(payload, np.uint8)
            else:
                resp = await master.read(address, nbytes, **kwargs)
                assert resp.resp == expect, \
                    f"{what}read {address:#x}+{nbytes} {kwargs}: {resp.resp!r}, expected {expect!r}"
                got = np.frombuffer(bytes(resp.data), np.uint8)
                assert len(got) == nbytes, f"{what}read returned {len(got)} bytes, expected {nbytes}"
                if expect == AxiResp.OKAY:
                    want = self.golden[ram][offset:offset + nbytes]
                elif expect == AxiResp.DECERR:
                    want = np.zeros(nbytes, np.uint8)      # the decoder's DECERR data is zero
                else:
                    want = got
                problem = compare_bytes(got, want, base=address, what=f"{what}read {address:#x}+{nbytes} {kwargs}")
                assert problem is None, problem
            self.counts[kind] += 1
            if expect != AxiResp.OKAY:
                self.counts["decerr" if expect == AxiResp.DECERR else "slverr"] += 1
        finally:
            self.outstanding -= 1
            self.watchdog.kick()

    def check_memories(self):
        """Every byte of every RAM equals its golden copy (unwritten bytes are guard bytes)."""
        for t, ram in enumerate(self.rams):
            image = ram.image if isinstance(ram, AxiMemory) else ram.read(0, len(self.golden[t]))
            problem = compare_bytes(np.frombuffer(bytes(image), np.uint8), self.golden[t], what=f"RAM {t}")
            assert problem is None, problem

    def pick(self, lo, hi, lanes, busy, *, max_beats=64):
        """A random ``(offset, nbytes)`` inside ``lo..hi``, within one 4 KiB page, any
        alignment, 1..``max_beats`` beats, not overlapping any ``(offset, nbytes)`` in ``busy``."""
        rng = self.rng
        for _ in range(50):
            beats = rng.choice([1, 2, 3, 4, rng.randint(1, 16), rng.randint(1, max_beats)])
            start = rng.randrange(lo, hi)
            nbytes = rng.randint(1, beats * lanes)
            page_end = (start // PAGE + 1) * PAGE
            nbytes = max(1, min(nbytes, page_end - start, hi - start))
            if all(start + nbytes <= a or a + n <= start for a, n in busy):
                return start, nbytes
        return None

    async def run_manager(self, master, count, *, lo, hi, lanes, ram, ids, base=0, concurrency=4,
                          what="", sizes=None):
        """``count`` random reads and writes through ``master`` into ``ram``'s ``lo..hi``,
        up to ``concurrency`` at once, IDs drawn from ``range(ids)``, ``AxSIZE`` from ``sizes``
        (default: the full bus width)."""
        tasks, busy = [], []

        async def one(kind, offset, nbytes, ident):
            busy.append((offset, nbytes))
            try:
                key = "awid" if kind == "write" else "arid"
                extra = {"size": self.rng.choice(sizes)} if sizes else {}
                await self.access(master, kind, base + offset, ram, offset, nbytes, what, **{key: ident}, **extra)
            finally:
                busy.remove((offset, nbytes))

        for _ in range(count):
            while sum(not t.done() for t in tasks) >= concurrency:
                await RisingEdge(self.clk)
            picked = self.pick(lo, hi, lanes, busy)
            while picked is None:
                await RisingEdge(self.clk)
                picked = self.pick(lo, hi, lanes, busy)
            tasks.append(cocotb.start_soon(one(self.rng.choice(["read", "write"]), *picked,
                                               self.rng.randrange(ids))))
            await ClockCycles(self.clk, self.rng.choice([1, 1, 2, 5]))
        for t in tasks:
            await t


def _switches(order, key):
    """R beats (``(rid, rlast)`` in order) that follow a beat of another ``key(rid)`` whose burst
    had not ended: interleaving the DUT must route."""
    count, previous = 0, None
    for rid, last in order:
        if previous is not None and key(previous[0]) != key(rid) and not previous[1]:
            count += 1
        previous = (rid, last)
    return count


def _fail_pages(ram, pages):
    """Make the cocotbext-axi RAM ``ram`` answer SLVERR for any access touching ``pages``."""
    write, read = ram.write_if._write, ram.read_if._read

    def check(address, length):
        if {address // PAGE, (address + length - 1) // PAGE} & pages:
            raise IOError(f"injected SLVERR at {address:#x}")

    async def faulty_write(address, data):
        check(address, len(data))
        await write(address, data)

    async def faulty_read(address, length):
        check(address, length)
        return await read(address, length)
    ram.write_if._write, ram.read_if._read = faulty_write, faulty_read


def _handshake(dut, prefix, ch):
    return _value(getattr(dut, f"{prefix}_{ch}valid")) and _value(getattr(dut, f"{prefix}_{ch}ready"))


# ---- axi_mux ---------------------------------------------------------------------------------

async def _mux_monitor(dut, n, id_width, stats):
    """Every m_axi address handshake is one s_axi{k} handshake in the same cycle (0-cycle mux)
    with ID ``{k, id}``; W beats on m_axi follow the AW order, each burst from its own manager
    only, until the beat with WLAST, which comes exactly on beat AWLEN + 1."""
    order = []        # (source, beats) of accepted AWs whose W burst is not complete
    beat = 0
    while True:
        await RisingEdge(dut.clk)
        if _value(dut.rst):
            continue
        for ch in ("aw", "ar"):
            if _handshake(dut, "m_axi", ch):
                ident = _value(getattr(dut, f"m_axi_{ch}id"))
                src, low = ident >> id_width, ident & ((1 << id_width) - 1)
                taken = [k for k in range(n) if _handshake(dut, f"s_axi{k}", ch)]
                assert taken == [src], f"m_axi {ch} id {ident:#x} (source {src}) but s_axi handshakes {taken}"
                assert _value(getattr(dut, f"s_axi{src}_{ch}id")) == low, f"{ch}: low ID bits changed"
                assert _value(getattr(dut, f"m_axi_{ch}addr")) == _value(getattr(dut, f"s_axi{src}_{ch}addr"))
                if ch == "aw":
                    order.append((src, _value(dut.m_axi_awlen) + 1))
        if _handshake(dut, "m_axi", "w"):
            assert order, "a W beat on m_axi before any AW"
            src, beats = order[0]
            taken = [k for k in range(n) if _handshake(dut, f"s_axi{k}", "w")]
            assert taken == [src], f"W beat {beat} of a burst from manager {src} taken from {taken}"
            assert _value(dut.m_axi_wdata) == _value(getattr(dut, f"s_axi{src}_wdata"))
            beat += 1
            last = _value(dut.m_axi_wlast)
            assert last == (beat == beats), f"WLAST={last} on beat {beat} of a {beats}-beat burst"
            if last:
                order.pop(0)
                beat = 0
                stats["w_bursts"] += 1
        elif any(_handshake(dut, f"s_axi{k}", "w") for k in range(n)):
            raise AssertionError("a manager's W beat was taken without one on m_axi")


@_for("axi_mux")
async def mux_random_bursts(dut):
    """Every manager issues random reads and writes (1..64 beats, any alignment, several IDs,
    some into a SLVERR page) into its own share of one RAM, all channels stalled at random;
    the RAM interleaves read bursts of different IDs (of different managers)."""
    tb = PartsTB(dut)
    p = tb.params
    n, lanes, size = p["managers"], p["data_width"] // 8, 1 << p["addr_width"]
    for k in range(n):
        tb.check_axi(f"s_axi{k}")
    tb.check_axi("m_axi")
    masters = [tb.pause_all(AxiMaster(AxiBus.from_prefix(dut, f"s_axi{k}"), tb.clk, tb.rst)) for k in range(n)]
    share = size // n // PAGE * PAGE
    ram = tb.memory("m_axi", size, bad_pages={(k * share + tb.rng.randrange(share)) // PAGE for k in range(n)})
    stats = {"w_bursts": 0}
    cocotb.start_soon(_mux_monitor(dut, n, p["id_width"], stats))
    await tb.reset()
    count = int(os.environ.get("SCOVILLE_AXI_OPS", "200"))
    runs = [cocotb.start_soon(tb.run_manager(masters[k], count, lo=k * share, hi=(k + 1) * share,
                                             lanes=lanes, ram=0, ids=1 << p["id_width"], what=f"manager {k}: "))
            for k in range(n)]
    for r in runs:
        await r
    await ClockCycles(tb.clk, 10)
    tb.check_memories()
    switches = _switches(ram.r_order, lambda rid: rid >> p["id_width"])
    dut._log.info(f"done in {tb.cycle} cycles: {tb.counts}, {stats}, m_axi transfers "
                  f"{ {c.bus.name: c.transfers for c in tb.checkers if c.bus.name.startswith('m_axi')} }, "
                  f"R beats switching manager mid-burst: {switches}")
    assert tb.counts["slverr"] > 0 and stats["w_bursts"] >= tb.counts["write"], (tb.counts, stats)
    assert switches > 0, "the RAM never interleaved two managers' read bursts"


@_for("axi_mux")
async def mux_fair_share(dut):
    """All managers stream reads with no stalls: each gets ``1/N`` of the AR handshakes (round
    robin), and the mux adds no cycle (an AR handshake on every cycle: 1 address per cycle)."""
    tb = PartsTB(dut, stall=0)
    p = tb.params
    n, lanes, size = p["managers"], p["data_width"] // 8, 1 << p["addr_width"]
    masters = [tb.pause_all(AxiMaster(AxiBus.from_prefix(dut, f"s_axi{k}"), tb.clk, tb.rst)) for k in range(n)]
    mem = AxiMemory(AxiBus.from_prefix(dut, "m_axi"), tb.clk, tb.rst, size=size)
    mem.ar_channel.queue_occupancy_limit = 64
    tb.add_ram(mem, size, bad_pages=set())
    await tb.reset()
    grants, cycles = [], []

    async def watch():
        while True:
            await RisingEdge(dut.clk)
            if _handshake(dut, "m_axi", "ar"):
                grants.append(_value(dut.m_axi_arid) >> p["id_width"])
                cycles.append(tb.cycle)

    cocotb.start_soon(watch())
    per = 8
    ops = [cocotb.start_soon(tb.access(masters[k], "read", k * PAGE + j * lanes, 0, k * PAGE + j * lanes, lanes,
                                       arid=j % (1 << p["id_width"])))
           for j in range(per) for k in range(n)]
    for op in ops:
        await op
    assert sorted(grants) == sorted(list(range(n)) * per), grants
    # While every manager has a request up, consecutive grants go round the managers.
    window = grants[:n * (per - 1)]
    for j in range(0, len(window) - n + 1, n):
        assert sorted(window[j:j + n]) == list(range(n)), f"grants {grants}: not round robin at {j}"
    dut._log.info(f"AR grants {grants} at cycles {cycles}")
    # 1 address per cycle in total (the RAM's AR queue never fills here): the mux adds no bubble.
    assert cycles == list(range(cycles[0], cycles[0] + len(cycles))), f"AR handshakes at cycles {cycles}"


# ---- axil_decoder ----------------------------------------------------------------------------

@_for("axil_decoder")
async def decoder_random_access(dut):
    """Random reads and writes (any byte range of up to three words) into every window and into
    unmapped addresses (DECERR, zero data, no hang), some into a SLVERR page, several in flight
    at once from concurrent tasks, every channel of every port stalled at random."""
    tb = PartsTB(dut)
    p = tb.params
    regions = parse_address_map(p["regions"])
    lanes, space = p["data_width"] // 8, 1 << p["addr_width"]
    tb.check_axi("s_axil")
    master = tb.pause_all(AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), tb.clk, tb.rst))
    for k, (base, size) in enumerate(regions):
        tb.check_axi(f"m_axil{k}")
        tb.lite_ram(f"m_axil{k}", size)
    await tb.reset()

    def region_of(addr):
        for k, (base, size) in enumerate(regions):
            if base <= addr < base + size:
                return k
        return None

    busy = []

    async def one():
        rng = tb.rng
        for _ in range(50):
            if rng.random() < 0.2:       # unmapped: every byte of it outside the map
                addr = rng.randrange(space - 3 * lanes)
                nbytes = rng.randint(1, 3 * lanes)
                if any(region_of(a) is not None for a in range(addr, addr + nbytes)):
                    continue
                ram, offset = None, 0
            else:
                ram = rng.randrange(len(regions))
                base, size = regions[ram]
                picked = tb.pick(0, size, lanes, [b[1:] for b in busy if b[0] == ram], max_beats=3)
                if picked is None:
                    continue
                offset, nbytes = picked
                addr = base + offset
            break
        else:
            return
        entry = (ram, offset, nbytes)
        busy.append(entry)
        try:
            await tb.access(master, rng.choice(["read", "write"]), addr, ram, offset, nbytes)
        finally:
            busy.remove(entry)

    async def worker(count):
        for _ in range(count):
            await one()

    count = int(os.environ.get("SCOVILLE_AXI_OPS", "150"))
    workers = [cocotb.start_soon(worker(count)) for _ in range(4)]
    for w in workers:
        await w
    await ClockCycles(tb.clk, 10)
    tb.check_memories()
    dut._log.info(f"done: {tb.counts}")
    assert tb.counts["decerr"] > 0 and tb.counts["slverr"] > 0, tb.counts


@_for("axil_decoder")
async def decoder_unmapped_timing(dut):
    """No stalls: a read of an unmapped address is answered (DECERR) one cycle after its AR
    handshake, a write one cycle after AW and W; a mapped access reaches its port in the cycle
    the manager offers it."""
    tb = PartsTB(dut, stall=0)
    p = tb.params
    regions = parse_address_map(p["regions"])
    master = tb.pause_all(AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), tb.clk, tb.rst))
    for k, (base, size) in enumerate(regions):
        tb.lite_ram(f"m_axil{k}", size, bad_pages=set())
    await tb.reset()
    ends = sorted(base + size for base, size in regions)
    unmapped = next(e for e in ends if e < 1 << p["addr_width"] and all(not (b <= e < b + s) for b, s in regions))
    for kind, channels in (("read", ("ar", "r")), ("write", ("aw", "w", "b"))):
        task = cocotb.start_soon(tb.access(master, kind, unmapped, None, 0, 4))
        marks = {}
        while not task.done():
            await RisingEdge(tb.clk)
            for ch in channels:
                if ch not in marks and _handshake(dut, "s_axil", ch):
                    marks[ch] = tb.cycle
        await task
        assert marks[channels[-1]] - max(marks[c] for c in channels[:-1]) == 1, f"unmapped {kind}: {marks}"
    base, size = regions[0]
    task = cocotb.start_soon(tb.access(master, "read", base, 0, 0, 4))
    while not task.done():
        await RisingEdge(tb.clk)
        if _value(dut.s_axil_arvalid):
            assert _value(dut.m_axil0_arvalid), "AR not forwarded in the cycle it is offered"
    await task


# ---- axi_id ----------------------------------------------------------------------------------

async def _id_monitor(dut, p, stats):
    """A model of the remap table: at each m_axi address handshake (the same cycle as the
    s_axi one) an m-ID still in flight must belong to the same s-ID, and at most
    ``max_outstanding`` are in flight per m-ID; each response's s-ID is the one its m-ID was
    given for. Widening: the m-ID is the s-ID."""
    sw, mw, limit = p["s_id_width"], p["m_id_width"], p["max_outstanding"]
    narrowing = mw < sw
    tables = {"aw": {}, "ar": {}}     # m-ID -> [s-ID, count]
    while True:
        await RisingEdge(dut.clk)
        if _value(dut.rst):
            continue
        for req, rsp in (("aw", "b"), ("ar", "r")):
            table = tables[req]
            if _handshake(dut, "m_axi", req):
                assert _handshake(dut, "s_axi", req), f"{req}: m_axi handshake without s_axi's"
                sid, mid = _value(getattr(dut, f"s_axi_{req}id")), _value(getattr(dut, f"m_axi_{req}id"))
                if narrowing:
                    elsewhere = [k for k, o in table.items() if o[1] and o[0] == sid and k != mid]
                    assert not elsewhere, f"{req}: s-ID {sid} in flight on m-ID {elsewhere} sent on m-ID {mid}"
                    owner = table.setdefault(mid, [sid, 0])
                    if owner[1]:
                        assert owner[0] == sid, f"{req}: m-ID {mid} in flight for s-ID {owner[0]} given to {sid}"
                    owner[0] = sid
                    owner[1] += 1
                    assert owner[1] <= limit, f"{req}: {owner[1]} in flight on m-ID {mid} (limit {limit})"
                    stats["max_slots"] = max(stats["max_slots"], sum(1 for o in table.values() if o[1]))
                else:
                    assert mid == sid, f"{req}: widened ID {mid:#x} is not s-ID {sid:#x}"
            if _handshake(dut, "m_axi", rsp):
                mid, sid = _value(getattr(dut, f"m_axi_{rsp}id")), _value(getattr(dut, f"s_axi_{rsp}id"))
                assert _handshake(dut, "s_axi", rsp), f"{rsp}: m_axi handshake without s_axi's"
                if narrowing:
                    owner = table.get(mid)
                    assert owner and owner[1], f"{rsp}: response on m-ID {mid} with nothing in flight"
                    assert sid == owner[0], f"{rsp}: m-ID {mid} returned as s-ID {sid}, owner {owner[0]}"
                    if rsp == "b" or _value(dut.m_axi_rlast):
                        owner[1] -= 1
                else:
                    assert sid == mid & ((1 << sw) - 1)


@_for("axi_id")
async def id_random_bursts(dut):
    """Random reads and writes with every manager ID, up to 8 in flight, 1..64 beats, any
    alignment, some into a SLVERR page; the RAM reorders read bursts of different m-IDs; all
    channels stalled at random; the remap table checked against a model every cycle."""
    tb = PartsTB(dut)
    p = tb.params
    lanes, size = p["data_width"] // 8, 1 << p["addr_width"]
    master, ram = tb.one_to_one(size)
    stats = {"max_slots": 0}
    cocotb.start_soon(_id_monitor(dut, p, stats))
    await tb.reset()
    count = int(os.environ.get("SCOVILLE_AXI_OPS", "500"))
    await tb.run_manager(master, count, lo=0, hi=size, lanes=lanes, ram=0, ids=1 << p["s_id_width"],
                         concurrency=8)
    await ClockCycles(tb.clk, 10)
    tb.check_memories()
    switches = _switches(ram.r_order, lambda rid: rid)
    dut._log.info(f"done: {tb.counts}, {stats}, R beats switching m-ID mid-burst: {switches}")
    if p["m_id_width"]:     # with no m-ID bits there is one ID: nothing to interleave
        assert switches > 0, "the RAM never interleaved read bursts of two m-IDs"
    assert tb.counts["slverr"] > 0, tb.counts
    if p["m_id_width"] < p["s_id_width"]:
        assert stats["max_slots"] == 1 << p["m_id_width"], f"never all remap slots busy: {stats}"


# ---- axi_width -------------------------------------------------------------------------------

@_for("axi_width")
async def width_random_bursts(dut):
    """Random reads and writes of every transfer size the manager allows (narrow transfers),
    any alignment, 1..64 beats, several IDs, some into a SLVERR page, all channels stalled at
    random; the memory checks every subordinate burst (4 KiB, WLAST, size). Upsizer: one
    subordinate burst per manager burst; downsizer: one per manager beat."""
    tb = PartsTB(dut)
    p = tb.params
    lanes, size = p["s_data_width"] // 8, 1 << p["addr_width"]
    master, _ = tb.one_to_one(size)
    await tb.reset()
    count = int(os.environ.get("SCOVILLE_AXI_OPS", "300"))
    await tb.run_manager(master, count, lo=0, hi=size, lanes=lanes, ram=0, ids=1 << p["id_width"],
                         concurrency=6, sizes=list(range((lanes - 1).bit_length() + 1)))
    await ClockCycles(tb.clk, 10)
    tb.check_memories()
    transfers = {c.bus.name: c.transfers for c in tb.checkers}
    dut._log.info(f"done in {tb.cycle} cycles: {tb.counts}, transfers {transfers}")
    assert tb.counts["slverr"] > 0, tb.counts
    for req, data in (("aw", "w"), ("ar", "r")):
        s_bursts, s_beats, m_bursts = (transfers[f"s_axi_{req}"], transfers[f"s_axi_{data}"],
                                       transfers[f"m_axi_{req}"])
        want = s_bursts if p["m_data_width"] > p["s_data_width"] else s_beats
        assert m_bursts == want, f"{req}: {m_bursts} subordinate bursts for {s_bursts} bursts of {s_beats} beats"


@_for("axi_width")
async def width_address_latency(dut):
    """No stalls: the subordinate's AR/AW is offered in the cycle of the manager's handshake
    (upsizer: requests pass through) or the cycle after (downsizer: registered walker), the
    docstring's 0 and 1 cycles."""
    tb = PartsTB(dut, stall=0)
    p = tb.params
    lanes = p["s_data_width"] // 8
    master, _ = tb.one_to_one(1 << p["addr_width"])
    await tb.reset()
    want = 0 if p["m_data_width"] > p["s_data_width"] else 1
    for kind, ch in (("read", "ar"), ("write", "aw")):
        task = cocotb.start_soon(tb.access(master, kind, 0x100, 0, 0x100, 2 * lanes))
        handshake = offered = None
        while not task.done():
            await RisingEdge(tb.clk)
            if handshake is None and _handshake(dut, "s_axi", ch):
                handshake = tb.cycle
            if offered is None and _value(getattr(dut, f"m_axi_{ch}valid")):
                offered = tb.cycle      # seen at this edge: driven since the edge before
        await task
        assert offered - handshake == want, \
            f"{ch}: manager handshake at edge {handshake}, subordinate valid first seen at edge {offered}"


def beat_addresses(addr, size, length, burst):
    """Address of each beat of an AXI4 burst (``length`` beats, ``2**size`` bytes a beat)."""
    step = 1 << size
    if burst == 0:                                          # FIXED
        return [addr] * length
    if burst == 2:                                          # WRAP (addr aligned to the size)
        window = length * step
        low = addr // window * window
        return [low + (addr - low + n * step) % window for n in range(length)]
    return [addr] + [addr // step * step + n * step for n in range(1, length)]


@_for("axi_width")
async def width_wrap_fixed(dut):
    """WRAP (2, 4, 8, 16 beats, starting inside the window) and FIXED bursts of every size,
    driven beat by beat on ``s_axi`` with the project's stream sources and sinks (cocotbext-axi's
    master lays data out as INCR only): written bytes land at the AXI beat addresses (a FIXED
    burst's later beats overwrite earlier ones), reads return them on the right lanes, every
    response OKAY with the burst's ID; random stalls on every channel of both sides."""
    tb = PartsTB(dut)
    p = tb.params
    lanes, size = p["s_data_width"] // 8, 1 << p["addr_width"]
    buses = tb.check_axi("s_axi")
    tb.check_axi("m_axi")
    tb.memory("m_axi", size, bad_pages=set())
    src = {ch: StreamSource(buses[ch], tb.clk, random_pause(0.3, tb.rng), tb.watchdog) for ch in ("aw", "w", "ar")}
    snk = {ch: StreamSink(buses[ch], tb.clk, random_pause(0.3, tb.rng), tb.watchdog) for ch in ("b", "r")}
    await tb.reset()
    golden, rng = tb.golden[0], tb.rng
    got_b = got_r = 0
    for k in range(int(os.environ.get("SCOVILLE_AXI_OPS", "300")) // 5):
        burst = rng.choice([0, 2])
        nsize = rng.randrange((lanes - 1).bit_length() + 1)
        length = rng.choice([2, 4, 8, 16]) if burst == 2 else rng.randint(1, 16)
        span = length << nsize
        base = rng.randrange(size // PAGE) * PAGE + rng.randrange(PAGE // span) * span
        addr = base + (rng.randrange(length) << nsize if burst == 2 else rng.randrange(1 << nsize))
        ident = rng.randrange(1 << p["id_width"])
        request = {"id": ident, "addr": addr, "len": length - 1, "size": nsize, "burst": burst}
        addrs = beat_addresses(addr, nsize, length, burst)
        src["aw"].send_nowait(request)
        for n, a in enumerate(addrs):
            top = a // (1 << nsize) * (1 << nsize) + (1 << nsize)
            payload = bytearray(rng.randbytes(lanes))
            strb = 0
            for byte in range(a, top):
                if rng.random() < 0.85:
                    strb |= 1 << byte % lanes
                    golden[byte] = payload[byte % lanes]
            src["w"].send_nowait({"data": int.from_bytes(payload, "little"), "strb": strb,
                                  "last": int(n == length - 1)})
        got_b += 1
        await snk["b"].wait_for(got_b)
        b = snk["b"].items[-1]
        assert b == {"id": ident, "resp": 0}, f"write {request}: B {b}"
        src["ar"].send_nowait(request)
        got_r += length
        await snk["r"].wait_for(got_r)
        for n, (a, r) in enumerate(zip(addrs, snk["r"].items[-length:])):
            assert (r["id"], r["resp"], r["last"]) == (ident, 0, int(n == length - 1)), f"read {request}: beat {n} {r}"
            top = a // (1 << nsize) * (1 << nsize) + (1 << nsize)
            data = r["data"].to_bytes(lanes, "little")
            for byte in range(a, top):
                assert data[byte % lanes] == golden[byte], \
                    f"read {request}: beat {n} byte {byte:#x} = {data[byte % lanes]:#04x}, expected {golden[byte]:#04x}"
    await ClockCycles(tb.clk, 10)
    tb.check_memories()
