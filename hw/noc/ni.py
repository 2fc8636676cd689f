"""Flit-level network interfaces: stream ports per message class <-> a router's local link."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arbiter import RoundRobinArbiter
from .flit import LinkSignature, dest_layout, head_view, header_fields, message_head_layout, \
    node_bits, pack


__all__ = ["beat_layout", "InjectNI", "EjectNI", "class_vcs", "message_layout",
           "delivery_layout", "Packetizer", "Depacketizer"]


def beat_layout(flit_width):
    """Payload of an endpoint stream beat: one flit's ``data`` and ``last`` (the tail marker).
    The beat after a ``last`` (or the first after reset) is a head flit."""
    return data.StructLayout({"data": unsigned(flit_width), "last": unsigned(1)})


def class_vcs(vcs, classes, cls):
    """VC numbers reserved for message class ``cls``: classes own disjoint, equal VC ranges."""
    per = vcs // classes
    return list(range(cls * per, (cls + 1) * per))


class InjectNI(wiring.Component):
    """Injects per-class packet streams into a router's local input link.

    Each message class has its own stream, so a class stalled for lack of credits never blocks
    another (no protocol deadlock through the injection port). A packet's VC is chosen from its
    class's VCs by a fixed function of (source, destination) and kept to the destination:
    the packets of one (source, destination, class) flow therefore follow one FIFO path and
    arrive in order. Classes share the link flit by flit, round-robin.

    Latency: 0 cycles — a beat accepted at a clock edge is in the router's input buffer at that
    same edge (the link is driven combinationally). Throughput: one flit per cycle while the
    chosen VC has credits (``buffer >= 3`` sustains the full rate).

    Parameters
    ----------
    x, y, cols, rows : int
        This node's coordinates and the mesh size (for the destination field of heads).
    vcs, classes, buffer, flit_width : int
        As the mesh; ``vcs`` must be a multiple of ``classes``.

    Members
    -------
    i : In(stream.Signature(beat_layout(flit_width))).array(classes)
        One stream per message class; the first beat of a packet (after reset or after a
        ``last``) is its head and carries the destination in its low bits. ``ready`` may depend
        on ``valid`` (round-robin among classes with a credit).
    link : Out(LinkSignature)
        To the router's local input.
    """

    def __init__(self, *, x, y, cols, rows, vcs, classes, buffer, flit_width):
        self._x, self._y, self._cols, self._rows = x, y, cols, rows
        self._vcs, self._classes, self._buffer, self._flit_width = vcs, classes, buffer, flit_width
        super().__init__({
            "i": In(stream.Signature(beat_layout(flit_width))).array(classes),
            "link": Out(LinkSignature(flit_width=flit_width, vcs=vcs)),
        })

    def flow_vc(self, dst_x, dst_y, cls):
        """Python twin of the VC choice: class base + (sum of coordinates) mod VCs-per-class."""
        per = self._vcs // self._classes
        return cls * per + (self._x + self._y + dst_x + dst_y) % per

    def elaborate(self, platform):
        m = Module()
        V, C, B = self._vcs, self._classes, self._buffer
        per = V // C
        xb, yb = header_fields(self._cols, self._rows)

        credits = [Signal(range(B + 1), init=B, name=f"credits_{v}") for v in range(V)]
        sent = Signal(V)
        for v in range(V):
            m.d.sync += credits[v].eq(credits[v] + self.link.credit[v] - sent[v])
        has_credit = Cat(c != 0 for c in credits)

        arb = RoundRobinArbiter(n=C)
        m.submodules.arb = arb
        vc_of = []
        for c in range(C):
            port = self.i[c]
            in_packet = Signal(name=f"in_packet_{c}")   # a head has gone, its tail has not
            packet_vc = Signal(range(V), name=f"packet_vc_{c}")
            head_vc = Signal(range(V), name=f"head_vc_{c}")
            dest = dest_layout(self._cols, self._rows)
            dst = head_view(dest, port.payload.data)
            # (x + y + dst_x + dst_y) mod per, spelled as a table so it is exact for any `per`.
            with m.Switch(dst):
                for dx in range(2 ** xb):
                    for dy in range(2 ** yb):
                        with m.Case(dest.const({"x": dx, "y": dy}).as_bits()):
                            m.d.comb += head_vc.eq(self.flow_vc(dx, dy, c))
            vc = Signal(range(V), name=f"vc_{c}")
            m.d.comb += vc.eq(Mux(in_packet, packet_vc, head_vc))
            vc_of.append(vc)
            m.d.comb += arb.requests[c].eq(port.valid & has_credit.bit_select(vc, 1))
            go = Signal(name=f"go_{c}")
            m.d.comb += [go.eq(arb.grant[c]), port.ready.eq(go)]
            with m.If(go):
                m.d.sync += [in_packet.eq(~port.payload.last), packet_vc.eq(vc)]
            head = ~in_packet
            with m.If(go):
                m.d.comb += [
                    self.link.flit.data.eq(port.payload.data),
                    self.link.flit.head.eq(head),
                    self.link.flit.tail.eq(port.payload.last),
                    self.link.flit.vc.eq(vc),
                ]
        m.d.comb += [self.link.valid.eq(arb.valid), arb.advance.eq(arb.valid)]
        for v in range(V):
            m.d.comb += sent[v].eq(arb.valid & (self.link.flit.vc == v))
        return m


class EjectNI(wiring.Component):
    """Reassembles flits from a router's local output into per-class packet streams.

    One buffer of ``buffer`` flits per VC receives the flits (credits back to the router).
    Each class stream takes one packet at a time from its VCs, round-robin per packet, and holds
    that VC from the cycle it offers the head until the tail is taken: beats of different packets never interleave on a stream, so a
    consumer sees whole packets (head first, ``last`` on the tail).

    Latency: a flit on the link at edge ``t`` is in the buffer at ``t + 1`` and offered on the
    stream in the cycle that follows (``valid`` from the buffer's state, no combinational path
    from the link). Throughput: one flit per cycle per class stream.

    Members
    -------
    link : In(LinkSignature)
        From the router's local output; credits returned registered, one cycle after a pop.
    o : Out(stream.Signature(beat_layout(flit_width))).array(classes)
        One stream per message class; ``valid`` does not depend on ``ready``.
    """

    def __init__(self, *, vcs, classes, buffer, flit_width):
        self._vcs, self._classes, self._buffer, self._flit_width = vcs, classes, buffer, flit_width
        super().__init__({
            "link": In(LinkSignature(flit_width=flit_width, vcs=vcs)),
            "o": Out(stream.Signature(beat_layout(flit_width))).array(classes),
        })

    def elaborate(self, platform):
        m = Module()
        V, C, B, W = self._vcs, self._classes, self._buffer, self._flit_width
        entry = data.StructLayout({"data": W, "tail": 1})
        bufs = []
        for v in range(V):
            buf = fifo.SyncFIFO(width=entry.size, depth=B)
            m.submodules[f"buf_{v}"] = buf
            bufs.append(buf)
            w = data.View(entry, buf.w_data)
            m.d.comb += [
                buf.w_en.eq(self.link.valid & (self.link.flit.vc == v)),
                w.data.eq(self.link.flit.data),
                w.tail.eq(self.link.flit.tail),
            ]
        popped = Signal(V)
        m.d.sync += self.link.credit.eq(popped)

        for c in range(C):
            vcs = class_vcs(V, C, c)
            n = len(vcs)
            arb = RoundRobinArbiter(n=n)
            m.submodules[f"arb_{c}"] = arb
            locked = Signal(name=f"locked_{c}")
            lock_k = Signal(range(max(n, 2)), name=f"lock_k_{c}")
            k = Signal(range(max(n, 2)), name=f"k_{c}")
            for j, v in enumerate(vcs):
                m.d.comb += arb.requests[j].eq(bufs[v].r_rdy & ~locked)
            m.d.comb += k.eq(Mux(locked, lock_k, arb.index))
            port = self.o[c]
            with m.Switch(k):
                for j, v in enumerate(vcs):
                    with m.Case(j):
                        head = data.View(entry, bufs[v].r_data)
                        m.d.comb += [
                            port.valid.eq(bufs[v].r_rdy),
                            port.payload.data.eq(head.data),
                            port.payload.last.eq(head.tail),
                            bufs[v].r_en.eq(port.ready),
                            popped[v].eq(port.valid & port.ready),
                        ]
            take = port.valid & port.ready
            # Commit to a VC as soon as it is offered (not only when taken): a stream must not
            # change its payload while valid and not ready, whatever other VCs fill up meanwhile.
            m.d.comb += arb.advance.eq(port.valid & ~locked)
            with m.If(port.valid):
                m.d.sync += [locked.eq(~(take & port.payload.last)), lock_k.eq(k)]
        return m


def message_layout(nodes, flit_width):
    """Payload of a message stream beat at a :class:`Packetizer` input: destination node,
    ``data`` and ``last`` (the last beat of the message)."""
    return data.StructLayout({"dst": unsigned(node_bits(nodes)),
                              "data": unsigned(flit_width), "last": unsigned(1)})


def delivery_layout(nodes, flit_width):
    """Payload of a message stream beat at a :class:`Depacketizer` output: source node,
    ``data`` and ``last``."""
    return data.StructLayout({"src": unsigned(node_bits(nodes)),
                              "data": unsigned(flit_width), "last": unsigned(1)})


class Packetizer(wiring.Component):
    """Turns messages (destination node, payload of any length >= 1 beat) into packets.

    Each message becomes a head flit carrying the routing header (destination column and row)
    and the source node, followed by one flit per payload beat; the last beat is the tail.
    One packetizer serves one message class (it feeds that class's injection stream).

    Latency: 0 cycles (combinational pass-through). Throughput: ``n / (n + 1)`` beats per
    cycle for ``n``-beat messages (one cycle for the head).

    Members
    -------
    i : In(stream.Signature(message_layout(nodes, flit_width)))
        Message beats; ``dst`` is read on the first beat of each message.
    o : Out(stream.Signature(beat_layout(flit_width)))
        Flits to a mesh injection stream; ``valid`` follows ``i.valid``, so it is stable
        whenever the message source is.
    """

    def __init__(self, *, cols, rows, flit_width, src):
        self._cols, self._rows, self._w, self._src = cols, rows, flit_width, src
        nodes = cols * rows
        super().__init__({
            "i": In(stream.Signature(message_layout(nodes, flit_width))),
            "o": Out(stream.Signature(beat_layout(flit_width))),
        })

    def elaborate(self, platform):
        m = Module()
        cols, rows = self._cols, self._rows
        nodes = cols * rows
        in_body = Signal()   # the head of the current message has gone
        layout = message_head_layout(cols, rows)
        dst_x, dst_y = Signal(layout["dst"].shape["x"].shape), Signal(layout["dst"].shape["y"].shape)
        with m.Switch(self.i.payload.dst):
            for n in range(nodes):
                with m.Case(n):
                    m.d.comb += [dst_x.eq(n % cols), dst_y.eq(n // cols)]
        head = pack(layout, {"dst": {"x": dst_x, "y": dst_y}, "src": self._src})
        m.d.comb += self.o.valid.eq(self.i.valid)
        with m.If(in_body):
            m.d.comb += [self.o.payload.data.eq(self.i.payload.data),
                         self.o.payload.last.eq(self.i.payload.last),
                         self.i.ready.eq(self.o.ready)]
            with m.If(self.i.valid & self.o.ready & self.i.payload.last):
                m.d.sync += in_body.eq(0)
        with m.Else():
            m.d.comb += self.o.payload.data.eq(head)
            with m.If(self.o.valid & self.o.ready):
                m.d.sync += in_body.eq(1)
        return m


class Depacketizer(wiring.Component):
    """Strips the head flit of packets made by :class:`Packetizer`: each payload beat comes
    out with the message's source node; ``last`` marks the end of the message.

    Latency: 0 cycles. Throughput: one beat per cycle after a one-cycle head.

    Members
    -------
    i : In(stream.Signature(beat_layout(flit_width)))
        From a mesh ejection stream (whole packets, never interleaved).
    o : Out(stream.Signature(delivery_layout(nodes, flit_width)))
        Message beats with ``src``.
    """

    def __init__(self, *, cols, rows, flit_width):
        self._cols, self._rows, self._w = cols, rows, flit_width
        nodes = cols * rows
        super().__init__({
            "i": In(stream.Signature(beat_layout(flit_width))),
            "o": Out(stream.Signature(delivery_layout(nodes, flit_width))),
        })

    def elaborate(self, platform):
        m = Module()
        head = message_head_layout(self._cols, self._rows)
        in_body = Signal()
        src = Signal(head["src"].shape)
        with m.If(in_body):
            m.d.comb += [self.o.valid.eq(self.i.valid), self.i.ready.eq(self.o.ready),
                         self.o.payload.src.eq(src), self.o.payload.data.eq(self.i.payload.data),
                         self.o.payload.last.eq(self.i.payload.last)]
            with m.If(self.i.valid & self.o.ready & self.i.payload.last):
                m.d.sync += in_body.eq(0)
        with m.Else():
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid):
                m.d.sync += [in_body.eq(~self.i.payload.last),
                             src.eq(head_view(head, self.i.payload.data).src)]
        return m
