"""The AXI memory model of ``verif/axi_mem.py`` on its own: pure-Python helpers, and cocotb tests
(``verif/tb_axi_mem.py``) through a pass-through DUT: latency as stated, an injected error range
answers SLVERR/DECERR, a guard-region write is caught with its address, reads of different IDs
are really reordered and interleaved, same-ID order is kept."""

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from cocotbext.axi import AxiBurstType

from scoville.hw.axi import AXI4Signature
from scoville.sim.blocks import Block
from scoville.sim.runner import run
from scoville.verif.axi_mem import AxiMemory, _Burst, _strobe_runs, compare_bytes


class AXIPassThrough(wiring.Component):
    """``s_axi`` wired straight to ``m_axi`` (no latency), plus a cycle counter so the design has
    ``clk``/``rst`` for the memory model and the master."""

    def __init__(self, *, data_width=32, addr_width=16, id_width=4):
        sig = AXI4Signature(addr_width=addr_width, data_width=data_width, id_width=id_width)
        super().__init__({"s_axi": In(sig), "m_axi": Out(sig), "cycles": Out(16)})

    def elaborate(self, platform):
        m = Module()
        for name, member in self.m_axi.signature.members.items():
            src, dst = getattr(self.s_axi, name), getattr(self.m_axi, name)
            # manager-driven members (Out on m_axi) go forward, ready/responses come back
            m.d.comb += dst.eq(src) if member.flow == Out else src.eq(dst)
        count = Signal(16)
        m.d.sync += count.eq(count + 1)
        m.d.comb += self.cycles.eq(count)
        return m


def axi_pass_through(**params):
    return AXIPassThrough(**params)


BLOCK = Block(name="axi_mem_loop", summary="pass-through for the AXI memory model's tests", params=dict,
              factory=axi_pass_through, testbench="scoville.verif.tb_axi_mem")


def test_axi_mem_cocotb():
    run(BLOCK, {"data_width": 32, "addr_width": 16, "id_width": 4}, module="scoville.verif.tb_axi_mem",
        fast_compile=True)


def test_compare_bytes_names_first_difference():
    assert compare_bytes(b"abc", b"abc") is None
    assert compare_bytes(b"abcd", b"abXY", base=0x100, what="m") == \
        "m: 2 byte(s) differ, first at 0x102: got 0x63 expected 0x58"
    assert compare_bytes(b"ab", b"abc") == "memory: 2 bytes, expected 3"


def test_strobe_runs():
    assert _strobe_runs(0xF, 4) == [(0, 4)]
    assert _strobe_runs(0b1001, 4) == [(0, 1), (3, 4)]
    assert _strobe_runs(0, 4) == []
    assert _strobe_runs(0b0110, 4) == [(1, 3)]


def test_burst_addresses():
    incr = _Burst(0, 0x1004, 4, 2, AxiBurstType.INCR, 0)
    assert [incr.address(n) for n in range(4)] == [0x1004, 0x1008, 0x100C, 0x1010]
    wrap = _Burst(0, 0x1038, 4, 3, AxiBurstType.WRAP, 0)      # 4 x 8 bytes wrapping at 32
    assert [wrap.address(n) for n in range(4)] == [0x1038, 0x1020, 0x1028, 0x1030]
    fixed = _Burst(0, 0x2002, 3, 1, AxiBurstType.FIXED, 0)
    assert [fixed.address(n) for n in range(3)] == [0x2002] * 3


@pytest.mark.parametrize("kw, word", [
    ({"size": 0}, "size"), ({"size": 16, "read_latency": -1}, "read_latency"),
    ({"size": 16, "read_depth": 0}, "read_depth"), ({"size": 16, "stall": 1.0}, "stall"),
    ({"size": 16, "interleave": True}, "interleave"),
])
def test_parameters_validated(kw, word):
    with pytest.raises(ValueError, match=word):
        AxiMemory(None, None, **kw)
