"""Round-robin arbiter: one grant among ``n`` requesters, rotating priority."""

from dataclasses import dataclass

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .params import Params, check_int, param


__all__ = ["RoundRobinArbiterParams", "RoundRobinArbiter"]


@dataclass(frozen=True)
class RoundRobinArbiterParams(Params):
    """Parameters of the ``rr_arbiter`` block as seen from the CLI."""
    n: int = param(4, lo=1, hi=64, doc="number of requesters")


class RoundRobinArbiter(wiring.Component):
    """Round-robin arbiter with a hold-until-advance grant.

    The grant is combinational from ``requests`` and a registered priority pointer: the first
    requester after the last one that *advanced* (cyclically) wins. The grant stays on the same
    requester until ``advance`` is pulsed, so a multi-cycle transfer (a burst, a wormhole packet)
    can keep it; on ``advance`` the pointer moves past the winner, which then has the lowest
    priority. Fairness: a requester that keeps its request raised is granted after at most
    ``n - 1`` advances to others (checked formally in ``tests/test_formal.py``).

    Latency: grant is combinational (0 cycles) from ``requests``. Throughput: one grant per cycle
    when ``advance`` is held high. Logic depth: O(n) (a priority encoder over 2·n requests).

    Parameters
    ----------
    n : int
        Number of requesters, 1..64.

    Members
    -------
    requests : In(n)
        One bit per requester.
    grant : Out(n)
        One-hot grant (all zero when no request is raised).
    index : Out(range(n))
        Index of the granted requester (valid with ``valid``).
    valid : Out(1)
        Some requester is granted.
    advance : In(1)
        The granted requester is done: rotate priority past it at the next clock edge.
    last : Out(range(n))
        Registered index of the requester that advanced last (``n - 1`` after reset): the
        grant goes to the first requester after it, cyclically. Exposed so that logic which
        only needs the winner among a subset of the requesters (a crossbar column split into
        groups) can find it from the requests and this register, without waiting for ``index``.
    """

    def __init__(self, *, n):
        self._n = check_int("n", n, 1, 64)
        super().__init__({
            "requests": In(n),
            "grant": Out(n),
            "index": Out(range(max(n, 2))),
            "valid": Out(1),
            "advance": In(1),
            "last": Out(range(max(n, 2)), init=n - 1),
        })

    n = property(lambda self: self._n)

    def elaborate(self, platform):
        m = Module()
        n = self._n
        last = self.last  # index of the last winner

        # Requesters after the last winner have priority over those at or before it. Within
        # each group the lowest index wins; later assignments override earlier ones, so the
        # fallback group is assigned first.
        after_last = Signal(n)
        for idx in range(n):
            m.d.comb += after_last[idx].eq(self.requests[idx] & (last < idx))
        for group in (self.requests, after_last):
            for idx in reversed(range(n)):
                with m.If(group[idx]):
                    m.d.comb += self.index.eq(idx)
        m.d.comb += self.valid.eq(self.requests.any())
        for idx in range(n):
            m.d.comb += self.grant[idx].eq(self.valid & (self.index == idx))

        with m.If(self.valid & self.advance):
            m.d.sync += last.eq(self.index)
        return m
