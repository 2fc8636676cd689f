"""Synthesizable behavioural model of one HBM pseudo-channel (memory-backed)."""

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from .controller import ATOM_BITS, ATOM_BYTES, ColCmd, PHYSignature, RowCmd


__all__ = ["HBMDevice"]


class HBMDevice(wiring.Component):
    """Behavioural pseudo-channel: stores every atom and honours the read and write latencies.

    It tracks the open row of each bank from ACT, and for each column command addresses the
    atom ``(bank, open row, column)`` of a memory of ``banks * rows * columns`` 32-byte words.
    Read data is driven exactly ``cl`` cycles after RD, write data is taken exactly ``cwl``
    cycles after WR (byte-masked by ``wr_strb``). It checks no timing: that is the job of the
    controller and of the independent model in ``verif/hbm_model.py``; with legal timing (RD at
    least ``cwl + burst + twtr`` after a WR, WR at least ``cl + burst + 2 - cwl`` after a RD) the
    memory ordering matches the command order. PRE, PREA and REF change nothing here.

    Resources: one simple dual-port memory, ``cl + cwl`` pipeline registers of the address.

    Parameters
    ----------
    timing : HBMTiming
        Organisation (banks, rows, columns) and latencies (``cl >= 2``, ``cwl >= 1``).

    Members
    -------
    phy : In(PHYSignature(timing))
        The controller's command and data bus.
    """

    def __init__(self, *, timing):
        self.timing = timing
        super().__init__({"phy": In(PHYSignature(timing))})

    def elaborate(self, platform):
        m = Module()
        t, phy = self.timing, self.phy
        row_w = len(phy.row_row)
        col_w = len(phy.col_col)
        mem = Memory(shape=ATOM_BITS, depth=t.banks * t.rows * t.columns, init=[])
        m.submodules.mem = mem
        wp = mem.write_port(granularity=8)
        rp = mem.read_port(domain="sync")

        open_row = Array(Signal(row_w, name=f"open_row{b}") for b in range(t.banks))
        with m.If(phy.row_cmd == RowCmd.ACT):
            m.d.sync += open_row[phy.row_bank].eq(phy.row_row)

        def addr_bits(n):
            return (n - 1).bit_length()
        addr = Cat(phy.col_col[:addr_bits(t.columns)], open_row[phy.col_bank][:addr_bits(t.rows)],
                   phy.col_bank[:addr_bits(t.banks)])

        # Read: the address reaches the memory's read register cl-1 cycles after RD, so the data
        # is on rd_data cl cycles after RD.
        v, a = phy.col_cmd == ColCmd.RD, addr
        for k in range(t.cl - 1):
            nv, na = Signal(name=f"rd{k}_v"), Signal(len(addr), name=f"rd{k}_a")
            m.d.sync += [nv.eq(v), na.eq(a)]
            v, a = nv, na
        rd_valid = Signal()
        m.d.sync += rd_valid.eq(v)
        m.d.comb += [rp.addr.eq(a), rp.en.eq(v), phy.rd_valid.eq(rd_valid),
                     phy.rd_data.eq(rp.data)]

        # Write: the address of a WR meets its data cwl cycles later.
        v, a = phy.col_cmd == ColCmd.WR, addr
        for k in range(t.cwl):
            nv, na = Signal(name=f"wr{k}_v"), Signal(len(addr), name=f"wr{k}_a")
            m.d.sync += [nv.eq(v), na.eq(a)]
            v, a = nv, na
        m.d.comb += [wp.addr.eq(a), wp.data.eq(phy.wr_data),
                     wp.en.eq(Mux(v, phy.wr_strb, 0))]
        return m
