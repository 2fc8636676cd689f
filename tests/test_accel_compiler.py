"""The graph compiler (scoville.sim.accel.compiler) on the machine model, against numpy: ragged
matmuls, buffer-limited tilings, N split over tiles, vector-unit ops. Pure Python."""

from types import SimpleNamespace

import numpy as np
import pytest

from scoville.hw.gemm import GEMMParams
from scoville.hw.vpu.layouts import Op as VpuOp
from scoville.hw.vpu.vpu import VPUParams
from scoville.sim.accel import asm
from scoville.sim.accel.compiler import CompileError, Graph, compile, matmul_tiling
from scoville.sim.accel.config import TileConfig
from scoville.sim.accel.runtime import run
from scoville.verif.gemm_model import gemm_ref, requant_ref
from scoville.verif.vpu_model import VPUModel

#: The small tile of tests/test_accel_tile.py (and of the RTL test of the runtime).
SMALL = TileConfig.from_tile_params(SimpleNamespace(
    rows=4, cols=4, lanes=2, a_depth=64, b_depth=64, c_depth=64, max_n=16, vpu_buffer=32,
    vpu_channels=32, addr_width=16, hbm_bytes=1 << 16, outstanding=8))
#: Four 256 KiB channels, an 8 x 8 array with room for 64-column chunks.
WIDE = TileConfig(gemm=GEMMParams(rows=8, cols=8, a_depth=512, b_depth=512, c_depth=512, max_n=64),
                  vpu=VPUParams(lanes=4, buffer=256, channels=256), hbm_bytes=1 << 20, channel_shift=18)
#: Buffers so small that every dimension is chunked.
TINY = TileConfig(gemm=GEMMParams(rows=4, cols=4, a_depth=16, b_depth=64, c_depth=8, max_n=32),
                  vpu=VPUParams(lanes=2, buffer=64, channels=64), hbm_bytes=1 << 18, channel_shift=18)


def _q(rng, n):
    return rng.integers(-5000, 5000, n), rng.integers(1, 1 << 14, n), rng.integers(10, 20, n)


def _run(compiled, inputs):
    res = run(compiled, inputs, engine="model")
    for t in res.tiles:
        assert t.state == "done", t
        assert not t.hazards, t.hazards
    return res


def _matmul_case(cfg, M, K, N, out, rng, *, tiles=1, bias=True, gemv=False):
    x = rng.integers(-128, 128, (M, K))
    w = rng.integers(-128, 128, (K, N))
    b, m, s = _q(rng, N)
    g = Graph()
    xt = g.input("x", (M, K))
    kw = {"bias": b if bias else None}
    if out == "int8":
        kw.update(mult=m, shift=s)
    h = (g.gemv if gemv else g.matmul)(xt, g.weight("w", w), out=out, **kw)
    g.output("h", h)
    c = compile(g, cfg, tiles=tiles)
    got = _run(c, {"x": x}).outputs["h"]
    want = requant_ref(gemm_ref(x, w), b, m, s, bias_en=bias, requant_en=out == "int8")
    assert got.dtype == (np.int8 if out == "int8" else np.int32)
    assert (got == want).all(), (got, want)
    return c


@pytest.mark.parametrize("M,K,N", [(1, 1, 1), (5, 20, 12), (9, 40, 20), (17, 33, 45), (3, 100, 7), (33, 64, 16)])
@pytest.mark.parametrize("out", ["int8", "int32"])
def test_ragged_matmuls_on_the_small_tile_match_numpy(M, K, N, out):
    _matmul_case(SMALL, M, K, N, out, np.random.default_rng(M * 1000 + K * 10 + N))


@pytest.mark.parametrize("M,K,N", [(7, 129, 70), (40, 64, 130), (2, 300, 33)])
def test_ragged_matmuls_on_a_wider_tile_match_numpy(M, K, N):
    rng = np.random.default_rng(N)
    c = _matmul_case(WIDE, M, K, N, "int8", rng)
    assert all(t["direct"] for t in c.plans[0]["tiles"]), "64-column chunks requantise in the engine"
    _matmul_case(WIDE, M, K, N, "int32", rng, bias=False)


def test_small_max_n_requantises_on_the_vector_unit():
    """max_n 16 < 32: N chunks cannot start on atoms in int8, so the engine stores int32 and
    the vector unit's REQUANT (the same arithmetic, bit for bit) makes the int8 output."""
    c = _matmul_case(SMALL, 9, 40, 20, "int8", np.random.default_rng(3))
    (plan,) = c.plans[0]["tiles"]
    assert (plan["m_t"], plan["k_t"], plan["n_t"], plan["direct"]) == (8, 32, 8, False)
    text = c.programs[0].text()
    assert "vpu requant n=20 rows=9 in_fmt=int32" in text and "fence store" in text


def test_buffer_limited_tiling_chunks_m_k_and_n():
    rng = np.random.default_rng(5)
    c = _matmul_case(TINY, 19, 70, 50, "int8", rng)
    (plan,) = c.plans[0]["tiles"]
    M, K, N = 19, 70, 50
    assert -(-M // plan["m_t"]) > 1 and -(-K // plan["k_t"]) > 1 and -(-N // plan["n_t"]) > 1, plan
    text = c.programs[0].text()
    assert "accumulate" in text                  # K chunks accumulate in the C buffer
    _matmul_case(TINY, 19, 70, 50, "int32", rng)


@pytest.mark.parametrize("cfg", [SMALL, TINY, WIDE], ids=["small", "tiny", "wide"])
def test_every_tiling_fits_the_buffers(cfg):
    p = cfg.gemm
    rng = np.random.default_rng(9)
    for _ in range(300):
        M, K, W = (int(v) for v in rng.integers(1, 300, 3))
        elem = int(rng.choice([1, 4]))
        m_t, k_t, n_t, direct = matmul_tiling(cfg, M, K, W, elem)
        nb = -(-n_t // p.cols)
        assert m_t * -(-k_t // p.rows) <= p.a_depth and k_t * nb <= p.b_depth and m_t * nb <= p.c_depth
        assert n_t <= p.max_n and 1 <= m_t <= M and 1 <= k_t <= K and 1 <= n_t <= W
        assert k_t == K or k_t % 32 == 0
        stored = elem if direct else 4
        assert n_t == W or (n_t * stored) % 32 == 0
        assert direct or elem == 1


@pytest.mark.parametrize("M", range(1, 9))
def test_gemv_is_a_matmul_of_one_to_eight_rows(M):
    _matmul_case(WIDE, M, 96, 72, "int8", np.random.default_rng(M), gemv=True)


def test_gemv_refuses_more_rows():
    g = Graph()
    with pytest.raises(CompileError, match="gemv: x has 9 rows"):
        g.gemv(g.input("x", (9, 8)), g.weight("w", np.zeros((8, 8), np.int8)), mult=1, shift=0)


@pytest.mark.parametrize("tiles", [2, 3, 4])
def test_n_split_over_tiles_each_with_its_weights_on_its_channel(tiles):
    rng = np.random.default_rng(tiles)
    c = _matmul_case(WIDE, 6, 80, 200, "int8", rng, tiles=tiles)
    plan = c.plans[0]["tiles"]
    assert len(c.programs) == tiles and len(plan) == tiles
    assert [p["c0"] for p in plan] == [sum(q["width"] for q in plan[:i]) for i in range(tiles)]
    assert all(p["c0"] % 32 == 0 for p in plan)
    for p in plan:
        weights = [r for r in c.regions if r.name.startswith(f"w[t{p['tile']}.")]
        assert weights and all(r.channel == p["tile"] % 4 for r in weights)
    assert {c.regions[f"program[t{t}]"].channel for t in range(tiles)} == set(range(tiles))


def test_a_vector_op_after_a_split_matmul_waits_at_a_barrier():
    """The rows of the silu read columns every tile wrote: a barrier (FENCE store, SIGNAL the
    others, WAIT) comes between; a second op on the same rows needs only the tile's own fence."""
    rng = np.random.default_rng(8)
    M, K, N, T = 12, 48, 96, 3
    x, w = rng.integers(-128, 128, (M, K)), rng.integers(-128, 128, (K, N))
    b, m, s = _q(rng, N)
    g = Graph()
    h = g.matmul(g.input("x", (M, K)), g.weight("w", w), bias=b, mult=m, shift=s)
    y = g.silu(h, mult_a=64, mult_b=1, shift_b=4)
    z = g.softmax(y, mult_a=200, shift_a=4)
    g.output("h", h), g.output("y", y), g.output("z", z)
    c = compile(g, WIDE, tiles=T)
    res = _run(c, {"x": x})
    hh = requant_ref(gemm_ref(x, w), b, m, s, bias_en=True, requant_en=True)
    model = VPUModel(lanes=4, buffer=256, channels=256)
    _, yy, _ = model.run({"op": VpuOp.SILU.value, "n": N, "rows": M, "mult_a": 64, "mult_b": 1, "shift_b": 4}, hh)
    _, zz, _ = model.run({"op": VpuOp.SOFTMAX.value, "n": N, "rows": M, "mult_a": 200, "shift_a": 4, "len": N}, yy)
    for name, want in (("h", hh), ("y", yy), ("z", zz)):
        assert (res.outputs[name] == want).all(), name
    for p in c.programs:
        text = p.text(addresses=False)
        assert text.count("wait sem=") == 1, text       # one barrier, before the silu
        assert f"wait sem={p.tile} count={T - 1}" in text
        assert text.count("signal sem=") == T - 1


def _vpu_cases():
    rng = np.random.default_rng(21)
    table = np.stack([rng.integers(-10, 10, 24), rng.integers(1, 1 << 12, 24), rng.integers(4, 12, 24)], axis=1)
    return {
        "silu": (lambda g, a: g.silu(a, mult_a=64, mult_b=1, shift_b=4),
                 {"op": VpuOp.SILU, "mult_a": 64, "mult_b": 1, "shift_b": 4}, "int8", None),
        "gelu": (lambda g, a: g.gelu(a, mult_a=64, mult_b=3, shift_b=5, out="int16"),
                 {"op": VpuOp.GELU, "mult_a": 64, "mult_b": 3, "shift_b": 5, "out_fmt": 1}, "int8", None),
        "scale": (lambda g, a: g.scale(a, mult_a=3, shift_a=9),
                  {"op": VpuOp.SCALE, "mult_a": 3, "shift_a": 9}, "int32", None),
        "softmax": (lambda g, a: g.softmax(a, mult_a=300, shift_a=4, len=5, causal=True),
                    {"op": VpuOp.SOFTMAX, "mult_a": 300, "shift_a": 4, "len": 5, "causal": 1}, "int8", None),
        "rmsnorm": (lambda g, a: g.rmsnorm(a, table, eps_mult=5, eps_shift=2),
                    {"op": VpuOp.RMSNORM, "mult_b": 5, "shift_b": 2}, "int16", table),
        "layernorm": (lambda g, a: g.layernorm(a, table, eps_mult=1, eps_shift=8),
                      {"op": VpuOp.LAYERNORM, "mult_b": 1, "shift_b": 8}, "int8", table),
        "requant": (lambda g, a: g.requant(a, table, out="int16"),
                    {"op": VpuOp.REQUANT, "out_fmt": 1}, "int32", table),
        "requant_dyn": (lambda g, a: g.requant_dyn(a), {"op": VpuOp.REQUANT_DYN}, "int32", None),
        **{op: (lambda g, a, op=op: g.reduce(op, a), {"op": VpuOp[op.upper()]}, "int16", None)
           for op in ("max", "sum", "sumsq", "argmax")},
    }


VPU_CASES = _vpu_cases()


@pytest.mark.parametrize("tiles", [1, 2])
@pytest.mark.parametrize("name", list(VPU_CASES))
def test_vector_ops_on_rows_in_hbm_match_the_vpu_model(name, tiles):
    build, cmd, dtype, table = VPU_CASES[name]
    rng = np.random.default_rng(len(name))
    rows, n = 11, 24
    info = np.iinfo(dtype)
    lo, hi = (-128, 128) if dtype == "int8" else (max(info.min, -(1 << 20)), min(info.max, 1 << 20))
    a = rng.integers(lo, hi, (rows, n))
    g = Graph()
    out = build(g, g.input("a", (rows, n), dtype))
    outs = out if isinstance(out, tuple) else (out,)
    for i, t in enumerate(outs):
        g.output(f"o{i}", t)
    c = compile(g, WIDE, tiles=tiles)
    res = _run(c, {"a": a})
    model = VPUModel(lanes=4, buffer=256, channels=256)
    if table is not None:
        model.run({"op": VpuOp.LOAD_P.value, "n": n, "rows": 1}, p=table)
    fmt = {"int8": 0, "int16": 1, "int32": 2}[dtype]
    full = {"n": n, "rows": rows, "in_fmt": fmt, **{k: getattr(v, "value", v) for k, v in cmd.items()}}
    _, y, s = model.run(full, a)
    want = [v for v in (y, s) if v is not None]
    for i, wv in enumerate(want):
        got = res.outputs[f"o{i}"]
        wv = np.asarray(wv)
        if wv.ndim == 1:
            wv = wv[:, None]
        assert got.shape == wv.shape and (got == wv).all(), (name, got, wv)


def test_softmax_row_longer_than_the_buffer_is_refused():
    g = Graph()
    g.output("y", g.softmax(g.input("a", (2, 40)), mult_a=1))
    with pytest.raises(CompileError, match="softmax on a .2 x 40.: the vector unit answers BAD_SIZE"):
        compile(g, SMALL)


def rope_coef(rng, shape):
    """Random {cos, sin} Q1.14 pairs as the int32 elements ``Graph.rope`` takes, and as pairs."""
    angle = rng.uniform(-np.pi, np.pi, shape)
    cs = np.stack([np.round(np.cos(angle) * (1 << 14)), np.round(np.sin(angle) * (1 << 14))], -1).astype(np.int64)
    packed = (cs[..., 0] & 0xFFFF) | (cs[..., 1] << 16)
    return packed.astype(np.int64), cs


BINARY = {
    "add": (lambda g, a, b: g.add(a, b, mult_a=3, mult_b=-2, shift_a=1), {"op": VpuOp.ADD, "mult_a": 3,
                                                                           "mult_b": -2, "shift_a": 1}),
    "mul": (lambda g, a, b: g.mul(a, b, mult_a=1, shift_a=6), {"op": VpuOp.MUL, "mult_a": 1, "shift_a": 6}),
    "rope": (lambda g, a, b: g.rope(a, b, mult_a=1), {"op": VpuOp.ROPE, "mult_a": 1}),
    "rope_halves": (lambda g, a, b: g.rope(a, b, mult_a=1, halves=True), {"op": VpuOp.ROPE, "mult_a": 1,
                                                                          "halves": 1}),
}


@pytest.mark.parametrize("cfg,rows,n", [(SMALL, 9, 20), (SMALL, 5, 48), (WIDE, 11, 24), (TINY, 40, 8)],
                         ids=["small", "small_pieces", "wide", "tiny_groups"])
@pytest.mark.parametrize("name", list(BINARY))
def test_two_operand_ops_feed_b_through_the_row_buffer(name, cfg, rows, n):
    build, cmd = BINARY[name]
    if name == "rope_halves" and n > cfg.vpu.buffer:
        pytest.skip("halves pairs are not cut into pieces")
    rng = np.random.default_rng(n)
    a = rng.integers(-128, 128, (rows, n))
    if name.startswith("rope"):
        b, cs = rope_coef(rng, (rows, n))
    else:
        b = cs = rng.integers(-128, 128, (rows, n))
    g = Graph()
    g.output("y", build(g, g.input("a", (rows, n)), g.input("b", (rows, n), "int32" if name.startswith("rope") else "int8")))
    c = compile(g, cfg)
    res = _run(c, {"a": a, "b": b})
    v = cfg.vpu
    _, want, _ = VPUModel(lanes=v.lanes, buffer=v.buffer, channels=v.channels).run(
        {"n": n, "rows": rows, "in_fmt": 0, "out_fmt": 0, **{k: getattr(x, "value", x) for k, x in cmd.items()}},
        a, cs)
    assert (res.outputs["y"] == want).all()
    if n <= v.buffer:                       # whole rows, in groups the b row buffer holds
        group = max(1, (v.buffer // v.lanes) // -(-n // v.lanes))
        assert ("repeat" in c.programs[0].text()) == (rows // group > 1)


def test_a_two_operand_op_needs_its_operands_alike():
    g = Graph()
    with pytest.raises(CompileError, match=r"vpu add: b is \(2, 8\) int16, a is \(2, 8\) int8 \(accepted: b of a's shape, int8\)"):
        g.add(g.input("a", (2, 8)), g.input("b", (2, 8), "int16"))
    with pytest.raises(CompileError, match="vpu rope: .*accepted: b of a's shape, int32"):
        g.rope(g.input("c", (2, 8)), g.input("d", (2, 8)))


def test_a_load_of_what_the_tile_stored_follows_a_fence():
    rng = np.random.default_rng(4)
    g = Graph()
    h = g.matmul(g.input("x", (4, 32)), g.weight("w", rng.integers(-128, 128, (32, 32))), out="int32")
    g.output("y", g.requant_dyn(h)[0])
    c = compile(g, WIDE)
    lines = c.programs[0].text(addresses=False).splitlines()
    store = next(i for i, line in enumerate(lines) if line.startswith("store gemm_c"))
    load = next(i for i, line in enumerate(lines) if line.startswith("load vpu_a"))
    assert store < load and "fence store" in lines[store:load], lines
    assert not any("fence" in line for line in lines[:store])
    _run(c, {"x": rng.integers(-128, 128, (4, 32))})


def test_api_errors_name_the_problem():
    g = Graph()
    x = g.input("x", (4, 8))
    w = g.weight("w", np.ones((8, 4), np.int8))
    with pytest.raises(CompileError, match="x columns == w rows"):
        g.matmul(x, g.weight("w2", np.ones((9, 4), np.int8)), mult=1, shift=0)
    with pytest.raises(CompileError, match="an int8 output needs mult and shift"):
        g.matmul(x, w)
    with pytest.raises(CompileError, match="'x': a tensor of that name exists already"):
        g.input("x", (1, 1))
    with pytest.raises(CompileError, match="shift: values must be integers in 0..63"):
        g.matmul(x, w, mult=1, shift=64)
    with pytest.raises(CompileError, match="graph: no outputs"):
        compile(g, SMALL)
    g.output("h", g.matmul(x, w, mult=1, shift=0))
    c = compile(g, SMALL)
    with pytest.raises(CompileError, match=r"inputs: missing \['x'\]"):
        c.memory_image({})
    with pytest.raises(CompileError, match="values must be int8 integers"):
        c.memory_image({"x": np.full((4, 8), 200)})
    with pytest.raises(CompileError, match="output 'y': no such output"):
        c.read_output(c.image, "y")
    with pytest.raises(CompileError, match="no tiling fits the GEMM engine"):
        matmul_tiling(TileConfig(gemm=GEMMParams(rows=2, cols=2, a_depth=4, b_depth=4, c_depth=4, max_n=4),
                                 hbm_bytes=1 << 16, channel_shift=16), 4, 64, 8, 1)


def test_programs_assemble_back_from_their_text_and_the_config_round_trips():
    rng = np.random.default_rng(2)
    c = _matmul_case(SMALL, 9, 40, 20, "int8", rng)
    p = c.programs[0]
    assert asm.assemble(p.text(addresses=False), config=SMALL) == p.words
    assert c.image[p.base:p.base + len(p.bytes)].tobytes() == p.bytes
    assert TileConfig.from_tile_params(SMALL.to_tile_params()) == SMALL
    assert SMALL.to_tile_params().as_dict() == {
        "rows": 4, "cols": 4, "a_depth": 64, "b_depth": 64, "c_depth": 64, "max_n": 16, "lanes": 2,
        "vpu_buffer": 32, "vpu_channels": 32, "addr_width": 16, "hbm_bytes": 1 << 16, "id_width": 4,
        "outstanding": 8}
