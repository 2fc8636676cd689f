"""NoC mesh tests: golden-model traffic per mesh size, hardware-generator checks, bench targets.

One Verilator build per parameter set; every cocotb test selected for it runs on that build.
"""

import pytest

from conftest import run_block
from scoville.sim.blocks import get_block
from scoville.sim.noc_sweep import bench_point
from scoville.sim.runner import run


def run_noc(params, testcase, sim="verilator", seed=None, env=None):
    # -O0 Verilator builds with only the ports public: a mesh compiles several times faster
    # (see sim.runner._ports_only_args), and these tests are bound by Python or by the
    # hardware generators, not by the simulated logic's speed.
    block = get_block("noc")
    return run(block, block.configure(**params).as_dict(), module="scoville.verif.tb_noc", sim=sim,
               testcase=testcase, seed=seed, env=env, fast_compile=sim == "verilator",
               ports_only=True)


GOLDEN = r"\.(traffic|saturation|zero_load_latency|class_isolation|reset_mid_traffic)"
GENERATORS = r"\.(bench_patterns|bench_zero_load)"

# Two message classes on 2 VCs (one each), 32-bit flits, with the bench generators.
MESH_2X2 = dict(cols=2, rows=2, vcs=2, buffer=4, flit_width=32, classes=2)
# Non-square, YX routing, buffers below the credit round trip, no generators.
MESH_3X5 = dict(cols=3, rows=5, vcs=2, buffer=2, flit_width=28, routing="yx", traffic_gen=False)
# The bench configuration of the second target (2 VCs x 4 flits, 64-bit flits).
MESH_4X4 = dict(cols=4, rows=4, vcs=2, buffer=4)
# Message endpoints: (destination, payload of any length) in, (source, payload) out.
MESH_MSG = dict(cols=2, rows=3, vcs=2, buffer=4, flit_width=32, classes=2, traffic_gen=False,
                message_ni=True)
MESH_4X4_B8 = dict(cols=4, rows=4, vcs=2, buffer=8)
MESH_8X8 = dict(cols=8, rows=8, vcs=2, buffer=8)
# 8x8 in `make test`: one VC of 4 flits, 32-bit flits (the generators' header needs 29 bits):
# the smallest model that still has every router, link and endpoint of the 8x8 mesh.
# No latency histogram (64 x 32-bit counters per node, nearly half of that model's Verilog).
MESH_8X8_LITE = dict(cols=8, rows=8, vcs=1, buffer=4, flit_width=32, histogram=False)


def test_noc_2x2():
    run_noc(MESH_2X2, GOLDEN + "|" + GENERATORS)


@pytest.mark.icarus
def test_noc_2x2_icarus(icarus):
    run_noc(MESH_2X2, r"\.zero_load_latency$|\.traffic.*uniform|\.class_isolation", sim=icarus)


def test_noc_messages():
    run_noc(MESH_MSG, GOLDEN)


def test_noc_3x5():
    # 3 columns and 5 rows in 2- and 3-bit header fields: heads can name nodes off the mesh.
    run_noc(MESH_3X5, GOLDEN + r"|\.out_of_mesh_destinations")


def test_noc_4x4():
    run_noc(MESH_4X4, GOLDEN + "|" + r"\.bench_patterns")


def _targets(params, *, saturation, zero_load):
    low = bench_point(params, {"traffic": "uniform", "rate": "0.01", "cycles": 5000})
    high = bench_point(params, {"traffic": "uniform", "rate": "1.0", "cycles": 5000})
    for r in (low, high):
        assert r["lost"] == 0 and r["misrouted"] == 0 and r["corrupt"] == 0, r
    assert low["avg_latency"] <= zero_load, low
    assert abs(low["avg_latency"] - low["zero_load_latency"]) < 0.5, low
    assert high["accepted"] >= saturation, high
    return low, high


def test_noc_4x4_targets():
    """Issue targets on 4x4 uniform 1-flit packets: zero-load <= 12 cycles; saturation
    >= 0.60 flits/node/cycle with 2 VCs x 4 flits."""
    _targets(MESH_4X4, saturation=0.60, zero_load=12)


@pytest.mark.slow
def test_noc_4x4_targets_buffer8():
    """Saturation >= 0.70 flits/node/cycle with 2 VCs x 8 flits."""
    _targets(MESH_4X4_B8, saturation=0.70, zero_load=12)


def test_noc_8x8_lite():
    """8x8 in every pattern: the scoreboard (exactly once, right node, intact, in order per
    flow) on 4 packets per node with stalls everywhere, the exact zero-load latency, and the
    hardware generators past saturation (nothing lost, misrouted or corrupt; the mesh drains)."""
    run_noc(MESH_8X8_LITE, r"\.traffic|\.zero_load_latency|\.bench_patterns",
            env={"SCOVILLE_NOC_PACKETS": "4"})


@pytest.mark.slow
def test_noc_8x8():
    """8x8: generators in every pattern (no loss, drains) and saturation >= 0.35."""
    run_noc(MESH_8X8, r"\.bench_patterns")
    _targets(MESH_8X8, saturation=0.35, zero_load=20)


@pytest.mark.parametrize("params", [dict(vcs=2, buffer=4, flit_width=32),
                                    dict(vcs=1, buffer=3, flit_width=16, routing="yx")])
def test_noc_router(params):
    run_block("noc_router", params, "scoville.verif.tb_noc_router", fast_compile=True)


@pytest.mark.icarus
def test_noc_router_icarus(icarus):
    run_block("noc_router", dict(vcs=3, buffer=2, flit_width=20), "scoville.verif.tb_noc_router",
              sim=icarus, testcase=r"\.random_traffic")


# AXI4 bridge pair: 2x2 mesh, managers on nodes 0 and 1, subordinates (verif.axi_mem.AxiMemory) on nodes 2 and 3.
NOC_AXI = dict(cols=2, rows=2, vcs=2, buffer=4, data_width=32, addr_width=18, node_shift=16,
               id_width=4, managers=2, subordinates=2, max_outstanding=8)


def test_noc_axi():
    run_block("noc_axi", NOC_AXI, "scoville.verif.tb_noc_axi", fast_compile=True)


@pytest.mark.icarus
def test_noc_axi_icarus(icarus):
    run_block("noc_axi", NOC_AXI, "scoville.verif.tb_noc_axi", sim=icarus, testcase=r"\.zero_load_latency")


# ---- wire formats: pure Python (layouts and enums), and the gateware's decode of them ----------

import random  # noqa: E402
from enum import Enum  # noqa: E402

from amaranth.lib import data  # noqa: E402

from scoville.hw.noc.axi_bridge import (AXIBridgeSubordinate, MsgClass, ReqKind,  # noqa: E402
                                        RspKind, bridge_flit_width, request_layout,
                                        response_layout, subordinate_id_layout, wbeat_layout)
from scoville.hw.noc.flit import (dest_layout, flit_layout, header_fields,  # noqa: E402
                                  message_head_layout)
from scoville.hw.noc.ni import (Depacketizer, Packetizer, beat_layout,  # noqa: E402
                                delivery_layout, message_layout)
from scoville.hw.testbench.noc import (BODY_LAYOUT, BODY_XOR, NoCParams,  # noqa: E402
                                       bench_head_layout, body_word)
from scoville.verif.noc_model import NoCModel, model_head_layout  # noqa: E402


def _roundtrip(layout, fields):
    bits = layout.const(fields).as_bits()
    assert 0 <= bits < 1 << layout.size
    return data.Const(layout, bits)


def _random_fields(layout, rng):
    """Random values for every field of a (nested) StructLayout, enums as members."""
    out = {}
    for name, field in layout:
        shape = field.shape
        if isinstance(shape, data.StructLayout):
            out[name] = _random_fields(shape, rng)
        elif isinstance(shape, type) and issubclass(shape, Enum):
            out[name] = rng.choice(list(shape))
        else:
            width = field.width
            out[name] = rng.getrandbits(width) if width else 0
    return out


def _fields_of(const, layout):
    return {name: (_fields_of(const[name], field.shape) if isinstance(field.shape, data.StructLayout)
                   else const[name]) for name, field in layout}


@pytest.mark.parametrize("cols,rows", [(2, 2), (3, 5), (4, 4), (16, 16)])
def test_noc_layouts_roundtrip(cols, rows):
    rng = random.Random(cols * 100 + rows)
    nodes = cols * rows
    xb, yb = header_fields(cols, rows)
    layouts = [dest_layout(cols, rows), message_head_layout(cols, rows), bench_head_layout(cols, rows),
               flit_layout(64, 2), flit_layout(28, 3), beat_layout(32), message_layout(nodes, 32),
               delivery_layout(nodes, 32), request_layout(32, 4), wbeat_layout(64),
               response_layout(64, 4), subordinate_id_layout(4, nodes),
               model_head_layout(cols, rows, 64), BODY_LAYOUT]
    assert dest_layout(cols, rows).size == xb + yb
    for layout in layouts:
        for _ in range(20):
            fields = _random_fields(layout, rng)
            assert _fields_of(_roundtrip(layout, fields), layout) == fields, layout


def test_noc_heads_share_the_routing_header():
    """Every head layout starts with the routing header at bit 0, so the routers' decode reads
    the destination of each of them."""
    for head in (message_head_layout(3, 5), bench_head_layout(3, 5), model_head_layout(3, 5, 28)):
        assert head["dst"].offset == 0 and head["dst"].shape == dest_layout(3, 5)
    model = NoCModel(cols=3, rows=5, flit_width=28)
    h = model.head(src=7, dst=13, cls=1, seq=5, rng=random.Random(1))
    assert model.dst_of(h) == 13 and model.src_of(h) == 7
    assert data.Const(dest_layout(3, 5), h & ((1 << 5) - 1)).x == 13 % 3


def test_noc_enums():
    assert [c.value for c in MsgClass] == [0, 1]
    assert request_layout(32, 4)["kind"].shape is ReqKind
    assert response_layout(32, 4)["kind"].shape is RspKind
    assert {k.name: k.value for k in RspKind} == {"R": 0, "B": 1, "NOP": 2}


def test_bench_params_and_body():
    need = bench_head_layout(4, 4).size
    with pytest.raises(ValueError, match=f"at least {need} bits"):
        NoCParams(cols=4, rows=4, flit_width=need - 1)
    NoCParams(cols=4, rows=4, flit_width=need - 1, traffic_gen=False)
    word = body_word(src=5, ts=0x1234, k=3, width=48)
    low = data.Const(BODY_LAYOUT, (word & 0xFFFFFFFF) ^ BODY_XOR)
    assert (low.k, low.ts, low.src) == (3, 0x1234, 5)
    assert word >> 32 == (word & 0xFFFF)


def _simulate(dut, bench):
    from amaranth.sim import Simulator
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_packetizer_head_decodes_through_layout():
    """Amaranth's Python simulator: the head the Packetizer emits unpacks through
    message_head_layout, and the Depacketizer reads the source back from a head packed with it."""
    cols, rows, w = 2, 3, 32
    pk = Packetizer(cols=cols, rows=rows, flit_width=w, src=4)
    heads = []

    async def bench(ctx):
        ctx.set(pk.o.ready, 1)
        ctx.set(pk.i.payload, {"dst": 5, "data": 0xABC, "last": 1})
        ctx.set(pk.i.valid, 1)
        heads.append(ctx.get(pk.o.payload.data))
        await ctx.tick()
        assert ctx.get(pk.o.payload.data) == 0xABC
    _simulate(pk, bench)
    head = data.Const(message_head_layout(cols, rows), heads[0])
    assert (head.dst.x, head.dst.y, head.src) == (5 % cols, 5 // cols, 4)

    dp = Depacketizer(cols=cols, rows=rows, flit_width=w)
    got = []

    async def bench2(ctx):
        ctx.set(dp.o.ready, 1)
        hbits = message_head_layout(cols, rows).const({"dst": {"x": 0, "y": 0}, "src": 3}).as_bits()
        for bits, last in ((hbits, 0), (0x55, 1)):
            ctx.set(dp.i.payload, beat_layout(w).const({"data": bits, "last": last}))
            ctx.set(dp.i.valid, 1)
            if ctx.get(dp.o.valid):
                got.append(ctx.get(dp.o.payload.src))
            await ctx.tick()
    _simulate(dp, bench2)
    assert got == [3]


def test_subordinate_bridge_decodes_req_kind():
    """Amaranth's Python simulator: a request beat packed with request_layout and kind AR (AW)
    raises ARVALID (AWVALID) with the packed fields on m_axi."""
    aw, dw, iw, nodes = 16, 32, 2, 4
    fw = bridge_flit_width(addr_width=aw, data_width=dw, id_width=iw)
    dut = AXIBridgeSubordinate(addr_width=aw, data_width=dw, id_width=iw, nodes=nodes, flit_width=fw)
    req = request_layout(aw, iw)
    seen = {}

    async def bench(ctx):
        for kind, last in ((ReqKind.AR, 1), (ReqKind.AW, 0)):
            beat = req.const({"kind": kind, "id": 1, "addr": 0x1234, "len": 3, "size": 2,
                              "burst": 1}).as_bits()
            ctx.set(dut.req.payload, {"src": 3, "data": beat, "last": last})
            ctx.set(dut.req.valid, 1)
            await ctx.tick()
            ctx.set(dut.req.valid, 0)
            ch = "ar" if kind is ReqKind.AR else "aw"
            seen[kind] = tuple(ctx.get(getattr(dut.m_axi, ch + f)) for f in
                               ("valid", "id", "addr", "len", "size", "burst"))
            ctx.set(dut.m_axi.arready, 1)
            ctx.set(dut.m_axi.awready, 1)
            await ctx.tick()
    _simulate(dut, bench)
    for kind in ReqKind:
        sub_id = subordinate_id_layout(iw, nodes).const({"id": 1, "node": 3}).as_bits()
        assert seen[kind] == (1, sub_id, 0x1234, 3, 2, 1), (kind, seen[kind])
