"""Shared testbench scaffolding: clock, reset, block parameters, checkers and bench output."""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from .stream import ProgressWatchdog, ProtocolChecker, StreamBus, StreamSink, StreamSource, \
    axi_channel_buses, make_pause, random_pause


__all__ = ["block_params", "bench_args", "write_bench_result", "TB"]

CLOCK_PERIOD_NS = 10


def block_params():
    """Parameters the DUT was elaborated with (set by :func:`sim.runner.run`)."""
    return json.loads(os.environ.get("SCOVILLE_PARAMS", "{}"))


def block_ports():
    """``{port: {"direction": "in"|"out", "width": n}}`` of the DUT's top level."""
    path = os.environ.get("SCOVILLE_PORTS")
    if not path:
        return {}
    with open(path) as handle:
        return json.load(handle)


def bench_args():
    """Extra arguments of a ``scoville bench`` run (``{}`` in ordinary tests)."""
    return json.loads(os.environ.get("SCOVILLE_BENCH_ARGS", "{}"))


def write_bench_result(result):
    """Hand a bench's JSON result to the CLI (no-op outside ``scoville bench``)."""
    path = os.environ.get("SCOVILLE_BENCH_OUT")
    if path:
        with open(path, "w") as handle:
            json.dump(result, handle)


class TB:
    """Owns the clock, reset, the progress watchdog and every protocol checker of one test.

    ``stall`` selects the pause generator given to sources and sinks made through
    :meth:`source`/:meth:`sink` (``"none"``, ``"periodic"`` or ``"random"``).
    """

    def __init__(self, dut, *, stall="random", timeout=2000):
        self.dut = dut
        self.clk = dut.clk
        self.rst = dut.rst
        self.params = block_params()
        self.stall = stall
        self.cycle = 0
        self.checkers = []
        self._drivers = []
        # Every input starts at 0: an undriven input is Z on Icarus (0 on Verilator), and a Z
        # captured into a register at the end of reset poisons the rest of the test.
        for port, info in block_ports().items():
            if info["direction"] == "in" and port != "clk":
                getattr(dut, port).value = 0
        # `rst` is added by Amaranth, not listed among the signature's ports: hold the design
        # in reset until reset() releases it, rather than leaving it Z (Icarus) until then.
        self.rst.value = 1
        cocotb.start_soon(Clock(self.clk, CLOCK_PERIOD_NS, unit="ns").start())
        cocotb.start_soon(self._count_cycles())
        self.watchdog = ProgressWatchdog(self.clk, timeout, pending=self._pending)

    async def _count_cycles(self):
        while True:
            await RisingEdge(self.clk)
            self.cycle += 1

    def _pending(self):
        busy = [d.bus.name for d in self._drivers if getattr(d, "busy", False)]
        return ", ".join(busy) if busy else getattr(self, "expecting", None)

    async def reset(self, cycles=2):
        self.rst.value = 1
        await ClockCycles(self.clk, cycles)
        self.rst.value = 0
        await RisingEdge(self.clk)

    def check(self, bus):
        """Attach a :class:`ProtocolChecker` to ``bus`` and return the bus."""
        self.checkers.append(ProtocolChecker(bus, self.clk, self.rst, self.watchdog))
        return bus

    def check_axi(self, prefix):
        """Attach checkers to every channel of the AXI4/AXI4-Lite bus ``prefix``."""
        buses = axi_channel_buses(self.dut, prefix)
        for bus in buses.values():
            self.check(bus)
        return buses

    def _pause(self):
        return make_pause(self.stall) if self.stall != "random" else random_pause()

    def source(self, bus):
        """A checked :class:`StreamSource` on ``bus`` with this test's stall pattern."""
        driver = StreamSource(self.check(bus), self.clk, self._pause(), self.watchdog)
        self._drivers.append(driver)
        return driver

    def sink(self, bus):
        """A checked :class:`StreamSink` on ``bus`` with this test's stall pattern."""
        driver = StreamSink(self.check(bus), self.clk, self._pause(), self.watchdog)
        self._drivers.append(driver)
        return driver

    def stream(self, prefix):
        return StreamBus.amaranth(self.dut, prefix)
