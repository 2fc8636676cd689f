"""The verification kit can fail: the skid buffer's testbench run against broken designs must
report the protocol violation, the lost data or the stall, not pass."""

from dataclasses import dataclass

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from scoville.hw.skid_buffer import SkidBuffer, SkidBufferParams
from scoville.hw.params import Params
from scoville.sim.blocks import BLOCKS, Block
from scoville.sim.runner import SimulationFailed, run
from scoville.verif.formal import DroppingSkidBuffer


class StuckSkidBuffer(SkidBuffer):
    """Broken on purpose: never ready, never valid."""

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.o.valid.eq(0)      # keeps a clock domain, as the real block has
        return m


def _broken_block(name, cls):
    return Block(name, "deliberately broken skid buffer", SkidBufferParams, lambda width: cls(shape=width),
                 "scoville.verif.tb_skid_buffer", status="test-only")


def test_checker_catches_unstable_payload():
    block = _broken_block("skid_buffer_dropping", DroppingSkidBuffer)
    with pytest.raises(SimulationFailed) as failure:
        run(block, {"width": 8}, module="scoville.verif.tb_skid_buffer", testcase=r"stream_integrity/stall=random")
    message = str(failure.value)
    assert "o_payload changed while valid and not ready" in message or "o: payload changed" in message, message


def test_watchdog_catches_a_stall():
    block = _broken_block("skid_buffer_stuck", StuckSkidBuffer)
    with pytest.raises(SimulationFailed) as failure:
        run(block, {"width": 8}, module="scoville.verif.tb_skid_buffer", testcase=r"stream_integrity/stall=none")
    assert "watchdog: no progress" in str(failure.value), str(failure.value)


@dataclass(frozen=True)
class IdleParams(Params):
    pass


class IdleCombinational(wiring.Component):
    """An output decoded from a register that never changes after its initial value: exactly
    the logic Icarus leaves at X unless the time-0 trigger of the Verilog backend fires."""

    o: Out(4)

    def elaborate(self, platform):
        m = Module()
        state = Signal(2, init=1)
        m.d.sync += state.eq(state)
        with m.Switch(state):
            with m.Case(1):
                m.d.comb += self.o.eq(0b1010)
            with m.Default():
                m.d.comb += self.o.eq(0b0101)
        return m


@pytest.mark.parametrize("name", ["idle_comb", "skid_buffer", "rr_arbiter", "csr"])
def test_outputs_resolved_after_reset(sim, name):
    if name == "idle_comb":
        block = Block(name, "idle combinational decode", IdleParams, lambda: IdleCombinational(),
                      "scoville.verif.tb_ports", status="test-only")
        params = {}
    else:
        block = BLOCKS[name]
        params = block.configure().as_dict()
    run(block, params, module="scoville.verif.tb_ports", sim=sim)


@pytest.mark.icarus
def test_waveforms_are_listed_in_pytest_summary(icarus):
    """WAVES=1: each test's waveform file (FST on Icarus) is named in pytest's summary without
    -s, and holds a trace."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
                             "tests/test_skid_buffer.py::test_skid_buffer[icarus-8]"],
                            cwd=Path(__file__).parent.parent, env={**os.environ, "WAVES": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
    lines = [l for l in result.stdout.splitlines() if l.startswith("tests/test_skid_buffer.py::") and ": /" in l]
    assert lines, result.stdout[-3000:]
    wave = Path(lines[0].split(": ", 1)[1])
    assert wave.suffix == ".fst" and wave.stat().st_size > 100, wave
