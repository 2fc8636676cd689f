"""The tile DMA (``tile_dma``) against its numpy model, on Verilator (default configuration and
a narrow one) and Icarus (a small configuration).

One build per parameter set; memory latency and stalls vary through ``SCOVILLE_TDMA`` on the
same build. The model's own rules are checked without a simulator below.
"""

import json

import pytest

from conftest import run_block

MODULE = "scoville.verif.tb_tile_dma"
DEFAULT = {}
# 64-bit bus (8-byte atoms, so B up to 4 D), 256-bit port, 4-beat bursts, 3 outstanding, a 20-bit
# address (the 1 MiB test memory is the whole space), a 1-bit ID (cocotbext-axi needs ID signals)
NARROW = {"data_width": 64, "port_bits": 256, "max_burst": 4, "outstanding": 3, "addr_width": 20, "id_width": 1}
# the corner: one burst in flight per direction, 2-beat bursts, the least buffers (3 and 4 atoms)
SMALL = {"port_bits": 128, "max_burst": 2, "outstanding": 1}
CHECKS = r"(random_windows|every_beat_size|bus_errors|odd_commands|abort_then_transfer|write_bursts_whole)"


def _run(params, testcase, sim="verilator", seed=None, **opts):
    return run_block("tile_dma", params, MODULE, sim=sim, testcase=testcase, seed=seed,
                     env={"SCOVILLE_TDMA": json.dumps(opts)})


def test_tile_dma_default():
    """Every check on the default build: random windows under stalls, every beat size, bus errors,
    odd commands, abort (pulse and level) then transfers, whole W bursts."""
    _run(DEFAULT, CHECKS)


def test_tile_dma_seed():
    """The randomised checks again under another seed."""
    _run(DEFAULT, r"(random_windows|bus_errors|abort_then_transfer)", seed=2)


def test_tile_dma_timing():
    """The docstring's cycle formulas: one-row command latency, long-transfer throughput."""
    _run(DEFAULT, r"(command_latency|throughput)$")


def test_tile_dma_latency_sweep():
    """A long memory latency (100 cycles) and a heavily stalled memory, random windows."""
    _run(DEFAULT, r"random_windows", latency=100, stall=0.0, count=8, batches=2)
    _run(DEFAULT, r"random_windows", latency=3, stall=0.6, count=8, batches=2)


def test_tile_dma_narrow():
    """A 64-bit AXI bus with a 256-bit port (unit beats of up to 4 atoms), 4-beat bursts,
    3 outstanding, a 20-bit address, a 1-bit ID."""
    _run(NARROW, CHECKS + r"|command_latency|throughput", count=8, batches=2)


def test_tile_dma_icarus(icarus):
    """The corner configuration on Icarus: random windows, odd commands, abort (pulse)."""
    _run(SMALL, r"(random_windows|odd_commands|abort_then_transfer/mode=pulse)", sim=icarus, count=5, batches=1)


# ---- the model's own rules (no simulator) ------------------------------------------------

from scoville.verif.tile_dma_model import DECERR, OKAY, SLVERR, Command, DMAModel, Faults  # noqa: E402

import numpy as np  # noqa: E402


def test_model_bursts_split_at_pages_and_max_burst():
    model = DMAModel(atom_bytes=32, port_bytes=64, max_burst=16)
    assert model.bursts(Command(4096 - 64, 2, 700, 8192, 5)) == [
        (4032, 2), (4096, 16), (4608, 4), (12224, 2), (12288, 16), (12800, 4)]
    assert model.bursts(Command(0, 0, 700, 8192, 5)) == []


def test_model_round_trip_and_beats():
    """Writing a window then reading it back gives the row bytes, zero-padded beats, last/end
    marks; bytes past each row are not written."""
    rng = np.random.default_rng(1)
    model = DMAModel(atom_bytes=32, port_bytes=64, max_burst=16)
    image = rng.integers(0, 256, 1 << 16, dtype=np.uint8)
    before = image.copy()
    cmd = Command(1024, 3, 45, 96, 4)
    beats = [bytes(rng.integers(0, 256, 64, dtype=np.uint8)) for _ in range(model.unit_beats(cmd))]
    assert model.write(image, cmd, beats, Faults(1 << 16)) == OKAY
    rows = model.row_data(cmd, beats)
    for r, (lo, hi) in enumerate(cmd.row_ranges()):
        assert bytes(image[lo:hi]) == rows[r]
        assert (image[hi:lo + 96] == before[hi:lo + 96]).all()
    got, resp = model.read(image, cmd, Faults(1 << 16))
    assert resp == OKAY and len(got) == 9
    assert [g[1:] for g in got[:3]] == [(False, False), (False, False), (True, False)] and got[-1][1:] == (True, True)
    assert got[2][0] == rows[0][32:45] + bytes(64 - 13)


def test_model_errors_and_odd_commands():
    model = DMAModel(atom_bytes=32, port_bytes=64, max_burst=16)
    image = np.zeros(1 << 16, np.uint8)
    faults = Faults(1 << 16, errors=[(1100, 1101, SLVERR)])
    assert model.read(image, Command(1024, 2, 200, 256, 5), faults)[1] == SLVERR
    assert model.read(image, Command((1 << 16) - 32, 1, 64, 64, 5), faults)[1] == DECERR
    assert model.read(image, Command(1030, 1, 64, 64, 5), faults) == ([(bytes(64), False, False), (bytes(64), True, True)],
                                                                       SLVERR)
    assert model.read(image, Command(0, 0, 64, 64, 5), faults) == ([], OKAY)
    assert model.beat_bytes(Command(0, 1, 64, 64, 7)) == 64
