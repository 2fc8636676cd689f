"""cocotb tests of ``skid_buffer``: order and integrity under stalls, full throughput, reset."""

import random

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from .tb import TB, bench_args, write_bench_result


def _items(tb, count):
    return [random.getrandbits(tb.params["width"]) for _ in range(count)]


async def _transfer(tb, count):
    source, sink = tb.source(tb.stream("i")), tb.sink(tb.stream("o"))
    items = _items(tb, count)
    source.extend(items)
    start = tb.cycle
    await sink.wait_for(count)
    return items, sink.items, tb.cycle - start


@cocotb.test()
@cocotb.parametrize(stall=["none", "periodic", "random"])
async def stream_integrity(dut, stall):
    """Every beat comes out once, in order, intact, whatever the stalls on both sides."""
    tb = TB(dut, stall=stall)
    await tb.reset()
    sent, got, _ = await _transfer(tb, 500)
    assert got == sent, f"first mismatch at beat {next(i for i, (a, b) in enumerate(zip(sent, got)) if a != b)}"
    await ClockCycles(dut.clk, 5)
    assert int(dut.o_valid.value) == 0, "o_valid high with no beat left (duplicated beat)"


@cocotb.test()
async def full_throughput(dut):
    """No stalls: N beats take N + 1 cycles from first valid to last transfer (latency 1)."""
    tb = TB(dut, stall="none")
    await tb.reset()
    sent, got, cycles = await _transfer(tb, 200)
    assert got == sent
    # One edge for the source to raise valid, one cycle of latency, one edge for the sink to
    # sample: N beats at one per cycle take exactly N + 3 cycles end to end.
    assert cycles == 200 + 3, f"{cycles} cycles for 200 beats; expected 203 (1 beat/cycle)"


@cocotb.test()
async def reset_mid_stream(dut):
    """Reset while both entries are full, then a fresh stream passes intact."""
    tb = TB(dut, stall="none")
    await tb.reset()
    dut.o_ready.value = 0
    dut.i_valid.value = 1
    dut.i_payload.value = 1
    await ClockCycles(dut.clk, 4)
    assert int(dut.i_ready.value) == 0, "i_ready high with both entries full"
    dut.i_valid.value = 0
    await tb.reset()
    assert int(dut.o_valid.value) == 0 and int(dut.i_ready.value) == 1, "state survived reset"
    sent, got, _ = await _transfer(tb, 100)
    assert got == sent


@cocotb.test()
async def bench(dut):
    """``scoville bench skid_buffer``: throughput under the requested stall pattern."""
    args = bench_args()
    beats = args.get("beats", 10000)
    tb = TB(dut, stall=args.get("stall", "random"))
    await tb.reset()
    sent, got, cycles = await _transfer(tb, beats)
    write_bench_result({"beats": beats, "cycles": cycles, "beats_per_cycle": round(beats / cycles, 4),
                        "stall": tb.stall, "correct": got == sent})
    assert got == sent
