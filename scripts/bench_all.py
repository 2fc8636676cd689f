"""``make bench``: the cycle-accurate benchmark suite, one JSON file per run under build/bench/.

``SUITE`` lists (block, hardware parameters, workload) runs; blocks add the configurations
their issue names targets for. Every run is also printed as one JSON line.
"""

import json
import sys

from scoville.sim.blocks import BLOCKS
from scoville.sim.cli import run_bench
from scoville.sim.elaborate import build_root


SUITE = [
    ("skid_buffer", {"width": 32}, {"beats": 100000, "stall": "none"}),
    ("skid_buffer", {"width": 32}, {"beats": 100000, "stall": "random"}),
    ("rr_arbiter", {"n": 16}, {"cycles": 100000, "load": 50}),
    ("csr", {}, {"accesses": 2000}),
]


def main(argv=None):
    only = set((argv if argv is not None else sys.argv[1:]))
    out_dir = build_root() / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for k, (name, params, workload) in enumerate(SUITE):
        if only and name not in only:
            continue
        block = BLOCKS[name]
        full = block.configure(**params).as_dict()
        work = block.bench_params(**workload).as_dict() if block.bench_params else {}
        try:
            result = run_bench(block, full, work)
        except Exception as exc:
            print(f"{name} {params} {workload}: FAILED: {exc}", file=sys.stderr)
            failed += 1
            continue
        (out_dir / f"{k:02d}-{name}.json").write_text(json.dumps(result, indent=1))
        print(json.dumps(result), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
