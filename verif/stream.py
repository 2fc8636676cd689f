"""cocotb stream drivers, pause generators, the valid/ready protocol checker and a watchdog.

Every stream-like port in Scoville — an Amaranth ``lib.stream`` port (``i_valid``/``i_ready``/
``i_payload``), an AXI4-Stream port (``s_axis_tvalid``/``tready``/``tdata``/...), or one channel
of an AXI4 bus (``s_axi_awvalid``/``awready``/``awaddr``/...) — is described by a
:class:`StreamBus`, and the same source, sink and checker serve all of them.

Sampling convention (as cocotbext-axi): signals are read right after the rising clock edge
(``await RisingEdge``), where they still hold the values the design saw at that edge; a transfer
happened at that edge if ``valid`` and ``ready`` were both high.
"""

import collections
import itertools
import random

import cocotb
from cocotb.triggers import Event, RisingEdge

from scoville.hw.axi import AXI4_CHANNELS


__all__ = ["StreamBus", "no_pause", "periodic_pause", "random_pause", "make_pause",
           "StreamSource", "StreamSink", "ProtocolChecker", "ProgressWatchdog", "AXI_CHANNELS",
           "axi_channel_buses"]


def _value(handle):
    return int(handle.value)


class StreamBus:
    """Handles of one valid/ready interface: ``valid``, ``ready`` and named payload ``fields``."""

    def __init__(self, name, valid, ready, fields):
        self.name, self.valid, self.ready = name, valid, ready
        self.fields = dict(fields)

    @classmethod
    def amaranth(cls, dut, prefix):
        """An ``amaranth.lib.stream`` port elaborated with ``_`` separators (``i_payload``...)."""
        return cls(prefix, getattr(dut, f"{prefix}_valid"), getattr(dut, f"{prefix}_ready"),
                   {"payload": getattr(dut, f"{prefix}_payload")})

    @classmethod
    def axis(cls, dut, prefix):
        """An AXI4-Stream port: ``tdata`` plus whichever of ``tkeep tlast tid tdest tuser`` exist."""
        fields = {name: getattr(dut, f"{prefix}_{name}")
                  for name in ("tdata", "tkeep", "tlast", "tid", "tdest", "tuser")
                  if hasattr(dut, f"{prefix}_{name}")}
        return cls(prefix, getattr(dut, f"{prefix}_tvalid"), getattr(dut, f"{prefix}_tready"), fields)

    def sample(self):
        """Current payload as ``{field: int}`` (raises on X/Z, which a valid payload never is)."""
        return {name: _value(handle) for name, handle in self.fields.items()}

    def drive(self, item):
        """Drive ``item`` (an int for a single-field bus, else a dict of fields)."""
        if not isinstance(item, dict):
            (only,) = self.fields
            item = {only: item}
        for name, value in item.items():
            self.fields[name].value = value


# Payload fields of each AXI4 channel, manager's view (hw.axi's one list; AXI4-Lite's fields are
# a subset, and fields a bus lacks are skipped).
AXI_CHANNELS = AXI4_CHANNELS


def axi_channel_buses(dut, prefix):
    """One :class:`StreamBus` per AXI channel of the bus ``prefix`` (AXI4 or AXI4-Lite)."""
    buses = {}
    for ch, names in AXI_CHANNELS.items():
        fields = {n: getattr(dut, f"{prefix}_{ch}{n}") for n in names if hasattr(dut, f"{prefix}_{ch}{n}")}
        buses[ch] = StreamBus(f"{prefix}_{ch}", getattr(dut, f"{prefix}_{ch}valid"),
                              getattr(dut, f"{prefix}_{ch}ready"), fields)
    return buses


# Pause generators: infinite iterators of booleans, True meaning "hold off this cycle".

def no_pause():
    return itertools.repeat(False)


def periodic_pause(run=3, stall=1):
    """``run`` cycles active then ``stall`` cycles paused, repeated."""
    return itertools.cycle([False] * run + [True] * stall)


def random_pause(probability=0.3, rng=None):
    """Pause each cycle independently with ``probability`` (from the seeded ``random`` module)."""
    rng = rng or random.Random(random.getrandbits(32))
    while True:
        yield rng.random() < probability


def make_pause(kind, probability=0.3):
    """Pause generator by name: ``none``, ``periodic`` or ``random``."""
    return {"none": no_pause, "periodic": periodic_pause,
            "random": lambda: random_pause(probability)}[kind]()


class ProgressWatchdog:
    """Fails the test when nothing has made progress for ``timeout`` cycles while work is
    outstanding. Drivers and checkers call :meth:`kick` on every transfer; ``pending`` is a
    callable returning a description of the outstanding work, or a false value when idle."""

    def __init__(self, clock, timeout=1000, pending=lambda: "transfers"):
        self.clock, self.timeout, self.pending = clock, timeout, pending
        self.idle_cycles = 0
        self.cycle = 0
        self._task = cocotb.start_soon(self._run())

    def kick(self):
        self.idle_cycles = 0

    async def _run(self):
        edge = RisingEdge(self.clock)
        while True:
            await edge
            self.cycle += 1
            self.idle_cycles += 1
            if self.idle_cycles > self.timeout:
                what = self.pending()
                if what:
                    raise AssertionError(f"watchdog: no progress for {self.timeout} cycles at "
                                         f"cycle {self.cycle} while waiting for {what}")
                self.idle_cycles = 0

    def stop(self):
        self._task.cancel()


class ProtocolChecker:
    """Checks the valid/ready rules on one :class:`StreamBus` every clock edge.

    Once ``valid`` is high without ``ready``, ``valid`` must stay high and every payload field
    must keep its value until the transfer. ``valid`` and ``ready`` must never be X/Z outside
    reset. A violation raises immediately, naming the bus, the field, the cycle and the values.
    Counts transfers in :attr:`transfers` and kicks ``watchdog`` on each.
    """

    def __init__(self, bus, clock, reset=None, watchdog=None):
        self.bus, self.clock, self.reset, self.watchdog = bus, clock, reset, watchdog
        self.transfers = 0
        self.cycle = 0
        self._task = cocotb.start_soon(self._run())

    async def _run(self):
        edge = RisingEdge(self.clock)
        held = None  # payload of a pending (valid, not ready) beat
        while True:
            await edge
            self.cycle += 1
            if self.reset is not None and _value(self.reset):
                held = None
                continue
            try:
                valid, ready = _value(self.bus.valid), _value(self.bus.ready)
            except ValueError:
                raise AssertionError(f"{self.bus.name}: valid/ready is X or Z at cycle {self.cycle} "
                                     f"(valid={self.bus.valid.value}, ready={self.bus.ready.value})")
            if held is not None:
                if not valid:
                    raise AssertionError(f"{self.bus.name}: valid dropped at cycle {self.cycle} "
                                         "before the pending beat was accepted")
                now = self.bus.sample()
                for name, value in held.items():
                    if now[name] != value:
                        raise AssertionError(
                            f"{self.bus.name}: {name} changed while valid and not ready at cycle "
                            f"{self.cycle}: was {value:#x}, now {now[name]:#x}")
            if valid and ready:
                self.transfers += 1
                if self.watchdog is not None:
                    self.watchdog.kick()
                held = None
            elif valid:
                held = self.bus.sample() if held is None else held
            else:
                held = None

    def stop(self):
        self._task.cancel()


class StreamSource:
    """Drives items onto a :class:`StreamBus` in order, idling per its pause generator.

    A pause only delays the *next* beat: once ``valid`` is raised it is held with a stable
    payload until accepted, as the protocol requires.
    """

    def __init__(self, bus, clock, pause=None, watchdog=None):
        self.bus, self.clock, self.watchdog = bus, clock, watchdog
        self.pause = pause or no_pause()
        self.queue = collections.deque()
        self.sent = 0
        self._idle = Event()
        self._idle.set()
        self.bus.valid.value = 0
        self._task = cocotb.start_soon(self._run())

    def send_nowait(self, item):
        self.queue.append(item)
        self._idle.clear()

    def extend(self, items):
        for item in items:
            self.send_nowait(item)

    async def wait_idle(self):
        await self._idle.wait()

    @property
    def busy(self):
        return not self._idle.is_set()

    async def _run(self):
        edge = RisingEdge(self.clock)
        active = False
        while True:
            await edge
            if active and _value(self.bus.ready):
                active = False
                self.sent += 1
                if self.watchdog is not None:
                    self.watchdog.kick()
            if not active:
                if self.queue and not next(self.pause):
                    self.bus.drive(self.queue.popleft())
                    self.bus.valid.value = 1
                    active = True
                else:
                    self.bus.valid.value = 0
                    if not self.queue:
                        self._idle.set()

    def stop(self):
        self._task.cancel()
        self.bus.valid.value = 0


class StreamSink:
    """Accepts beats from a :class:`StreamBus`, driving ``ready`` from its pause generator,
    and stores each beat's payload (an int for single-field buses, else a dict) in ``items``."""

    def __init__(self, bus, clock, pause=None, watchdog=None):
        self.bus, self.clock, self.watchdog = bus, clock, watchdog
        self.pause = pause or no_pause()
        self.items = []
        self._single = len(bus.fields) == 1
        self._arrived = Event()
        self.bus.ready.value = 0
        self._task = cocotb.start_soon(self._run())

    async def _run(self):
        edge = RisingEdge(self.clock)
        while True:
            await edge
            if _value(self.bus.ready) and _value(self.bus.valid):
                beat = self.bus.sample()
                self.items.append(next(iter(beat.values())) if self._single else beat)
                if self.watchdog is not None:
                    self.watchdog.kick()
                self._arrived.set()
            self.bus.ready.value = 0 if next(self.pause) else 1

    async def wait_for(self, count):
        """Wait until ``count`` beats have arrived in total."""
        while len(self.items) < count:
            self._arrived.clear()
            await self._arrived.wait()

    def stop(self):
        self._task.cancel()
        self.bus.ready.value = 0
