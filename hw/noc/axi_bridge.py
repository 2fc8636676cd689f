"""AXI4 over the mesh: a manager-side and a subordinate-side bridge on the message NIs.

An AXI4 manager (a DMA) attached to :class:`AXIBridgeManager` on one node reaches AXI4
subordinates (HBM controllers) attached to :class:`AXIBridgeSubordinate` on other nodes. Both
sit on the message endpoints of a :class:`~hw.noc.mesh.Mesh` (``message_ni=True``) with two
message classes: requests (AR, AW + W) in class :data:`REQ`, responses (R, B) in class
:data:`RSP`. The classes use disjoint VCs and separate endpoint streams, so a subordinate that
stops taking requests until its responses drain can never block those responses (no protocol
deadlock), whatever the traffic.

Packet formats (one message = the NI's head flit, then these beats, one flit each, fields from
bit 0 of the flit's data; :func:`request_layout`, :func:`wbeat_layout`, :func:`response_layout`):

* read request: one beat ``{kind=AR, id, addr, len, size, burst, lock, cache, prot, qos}``;
* write request: the same header with ``kind=AW``, then one :func:`wbeat_layout` beat
  ``{data, strb}`` per W beat; the message's ``last`` is ``WLAST``;
* read data: one beat ``{kind=R, id, resp, last, data}`` per R beat, the message ends at
  ``RLAST`` (if the subordinate interleaves bursts for two different manager nodes, a
  ``kind=NOP`` beat closes the open message first);
* write response: one beat ``{kind=B, id, resp}``.

Each beat carries its own ID, so bursts keep their IDs and lengths end to end; responses
(``OKAY``, ``SLVERR``, ``DECERR``, ...) are forwarded unchanged. The subordinate bridge widens
the ID on its ``m_axi`` port to ``{source node, ID}`` so two managers' transactions never share
an ID at the subordinate, and routes each response back by those top bits.
"""

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..axi import ADDRESS_FIELDS, FIELD_WIDTHS, AXI4Signature, Resp
from ..params import ParameterError, Params, check_int, param
from .flit import message_head_layout, node_bits, pack
from .mesh import Mesh
from .ni import delivery_layout, message_layout
from .router import ROUTINGS


__all__ = ["MsgClass", "ReqKind", "RspKind", "REQ", "RSP", "KIND_AR", "KIND_AW", "KIND_R", "KIND_B", "KIND_NOP",
           "request_layout", "wbeat_layout", "response_layout", "subordinate_id_layout",
           "bridge_flit_width",
           "node_bits", "AXIBridgeManager", "AXIBridgeSubordinate", "NoCAXIParams", "NoCAXI",
           "noc_axi"]

class MsgClass(enum.IntEnum, shape=1):
    """Message class of the bridge's traffic (the mesh endpoint stream index)."""
    REQ = 0
    RSP = 1


class ReqKind(enum.Enum, shape=1):
    """``kind`` of a :func:`request_layout` beat."""
    AR = 0
    AW = 1


class RspKind(enum.Enum, shape=2):
    """``kind`` of a :func:`response_layout` beat (3 is unused)."""
    R = 0
    B = 1
    NOP = 2


REQ, RSP = MsgClass.REQ, MsgClass.RSP
KIND_AR, KIND_AW = ReqKind.AR, ReqKind.AW
KIND_R, KIND_B, KIND_NOP = RspKind.R, RspKind.B, RspKind.NOP


def request_layout(addr_width, id_width):
    """First beat of a request message: the AR or AW channel payload and its kind."""
    widths = {"id": id_width, "addr": addr_width, **FIELD_WIDTHS}
    return data.StructLayout({"kind": ReqKind, **{f: widths[f] for f in _axi_fields("ar")}})


def wbeat_layout(data_width):
    """A W beat inside a write request message (``WLAST`` is the message's ``last``)."""
    return data.StructLayout({"data": data_width, "strb": data_width // 8})


def response_layout(data_width, id_width):
    """A beat of a response message: an R beat, a B response or a NOP (closes a message)."""
    return data.StructLayout({"kind": RspKind, "id": id_width, "resp": 2, "last": 1,
                              "data": data_width})


def subordinate_id_layout(id_width, nodes):
    """An ID on a subordinate bridge's ``m_axi``: the manager's ID, then its source node."""
    return data.StructLayout({"id": id_width, "node": node_bits(nodes)})


def bridge_flit_width(*, addr_width, data_width, id_width):
    """Smallest flit ``data`` width that carries every beat of the bridge's messages."""
    return max(request_layout(addr_width, id_width).size, wbeat_layout(data_width).size,
               response_layout(data_width, id_width).size)


def _axi_fields(ch):
    """AW/AR fields a request message carries: all but ``user`` (hw.axi's list, ``id`` and
    ``addr`` first)."""
    return tuple(f for f in ADDRESS_FIELDS if f != "user")


class AXIBridgeManager(wiring.Component):
    """Manager side of the AXI4 bridge: an AXI4 subordinate port whose transactions go out as
    request messages and whose responses come back as response messages.

    **Address map.** The bits ``addr[node_shift:]`` of AR/AW select a target: target ``k``
    (``k < len(targets)``) is the subordinate bridge on node ``targets[k]``, which sees the
    window ``addr[:node_shift]``. Any other value is outside the map: that transaction is
    answered locally with ``DECERR`` (every R beat of a read, after its W beats for a write)
    without touching the network.

    **Ordering.** Reads, and separately writes, have one target at a time: a transaction for
    another target (or outside the map) waits until every outstanding one of its direction has
    completed. All outstanding transactions of a direction therefore share one network flow,
    which the mesh keeps in order, and one subordinate, which orders same-ID responses — AXI's
    same-ID ordering holds without a per-ID table. At most ``max_outstanding`` reads and
    ``max_outstanding`` writes are outstanding (from address handshake to the last R beat / B
    handshake here).

    **Latency** (zero load, ``H`` hops between the nodes, cycles between handshakes): a request
    message is the NI head flit then the AR/AW beat, so ``ARREADY``/``AWREADY`` come one cycle
    after ``ARVALID``/``AWVALID``; the subordinate bridge raises ``ARVALID``/``AWVALID`` on its
    ``m_axi`` ``2*H + 4`` cycles after the handshake here, and W beat ``k`` is offered there
    ``2*H + 4 + k`` cycles after the AW handshake (when the manager sends W back to back). A
    response beat taken on ``m_axi`` at edge ``U`` is offered here at ``U + 2*H + 3``. Read
    round trip: ``4*H + 7 + L`` cycles from the AR handshake to the first R beat for a
    subordinate answering ``L`` cycles after its AR handshake (``L`` counts the one cycle the
    subordinate bridge spends on each response message's head flit).

    **Throughput**: one flit per cycle on each link; a read costs 2 request flits, an ``n``-beat
    write ``n + 2``, an ``n``-beat read response ``n + 1``, a write response 2.

    R and B share the response class: a manager must not hold off ``RREADY`` waiting for a
    ``BVALID`` (or the reverse); write data of an accepted AW must follow without waiting for
    other responses (its message holds the request path until ``WLAST``).

    Parameters
    ----------
    addr_width, data_width, id_width : int
        The ``s_axi`` port (``id_width`` 1..16).
    nodes : int
        Nodes in the mesh (width of the message ``dst``/``src`` fields).
    flit_width : int
        Flit ``data`` width of the mesh; at least :func:`bridge_flit_width`.
    targets : tuple of int
        Node of each target in the address map.
    node_shift : int
        log2 of each target's window in bytes.
    max_outstanding : int
        Reads and writes in flight, each, 1..64.

    Members
    -------
    s_axi : In(AXI4Signature(addr_width, data_width, id_width))
        From the AXI4 manager.
    req : Out(stream.Signature(message_layout(nodes, flit_width)))
        Request messages, to the mesh injection stream of class :data:`REQ` on this node.
    rsp : In(stream.Signature(delivery_layout(nodes, flit_width)))
        Response messages, from the mesh ejection stream of class :data:`RSP` on this node.
    """

    def __init__(self, *, addr_width, data_width, id_width, nodes, flit_width, targets,
                 node_shift, max_outstanding=8):
        check_int("id_width", id_width, 1, 16)
        check_int("node_shift", node_shift, 1, addr_width)
        check_int("max_outstanding", max_outstanding, 1, 64)
        need = bridge_flit_width(addr_width=addr_width, data_width=data_width, id_width=id_width)
        check_int("flit_width", flit_width, need, 1024)
        if not targets or len(targets) > 2 ** (addr_width - node_shift):
            raise ParameterError(f"targets: {len(targets)} targets do not fit the map "
                                 f"(accepted: 1..{2 ** (addr_width - node_shift)} for "
                                 f"addr_width {addr_width}, node_shift {node_shift})")
        for t in targets:
            check_int("targets", t, 0, nodes - 1)
        self._aw, self._dw, self._iw = addr_width, data_width, id_width
        self._nodes, self._fw = nodes, flit_width
        self._targets, self._shift, self._max = tuple(targets), node_shift, max_outstanding
        super().__init__({
            "s_axi": In(AXI4Signature(addr_width=addr_width, data_width=data_width,
                                      id_width=id_width)),
            "req": Out(stream.Signature(message_layout(nodes, flit_width))),
            "rsp": In(stream.Signature(delivery_layout(nodes, flit_width))),
        })

    def _decode(self, m, addr, name):
        """``(code, dst)``: target index (``len(targets)`` = outside the map) and its node."""
        T = len(self._targets)
        code = Signal(range(T + 1), name=f"{name}_code")
        dst = Signal(range(self._nodes), name=f"{name}_dst")
        if self._shift == self._aw:         # one target owns the whole address space
            m.d.comb += dst.eq(self._targets[0])
            return code, dst
        m.d.comb += code.eq(T)
        with m.Switch(addr[self._shift:]):
            for k, node in enumerate(self._targets):
                with m.Case(k):
                    m.d.comb += [code.eq(k), dst.eq(node)]
        return code, dst

    def elaborate(self, platform):
        m = Module()
        axi, T, M = self.s_axi, len(self._targets), self._max
        req_lay = request_layout(self._aw, self._iw)
        rsp_lay = response_layout(self._dw, self._iw)
        w_lay = wbeat_layout(self._dw)

        # ---- per-direction bookkeeping: outstanding count and its single target ----------
        def direction(name, code):
            count = Signal(range(M + 1), name=f"{name}_count")
            target = Signal(range(T + 1), name=f"{name}_target")
            # A new transaction may go when nothing is outstanding, or when it goes where the
            # outstanding ones went (not outside the map: one local DECERR at a time).
            ok = Signal(name=f"{name}_ok")
            m.d.comb += ok.eq((count == 0) | ((target == code) & (code != T) & (count != M)))
            return count, target, ok

        ar_code, ar_dst = self._decode(m, axi.araddr, "ar")
        aw_code, aw_dst = self._decode(m, axi.awaddr, "aw")
        rd_count, rd_target, ar_ok = direction("rd", ar_code)
        wr_count, wr_target, aw_ok = direction("wr", aw_code)

        # ---- request path: AR or AW header, then the W beats of a write ------------------
        w_body = Signal()       # forwarding the W beats of an AW sent into the network
        w_sink = Signal()       # swallowing the W beats of an AW answered DECERR here
        w_sink_id = Signal(self._iw)
        prefer_aw = Signal()    # alternate AR and AW headers when both wait

        ar_net = axi.arvalid & ar_ok & (ar_code != T)
        aw_net = axi.awvalid & aw_ok & (aw_code != T) & ~w_body & ~w_sink
        # The NI takes a message's head flit (its destination) a cycle before the header
        # beat: once a header is offered, the choice is held until it is taken.
        hold, held_aw = Signal(), Signal()
        pick_aw = Signal()
        m.d.comb += pick_aw.eq(Mux(hold, held_aw, aw_net & (~ar_net | prefer_aw)))
        hdr = data.View(req_lay, Signal(req_lay.size))
        ar_taken, aw_taken = Signal(), Signal()
        with m.If(w_body):
            w = data.View(w_lay, Signal(w_lay.size))
            m.d.comb += [w.data.eq(axi.wdata), w.strb.eq(axi.wstrb),
                         self.req.valid.eq(axi.wvalid), self.req.payload.data.eq(w),
                         self.req.payload.last.eq(axi.wlast), axi.wready.eq(self.req.ready)]
            with m.If(axi.wvalid & axi.wready & axi.wlast):
                m.d.sync += w_body.eq(0)
        with m.Elif(pick_aw):
            m.d.comb += [hdr.kind.eq(KIND_AW), self.req.payload.dst.eq(aw_dst)]
            for f in _axi_fields("aw"):
                m.d.comb += getattr(hdr, f).eq(getattr(axi, f"aw{f}"))
            m.d.comb += [self.req.valid.eq(1), self.req.payload.data.eq(hdr),
                         axi.awready.eq(self.req.ready), aw_taken.eq(self.req.ready)]
            with m.If(self.req.ready):
                m.d.sync += [w_body.eq(1), prefer_aw.eq(0)]
        with m.Elif(ar_net | hold):
            m.d.comb += [hdr.kind.eq(KIND_AR), self.req.payload.dst.eq(ar_dst)]
            for f in _axi_fields("ar"):
                m.d.comb += getattr(hdr, f).eq(getattr(axi, f"ar{f}"))
            m.d.comb += [self.req.valid.eq(1), self.req.payload.data.eq(hdr),
                         self.req.payload.last.eq(1),
                         axi.arready.eq(self.req.ready), ar_taken.eq(self.req.ready)]
            with m.If(self.req.ready):
                m.d.sync += prefer_aw.eq(1)
        m.d.sync += [hold.eq(self.req.valid & ~self.req.ready & ~w_body), held_aw.eq(pick_aw)]

        # ---- local DECERR for addresses outside the map ----------------------------------
        b_fifo = fifo.SyncFIFO(width=self._iw + 2, depth=M)
        m.submodules.b_fifo = b_fifo
        dec_rd = Signal()                      # a DECERR read burst is being answered
        dec_rd_id = Signal(self._iw)
        dec_rd_left = Signal(8)
        ar_local = axi.arvalid & ar_ok & (ar_code == T) & ~dec_rd
        with m.If(ar_local):
            m.d.comb += [axi.arready.eq(1), ar_taken.eq(1)]
            m.d.sync += [dec_rd.eq(1), dec_rd_id.eq(axi.arid), dec_rd_left.eq(axi.arlen)]
        aw_local = axi.awvalid & aw_ok & (aw_code == T) & ~w_body & ~w_sink
        with m.If(aw_local):
            m.d.comb += [axi.awready.eq(1), aw_taken.eq(1)]
            m.d.sync += [w_sink.eq(1), w_sink_id.eq(axi.awid)]
        local_b = Signal()
        with m.If(w_sink):
            # The B FIFO holds max_outstanding entries and at most that many writes are
            # outstanding, so it always has room here.
            m.d.comb += [axi.wready.eq(1), local_b.eq(axi.wvalid & axi.wlast)]
            with m.If(local_b):
                m.d.sync += w_sink.eq(0)

        # ---- response path: R beats to the R channel, B responses through a FIFO ----------
        r = data.View(rsp_lay, self.rsp.payload.data[:rsp_lay.size])
        with m.If(dec_rd):
            m.d.comb += [axi.rvalid.eq(1), axi.rid.eq(dec_rd_id), axi.rresp.eq(Resp.DECERR),
                         axi.rlast.eq(dec_rd_left == 0)]
            with m.If(axi.rready):
                m.d.sync += dec_rd_left.eq(dec_rd_left - 1)
                with m.If(dec_rd_left == 0):
                    m.d.sync += dec_rd.eq(0)
        with m.Else():
            m.d.comb += [axi.rvalid.eq(self.rsp.valid & (r.kind == KIND_R)), axi.rid.eq(r.id),
                         axi.rresp.eq(r.resp), axi.rlast.eq(r.last), axi.rdata.eq(r.data)]
        with m.Switch(r.kind):
            with m.Case(KIND_R):
                m.d.comb += self.rsp.ready.eq(axi.rready & ~dec_rd)
            with m.Case(KIND_B):
                m.d.comb += self.rsp.ready.eq(b_fifo.w_rdy & ~local_b)
            with m.Default():
                m.d.comb += self.rsp.ready.eq(1)     # NOP: closes a message, nothing to do
        m.d.comb += [
            b_fifo.w_en.eq(local_b | (self.rsp.valid & self.rsp.ready & (r.kind == KIND_B))),
            b_fifo.w_data.eq(Mux(local_b, Cat(w_sink_id, Const(Resp.DECERR, 2)),
                                 Cat(r.id, r.resp))),
            axi.bvalid.eq(b_fifo.r_rdy), axi.bid.eq(b_fifo.r_data[:self._iw]),
            axi.bresp.eq(b_fifo.r_data[self._iw:]), b_fifo.r_en.eq(axi.bready),
        ]

        # ---- outstanding counts ----------------------------------------------------------
        rd_done = axi.rvalid & axi.rready & axi.rlast
        m.d.sync += rd_count.eq(rd_count + ar_taken - rd_done)
        with m.If(ar_taken):
            m.d.sync += rd_target.eq(ar_code)
        wr_done = axi.bvalid & axi.bready
        m.d.sync += wr_count.eq(wr_count + aw_taken - wr_done)
        with m.If(aw_taken):
            m.d.sync += wr_target.eq(aw_code)
        return m


class AXIBridgeSubordinate(wiring.Component):
    """Subordinate side of the AXI4 bridge: request messages become transactions on an AXI4
    manager port; its R and B responses go back as response messages to the requesting node.

    ``m_axi`` IDs are ``{source node, ID}`` (``id_width + node_bits(nodes)`` bits) and its
    address is the low ``addr_width`` bits of the manager's address (the window). AR and AW
    wait in one-entry registers (one transaction per cycle each: a new one is taken in the
    cycle the previous one is accepted); W beats pass through combinationally from the
    request message, so the W channel can be offered before ``AWREADY`` (AXI requires that).
    Request messages are served in arrival order: a write's W beats hold the request stream
    until ``WLAST``. Responses: R beats leave one per cycle after a one-cycle head flit per
    message (a message is a burst up to ``RLAST``, cut by a ``NOP`` beat when the subordinate
    interleaves bursts of two source nodes); a B response is a one-beat message. R and B
    messages alternate when both wait.

    Latency: a request beat taken from ``req`` at edge ``t`` is on ``m_axi`` AR/AW from
    ``t + 1``; W beats: 0 cycles. A response beat accepted on ``m_axi`` at edge ``t`` is on
    ``rsp`` at ``t`` (combinational); the head flit of each response message costs one cycle
    before the first beat is accepted.

    Parameters
    ----------
    addr_width, data_width, id_width : int
        ``m_axi`` address width (the window), data width, and the managers' ID width.
    nodes, flit_width : int
        As :class:`AXIBridgeManager`.

    Members
    -------
    m_axi : Out(AXI4Signature(addr_width, data_width, id_width + node_bits(nodes)))
        To the AXI4 subordinate.
    req : In(stream.Signature(delivery_layout(nodes, flit_width)))
        From the mesh ejection stream of class :data:`REQ` on this node.
    rsp : Out(stream.Signature(message_layout(nodes, flit_width)))
        To the mesh injection stream of class :data:`RSP` on this node.
    """

    def __init__(self, *, addr_width, data_width, id_width, nodes, flit_width,
                 req_addr_width=None):
        check_int("id_width", id_width, 1, 16)
        self._req_aw = req_addr_width or addr_width
        need = bridge_flit_width(addr_width=self._req_aw, data_width=data_width,
                                 id_width=id_width)
        check_int("flit_width", flit_width, need, 1024)
        self._aw, self._dw, self._iw = addr_width, data_width, id_width
        self._nodes, self._fw = nodes, flit_width
        super().__init__({
            "m_axi": Out(AXI4Signature(addr_width=addr_width, data_width=data_width,
                                       id_width=id_width + node_bits(nodes))),
            "req": In(stream.Signature(delivery_layout(nodes, flit_width))),
            "rsp": Out(stream.Signature(message_layout(nodes, flit_width))),
        })

    def elaborate(self, platform):
        m = Module()
        axi, iw = self.m_axi, self._iw
        req_lay = request_layout(self._req_aw, iw)
        rsp_lay = response_layout(self._dw, iw)
        w_lay = wbeat_layout(self._dw)

        # ---- requests --------------------------------------------------------------------
        hdr = data.View(req_lay, self.req.payload.data[:req_lay.size])
        sid_lay = subordinate_id_layout(iw, self._nodes)
        sub_id = pack(sid_lay, {"id": hdr.id, "node": self.req.payload.src})
        w = data.View(w_lay, self.req.payload.data[:w_lay.size])
        in_w = Signal()         # the W beats of the last AW are coming
        ar_free = ~axi.arvalid | axi.arready
        aw_free = ~axi.awvalid | axi.awready
        with m.If(axi.arready):
            m.d.sync += axi.arvalid.eq(0)
        with m.If(axi.awready):
            m.d.sync += axi.awvalid.eq(0)
        with m.If(in_w):
            m.d.comb += [axi.wvalid.eq(self.req.valid), axi.wdata.eq(w.data),
                         axi.wstrb.eq(w.strb), axi.wlast.eq(self.req.payload.last),
                         self.req.ready.eq(axi.wready)]
            with m.If(self.req.valid & axi.wready & self.req.payload.last):
                m.d.sync += in_w.eq(0)
        with m.Elif(hdr.kind == KIND_AR):
            m.d.comb += self.req.ready.eq(ar_free)
            with m.If(self.req.valid & ar_free):
                m.d.sync += [axi.arvalid.eq(1), axi.arid.eq(sub_id),
                             axi.araddr.eq(hdr.addr[:self._aw])]
                for f in _axi_fields("ar")[2:]:
                    m.d.sync += getattr(axi, f"ar{f}").eq(getattr(hdr, f))
        with m.Else():
            m.d.comb += self.req.ready.eq(aw_free)
            with m.If(self.req.valid & aw_free):
                m.d.sync += [axi.awvalid.eq(1), axi.awid.eq(sub_id),
                             axi.awaddr.eq(hdr.addr[:self._aw]), in_w.eq(1)]
                for f in _axi_fields("aw")[2:]:
                    m.d.sync += getattr(axi, f"aw{f}").eq(getattr(hdr, f))

        # ---- responses -------------------------------------------------------------------
        beat = data.View(rsp_lay, Signal(rsp_lay.size))
        m.d.comb += self.rsp.payload.data.eq(beat)
        r_open = Signal()                      # an R message is open towards r_dst
        r_dst = Signal(range(self._nodes))
        prefer_b = Signal()
        # As on the manager side: the choice of a message's first beat (R or B) is held from
        # the cycle the NI offers its head flit until the beat is taken.
        hold, held_b = Signal(), Signal()
        pick_b = Signal()
        m.d.comb += pick_b.eq(Mux(hold, held_b, axi.bvalid & (prefer_b | ~axi.rvalid)))
        m.d.sync += [hold.eq(self.rsp.valid & ~self.rsp.ready & ~r_open), held_b.eq(pick_b)]
        rid, bid = sid_lay(axi.rid), sid_lay(axi.bid)
        r_node, b_node = rid.node, bid.node
        r_beat = [beat.kind.eq(KIND_R), beat.id.eq(rid.id), beat.resp.eq(axi.rresp),
                  beat.last.eq(axi.rlast), beat.data.eq(axi.rdata),
                  self.rsp.payload.last.eq(axi.rlast), self.rsp.valid.eq(1),
                  axi.rready.eq(self.rsp.ready)]
        with m.If(r_open):
            with m.If(axi.rvalid & (r_node == r_dst)):
                m.d.comb += r_beat
                with m.If(self.rsp.ready & axi.rlast):
                    m.d.sync += r_open.eq(0)
            with m.Elif(axi.rvalid):
                # A burst for another node: close this message with a NOP first.
                m.d.comb += [beat.kind.eq(KIND_NOP), self.rsp.payload.last.eq(1),
                             self.rsp.valid.eq(1)]
                with m.If(self.rsp.ready):
                    m.d.sync += r_open.eq(0)
        with m.Elif(pick_b):
            m.d.comb += [beat.kind.eq(KIND_B), beat.id.eq(bid.id), beat.resp.eq(axi.bresp),
                         self.rsp.payload.dst.eq(b_node), self.rsp.payload.last.eq(1),
                         self.rsp.valid.eq(1), axi.bready.eq(self.rsp.ready)]
            with m.If(self.rsp.ready):
                m.d.sync += prefer_b.eq(0)
        with m.Elif(axi.rvalid):
            m.d.comb += r_beat + [self.rsp.payload.dst.eq(r_node)]
            with m.If(self.rsp.ready):
                m.d.sync += [r_open.eq(~axi.rlast), r_dst.eq(r_node), prefer_b.eq(1)]
        return m


@dataclass(frozen=True)
class NoCAXIParams(Params):
    """Parameters of the ``noc_axi`` block: a mesh with AXI4 bridges on some nodes."""
    cols: int = param(2, lo=1, hi=16, doc="mesh columns")
    rows: int = param(2, lo=1, hi=16, doc="mesh rows")
    vcs: int = param(2, lo=2, hi=4, doc="VCs per port (even: half requests, half responses)")
    buffer: int = param(4, lo=2, hi=32, doc="flits per VC input buffer")
    routing: str = param("xy", choices=ROUTINGS, doc="dimension-order routing")
    managers: int = param(2, lo=1, hi=16, doc="AXI4 managers (s_axi0..): bridges on nodes 0, 1, ...")
    subordinates: int = param(2, lo=1, hi=16, doc="AXI4 subordinates (m_axi0..): bridges on the "
                                                  "last nodes, target k on node nodes-subordinates+k")
    addr_width: int = param(18, lo=2, hi=64, doc="s_axi address bits (the map: addr[node_shift:] selects the target)")
    node_shift: int = param(16, lo=1, hi=63, doc="log2 bytes of each subordinate's window (m_axi address bits)")
    data_width: int = param(32, lo=8, hi=512, power_of_two=True, doc="AXI data bits")
    id_width: int = param(4, lo=1, hi=16, doc="s_axi ID bits (m_axi: plus the node bits)")
    max_outstanding: int = param(8, lo=1, hi=64, doc="reads and writes in flight per manager, each")

    def check(self):
        nodes = self.cols * self.rows
        if self.managers + self.subordinates > nodes:
            raise ParameterError(f"managers, subordinates: {self.managers} + {self.subordinates} "
                                 f"bridges do not fit {nodes} nodes (accepted: at most one per node)")
        if self.vcs % 2:
            raise ParameterError(f"vcs: {self.vcs} does not split into request and response VCs "
                                 "(accepted: 2 or 4)")
        if not self.node_shift < self.addr_width or \
                self.subordinates > 2 ** (self.addr_width - self.node_shift):
            raise ParameterError(f"node_shift: {self.node_shift} leaves no room for "
                                 f"{self.subordinates} targets in {self.addr_width} address bits "
                                 f"(accepted: node_shift <= addr_width - "
                                 f"{max(1, (self.subordinates - 1).bit_length())})")

    @property
    def flit_width(self):
        return max(bridge_flit_width(addr_width=self.addr_width, data_width=self.data_width,
                                     id_width=self.id_width), message_head_layout(self.cols, self.rows).size)


class NoCAXI(wiring.Component):
    """A mesh with AXI4 bridges: managers ``s_axi{k}`` on nodes ``0..managers-1``,
    subordinates ``m_axi{k}`` on the last ``subordinates`` nodes (``m_axi{k}`` on node
    ``cols*rows - subordinates + k``). Manager addresses ``k << node_shift ..`` reach
    ``m_axi{k}`` at offset ``addr % 2**node_shift``; addresses beyond the last target get
    ``DECERR`` from the manager bridge. Flits are as wide as the widest bridge beat
    (:attr:`NoCAXIParams.flit_width`). See :class:`AXIBridgeManager` for latency, ordering and
    the outstanding limit.
    """

    def __init__(self, **params):
        self._p = p = NoCAXIParams(**params)
        nodes = p.cols * p.rows
        members = {}
        for k in range(p.managers):
            members[f"s_axi{k}"] = In(AXI4Signature(addr_width=p.addr_width,
                                                    data_width=p.data_width, id_width=p.id_width))
        for k in range(p.subordinates):
            members[f"m_axi{k}"] = Out(AXI4Signature(addr_width=p.node_shift,
                                                     data_width=p.data_width,
                                                     id_width=p.id_width + node_bits(nodes)))
        super().__init__(members)

    params = property(lambda self: self._p)

    def elaborate(self, platform):
        m = Module()
        p = self._p
        nodes, fw = p.cols * p.rows, p.flit_width
        mesh = m.submodules.mesh = Mesh(cols=p.cols, rows=p.rows, vcs=p.vcs, buffer=p.buffer,
                                        flit_width=fw, routing=p.routing, classes=2,
                                        message_ni=True)
        targets = [nodes - p.subordinates + k for k in range(p.subordinates)]
        for k in range(p.managers):
            br = AXIBridgeManager(addr_width=p.addr_width, data_width=p.data_width,
                                  id_width=p.id_width, nodes=nodes, flit_width=fw,
                                  targets=targets, node_shift=p.node_shift,
                                  max_outstanding=p.max_outstanding)
            m.submodules[f"manager_{k}"] = br
            wiring.connect(m, wiring.flipped(getattr(self, f"s_axi{k}")), br.s_axi)
            wiring.connect(m, br.req, mesh.endpoint(k, REQ, "i"))
            wiring.connect(m, mesh.endpoint(k, RSP, "o"), br.rsp)
        for k, node in enumerate(targets):
            br = AXIBridgeSubordinate(addr_width=p.node_shift, data_width=p.data_width,
                                      id_width=p.id_width, nodes=nodes, flit_width=fw,
                                      req_addr_width=p.addr_width)
            m.submodules[f"subordinate_{k}"] = br
            wiring.connect(m, br.m_axi, wiring.flipped(getattr(self, f"m_axi{k}")))
            wiring.connect(m, mesh.endpoint(node, REQ, "o"), br.req)
            wiring.connect(m, br.rsp, mesh.endpoint(node, RSP, "i"))
        return m


def noc_axi(**params):
    """Factory of the ``noc_axi`` block."""
    return NoCAXI(**params)
