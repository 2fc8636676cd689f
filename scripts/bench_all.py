"""``make bench``: the cycle-accurate benchmark suite (:data:`scoville.sim.bench.SUITE`), one JSON
file per run under build/bench/. ``python -m scoville.scripts.bench_all [BLOCK ...]``."""

import sys

from scoville.sim.bench import run_suite


if __name__ == "__main__":
    sys.exit(run_suite(sys.argv[1:]))
