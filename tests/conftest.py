"""Shared pytest helpers: simulator selection and running a block's cocotb tests."""

import os

import pytest

from scoville.sim.blocks import get_block
from scoville.sim.runner import run, simulator_available


def _icarus_gate():
    """Icarus is optional for users (skip, saying why) but mandatory in CI (fail)."""
    if simulator_available("icarus"):
        return
    message = "Icarus Verilog (iverilog) is not installed; apt-get install iverilog to run these tests"
    if os.environ.get("CI") or os.environ.get("SCOVILLE_REQUIRE_ICARUS"):
        pytest.fail(message + " (required in CI)")
    pytest.skip(message)


@pytest.fixture(params=["verilator", pytest.param("icarus", marks=pytest.mark.icarus)])
def sim(request):
    """Run the test on Verilator and on Icarus."""
    if request.param == "icarus":
        _icarus_gate()
    return request.param


@pytest.fixture
def icarus():
    """For tests that run on Icarus only (a representative subset of a Verilator matrix)."""
    _icarus_gate()
    return "icarus"


def run_block(block_name, params, module, *, sim="verilator", testcase=None, seed=None, env=None,
              fast_compile=False):
    """Run cocotb ``module`` against block ``block_name`` elaborated with ``params``
    (``fast_compile``: Verilator model built at -O0, see :func:`sim.runner.build`)."""
    block = get_block(block_name)
    full = block.configure(**params).as_dict()
    return run(block, full, module=module, sim=sim, testcase=testcase, seed=seed, env=env,
               fast_compile=fast_compile)


# WAVES=1: every waveform a test wrote is listed in pytest's summary (no -s needed; works
# under xdist because the paths travel with the test report).
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    from scoville.sim import runner
    if call.when == "setup":
        item._scoville_waves_seen = len(runner.WAVEFORMS)
    outcome = yield
    if call.when == "call":
        report = outcome.get_result()
        for wave in runner.WAVEFORMS[getattr(item, "_scoville_waves_seen", 0):]:
            report.user_properties.append(("waveform", str(wave)))


def pytest_terminal_summary(terminalreporter):
    waves = [(r.nodeid, value) for reports in terminalreporter.stats.values() for r in reports
             if getattr(r, "when", None) == "call"
             for key, value in getattr(r, "user_properties", ()) if key == "waveform"]
    if waves:
        terminalreporter.section("waveforms (WAVES=1)")
        for nodeid, path in waves:
            terminalreporter.write_line(f"{nodeid}: {path}")
