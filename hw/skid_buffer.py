"""Skid buffer: a two-entry register slice that cuts every combinational path of a stream."""

from dataclasses import dataclass

from amaranth.hdl import Module, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .params import Params, ParameterError, param


__all__ = ["SkidBufferParams", "SkidBuffer"]


@dataclass(frozen=True)
class SkidBufferParams(Params):
    """Parameters of the ``skid_buffer`` block as seen from the CLI."""
    width: int = param(32, lo=1, hi=4096, doc="payload width in bits")


class SkidBuffer(wiring.Component):
    """Fully registered stream slice (a "skid buffer", two entries).

    ``o.valid``, ``o.payload`` and ``i.ready`` all come straight from flip-flops, so neither the
    forward (valid/payload) nor the backward (ready) path crosses the slice combinationally: it
    can be dropped between any two stream ports to break a timing path without changing the
    protocol. The second entry (the "skid" register) catches the transfer accepted in the cycle
    in which the consumer drops ``ready``; that is what keeps the throughput at one transfer per
    cycle while ``i.ready`` is registered.

    Latency: 1 cycle from ``i`` to ``o``. Throughput: 1 transfer/cycle with a ready consumer;
    ``i.ready`` falls one cycle after ``o`` has stalled with both entries full.

    Parameters
    ----------
    shape : ShapeLike
        Payload shape (any Amaranth shape or ``data`` layout).

    Members
    -------
    i : In(stream.Signature(shape))
        Input stream, valid/ready protocol; ``i.ready`` is registered.
    o : Out(stream.Signature(shape))
        Output stream, valid/ready protocol; ``o.valid`` and ``o.payload`` are registered and
        stay stable while ``o.valid & ~o.ready``.
    """

    def __init__(self, *, shape):
        try:
            width = Shape.cast(shape).width
        except TypeError as exc:
            raise ParameterError(f"shape: {shape!r} is not an Amaranth shape ({exc})") from None
        if width < 1:
            raise ParameterError(f"shape: width {width} is out of range (accepted: 1 bit or more)")
        self._shape = shape
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
        })

    shape = property(lambda self: self._shape)

    def elaborate(self, platform):
        m = Module()
        skid_valid = Signal()
        skid_payload = Signal.like(self.i.payload)

        m.d.comb += self.i.ready.eq(~skid_valid)
        with m.If(self.o.ready | ~self.o.valid):
            # The output register is free (or frees up this edge): refill it, oldest entry first.
            with m.If(skid_valid):
                m.d.sync += [self.o.payload.eq(skid_payload), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(self.i.valid)]
        with m.Elif(self.i.valid & self.i.ready):
            # Output stalled while a transfer was accepted: park it in the skid register.
            m.d.sync += [skid_payload.eq(self.i.payload), skid_valid.eq(1)]
        return m
