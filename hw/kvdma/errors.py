"""The ``kvdma`` error latch: the first error of a descriptor wins and stops everything."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .links import ITEM_WIDTH, ErrorSignature


__all__ = ["ErrorLatch"]


class ErrorLatch(wiring.Component):
    """Holds the first error request of a descriptor until the control clears it.

    Latency: an error requested in cycle ``t`` is ``active`` from ``t + 1`` (every component
    stops issuing from then on). When several requests arrive in one cycle the lowest-numbered
    source wins. Requests while ``active`` are ignored.

    Parameters
    ----------
    addr_width : int
        Width of the faulting address.
    sources : int
        Number of requesters (priority order: source 0 first).

    Members
    -------
    i : In(ErrorSignature(addr_width)).array(sources)
        Error requests, one cycle each.
    clear : In(1)
        Drops ``active`` at the next edge (the descriptor is finished); a request in the same
        cycle is ignored.
    active : Out(1)
        An error is latched: the descriptor is being stopped.
    code, addr, item : Out(8), Out(addr_width), Out(32)
        The latched error (valid while ``active`` and until the next error).
    """

    def __init__(self, *, addr_width, sources):
        self._sources = sources
        super().__init__({
            "i": In(ErrorSignature(addr_width)).array(sources),
            "clear": In(1),
            "active": Out(1),
            "code": Out(8), "addr": Out(addr_width), "item": Out(ITEM_WIDTH),
        })

    def elaborate(self, platform):
        m = Module()
        with m.If(~self.active):
            # later statements win: the highest-priority request is assigned last
            for req in reversed(self.i):
                with m.If(req.valid):
                    m.d.sync += [self.active.eq(1), self.code.eq(req.code), self.addr.eq(req.addr),
                                 self.item.eq(req.item)]
        with m.Elif(self.clear):
            m.d.sync += self.active.eq(0)
        return m
