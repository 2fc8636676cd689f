"""Fmax harness: a block between registers, its whole interface reduced to two pins."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..ports import flat_ports


__all__ = ["FmaxHarness"]


class FmaxHarness(wiring.Component):
    """Wraps a component so every port reaches a register and the whole fits in four pins.

    Inputs come from a ``din``-fed shift register (unknown to synthesis, so nothing is constant
    folded); outputs are registered, XOR-folded in 32-bit groups into a second register rank,
    then into ``dout``. Paths into and out of the block start and end at flip-flops, as they
    would inside a chip.
    """

    GROUP = 32

    def __init__(self, *, dut):
        self._dut = dut
        super().__init__({"din": In(1), "dout": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self._dut
        ports = flat_ports(self._dut).values()
        inputs = [value for value, is_input in ports if is_input]
        outputs = [value for value, is_input in ports if not is_input]
        in_width = sum(len(v) for v in inputs)
        if in_width:
            chain = Signal(in_width)
            m.d.sync += chain.eq(Cat(self.din, chain[:-1]))
            offset = 0
            for value in inputs:
                m.d.comb += value.eq(chain[offset:offset + len(value)])
                offset += len(value)
        out_bits = Cat(*outputs)
        captured = Signal(len(out_bits))
        m.d.sync += captured.eq(out_bits)
        groups = Signal(max(1, (len(captured) + self.GROUP - 1) // self.GROUP))
        for g in range(len(groups)):
            m.d.sync += groups[g].eq(captured[g * self.GROUP:(g + 1) * self.GROUP].xor())
        m.d.sync += self.dout.eq(groups.xor())
        return m
