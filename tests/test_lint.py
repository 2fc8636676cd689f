"""Every registered block's Verilog passes `verilator --lint-only`, and `-Wall` with the
waivers of ``sim.elaborate.WALL_WAIVERS`` (the ones the README gives to users)."""

import os
import subprocess

import pytest

from scoville.sim.blocks import BLOCKS
from scoville.sim.elaborate import WALL_WAIVERS, elaborate
from scoville.sim.runner import setup_verilator_env


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


def test_readme_gives_the_wall_waivers():
    """The README's lint command is the one this test runs (a waiver added here must be documented)."""
    from pathlib import Path
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert f"verilator --lint-only -Wall {' '.join(WALL_WAIVERS)} FILE.v" in readme
