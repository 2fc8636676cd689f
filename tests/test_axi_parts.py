"""Shared AXI parts: parameter validation, interfaces, and cocotb runs on Verilator.

One Verilator build per parameter set; every cocotb test of ``verif/tb_axi_parts.py`` for that
block runs on it (the others skip themselves).
"""

import pytest
from amaranth.lib import wiring

from conftest import run_block
from scoville.hw.axi_id import AXIIDAdapter, AXIIDAdapterParams
from scoville.hw.axi_mux import AXIMux, AXIMuxParams
from scoville.hw.axi_width import AXIWidthAdapter, AXIWidthAdapterParams
from scoville.hw.axil_decoder import AXILiteDecoder, AXILiteDecoderParams
from scoville.hw.params import ParameterError

# Rejected constructions leave half-built components behind; that is what they test.
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

MODULE = "scoville.verif.tb_axi_parts"

# Three managers (not a power of two: source value 3 names no manager), 2-bit IDs.
MUX = dict(managers=3, addr_width=16, data_width=32, id_width=2, write_queue=4)
# Three windows of different sizes with holes between them and above them.
DECODER = dict(addr_width=16, data_width=32, regions="0x0000+0x1000,0x1000+0x0400,0x4000+0x4000")
# 16 manager IDs onto 2 subordinate IDs, at most 2 in flight per slot: heavy slot contention.
ID_NARROW = dict(addr_width=16, data_width=32, s_id_width=4, m_id_width=1, max_outstanding=2)
# 8 manager IDs onto none: one ID in flight per direction (the subordinate sees a constant 0 ID).
ID_SERIAL = dict(addr_width=16, data_width=32, s_id_width=3, m_id_width=0, max_outstanding=3)
ID_WIDEN = dict(addr_width=16, data_width=64, s_id_width=2, m_id_width=5, max_outstanding=1)
# 32-bit manager on a 128-bit subordinate and the reverse: 4 lane groups each way.
UPSIZE = dict(addr_width=16, s_data_width=32, m_data_width=128, id_width=2, max_outstanding=4)
DOWNSIZE = dict(addr_width=16, s_data_width=128, m_data_width=32, id_width=2, max_outstanding=4)


def test_axi_mux():
    run_block("axi_mux", MUX, MODULE)


def test_axil_decoder():
    run_block("axil_decoder", DECODER, MODULE)


@pytest.mark.parametrize("params", [ID_NARROW, ID_SERIAL, ID_WIDEN], ids=["narrow", "serial", "widen"])
def test_axi_id(params):
    run_block("axi_id", params, MODULE)


@pytest.mark.parametrize("params", [UPSIZE, DOWNSIZE], ids=["up", "down"])
def test_axi_width(params):
    run_block("axi_width", params, MODULE)


@pytest.mark.icarus
def test_axi_mux_icarus(icarus):
    """The second simulator on the mux, fewer operations."""
    run_block("axi_mux", MUX, MODULE, sim=icarus, testcase=r"\.mux_", env={"SCOVILLE_AXI_OPS": "40"})


# ---- parameters and interfaces: pure Python -----------------------------------------------------

@pytest.mark.parametrize("kwargs, name", [
    (dict(managers=1), "managers"), (dict(managers=17), "managers"), (dict(write_queue=0), "write_queue"),
    (dict(managers=16, id_width=29), "id_width"),
])
def test_mux_params_rejected(kwargs, name):
    with pytest.raises(ParameterError, match=rf"^{name}: .*accepted"):
        AXIMuxParams(**kwargs)
    with pytest.raises(ParameterError, match=rf"^{name}: .*accepted"):
        AXIMux(**{**MUX, **kwargs})


def test_mux_ports():
    mux = AXIMux(**MUX)
    assert mux.m_axi.signature.id_width == 4 and len(mux.s_axi) == 3
    assert all(s.signature.id_width == 2 for s in mux.s_axi)
    with pytest.raises(TypeError):
        AXIMux(3, 16, 32)


@pytest.mark.parametrize("regions, message", [
    ("0x0+0x1000,0x800+0x800", r"regions\[1\]: window 0x800\+0x800 overlaps regions\[0\]"),
    ("0x100+0x1000", r"regions\[0\] base: 0x100 is not aligned"),
    ("0x0+0x6", r"regions\[0\] size: 6 is out of range \(accepted: a power of two in 4\.\."),
    ("0x0+0x2", r"regions\[0\] size: 2 is out of range"),
    ("0xf000+0x2000", r"regions\[0\] base: 61440 is out of range \(accepted: an integer in 0\.\.57344\)"),
    ("0x0+0x1000,zz", r"regions\[1\]: 'zz' is not BASE\+SIZE"),
])
def test_decoder_map_rejected(regions, message):
    with pytest.raises(ParameterError, match=message):
        AXILiteDecoderParams(regions=regions)


def test_decoder_ports_and_checks():
    dec = AXILiteDecoder(addr_width=16, regions=[(0x4000, 0x4000), (0x0, 0x100)])
    assert [s.signature.addr_width for s in dec.m_axil] == [14, 8]
    with pytest.raises(ParameterError, match=r"^data_width: 48 is not accepted"):
        AXILiteDecoder(addr_width=16, data_width=48, regions=[(0, 0x100)])
    with pytest.raises(ParameterError, match=r"^regions: 0 windows"):
        AXILiteDecoder(addr_width=16, regions=[])


@pytest.mark.parametrize("s, m, ok", [(4, 2, True), (4, 0, True), (2, 8, True), (0, 3, True), (5, 5, True),
                                      (10, 7, False), (33, 2, False), (2, 33, False)])
def test_id_adapter_widths(s, m, ok):
    if ok:
        adapter = AXIIDAdapter(addr_width=16, data_width=32, s_id_width=s, m_id_width=m)
        assert adapter.m_axi.signature.id_width == m and adapter.narrowing == (m < s)
    else:
        with pytest.raises(ParameterError, match=r"(s|m)_id_width: .*accepted"):
            AXIIDAdapterParams(s_id_width=s, m_id_width=m)


def test_components_are_wiring_components():
    for part in (AXIMux(**MUX), AXIIDAdapter(**ID_NARROW), AXILiteDecoder(addr_width=16, regions=[(0, 0x100)])):
        assert isinstance(part, wiring.Component)


@pytest.mark.parametrize("kwargs, message", [
    (dict(s_data_width=32, m_data_width=32), r"^m_data_width: 32 equals s_data_width"),
    (dict(s_data_width=48, m_data_width=32), r"^s_data_width: 48 is out of range \(accepted: a power of two in 8\.\.1024\)"),
    (dict(s_data_width=32, m_data_width=2048), r"^m_data_width: 2048 is out of range"),
    (dict(max_outstanding=0), r"^max_outstanding: 0 is out of range \(accepted: an integer in 1\.\.256\)"),
])
def test_width_params_rejected(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        AXIWidthAdapterParams(**kwargs)
    with pytest.raises(ParameterError, match=message):
        AXIWidthAdapter(**{**UPSIZE, **kwargs})


def test_width_ports():
    up, down = AXIWidthAdapter(**UPSIZE), AXIWidthAdapter(**DOWNSIZE)
    assert up.upsizer and not down.upsizer
    assert up.m_axi.signature.data_width == 128 and up.m_axi.signature.id_width == 0
    assert down.s_axi.signature.data_width == 128 and down.s_axi.signature.id_width == 2


def _next_address_model(addr, size, length, burst, width):
    step = 1 << size
    if burst == 0:                      # FIXED
        return addr
    incr = (addr // step * step + step) % (1 << width)
    if burst == 2:                      # WRAP: inside the aligned window of length * step bytes
        window = (length + 1) * step
        return addr // window * window + incr % window
    return incr


def test_width_beat_addresses_follow_axi_rules():
    """The adapters' beat-address walker against the AXI4 rules for INCR (unaligned starts
    included), WRAP (2, 4, 8, 16 beats) and FIXED, on Amaranth's simulator."""
    import random
    from amaranth.hdl import Module, Signal
    from amaranth.sim import Simulator
    from scoville.hw.axi_width import _next_address

    width = 16
    cur, size, length, burst = Signal(width), Signal(3), Signal(8), Signal(2)
    out = Signal(width)
    m = Module()
    m.d.comb += out.eq(_next_address(cur, size, length, burst))
    rng = random.Random(5)
    cases = []
    for _ in range(600):
        b = rng.choice([0, 1, 2])
        s = rng.randrange(8)
        n = rng.choice([1, 3, 7, 15]) if b == 2 else rng.randrange(256)
        a = rng.randrange(1 << width)
        if b == 2:
            a = a >> s << s                 # WRAP starts aligned to the transfer size
        cases.append((a, s, n, b))

    checked = []

    async def bench(ctx):
        for a, s, n, b in cases:
            ctx.set(cur, a)
            ctx.set(size, s)
            ctx.set(length, n)
            ctx.set(burst, b)
            want = _next_address_model(a, s, n, b, width)
            assert ctx.get(out) == want, f"addr {a:#x} size {s} len {n} burst {b}: {ctx.get(out):#x}, want {want:#x}"
            checked.append(b)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert len(checked) == len(cases) and set(checked) == {0, 1, 2}
