"""The runtime (scoville.sim.accel.runtime): one compiled graph, the same call on the machine
model and on the accel_tile RTL (Verilator), outputs bit-exact with each other and with numpy.

The tile is the small one of tests/test_accel_tile.py, with exactly its parameters, so the two
files share one Verilator build.
"""

import numpy as np

from scoville.hw.accel.isa import ErrCode
from scoville.hw.vpu.layouts import Op as VpuOp
from scoville.sim.accel.compiler import Graph, compile
from scoville.sim.accel.config import TileConfig
from scoville.sim.accel.runtime import run
from scoville.sim.blocks import get_block
from scoville.verif.gemm_model import gemm_ref, requant_ref
from scoville.verif.vpu_model import VPUModel

from test_accel_tile import SMALL


def test_a_compiled_matmul_and_silu_run_alike_on_the_model_and_the_rtl():
    block = get_block("accel_tile")
    config = TileConfig.from_tile_params(block.configure(**SMALL))
    assert config.to_tile_params() == block.configure(**SMALL)      # the same build as test_accel_tile
    rng = np.random.default_rng(12)
    M, K, N = 9, 40, 20
    x, w = rng.integers(-128, 128, (M, K)), rng.integers(-128, 128, (K, N))
    bias, mult, shift = rng.integers(-5000, 5000, N), rng.integers(1, 1 << 14, N), rng.integers(10, 20, N)
    silu = {"mult_a": 64, "shift_a": 0, "mult_b": 1, "shift_b": 4}
    g = Graph()
    h = g.matmul(g.input("x", (M, K)), g.weight("w", w), bias=bias, mult=mult, shift=shift)
    g.output("h", h)
    g.output("y", g.silu(h, **silu))
    compiled = compile(g, config)
    plan, = compiled.plans[0]["tiles"]
    assert plan["m_t"] < M and plan["k_t"] < K and plan["n_t"] < N       # every dimension chunked

    want_h = requant_ref(gemm_ref(x, w), bias, mult, shift, bias_en=True, requant_en=True)
    _, want_y, _ = VPUModel(lanes=2, buffer=32, channels=32).run(
        {"op": VpuOp.SILU.value, "n": N, "rows": M, **silu}, want_h)
    results = {engine: run(compiled, {"x": x}, engine=engine) for engine in ("model", "rtl")}
    model, rtl = results["model"], results["rtl"]
    for r in (model, rtl):
        (tile,) = r.tiles
        assert (tile.state, tile.err_code) == ("done", ErrCode.NONE), tile
    assert rtl.tiles[0].retired == model.tiles[0].retired
    assert rtl.cycles > 0 and model.cycles is None
    for name, want in (("h", want_h), ("y", want_y)):
        assert (model.outputs[name] == want).all(), name
        assert (rtl.outputs[name] == model.outputs[name]).all(), name
    assert (rtl.image == model.image).all()           # and nothing else differs in HBM
