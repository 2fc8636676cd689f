"""The verification kit can fail: the skid buffer's testbench run against broken designs must
report the protocol violation, the lost data or the stall, not pass."""

import pytest
from amaranth.hdl import Module

from hw.skid_buffer import SkidBuffer, SkidBufferParams
from sim.blocks import Block
from sim.runner import SimulationFailed, run
from verif.formal import DroppingSkidBuffer


class StuckSkidBuffer(SkidBuffer):
    """Broken on purpose: never ready, never valid."""

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.o.valid.eq(0)      # keeps a clock domain, as the real block has
        return m


def _broken_block(name, cls):
    return Block(name, "deliberately broken skid buffer", SkidBufferParams, lambda width: cls(width),
                 "verif.tb_skid_buffer", status="test-only")


def test_checker_catches_unstable_payload():
    block = _broken_block("skid_buffer_dropping", DroppingSkidBuffer)
    with pytest.raises(SimulationFailed) as failure:
        run(block, {"width": 8}, module="verif.tb_skid_buffer", testcase=r"stream_integrity/stall=random")
    message = str(failure.value)
    assert "o_payload changed while valid and not ready" in message or "o: payload changed" in message, message


def test_watchdog_catches_a_stall():
    block = _broken_block("skid_buffer_stuck", StuckSkidBuffer)
    with pytest.raises(SimulationFailed) as failure:
        run(block, {"width": 8}, module="verif.tb_skid_buffer", testcase=r"stream_integrity/stall=none")
    assert "watchdog: no progress" in str(failure.value), str(failure.value)
