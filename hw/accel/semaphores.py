"""Counting semaphores shared by the tiles: the SIGNAL/WAIT instructions' storage.

A bank of :data:`~.isa.SEMAPHORES` 16-bit counters with one post port and one take port per
client (a tile's sequencer). ``post`` adds its ``count`` (saturating at 65535); ``take`` is
accepted only in a cycle where the counter holds at least ``count`` and then subtracts it, so a
take is atomic: two clients waiting on one semaphore never both take the same units. Requests
are served one per cycle in round-robin order over ``2 * clients`` requesters (every post and
take port), so a waiting take cannot starve a post.

Latency: a post handshakes in the cycle it is granted (at most ``2 * clients - 1`` cycles after
``valid`` when every port is busy) and is visible to takes in the next cycle. Throughput: one
post or take per cycle for the whole bank.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arbiter import RoundRobinArbiter
from ..params import check_int
from .isa import SEMAPHORES


__all__ = ["SemRequest", "SemaphoreBank"]

#: A post or take request: semaphore index and count.
SemRequest = data.StructLayout({"sem": range(SEMAPHORES), "count": 8})


class SemaphoreBank(wiring.Component):
    """``clients`` pairs of ports ``post<k>``/``take<k>`` (``In(stream.Signature(SemRequest))``)
    onto :data:`~.isa.SEMAPHORES` counters; ``value<k>`` shows counter ``k`` (for CSRs and
    tests). A ``reset_all`` pulse clears every counter (a new launch starts from 0)."""

    def __init__(self, *, clients):
        self._n = check_int("clients", clients, 1, 64)
        members = {"reset_all": In(1)}
        for k in range(clients):
            members[f"post{k}"] = In(stream.Signature(SemRequest))
            members[f"take{k}"] = In(stream.Signature(SemRequest))
        for s in range(SEMAPHORES):
            members[f"value{s}"] = Out(16)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        ports = [getattr(self, f"{kind}{k}") for k in range(self._n) for kind in ("post", "take")]
        counters = [getattr(self, f"value{s}") for s in range(SEMAPHORES)]
        m.submodules.arb = arb = RoundRobinArbiter(n=len(ports))

        # A take that cannot be satisfied now does not request: it cannot hold a grant that
        # a post it waits for needs.
        for i, port in enumerate(ports):
            is_take = i % 2 == 1
            value = Signal(16, name=f"sem_of_{i}")
            m.d.comb += value.eq(Mux(port.p.sem < SEMAPHORES,
                                     _select(counters, port.p.sem), 0))
            m.d.comb += arb.requests[i].eq(port.valid & (~is_take | (value >= port.p.count)))
            m.d.comb += port.ready.eq(arb.grant[i] & ~self.reset_all)
        m.d.comb += arb.advance.eq(arb.valid)

        with m.If(self.reset_all):
            for c in counters:
                m.d.sync += c.eq(0)
        with m.Elif(arb.valid):
            for i, port in enumerate(ports):
                with m.If(arb.grant[i]):
                    for s, c in enumerate(counters):
                        with m.If(port.p.sem == s):
                            if i % 2 == 0:
                                total = c + port.p.count
                                m.d.sync += c.eq(Mux(total > 0xFFFF, 0xFFFF, total))
                            else:
                                m.d.sync += c.eq(c - port.p.count)
        return m


def _select(values, index):
    out = values[0]
    for s, v in enumerate(values[1:], 1):
        out = Mux(index == s, v, out)
    return out
