"""Input-buffered wormhole virtual-channel router with credits and a one-cycle pipeline."""

from dataclasses import dataclass

from amaranth.hdl import Array, Cat, Module, Signal, unsigned
from amaranth.lib import data, fifo, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..arbiter import RoundRobinArbiter
from ..params import Params, check_choice, check_int, param
from .flit import EAST, LOCAL, NORTH, PORTS, SOUTH, WEST, LinkSignature, header_fields


__all__ = ["Router", "RouterParams", "ROUTINGS", "route_port", "turn_allowed", "noc_router"]

ROUTINGS = ("xy", "yx")


@dataclass(frozen=True)
class RouterParams(Params):
    """Parameters of the ``noc_router`` block: one interior router (all five ports) of a 3x3
    mesh, at (1, 1) — the unit the synthesis figures are given for."""
    vcs: int = param(2, lo=1, hi=4, doc="virtual channels per port")
    buffer: int = param(4, lo=2, hi=32, doc="flits per VC input buffer")
    flit_width: int = param(64, lo=4, hi=1024, doc="payload bits per flit")
    routing: str = param("xy", choices=("xy", "yx"), doc="dimension-order routing")


def noc_router(**params):
    """Factory of the ``noc_router`` block."""
    return Router(x=1, y=1, cols=3, rows=3, **params)


def route_port(routing, x, y, dst_x, dst_y):
    """Output port (index into :data:`PORTS`) a head for ``(dst_x, dst_y)`` takes at ``(x, y)``.

    Plain-Python twin of the gateware's routing function (used by the golden model).
    """
    def along_x():
        return EAST if dst_x > x else WEST if dst_x < x else None

    def along_y():
        return NORTH if dst_y > y else SOUTH if dst_y < y else None

    first, second = (along_x, along_y) if routing == "xy" else (along_y, along_x)
    port = first()
    if port is None:
        port = second()
    return LOCAL if port is None else port


def turn_allowed(routing, in_port, out_port):
    """Whether dimension-order ``routing`` can take a flit from ``in_port`` to ``out_port``.

    A flit that entered on the east or west port travels along x; under XY routing it may
    go on along x, turn to y or eject, but a flit travelling along y (north/south input) may
    only go on along y or eject; YX is the mirror image. U-turns never happen. The crossbar
    and the output arbiters only have the allowed inputs, which is 17 of the 25 paths.
    """
    if out_port == LOCAL or in_port == LOCAL:
        return True
    opposite = {EAST: WEST, WEST: EAST, NORTH: SOUTH, SOUTH: NORTH}
    if out_port == opposite[in_port]:
        return True          # going straight on
    first = (EAST, WEST) if routing == "xy" else (NORTH, SOUTH)
    return in_port in first and out_port not in first and out_port != in_port


class Router(wiring.Component):
    """Five-port input-buffered wormhole router with virtual channels and credit flow control.

    Every input port buffers ``buffer`` flits per VC: the flits' data of all its VCs share one
    memory (a ring per VC; the VC chosen for the crossbar is a read address), and the head,
    tail and output-port bits, which allocation needs from every VC at once, sit in a small
    FIFO per VC. The output port of each flit is
    computed when it is *written* into the input buffer (the head's destination against this
    router's coordinates; body flits inherit their head's port), so routing is off the
    allocation path, as with lookahead routing. In the cycle after a flit is buffered, VC
    allocation and separable switch allocation happen together and the winner crosses the
    crossbar into the output register, which drives the link: a flit spends **one cycle in the
    router and one on the link**.

    Switch allocation is separable, input first: a round-robin arbiter per input port picks one
    of its eligible VCs, then a round-robin arbiter per output port picks one of the requesting
    inputs. An input's grant only rotates when its flit actually moves, and every output arbiter
    rotates on each flit, so a waiting flit is served after at most ``vcs - 1`` flits of its own
    input and ``4`` of the other inputs for its output (no starvation).

    VC allocation is folded into the output arbiter: a flit keeps its VC number along the whole
    path (the network interface picks it per flow, which keeps every (source, destination,
    class) flow in order), and a head is eligible only while the output VC it needs is not held
    by another packet and has a credit. The output VC is held from head to tail and is free again
    in the cycle after the tail has left — not when the tail's credit comes back. A flit is
    eligible when its downstream VC has a credit, so buffers never overflow.

    Latency: zero-load, 2 cycles per hop (1 in the router, 1 on the link). Credit loop: a flit
    sent at edge ``t`` is buffered downstream at ``t + 1``, leaves it at ``t + 2`` at the
    earliest, and its credit (registered) is usable by the sender from cycle ``t + 2``: with
    ``buffer >= 3`` one VC alone sustains one flit per cycle. Throughput: one flit per cycle
    per output port.

    Parameters
    ----------
    x, y : int
        Coordinates of this router (column, row).
    cols, rows : int
        Mesh size; ports towards a missing neighbour have no logic (their inputs are ignored
        and their outputs never valid).
    vcs : int
        Virtual channels per port, 1..4.
    buffer : int
        Flits per VC input buffer, 2..32.
    flit_width : int
        Bits of ``data`` per flit; must hold the destination header of a head flit.
    routing : str
        ``"xy"`` (dimension order, x first) or ``"yx"``.

    Members
    -------
    i : In(LinkSignature).array(5)
        Input links, indexed local, east, west, north, south (:data:`PORTS`). A valid flit is
        written into buffer ``flit.vc`` at the clock edge; ``credit`` is registered and pulses
        one cycle after the flit leaves the buffer.
    o : Out(LinkSignature).array(5)
        Output links; ``valid``/``flit`` come straight from the output register. ``credit``
        from the receiver may be combinational or registered.
    """

    def __init__(self, *, x, y, cols, rows, vcs=2, buffer=4, flit_width=64, routing="xy"):
        self._cols = check_int("cols", cols, 1, 64)
        self._rows = check_int("rows", rows, 1, 64)
        self._x = check_int("x", x, 0, cols - 1)
        self._y = check_int("y", y, 0, rows - 1)
        self._vcs = check_int("vcs", vcs, 1, 4)
        self._buffer = check_int("buffer", buffer, 2, 32)
        xb, yb = header_fields(cols, rows)
        self._flit_width = check_int("flit_width", flit_width, xb + yb, 1024)
        self._routing = check_choice("routing", routing, ROUTINGS)
        link = LinkSignature(flit_width=flit_width, vcs=vcs)
        super().__init__({"i": In(link).array(5), "o": Out(link).array(5)})

    vcs = property(lambda self: self._vcs)
    buffer = property(lambda self: self._buffer)
    flit_width = property(lambda self: self._flit_width)
    routing = property(lambda self: self._routing)

    def present(self, port):
        """Whether port ``port`` has a neighbour (the local port always does)."""
        x, y = self._x, self._y
        return {LOCAL: True, EAST: x < self._cols - 1, WEST: x > 0,
                NORTH: y < self._rows - 1, SOUTH: y > 0}[port]

    def _route(self, m, head_data):
        """Gateware routing function: output port number for a head's data."""
        xb, yb = header_fields(self._cols, self._rows)
        dst_x, dst_y = head_data[:xb], head_data[xb:xb + yb]
        port = Signal(range(5), name="route")
        x_dirs = [(dst_x > self._x, EAST), (dst_x < self._x, WEST)]
        y_dirs = [(dst_y > self._y, NORTH), (dst_y < self._y, SOUTH)]
        order = x_dirs + y_dirs if self._routing == "xy" else y_dirs + x_dirs
        # Later assignments win, so the highest-priority dimension is assigned last.
        m.d.comb += port.eq(LOCAL)
        for cond, p in reversed(order):
            with m.If(cond):
                m.d.comb += port.eq(p)
        return port

    def elaborate(self, platform):
        m = Module()
        V, B, W = self._vcs, self._buffer, self._flit_width
        P = len(PORTS)
        ins = [p for p in range(P) if self.present(p)]
        outs = ins  # a port exists in both directions or in neither

        # Per input port, the flits' data of all VCs share one memory (a ring of `ring` slots
        # per VC, addressed by VC and pointer), so choosing a VC is a read address, not a W-bit
        # multiplexer; the few bits allocation looks at for *every* VC at once (head, tail and
        # output port) sit in one small FIFO per VC next to it.
        meta = data.StructLayout({"head": 1, "tail": 1, "route": range(P)})
        ptr_bits = (B - 1).bit_length()
        vc_addr_bits = (V - 1).bit_length()

        # ---- input buffers ------------------------------------------------------------
        bufs = {}            # (port, vc) -> SyncFIFO of `meta`
        heads = {}           # (port, vc) -> view of the FIFO's head entry
        rd_addr, rd_data = {}, {}
        for p in ins:
            link = self.i[p]
            arrival_route = self._route(m, link.flit.data)
            mem = Memory(shape=unsigned(W), depth=1 << (ptr_bits + vc_addr_bits), init=[])
            m.submodules[f"mem_{PORTS[p]}"] = mem
            wr = mem.write_port()
            rd = mem.read_port(domain="comb")
            rd_addr[p], rd_data[p] = rd.addr, rd.data
            wptr = Array(Signal(ptr_bits, name=f"wptr_{PORTS[p]}_{v}") for v in range(V))
            wvc = link.flit.vc[:vc_addr_bits]
            wsel = wptr[wvc] if V > 1 else wptr[0]
            m.d.comb += [wr.addr.eq(Cat(wsel, wvc)), wr.data.eq(link.flit.data),
                         wr.en.eq(link.valid)]
            with m.If(link.valid):
                # A ring of 2**ptr_bits >= buffer slots: credits keep at most `buffer` in use.
                m.d.sync += wsel.eq(wsel + 1)
            for v in range(V):
                buf = fifo.SyncFIFO(width=meta.size, depth=B)
                m.submodules[f"buf_{PORTS[p]}_{v}"] = buf
                bufs[p, v] = buf
                heads[p, v] = data.View(meta, buf.r_data)
                # Body flits follow the port their head took on arrival at this input VC.
                packet_route = Signal(range(P), name=f"packet_route_{PORTS[p]}_{v}")
                w_entry = data.View(meta, buf.w_data)
                m.d.comb += [
                    buf.w_en.eq(link.valid & (link.flit.vc == v)),
                    w_entry.head.eq(link.flit.head),
                    w_entry.tail.eq(link.flit.tail),
                    w_entry.route.eq(packet_route),
                ]
                with m.If(link.flit.head):
                    m.d.comb += w_entry.route.eq(arrival_route)
                with m.If(buf.w_en & link.flit.head):
                    m.d.sync += packet_route.eq(arrival_route)

        # ---- output VC state: credits and ownership -------------------------------------
        credits = {}   # (port, vc) -> credit counter
        held = {}      # (port, vc) -> output VC held by a packet whose tail has not left
        for o in outs:
            for v in range(V):
                credits[o, v] = Signal(range(B + 1), init=B, name=f"credits_{PORTS[o]}_{v}")
                held[o, v] = Signal(name=f"held_{PORTS[o]}_{v}")
        # `can_take[o][v]`: a head may take output VC v of port o now; `can_send`: a body may.
        can_send = {o: Cat(credits[o, v] != 0 for v in range(V)) for o in outs}
        can_take = {o: Cat((credits[o, v] != 0) & ~held[o, v] for v in range(V)) for o in outs}

        # ---- input-first separable switch allocation ------------------------------------
        entry = data.StructLayout({"data": W, "head": 1, "tail": 1, "route": range(P)})
        in_arb, sel_vc, sel_route, sel_flit, rptrs = {}, {}, {}, {}, {}
        for p in ins:
            arb = in_arb[p] = RoundRobinArbiter(n=V)
            m.submodules[f"in_arb_{PORTS[p]}"] = arb
            for v in range(V):
                h = heads[p, v]
                send_ok = Signal(name=f"send_ok_{PORTS[p]}_{v}")
                # A route to a missing port never happens with in-range destinations; treat it
                # as never eligible rather than indexing outside the table.
                with m.Switch(h.route):
                    for o in outs:
                        with m.Case(o):
                            m.d.comb += send_ok.eq(Cat(can_take[o][v], can_send[o][v])
                                                   .bit_select(~h.head, 1))
                m.d.comb += arb.requests[v].eq(bufs[p, v].r_rdy & send_ok)
            sel_vc[p] = arb.index
            rptr = Array(Signal(ptr_bits, name=f"rptr_{PORTS[p]}_{v}") for v in range(V))
            rptrs[p] = rptr
            sel = arb.index[:vc_addr_bits]
            m.d.comb += rd_addr[p].eq(Cat(rptr[sel] if V > 1 else rptr[0], sel))
            sel_flit[p] = data.View(entry, Signal(entry.size, name=f"sel_flit_{PORTS[p]}"))
            m.d.comb += sel_flit[p].data.eq(rd_data[p])
            with m.Switch(arb.index):
                for v in range(V):
                    with m.Case(v):
                        m.d.comb += [sel_flit[p].head.eq(heads[p, v].head),
                                     sel_flit[p].tail.eq(heads[p, v].tail),
                                     sel_flit[p].route.eq(heads[p, v].route)]
            sel_route[p] = sel_flit[p].route

        out_arb = {}
        moved = {p: Signal(name=f"moved_{PORTS[p]}") for p in ins}
        # Inputs each output can be reached from (see `turn_allowed`).
        srcs = {o: [p for p in ins if turn_allowed(self._routing, p, o)] for o in outs}
        for o in outs:
            arb = out_arb[o] = RoundRobinArbiter(n=len(srcs[o]))
            m.submodules[f"out_arb_{PORTS[o]}"] = arb
            for k, p in enumerate(srcs[o]):
                m.d.comb += arb.requests[k].eq(in_arb[p].valid & (sel_route[p] == o))
            m.d.comb += arb.advance.eq(arb.valid)

            # Crossbar into the output register.
            link = self.o[o]
            m.d.sync += link.valid.eq(arb.valid)
            with m.Switch(arb.index):
                for k, p in enumerate(srcs[o]):
                    with m.Case(k):
                        m.d.sync += [
                            link.flit.data.eq(sel_flit[p].data),
                            link.flit.head.eq(sel_flit[p].head),
                            link.flit.tail.eq(sel_flit[p].tail),
                            link.flit.vc.eq(sel_vc[p]),
                        ]

            for v in range(V):
                sent = Signal(name=f"sent_{PORTS[o]}_{v}")
                sent_tail = Signal(name=f"sent_tail_{PORTS[o]}_{v}")
                with m.Switch(arb.index):
                    for k, p in enumerate(srcs[o]):
                        with m.Case(k):
                            m.d.comb += [
                                sent.eq(arb.valid & (sel_vc[p] == v)),
                                sent_tail.eq(sel_flit[p].tail),
                            ]
                m.d.sync += credits[o, v].eq(credits[o, v] + link.credit[v] - sent)
                with m.If(sent):
                    # Held from a head until its tail leaves; a head-and-tail flit never holds.
                    m.d.sync += held[o, v].eq(~sent_tail)

        for p in ins:
            grants = [out_arb[o].grant[k] for o in outs
                      for k, q in enumerate(srcs[o]) if q == p]
            m.d.comb += moved[p].eq(Cat(grants).any())
            m.d.comb += in_arb[p].advance.eq(moved[p])
            popped = Signal(V, name=f"popped_{PORTS[p]}")
            for v in range(V):
                m.d.comb += [
                    popped[v].eq(moved[p] & (sel_vc[p] == v)),
                    bufs[p, v].r_en.eq(popped[v]),
                ]
                with m.If(popped[v]):
                    m.d.sync += rptrs[p][v].eq(rptrs[p][v] + 1)
            # Registered credit return: one pulse per flit that left the buffer.
            m.d.sync += self.i[p].credit.eq(popped)
        return m
