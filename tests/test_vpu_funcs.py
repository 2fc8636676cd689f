"""The VPU's function units (hw/vpu/funcs.py) against their numpy models (verif/vpu_funcs.py),
and the models against the real functions.

Gateware runs on Amaranth's Python simulator with ``en`` dropped at random: each output is
compared, bit for bit, on every cycle from the ``LATENCY``-th enabled edge after its input on,
so a stage that moves while ``en = 0`` or a result that does not hold shows up as a mismatch;
inputs presented on stalled edges are random junk the unit must ignore.
"""

import gc
import random

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from scoville.hw.vpu import tables
from scoville.hw.vpu.funcs import PWL, Exp2Neg, Recip, Rsqrt
from scoville.verif import vpu_funcs as model


def simulate(dut, inputs, expected, *, seed, p_en=0.6):
    """Drive ``inputs`` (port name -> 1-D array, one element per vector) through ``dut`` with a
    random clock enable and check its outputs against ``expected`` (port name -> array) on every
    cycle from the vector's ``LATENCY``-th enabled edge until the next enabled edge. Returns the
    number of (vector, cycle) checks."""
    latency = type(dut).LATENCY
    names = list(inputs)
    vectors = list(zip(*(np.asarray(inputs[n]).tolist() for n in names)))
    rng = random.Random(seed)
    seen = []                       # (vector index, cycle, outputs) for every checked cycle

    async def bench(ctx):
        sampled = 0                 # vectors taken by enabled edges so far
        cycle = 0
        while sampled < len(vectors) + latency - 1:
            en = rng.random() < p_en
            vec = vectors[sampled] if en and sampled < len(vectors) else rng.choice(vectors)
            for name, value in zip(names, vec):
                ctx.set(getattr(dut, name), value)
            ctx.set(dut.en, en)
            await ctx.tick()
            sampled += en
            cycle += 1
            j = sampled - latency
            if 0 <= j < len(vectors):
                seen.append((j, cycle, tuple(ctx.get(getattr(dut, n)) for n in expected)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()

    idx = np.array([j for j, _, _ in seen])
    assert set(idx.tolist()) == set(range(len(vectors))), "some vectors never reached the output"
    assert len(seen) > len(vectors), "no stalled cycle was checked"
    for k, name in enumerate(expected):
        got = np.array([out[k] for _, _, out in seen], dtype=object)
        want = np.asarray(expected[name])[idx]
        bad = np.flatnonzero(got != want)
        if bad.size:
            j, cycle, _ = seen[bad[0]]
            raise AssertionError(
                f"{type(dut).__name__}.{name}: {bad.size} mismatches; first at cycle {cycle}, input "
                f"{dict(zip(names, vectors[j]))}: got {got[bad[0]]}, model {want[bad[0]]}")
    return len(seen)


def _powers_and_neighbours(bits):
    vals = {0, 1, (1 << bits) - 1}
    for k in range(bits):
        vals |= {(1 << k) - 1, 1 << k, (1 << k) + 1}
    return sorted(v for v in vals if 0 <= v < 1 << bits)


def _log_uniform(rng, n, bits):
    """``n`` random ``bits``-bit words, each shifted right by a random amount (every length)."""
    words = rng.integers(0, 1 << bits, size=n, dtype=np.uint64, endpoint=False)
    return words >> rng.integers(0, bits, size=n).astype(np.uint64)


# ---- Exp2Neg -------------------------------------------------------------------------------------

def _exp2neg_edges(frac_bits, int_bits):
    n = 1 << frac_bits
    vals = set(_powers_and_neighbours(frac_bits + int_bits))
    for k in range(min(1 << int_bits, 22)):              # every shift up to past the k >= 18 cut
        vals |= {k * n, k * n + 1, k * n + n // 2, k * n + n - 2, k * n + n - 1}
    vals |= set(range(n))                                # the whole table at k = 0
    return sorted(v for v in vals if v < 1 << (frac_bits + int_bits))


@pytest.mark.parametrize("frac_bits,int_bits", [(8, 8), (4, 4), (12, 2)])
def test_exp2neg_gateware(frac_bits, int_bits):
    """Exhaustive: the edge values, then every d in a random order (65 536 at 8/8, ~6 s)."""
    rng = np.random.default_rng(1)
    bits = frac_bits + int_bits
    d = np.concatenate([_exp2neg_edges(frac_bits, int_bits), rng.permutation(1 << bits)])
    dut = Exp2Neg(frac_bits=frac_bits, int_bits=int_bits)
    simulate(dut, {"d": d}, {"y": model.exp2neg(d, frac_bits)}, seed=frac_bits)


# ---- Recip, Rsqrt --------------------------------------------------------------------------------

def _norm_edges(width):
    vals = set(_powers_and_neighbours(width))
    for p in (9, 10, 11, 20, 33, width - 1):
        for i in (0, 1, 2, 511, 512, 513, 1022, 1023):
            base = (1 << p) + (i << p >> 10) if p >= 10 else (1 << p) + (i >> (10 - p))
            vals |= {base - 1, base, base + 1}
        vals |= {(3 << p) - 1, 3 << p, (3 << p) + 1}       # m = 3 (Rsqrt's middle third)
    return sorted(v for v in vals if 0 <= v < 1 << width)


def _norm_inputs(width, n_random):
    rng = np.random.default_rng(width)
    rand = _log_uniform(rng, n_random, width) if width == 64 else \
        rng.integers(0, 1 << width, size=n_random).astype(np.uint64)
    return np.concatenate([np.array(_norm_edges(width), dtype=np.uint64), rand])


@pytest.mark.parametrize("width", [64, 9, 2])
def test_recip_gateware(width):
    x = _norm_inputs(width, 8000) if width > 12 else np.arange(1 << width, dtype=np.uint64)
    mant, exp = model.recip(x)
    simulate(Recip(width=width), {"x": x}, {"mant": mant, "exp": exp}, seed=width)


@pytest.mark.parametrize("width", [64, 9, 3])
def test_rsqrt_gateware(width):
    x = _norm_inputs(width, 8000) if width > 12 else np.arange(1 << width, dtype=np.uint64)
    mant, half = model.rsqrt(x)
    simulate(Rsqrt(width=width), {"x": x}, {"mant": mant, "half_exp": half}, seed=width + 1)


# ---- PWL -----------------------------------------------------------------------------------------

def test_pwl_gateware():
    """The edge values with both functions, then every t in -9000..9000 with both functions and
    300 random int32 values, in a random order."""
    rng = np.random.default_rng(3)
    edges = {0, 1, -1, 8191, 8192, 8193, -8191, -8192, -8193, 9000, -9000,
             (1 << 31) - 1, -(1 << 31), (1 << 15), -(1 << 15), (1 << 13) - 64}
    for s in range(0, 129):                               # segment boundaries and their ends
        edges |= {128 * s - 8192 + o for o in (-1, 0, 1, 63, 64)}
    edges = np.array(sorted(edges), dtype=np.int64)
    sweep = np.arange(-9000, 9001)
    body_t = np.concatenate([sweep, sweep, rng.integers(-(1 << 31), 1 << 31, size=300)])
    body_f = np.concatenate([np.zeros_like(sweep), np.ones_like(sweep), rng.integers(0, 2, size=300)])
    order = rng.permutation(len(body_t))
    t = np.concatenate([edges, edges, body_t[order]])
    func = np.concatenate([np.zeros_like(edges), np.ones_like(edges), body_f[order]])
    simulate(PWL(), {"t": t, "func": func}, {"y": model.pwl(t, func)}, seed=4)


# ---- models against the real functions -----------------------------------------------------------

def test_models_within_documented_accuracy():
    """The figures of verif/vpu_funcs.py's docstring (ACCURACY_BOUNDS) hold, and are current:
    each bound is the measured figure rounded up by less than 5 %."""
    got = model.accuracy()
    assert set(got) == set(model.ACCURACY_BOUNDS)
    for unit, (lsb, rel) in model.ACCURACY_BOUNDS.items():
        assert got[unit]["lsb"] <= lsb, (unit, got[unit])
        assert got[unit]["rel"] <= rel, (unit, got[unit])
        assert got[unit]["lsb"] > 0.95 * lsb and got[unit]["rel"] > 0.95 * rel, \
            f"{unit}: bound looser than the measured {got[unit]}: update the docstring and bounds"


def test_models_on_random_64_bit_words():
    """Uniform 64-bit words (MSB mostly at bit 63), beside accuracy()'s every-length inputs."""
    x = np.random.default_rng(5).integers(0, 1 << 64, size=100_000, dtype=np.uint64)
    mant, e = model.recip(x)
    assert np.all(np.abs(mant * np.ldexp(1.0, -(e + 17).astype(np.int32)) / model.recip_ref(x) - 1)
                  <= model.ACCURACY_BOUNDS["recip"][1])
    mant, h = model.rsqrt(x)
    assert np.all(np.abs(mant * np.ldexp(1.0, -(h + 16).astype(np.int32)) / model.rsqrt_ref(x) - 1)
                  <= model.ACCURACY_BOUNDS["rsqrt"][1])


def test_model_spot_values():
    """Hand-worked values of the formats."""
    assert model.exp2neg([0, 256, 512, 256 * 17, 256 * 18]).tolist() == [65536, 32768, 16384, 1, 0]
    mant, e = model.recip([0, 1, 2, 3, (1 << 64) - 1, 1 << 63])
    assert e.tolist() == [0, 0, 1, 1, 63, 63]
    assert mant.tolist() == [131008, 131008, 131008, tables.recip_table()[512],
                             tables.recip_table()[1023], 131008]
    mant, h = model.rsqrt([0, 1, 2, 3, 4, (1 << 64) - 1])
    q = tables.rsqrt_table()
    assert h.tolist() == [0, 0, 0, 0, 1, 31]
    assert mant.tolist() == [q[0], q[0], q[512], q[1024], q[0], q[1535]]
    assert model.pwl([-8193, -8192, 0, 8191, 8192, 1 << 20], 0).tolist() == \
        [0, tables.pwl_knots(0)[0], 0, model.pwl(8191, 0), 8192, 1 << 20]


# ---- tables ---------------------------------------------------------------------------------------

def test_tables():
    t = tables.exp2neg_table(8)
    assert len(t) == 256 and t[0] == 65536 and all(a > b for a, b in zip(t, t[1:]))
    assert max(t) < 1 << tables.EXP2_OUT_BITS
    r = tables.recip_table()
    assert len(r) == 1024 and all(a > b for a, b in zip(r, r[1:]))
    assert r[0] < 1 << tables.RECIP_MANT_BITS
    q = tables.rsqrt_table()
    assert len(q) == 1536 and all(a > b for a, b in zip(q, q[1:]))
    assert q[0] < 1 << tables.RSQRT_MANT_BITS
    y_bits, s_bits = tables.pwl_field_bits()
    for func in range(2):
        y, s = tables.pwl_knots(func), tables.pwl_slopes(func)
        assert len(y) == 129 and len(s) == 128 and y[64] == 0
        assert all(-(1 << (y_bits - 1)) <= v < 1 << (y_bits - 1) for v in y[:-1])
        assert all(-(1 << (s_bits - 1)) <= v < 1 << (s_bits - 1) for v in s)
        # Every knot is hit exactly (dx = 0), and Y + S is the next knot: segments meet.
        assert model.pwl(np.arange(128) * 128 - 8192, func).tolist() == y[:-1]
        assert [a + b for a, b in zip(y, s)] == y[1:]
    assert tables.pwl_table()[128 + 5] == (tables.pwl_knots(1)[5], tables.pwl_slopes(1)[5])


def test_pwl_frac_matches_vpu_layouts():
    from scoville.hw.vpu import layouts
    assert layouts.PWL_FRAC == tables.PWL_FRAC


# ---- construction, Verilog ------------------------------------------------------------------------

# A component refused in its constructor was never going to be elaborated.
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("cls,kwargs,exc", [
    (Exp2Neg, {"frac_bits": 0}, ValueError), (Exp2Neg, {"frac_bits": 13}, ValueError),
    (Exp2Neg, {"int_bits": 17}, ValueError), (Exp2Neg, {"int_bits": 2.0}, TypeError),
    (Recip, {"width": 1}, ValueError), (Recip, {"width": "64"}, TypeError),
    (Rsqrt, {"width": 129}, ValueError), (Rsqrt, {"width": True}, TypeError),
])
def test_parameters_validated(cls, kwargs, exc):
    with pytest.raises(exc, match=next(iter(kwargs))) as info:
        cls(**kwargs)
    del info
    gc.collect()            # its UnusedElaboratable warning now, under this test's filter


@pytest.mark.parametrize("make", [
    lambda: Exp2Neg(), lambda: Exp2Neg(frac_bits=4, int_bits=4), lambda: Recip(),
    lambda: Recip(width=9), lambda: Rsqrt(), lambda: Rsqrt(width=3), lambda: PWL(),
], ids=["exp2neg", "exp2neg_4_4", "recip", "recip_9", "rsqrt", "rsqrt_3", "pwl"])
def test_verilog(make):
    dut = make()
    text = verilog.convert(dut, name="top")
    assert "module top" in text
    assert "en" in dut.signature.members and dut.LATENCY in (2, 3)
