"""cocotb tests of :class:`verif.axi_mem.AxiMemory` itself, through a pass-through DUT
(``tests/test_axi_mem.py``): cocotbext-axi's ``AxiMaster`` on ``s_axi``, the memory on ``m_axi``,
a monitor counting cycles between handshakes on the wires between them."""

import random

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiBus, AxiMaster, AxiResp

from .axi_mem import AxiMemory
from .tb import TB

SIZE = 0x4000


class Monitor:
    """Handshakes on ``m_axi``: ``(cycle, channel, id, last)``, counted on this coroutine's own
    clock edges (no ordering question against another counter)."""

    def __init__(self, dut):
        self.dut, self.events = dut, []
        cocotb.start_soon(self._run())

    async def _run(self):
        d, c = self.dut, 0
        while True:
            await RisingEdge(d.clk)
            c += 1
            for ch, ident, last in (("ar", "arid", None), ("aw", "awid", None), ("w", None, "wlast"),
                                    ("r", "rid", "rlast"), ("b", "bid", None)):
                if int(getattr(d, f"m_axi_{ch}valid").value) and int(getattr(d, f"m_axi_{ch}ready").value):
                    self.events.append((c, ch, int(getattr(d, f"m_axi_{ident}").value) if ident else None,
                                        int(getattr(d, f"m_axi_{last}").value) if last else None))

    def of(self, ch):
        return [e for e in self.events if e[1] == ch]


async def setup(dut, **kw):
    tb = TB(dut, stall="none")
    mem = AxiMemory(AxiBus.from_prefix(dut, "m_axi"), tb.clk, tb.rst, size=SIZE, **kw)
    master = AxiMaster(AxiBus.from_prefix(dut, "s_axi"), tb.clk, tb.rst)
    for log in (master.write_if.log, master.read_if.log):
        log.setLevel("WARNING")
    await tb.reset()
    mem.load(0, random.randbytes(SIZE))
    return tb, mem, master, Monitor(dut)


@cocotb.test()
@cocotb.parametrize(read_latency=[0, 9], write_latency=[0, 5])
async def latency(dut, read_latency, write_latency):
    """A lone read: first R handshake ``max(read_latency, 1) + 2`` cycles after the AR
    handshake; four reads back to back finish ``max(read_latency, 1) + 2 + 4*L - 1`` cycles after
    the first AR; a lone
    write: B handshake ``write_latency + 2`` cycles after the last W handshake."""
    tb, mem, master, mon = await setup(dut, read_latency=read_latency, write_latency=write_latency)
    resp = await master.read(0x40, 4)
    assert bytes(resp.data) == mem.dump(0x40, 4) and resp.resp == AxiResp.OKAY
    (ar, *_), (r, *_) = mon.of("ar")[0], mon.of("r")[0]
    lat = max(read_latency, 1) + 2
    assert r - ar == lat, f"read: R {r - ar} cycles after AR, expected max({read_latency}, 1) + 2"
    # pipelined: 4 bursts of L beats, issued together
    mon.events.clear()
    L = 8
    tasks = [cocotb.start_soon(master.read(0x400 + 0x40 * k, 4 * L, arid=k)) for k in range(4)]
    for k, t in enumerate(tasks):
        got = await t
        assert bytes(got.data) == mem.dump(0x400 + 0x40 * k, 4 * L)
    first_ar, last_r = mon.of("ar")[0][0], mon.of("r")[-1][0]
    assert last_r - first_ar == lat + 4 * L - 1, \
        f"4 x {L} beats: {last_r - first_ar} cycles from the first AR to the last R, expected {lat + 4 * L - 1}"
    mon.events.clear()
    data = random.randbytes(16)
    resp = await master.write(0x80, data)
    assert resp.resp == AxiResp.OKAY and mem.dump(0x80, 16) == data
    w_last = mon.of("w")[-1][0]
    b = mon.of("b")[0][0]
    assert b - w_last == write_latency + 2, f"write: B {b - w_last} cycles after the last W, expected {write_latency} + 2"


@cocotb.test()
async def error_injection(dut):
    """SLVERR and DECERR ranges answer on reads and writes; the faulting write beat is not
    written, the rest of its burst is; an address beyond the memory answers DECERR."""
    tb, mem, master, mon = await setup(dut)
    mem.inject_error(0x104, 0x105)                       # one byte: the word 0x104 faults
    mem.inject_error(0x800, 0x900, AxiResp.DECERR)
    assert (await master.read(0x100, 4)).resp == AxiResp.OKAY
    assert (await master.read(0xF0, 32)).resp == AxiResp.SLVERR
    assert (await master.read(0x8FC, 4)).resp == AxiResp.DECERR
    assert (await master.read(0x900, 4)).resp == AxiResp.OKAY
    assert (await master.read(SIZE, 4)).resp == AxiResp.DECERR      # beyond the memory
    before = mem.image.copy()
    data = random.randbytes(16)
    assert (await master.write(0x100, data)).resp == AxiResp.SLVERR
    expected = before.copy()
    expected[0x100:0x110] = np.frombuffer(data, np.uint8)
    expected[0x104:0x108] = before[0x104:0x108]          # the faulting beat only
    mem.compare(expected)
    assert (await master.write(0x880, b"\0" * 8)).resp == AxiResp.DECERR
    mem.compare(expected)
    mem.clear_errors()
    assert (await master.read(0xF0, 32)).resp == AxiResp.OKAY
    # compare() names the first differing address
    expected[0x123] ^= 0xFF
    try:
        mem.compare(expected, what="image")
    except AssertionError as exc:
        assert "first at 0x123" in str(exc), exc
    else:
        raise AssertionError("compare() missed a differing byte")


@cocotb.test()
async def guard_regions(dut):
    """A write next to a guard region passes; one byte into it is caught, naming the address."""
    tb, mem, master, mon = await setup(dut)
    mem.add_guard(0x200, 0x210, "after the buffer")
    await master.write(0x1F0, random.randbytes(16))
    mem.check_guards()
    await master.write(0x1FC, random.randbytes(5))       # the last byte lands on 0x200
    try:
        mem.check_guards()
    except AssertionError as exc:
        assert "0x200" in str(exc) and "after the buffer" in str(exc), exc
    else:
        raise AssertionError("a write into a guard region was not caught")
    assert mem.guard_hits == [(0x200, "after the buffer")], mem.guard_hits


@cocotb.test()
@cocotb.parametrize(mode=["in_order", "reorder", "interleave"])
async def reordering(dut, mode):
    """Eight reads of different IDs come back in another order than their ARs (``reorder``),
    with the beats of different bursts mixed (``interleave``); two reads of one ID stay in
    order; every byte is checked; with ``reorder=False`` the order is the AR order."""
    reorder = mode != "in_order"
    tb, mem, master, mon = await setup(dut, reorder=reorder, interleave=mode == "interleave",
                                       read_jitter=40, rng=random.Random(5))
    reads = [(0x100 * k, 32, k) for k in range(8)] + [(0x1000, 32, 3), (0x1100, 32, 3)]
    tasks = [cocotb.start_soon(master.read(a, n, arid=i)) for a, n, i in reads]
    for (a, n, i), t in zip(reads, tasks):
        got = await t
        assert bytes(got.data) == mem.dump(a, n), f"read {a:#x} ID {i}: wrong data"
    ar_ids = [ident for _, _, ident, _ in mon.of("ar")]
    beats = mon.of("r")
    done = [ident for _, _, ident, last in beats if last]
    mixed = sum(1 for k in range(1, len(beats)) if beats[k][2] != beats[k - 1][2] and not beats[k - 1][3])
    dut._log.info(f"{mode}: AR IDs {ar_ids}, bursts done {done}, {mixed} beats switching burst mid-burst")
    assert sorted(done) == sorted(ar_ids) and len(done) == len(reads)
    if reorder:
        assert done != ar_ids, "reorder=True answered in AR order"
        assert (mixed > 0) == (mode == "interleave"), f"{mixed} mid-burst switches in mode {mode}"
    else:
        assert done == ar_ids and mixed == 0, f"in-order memory answered {done} for ARs {ar_ids}"
    # (same-ID order: AxiMaster pairs R bursts with reads of one ID in order, so a swap of the
    # two ID-3 reads would have failed the data check above)


@cocotb.test()
async def stalls(dut):
    """Random stalls on every channel: a random mix of reads and writes stays exact."""
    tb, mem, master, mon = await setup(dut, stall=0.4, read_latency=3)
    golden = mem.image.copy()
    rng = random.Random(7)
    for _ in range(40):
        addr = rng.randrange(0, SIZE - 256)
        n = rng.randint(1, 200)
        if rng.random() < 0.5:
            data = rng.randbytes(n)
            assert (await master.write(addr, data)).resp == AxiResp.OKAY
            golden[addr:addr + n] = np.frombuffer(data, np.uint8)
        else:
            got = await master.read(addr, n)
            assert bytes(got.data) == golden[addr:addr + n].tobytes(), f"read {addr:#x}+{n}"
    mem.compare(golden)
    assert {e[1] for e in mon.events} == {"ar", "aw", "w", "r", "b"}
