"""Simulation tops of the shared AXI parts (``axi_id``, ``axi_width``; the deliverables are in
``hw/axi_*.py``)."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from ..axi import AXI4Signature
from ..axi_id import AXIIDAdapter, axi_id_adapter
from ..axi_width import axi_width_adapter


__all__ = ["Clocked", "axi_id_top", "WithSubordinateID", "axi_width_top"]


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
    """The ``axi_id`` block's simulation top: the adapter inside :class:`Clocked`, and with a
    1-bit ``m_axi`` ID (:class:`WithSubordinateID`) when it narrows to no ID at all."""
    adapter = axi_id_adapter(**params)
    return Clocked(part=WithSubordinateID(part=adapter) if params["m_id_width"] == 0 else adapter)


class WithSubordinateID(wiring.Component):
    """``part`` (a width adapter, an ID adapter to 0 bits) with a 1-bit (always zero) ID on its
    ID-less ``m_axi``, added by an
    :class:`~scoville.hw.axi_id.AXIIDAdapter` (zero-extension, no logic): AXI VIP needs ID
    ports. Timing: the adapter's.

    Members
    -------
    s_axi : In(AXI4Signature)
        The part's manager port.
    m_axi : Out(AXI4Signature(id_width=1))
        The part's subordinate port with ``AWID``/``ARID`` = 0.
    """

    def __init__(self, *, part):
        self._adapter = adapter = part
        sig = adapter.m_axi.signature
        self._ids = AXIIDAdapter(addr_width=sig.addr_width, data_width=sig.data_width, s_id_width=0,
                                 m_id_width=1)
        super().__init__({"s_axi": adapter.signature.members["s_axi"],
                          "m_axi": Out(AXI4Signature(addr_width=sig.addr_width, data_width=sig.data_width,
                                                     id_width=1))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.adapter, m.submodules.ids = self._adapter, self._ids
        wiring.connect(m, wiring.flipped(self.s_axi), self._adapter.s_axi)
        wiring.connect(m, self._adapter.m_axi, self._ids.s_axi)
        wiring.connect(m, self._ids.m_axi, wiring.flipped(self.m_axi))
        return m


def axi_width_top(**params):
    """The ``axi_width`` block's simulation top (:class:`WithSubordinateID`)."""
    return WithSubordinateID(part=axi_width_adapter(**params))
