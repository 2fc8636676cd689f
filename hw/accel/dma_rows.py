"""Parts of the tile DMA shared by both directions: its wire formats, the row walker (windows
into AXI bursts) and the row/chunk counters of the packer and unpacker.

A window is ``rows`` rows of ``row_bytes`` bytes; on the bus a row is ``ceil(row_bytes / D)``
atoms of ``D`` bytes (the AXI data width) from an atom-aligned address; on the unit port it is
``ceil(row_bytes / B)`` beats of ``B = 2**beat_log2`` bytes. Both start at byte 0 of the row, so
a row's bytes map between the two sides in chunks of ``min(B, D)`` bytes, one chunk a cycle
(:class:`ChunkStep`).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for, exact_log2

from ..burst import AXI_PAGE, BurstSplitter


__all__ = ["ROWS_BITS", "ROW_BYTES_BITS", "STRIDE_BITS", "BEAT_LOG2_BITS", "ReadBeat", "WriteBeat",
           "DMAStatus", "walk_layout", "walk_burst_layout", "rows_layout", "byte_mask", "worst_resp",
           "RowWalker", "ChunkStep"]

ROWS_BITS, ROW_BYTES_BITS, STRIDE_BITS, BEAT_LOG2_BITS = 16, 24, 32, 3


class ReadBeat(data.StructLayout):
    """One unit beat of ``m_rd``: ``data`` (the row's next ``B`` bytes in its low bytes, every
    other byte zero), ``last`` (last beat of a row) and ``end`` (last beat of the command)."""

    def __init__(self, port_bits):
        super().__init__({"data": unsigned(port_bits), "last": unsigned(1), "end": unsigned(1)})


class WriteBeat(data.StructLayout):
    """One unit beat of ``s_wr_data``: the row's next ``B`` bytes in the low bytes of ``data``
    (the bytes above ``B``, and past ``row_bytes`` in a row's last beat, are ignored)."""

    def __init__(self, port_bits):
        super().__init__({"data": unsigned(port_bits)})


#: One status per command: the worst AXI response of the command (DECERR > SLVERR > OKAY).
DMAStatus = data.StructLayout({"resp": unsigned(2)})


def walk_layout(addr_width):
    """A window for :class:`RowWalker`; ``bad`` and ``empty`` as :func:`rows_layout`."""
    return data.StructLayout({"addr": unsigned(addr_width), "rows": unsigned(ROWS_BITS),
                              "row_bytes": unsigned(ROW_BYTES_BITS), "stride": unsigned(STRIDE_BITS),
                              "bad": unsigned(1), "empty": unsigned(1)})


def walk_burst_layout(addr_width, max_burst):
    """A burst of :class:`RowWalker`: ``addr`` (atom-aligned), ``beats`` (1..max_burst),
    ``last`` (the command's last burst), ``bad`` (of a refused command) and ``none`` (no burst:
    the only entry of an empty command, ``beats`` 0)."""
    return data.StructLayout({"addr": unsigned(addr_width), "beats": unsigned(bits_for(max_burst)),
                              "last": unsigned(1), "bad": unsigned(1), "none": unsigned(1)})


#: What the packer and unpacker need of a command. ``beat_log2`` is already limited to the
#: port; ``bad`` (misaligned address or stride) suppresses the data (reads deliver zeros, writes
#: strobe nothing); ``empty`` (no row or no byte) moves nothing.
rows_layout = data.StructLayout({"rows": unsigned(ROWS_BITS), "row_bytes": unsigned(ROW_BYTES_BITS),
                                 "beat_log2": unsigned(BEAT_LOG2_BITS), "bad": unsigned(1),
                                 "empty": unsigned(1)})


def byte_mask(m, count, width):
    """``(bytes, bits)``: signals of ``width`` bits, bit ``k`` set when ``k < count``, and the
    same mask with each bit spread over a byte."""
    mask, bits = Signal(width), Signal(8 * width)
    m.d.comb += [mask.eq(Cat(*(count > k for k in range(width)))),
                 bits.eq(Cat(*(mask[k].replicate(8) for k in range(width))))]
    return mask, bits


def worst_resp(a, b):
    """The worse of two AXI responses (DECERR > SLVERR > EXOKAY > OKAY: the encoding's order)."""
    return Mux(a > b, a, b)


class RowWalker(wiring.Component):
    """Cuts windows into AXI4 INCR bursts of atoms: rows in order, each row's bursts in order.

    A row that fits one burst (at most ``max_burst`` atoms, not crossing 4 KiB) is issued
    directly, one row a cycle; a longer row goes through a :class:`hw.burst.BurstSplitter`
    (``2k + 1`` cycles for a row of ``k`` bursts). The two never reorder: a direct row waits
    until the splitter is idle. A command is loaded in the cycle its predecessor's last row
    leaves, so back-to-back commands cost nothing extra. Row ``r`` starts at
    ``addr + r * stride`` (modulo ``2**addr_width``) with the bits below one atom cleared.

    Parameters
    ----------
    addr_width, atom_bytes, max_burst : int
        Byte address width, bytes per AXI beat, longest burst in beats.

    Members
    -------
    cmd : In(stream.Signature(walk_layout(addr_width)))
        Windows; ready while idle or as the last row of the one in progress leaves.
    o : Out(stream.Signature(walk_burst_layout(addr_width, max_burst)))
        Bursts; ``ready`` may depend on ``valid`` and on the payload (room checks).
    busy : Out(1)
        A window is in progress.
    """

    def __init__(self, *, addr_width, atom_bytes, max_burst):
        self._aw, self._D, self._max_burst = addr_width, atom_bytes, max_burst
        super().__init__({
            "cmd": In(stream.Signature(walk_layout(addr_width))),
            "o": Out(stream.Signature(walk_burst_layout(addr_width, max_burst))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        D, lg_d = self._D, exact_log2(self._D)
        beats_w = bits_for(self._max_burst)
        m.submodules.split = split = BurstSplitter(
            addr_width=self._aw, data_width=D * 8, max_beats=self._max_burst, boundary=AXI_PAGE,
            length_width=ROW_BYTES_BITS + 1, user_width=2)
        c = self.cmd.payload

        active, empty, bad = Signal(), Signal(), Signal()
        row_addr = Signal(self._aw)
        stride = Signal(STRIDE_BITS)
        rows_left = Signal(ROWS_BITS)
        atoms = Signal(ROW_BYTES_BITS - lg_d + 1)      # atoms per row
        short = Signal()                               # atoms <= max_burst
        aligned = Cat(Const(0, lg_d), row_addr[lg_d:])
        last_row = rows_left == 1
        fits = short & (aligned[lg_d:12] + atoms[:beats_w] <= AXI_PAGE // D)

        idle = split.i.ready
        direct = active & idle & (empty | fits)
        burst, tag = split.o.payload, split.o.payload.user
        m.d.comb += [
            split.i.valid.eq(active & ~empty & ~fits),
            split.i.payload.addr.eq(aligned),
            split.i.payload.length.eq(atoms << lg_d),
            split.i.payload.user.eq(Cat(last_row, bad)),
            self.o.valid.eq(split.o.valid | direct),
            split.o.ready.eq(self.o.ready),
            self.busy.eq(active | ~idle),
        ]
        o = self.o.payload
        with m.If(split.o.valid):
            m.d.comb += [o.addr.eq(burst.addr), o.beats.eq(burst.beats), o.last.eq(burst.last & tag[0]),
                         o.bad.eq(tag[1])]
        with m.Else():
            m.d.comb += [o.addr.eq(aligned), o.beats.eq(Mux(empty, 0, atoms[:beats_w])),
                         o.last.eq(last_row | empty), o.bad.eq(bad), o.none.eq(empty)]

        advance = (direct & self.o.ready) | (split.i.valid & split.i.ready)
        done = advance & (last_row | empty)
        m.d.comb += self.cmd.ready.eq(~active | done)
        with m.If(advance):
            m.d.sync += [row_addr.eq(row_addr + stride), rows_left.eq(rows_left - 1)]
        with m.If(done):
            m.d.sync += active.eq(0)
        with m.If(self.cmd.valid & self.cmd.ready):
            n = (c.row_bytes + (D - 1)) >> lg_d
            m.d.sync += [active.eq(1), empty.eq(c.empty), bad.eq(c.bad), row_addr.eq(c.addr),
                         rows_left.eq(c.rows), atoms.eq(n), short.eq(n <= self._max_burst),
                         stride.eq(c.stride)]
        return m


class ChunkStep(wiring.Component):
    """Row and chunk counters for moving a window between atoms of ``D`` bytes and unit beats
    of ``B`` bytes (``B`` per command, at most ``port_bytes``).

    Each step moves one chunk of ``min(B, D)`` bytes (fewer at a row's end): byte ``atom_off``
    of the current atom and atom-sized slot ``beat_idx`` of the current unit beat (one of the
    two is always 0). ``atom_done`` / ``beat_done`` say that the step finishes the atom or the
    beat, ``row_end`` / ``cmd_end`` that it is the row's / the command's last. The owner drives
    ``step`` (only while ``active``) and moves the data; a row of ``n`` bytes takes
    ``ceil(n / min(B, D))`` steps, and the next command is taken in the step that ends one.

    Members
    -------
    cmd : In(stream.Signature(rows_layout))
        Non-empty commands (``empty`` is ignored).
    step : In(1)
        Move the current chunk.
    active, atom_off, beat_idx, nbytes, atom_done, beat_done, row_end, cmd_end, bad : Out
        The current chunk (valid while ``active``) and the command's ``bad`` flag.
    """

    def __init__(self, *, atom_bytes, port_bytes):
        self._D, self._P = atom_bytes, port_bytes
        super().__init__({
            "cmd": In(stream.Signature(rows_layout)),
            "step": In(1),
            "active": Out(1),
            "atom_off": Out(range(atom_bytes)),
            "beat_idx": Out(range(max(port_bytes // atom_bytes, 2))),
            "nbytes": Out(range(min(atom_bytes, port_bytes) + 1)),
            "atom_done": Out(1),
            "beat_done": Out(1),
            "row_end": Out(1),
            "cmd_end": Out(1),
            "bad": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        D, P = self._D, self._P
        lg_d, lg_p = exact_log2(D), exact_log2(P)
        c = self.cmd.payload

        rows_left = Signal(ROWS_BITS)
        row_bytes, row_left = Signal(ROW_BYTES_BITS), Signal(ROW_BYTES_BITS)
        small = Signal()                        # B < D: chunks of B bytes step through the atom
        lg_c = Signal(range(lg_d + 1))          # log2 min(B, D)
        last_idx = Signal.like(self.beat_idx)   # B >= D: slots per beat - 1
        chunk = Const(1, 7) << lg_c
        row_end = row_left <= chunk
        m.d.comb += [
            self.row_end.eq(row_end),
            self.cmd_end.eq(row_end & (rows_left == 1)),
            self.nbytes.eq(Mux(row_end, row_left, chunk)),
            self.atom_done.eq(~small | row_end | (self.atom_off + chunk)[lg_d]),
            self.beat_done.eq(small | row_end | (self.beat_idx == last_idx)),
            self.cmd.ready.eq(~self.active | (self.step & self.cmd_end)),
        ]
        with m.If(self.step):
            m.d.sync += [
                row_left.eq(Mux(row_end, row_bytes, row_left - chunk)),
                self.atom_off.eq(Mux(row_end | ~small, 0, self.atom_off + chunk)),
                self.beat_idx.eq(Mux(self.beat_done, 0, self.beat_idx + 1)),
            ]
            with m.If(row_end):
                m.d.sync += rows_left.eq(rows_left - 1)
            with m.If(self.cmd_end):
                m.d.sync += self.active.eq(0)
        with m.If(self.cmd.valid & self.cmd.ready):
            lg_b = c.beat_log2
            m.d.sync += [self.active.eq(1), rows_left.eq(c.rows), row_bytes.eq(c.row_bytes),
                         row_left.eq(c.row_bytes), small.eq(lg_b < lg_d), lg_c.eq(Mux(lg_b < lg_d, lg_b, lg_d)),
                         self.atom_off.eq(0), self.beat_idx.eq(0), self.bad.eq(c.bad), last_idx.eq(0)]
            for k in range(lg_d + 1, lg_p + 1):
                with m.If(lg_b == k):
                    m.d.sync += last_idx.eq((1 << (k - lg_d)) - 1)
        return m
