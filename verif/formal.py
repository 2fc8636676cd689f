"""Formal checks of the small shared blocks with ``yowasp-sby`` (SymbiYosys) and yices.

Each check is a harness around the block: free inputs (sby chooses them every cycle), ``Assume``
for what the environment promises (the valid/ready rules on inputs, requests held until served)
and ``Assert`` for what the block promises. Every check has a deliberately broken variant of
the block that it must reject; ``tests/test_formal.py`` asserts both outcomes, so a check that
has stopped being able to fail is noticed.

The checks run through :func:`scoville.sim.formal.run_check`.
"""

from amaranth.hdl import Assert, Assume, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from scoville.hw.arbiter import RoundRobinArbiter
from scoville.hw.skid_buffer import SkidBuffer


__all__ = ["SkidBufferHarness", "ArbiterHarness", "DroppingSkidBuffer", "FixedPriorityArbiter",
           "CHECKS"]


class SkidBufferHarness(wiring.Component):
    """Skid buffer properties: output protocol, in-order lossless delivery, no bubble.

    The input stream is assumed to carry the running count of accepted beats, so the output
    must carry the running count of delivered beats: any loss, duplication or reordering breaks
    ``o.payload == delivered``.
    """

    WIDTH = 6

    def __init__(self, dut_class=SkidBuffer):
        self._dut = dut_class(shape=self.WIDTH)
        super().__init__({"i_valid": In(1), "i_payload": In(self.WIDTH), "o_ready": In(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self._dut
        m.d.comb += [dut.i.valid.eq(self.i_valid), dut.i.payload.eq(self.i_payload),
                     dut.o.ready.eq(self.o_ready)]
        accepted = Signal(self.WIDTH)
        delivered = Signal(self.WIDTH)
        in_stalled = Signal()      # previous cycle: i.valid & ~i.ready
        out_stalled = Signal()     # previous cycle: o.valid & ~o.ready
        prev_o_payload = Signal(self.WIDTH)
        prev_o_ready = Signal()
        m.d.sync += [in_stalled.eq(dut.i.valid & ~dut.i.ready),
                     out_stalled.eq(dut.o.valid & ~dut.o.ready),
                     prev_o_payload.eq(dut.o.payload), prev_o_ready.eq(dut.o.ready)]
        with m.If(dut.i.valid & dut.i.ready):
            m.d.sync += accepted.eq(accepted + 1)
        with m.If(dut.o.valid & dut.o.ready):
            m.d.sync += delivered.eq(delivered + 1)

        # Environment: a well-behaved producer counting its beats.
        m.d.comb += Assume(~dut.i.valid | (dut.i.payload == accepted))
        with m.If(in_stalled):
            m.d.comb += Assume(dut.i.valid)

        # Block: valid/ready rules on the output, ordered lossless delivery, no bubble.
        with m.If(out_stalled):
            m.d.comb += Assert(dut.o.valid & (dut.o.payload == prev_o_payload))
        with m.If(dut.o.valid):
            m.d.comb += Assert(dut.o.payload == delivered)
        m.d.comb += Assert((accepted - delivered)[:self.WIDTH] <= 2)
        with m.If(prev_o_ready):
            m.d.comb += Assert(dut.i.ready)
        return m


class ArbiterHarness(wiring.Component):
    """Round-robin properties: one-hot grant to a requester, bounded waiting of ``n - 1``."""

    N = 4

    def __init__(self, dut_class=RoundRobinArbiter):
        self._dut = dut_class(n=self.N)
        super().__init__({"requests": In(self.N), "advance": In(1)})

    def elaborate(self, platform):
        m = Module()
        n = self.N
        m.submodules.dut = dut = self._dut
        m.d.comb += [dut.requests.eq(self.requests), dut.advance.eq(self.advance)]
        served = Signal(n)
        m.d.comb += served.eq(dut.grant & (dut.advance.replicate(n)))
        pending = Signal(n)        # previous cycle: requested and not served
        m.d.sync += pending.eq(dut.requests & ~served)
        # Environment: a request stays up until it is served.
        m.d.comb += Assume((pending & ~dut.requests) == 0)

        m.d.comb += Assert(dut.valid == dut.requests.any())
        m.d.comb += Assert((dut.grant & ~dut.requests) == 0)
        m.d.comb += Assert((dut.grant & (dut.grant - 1)) == 0)        # at most one bit
        with m.If(dut.valid):
            m.d.comb += Assert(dut.grant.any())
        for k in range(n):
            waited = Signal(range(n + 2), name=f"waited{k}")
            with m.If(served[k] | ~dut.requests[k]):
                m.d.sync += waited.eq(0)
            with m.Elif(served.any() & (waited < n + 1)):
                m.d.sync += waited.eq(waited + 1)
            m.d.comb += Assert(waited <= n - 1)
        return m


class DroppingSkidBuffer(SkidBuffer):
    """Broken on purpose: a single register that always claims ``ready``, so a beat arriving
    while the output is stalled overwrites the held one."""

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(1)
        with m.If(self.i.valid | self.o.ready):
            m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload)]
        return m


class FixedPriorityArbiter(RoundRobinArbiter):
    """Broken on purpose: the lowest index always wins, so a busy requester 0 starves others."""

    def elaborate(self, platform):
        m = Module()
        for idx in reversed(range(self.n)):
            with m.If(self.requests[idx]):
                m.d.comb += self.index.eq(idx)
        m.d.comb += self.valid.eq(self.requests.any())
        for idx in range(self.n):
            m.d.comb += self.grant[idx].eq(self.valid & (self.index == idx))
        return m


# name -> (harness factory, sby mode, depth)
CHECKS = {
    "skid_buffer": (lambda: SkidBufferHarness(), "bmc", 24),
    "skid_buffer_broken": (lambda: SkidBufferHarness(DroppingSkidBuffer), "bmc", 24),
    "rr_arbiter": (lambda: ArbiterHarness(), "bmc", 20),
    "rr_arbiter_broken": (lambda: ArbiterHarness(FixedPriorityArbiter), "bmc", 20),
}
