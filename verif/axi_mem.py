"""One AXI4 memory model for every testbench that needs a memory, on cocotbext-axi's public API.

:class:`AxiMemory` answers an AXI4 subordinate port (``AxiBus``) from a byte array. It is built
only from cocotbext-axi's public objects: the channel sinks and sources of
``cocotbext.axi.axi_channels`` (``AxiARSink``, ``AxiRSource``, ``AxiAWSink``, ``AxiWSink``,
``AxiBSource`` and their transaction classes, with ``set_pause_generator``, ``queue_occupancy_limit``,
``send``/``recv``/``clear``/``count``) and a ``MemoryRegion`` of ``cocotbext.axi.address_space``
for the storage (its public async ``read``/``write``). It subclasses nothing and overrides no
private method: ``AxiRam``/``AxiSlaveRead`` serve one read burst at a time and cannot add latency
or reorder without overriding ``_process_read``, so the two small responders here (one per
direction) take their place.

Features and the timing each adds (in cycles of ``clock``, with no stalls):

* **Read latency.** Burst ``k`` gets a latency ``lat_k = max(read_latency + j_k, 1)`` with
  ``j_k`` uniform in ``[0, read_jitter]`` (0 when ``read_jitter`` is 0; a latency of 0 acts as
  1 because an idle responder sees a new burst at the next edge, as the ``AxiRam`` extension
  this replaced did). In order (``reorder=False``), with ``rready`` high and nothing ahead of
  it, the first R handshake of a burst is ``lat_k + 2`` cycles after its AR handshake (the 2
  are cocotbext-axi's AR sink and R source registers); later beats follow back to back, one a
  cycle while ``rready``.
  ``verif/tb_axi_mem.py`` measures both. Bursts pipeline: up to ``read_depth`` bursts are
  outstanding (taken from the AR queue, not yet fully answered) and 2 more wait in the AR queue
  before AR is back-pressured, so ``N <= read_depth`` bursts of ``L`` beats issued back to back
  take ``max(read_latency, 1) + 2 + N*L - 1`` cycles from the first AR handshake to the last R
  handshake. A burst that waited in the AR queue (``read_depth`` already outstanding) counts its
  latency from when it left the queue. ``read_depth=1`` is ``AxiRam``'s one burst at a time.
* **Write latency.** The B of a write burst is queued ``write_latency`` cycles after its last W
  beat was taken (0: at once, as ``AxiRam``): its B handshake is ``write_latency + 2`` cycles
  after the last W handshake with ``bready`` high. Writes pipeline behind it (the B wait does
  not hold up AW/W). The data lands when its W beat is taken, not when B is sent.
* **Stalls.** ``stall=p``: every channel (AW, W, B, AR, R) pauses each cycle with probability
  ``p`` (``verif.stream.random_pause``; AW/W/AR deassert ready, B/R hold valid low), so a
  channel runs at ``1 - p`` of a beat per cycle on its own. :attr:`channels` gives the five
  channel objects to set other pause generators on.
* **Reordering.** ``reorder=True``: read bursts with *different* IDs may be answered in any
  order (AXI4 allows it; bursts of one ID stay in order): when a burst is done, the next is
  picked at random (``rng``) among those whose latency has passed and that are the oldest
  outstanding of their ID. With ``interleave=True`` the pick is made again for every beat
  (beats of different IDs interleave; AXI4 allows that too), and at most one beat is queued at
  a time so a later AR can still join in (about one beat per 2 cycles). Write responses
  are never reordered (AW and W are processed in order, and AXI4 forbids write data
  interleaving). Without ``reorder`` reads are answered strictly in AR order.
* **Error injection.** :meth:`inject_error` makes an address range answer SLVERR or DECERR:
  an R beat whose bus word touches it returns that response and zero data; a write beat whose
  strobed bytes touch it is not written (the rest of the burst is) and the burst's B carries
  the response (the first error response of the burst). Accesses outside ``[base, base +
  size)`` answer DECERR the same way. No timing is added.
* **Guard regions.** :meth:`add_guard` marks bytes that must never be written: a write beat
  touching them is still performed (so images show it) but recorded in :attr:`guard_hits`
  ``(first guard byte written, label)``; :meth:`check_guards` fails naming the first address.
* **Golden checking.** :attr:`image` is a live numpy view of the memory; :meth:`compare` /
  :func:`compare_bytes` fail naming how many bytes differ and the first differing address
  with both values; :attr:`read_bursts` / :attr:`write_bursts` record ``(address, beats)`` of
  every burst in acceptance order.

Protocol checks: every INCR burst must stay inside a 4 KiB page (AXI rule), WRAP lengths must be
2, 4, 8 or 16, ``2**size`` at most the bus width, ``wlast`` exactly on the last beat;
``full_width_incr=True`` also rejects narrow and non-INCR bursts (for DUTs that promise only
those). A failed check raises in the responder, which fails the cocotb test.

Reset (``reset`` high, or low with ``reset_active_level=False``) drops every queued and
outstanding transaction, as ``AxiRam`` does.

Usage::

    mem = AxiMemory(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=1 << 20,
                    read_latency=20, stall=0.2)
    mem.image[:] = np.frombuffer(random.randbytes(mem.size), np.uint8)   # guard bytes everywhere
    mem.inject_error(0x4000, 0x4001)                                      # SLVERR on that byte
    ...
    mem.compare(expected)                                                 # every byte
"""

import collections
import logging
import random

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiBurstType, AxiResp, MemoryRegion
from cocotbext.axi.axi_channels import (AxiARSink, AxiAWSink, AxiBSource, AxiBTransaction, AxiRSource,
                                        AxiRTransaction, AxiWSink)

from .stream import random_pause

__all__ = ["AxiMemory", "ErrorRange", "compare_bytes"]

ErrorRange = collections.namedtuple("ErrorRange", "lo hi resp")
GuardRange = collections.namedtuple("GuardRange", "lo hi label")


def _u8(data):
    """``data`` (bytes-like or array-like) as a ``uint8`` array."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return np.frombuffer(bytes(data), np.uint8)
    return np.asarray(data, np.uint8)


def compare_bytes(got, want, *, base=0, what="memory"):
    """``None`` if the byte sequences ``got`` and ``want`` are equal, else a message naming how
    many bytes differ and the first differing address (``base`` + offset) with both values."""
    got, want = _u8(got), _u8(want)
    if len(got) != len(want):
        return f"{what}: {len(got)} bytes, expected {len(want)}"
    diff = np.flatnonzero(got != want)
    if not len(diff):
        return None
    a = int(diff[0])
    return (f"{what}: {len(diff)} byte(s) differ, first at {base + a:#x}: got {int(got[a]):#04x} "
            f"expected {int(want[a]):#04x}")


class _Burst:
    """One accepted read burst: beat addresses per the AXI4 burst rules."""

    __slots__ = ("id", "addr", "length", "size", "burst", "due", "beat", "lo", "hi")

    def __init__(self, ident, addr, length, size, burst, due):
        self.id, self.addr, self.length, self.size, self.burst, self.due = ident, addr, length, size, burst, due
        self.beat = 0
        nbytes = 1 << size
        if burst == AxiBurstType.WRAP:
            self.lo = addr // (nbytes * length) * nbytes * length
            self.hi = self.lo + nbytes * length

    def address(self, n):
        """Address of beat ``n`` (aligned down to the transfer size, as a subordinate sees it)."""
        nbytes = 1 << self.size
        start = self.addr // nbytes * nbytes
        if self.burst == AxiBurstType.FIXED:
            return start
        if self.burst == AxiBurstType.WRAP:
            return self.lo + (start - self.lo + n * nbytes) % (self.hi - self.lo)
        return start + n * nbytes


class AxiMemory:
    """AXI4 subordinate memory with latency, stalls, read reordering, error injection and guards.

    See the module docstring for what each feature does and its timing as formulas.

    Parameters
    ----------
    bus : cocotbext.axi.AxiBus
        The subordinate port (``AxiBus.from_prefix(dut, "m_axi")``).
    clock, reset :
        Clock and (optional) reset signal; ``reset_active_level`` as in cocotbext-axi.
    size : int
        Bytes of memory, answering ``[base, base + size)``.
    base : int
        Bus address of byte 0.
    mem : bytearray, optional
        Backing store (default a zeroed ``bytearray(size)``).
    read_latency, read_jitter : int
        Cycles from AR acceptance to the first R beat being queued: ``read_latency`` plus a
        uniform random ``0..read_jitter`` per burst.
    write_latency : int
        Cycles from a burst's last W beat to its B being queued.
    read_depth : int
        Read bursts outstanding at most (2 more wait in the AR queue), >= 1.
    reorder, interleave : bool
        Answer reads of different IDs out of order; also interleave their beats.
    stall : float
        Pause probability per cycle on every channel (0: never).
    rng : random.Random, optional
        Randomness for jitter, reordering and stalls (default: seeded from ``random``).
    full_width_incr : bool
        Reject narrow and non-INCR bursts (assertion).
    name : str, optional
        Logger name suffix.
    """

    def __init__(self, bus, clock, reset=None, *, size, base=0, mem=None, reset_active_level=True,
                 read_latency=0, read_jitter=0, write_latency=0, read_depth=64, reorder=False,
                 interleave=False, stall=0.0, rng=None, full_width_incr=False, name=None):
        for pname, value, lo in (("size", size, 1), ("base", base, 0), ("read_latency", read_latency, 0),
                                 ("read_jitter", read_jitter, 0), ("write_latency", write_latency, 0),
                                 ("read_depth", read_depth, 1)):
            if not isinstance(value, int) or value < lo:
                raise ValueError(f"{pname} must be an integer >= {lo}, not {value!r}")
        if not 0 <= stall < 1:
            raise ValueError(f"stall must be a probability in [0, 1), not {stall!r}")
        if interleave and not reorder:
            raise ValueError("interleave=True needs reorder=True")
        self.clock, self.reset = clock, reset
        self.size, self.base = size, base
        self.mem = bytearray(size) if mem is None else mem
        if len(self.mem) != size:
            raise ValueError(f"mem holds {len(self.mem)} bytes, size is {size}")
        self.region = MemoryRegion(size, mem=self.mem)
        self.read_latency, self.read_jitter, self.write_latency = read_latency, read_jitter, write_latency
        self.reorder, self.interleave, self.full_width_incr = reorder, interleave, full_width_incr
        # drawn from ``random`` only when needed, so adding a memory does not shift seeded runs
        self.rng = rng or (random.Random(random.getrandbits(32)) if reorder or read_jitter else None)
        self.log = logging.getLogger(f"cocotb.axi_mem.{name or 'axi'}")
        self.log.setLevel(logging.WARNING)

        self.aw_channel = AxiAWSink(bus.write.aw, clock, reset, reset_active_level)
        self.w_channel = AxiWSink(bus.write.w, clock, reset, reset_active_level)
        self.b_channel = AxiBSource(bus.write.b, clock, reset, reset_active_level)
        self.ar_channel = AxiARSink(bus.read.ar, clock, reset, reset_active_level)
        self.r_channel = AxiRSource(bus.read.r, clock, reset, reset_active_level)
        for ch in self.channels:
            ch.queue_occupancy_limit = 2        # as AxiRam's
        self.read_depth = read_depth
        self.byte_lanes = len(bus.write.w.wdata) // 8
        self.strb_mask = (1 << self.byte_lanes) - 1
        self.has_wstrb = hasattr(bus.write.w, "wstrb")
        if stall:
            # one generator per channel, created in AXI channel order (keeps seeded runs stable)
            for ch in self.channels:
                ch.set_pause_generator(random_pause(stall, rng))

        self.errors = []          # ErrorRange(lo, hi, resp): bus addresses [lo, hi)
        self.guards = []          # GuardRange(lo, hi, label)
        self.guard_hits = []      # (first guard byte written, label)
        self.read_bursts = []     # (address, beats) per accepted AR
        self.write_bursts = []    # (address, beats) per accepted AW
        self.r_beats = 0          # R beats sent
        self.r_order = []         # (rid, rlast) per R beat, with reorder=True only

        self._reads = collections.deque()
        self._outstanding = 0     # read bursts taken from the AR queue, not yet fully answered
        self._bq = collections.deque()
        self._now = 0
        self._tasks = []
        self._in_reset = True
        if reset is not None:
            cocotb.start_soon(self._watch_reset(reset, bool(reset_active_level)))
        self._set_reset(False)
        cocotb.start_soon(self._count())

    # ------------------------------------------------------------------ configuration
    @property
    def channels(self):
        """The five channel objects ``(aw, w, b, ar, r)`` (for pause generators)."""
        return (self.aw_channel, self.w_channel, self.b_channel, self.ar_channel, self.r_channel)

    def set_pause_generators(self, make):
        """``make()`` returns a fresh pause generator per channel (``None``: no pauses)."""
        for ch in self.channels:
            ch.set_pause_generator(make())

    def inject_error(self, lo, hi=None, resp=AxiResp.SLVERR):
        """Answer ``resp`` (SLVERR or DECERR) for accesses touching bus addresses ``[lo, hi)``
        (``hi`` default ``lo + 1``)."""
        hi = lo + 1 if hi is None else hi
        if resp not in (AxiResp.SLVERR, AxiResp.DECERR) or not lo < hi:
            raise ValueError(f"error range [{lo:#x}, {hi:#x}) with response {resp!r}")
        self.errors.append(ErrorRange(lo, hi, AxiResp(resp)))

    def clear_errors(self):
        self.errors.clear()

    def add_guard(self, lo, hi, label=""):
        """Bytes ``[lo, hi)`` (bus addresses) must never be written."""
        if not lo < hi:
            raise ValueError(f"empty guard range [{lo:#x}, {hi:#x})")
        self.guards.append(GuardRange(lo, hi, label))

    def clear_guards(self):
        self.guards.clear()
        self.guard_hits.clear()

    def check_guards(self):
        """Fail naming the first guard byte written, if any was."""
        if self.guard_hits:
            addr, label = self.guard_hits[0]
            raise AssertionError(f"{len(self.guard_hits)} write(s) into guard regions, first at {addr:#x}"
                                 + (f" ({label})" if label else ""))

    # ------------------------------------------------------------------ golden checking
    @property
    def image(self):
        """Live ``uint8`` numpy view of the whole memory (writes to it change the memory)."""
        return np.frombuffer(self.mem, np.uint8)

    def load(self, address, data):
        """Write ``data`` at bus ``address`` from the testbench (no AXI traffic)."""
        self.image[address - self.base:address - self.base + len(data)] = np.frombuffer(bytes(data), np.uint8)

    def dump(self, address, length):
        return bytes(self.mem[address - self.base:address - self.base + length])

    def compare(self, expected, address=None, *, what="memory", ignore=()):
        """Fail unless the memory from ``address`` (default ``base``) equals ``expected`` byte for
        byte; ``ignore`` lists bus ranges ``(lo, hi)`` left out (e.g. a status word checked
        separately)."""
        address = self.base if address is None else address
        want = _u8(expected)
        got = self.image[address - self.base:address - self.base + len(want)]
        if ignore:
            got, want = got.copy(), want.copy()
            for lo, hi in ignore:
                lo, hi = max(lo - address, 0), max(hi - address, 0)
                got[lo:hi] = want[lo:hi]
        problem = compare_bytes(got, want, base=address, what=what)
        if problem:
            raise AssertionError(problem)

    # ------------------------------------------------------------------ reset and time
    async def _count(self):
        while True:
            await RisingEdge(self.clock)
            self._now += 1

    async def _watch_reset(self, signal, active_level):
        while True:
            await signal.value_change
            try:
                level = bool(int(signal.value))
            except ValueError:
                continue
            self._set_reset(level == active_level)

    def _set_reset(self, state):
        if state == self._in_reset:
            return
        self._in_reset = state
        if state:
            for task in self._tasks:
                task.cancel()
            self._tasks = []
            for ch in self.channels:
                ch.clear()
            self._reads.clear()
            self._outstanding = 0
            self._bq.clear()
        else:
            serve = self._serve_reordered if self.reorder else self._serve_in_order
            self._tasks = [cocotb.start_soon(self._process_writes()),
                           cocotb.start_soon(self._accept_reads()), cocotb.start_soon(serve())]
            if self.write_latency:
                self._tasks.append(cocotb.start_soon(self._serve_b()))

    # ------------------------------------------------------------------ access checks
    def _fault(self, address, length):
        """The error response owed to an access of ``[address, address + length)``, or None."""
        if address < self.base or address + length > self.base + self.size:
            return AxiResp.DECERR
        for lo, hi, resp in self.errors:
            if address < hi and lo < address + length:
                return resp
        return None

    def _check_burst(self, kind, addr, length, size, burst):
        nbytes = 1 << size
        assert nbytes <= self.byte_lanes, f"{kind} burst at {addr:#x}: size {nbytes} bytes > bus width"
        if self.full_width_incr:
            assert nbytes == self.byte_lanes and burst == AxiBurstType.INCR, \
                f"{kind} burst at {addr:#x}: size {nbytes}, burst {burst!r}; only full-width INCR expected"
        if burst == AxiBurstType.INCR:
            start = addr // nbytes * nbytes
            assert 0x1000 - (start & 0xFFF) >= nbytes * length, \
                f"{kind} burst {addr:#x}+{length} beats crosses 4 KiB"
        elif burst == AxiBurstType.WRAP:
            assert length in (2, 4, 8, 16) and addr % nbytes == 0, f"{kind} WRAP burst {addr:#x}+{length}"
        else:
            assert burst == AxiBurstType.FIXED, f"{kind} burst at {addr:#x}: reserved burst type"

    # ------------------------------------------------------------------ write side
    async def _process_writes(self):
        lanes = self.byte_lanes
        while True:
            aw = await self.aw_channel.recv()
            awid, addr, length = int(aw.awid), int(aw.awaddr), int(aw.awlen) + 1
            size, kind = int(aw.awsize), AxiBurstType(int(aw.awburst))
            self._check_burst("write", addr, length, size, kind)
            self.write_bursts.append((addr, length))
            burst = _Burst(awid, addr, length, size, kind, 0)
            resp = AxiResp.OKAY
            for n in range(length):
                w = await self.w_channel.recv()
                word = burst.address(n) // lanes * lanes
                data = int(w.wdata).to_bytes(lanes, "little")
                strb = int(w.wstrb) if self.has_wstrb else self.strb_mask
                for lo, hi in _strobe_runs(strb, lanes):
                    fault = self._fault(word + lo, hi - lo)
                    if fault is not None:
                        resp = fault if resp == AxiResp.OKAY else resp
                        break       # as AxiRam: the rest of this beat is dropped, later beats land
                    self._guard(word + lo, hi - lo)
                    await self.region.write(word + lo - self.base, data[lo:hi])
                assert int(w.wlast) == (n == length - 1), \
                    f"write burst {addr:#x}+{length}: wlast {int(w.wlast)} on beat {n}"
            b = AxiBTransaction(bid=awid, bresp=resp)
            if self.write_latency:
                self._bq.append((self._now + self.write_latency, b))
            else:
                await self.b_channel.send(b)

    async def _serve_b(self):
        while True:
            while not self._bq:
                await RisingEdge(self.clock)
            due, b = self._bq.popleft()
            if due > self._now:
                await ClockCycles(self.clock, due - self._now)
            await self.b_channel.send(b)

    def _guard(self, address, length):
        for lo, hi, label in self.guards:
            if address < hi and lo < address + length:
                self.guard_hits.append((max(address, lo), label))
                self.log.error("write into guard region %s at %#x", label, max(address, lo))

    # ------------------------------------------------------------------ read side
    async def _accept_reads(self):
        while True:
            while self._outstanding >= self.read_depth:
                await RisingEdge(self.clock)
            ar = await self.ar_channel.recv()
            self._outstanding += 1
            arid, addr, length = int(ar.arid), int(ar.araddr), int(ar.arlen) + 1
            size, kind = int(ar.arsize), AxiBurstType(int(ar.arburst))
            self._check_burst("read", addr, length, size, kind)
            self.read_bursts.append((addr, length))
            jitter = self.rng.randint(0, self.read_jitter) if self.read_jitter else 0
            self._reads.append(_Burst(arid, addr, length, size, kind, self._now + self.read_latency + jitter))

    async def _beat(self, b):
        """The R transaction of ``b``'s next beat (and advance it)."""
        lanes = self.byte_lanes
        word = b.address(b.beat) // lanes * lanes
        resp = self._fault(word, lanes)
        data = bytes(lanes) if resp is not None else await self.region.read(word - self.base, lanes)
        b.beat += 1
        return AxiRTransaction(rid=b.id, rdata=int.from_bytes(data, "little"), rlast=b.beat == b.length,
                               rresp=AxiResp.OKAY if resp is None else resp)

    async def _serve_in_order(self):
        while True:
            while not self._reads:
                await RisingEdge(self.clock)
            b = self._reads.popleft()
            if b.due > self._now:
                await ClockCycles(self.clock, b.due - self._now)
            for _ in range(b.length):
                await self.r_channel.send(await self._beat(b))
                self.r_beats += 1
            self._outstanding -= 1

    async def _serve_reordered(self):
        active = self._reads
        while True:
            seen, eligible = set(), []
            for b in active:      # the oldest burst of each ID only, once its latency has passed
                if b.id not in seen and b.due <= self._now:
                    eligible.append(b)
                seen.add(b.id)
            if not eligible:
                await RisingEdge(self.clock)
                continue
            b = self.rng.choice(eligible)
            for _ in range(1 if self.interleave else b.length):
                r = await self._beat(b)
                self.r_order.append((r.rid, r.rlast))
                await self.r_channel.send(r)
                self.r_beats += 1
            if b.beat == b.length:
                active.remove(b)
                self._outstanding -= 1
            if self.interleave:
                # at most one beat queued, so an AR accepted meanwhile can join in
                await RisingEdge(self.clock)
                while self.r_channel.count():
                    await RisingEdge(self.clock)


def _strobe_runs(strb, lanes):
    """``[(lo, hi)]`` byte-lane runs of set strobe bits (one write each, as AxiRam)."""
    runs, start = [], None
    for i in range(lanes + 1):
        on = i < lanes and strb >> i & 1
        if on and start is None:
            start = i
        elif not on and start is not None:
            runs.append((start, i))
            start = None
    return runs
