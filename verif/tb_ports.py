"""Generic cocotb check for any block: after reset, no output port is X or Z."""

import cocotb
from cocotb.triggers import ClockCycles

from .tb import TB, block_ports


@cocotb.test()
async def outputs_resolved_after_reset(dut):
    tb = TB(dut)
    await tb.reset()
    await ClockCycles(dut.clk, 2)
    unresolved = [f"{port}={getattr(dut, port).value}" for port, info in block_ports().items()
                  if info["direction"] == "out" and not getattr(dut, port).value.is_resolvable]
    assert not unresolved, f"outputs X/Z after reset: {', '.join(unresolved)}"
