"""`make bench` covers every block that has a bench, with parameter sets that validate."""

from scoville.sim.bench import SUITE
from scoville.sim.blocks import BLOCKS


def test_every_bench_is_in_the_suite():
    benched = {name for name, block in BLOCKS.items() if block.bench_params and block.status != "test-only"}
    missing = benched - {name for name, _, _ in SUITE}
    assert not missing, f"blocks with a bench missing from scoville.sim.bench.SUITE: {sorted(missing)}"


def test_suite_parameters_validate():
    for name, params, workload in SUITE:
        block = BLOCKS[name]
        block.configure(**params)
        block.bench_params(**workload)
