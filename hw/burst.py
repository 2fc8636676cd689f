"""AXI4 INCR burst splitter: byte ranges in, legal bursts out (shared by every AXI master)."""

from dataclasses import dataclass

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for, exact_log2

from .params import ParameterError, Params, param


__all__ = ["BurstSplitter", "BurstSplitterParams", "request_layout", "burst_layout"]

AXI_PAGE = 4096     # AXI4: no burst may cross a 4 KiB boundary
AXI_MAX_BEATS = 256  # AXI4 INCR: AxLEN is 8 bits


def request_layout(*, addr_width, length_width, user_width):
    """Payload of a splitter request: a byte range ``[addr, addr + length)`` and a user tag
    (no ``user`` field when ``user_width`` is 0: Verilog has no zero-width wires)."""
    return data.StructLayout({"addr": unsigned(addr_width), "length": unsigned(length_width),
                              **({"user": unsigned(user_width)} if user_width else {})})


def burst_layout(*, addr_width, max_beats, user_width):
    """Payload of one burst: beat-aligned ``addr``, ``beats`` (1..max_beats; AXI ``AxLEN`` is
    ``beats - 1``), ``first``/``last`` burst of its request, and the request's ``user`` tag (if any)."""
    return data.StructLayout({"addr": unsigned(addr_width), "beats": unsigned(bits_for(max_beats)),
                              "first": unsigned(1), "last": unsigned(1),
                              **({"user": unsigned(user_width)} if user_width else {})})


@dataclass(frozen=True)
class BurstSplitterParams(Params):
    """Parameters of the ``burst_splitter`` block as seen from the CLI."""
    addr_width: int = param(32, lo=12, hi=64, doc="byte address width")
    data_width: int = param(64, lo=8, hi=1024, power_of_two=True, doc="AXI data width in bits (one beat)")
    max_beats: int = param(256, lo=1, hi=AXI_MAX_BEATS, doc="longest burst in beats")
    boundary: int = param(AXI_PAGE, lo=1, hi=AXI_PAGE, power_of_two=True,
                          doc="no burst crosses a multiple of this many bytes (>= data_width / 8)")
    length_width: int = param(32, lo=1, hi=64, doc="request length width (bytes)")
    user_width: int = param(0, lo=0, hi=1024, doc="user tag copied from a request to each of its bursts")

    def check(self):
        if self.boundary < self.data_width // 8:
            raise ParameterError(f"boundary: {self.boundary} is less than one beat of {self.data_width // 8} bytes "
                                 f"(accepted: a power of two in {self.data_width // 8}..{AXI_PAGE})")


class BurstSplitter(wiring.Component):
    """Cuts byte ranges into AXI4 INCR bursts that never cross ``boundary`` nor exceed ``max_beats``.

    A request is a byte range ``[addr, addr + length)`` (byte-granular start and length); it is
    covered by the beats of ``data_width / 8`` bytes it touches, issued as bursts of at most
    ``max_beats`` beats, each ending at the latest at the next multiple of ``boundary``. Burst
    addresses are beat-aligned (the first burst starts at ``addr`` rounded down; byte strobes
    are the user's business: ``first``/``last`` mark the bursts holding the range's ends).
    A request of length 0 produces no burst.

    Latency and throughput: a request accepted at cycle ``t`` offers its first burst at
    ``t + 2``; after a burst transfers at cycle ``u`` the request's next burst is offered at
    ``u + 2`` (the burst length is registered: boundary distance, ``max_beats`` and the beats
    left are a chain of carry chains), and after its last burst the next request is accepted at
    ``u + 1``. With an always-ready sink and a waiting source, a request of ``k`` bursts takes
    exactly ``2 * k + 1`` cycles (an empty request 1 cycle): one burst per 2 cycles, so the
    splitter never limits a data channel whose bursts average 2 beats or more.

    Parameters
    ----------
    addr_width : int
        Byte address width, 12..64.
    data_width : int
        Data width of the bus in bits (power of two, 8..1024); one beat is ``data_width / 8`` bytes.
    max_beats : int
        Longest burst in beats, 1..256.
    boundary : int
        Bursts never cross a multiple of ``boundary`` bytes (power of two, one beat..4096;
        4096 is AXI4's rule).
    length_width : int
        Width of a request's byte length, 1..64.
    user_width : int
        Width of a tag copied unchanged from a request to each of its bursts, 0..1024.

    Members
    -------
    i : In(stream.Signature(request_layout(...)))
        Requests ``{addr, length, user}`` (no ``user`` field when ``user_width`` is 0), valid/ready.
        ``i.ready`` is high exactly when no request is in progress (a registered state: it does
        not depend on ``i.valid``).
    o : Out(stream.Signature(burst_layout(...)))
        Bursts ``{addr, beats, first, last, user}`` in address order, valid/ready; payload stable
        while ``o.valid & ~o.ready``. ``o.ready`` may depend on ``o.valid`` and on the payload
        (room checks on ``beats``).
    flush : In(1)
        While high, no burst is offered (``o.valid`` low in that very cycle: the one exception to
        holding ``valid`` until the transfer), the request in progress is dropped and requests
        accepted are dropped. Bursts already transferred are not recalled.
    """

    def __init__(self, *, addr_width=32, data_width=64, max_beats=256, boundary=AXI_PAGE, length_width=32,
                 user_width=0):
        try:
            self._p = BurstSplitterParams(addr_width=addr_width, data_width=data_width, max_beats=max_beats,
                                          boundary=boundary, length_width=length_width, user_width=user_width)
        except ParameterError:
            self._MustUse__silence = True   # never constructed: no unused-elaboratable warning
            raise
        super().__init__({
            "i": In(stream.Signature(request_layout(addr_width=addr_width, length_width=length_width,
                                                    user_width=user_width))),
            "o": Out(stream.Signature(burst_layout(addr_width=addr_width, max_beats=max_beats,
                                                   user_width=user_width))),
            "flush": In(1),
        })

    params = property(lambda self: self._p)
    addr_width = property(lambda self: self._p.addr_width)
    data_width = property(lambda self: self._p.data_width)
    max_beats = property(lambda self: self._p.max_beats)
    boundary = property(lambda self: self._p.boundary)
    length_width = property(lambda self: self._p.length_width)
    user_width = property(lambda self: self._p.user_width)
    beat_bytes = property(lambda self: self._p.data_width // 8)

    def elaborate(self, platform):
        m = Module()
        p = self._p
        B = self.beat_bytes
        lg_beat, lg_boundary = exact_log2(B), exact_log2(p.boundary)
        req = self.i.payload

        active = Signal()
        addr = Signal(p.addr_width)                 # next burst, beat-aligned
        left = Signal(bits_for(((B - 1) + (2 ** p.length_width - 1) + (B - 1)) >> lg_beat))  # beats left
        first = Signal()
        user = Signal(p.user_width) if p.user_width else Cat()

        # This burst's length, registered: it is valid one cycle after addr/left change (n_ok).
        to_boundary = Signal(range(p.boundary // B + 1))
        m.d.comb += to_boundary.eq((p.boundary - addr[:lg_boundary]) >> lg_beat)
        limit = Mux(to_boundary < p.max_beats, to_boundary, p.max_beats)
        n, n_ok = Signal(range(p.max_beats + 1)), Signal()
        m.d.sync += n.eq(Mux(left < limit, left, limit))

        take = self.i.valid & ~active
        fire = self.o.valid & self.o.ready
        m.d.comb += [
            self.i.ready.eq(~active),
            self.o.valid.eq(active & n_ok & ~self.flush),
            self.o.payload.eq(Cat(addr, n, first, left == n, user)),
        ]
        m.d.sync += n_ok.eq(~fire & ~take)
        with m.If(take):
            m.d.sync += [
                active.eq(req.length != 0),
                addr.eq(req.addr & ~(B - 1)),
                left.eq(((req.addr & (B - 1)) + req.length + (B - 1)) >> lg_beat),
                first.eq(1),
            ]
            if p.user_width:
                m.d.sync += user.eq(req.user)
        with m.If(fire):
            m.d.sync += [addr.eq(addr + (n << lg_beat)), left.eq(left - n), first.eq(0)]
            with m.If(left == n):
                m.d.sync += active.eq(0)
        with m.If(self.flush):
            m.d.sync += active.eq(0)
        return m

