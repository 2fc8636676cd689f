"""Flits, the router-to-router link signature and the head-flit header of the Scoville NoC.

A packet is a sequence of flits: the first has ``head`` set, the last ``tail`` set (a one-flit
packet has both). The destination travels in the low bits of the head flit's ``data``
(:func:`header_fields`): column in ``data[0:xb]``, row in ``data[xb:xb+yb]``; the remaining head
bits and every body flit are free payload. Links carry one flit per cycle with credit-based
flow control: one credit per virtual channel (VC) returns to the sender for every flit the
receiver removes from that VC's buffer.
"""

from amaranth.hdl import unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out


__all__ = ["PORTS", "LOCAL", "EAST", "WEST", "NORTH", "SOUTH", "coord_bits", "flit_layout",
           "LinkSignature", "header_fields", "vc_bits"]

# Router port numbering. "north" is +y (towards higher row numbers), "east" is +x.
PORTS = ("local", "east", "west", "north", "south")
LOCAL, EAST, WEST, NORTH, SOUTH = range(5)


def coord_bits(n):
    """Bits for a coordinate in ``0..n-1`` (at least 1, so a 1-wide mesh still has a field)."""
    return max(1, (n - 1).bit_length())


def vc_bits(vcs):
    return max(1, (vcs - 1).bit_length())


def header_fields(cols, rows):
    """``(xb, yb)``: widths of the destination column and row fields at the bottom of a head."""
    return coord_bits(cols), coord_bits(rows)


def flit_layout(flit_width, vcs):
    """Layout of a flit on a link: payload ``data``, ``head``/``tail`` markers and the ``vc``."""
    return data.StructLayout({
        "data": unsigned(flit_width),
        "head": unsigned(1),
        "tail": unsigned(1),
        "vc": unsigned(vc_bits(vcs)),
    })


class LinkSignature(wiring.Signature):
    """One direction of a credit-flow-controlled link, from the sender's point of view.

    Members
    -------
    valid : Out(1)
        A flit is on the link this cycle; the receiver must take it (there is no ``ready``:
        the sender only sends into a VC for which it holds a credit).
    flit : Out(flit_layout(flit_width, vcs))
        The flit; ``flit.vc`` names the receiver buffer it goes to.
    credit : In(vcs)
        Bit ``v`` high for one cycle returns one credit of VC ``v`` to the sender.
    """

    def __init__(self, *, flit_width, vcs):
        self.flit_width, self.vcs = flit_width, vcs
        super().__init__({
            "valid": Out(1),
            "flit": Out(flit_layout(flit_width, vcs)),
            "credit": In(vcs),
        })

    def __eq__(self, other):
        return (isinstance(other, LinkSignature) and other.flit_width == self.flit_width
                and other.vcs == self.vcs)

    def __repr__(self):
        return f"LinkSignature(flit_width={self.flit_width}, vcs={self.vcs})"
