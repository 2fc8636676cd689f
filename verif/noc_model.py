"""Golden model of the Scoville NoC: destinations, packet scoreboard and zero-load latency.

The scoreboard holds, per (source, destination, class) flow, the queue of packets injected and
not yet delivered. A packet ejected at node ``d`` on class stream ``c`` must be, flit for flit,
the oldest outstanding packet of flow ``(src, d, c)`` where ``src`` is read from its head: that
one comparison proves delivery to the right node, on the right class, intact and in order per
flow; popping it proves "at most once"; an empty scoreboard at the end proves "at least once".
"""

import collections
import random

from amaranth.hdl import unsigned
from amaranth.lib import data

from scoville.hw.noc.flit import dest_layout, header_fields, node_bits
from scoville.hw.noc.router import route_port


__all__ = ["NoCModel", "hops", "pattern_dst", "PATTERNS", "fit_layout", "model_head_layout"]

PATTERNS = ("uniform", "transpose", "bitcomp", "hotspot", "neighbor")


def hops(cols, src, dst):
    sx, sy, dx, dy = src % cols, src // cols, dst % cols, dst // cols
    return abs(sx - dx) + abs(sy - dy)


def pattern_dst(pattern, cols, rows, src, rng=random):
    """A destination for ``src`` under ``pattern`` (same definitions as the bench generator)."""
    x, y = src % cols, src // cols
    if pattern == "uniform":
        return rng.randrange(cols * rows)
    if pattern == "transpose":
        return (x % rows) * cols + (y % cols)
    if pattern == "bitcomp":
        return (rows - 1 - y) * cols + (cols - 1 - x)
    if pattern == "hotspot":
        cx, cy = rng.choice([0, cols - 1]), rng.choice([0, rows - 1])
        return cy * cols + cx
    if pattern == "neighbor":
        return y * cols + (x + 1) % cols
    raise ValueError(f"pattern: {pattern!r} is not accepted (accepted: one of {', '.join(PATTERNS)})")


def pattern_pairs(pattern, cols, rows):
    """``[(src, dst, weight)]``: the exact destination distribution of ``pattern``."""
    n = cols * rows
    pairs = []
    for src in range(n):
        x, y = src % cols, src // cols
        if pattern == "uniform":
            pairs += [(src, d, 1 / n) for d in range(n)]
        elif pattern == "hotspot":
            for cx in (0, cols - 1):
                for cy in (0, rows - 1):
                    pairs.append((src, cy * cols + cx, 0.25))
        else:
            pairs.append((src, pattern_dst(pattern, cols, rows, src), 1.0))
    return pairs


def fit_layout(wanted, flit_width):
    """A test head layout: the ``(name, shape)`` fields of ``wanted`` in order, from bit 0 of a
    flit's ``data``, then a random ``filler`` up to ``flit_width``. A field that does not fit is
    cut to the bits that remain (as the flit carries); the first (the routing header) must fit."""
    fields, left = {}, flit_width
    for name, shape in wanted:
        width = data.Layout.cast(shape).size if isinstance(shape, data.Layout) else shape.width
        if width <= left:
            fields[name] = shape
        elif left and name != "dst":
            fields[name] = unsigned(left)
        width = min(width, left)
        left -= width
    if left:
        fields["filler"] = unsigned(left)
    return data.StructLayout(fields)


def model_head_layout(cols, rows, flit_width):
    """Head flit ``data`` of the golden-model tests: the routing header (:func:`dest_layout`),
    source node, class (2 bits), a 16-bit sequence number per flow, random ``filler``."""
    return fit_layout([("dst", dest_layout(cols, rows)), ("src", unsigned(node_bits(cols * rows))),
                       ("cls", unsigned(2)), ("seq", unsigned(16))], flit_width)


class NoCModel:
    """Scoreboard and latency model for a mesh of the given parameters.

    Test head layout (low bits first): destination column (``xb`` bits) and row (``yb``) — the
    routing header — then source node (``nb`` bits), class (2 bits), a 16-bit sequence number
    per flow, random filler.
    """

    # Edges from the head's acceptance to the tail's ejection, besides 2 per hop (see Mesh).
    PIPELINE = 3
    # The bench counts from the edge at which a packet is created into its source queue;
    # it is accepted by the network interface at the next edge at the earliest.
    BENCH_EXTRA = 1

    def __init__(self, *, cols, rows, vcs=2, classes=1, flit_width=32, routing="xy", **_):
        self.cols, self.rows, self.classes, self.w = cols, rows, classes, flit_width
        self.vcs, self.routing = vcs, routing
        self.nodes = cols * rows
        self.xb, self.yb = header_fields(cols, rows)
        self.nb = node_bits(self.nodes)
        self.head_layout = model_head_layout(cols, rows, flit_width)
        self.flows = collections.defaultdict(collections.deque)
        self.seq = collections.Counter()
        self.injected = 0
        self.delivered = 0

    # ---- packets ----------------------------------------------------------------------
    def head(self, src, dst, cls, seq, rng):
        layout = self.head_layout
        values = {"dst": {"x": dst % self.cols, "y": dst // self.cols}, "src": src, "cls": cls,
                  "seq": seq}
        fields = {name: values[name] & ((1 << layout[name].width) - 1)
                  for name in ("src", "cls", "seq") if name in layout.members}
        if "filler" in layout.members:
            fields["filler"] = rng.getrandbits(layout["filler"].width)
        return layout.const({"dst": values["dst"], **fields}).as_bits()

    def packet(self, src, dst, cls, length, rng=random):
        """A new packet (list of flit data words) of flow (src, dst, cls), recorded as expected."""
        key = (src, dst, cls)
        flits = [self.head(src, dst, cls, self.seq[key], rng)]
        flits += [rng.getrandbits(self.w) for _ in range(length - 1)]
        self.seq[key] += 1
        self.flows[key].append(flits)
        self.injected += 1
        return flits

    def message(self, src, dst, cls, length, rng=random):
        """A new message (payload words only; the network interface adds the head flit)."""
        key = (src, dst, cls)
        words = [rng.getrandbits(self.w) for _ in range(length)]
        self.flows[key].append(words)
        self.injected += 1
        return words

    def deliver_message(self, node, cls, src, words):
        """Check one message delivered at ``node`` on class ``cls`` with source ``src``."""
        if src >= self.nodes:
            raise AssertionError(f"node {node} class {cls}: message names source {src} (no such node)")
        queue = self.flows[(src, node, cls)]
        if not queue:
            raise AssertionError(f"node {node} class {cls}: unexpected message from node {src} "
                                 "(misrouted, duplicate, wrong class or never sent)")
        if words != queue[0]:
            others = [i for i, q in enumerate(queue) if q == words]
            raise AssertionError(f"node {node} class {cls}: message from node {src} " +
                                 (f"out of order (it is message {others[0]} of {len(queue)})" if others
                                  else f"corrupt ({len(words)} beats, expected {len(queue[0])})"))
        queue.popleft()
        self.delivered += 1

    def src_of(self, head):
        return data.Const(self.head_layout, head).src

    def dst_of(self, head):
        """The node a head is delivered to. Coordinates outside the mesh (possible when
        ``cols`` or ``rows`` is not a power of two) are clamped to its edge: the routers'
        dimension-order routing falls back to the next dimension, then to the local port,
        where a link is missing (:meth:`hw.noc.router.Router._route`)."""
        dst = data.Const(self.head_layout, head).dst
        x, y = min(dst.x, self.cols - 1), min(dst.y, self.rows - 1)
        return y * self.cols + x

    def with_coordinates(self, head, x, y):
        """``head`` with its destination field set to column ``x``, row ``y`` (which may lie
        outside the mesh, up to the field widths)."""
        dst = self.head_layout["dst"]
        field = ((1 << dst.width) - 1) << dst.offset
        return (head & ~field) | dst.shape.const({"x": x, "y": y}).as_bits() << dst.offset

    def deliver(self, node, cls, flits):
        """Check one packet ejected at ``node`` on class ``cls``; raise AssertionError if wrong."""
        head = flits[0]
        dst, src = self.dst_of(head), self.src_of(head)
        if dst != node:
            raise AssertionError(f"misrouted: packet from node {src} for node {dst} ejected at node {node}")
        if src >= self.nodes:
            raise AssertionError(f"node {node} class {cls}: head {head:#x} names source {src} (no such node)")
        queue = self.flows[(src, node, cls)]
        if not queue:
            raise AssertionError(f"node {node} class {cls}: unexpected packet from node {src} "
                                 f"(duplicate, wrong class or never sent): {[hex(f) for f in flits]}")
        expected = queue[0]
        if flits != expected:
            where = [i for i, (a, b) in enumerate(zip(flits, expected)) if a != b]
            others = [i for i, p in enumerate(queue) if p == flits]
            what = (f"out of order (it is packet {others[0]} of the {len(queue)} outstanding)"
                    if others else f"corrupt (flit {where[0] if where else min(len(flits), len(expected))} "
                    f"differs; {len(flits)} flits, expected {len(expected)})")
            raise AssertionError(f"node {node} class {cls}: packet from node {src} {what}")
        queue.popleft()
        self.delivered += 1

    def outstanding(self):
        return sum(len(q) for q in self.flows.values())

    def check_all_delivered(self):
        missing = {k: len(q) for k, q in self.flows.items() if q}
        if missing:
            some = ", ".join(f"{s}->{d} class {c}: {n}" for (s, d, c), n in list(missing.items())[:8])
            raise AssertionError(f"{sum(missing.values())} packet(s) never delivered ({some})")

    # ---- latency ------------------------------------------------------------------------
    def path(self, src, dst):
        """Routers a packet visits, with the output port taken at each (model of routing)."""
        x, y = src % self.cols, src // self.cols
        dx, dy = dst % self.cols, dst // self.cols
        steps = []
        while True:
            port = route_port(self.routing, x, y, dx, dy)
            steps.append(((x, y), port))
            if port == 0:
                return steps
            x += {1: 1, 2: -1}.get(port, 0)
            y += {3: 1, 4: -1}.get(port, 0)

    def zero_load_latency(self, src, dst, length=1):
        """Cycles from the edge the head is accepted at ``src`` to the edge the tail is taken at
        ``dst``, alone in the network with a ready consumer: 2 per hop + 3 + (length - 1).

        The serialisation term assumes ``buffer >= 3`` (the credit loop is 3 cycles); with
        shorter buffers it holds for one-flit packets only."""
        return 2 * (len(self.path(src, dst)) - 1) + self.PIPELINE + (length - 1)

    def bench_zero_load_latency(self, pattern, length=1):
        """Average zero-load latency of the bench (creation to tail) over ``pattern``."""
        pairs = pattern_pairs(pattern, self.cols, self.rows)
        total = sum(w * self.zero_load_latency(s, d, length) for s, d, w in pairs)
        return total / sum(w for _, _, w in pairs) + self.BENCH_EXTRA
