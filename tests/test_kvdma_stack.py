"""The ``kvdma`` engine at its default parameters through 2- and 4-channel ``hbm_stack``s.

The engine's bursts (up to 64 beats = 2 KiB) cross the stack's 1 KiB interleave granules, which
the stack splits into per-channel parts and merges back: GATHER (to memory and to the stream
port), APPEND, BLOCK_COPY, COPY and FILL against the numpy model, then the whole memory read
back through the engine and compared byte for byte (``verif/tb_kvdma_hbm.py``). The stack's
channels are ``tests/test_hbm.py``'s STACK configuration (8 rows per bank = 128 KiB per
channel, 8-entry queues), which keeps the Verilator builds cheap.
"""

import json

import pytest

from scoville.sim.blocks import Block
from scoville.sim.runner import run
from scoville.hw.testbench.kvdma_hbm import KVDMAHBMParams, kvdma_hbm

MODULE = "scoville.verif.tb_kvdma_hbm"
STACK = {"rows": 8, "read_queue": 8, "write_queue": 8, "wq_high": 6, "wq_low": 2, "interleave": 1024}


@pytest.mark.parametrize("channels", [2, 4])
def test_kvdma_through_stack(channels, tmp_path):
    block = Block("kvdma_hbm", "kvdma through an hbm_stack (test only)", KVDMAHBMParams, kvdma_hbm, MODULE,
                  status="partial")
    params = KVDMAHBMParams(**STACK, channels=channels)      # engine fields: kvdma's defaults
    out = tmp_path / "result.json"
    run(block, params.as_dict(), module=MODULE, sim="verilator", fast_compile=True,
        env={"SCOVILLE_KV": json.dumps({"fills": 12, "count": 8}), "SCOVILLE_BENCH_OUT": str(out)})
    result = json.loads(out.read_text())
    print(f"kvdma through a {channels}-channel hbm_stack: {json.dumps(result)}")
    assert result["channels"] == channels and result["capacity"] == channels * 128 * 1024, result
    assert {"GATHER", "BLOCK_COPY", "APPEND"} <= set(result["cycles_by_op"]), result
