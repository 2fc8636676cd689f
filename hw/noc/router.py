"""Input-buffered wormhole virtual-channel router with credits and a one-cycle pipeline."""

from dataclasses import dataclass

from amaranth.hdl import Array, Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..arbiter import RoundRobinArbiter
from ..params import Params, check_choice, check_int, param
from .flit import EAST, LOCAL, NORTH, PORTS, SOUTH, WEST, LinkSignature, dest_layout, \
    head_view, header_fields


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

    Every input port buffers ``buffer`` flits per VC: the flits (data, head and tail bits) of
    all its VCs share one memory (a ring per VC; the VC chosen for the crossbar is a read
    address), and the head bit and output port, which allocation needs from every VC at once,
    sit in a small memory per VC addressed by the same ring pointers. The output port of each
    flit is computed when it is *written* into the input buffer (the head's destination against
    this router's coordinates; body flits inherit their head's port), so routing is off the
    allocation path, as with lookahead routing; it is stored as an index into the outputs its
    input can reach under dimension-order routing (:func:`turn_allowed`). In the cycle after a
    flit is buffered, VC allocation and separable switch allocation happen together and the
    winner crosses the crossbar into the output register, which drives the link: a flit spends
    **one cycle in the router and one on the link**.

    The crossbar has only the 17 legal turns. Outputs reached from 4 or 5 inputs (local, and
    the second dimension) have two output registers fed by 2:1 or 3:1 multiplexers and a 2:1
    multiplexer after them (see :meth:`_crossbar`): about 12 LUT4 per flit bit on ECP5.

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
    eligible when its downstream VC has a credit, so buffers never overflow. Credit counters
    and ownership are updated from the flit on the output link (registered), one cycle after
    the allocation, with that flit accounted for by hand; this keeps their logic off the
    allocation path.

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
        Output links; ``valid`` comes from a register, ``flit`` from one, or from two through a
        2:1 multiplexer with a registered select. ``credit`` from the receiver may be
        combinational or registered.
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

    def _route(self, m, head_data, dests):
        """Gateware routing function: the output a head for ``head_data``'s destination takes,
        as an index into ``dests`` (the outputs its input port can reach, see
        :func:`turn_allowed`: 2 to 5 of them, so 1 to 3 bits a flit).

        A destination outside the mesh names a port this router lacks; such a head takes the
        next choice of the dimension order, ultimately the local port: it is delivered at the
        edge of the mesh nearest its destination instead of waiting forever for a link that
        does not exist.
        """
        dst = head_view(dest_layout(self._cols, self._rows), head_data)
        dst_x, dst_y = dst.x, dst.y
        code = Signal(range(max(len(dests), 2)), name="route")
        x_dirs = [(dst_x > self._x, EAST), (dst_x < self._x, WEST)]
        y_dirs = [(dst_y > self._y, NORTH), (dst_y < self._y, SOUTH)]
        order = x_dirs + y_dirs if self._routing == "xy" else y_dirs + x_dirs
        # Later assignments win, so the highest-priority dimension is assigned last.
        m.d.comb += code.eq(dests.index(LOCAL))
        for cond, port in reversed(order):
            if port in dests:
                with m.If(cond):
                    m.d.comb += code.eq(dests.index(port))
        return code

    @staticmethod
    def _crossbar(m, out, arb, sources, name):
        """One output's column of the crossbar: ``out`` (the link flit) takes source
        ``sources[arb.index]`` (an input's selected entry and its VC) at the next clock edge.

        Up to 3 sources: one multiplexer into one output register. With 4 or 5 (the local,
        north and south outputs), the sources are split into two groups of at most 3, each
        with its own register, and a 2:1 multiplexer *after* the registers picks the group the
        winner was in (its select is registered too). A 4:1 or 5:1 multiplexer is a 6- or
        7-input function, which Yosys' ECP5 mapping builds from wide LUTs (4 or 8 LUT4 a bit)
        whenever it lies on the critical path; 3:1 and 2:1 multiplexers cost 2 and 1 LUT4 a
        bit. The price is one more register and one LUT level on the link, which drives only
        the neighbour's buffer write and its routing compare.

        Each group's multiplexer is not selected by the arbiter's ``index`` (the end of the
        allocation path) but by the winner *within the group*: the first requesting member
        after the arbiter's ``last`` winner, cyclically — the arbiter's own rule restricted to
        the group, so it is the winner whenever the winner is in the group. It depends on the
        group's requests and a register only, so the wide multiplexers are off the critical
        path and synthesis has no reason to duplicate allocation logic into every data bit.
        """
        n = len(sources)
        groups = [list(range(n))] if n <= 3 else [list(range((n + 1) // 2)),
                                                  list(range((n + 1) // 2, n))]
        regs = []
        for g, members in enumerate(groups):
            reg = Signal(out.shape(), name=f"xbar_{name}_{g}")
            regs.append(reg)
            pick = Signal(range(max(len(members), 2)), name=f"xbar_{name}_{g}_pick")
            # Members at or before `last` come after the others in the cyclic order.
            at_or_before = [arb.last >= k for k in members]
            for start in range(len(members)):
                if start == 0:
                    region = ~at_or_before[0] | at_or_before[-1]
                else:
                    region = at_or_before[start - 1] & ~at_or_before[start]
                order = list(range(start, len(members))) + list(range(start))
                with m.If(region):
                    for j in reversed(order):
                        with m.If(arb.requests[members[j]]):
                            m.d.comb += pick.eq(j)
            with m.Switch(pick):
                for j, k in enumerate(members):
                    sel_entry, vc = sources[k]
                    with (m.Case(j) if j < len(members) - 1 else m.Default()):
                        m.d.sync += reg.eq(Cat(sel_entry.data, sel_entry.head, sel_entry.tail,
                                               vc[:out.vc.shape().width]))
        if len(regs) == 1:
            m.d.comb += out.eq(regs[0])
        else:
            second = Signal(name=f"xbar_{name}_second")
            m.d.sync += second.eq(arb.index >= groups[1][0])
            m.d.comb += out.eq(Mux(second, regs[1].as_value(), regs[0].as_value()))

    def elaborate(self, platform):
        m = Module()
        V, B, W = self._vcs, self._buffer, self._flit_width
        P = len(PORTS)
        ins = [p for p in range(P) if self.present(p)]
        outs = ins  # a port exists in both directions or in neither

        # Outputs each input can reach (see `turn_allowed`); a flit's route is an index into
        # its input's list.
        dests = {p: [o for o in outs if turn_allowed(self._routing, p, o)] for p in ins}
        srcs = {o: [p for p in ins if o in dests[p]] for o in outs}
        meta = {p: data.StructLayout({"head": 1, "route": range(max(len(dests[p]), 2))})
                for p in ins}
        ptr_bits = (B - 1).bit_length()
        vc_addr_bits = (V - 1).bit_length()

        # ---- input buffers ------------------------------------------------------------
        # Per input port, the flits of all VCs share one memory (a ring of 2**ptr_bits >=
        # buffer slots per VC, addressed by VC and pointer), so choosing a VC is a read
        # address, not a W-bit multiplexer. The bits allocation looks at for *every* VC at
        # once (head bit and output port) sit in a small memory per VC, addressed by the same
        # pointers. The pointers carry one more bit than the address, so equal pointers mean
        # empty even when all 2**ptr_bits slots are in use; credits keep at most `buffer`
        # flits in a VC, so the ring never overflows.
        occupied = {}        # (port, vc) -> the VC holds at least one flit
        heads = {}           # (port, vc) -> view of the VC's front entry
        rd_addr, rd_data, rptrs = {}, {}, {}
        buffered = data.StructLayout({"data": W, "head": 1, "tail": 1})
        for p in ins:
            link = self.i[p]
            arrival_route = self._route(m, link.flit.data, dests[p])
            # The head and tail bits travel with the data too, so the crossbar takes them from
            # the one read port instead of a multiplexer over the VCs' metadata.
            mem = Memory(shape=buffered, depth=1 << (ptr_bits + vc_addr_bits), init=[])
            m.submodules[f"mem_{PORTS[p]}"] = mem
            wr = mem.write_port()
            rd = mem.read_port(domain="comb")
            rd_addr[p], rd_data[p] = rd.addr, rd.data
            wptr = Array(Signal(ptr_bits + 1, name=f"wptr_{PORTS[p]}_{v}") for v in range(V))
            rptr = rptrs[p] = Array(Signal(ptr_bits + 1, name=f"rptr_{PORTS[p]}_{v}")
                                    for v in range(V))
            wvc = link.flit.vc[:vc_addr_bits]
            wsel = wptr[wvc] if V > 1 else wptr[0]
            m.d.comb += [wr.addr.eq(Cat(wsel[:ptr_bits], wvc)), wr.en.eq(link.valid),
                         wr.data.eq(Cat(link.flit.data, link.flit.head, link.flit.tail))]
            with m.If(link.valid):
                m.d.sync += wsel.eq(wsel + 1)
            for v in range(V):
                meta_mem = Memory(shape=meta[p], depth=1 << ptr_bits, init=[])
                m.submodules[f"meta_{PORTS[p]}_{v}"] = meta_mem
                meta_wr = meta_mem.write_port()
                meta_rd = meta_mem.read_port(domain="comb")
                m.d.comb += meta_rd.addr.eq(rptr[v][:ptr_bits])
                heads[p, v] = meta_rd.data
                occupied[p, v] = wptr[v] != rptr[v]
                # Body flits follow the port their head took on arrival at this input VC.
                packet_route = Signal(meta[p].size - 1, name=f"packet_route_{PORTS[p]}_{v}")
                m.d.comb += [
                    meta_wr.en.eq(link.valid & (link.flit.vc == v)),
                    meta_wr.addr.eq(wptr[v][:ptr_bits]),
                    meta_wr.data.head.eq(link.flit.head),
                    meta_wr.data.route.eq(packet_route),
                ]
                with m.If(link.flit.head):
                    m.d.comb += meta_wr.data.route.eq(arrival_route)
                with m.If(meta_wr.en & link.flit.head):
                    m.d.sync += packet_route.eq(arrival_route)

        # ---- output VC state: credits and ownership -------------------------------------
        # Both are kept from the output register (the flit on the link), one cycle after the
        # allocation that sent it, so their update logic starts at flip-flops instead of at
        # the end of the allocation path; the flit on the link is then accounted for by hand:
        # it has used a credit the counter still shows, and holds or frees its VC.
        can_take, can_send = {}, {}   # (port, vc): a head / a body flit may be sent now
        for o in outs:
            link = self.o[o]
            for v in range(V):
                credits = Signal(range(B + 1), init=B, name=f"credits_{PORTS[o]}_{v}")
                held = Signal(name=f"held_{PORTS[o]}_{v}")   # by a packet whose tail has not left
                on_link = link.valid & (link.flit.vc == v)
                m.d.sync += credits.eq(credits + link.credit[v] - on_link)
                with m.If(on_link):
                    # Held from a head until its tail leaves; a head-and-tail flit never holds.
                    m.d.sync += held.eq(~link.flit.tail)
                can_send[o, v] = credits > on_link
                can_take[o, v] = can_send[o, v] & ~Mux(on_link, ~link.flit.tail, held)

        # ---- input-first separable switch allocation ------------------------------------
        in_arb, sel_vc, sel_route, sel_flit = {}, {}, {}, {}
        for p in ins:
            arb = in_arb[p] = RoundRobinArbiter(n=V)
            m.submodules[f"in_arb_{PORTS[p]}"] = arb
            for v in range(V):
                h = heads[p, v]
                send_ok = Signal(name=f"send_ok_{PORTS[p]}_{v}")
                # Route codes beyond the input's list never occur (the last is the default).
                with m.Switch(h.route):
                    for j, o in enumerate(dests[p]):
                        with (m.Case(j) if j < len(dests[p]) - 1 else m.Default()):
                            m.d.comb += send_ok.eq(Cat(can_take[o, v], can_send[o, v])
                                                   .bit_select(~h.head, 1))
                m.d.comb += arb.requests[v].eq(occupied[p, v] & send_ok)
            sel_vc[p] = arb.index
            rptr = rptrs[p]
            sel = arb.index[:vc_addr_bits]
            m.d.comb += rd_addr[p].eq(Cat((rptr[sel] if V > 1 else rptr[0])[:ptr_bits], sel))
            sel_flit[p] = rd_data[p]
            sel_route[p] = Signal.like(heads[p, 0].route, name=f"sel_route_{PORTS[p]}")
            with m.Switch(arb.index):
                for v in range(V):
                    with (m.Case(v) if v < V - 1 else m.Default()):
                        m.d.comb += sel_route[p].eq(heads[p, v].route)

        out_arb = {}
        moved = {p: Signal(name=f"moved_{PORTS[p]}") for p in ins}
        for o in outs:
            arb = out_arb[o] = RoundRobinArbiter(n=len(srcs[o]))
            m.submodules[f"out_arb_{PORTS[o]}"] = arb
            for k, p in enumerate(srcs[o]):
                m.d.comb += arb.requests[k].eq(in_arb[p].valid
                                               & (sel_route[p] == dests[p].index(o)))
            m.d.comb += arb.advance.eq(arb.valid)
            link = self.o[o]
            m.d.sync += link.valid.eq(arb.valid)
            self._crossbar(m, link.flit, arb,
                           [(sel_flit[p], sel_vc[p]) for p in srcs[o]], PORTS[o])

        for p in ins:
            grants = [out_arb[o].grant[k] for o in outs
                      for k, q in enumerate(srcs[o]) if q == p]
            m.d.comb += moved[p].eq(Cat(grants).any())
            m.d.comb += in_arb[p].advance.eq(moved[p])
            popped = Signal(V, name=f"popped_{PORTS[p]}")
            for v in range(V):
                m.d.comb += popped[v].eq(moved[p] & (sel_vc[p] == v))
                with m.If(popped[v]):
                    m.d.sync += rptrs[p][v].eq(rptrs[p][v] + 1)
            # Registered credit return: one pulse per flit that left the buffer.
            m.d.sync += self.i[p].credit.eq(popped)
        return m
