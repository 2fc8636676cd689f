"""Tile DMA read side, unit end: AXI atoms into unit beats, and one status per command."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..axi import Resp
from .dma_rows import ChunkStep, DMAStatus, ReadBeat, byte_mask, rows_layout, worst_resp


__all__ = ["atom_layout", "Unpack"]


def atom_layout(atom_bytes):
    """An R beat as buffered: its ``data`` and ``resp``."""
    return data.StructLayout({"data": unsigned(8 * atom_bytes), "resp": unsigned(2)})


class Unpack(wiring.Component):
    """Turns each command's atoms into its unit beats, and answers its status after them.

    Per row, ``ceil(row_bytes / D)`` atoms in, ``ceil(row_bytes / B)`` beats out, each carrying
    the row's next ``B`` bytes in its low bytes; the bytes past ``row_bytes`` in a row's last beat
    and every byte above ``B`` are zero. One chunk of ``min(B, D)`` bytes a cycle
    (:class:`.dma_rows.ChunkStep`): one atom a cycle while ``B >= D`` (a beat per ``B / D``
    cycles), one beat a cycle while ``B < D``. Latency: an atom present at ``i`` at cycle ``t``
    is in the output register (``o.valid``) at ``t + 1``.

    Parameters
    ----------
    atom_bytes, port_bytes : int
        ``D``, the AXI data width in bytes, and the unit port's width in bytes (``B <= port_bytes``).

    Members
    -------
    i : In(stream.Signature(atom_layout(atom_bytes)))
        The atoms, in order.
    cmd : In(stream.Signature(rows_layout))
        Every command, in order (an empty one only answers a status; a ``bad`` one delivers
        zeros and at least SLVERR).
    o : Out(stream.Signature(ReadBeat(8 * port_bytes)))
        Unit beats, registered.
    sts : Out(stream.Signature(DMAStatus))
        The worst ``resp`` of the command's atoms; valid only once the command's last beat has
        left ``o`` (never in the same cycle as it).
    busy : Out(1)
        A command in progress, a beat or a status not taken.
    """

    def __init__(self, *, atom_bytes, port_bytes):
        self._D, self._P = atom_bytes, port_bytes
        super().__init__({
            "i": In(stream.Signature(atom_layout(atom_bytes))),
            "cmd": In(stream.Signature(rows_layout)),
            "o": Out(stream.Signature(ReadBeat(8 * port_bytes))),
            "sts": Out(stream.Signature(DMAStatus)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        D, P = self._D, self._P
        W = min(D, P)       # bytes a chunk can span
        m.submodules.step = cs = ChunkStep(atom_bytes=D, port_bytes=P)
        i, o, sts, cmd = self.i, self.o, self.sts, self.cmd

        sts_valid, sts_resp, worst = Signal(), Signal(2), Signal(2)
        sts_free = ~sts_valid | (sts.valid & sts.ready)
        m.d.comb += [sts.valid.eq(sts_valid & ~(o.valid & o.payload.end)), sts.payload.resp.eq(sts_resp)]

        # An empty command answers its status here, in its turn.
        take_empty = cmd.valid & cmd.payload.empty & ~cs.active & sts_free
        m.d.comb += [
            cs.cmd.valid.eq(cmd.valid & ~cmd.payload.empty),
            cs.cmd.payload.eq(cmd.payload),
            cmd.ready.eq(Mux(cmd.payload.empty, take_empty, cs.cmd.ready)),
        ]

        _, mask = byte_mask(m, cs.nbytes, W)
        piece, placed = Signal(8 * W), Signal(8 * P)
        m.d.comb += [
            piece.eq((i.payload.data >> Cat(Const(0, 3), cs.atom_off))[:8 * W] & mask & ~cs.bad.replicate(8 * W)),
            placed.eq(piece << Cat(Const(0, 3 + exact_log2(D)), cs.beat_idx)),
        ]

        step = Signal()
        m.d.comb += [
            step.eq(cs.active & i.valid & (~o.valid | o.ready) & (~cs.cmd_end | sts_free)),
            cs.step.eq(step),
            i.ready.eq(step & cs.atom_done),
        ]
        with m.If(step):
            m.d.sync += [o.payload.data.eq(Mux(cs.beat_idx == 0, 0, o.payload.data) | placed),
                         o.payload.last.eq(cs.row_end), o.payload.end.eq(cs.cmd_end), o.valid.eq(cs.beat_done)]
        with m.Elif(o.ready):
            m.d.sync += o.valid.eq(0)

        resp = worst_resp(worst, i.payload.resp)
        with m.If(i.valid & i.ready):
            m.d.sync += worst.eq(resp)
        with m.If(step & cs.cmd_end):
            m.d.sync += [sts_valid.eq(1), sts_resp.eq(worst_resp(resp, Mux(cs.bad, Resp.SLVERR, Resp.OKAY))),
                         worst.eq(0)]
        with m.Elif(take_empty):
            m.d.sync += [sts_valid.eq(1), sts_resp.eq(Mux(cmd.payload.bad, Resp.SLVERR, Resp.OKAY))]
        with m.Elif(sts.valid & sts.ready):
            m.d.sync += sts_valid.eq(0)

        m.d.comb += self.busy.eq(cs.active | o.valid | sts_valid)
        return m
