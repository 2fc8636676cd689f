"""The paged KV-cache DMA engine (``kvdma``) against the numpy paged-KV model.

One Verilator build per hardware parameter set; cache geometries (block size, heads, head_dim,
element width, layout), memory latency and stall probability vary through ``SCOVILLE_KV`` on the
same build. The default build has two cache pools; random sequences use both, one NHD and one HND.
Icarus runs a representative subset.
"""

import json

import pytest

from conftest import run_block

MODULE = "scoville.verif.tb_kvdma"
DEFAULT = {"bus_width": 256}


def _run(params, testcase, sim="verilator", seed=None, **kv):
    return run_block("kvdma", params, MODULE, sim=sim, testcase=testcase, seed=seed,
                     env={"SCOVILLE_KV": json.dumps(kv)})


@pytest.mark.parametrize("seed", [1, 2])
def test_kvdma_default(seed):
    """Every test of the testbench on the default build (random geometries, stalls, latency 20)."""
    _run(DEFAULT, r"(gather_append_basic|random_operations|hnd_layout|pool_errors|ring_descriptors|bus_errors"
                  r"|merged_bursts|reset_mid_gather)$", seed=seed)


@pytest.mark.parametrize("seed", [6, 8, 13])
def test_kvdma_seeds(seed):
    """Seeds that once found bugs (beats of a just-issued burst dropped by the abort drain; a
    STREAM gather held to destination alignment), plus the error and reset tests."""
    _run(DEFAULT, r"(random_operations|bus_errors|reset_mid_gather)$", seed=seed, count=16)


@pytest.mark.parametrize("geometry", [
    {"block_size": 1, "heads": 1, "head_dim": 128, "elem_bytes": 2},
    {"block_size": 16, "heads": 2, "head_dim": 80, "elem_bytes": 1},
    {"block_size": 256, "heads": 1, "head_dim": 32, "elem_bytes": 1, "num_blocks": 4},
    {"block_size": 16, "heads": 8, "head_dim": 128, "elem_bytes": 1, "num_blocks": 4, "latency": 100,
     "stall": 0.0},
])
def test_kvdma_geometry(geometry):
    """Geometry sweeps; the first pool takes the geometry (random layout), the second the other
    layout; ``hnd_layout`` puts the geometry in an HND pool."""
    _run(DEFAULT, r"(random_operations|hnd_layout)$", geometries=1, count=8, **geometry)


@pytest.mark.parametrize("params", [
    {"bus_width": 64, "max_burst": 2, "outstanding": 1, "buffer_beats": 4, "seg_depth": 2, "pools": 1},
    {"bus_width": 512, "max_burst": 256, "outstanding": 32, "buffer_beats": 512, "pools": 4},
])
def test_kvdma_hw_sweep(params):
    """Bus widths 64 and 512 (256 above), bursts of 2 and 256 beats, 1 and 32 outstanding,
    a 4-beat and a 512-beat buffer, 2- and 32-entry segment FIFOs, 1 and 4 pools."""
    _run(params, r"(random_operations|pool_errors|ring_descriptors|bus_errors|merged_bursts)$", geometries=1,
         count=10)


def test_kvdma_widths():
    """A 24-bit address and 4-bit ID m_axi port (the engine's addr_width/id_width parameters)."""
    _run({**DEFAULT, "addr_width": 24, "id_width": 4},
         r"(gather_append_basic|random_operations|ring_descriptors|bus_errors)$", geometries=1, count=8)


def test_kvdma_icarus(icarus):
    _run(DEFAULT, r"(gather_append_basic|random_operations|hnd_layout|ring_descriptors|bus_errors|reset_mid_gather)$",
         sim=icarus, geometries=1, count=6)


def _through_hbm(params, **kv):
    from scoville.sim.blocks import Block
    from scoville.sim.runner import run
    from scoville.verif.tb_kvdma_hbm import KVDMAHBMParams, kvdma_hbm

    block = Block("kvdma_hbm", "kvdma through the HBM controller (test only)", KVDMAHBMParams, kvdma_hbm,
                  "scoville.verif.tb_kvdma_hbm", status="partial")
    run(block, KVDMAHBMParams(**params).as_dict(), module="scoville.verif.tb_kvdma_hbm", sim="verilator",
        fast_compile=True, env={"SCOVILLE_KV": json.dumps(kv)})


# hw/hbm's test configuration (tests/test_hbm.py SMALL: 16 rows per bank = 256 KiB, 16-entry
# queues) behind a light engine (16-beat bursts, 64-beat buffer, 4 outstanding, 8-entry segment
# FIFOs, 2 pools): a cheap build for make test.
HBM_SMALL = {"rows": 16, "read_queue": 16, "write_queue": 16, "wq_high": 12, "wq_low": 4,
             "max_burst": 16, "buffer_beats": 64, "outstanding": 4, "seg_depth": 8, "pools": 2}


def test_kvdma_through_hbm():
    """The engine driving the HBM pseudo-channel controller and its behavioural device (no RAM
    model): random GATHER (memory and stream), BLOCK_COPY, COPY, FILL and APPEND on an NHD and an
    HND pool, then the whole device read back through a STREAM gather and compared byte for byte."""
    _through_hbm(HBM_SMALL, fills=12, count=6)


@pytest.mark.slow
def test_kvdma_through_hbm_full():
    """The same with the default engine and a 512 KiB device (longer build and run)."""
    _through_hbm({"rows": 32}, count=16)
