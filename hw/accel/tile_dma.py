"""Tile DMA engine (block ``tile_dma``): 2-D windows of HBM to and from a tile's unit ports.

The sequencer turns each ``LOAD``/``STORE`` (:data:`~.isa.Move`, REPEAT offset added) into a
:class:`DMACommand`: ``rows`` rows of ``row_bytes`` bytes, row ``r`` at ``addr + r * stride``,
moved as unit beats of ``B = 2**beat_log2`` bytes. On the AXI side a row is ``ceil(row_bytes /
D)`` atoms of ``D = data_width / 8`` bytes (32 at the default 256 bits), read or written in
INCR bursts (``AxSIZE = log2 D``, at most ``max_burst`` beats, split at 4 KiB); on the unit side
it is ``ceil(row_bytes / B)`` beats, the row's next ``B`` bytes in each beat's low bytes.

Structure, per direction (the two share nothing but ``m_axi`` and run concurrently)::

    s_rd --> walk queue --> RowWalker --AR--> m_axi --R--> atom buffer --> Unpack --> m_rd, m_rd_sts
        \\--> unpack queue ------------------------------------------------^
    s_wr --> pack queue --> Pack <-- s_wr_data
        \\                   \\--> W buffer --> W --> m_axi
         \\--> walk queue --> RowWalker --AW (once its data is buffered)--> m_axi --B--> m_wr_sts

* :class:`.dma_rows.RowWalker` cuts rows into bursts: a row that fits one burst goes out
  directly (one a cycle), a longer one through :class:`hw.burst.BurstSplitter`.
* Reads: a burst is issued only when the atom buffer (``outstanding * max_burst`` atoms) has
  room for it beside the atoms in flight, so R is always accepted (``rready`` is 1).
  :class:`.dma_unpack.Unpack` cuts atoms into unit beats and answers each command's status.
* Writes: :class:`.dma_pack.Pack` packs unit beats into strobed atoms in the W buffer
  (``2 * max_burst`` atoms); a burst's AW is issued once all its atoms are buffered, so W never
  waits for the unit.

Timing. ``L``: the memory's cycles from an AR handshake to its first R handshake; ``Lw``: from
a burst's last W handshake to its B handshake; a window of ``A`` atoms and ``U`` unit beats;
the command's handshake at cycle 0; no stalls (a ready unit, a memory without pauses):

* read: AR handshake at cycle 3, last ``m_rd`` beat at ``L + 5 + max(A, U)``, its status one
  cycle later (the AR and the last beat 2 cycles later when the first row needs the splitter:
  more than ``max_burst`` atoms, or crossing 4 KiB);
* write, the unit's beats offered from cycle 0: ``m_wr_sts`` handshake at
  ``max(A, U) + k + Lw + 4`` with ``k`` the beats of the window's last burst (an AW waits for
  its burst's data: store and forward of one burst);
* these hold for long windows and for back-to-back commands alike (no cycle per command or
  per row) while the bursts in flight cover the latency: ``(outstanding - 1) * b >= L + 3`` for
  reads, ``(outstanding - 1) * b >= Lw + 2`` for writes, ``b`` the beats per burst
  (``max_burst`` for rows of that many atoms or more; the read buffer bounds reads the same way),
  and while each row that needs the splitter has at least ``2k + 1`` atoms for its ``k`` bursts
  (the splitter takes ``2k + 1`` cycles a row; a row of one burst takes one cycle);
* so the rate is one atom a cycle per direction while ``B >= D`` (``B = 2D``: one unit beat per
  2 cycles), ``B`` bytes a cycle while ``B < D``, both directions at once; the per-command
  overhead is ``L + 5`` (read) and ``k + Lw + 4`` (write) cycles.

Commands of one direction complete in order; reads use ARID 0, writes AWID 0 (one ID each:
R and B IDs are not looked at).

Commands outside the ISA's rules never hang the engine nor write outside their window:

* ``rows == 0`` or ``row_bytes == 0``: no AXI transaction, no unit beat, status OKAY (SLVERR
  when also misaligned, below).
* ``addr`` or ``stride`` not a multiple of 32 (``bad``): the bursts are issued at the addresses
  with the bits below one atom cleared, but write with WSTRB 0 (nothing is written); reads
  deliver the command's beats as zeros. Status: SLVERR at least.
* ``beat_log2`` above ``log2(port_bits / 8)``: taken as ``log2(port_bits / 8)``.
* ``row_bytes > stride``: rows overlap; they are moved in row order (a later row's writes land
  after an earlier one's).

Abort (``abort``, a pulse or a level): from that cycle no burst is issued, no command is taken
(``s_rd.ready`` and ``s_wr.ready`` low), queued commands, buffered data and beats or statuses
not yet taken are dropped (``m_rd``, ``m_rd_sts``, ``m_wr_sts`` drop ``valid``: the one exception
to holding ``valid`` until the transfer), ``s_wr_data`` is accepted and discarded, and every AXI
transaction already issued completes: AR/AW held until accepted, every R and B taken, the
remaining W beats of accepted AWs sent with WSTRB 0 (a W beat already offered is kept as it was).
``busy`` falls once nothing is queued or in flight (while a level ``abort`` is still high, too);
from the cycle after both ``abort`` and the draining have ended, commands are taken normally.
"""

from dataclasses import dataclass

from amaranth.hdl import Cat, Module, Mux, ResetInserter, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for, exact_log2

from ..axi import AXI4Signature, Burst, Resp
from ..params import ParameterError, Params, param
from .dma_pack import Pack, strobed_atom_layout
from .dma_rows import (BEAT_LOG2_BITS, ROW_BYTES_BITS, ROWS_BITS, STRIDE_BITS, DMAStatus, ReadBeat, RowWalker,
                       WriteBeat, rows_layout, walk_layout, worst_resp)
from .dma_unpack import Unpack, atom_layout


__all__ = ["TileDMAParams", "DMACommand", "ReadBeat", "WriteBeat", "DMAStatus", "TileDMA", "DMARead",
           "DMAWrite", "tile_dma", "ATOM_ALIGN", "READ_ID", "WRITE_ID"]

# SyncFIFOBuffered of depth 1 moves one entry per 2 cycles and of depth 2 has zero-width pointers
_MIN_BUFFER = 3
ATOM_ALIGN = 32             # addr and stride must be multiples of the HBM atom (isa.ATOM_BYTES)
READ_ID = WRITE_ID = 0


class DMACommand(data.StructLayout):
    """One window (see the module docstring): ``addr`` and ``stride`` multiples of 32,
    ``rows >= 1``, ``row_bytes >= 1``, ``beat_log2`` with ``2**beat_log2 <= port_bits / 8``."""

    def __init__(self, addr_width=34):
        super().__init__({"addr": unsigned(addr_width), "rows": unsigned(ROWS_BITS),
                          "row_bytes": unsigned(ROW_BYTES_BITS), "stride": unsigned(STRIDE_BITS),
                          "beat_log2": unsigned(BEAT_LOG2_BITS)})


@dataclass(frozen=True)
class TileDMAParams(Params):
    """Parameters of the ``tile_dma`` block as seen from the CLI."""
    addr_width: int = param(34, lo=12, hi=64, doc="AXI byte address width")
    data_width: int = param(256, lo=64, hi=256, power_of_two=True,
                            doc="AXI data width in bits (one atom; addresses are 32-byte aligned)")
    id_width: int = param(4, lo=0, hi=32, doc="AXI ID width (reads and writes use ID 0)")
    port_bits: int = param(512, lo=8, hi=512, power_of_two=True, doc="unit port width in bits (B * 8 <= port_bits)")
    max_burst: int = param(16, lo=1, hi=256, doc="longest INCR burst in beats")
    outstanding: int = param(8, lo=1, hi=64, doc="bursts in flight per direction")


def _queue(m, name, layout, depth, reset):
    """A first-word-fall-through command FIFO cleared by ``reset``; returns it and views of its
    write and read data."""
    q = m.submodules[name] = ResetInserter(reset)(fifo.SyncFIFO(width=layout.size, depth=depth))
    return q, data.View(layout, q.w_data), data.View(layout, q.r_data)


def _intake(m, s_cmd, drop, *, addr_width, port_bytes, walk_depth, rows_depth, empties_to):
    """Each command of ``s_cmd`` into two queues at once: the row walker's (:func:`walk_layout`)
    and the packer's or unpacker's (:data:`rows_layout`); an empty command (no row or no byte)
    only into the one named by ``empties_to`` (``"walk"`` or ``"rows"``). A command is ``bad``
    when ``addr`` or ``stride`` is not a multiple of :data:`ATOM_ALIGN`; ``beat_log2`` is limited
    to the port. Returns ``(walk queue, its read view, rows queue, its read view)``."""
    c = s_cmd.payload
    lg_align, lg_p = exact_log2(ATOM_ALIGN), exact_log2(port_bytes)
    empty = (c.rows == 0) | (c.row_bytes == 0)
    bad = c.addr[:lg_align].any() | c.stride[:lg_align].any()
    walk_q, walk_w, walk_r = _queue(m, "walk_q", walk_layout(addr_width), walk_depth, drop)
    rows_q, rows_w, rows_r = _queue(m, "rows_q", rows_layout, rows_depth, drop)
    take = s_cmd.valid & s_cmd.ready
    m.d.comb += [
        s_cmd.ready.eq(~drop & walk_q.w_rdy & rows_q.w_rdy),
        walk_q.w_en.eq(take & (~empty if empties_to == "rows" else 1)),
        rows_q.w_en.eq(take & (~empty if empties_to == "walk" else 1)),
        walk_w.addr.eq(c.addr), walk_w.rows.eq(c.rows), walk_w.row_bytes.eq(c.row_bytes),
        walk_w.stride.eq(c.stride), walk_w.bad.eq(bad), walk_w.empty.eq(empty),
        rows_w.rows.eq(c.rows), rows_w.row_bytes.eq(c.row_bytes), rows_w.bad.eq(bad), rows_w.empty.eq(empty),
        rows_w.beat_log2.eq(Mux(c.beat_log2 > lg_p, lg_p, c.beat_log2)),
    ]
    return walk_q, walk_r, rows_q, rows_r


def _connect_queue(m, q, r_view, sink):
    m.d.comb += [sink.valid.eq(q.r_rdy), sink.payload.eq(r_view), q.r_en.eq(sink.ready)]


def _address(m, reg, burst):
    m.d.sync += [reg.payload.addr.eq(burst.addr), reg.payload.len.eq(burst.beats - 1)]


#: AR/AW as the sides drive them (TileDMA adds the fixed fields).
def _addr_layout(addr_width):
    return data.StructLayout({"addr": unsigned(addr_width), "len": unsigned(8)})


class DMARead(wiring.Component):
    """The read direction of :class:`TileDMA` (HBM to unit); members as there (``o``, ``sts``:
    ``m_rd``, ``m_rd_sts``), ``ar``/``r`` are the AR and R channels (``r.ready`` is always 1)."""

    def __init__(self, *, addr_width, atom_bytes, port_bytes, max_burst, outstanding):
        self._aw, self._D, self._P, self._max_burst, self._outstanding = \
            addr_width, atom_bytes, port_bytes, max_burst, outstanding
        super().__init__({
            "s_cmd": In(stream.Signature(DMACommand(addr_width))),
            "ar": Out(stream.Signature(_addr_layout(addr_width))),
            "r": In(stream.Signature(data.StructLayout({"data": 8 * atom_bytes, "resp": 2, "last": 1}))),
            "o": Out(stream.Signature(ReadBeat(8 * port_bytes))),
            "sts": Out(stream.Signature(DMAStatus)),
            "abort": In(1),
            "busy": Out(1),
        })

    @property
    def buffer_atoms(self):
        return max(self._outstanding * self._max_burst, _MIN_BUFFER)

    def elaborate(self, platform):
        m = Module()
        D, P, depth = self._D, self._P, self.buffer_atoms
        aborting = Signal()
        drop = self.abort | aborting

        walk_q, walk_r, unpack_q, unpack_r = _intake(m, self.s_cmd, drop, addr_width=self._aw, port_bytes=P,
                                                     walk_depth=2, rows_depth=self._outstanding + 2,
                                                     empties_to="rows")

        # ---- AR: a burst goes out when its atoms have reserved room in the buffer
        walker = m.submodules.walker = ResetInserter(drop)(
            RowWalker(addr_width=self._aw, atom_bytes=D, max_burst=self._max_burst))
        _connect_queue(m, walk_q, walk_r, walker.cmd)
        atoms = m.submodules.atoms = ResetInserter(drop)(
            fifo.SyncFIFOBuffered(width=atom_layout(D).size, depth=depth))
        pending = Signal(range(depth + 1))                  # atoms issued, not yet received
        in_flight = Signal(range(self._outstanding + 1))    # bursts issued, last beat not received
        burst = walker.o.payload
        ar = self.ar
        m.d.comb += walker.o.ready.eq(~drop & (~ar.valid | ar.ready) & (in_flight < self._outstanding)
                                      & (pending + atoms.level + burst.beats <= depth))
        issue = walker.o.valid & walker.o.ready
        with m.If(issue):
            m.d.sync += ar.valid.eq(1)
            _address(m, ar, burst)
        with m.Elif(ar.ready):
            m.d.sync += ar.valid.eq(0)

        # ---- R: always accepted (room reserved); dropped while aborting
        r = self.r.payload
        got = self.r.valid
        m.d.comb += [self.r.ready.eq(1), atoms.w_en.eq(got & ~drop), atoms.w_data.eq(Cat(r.data, r.resp))]
        m.d.sync += [pending.eq(pending + Mux(issue, burst.beats, 0) - got),
                     in_flight.eq(in_flight + issue - (got & r.last))]

        # ---- unit side
        unpack = m.submodules.unpack = ResetInserter(drop)(Unpack(atom_bytes=D, port_bytes=P))
        _connect_queue(m, unpack_q, unpack_r, unpack.cmd)
        m.d.comb += [
            unpack.i.valid.eq(atoms.r_rdy), unpack.i.payload.eq(atoms.r_data), atoms.r_en.eq(unpack.i.ready),
            self.o.valid.eq(unpack.o.valid & ~drop), self.o.payload.eq(unpack.o.payload),
            unpack.o.ready.eq(self.o.ready),
            self.sts.valid.eq(unpack.sts.valid & ~drop), self.sts.payload.eq(unpack.sts.payload),
            unpack.sts.ready.eq(self.sts.ready),
        ]

        axi_idle = ~ar.valid & (pending == 0)
        m.d.sync += aborting.eq(self.abort | (aborting & ~axi_idle))
        m.d.comb += self.busy.eq(walk_q.r_rdy | walker.busy | ~axi_idle | (atoms.level != 0) | unpack_q.r_rdy
                                 | unpack.busy)
        return m


class DMAWrite(wiring.Component):
    """The write direction of :class:`TileDMA` (unit to HBM); members as there (``s_data``,
    ``sts``: ``s_wr_data``, ``m_wr_sts``), ``aw``/``w``/``b`` are the AW, W and B channels."""

    def __init__(self, *, addr_width, atom_bytes, port_bytes, max_burst, outstanding):
        self._aw, self._D, self._P, self._max_burst, self._outstanding = \
            addr_width, atom_bytes, port_bytes, max_burst, outstanding
        super().__init__({
            "s_cmd": In(stream.Signature(DMACommand(addr_width))),
            "s_data": In(stream.Signature(WriteBeat(8 * port_bytes))),
            "aw": Out(stream.Signature(_addr_layout(addr_width))),
            "w": Out(stream.Signature(data.StructLayout({"data": 8 * atom_bytes, "strb": atom_bytes, "last": 1}))),
            "b": In(stream.Signature(data.StructLayout({"resp": 2}))),
            "sts": Out(stream.Signature(DMAStatus)),
            "abort": In(1),
            "busy": Out(1),
        })

    @property
    def buffer_atoms(self):
        return max(2 * self._max_burst, _MIN_BUFFER)

    def elaborate(self, platform):
        m = Module()
        D, P, M, O = self._D, self._P, self._max_burst, self._outstanding
        aborting = Signal()
        drop = self.abort | aborting

        walk_q, walk_r, pack_q, pack_r = _intake(m, self.s_cmd, drop, addr_width=self._aw, port_bytes=P,
                                                 walk_depth=O + 2, rows_depth=2, empties_to="walk")

        # ---- unit side: beats packed into the W buffer (discarded while aborting)
        pack = m.submodules.pack = ResetInserter(drop)(Pack(atom_bytes=D, port_bytes=P))
        _connect_queue(m, pack_q, pack_r, pack.cmd)
        wbuf = m.submodules.wbuf = ResetInserter(drop)(
            fifo.SyncFIFOBuffered(width=strobed_atom_layout(D).size, depth=self.buffer_atoms))
        m.d.comb += [
            pack.i.valid.eq(self.s_data.valid & ~drop), pack.i.payload.eq(self.s_data.payload),
            self.s_data.ready.eq(drop | pack.i.ready),
            wbuf.w_en.eq(pack.o.valid), wbuf.w_data.eq(pack.o.payload), pack.o.ready.eq(wbuf.w_rdy),
        ]

        # ---- AW: issued once the burst's atoms are buffered beyond those promised to earlier ones
        walker = m.submodules.walker = ResetInserter(drop)(
            RowWalker(addr_width=self._aw, atom_bytes=D, max_burst=M))
        _connect_queue(m, walk_q, walk_r, walker.cmd)
        done_layout = data.StructLayout({"last": 1, "bad": 1, "none": 1})
        # one entry per burst (or empty command) awaiting its B, in order: bounds the bursts in flight
        # (depth 2 at least: a one-entry SyncFIFO has zero-width pointers; done_q.level bounds it)
        done_q = m.submodules.done_q = fifo.SyncFIFO(width=done_layout.size, depth=max(O, 2))
        wcmd = m.submodules.wcmd = fifo.SyncFIFO(width=bits_for(M), depth=max(O, 2))
        committed = Signal(range(self.buffer_atoms + 1))
        burst = walker.o.payload
        aw = self.aw
        m.d.comb += walker.o.ready.eq(~drop & (done_q.level < O) & (burst.none | (
            (~aw.valid | aw.ready) & wcmd.w_rdy & (wbuf.level >= committed + burst.beats))))
        issue = walker.o.valid & walker.o.ready
        new = issue & ~burst.none
        m.d.comb += [done_q.w_en.eq(issue), done_q.w_data.eq(Cat(burst.last, burst.bad, burst.none)),
                     wcmd.w_en.eq(new), wcmd.w_data.eq(burst.beats)]
        with m.If(new):
            m.d.sync += aw.valid.eq(1)
            _address(m, aw, burst)
        with m.Elif(aw.ready):
            m.d.sync += aw.valid.eq(0)

        # ---- W: registered; once aborting, the remaining beats go out with WSTRB 0
        w = self.w
        w_active, w_left = Signal(), Signal(bits_for(M))
        left = Mux(w_active, w_left, wcmd.r_data)
        load = (w_active | wcmd.r_rdy) & (drop | wbuf.r_rdy) & (~w.valid | w.ready)
        atom = data.View(strobed_atom_layout(D), wbuf.r_data)
        m.d.comb += [wcmd.r_en.eq(load & ~w_active), wbuf.r_en.eq(load & ~drop)]
        with m.If(load):
            m.d.sync += [w.valid.eq(1), w.payload.data.eq(Mux(drop, 0, atom.data)),
                         w.payload.strb.eq(Mux(drop, 0, atom.strb)), w.payload.last.eq(left == 1),
                         w_left.eq(left - 1), w_active.eq(left != 1)]
        with m.Elif(w.ready):
            m.d.sync += w.valid.eq(0)
        m.d.sync += committed.eq(Mux(drop, 0, committed + Mux(new, burst.beats, 0) - wbuf.r_en))

        # ---- B: the worst response of a command, its status after its last B
        head = data.View(done_layout, done_q.r_data)
        sts_valid, sts_resp, worst = Signal(), Signal(2), Signal(2)
        sts_free = ~sts_valid | self.sts.ready
        resp = worst_resp(worst, Mux(head.none, Resp.OKAY, self.b.payload.resp))
        ends = done_q.r_rdy & head.last & (head.none | self.b.valid) & ~drop & sts_free
        m.d.comb += [
            self.b.ready.eq(done_q.r_rdy & ~head.none & (drop | ~head.last | sts_free)),
            done_q.r_en.eq(self.b.valid & self.b.ready | done_q.r_rdy & head.none & (drop | sts_free)),
            self.sts.valid.eq(sts_valid & ~drop), self.sts.payload.resp.eq(sts_resp),
        ]
        with m.If(self.b.valid & self.b.ready):
            m.d.sync += worst.eq(resp)
        with m.If(ends):
            m.d.sync += [sts_valid.eq(1), sts_resp.eq(worst_resp(resp, Mux(head.bad, Resp.SLVERR, Resp.OKAY))),
                         worst.eq(0)]
        with m.Elif(drop | self.sts.ready):
            m.d.sync += sts_valid.eq(0)
        with m.If(drop):
            m.d.sync += worst.eq(0)

        axi_idle = ~aw.valid & ~done_q.r_rdy & ~w_active & ~w.valid
        m.d.sync += aborting.eq(self.abort | (aborting & ~axi_idle))
        m.d.comb += self.busy.eq(pack_q.r_rdy | walk_q.r_rdy | pack.busy | (wbuf.level != 0) | walker.busy
                                 | ~axi_idle | wcmd.r_rdy | sts_valid)
        return m


class TileDMA(wiring.Component):
    """Tile DMA engine: 2-D windows between HBM (one AXI4 manager) and a tile's unit ports.

    Protocol, timing and the handling of commands outside the rules: see the module docstring.

    Parameters
    ----------
    addr_width : int
        AXI byte address width, 12..64 (34: a 16 GiB HBM).
    data_width : int
        AXI data width, 64..256 bits (power of two); one AXI beat is an atom of ``D`` bytes.
    id_width : int
        AXI ID width, 0..32; reads use ARID 0, writes AWID 0.
    port_bits : int
        Unit port width, 8..512 bits (power of two); a unit beat is at most ``port_bits / 8`` bytes.
    max_burst : int
        Longest INCR burst, 1..256 beats.
    outstanding : int
        Bursts in flight per direction, 1..64; the read buffer holds ``outstanding * max_burst``
        atoms, the write buffer ``2 * max_burst`` (3 at least, both).

    Members
    -------
    s_rd : In(stream.Signature(DMACommand(addr_width)))
        Read commands (HBM to unit), valid/ready; queued (up to ``outstanding + 2``).
    m_rd : Out(stream.Signature(ReadBeat(port_bits)))
        Per command ``rows * ceil(row_bytes / B)`` beats ``{data, last, end}``: the row's next
        ``B`` bytes in the low bytes of ``data``, every other byte zero; ``last`` on a row's last
        beat, ``end`` on the command's last. Beats are delivered whatever the AXI responses
        (a failed atom reads as the memory returned it). Registered.
    m_rd_sts : Out(stream.Signature(DMAStatus))
        One ``{resp}`` per read command, the worst RRESP of its atoms (DECERR > SLVERR > OKAY),
        offered only after the command's last ``m_rd`` beat has been taken.
    s_wr : In(stream.Signature(DMACommand(addr_width)))
        Write commands (unit to HBM), valid/ready.
    s_wr_data : In(stream.Signature(WriteBeat(port_bits)))
        Per write command ``rows * ceil(row_bytes / B)`` beats, the row's next ``B`` bytes in
        the low bytes of each; other bytes are ignored. Every byte of ``[row start, row start +
        row_bytes)`` of every row is written (WSTRB on exactly those bytes), nothing else.
    m_wr_sts : Out(stream.Signature(DMAStatus))
        One ``{resp}`` per write command, the worst BRESP of its bursts, after its last B.
    m_axi : Out(AXI4Signature(addr_width, data_width, id_width))
        INCR bursts of full-width beats, never crossing 4 KiB; AR/AW registered.
    abort : In(1)
        Abort (module docstring).
    busy : Out(1)
        A command queued or in progress, data buffered, a beat or status not taken, or an AXI
        transaction in flight, in either direction.
    """

    def __init__(self, *, addr_width=34, data_width=256, id_width=4, port_bits=512, max_burst=16, outstanding=8):
        try:
            self._p = TileDMAParams(addr_width=addr_width, data_width=data_width, id_width=id_width,
                                    port_bits=port_bits, max_burst=max_burst, outstanding=outstanding)
        except ParameterError:
            self._MustUse__silence = True
            raise
        super().__init__({
            "s_rd": In(stream.Signature(DMACommand(addr_width))),
            "m_rd": Out(stream.Signature(ReadBeat(port_bits))),
            "m_rd_sts": Out(stream.Signature(DMAStatus)),
            "s_wr": In(stream.Signature(DMACommand(addr_width))),
            "s_wr_data": In(stream.Signature(WriteBeat(port_bits))),
            "m_wr_sts": Out(stream.Signature(DMAStatus)),
            "m_axi": Out(AXI4Signature(addr_width=addr_width, data_width=data_width, id_width=id_width)),
            "abort": In(1),
            "busy": Out(1),
        })

    params = property(lambda self: self._p)
    addr_width = property(lambda self: self._p.addr_width)
    data_width = property(lambda self: self._p.data_width)
    id_width = property(lambda self: self._p.id_width)
    port_bits = property(lambda self: self._p.port_bits)
    max_burst = property(lambda self: self._p.max_burst)
    outstanding = property(lambda self: self._p.outstanding)
    atom_bytes = property(lambda self: self._p.data_width // 8)

    def elaborate(self, platform):
        m = Module()
        p = self._p
        sides = dict(addr_width=p.addr_width, atom_bytes=self.atom_bytes, port_bytes=p.port_bits // 8,
                     max_burst=p.max_burst, outstanding=p.outstanding)
        rd = m.submodules.rd = DMARead(**sides)
        wr = m.submodules.wr = DMAWrite(**sides)
        axi = self.m_axi
        wiring.connect(m, wiring.flipped(self.s_rd), rd.s_cmd)
        wiring.connect(m, rd.o, wiring.flipped(self.m_rd))
        wiring.connect(m, rd.sts, wiring.flipped(self.m_rd_sts))
        wiring.connect(m, wiring.flipped(self.s_wr), wr.s_cmd)
        wiring.connect(m, wiring.flipped(self.s_wr_data), wr.s_data)
        wiring.connect(m, wr.sts, wiring.flipped(self.m_wr_sts))
        lg_d = exact_log2(self.atom_bytes)
        for ch, side, ident in (("ar", rd.ar, READ_ID), ("aw", wr.aw, WRITE_ID)):
            m.d.comb += [getattr(axi, ch + "valid").eq(side.valid), side.ready.eq(getattr(axi, ch + "ready")),
                         getattr(axi, ch + "addr").eq(side.payload.addr), getattr(axi, ch + "len").eq(side.payload.len),
                         getattr(axi, ch + "size").eq(lg_d), getattr(axi, ch + "burst").eq(Burst.INCR)]
            if p.id_width:
                m.d.comb += getattr(axi, ch + "id").eq(ident)
        m.d.comb += [
            rd.r.valid.eq(axi.rvalid), axi.rready.eq(rd.r.ready),
            rd.r.payload.data.eq(axi.rdata), rd.r.payload.resp.eq(axi.rresp), rd.r.payload.last.eq(axi.rlast),
            axi.wvalid.eq(wr.w.valid), wr.w.ready.eq(axi.wready),
            axi.wdata.eq(wr.w.payload.data), axi.wstrb.eq(wr.w.payload.strb), axi.wlast.eq(wr.w.payload.last),
            wr.b.valid.eq(axi.bvalid), axi.bready.eq(wr.b.ready), wr.b.payload.resp.eq(axi.bresp),
            rd.abort.eq(self.abort), wr.abort.eq(self.abort),
            self.busy.eq(rd.busy | wr.busy),
        ]
        return m


def tile_dma(**params):
    """Factory of the ``tile_dma`` block (keyword arguments of :class:`TileDMAParams`)."""
    return TileDMA(**params)
