"""cocotb tests of ``rr_arbiter`` against a Python round-robin model, with bounded waiting."""

import random

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from .tb import TB, bench_args, write_bench_result


class RoundRobinModel:
    """Reference: the first requester after the last advanced winner, cyclically."""

    def __init__(self, n):
        self.n, self.last = n, n - 1

    def pick(self, requests):
        for offset in range(1, self.n + 1):
            idx = (self.last + offset) % self.n
            if requests >> idx & 1:
                return idx
        return None


async def _traffic(tb, cycles, load, advance_probability):
    """Random requests held until served; check every cycle's grant and the wait bound."""
    dut, n = tb.dut, tb.params["n"]
    model = RoundRobinModel(n)
    requests = 0
    waited = [0] * n   # advances granted to others while requester k waits
    worst = 0
    grants = 0
    for _ in range(cycles):
        await RisingEdge(dut.clk)
        for k in range(n):
            if not requests >> k & 1 and random.random() < load:
                requests |= 1 << k
        advance = int(random.random() < advance_probability)
        dut.requests.value = requests
        dut.advance.value = advance
        await ReadOnly()
        expected = model.pick(requests)
        valid, index, grant = int(dut.valid.value), int(dut.index.value), int(dut.grant.value)
        assert valid == (expected is not None), f"cycle {tb.cycle}: valid={valid} for requests {requests:#x}"
        if expected is None:
            assert grant == 0, f"cycle {tb.cycle}: grant {grant:#x} with no request"
            continue
        assert index == expected and grant == 1 << expected, (
            f"cycle {tb.cycle}: requests {requests:#x}, last winner {model.last}: "
            f"granted index {index} (grant {grant:#x}), expected {expected}")
        if advance:
            model.last = expected
            requests &= ~(1 << expected)
            grants += 1
            tb.watchdog.kick()
            waited[expected] = 0
            for k in range(n):
                if requests >> k & 1:
                    waited[k] += 1
                    worst = max(worst, waited[k])
            assert worst <= n - 1, f"cycle {tb.cycle}: a requester waited {worst} grants (bound {n - 1})"
    return grants, worst


@cocotb.test()
@cocotb.parametrize(load=[0.05, 0.5, 1.0], advance=[0.3, 1.0])
async def round_robin_order(dut, load, advance):
    """Grant matches the model every cycle; nobody waits more than n-1 grants."""
    tb = TB(dut)
    await tb.reset()
    await _traffic(tb, 2000, load, advance)


@cocotb.test()
async def reset_restores_priority(dut):
    """After reset requester 0 has the highest priority again."""
    tb = TB(dut)
    await tb.reset()
    await _traffic(tb, 37, 0.7, 1.0)
    await RisingEdge(dut.clk)   # leave the read-only phase _traffic ended in
    dut.requests.value = 0
    await tb.reset()
    dut.requests.value = (1 << tb.params["n"]) - 1
    dut.advance.value = 0
    await ReadOnly()
    assert int(dut.index.value) == 0, f"after reset granted {int(dut.index.value)}, expected 0"


@cocotb.test()
async def bench(dut):
    """``scoville bench rr_arbiter``: grants per cycle and the worst wait under random load."""
    args = bench_args()
    cycles, load = args.get("cycles", 10000), args.get("load", 50) / 100
    tb = TB(dut)
    await tb.reset()
    grants, worst = await _traffic(tb, cycles, load, 1.0)
    write_bench_result({"cycles": cycles, "grants": grants, "grants_per_cycle": round(grants / cycles, 4),
                        "max_wait_grants": worst, "wait_bound": tb.params["n"] - 1, "correct": True})
