"""The shared vocabulary blocks on both simulators (CSR and arbiter; skid buffer has its own file)."""

import pytest

from conftest import run_block


@pytest.mark.parametrize("n", [1, 3, 4, 7])
def test_rr_arbiter(sim, n):
    run_block("rr_arbiter", {"n": n}, "scoville.verif.tb_arbiter", sim=sim)


@pytest.mark.parametrize("params", [
    {"rw_registers": 4, "ro_registers": 2, "data_width": 32},
    {"rw_registers": 1, "ro_registers": 0, "data_width": 64},
    {"rw_registers": 0, "ro_registers": 3, "data_width": 32},
])
def test_csr(sim, params):
    run_block("csr", params, "scoville.verif.tb_csr", sim=sim)
