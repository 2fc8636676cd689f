"""Flits, the router-to-router link signature and the head-flit header of the Scoville NoC.

A packet is a sequence of flits: the first has ``head`` set, the last ``tail`` set (a one-flit
packet has both). The destination travels in the low bits of the head flit's ``data``
(:func:`dest_layout`: column in ``data[0:xb]``, row in ``data[xb:xb+yb]``, widths from
:func:`header_fields`); the remaining head bits and every body flit are free payload. Heads that
carry more (the message NIs' source, the bench generators' timestamp) extend
:func:`dest_layout` as the first field of their own layout (:func:`message_head_layout`,
:func:`hw.testbench.noc.bench_head_layout`), so every party reads one definition.

Links carry one flit per cycle with credit-based flow control: one credit per virtual channel
(VC) returns to the sender for every flit the receiver removes from that VC's buffer.
"""

from amaranth.hdl import Cat, Const, Value, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out


__all__ = ["PORTS", "LOCAL", "EAST", "WEST", "NORTH", "SOUTH", "coord_bits", "flit_layout",
           "LinkSignature", "header_fields", "vc_bits", "node_bits", "dest_layout",
           "message_head_layout", "head_view", "pack"]

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


def node_bits(nodes):
    """Bits for a node number in ``0..nodes-1`` (at least 1)."""
    return max(1, (nodes - 1).bit_length())


def dest_layout(cols, rows):
    """The routing header at the bottom of a head flit's ``data``: destination column ``x``
    and row ``y``."""
    xb, yb = header_fields(cols, rows)
    return data.StructLayout({"x": unsigned(xb), "y": unsigned(yb)})


def message_head_layout(cols, rows):
    """Head flit ``data`` of a message packet (:class:`~hw.noc.ni.Packetizer`): the routing
    header, then the source node. Higher bits are zero."""
    return data.StructLayout({"dst": dest_layout(cols, rows),
                              "src": unsigned(node_bits(cols * rows))})


def head_view(layout, flit_data):
    """A view of ``layout`` on the low bits of a flit's ``data`` (the rest is payload)."""
    return layout(flit_data[:layout.size])


def pack(layout, fields):
    """One Value of ``layout``'s width from ``{field: Value or int or nested dict}`` (missing
    fields zero), placed by the layout's own offsets.

    A single whole-signal assignment: assigning a constant to one field of a ``Signal(layout)``
    in ``comb`` makes a Verilog ``always @*`` with nothing to wake it, which Verilator never
    runs (the field stays 0), so constant fields must not be driven on their own.
    """
    parts, pos = [], 0
    for name, field in sorted(layout, key=lambda item: item[1].offset):
        assert field.offset == pos, (name, field.offset, pos)
        value = fields.get(name, 0)
        if isinstance(value, dict):
            value = pack(field.shape, value)
        elif isinstance(value, int):
            value = Const(value, field.width)
        else:
            value = Value.cast(value)
            value = value[:field.width] if len(value) >= field.width else \
                Cat(value, Const(0, field.width - len(value)))
        parts.append(value)
        pos += field.width
    if pos < layout.size:
        parts.append(Const(0, layout.size - pos))
    return Cat(*parts)


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
