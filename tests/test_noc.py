"""NoC mesh tests: golden-model traffic per mesh size, hardware-generator checks, bench targets.

One Verilator build per parameter set; every cocotb test selected for it runs on that build.
"""

import pytest

from conftest import run_block
from scoville.sim.blocks import get_block
from scoville.sim.noc_sweep import bench_point
from scoville.sim.runner import run


def run_noc(params, testcase, sim="verilator", seed=None, env=None):
    # -O0 Verilator builds with only the ports public: a mesh compiles several times faster
    # (see sim.runner._ports_only_args), and these tests are bound by Python or by the
    # hardware generators, not by the simulated logic's speed.
    block = get_block("noc")
    return run(block, block.configure(**params).as_dict(), module="scoville.verif.tb_noc", sim=sim,
               testcase=testcase, seed=seed, env=env, fast_compile=sim == "verilator",
               ports_only=True)


GOLDEN = r"\.(traffic|saturation|zero_load_latency|class_isolation|reset_mid_traffic)"
GENERATORS = r"\.(bench_patterns|bench_zero_load)"

# Two message classes on 2 VCs (one each), 32-bit flits, with the bench generators.
MESH_2X2 = dict(cols=2, rows=2, vcs=2, buffer=4, flit_width=32, classes=2)
# Non-square, YX routing, buffers below the credit round trip, no generators.
MESH_3X5 = dict(cols=3, rows=5, vcs=2, buffer=2, flit_width=28, routing="yx", traffic_gen=False)
# The bench configuration of the second target (2 VCs x 4 flits, 64-bit flits).
MESH_4X4 = dict(cols=4, rows=4, vcs=2, buffer=4)
# Message endpoints: (destination, payload of any length) in, (source, payload) out.
MESH_MSG = dict(cols=2, rows=3, vcs=2, buffer=4, flit_width=32, classes=2, traffic_gen=False,
                message_ni=True)
MESH_4X4_B8 = dict(cols=4, rows=4, vcs=2, buffer=8)
MESH_8X8 = dict(cols=8, rows=8, vcs=2, buffer=8)
# 8x8 in `make test`: one VC of 4 flits, 32-bit flits (the generators' header needs 29 bits):
# the smallest model that still has every router, link and endpoint of the 8x8 mesh.
# No latency histogram (64 x 32-bit counters per node, nearly half of that model's Verilog).
MESH_8X8_LITE = dict(cols=8, rows=8, vcs=1, buffer=4, flit_width=32, histogram=False)


def test_noc_2x2():
    run_noc(MESH_2X2, GOLDEN + "|" + GENERATORS)


@pytest.mark.icarus
def test_noc_2x2_icarus(icarus):
    run_noc(MESH_2X2, r"\.zero_load_latency$|\.traffic.*uniform|\.class_isolation", sim=icarus)


def test_noc_messages():
    run_noc(MESH_MSG, GOLDEN)


def test_noc_3x5():
    # 3 columns and 5 rows in 2- and 3-bit header fields: heads can name nodes off the mesh.
    run_noc(MESH_3X5, GOLDEN + r"|\.out_of_mesh_destinations")


def test_noc_4x4():
    run_noc(MESH_4X4, GOLDEN + "|" + r"\.bench_patterns")


def _targets(params, *, saturation, zero_load):
    low = bench_point(params, {"traffic": "uniform", "rate": "0.01", "cycles": 5000})
    high = bench_point(params, {"traffic": "uniform", "rate": "1.0", "cycles": 5000})
    for r in (low, high):
        assert r["lost"] == 0 and r["misrouted"] == 0 and r["corrupt"] == 0, r
    assert low["avg_latency"] <= zero_load, low
    assert abs(low["avg_latency"] - low["zero_load_latency"]) < 0.5, low
    assert high["accepted"] >= saturation, high
    return low, high


def test_noc_4x4_targets():
    """Issue targets on 4x4 uniform 1-flit packets: zero-load <= 12 cycles; saturation
    >= 0.60 flits/node/cycle with 2 VCs x 4 flits."""
    _targets(MESH_4X4, saturation=0.60, zero_load=12)


@pytest.mark.slow
def test_noc_4x4_targets_buffer8():
    """Saturation >= 0.70 flits/node/cycle with 2 VCs x 8 flits."""
    _targets(MESH_4X4_B8, saturation=0.70, zero_load=12)


def test_noc_8x8_lite():
    """8x8 in every pattern: the scoreboard (exactly once, right node, intact, in order per
    flow) on 4 packets per node with stalls everywhere, the exact zero-load latency, and the
    hardware generators past saturation (nothing lost, misrouted or corrupt; the mesh drains)."""
    run_noc(MESH_8X8_LITE, r"\.traffic|\.zero_load_latency|\.bench_patterns",
            env={"SCOVILLE_NOC_PACKETS": "4"})


@pytest.mark.slow
def test_noc_8x8():
    """8x8: generators in every pattern (no loss, drains) and saturation >= 0.35."""
    run_noc(MESH_8X8, r"\.bench_patterns")
    _targets(MESH_8X8, saturation=0.35, zero_load=20)


@pytest.mark.parametrize("params", [dict(vcs=2, buffer=4, flit_width=32),
                                    dict(vcs=1, buffer=3, flit_width=16, routing="yx")])
def test_noc_router(params):
    run_block("noc_router", params, "scoville.verif.tb_noc_router", fast_compile=True)


@pytest.mark.icarus
def test_noc_router_icarus(icarus):
    run_block("noc_router", dict(vcs=3, buffer=2, flit_width=20), "scoville.verif.tb_noc_router",
              sim=icarus, testcase=r"\.random_traffic")


# AXI4 bridge pair: 2x2 mesh, managers on nodes 0 and 1, subordinates (AxiRam) on nodes 2 and 3.
NOC_AXI = dict(cols=2, rows=2, vcs=2, buffer=4, data_width=32, addr_width=18, node_shift=16,
               id_width=4, managers=2, subordinates=2, max_outstanding=8)


def test_noc_axi():
    run_block("noc_axi", NOC_AXI, "scoville.verif.tb_noc_axi", fast_compile=True)


@pytest.mark.icarus
def test_noc_axi_icarus(icarus):
    run_block("noc_axi", NOC_AXI, "scoville.verif.tb_noc_axi", sim=icarus, testcase=r"\.zero_load_latency")
