"""Tile DMA write side, unit end: unit beats into AXI atoms with byte strobes."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from .dma_rows import ChunkStep, WriteBeat, byte_mask, rows_layout


__all__ = ["strobed_atom_layout", "Pack"]


def strobed_atom_layout(atom_bytes):
    """A W beat as buffered: ``data`` and ``strb`` (bytes outside the strobe are zero)."""
    return data.StructLayout({"data": unsigned(8 * atom_bytes), "strb": unsigned(atom_bytes)})


class Pack(wiring.Component):
    """Packs each command's unit beats into atoms, strobing exactly the row's bytes.

    Per row, ``ceil(row_bytes / B)`` beats in (the low ``B`` bytes of each are the row's next
    bytes), ``ceil(row_bytes / D)`` atoms out, the last one strobed up to the row's end (none at
    all for a ``bad`` command). One chunk of ``min(B, D)`` bytes a cycle
    (:class:`.dma_rows.ChunkStep`): one atom a cycle while ``B >= D`` (a beat taken per ``B / D``
    cycles), one beat a cycle while ``B < D``. ``o`` is combinational from ``i`` (no register:
    it feeds a FIFO's write port).

    Parameters
    ----------
    atom_bytes, port_bytes : int
        ``D``, the AXI data width in bytes, and the unit port's width in bytes.

    Members
    -------
    i : In(stream.Signature(WriteBeat(8 * port_bytes)))
        Unit beats, in order.
    cmd : In(stream.Signature(rows_layout))
        Non-empty commands, in order.
    o : Out(stream.Signature(strobed_atom_layout(atom_bytes)))
        Atoms; ``valid`` follows ``i.valid``, ``i.ready`` follows ``o.ready``.
    busy : Out(1)
        A command in progress.
    """

    def __init__(self, *, atom_bytes, port_bytes):
        self._D, self._P = atom_bytes, port_bytes
        super().__init__({
            "i": In(stream.Signature(WriteBeat(8 * port_bytes))),
            "cmd": In(stream.Signature(rows_layout)),
            "o": Out(stream.Signature(strobed_atom_layout(atom_bytes))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        D, P = self._D, self._P
        W = min(D, P)
        m.submodules.step = cs = ChunkStep(atom_bytes=D, port_bytes=P)
        i, o = self.i, self.o
        wiring.connect(m, wiring.flipped(self.cmd), cs.cmd)

        mask, mask_bits = byte_mask(m, cs.nbytes, W)
        piece = Signal(8 * W)
        acc_data, acc_strb = Signal(8 * D), Signal(D)
        data_out, strb_out = Signal(8 * D), Signal(D)
        m.d.comb += [
            piece.eq((i.payload.data >> Cat(Const(0, 3 + exact_log2(D)), cs.beat_idx))[:8 * W] & mask_bits),
            data_out.eq(acc_data | (piece << Cat(Const(0, 3), cs.atom_off))[:8 * D]),
            strb_out.eq(acc_strb | (mask << cs.atom_off)[:D]),
        ]

        step = Signal()
        m.d.comb += [
            o.valid.eq(cs.active & i.valid & cs.atom_done),
            o.payload.data.eq(data_out),
            o.payload.strb.eq(strb_out & ~cs.bad.replicate(D)),
            step.eq(cs.active & i.valid & (~cs.atom_done | o.ready)),
            cs.step.eq(step),
            i.ready.eq(step & cs.beat_done),
            self.busy.eq(cs.active),
        ]
        with m.If(step):
            m.d.sync += [acc_data.eq(Mux(cs.atom_done, 0, data_out)), acc_strb.eq(Mux(cs.atom_done, 0, strb_out))]
        return m
