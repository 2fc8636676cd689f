"""ROPE's halves convention (pairs ``(j, j + n/2)``, as in Hugging Face checkpoints): the input
row reordered so that each output beat meets its partner beat.

Element ``j < h`` (h = n/2) of the output needs element ``j + h`` of the input, which arrives
``h / lanes`` beats later. With ``H = h / lanes`` beats per half, each row takes three phases:

* A (H cycles): first-half beats in, kept with their cos/sin beats; nothing out;
* B (H cycles): second-half beat k in; out: first-half beat k, its cos/sin, the incoming beat
  as its partner (``second`` = 0); the incoming beat and its cos/sin kept;
* C (H cycles): out: second-half beat k, its cos/sin, first-half beat k as its partner
  (``second`` = 1); nothing in.

Every element is rotated by the cos/sin of its own lane of ``s_axis_b`` (a host gives both
elements of a pair the same angle).

So a row of n elements takes ``3 * n / (2 * lanes)`` cycles: 2/3 of the lane rate (the GGUF
convention, pairs inside a beat, runs at the full rate). The halves must be whole beats
(``n/2`` a multiple of lanes) and at most ``depth`` beats; the command check enforces both.
The kept beats live in small memories with asynchronous read (distributed RAM on FPGAs).
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out


__all__ = ["HalvesPairing", "pair_layout"]


def pair_layout(lanes):
    """An output beat: the element word, its partner word, the cos/sin word, and whether the
    beat is in the row's second half (the sine's sign)."""
    return data.StructLayout({"a": 32 * lanes, "p": 32 * lanes, "b": 32 * lanes, "second": 1})


class HalvesPairing(wiring.Component):
    """See the module docstring.

    Members
    -------
    start : In(1)
        A new command begins (restarts phase A at beat 0).
    half_beats : In(16)
        H, constant during the command (1..depth).
    i_a, i_b : In(stream.Signature(32 * lanes))
        Element and cos/sin beats, in row order; both taken together.
    o : Out(stream.Signature(pair_layout(lanes)))
    """

    def __init__(self, *, lanes, depth):
        self._lanes, self._depth = lanes, depth
        super().__init__({
            "start": In(1), "half_beats": In(16),
            "i_a": In(stream.Signature(32 * lanes)), "i_b": In(stream.Signature(32 * lanes)),
            "o": Out(stream.Signature(pair_layout(lanes))),
        })

    def elaborate(self, platform):
        m = Module()
        W, D = 32 * self._lanes, self._depth
        mems = {}
        for name in ("first", "second", "coef"):
            mem = memory.Memory(shape=W, depth=D, init=[])
            m.submodules[f"{name}_mem"] = mem
            mems[name] = (mem.write_port(), mem.read_port(domain="comb"))
        k = Signal(range(max(D, 2)))
        phase = Signal(2)          # 0 A, 1 B, 2 C
        for _, rd in mems.values():
            m.d.comb += rd.addr.eq(k)
        for wr, _ in mems.values():
            m.d.comb += wr.addr.eq(k)
        both_in = self.i_a.valid & self.i_b.valid
        out = self.o.payload
        advance = Signal()
        with m.Switch(phase):
            with m.Case(0):
                m.d.comb += [self.i_a.ready.eq(both_in), self.i_b.ready.eq(both_in),
                             mems["first"][0].en.eq(both_in), mems["first"][0].data.eq(self.i_a.payload),
                             mems["coef"][0].en.eq(both_in), mems["coef"][0].data.eq(self.i_b.payload),
                             advance.eq(both_in)]
            with m.Case(1):
                go = both_in & self.o.ready
                # each element keeps its own cos/sin lane: the first half's, read here, make
                # room for the second half's, used in phase C
                m.d.comb += [self.o.valid.eq(both_in), out.a.eq(mems["first"][1].data),
                             out.p.eq(self.i_a.payload), out.b.eq(mems["coef"][1].data), out.second.eq(0),
                             self.i_a.ready.eq(go), self.i_b.ready.eq(go),
                             mems["second"][0].en.eq(go), mems["second"][0].data.eq(self.i_a.payload),
                             mems["coef"][0].en.eq(go), mems["coef"][0].data.eq(self.i_b.payload),
                             advance.eq(go)]
            with m.Case(2):
                m.d.comb += [self.o.valid.eq(1), out.a.eq(mems["second"][1].data),
                             out.p.eq(mems["first"][1].data), out.b.eq(mems["coef"][1].data),
                             out.second.eq(1), advance.eq(self.o.ready)]
        with m.If(self.start):
            m.d.sync += [k.eq(0), phase.eq(0)]
        with m.Elif(advance):
            with m.If(k == self.half_beats - 1):
                m.d.sync += [k.eq(0), phase.eq(((phase + 1) % 3))]
            with m.Else():
                m.d.sync += k.eq(k + 1)
        return m
