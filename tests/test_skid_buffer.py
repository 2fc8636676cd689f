import pytest

from conftest import run_block


@pytest.mark.parametrize("width", [1, 8, 37])
def test_skid_buffer(sim, width):
    run_block("skid_buffer", {"width": width}, "scoville.verif.tb_skid_buffer", sim=sim)


@pytest.mark.parametrize("seed", [2, 3])
def test_skid_buffer_seeds(seed):
    run_block("skid_buffer", {"width": 16}, "scoville.verif.tb_skid_buffer", testcase="stream_integrity", seed=seed)
