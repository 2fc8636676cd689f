"""cocotb tests of the ``noc_axi`` block: AXI4 managers reach AXI4 subordinates over the mesh.

cocotbext-axi's ``AxiMaster`` drives every ``s_axi{k}`` and a :class:`verif.axi_mem.AxiMemory`
answers on every ``m_axi{k}`` (one burst at a time, as ``AxiRam``; the last one keeps every read
burst open, interleaves the beats of different IDs at random and adds 0..30 cycles of latency per
burst); pause generators stall all five channels of both at random. Each RAM starts with
random bytes and a numpy copy of it is the golden memory: every write that completes OKAY is
applied to the copy, every read is compared byte for byte, and at the end the whole of every RAM
— all bytes outside the written windows are guard bytes — must equal its copy. Managers own
disjoint address ranges and an operation never overlaps one still in flight from the same
manager, so the golden result of every access is defined. Protocol checkers sit on every channel
of every ``s_axi``/``m_axi`` port; a progress watchdog fails a run that stops moving.
"""

import logging
import os
import random

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, Event, RisingEdge
from cocotbext.axi import AxiBus, AxiMaster
from cocotbext.axi.constants import AxiResp

from amaranth.lib import data

from scoville.hw.noc.axi_bridge import subordinate_id_layout

from .axi_mem import AxiMemory, compare_bytes
from .stream import random_pause
from .tb import TB


PAGE = 4096


class NoCAXITB(TB):
    def __init__(self, dut, *, stall=0.3, timeout=5000):
        super().__init__(dut, stall="none", timeout=timeout)
        p = self.params
        self.M, self.S = p["managers"], p["subordinates"]
        self.nodes = p["cols"] * p["rows"]
        self.window = 1 << p["node_shift"]
        self.lanes = p["data_width"] // 8
        self.ids = 1 << p["id_width"]
        self.map_size = 1 << p["addr_width"]
        self.rng = random.Random(random.getrandbits(32))
        for k in range(self.M):
            self.check_axi(f"s_axi{k}")
        for k in range(self.S):
            self.check_axi(f"m_axi{k}")
        self.masters = [AxiMaster(AxiBus.from_prefix(dut, f"s_axi{k}"), self.clk, self.rst)
                        for k in range(self.M)]
        # The last subordinate interleaves read bursts of different IDs (so bursts for two
        # manager nodes, which the bridge must split into separate messages); the others
        # answer one burst at a time.
        self.rams = [AxiMemory(AxiBus.from_prefix(dut, f"m_axi{k}"), self.clk, self.rst, size=self.window,
                               read_depth=1, full_width_incr=True) for k in range(self.S - 1)]
        self.rams.append(AxiMemory(AxiBus.from_prefix(dut, f"m_axi{self.S - 1}"), self.clk, self.rst,
                                   size=self.window, read_depth=16, read_jitter=30, reorder=True,
                                   interleave=True, rng=self.rng, full_width_incr=True))
        self.id_layout = subordinate_id_layout(p["id_width"], self.nodes)
        self.golden = []
        for ram in self.rams:
            image = np.frombuffer(self.rng.randbytes(self.window), np.uint8).copy()
            ram.load(0, image)
            self.golden.append(image)
        # Pages answering SLVERR (any access touching a byte of them): one per RAM.
        self.bad_pages = [{self.rng.randrange(self.window // PAGE)} for _ in range(self.S)]
        for t, ram in enumerate(self.rams):
            for page in self.bad_pages[t]:
                ram.inject_error(page * PAGE, (page + 1) * PAGE)
        channels = []
        for vip in self.masters:
            channels += [vip.write_if.aw_channel, vip.write_if.w_channel, vip.write_if.b_channel,
                         vip.read_if.ar_channel, vip.read_if.r_channel]
            vip.write_if.log.setLevel(logging.ERROR)
            vip.read_if.log.setLevel(logging.ERROR)
        for ram in self.rams:
            channels += ram.channels
        if stall:
            for ch in channels:
                ch.set_pause_generator(random_pause(stall, self.rng))
        self.in_flight = [[] for _ in range(self.M)]
        self.outstanding = 0
        self.done = Event()
        self.counts = {"read": 0, "write": 0, "decerr": 0, "slverr": 0, "beats": 0}

    def _pending(self):
        return f"{self.outstanding} AXI transactions" if self.outstanding else None

    # ---- operations --------------------------------------------------------------------

    def _pick(self, k):
        """A random ``(target, offset, nbytes)`` for manager ``k``: inside its share of a
        target window, within one 4 KiB page, 1..256 beats, not overlapping its in-flight
        operations. ``target == S`` means outside the map."""
        rng = self.rng
        share = self.window // self.M
        for _ in range(50):
            target = self.S if rng.random() < 0.05 else rng.randrange(self.S)
            beats = rng.choice([1, 2, 3, 4, rng.randint(1, 16), rng.randint(1, 256)])
            page = (k * share + rng.randrange(share // PAGE) * PAGE) if share >= PAGE else k * share
            lo = page + rng.randrange(min(PAGE, share))
            first = lo % self.lanes
            nbytes = rng.randint(max(1, beats * self.lanes - self.lanes - first + 1),
                                 beats * self.lanes - first)
            end_page = (lo // PAGE + 1) * PAGE
            nbytes = max(1, min(nbytes, end_page - lo, k * share + share - lo))
            if all(t != target or lo + nbytes <= a or a + n <= lo
                   for t, a, n in self.in_flight[k]):
                return target, lo, nbytes
        return None

    def address(self, target, offset):
        if target < self.S:
            return (target * self.window) + offset
        # Outside the map: the first unmapped target index, or the last one of the space.
        index = self.rng.randrange(self.S, self.map_size // self.window)
        return index * self.window + offset

    async def operation(self, k, kind, target, offset, nbytes, ident):
        master = self.masters[k]
        address = self.address(target, offset)
        op = (target, offset, nbytes)
        self.in_flight[k].append(op)
        self.outstanding += 1
        bad = target < self.S and bool({offset // PAGE, (offset + nbytes - 1) // PAGE}
                                       & self.bad_pages[target])
        expect = AxiResp.DECERR if target == self.S else AxiResp.SLVERR if bad else AxiResp.OKAY
        try:
            if kind == "write":
                data = self.rng.randbytes(nbytes)
                resp = await master.write(address, data, awid=ident)
                assert resp.resp == expect, \
                    f"manager {k}: write {address:#x}+{nbytes} id {ident}: {resp.resp!r}, expected {expect!r}"
                if expect == AxiResp.OKAY:
                    self.golden[target][offset:offset + nbytes] = np.frombuffer(data, np.uint8)
            else:
                resp = await master.read(address, nbytes, arid=ident)
                assert resp.resp == expect, \
                    f"manager {k}: read {address:#x}+{nbytes} id {ident}: {resp.resp!r}, expected {expect!r}"
                if expect == AxiResp.OKAY:
                    problem = compare_bytes(np.frombuffer(bytes(resp.data), np.uint8),
                                            self.golden[target][offset:offset + nbytes], base=address,
                                            what=f"manager {k}: read {address:#x}+{nbytes} id {ident}")
                    assert problem is None, problem
            self.counts[kind] += 1
            self.counts["beats"] += (offset % self.lanes + nbytes + self.lanes - 1) // self.lanes
            if expect != AxiResp.OKAY:
                self.counts["decerr" if expect == AxiResp.DECERR else "slverr"] += 1
        finally:
            self.in_flight[k].remove(op)
            self.outstanding -= 1

    async def manager_run(self, k, count, *, concurrency=6):
        """``count`` random reads and writes from manager ``k``, up to ``concurrency`` at once
        (several IDs; AXI lets same-ID transactions be outstanding too)."""
        tasks = []
        for _ in range(count):
            while len([t for t in tasks if not t.done()]) >= concurrency:
                await RisingEdge(self.clk)
            picked = None
            while picked is None:
                picked = self._pick(k)
                if picked is None:
                    await RisingEdge(self.clk)
            kind = self.rng.choice(["read", "write"])
            tasks.append(cocotb.start_soon(self.operation(k, kind, *picked,
                                                          self.rng.randrange(self.ids))))
            await ClockCycles(self.clk, self.rng.choice([0, 0, 1, 5]) or 1)
        for t in tasks:
            await t

    def check_memories(self):
        for t, ram in enumerate(self.rams):
            ram.compare(self.golden[t], what=f"m_axi{t} against the golden memory")

    def node_switches(self):
        """R beats of the interleaving subordinate that follow a beat for another source node
        in the middle of that node's burst."""
        switches, previous = 0, None
        for rid, last in self.rams[-1].r_order:
            node = data.Const(self.id_layout, rid).node
            if previous is not None and previous[0] != node and not previous[1]:
                switches += 1
            previous = (node, last)
        return switches


@cocotb.test()
async def random_bursts(dut):
    """Reads and writes of 1..256 beats, any alignment, several IDs, every manager to every
    target (and outside the map, and into a SLVERR page), random stalls on all channels."""
    tb = NoCAXITB(dut)
    await tb.reset()
    count = int(os.environ.get("SCOVILLE_NOC_AXI_OPS", "150"))
    runs = [cocotb.start_soon(tb.manager_run(k, count)) for k in range(tb.M)]
    for r in runs:
        await r
    await ClockCycles(tb.clk, 20)
    tb.check_memories()
    switches = tb.node_switches()
    dut._log.info(f"done: {tb.counts}, R beats switching source node mid-burst: {switches}")
    assert tb.counts["decerr"] > 0 and tb.counts["slverr"] > 0, tb.counts
    if tb.M > 1:
        assert switches > 0, "the interleaving subordinate never mixed two managers' bursts"


@cocotb.test()
async def zero_load_latency(dut):
    """One transaction alone: the request reaches ``m_axi`` ``2*H + 4`` cycles after its
    address handshake on ``s_axi``; an R beat taken on ``m_axi`` is offered on ``s_axi``
    ``2*H + 3`` cycles later, a B response ``2*H + 4`` (through the B FIFO) — the bridge
    docstring's figures."""
    tb = NoCAXITB(dut, stall=0)
    await tb.reset()
    p = tb.params
    cols = p["cols"]

    def hops(a, b):
        return abs(a % cols - b % cols) + abs(a // cols - b // cols)

    for k in range(tb.M):
        for t in range(tb.S):
            node_m, node_s = k, tb.nodes - tb.S + t
            h = hops(node_m, node_s)
            for kind in ("read", "write"):
                s = f"s_axi{k}_{'ar' if kind == 'read' else 'aw'}"
                d = f"m_axi{t}_{'ar' if kind == 'read' else 'aw'}"
                rs = f"m_axi{t}_{'r' if kind == 'read' else 'b'}"
                rd = f"s_axi{k}_{'r' if kind == 'read' else 'b'}"
                offset = k * (tb.window // tb.M)
                task = cocotb.start_soon(tb.operation(k, kind, t, offset, 4 * tb.lanes, 1))
                marks = {}
                while not task.done():
                    await RisingEdge(tb.clk)
                    for name, key in ((s, "req_hs"), (rs, "rsp_hs"), (rd, "rsp_out")):
                        if key not in marks and int(getattr(dut, name + "valid").value) and \
                                int(getattr(dut, name + "ready").value):
                            marks[key] = tb.cycle
                    if "req_out" not in marks and int(getattr(dut, d + "valid").value):
                        # valid seen after this edge: raised at the edge just passed
                        marks["req_out"] = tb.cycle
                await task
                req = marks["req_out"] - marks["req_hs"]
                rsp = marks["rsp_out"] - marks["rsp_hs"]
                dut._log.info(f"manager {k} -> target {t} ({h} hops) {kind}: request {req}, "
                              f"response {rsp} cycles")
                assert req == 2 * h + 4, f"{kind} request {k}->{t}: {req} cycles, expected {2 * h + 4}"
                want = 2 * h + (3 if kind == "read" else 4)
                assert rsp == want, f"{kind} response {t}->{k}: {rsp} cycles, expected {want}"
                await ClockCycles(tb.clk, 5)
    tb.check_memories()
