"""AXI4-Lite address decoder: one manager, N subordinates at configurable address windows."""

from dataclasses import dataclass

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .axi import AXI4LiteSignature, Resp
from .params import ParameterError, Params, check_choice, check_int, param


__all__ = ["AXILiteDecoderParams", "AXILiteDecoder", "axil_decoder", "check_address_map",
           "parse_address_map"]


def check_address_map(name, regions, *, addr_width, data_width):
    """Validate an address map: a non-empty sequence of at most 32 ``(base, size)`` pairs, each
    size a power of two of at least one bus word, each base a multiple of its size, every window
    inside the ``addr_width``-bit space, no two windows overlapping. Returns it as a tuple of
    pairs; raises :class:`ParameterError` naming the entry and the rule."""
    try:
        regions = tuple(tuple(r) for r in regions)
    except TypeError:
        raise ParameterError(f"{name}: {regions!r} is not a sequence of (base, size) pairs "
                             "(accepted: 1..32 pairs)") from None
    if not 1 <= len(regions) <= 32:
        raise ParameterError(f"{name}: {len(regions)} windows (accepted: 1..32 (base, size) pairs)")
    space, word = 1 << addr_width, data_width // 8
    for k, region in enumerate(regions):
        if len(region) != 2:
            raise ParameterError(f"{name}[{k}]: {region!r} is not a (base, size) pair")
        base, size = region
        check_int(f"{name}[{k}] size", size, word, space, power_of_two=True)
        check_int(f"{name}[{k}] base", base, 0, space - size)
        if base % size:
            raise ParameterError(f"{name}[{k}] base: {base:#x} is not aligned to its size {size:#x} "
                                 "(accepted: a multiple of the size)")
    ordered = sorted(range(len(regions)), key=lambda k: regions[k][0])
    for a, b in zip(ordered, ordered[1:]):
        if regions[a][0] + regions[a][1] > regions[b][0]:
            raise ParameterError(
                f"{name}[{b}]: window {regions[b][0]:#x}+{regions[b][1]:#x} overlaps {name}[{a}] "
                f"{regions[a][0]:#x}+{regions[a][1]:#x} (accepted: disjoint windows)")
    return regions


def parse_address_map(text, name="regions"):
    """``"BASE+SIZE,BASE+SIZE,..."`` (integers in any Python base) as ``((base, size), ...)``."""
    regions = []
    for k, part in enumerate(text.split(",")):
        try:
            base, size = (int(x, 0) for x in part.split("+"))
        except ValueError:
            raise ParameterError(f"{name}[{k}]: {part.strip()!r} is not BASE+SIZE "
                                 "(accepted: e.g. 0x1000+0x1000)") from None
        regions.append((base, size))
    return tuple(regions)


@dataclass(frozen=True)
class AXILiteDecoderParams(Params):
    """Parameters of the ``axil_decoder`` block; ``regions`` is the address map as text."""
    addr_width: int = param(16, lo=3, hi=64, doc="byte address width of s_axil")
    data_width: int = param(32, lo=32, hi=64, power_of_two=True, doc="data width (bits)")
    regions: str = param("0x0000+0x1000,0x1000+0x0400,0x4000+0x4000",
                         doc="window BASE+SIZE of each m_axil port, comma separated")

    def check(self):
        check_address_map("regions", parse_address_map(self.regions), addr_width=self.addr_width,
                          data_width=self.data_width)


class AXILiteDecoder(wiring.Component):
    """AXI4-Lite 1:N address decoder with ``DECERR`` for unmapped addresses.

    Port ``m_axil{k}`` serves the window ``regions[k] = (base, size)`` and sees the offset
    ``addr - base`` (``log2(size)`` address bits). An address in no window is answered by the
    decoder itself: a write's AW and W are accepted and B carries ``DECERR``; a read's R carries
    ``DECERR`` and zero data. Nothing is ever left waiting: every accepted address gets exactly
    one response.

    Reads and writes are independent; each direction has one transaction in flight (from its
    address handshake to its response handshake). AW and W of a write are forwarded
    independently, in either order or together (a subordinate that waits for both sees both),
    to the port ``AWADDR`` selects; W waits until ``AWVALID`` names its port.

    Latency: 0 cycles on every channel (combinational); an unmapped access is answered in the
    cycle after its address (write: after both AW and W) handshake. Throughput per direction:
    one transaction per ``T + 1`` cycles, ``T`` being the cycles from address handshake to
    response handshake (the next address is taken the cycle after a response): a subordinate
    answering one cycle after the address (``csr``) gives a read every 3 cycles with a ready
    manager; unmapped accesses take 2 cycles each.

    Parameters
    ----------
    addr_width : int
        ``s_axil`` byte address width, 3..64.
    data_width : int
        32 or 64.
    regions : sequence of (int, int)
        ``(base, size)`` of each port's window: 1..32 windows, each size a power of two of at
        least ``data_width / 8`` bytes, each base a multiple of its size, inside the
        ``addr_width``-bit space, no two overlapping.

    Members
    -------
    s_axil : In(AXI4LiteSignature(addr_width, data_width))
        The manager port.
    m_axil0 .. m_axil{N-1} : Out(AXI4LiteSignature(log2(size_k), data_width))
        Subordinate ports, offset addresses.
    """

    def __init__(self, *, addr_width, data_width=32, regions):
        self._addr_width = check_int("addr_width", addr_width, 3, 64)
        self._data_width = check_choice("data_width", data_width, (32, 64))
        self._regions = check_address_map("regions", regions, addr_width=addr_width, data_width=data_width)
        members = {"s_axil": In(AXI4LiteSignature(addr_width=addr_width, data_width=data_width))}
        for k, (base, size) in enumerate(self._regions):
            members[f"m_axil{k}"] = Out(AXI4LiteSignature(addr_width=size.bit_length() - 1,
                                                          data_width=data_width))
        super().__init__(members)

    regions = property(lambda self: self._regions)
    addr_width = property(lambda self: self._addr_width)
    data_width = property(lambda self: self._data_width)

    @property
    def m_axil(self):
        """The subordinate ports as a list."""
        return [getattr(self, f"m_axil{k}") for k in range(len(self._regions))]

    def _hits(self, m, addr, name):
        hits = Signal(len(self._regions), name=name)
        for k, (base, size) in enumerate(self._regions):
            bits = size.bit_length() - 1
            m.d.comb += hits[k].eq(addr[bits:] == (base >> bits))
        return hits

    def elaborate(self, platform):
        m = Module()
        s, subs = self.s_axil, self.m_axil
        n = len(subs)

        def encode(hits, name):
            index = Signal(range(max(n, 2)), name=name)
            for k in range(n):
                with m.If(hits[k]):
                    m.d.comb += index.eq(k)
            return index

        # ---- writes ----------------------------------------------------------------------
        aw_hits = self._hits(m, s.awaddr, "aw_hits")
        aw_index = encode(aw_hits, "aw_index")
        aw_done, w_done = Signal(), Signal()
        w_sel = Signal(range(max(n, 2)))
        w_mapped = Signal()
        sel = Mux(aw_done, w_sel, aw_index)
        mapped = Mux(aw_done, w_mapped, aw_hits.any())
        aw_pending = s.awvalid & ~aw_done
        w_active = (aw_done | s.awvalid) & ~w_done
        aw_ready = Signal()
        w_ready = Signal()
        for k, sub in enumerate(subs):
            m.d.comb += [sub.awaddr.eq(s.awaddr), sub.awprot.eq(s.awprot),
                         sub.awvalid.eq(aw_pending & aw_hits[k]),
                         sub.wdata.eq(s.wdata), sub.wstrb.eq(s.wstrb),
                         sub.wvalid.eq(s.wvalid & w_active & mapped & (sel == k))]
            with m.If(aw_hits[k]):
                m.d.comb += aw_ready.eq(sub.awready)
            with m.If(sel == k):
                m.d.comb += w_ready.eq(sub.wready)
        m.d.comb += [s.awready.eq(~aw_done & Mux(aw_hits.any(), aw_ready, 1)),
                     s.wready.eq(w_active & Mux(mapped, w_ready, 1))]
        with m.If(s.awvalid & s.awready):
            m.d.sync += [aw_done.eq(1), w_sel.eq(aw_index), w_mapped.eq(aw_hits.any())]
        with m.If(s.wvalid & s.wready):
            m.d.sync += w_done.eq(1)
        b_phase = aw_done & w_done
        with m.If(b_phase & ~w_mapped):
            m.d.comb += [s.bvalid.eq(1), s.bresp.eq(Resp.DECERR)]
        with m.Elif(b_phase):
            for k, sub in enumerate(subs):
                with m.If(w_sel == k):
                    m.d.comb += [s.bvalid.eq(sub.bvalid), s.bresp.eq(sub.bresp), sub.bready.eq(s.bready)]
        with m.If(s.bvalid & s.bready):
            m.d.sync += [aw_done.eq(0), w_done.eq(0)]

        # ---- reads -----------------------------------------------------------------------
        ar_hits = self._hits(m, s.araddr, "ar_hits")
        ar_index = encode(ar_hits, "ar_index")
        ar_done, r_mapped = Signal(), Signal()
        r_sel = Signal(range(max(n, 2)))
        ar_ready = Signal()
        for k, sub in enumerate(subs):
            m.d.comb += [sub.araddr.eq(s.araddr), sub.arprot.eq(s.arprot),
                         sub.arvalid.eq(s.arvalid & ~ar_done & ar_hits[k])]
            with m.If(ar_hits[k]):
                m.d.comb += ar_ready.eq(sub.arready)
        m.d.comb += s.arready.eq(~ar_done & Mux(ar_hits.any(), ar_ready, 1))
        with m.If(s.arvalid & s.arready):
            m.d.sync += [ar_done.eq(1), r_sel.eq(ar_index), r_mapped.eq(ar_hits.any())]
        with m.If(ar_done & ~r_mapped):
            m.d.comb += [s.rvalid.eq(1), s.rresp.eq(Resp.DECERR), s.rdata.eq(0)]
        with m.Elif(ar_done):
            for k, sub in enumerate(subs):
                with m.If(r_sel == k):
                    m.d.comb += [s.rvalid.eq(sub.rvalid), s.rresp.eq(sub.rresp), s.rdata.eq(sub.rdata),
                                 sub.rready.eq(s.rready)]
        with m.If(s.rvalid & s.rready):
            m.d.sync += ar_done.eq(0)
        return m


def axil_decoder(*, addr_width, data_width, regions):
    """The ``axil_decoder`` block's top; ``regions`` as :class:`AXILiteDecoderParams` text."""
    return AXILiteDecoder(addr_width=addr_width, data_width=data_width,
                          regions=parse_address_map(regions))
