"""Every registered block's Verilog passes `verilator --lint-only`, and `-Wall` with the
recorded waivers below."""

import os
import subprocess

import pytest

from scoville.sim.blocks import BLOCKS
from scoville.sim.elaborate import elaborate
from scoville.sim.runner import setup_verilator_env

# -Wall findings that are properties of Amaranth's output, not defects:
#  PROCASSINIT  - registers carry their reset value as a declaration initialiser (FPGA init);
#  UNUSEDSIGNAL - Amaranth keeps internal aliases of ports and unused slices of wide signals;
#  DECLFILENAME - one generated file may hold several modules.
WALL_WAIVERS = ["-Wno-PROCASSINIT", "-Wno-UNUSEDSIGNAL", "-Wno-DECLFILENAME"]

# Blocks whose default configuration takes minutes to elaborate are linted in a smaller one
# (a 2x2 mesh of corner routers; the 5-port interior router is linted as block noc_router).
LINT_PARAMS = {"noc": {"cols": 2, "rows": 2}}


def _lint(path, *extra):
    env = dict(os.environ)
    setup_verilator_env(env)
    return subprocess.run(["verilator", "--lint-only", *extra, str(path)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_verilog_lints(name):
    block = BLOCKS[name]
    path = elaborate(name, block.configure(**LINT_PARAMS.get(name, {})).as_dict(), block.factory)
    plain = _lint(path)
    assert plain.returncode == 0, f"verilator --lint-only {path}:\n{plain.stdout[-3000:]}"
    wall = _lint(path, "-Wall", *WALL_WAIVERS)
    assert wall.returncode == 0, f"verilator --lint-only -Wall (waivers {WALL_WAIVERS}) {path}:\n{wall.stdout[-3000:]}"
