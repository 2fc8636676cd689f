"""Simulation tops of the shared AXI parts (``axi_id``; the deliverables are in ``hw/axi_*.py``)."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from ..axi_id import axi_id_adapter


__all__ = ["Clocked", "axi_id_top"]


class Clocked(wiring.Component):
    """``part``'s ports unchanged, plus ``clk``/``rst`` for a testbench: a part with no
    register (the widening ID adapter) elaborates without them, so the top adds a free-running
    ``heartbeat`` toggle flip-flop. No logic between the ports and ``part``.

    Members
    -------
    (every member of ``part``)
        Connected straight through.
    heartbeat : Out(1)
        Toggles every cycle out of reset.
    """

    def __init__(self, *, part):
        self._part = part
        if "heartbeat" in part.signature.members:
            raise ValueError("part: already has a member named 'heartbeat'")
        super().__init__({**part.signature.members, "heartbeat": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.part = part = self._part
        for name in part.signature.members:
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(part, name))
        m.d.sync += self.heartbeat.eq(~self.heartbeat)
        return m


def axi_id_top(**params):
    """The ``axi_id`` block's simulation top: the adapter inside :class:`Clocked`."""
    return Clocked(part=axi_id_adapter(**params))
