"""The runtime (scoville.sim.accel.runtime): compiled graphs, the same call on the machine model
and on the accel_tile RTL (Verilator), outputs bit-exact with each other and with numpy, and the
model's cycles (sim/accel/timing.py) within 3 % of the RTL's for every job.

The tile is the small one of tests/test_accel_tile.py, with exactly its parameters, so the two
files share one Verilator build; the jobs run back to back in one simulation (run_batch).
"""

import numpy as np
import pytest

from scoville.hw.accel.isa import ErrCode
from scoville.hw.vpu.layouts import Op as VpuOp
from scoville.sim.accel.compiler import Graph, compile
from scoville.sim.accel.config import TileConfig
from scoville.sim.accel.runtime import run, run_batch
from scoville.sim.blocks import get_block
from scoville.verif.gemm_model import gemm_ref, requant_ref
from scoville.verif.vpu_model import VPUModel

from test_accel_compiler import rope_coef
from test_accel_tile import SMALL

#: Largest |model - RTL| / RTL cycles accepted per job.
CYCLE_TOLERANCE = 0.03


def _config():
    block = get_block("accel_tile")
    config = TileConfig.from_tile_params(block.configure(**SMALL))
    assert config.to_tile_params() == block.configure(**SMALL)      # the same build as test_accel_tile
    return config


def _q(rng, n):
    return rng.integers(-5000, 5000, n), rng.integers(1, 1 << 14, n), rng.integers(10, 20, n)


def _jobs(config):
    """``(name, compiled, inputs, want)``: ``want`` maps outputs to their numpy values (some)."""
    rng = np.random.default_rng(12)
    vpu = VPUModel(lanes=config.vpu.lanes, buffer=config.vpu.buffer, channels=config.vpu.channels)
    jobs = []

    M, K, N = 9, 40, 20                 # every dimension chunked, then SiLU on the vector unit
    x, w = rng.integers(-128, 128, (M, K)), rng.integers(-128, 128, (K, N))
    bias, mult, shift = _q(rng, N)
    silu = {"mult_a": 64, "shift_a": 0, "mult_b": 1, "shift_b": 4}
    g = Graph()
    h = g.matmul(g.input("x", (M, K)), g.weight("w", w), bias=bias, mult=mult, shift=shift)
    g.output("h", h)
    g.output("y", g.silu(h, **silu))
    compiled = compile(g, config)
    plan, = compiled.plans[0]["tiles"]
    assert plan["m_t"] < M and plan["k_t"] < K and plan["n_t"] < N
    want_h = requant_ref(gemm_ref(x, w), bias, mult, shift, bias_en=True, requant_en=True)
    _, want_y, _ = vpu.run({"op": VpuOp.SILU.value, "n": N, "rows": M, **silu}, want_h)
    jobs.append(("matmul_silu", compiled, {"x": x}, {"h": want_h, "y": want_y}))

    a, b = rng.integers(-128, 128, (9, 20)), rng.integers(-128, 128, (9, 20))
    g = Graph()                         # b through the row buffer: a REPEAT of LOAD b, LOAD a
    g.output("y", g.add(g.input("a", (9, 20)), g.input("b", (9, 20)), mult_a=3, mult_b=-2, shift_a=1))
    _, want, _ = vpu.run({"op": VpuOp.ADD.value, "n": 20, "rows": 9, "mult_a": 3, "mult_b": -2, "shift_a": 1}, a, b)
    jobs.append(("add", compile(g, config), {"a": a, "b": b}, {"y": want}))

    a = rng.integers(-128, 128, (4, 16))
    packed, cs = rope_coef(rng, (4, 16))
    g = Graph()
    g.output("y", g.rope(g.input("a", (4, 16)), g.input("c", (4, 16), "int32"), mult_a=1))
    _, want, _ = vpu.run({"op": VpuOp.ROPE.value, "n": 16, "rows": 4, "mult_a": 1}, a, cs)
    jobs.append(("rope", compile(g, config), {"a": a, "c": packed}, {"y": want}))

    a, b = rng.integers(-128, 128, (3, 48)), rng.integers(-128, 128, (3, 48))
    g = Graph()                         # rows longer than the row buffer: column pieces
    g.output("y", g.mul(g.input("a", (3, 48)), g.input("b", (3, 48)), mult_a=1, shift_a=6))
    _, want, _ = vpu.run({"op": VpuOp.MUL.value, "n": 48, "rows": 3, "mult_a": 1, "shift_a": 6}, a, b)
    jobs.append(("mul_pieces", compile(g, config), {"a": a, "b": b}, {"y": want}))

    x, w = rng.integers(-128, 128, (1, 128)), rng.integers(-128, 128, (128, 16))
    bias, mult, shift = _q(rng, 16)
    g = Graph()
    g.output("h", g.gemv(g.input("x", (1, 128)), g.weight("w", w), bias=bias, mult=mult, shift=shift))
    want = requant_ref(gemm_ref(x, w), bias, mult, shift, bias_en=True, requant_en=True)
    jobs.append(("gemv", compile(g, config), {"x": x}, {"h": want}))

    x, w = rng.integers(-128, 128, (16, 16)), rng.integers(-128, 128, (16, 16))
    g = Graph()
    g.output("h", g.matmul(g.input("x", (16, 16)), g.weight("w", w), out="int32"))
    jobs.append(("matmul_int32", compile(g, config), {"x": x}, {"h": gemm_ref(x, w)}))

    a = rng.integers(-128, 128, (6, 20))
    g = Graph()
    g.output("y", g.softmax(g.input("a", (6, 20)), mult_a=300, shift_a=4))
    _, want, _ = vpu.run({"op": VpuOp.SOFTMAX.value, "n": 20, "rows": 6, "mult_a": 300, "shift_a": 4, "len": 20}, a)
    jobs.append(("softmax", compile(g, config), {"a": a}, {"y": want}))

    a = rng.integers(-1 << 20, 1 << 20, (5, 24))
    g = Graph()                         # a REPEAT of a row scalar and its row
    y, s = g.requant_dyn(g.input("a", (5, 24), "int32"))
    g.output("y", y)
    g.output("s", s)
    _, want_y, want_s = vpu.run({"op": VpuOp.REQUANT_DYN.value, "n": 24, "rows": 5, "in_fmt": 2}, a)
    jobs.append(("requant_dyn", compile(g, config), {"a": a}, {"y": want_y, "s": np.asarray(want_s)[:, None]}))

    a = rng.integers(-128, 128, (4, 30))
    g = Graph()
    g.output("m", g.reduce("argmax", g.input("a", (4, 30))))
    jobs.append(("argmax", compile(g, config), {"a": a},
                 {"m": np.stack([a.max(axis=1), a.argmax(axis=1)], axis=1)}))
    return jobs


@pytest.fixture(scope="module")
def ran():
    config = _config()
    jobs = _jobs(config)
    batch = [(compiled, inputs) for _, compiled, inputs, _ in jobs]
    return jobs, {engine: run_batch(batch, engine=engine) for engine in ("model", "rtl")}


def test_compiled_graphs_run_alike_on_the_model_and_the_rtl(ran):
    jobs, results = ran
    for k, (name, compiled, inputs, want) in enumerate(jobs):
        model, rtl = results["model"][k], results["rtl"][k]
        for r in (model, rtl):
            (tile,) = r.tiles
            assert (tile.state, tile.err_code) == ("done", ErrCode.NONE), (name, tile)
        assert rtl.tiles[0].retired == model.tiles[0].retired, name
        for out, value in want.items():
            assert (model.outputs[out] == value).all(), (name, out)
        for out in compiled.outputs:
            assert (rtl.outputs[out] == model.outputs[out]).all(), (name, out)
        assert (rtl.image == model.image).all(), name           # and nothing else differs in HBM


def test_the_cycle_model_is_within_3_percent_of_the_rtl_on_every_job(ran):
    jobs, results = ran
    errors = {}
    for k, (name, *_) in enumerate(jobs):
        model, rtl = results["model"][k].cycles, results["rtl"][k].cycles
        assert rtl > 0 and model > 0, name
        errors[name] = (model, rtl, (model - rtl) / rtl)
    report = ", ".join(f"{n} {m}/{r} ({e:+.2%})" for n, (m, r, e) in errors.items())
    print("model/RTL cycles:", report)
    assert all(abs(e) <= CYCLE_TOLERANCE for _, _, e in errors.values()), report


def test_run_is_a_batch_of_one_and_the_model_counts_cycles():
    config = _config()
    g = Graph()
    g.output("y", g.scale(g.input("a", (3, 8)), mult_a=3, shift_a=1))
    compiled = compile(g, config)
    a = np.arange(24).reshape(3, 8) - 12
    result = run(compiled, {"a": a})
    assert result.ok and (result.outputs["y"] == np.clip((a * 3 + 1) >> 1, -128, 127)).all()
    assert result.cycles == result.tiles[0].cycles > 0
