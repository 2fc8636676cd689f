"""N:1 AXI4 multiplexer: several managers share one subordinate, write bursts locked to W."""

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from .arbiter import RoundRobinArbiter
from .axi import AXI4Signature
from .params import ParameterError, Params, check_int, param


__all__ = ["AXIMuxParams", "AXIMux", "axi_mux", "source_bits"]


def source_bits(managers):
    """Bits the mux adds on top of the managers' IDs to name the source: ``ceil(log2(N))``."""
    return max(1, (managers - 1).bit_length())


def _check_id_room(id_width, managers, name="id_width"):
    room = 32 - source_bits(managers)
    if id_width > room:
        raise ParameterError(f"{name}: {id_width} is out of range for {managers} managers "
                             f"(accepted: an integer in 0..{room}, so that id_width + "
                             f"{source_bits(managers)} source bits <= 32)")


@dataclass(frozen=True)
class AXIMuxParams(Params):
    """Parameters of the ``axi_mux`` block."""
    managers: int = param(3, lo=2, hi=16, doc="managers (s_axi0 .. s_axi{N-1})")
    addr_width: int = param(16, lo=12, hi=64, doc="byte address width")
    data_width: int = param(32, lo=8, hi=1024, power_of_two=True, doc="data width (bits)")
    id_width: int = param(2, lo=0, hi=31, doc="managers' ID width (m_axi adds ceil(log2 N) bits)")
    write_queue: int = param(4, lo=1, hi=64, doc="AW accepted ahead of the end of their W bursts")

    def check(self):
        _check_id_room(self.id_width, self.managers)


class AXIMux(wiring.Component):
    """N:1 AXI4 multiplexer (interconnect with one subordinate) with round-robin arbitration.

    **Requests.** AR and AW are arbitrated separately, each by a
    :class:`~scoville.hw.arbiter.RoundRobinArbiter` that advances on every address handshake:
    with every manager requesting, each gets one address in every ``N``, and a waiting manager
    is granted after at most ``N - 1`` others. Once ``m_axi`` has seen ``valid`` for a manager the
    grant is locked to it until the handshake (the payload never changes under a stall).
    The ID on ``m_axi`` is ``{source, id}``: the manager's ID in the low ``id_width`` bits, the
    manager's index in the ``ceil(log2 N)`` bits above it.

    **Write data.** The source of every accepted AW enters a FIFO of ``write_queue`` entries; the
    W channel is held by the manager at its head until that manager's beat with ``WLAST`` (the
    W bursts go out in AW order, never interleaved). An AW is not accepted while the FIFO is
    full, so at most ``write_queue`` write bursts are between AW handshake and last W beat.
    W waits for its AW (allowed: a subordinate may wait for AW before taking W); a manager slow
    to deliver its W beats holds up the W bursts of AWs accepted after its own. ``WLAST`` is
    the manager's: a manager whose ``WLAST`` disagrees with its ``AWLEN`` breaks the bus, as it
    would on a direct connection.

    **Responses.** R and B go to the manager the ID's source bits name, with those bits removed;
    no arbitration is needed (one subordinate). A response whose source bits name no manager
    (``>= N``, which a compliant subordinate never returns) is not accepted.

    Latency: 0 cycles on every channel (combinational; put register slices on either side for
    timing). W: the first beat of a burst passes 1 cycle after its AW handshake at the earliest
    (``SyncFIFO`` write-to-read), later bursts follow back to back. Throughput: 1 address per
    cycle per direction shared by all managers (``1/N`` each when all request), 1 W beat, 1 R beat
    and 1 B per cycle in total; a burst of ``L`` beats holds W for ``>= L`` cycles.

    Parameters
    ----------
    managers : int
        Number of managers ``N``, 2..16.
    addr_width, data_width : int
        As :class:`~scoville.hw.axi.AXI4Signature`.
    id_width : int
        The managers' ID width, 0..``32 - ceil(log2 N)``.
    user_width : int
        ``awuser``/``aruser`` width, 0..64 (passed through).
    write_queue : int
        1..64 write bursts between AW handshake and last W beat.

    Members
    -------
    s_axi0 .. s_axi{N-1} : In(AXI4Signature(id_width=id_width))
        Manager ports.
    m_axi : Out(AXI4Signature(id_width=id_width + ceil(log2 N)))
        The subordinate port.
    """

    def __init__(self, *, managers, addr_width, data_width, id_width=0, user_width=0, write_queue=4):
        self._n = check_int("managers", managers, 2, 16)
        _check_id_room(check_int("id_width", id_width, 0, 32), managers)
        self._id_width = id_width
        self._write_queue = check_int("write_queue", write_queue, 1, 64)
        s_sig = AXI4Signature(addr_width=addr_width, data_width=data_width, id_width=id_width,
                              user_width=user_width)
        m_sig = AXI4Signature(addr_width=addr_width, data_width=data_width,
                              id_width=id_width + source_bits(managers), user_width=user_width)
        members = {f"s_axi{k}": In(s_sig) for k in range(managers)}
        members["m_axi"] = Out(m_sig)
        super().__init__(members)

    managers = property(lambda self: self._n)
    id_width = property(lambda self: self._id_width)
    write_queue = property(lambda self: self._write_queue)

    @property
    def s_axi(self):
        """The manager ports as a list."""
        return [getattr(self, f"s_axi{k}") for k in range(self._n)]

    def _request(self, m, ch, extra=Const(1)):
        """Arbitrate request channel ``ch`` (``"aw"``/``"ar"``); ``extra`` gates its valid.
        Returns ``(index of the granted manager, handshake)``."""
        n, mgr, sub = self._n, self.s_axi, self.m_axi
        m.submodules[f"{ch}_arb"] = arb = RoundRobinArbiter(n=n)
        locked = Signal(name=f"{ch}_locked")
        held = Signal(range(n), name=f"{ch}_held")
        valids = Cat(getattr(s, f"{ch}valid") for s in mgr)
        only_held = Signal(n, name=f"{ch}_only_held")
        m.d.comb += only_held.eq(Const(1, n) << held)
        m.d.comb += arb.requests.eq(valids & Mux(locked, only_held, (1 << n) - 1))
        sel = arb.index
        valid = getattr(sub, f"{ch}valid")
        ready = getattr(sub, f"{ch}ready")
        m.d.comb += valid.eq(arb.valid & extra)
        names = [f for f in sub.signature.fields(ch) if f != "id"]
        with m.Switch(sel):
            for k, s in enumerate(mgr):
                with m.Case(k):
                    m.d.comb += [getattr(sub, ch + f).eq(getattr(s, ch + f)) for f in names]
                    ident = Cat(getattr(s, ch + "id") if self._id_width else Const(0, 0),
                                Const(k, source_bits(n)))
                    m.d.comb += getattr(sub, ch + "id").eq(ident)
                    m.d.comb += getattr(s, ch + "ready").eq(ready & extra)
        handshake = valid & ready
        m.d.comb += arb.advance.eq(handshake)
        with m.If(valid & ~ready):
            m.d.sync += [locked.eq(1), held.eq(sel)]
        with m.Else():
            m.d.sync += locked.eq(0)
        return sel, handshake

    def _response(self, m, ch):
        """Route response channel ``ch`` (``"b"``/``"r"``) by the ID's source bits."""
        sub, iw = self.m_axi, self._id_width
        ident = getattr(sub, ch + "id")
        src = ident[iw:]
        names = [f for f in sub.signature.fields(ch) if f != "id"]
        for k, s in enumerate(self.s_axi):
            m.d.comb += [getattr(s, ch + f).eq(getattr(sub, ch + f)) for f in names]
            if iw:
                m.d.comb += getattr(s, ch + "id").eq(ident[:iw])
            m.d.comb += getattr(s, ch + "valid").eq(getattr(sub, ch + "valid") & (src == k))
        with m.Switch(src):
            for k, s in enumerate(self.s_axi):
                with m.Case(k):
                    m.d.comb += getattr(sub, ch + "ready").eq(getattr(s, ch + "ready"))

    def elaborate(self, platform):
        m = Module()
        sub = self.m_axi
        self._request(m, "ar")

        m.submodules.w_order = w_order = SyncFIFO(width=source_bits(self._n), depth=self._write_queue)
        aw_sel, aw_handshake = self._request(m, "aw", extra=w_order.w_rdy)
        m.d.comb += [w_order.w_data.eq(aw_sel), w_order.w_en.eq(aw_handshake)]

        # W: the manager at the head of the AW order holds the channel until its WLAST.
        w_src = w_order.r_data
        with m.Switch(w_src):
            for k, s in enumerate(self.s_axi):
                with m.Case(k):
                    m.d.comb += [sub.wdata.eq(s.wdata), sub.wstrb.eq(s.wstrb), sub.wlast.eq(s.wlast),
                                 sub.wvalid.eq(w_order.r_rdy & s.wvalid),
                                 s.wready.eq(w_order.r_rdy & sub.wready)]
        m.d.comb += w_order.r_en.eq(sub.wvalid & sub.wready & sub.wlast)

        self._response(m, "b")
        self._response(m, "r")
        return m


def axi_mux(*, managers, addr_width, data_width, id_width, write_queue):
    """The ``axi_mux`` block's top: an :class:`AXIMux`."""
    return AXIMux(managers=managers, addr_width=addr_width, data_width=data_width, id_width=id_width,
                  write_queue=write_queue)
