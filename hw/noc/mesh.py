"""The ``noc`` block's deliverable: a cols x rows mesh of :class:`Router` with one endpoint per
node. Its bench top (traffic generators and checkers at every node) is
:class:`hw.testbench.noc.NoCBench`."""

from dataclasses import dataclass, fields

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..params import ParameterError, Params, param
from .flit import EAST, LOCAL, NORTH, SOUTH, WEST, dest_layout, message_head_layout
from .ni import Depacketizer, EjectNI, InjectNI, Packetizer, beat_layout, delivery_layout, \
    message_layout
from .router import ROUTINGS, Router


__all__ = ["PATTERNS", "MeshParams", "NoCBenchParams", "Mesh", "noc_network"]

# Destination patterns of the bench traffic generators (hw.testbench.noc.TrafficGen).
PATTERNS = ("uniform", "transpose", "bitcomp", "hotspot", "neighbor")


@dataclass(frozen=True)
class MeshParams(Params):
    """Parameters of the network (:class:`Mesh`); the ``noc`` block's
    :class:`hw.testbench.noc.NoCParams` adds those of its bench top."""
    cols: int = param(4, lo=1, hi=16, doc="mesh columns (x)")
    rows: int = param(4, lo=1, hi=16, doc="mesh rows (y)")
    vcs: int = param(2, lo=1, hi=4, doc="virtual channels per port (shared out among classes)")
    buffer: int = param(4, lo=2, hi=32, doc="flits per VC input buffer")
    flit_width: int = param(64, lo=8, hi=1024, doc="payload bits per flit (head: destination in low bits)")
    routing: str = param("xy", choices=ROUTINGS, doc="dimension-order routing")
    classes: int = param(1, lo=1, hi=4, doc="message classes, each on its own VCs (2: request/response)")
    message_ni: bool = param(False, doc="message endpoints (destination/source + payload beats, "
                                        "a head flit added and stripped) instead of flit endpoints")

    def check(self):
        if self.cols * self.rows < 2:
            raise ParameterError(f"cols, rows: {self.cols}x{self.rows} has one node "
                                 "(accepted: at least 2 nodes)")
        if self.vcs % self.classes:
            raise ParameterError(f"vcs, classes: {self.vcs} VCs do not split evenly among "
                                 f"{self.classes} classes (accepted: vcs a multiple of classes)")
        head = message_head_layout if self.message_ni else dest_layout
        need = head(self.cols, self.rows).size
        if self.flit_width < need:
            raise ParameterError(f"flit_width: {self.flit_width} is out of range (accepted: "
                                 f"at least {need} bits for a {self.cols}x{self.rows} mesh)")


@dataclass(frozen=True)
class NoCBenchParams(Params):
    """Workload of ``scoville bench noc``."""
    traffic: str = param("uniform", choices=PATTERNS, doc="destination pattern")
    rate: float = param(0.1, lo=0.0, hi=1.0, doc="offered load, flits/node/cycle")
    packet_flits: int = param(1, lo=1, hi=255, doc="flits per packet")
    cycles: int = param(10000, lo=100, hi=10_000_000, doc="measured cycles (after warm-up)")
    warmup: int = param(1000, lo=0, hi=1_000_000, doc="cycles of traffic before measuring")
    # Not `seed`: `scoville bench --seed` is the cocotb seed.
    traffic_seed: int = param(1, lo=0, hi=2**32 - 1, doc="seed of the hardware traffic generators")


class Mesh(wiring.Component):
    """A cols x rows 2-D mesh of wormhole VC routers with stream endpoints per message class.

    Node ``n`` sits at column ``x = n % cols``, row ``y = n // cols``. Each has an
    :class:`InjectNI` and an :class:`EjectNI` on its router's local port, one stream pair per
    message class; message class ``c`` uses VCs ``c*vcs/classes .. (c+1)*vcs/classes - 1`` only,
    so a consumer that holds back one class (a memory refusing requests until it can send
    responses) never blocks another. Routing is dimension-order, hence deadlock-free.

    Zero-load latency for a packet of ``P`` flits over ``H = |dx| + |dy|`` hops, counted from
    the clock edge at which the head is accepted on ``n{src}_i{c}`` to the edge at which the tail
    is taken from ``n{dst}_o{c}`` (consumer always ready): ``2*H + 3 + (P - 1)`` cycles (the
    head is buffered in the source router at the acceptance edge; 2 cycles per hop; 1 cycle in
    the destination router, 1 into the ejection buffer, 1 to be taken from it; then one flit
    per cycle).

    Throughput: one flit per cycle per link and per endpoint stream; with ``buffer >= 3``
    the credit loop does not limit a single VC.

    Members
    -------
    n{n}_i{c} : In(stream.Signature(beat_layout(flit_width)))
        Injection stream of node ``n``, class ``c``. A packet is consecutive beats up to one
        with ``last``; its first beat is the head, whose ``data`` holds the destination column
        in bits ``[0:xb]`` and row in ``[xb:xb+yb]`` (``xb``, ``yb`` = bits for ``cols - 1``,
        ``rows - 1``; both must be inside the mesh). ``ready`` may depend on ``valid``.
    n{n}_o{c} : Out(stream.Signature(beat_layout(flit_width)))
        Ejection stream of node ``n``, class ``c``: whole packets, never interleaved, flits in
        order; ``valid`` does not depend on ``ready``.
    """

    def __init__(self, *, cols=4, rows=4, vcs=2, buffer=4, flit_width=64, routing="xy",
                 classes=1, message_ni=False):
        self._p = MeshParams(cols=cols, rows=rows, vcs=vcs, buffer=buffer, flit_width=flit_width,
                             routing=routing, classes=classes, message_ni=message_ni)
        if message_ni:
            inject = stream.Signature(message_layout(cols * rows, flit_width))
            eject = stream.Signature(delivery_layout(cols * rows, flit_width))
        else:
            inject = eject = stream.Signature(beat_layout(flit_width))
        members = {}
        for n in range(cols * rows):
            for c in range(classes):
                members[f"n{n}_i{c}"] = In(inject)
                members[f"n{n}_o{c}"] = Out(eject)
        super().__init__(members)

    params = property(lambda self: self._p)

    def endpoint(self, n, c, direction):
        return getattr(self, f"n{n}_{direction}{c}")

    def elaborate(self, platform):
        m = Module()
        p = self._p
        cols, rows, C = p.cols, p.rows, p.classes
        N = cols * rows
        routers = {}
        for y in range(rows):
            for x in range(cols):
                r = Router(x=x, y=y, cols=cols, rows=rows, vcs=p.vcs, buffer=p.buffer,
                           flit_width=p.flit_width, routing=p.routing)
                routers[x, y] = m.submodules[f"router_{x}_{y}"] = r
        for (x, y), r in routers.items():
            if x + 1 < cols:
                wiring.connect(m, r.o[EAST], routers[x + 1, y].i[WEST])
                wiring.connect(m, routers[x + 1, y].o[WEST], r.i[EAST])
            if y + 1 < rows:
                wiring.connect(m, r.o[NORTH], routers[x, y + 1].i[SOUTH])
                wiring.connect(m, routers[x, y + 1].o[SOUTH], r.i[NORTH])

        for n in range(N):
            x, y = n % cols, n // cols
            inj = InjectNI(x=x, y=y, cols=cols, rows=rows, vcs=p.vcs, classes=C,
                           buffer=p.buffer, flit_width=p.flit_width)
            ej = EjectNI(vcs=p.vcs, classes=C, buffer=p.buffer, flit_width=p.flit_width)
            m.submodules[f"inject_{n}"] = inj
            m.submodules[f"eject_{n}"] = ej
            wiring.connect(m, inj.link, routers[x, y].i[LOCAL])
            wiring.connect(m, routers[x, y].o[LOCAL], ej.link)
            for c in range(C):
                if p.message_ni:
                    pk = Packetizer(cols=cols, rows=rows, flit_width=p.flit_width, src=n)
                    dp = Depacketizer(cols=cols, rows=rows, flit_width=p.flit_width)
                    m.submodules[f"packetizer_{n}_{c}"] = pk
                    m.submodules[f"depacketizer_{n}_{c}"] = dp
                    wiring.connect(m, wiring.flipped(self.endpoint(n, c, "i")), pk.i)
                    wiring.connect(m, pk.o, inj.i[c])
                    wiring.connect(m, ej.o[c], dp.i)
                    wiring.connect(m, dp.o, wiring.flipped(self.endpoint(n, c, "o")))
                    continue
                wiring.connect(m, wiring.flipped(self.endpoint(n, c, "i")), inj.i[c])
                wiring.connect(m, ej.o[c], wiring.flipped(self.endpoint(n, c, "o")))
        return m


def noc_network(**params):
    """The ``noc`` block's deliverable RTL (``scoville verilog``/``synth``): the mesh with its
    endpoint streams. Takes the block's parameters (:class:`hw.testbench.noc.NoCParams`) and
    uses the network's (:class:`MeshParams`); the bench-top ones (``traffic_gen``,
    ``histogram``) do not change the network."""
    return Mesh(**{f.name: params[f.name] for f in fields(MeshParams) if f.name in params})
