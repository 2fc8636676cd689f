"""numpy golden model of the tile DMA (:mod:`hw.accel.tile_dma`): bursts, unit beats, memory
writes and statuses of a command, byte for byte.

The model answers AXI accesses the way :class:`verif.axi_mem.AxiMemory` does (its
:class:`Faults` is that memory's error rule): a read atom that touches an error range returns
zeros and that response; a write beat whose strobed bytes touch one is not written, and its
burst's B carries the first error response of the burst.
"""

from dataclasses import dataclass

import numpy as np


__all__ = ["OKAY", "SLVERR", "DECERR", "ATOM_ALIGN", "PAGE", "Command", "Faults", "DMAModel"]

OKAY, SLVERR, DECERR = 0, 2, 3
ATOM_ALIGN = 32
PAGE = 4096


@dataclass(frozen=True)
class Command:
    """One :class:`hw.accel.tile_dma.DMACommand`."""
    addr: int
    rows: int
    row_bytes: int
    stride: int
    beat_log2: int

    def fields(self):
        return {"addr": self.addr, "rows": self.rows, "row_bytes": self.row_bytes, "stride": self.stride,
                "beat_log2": self.beat_log2}

    @property
    def empty(self):
        return self.rows == 0 or self.row_bytes == 0

    @property
    def bad(self):
        return bool(self.addr % ATOM_ALIGN or self.stride % ATOM_ALIGN)

    def row_addr(self, r, addr_width=64):
        return (self.addr + r * self.stride) % (1 << addr_width)

    def extent(self):
        """``(lo, hi)``: the bytes the window's rows span (rows in between included)."""
        if self.empty:
            return (self.addr, self.addr)
        return (self.addr, self.row_addr(self.rows - 1) + self.row_bytes)

    def row_ranges(self):
        return [(self.row_addr(r), self.row_addr(r) + self.row_bytes) for r in range(self.rows)] \
            if not self.empty else []


class Faults:
    """The error rule of an :class:`~verif.axi_mem.AxiMemory` of ``size`` bytes at ``base`` with
    error ranges ``errors`` (``[(lo, hi, resp)]``, in injection order; pass the memory's
    ``errors`` list itself to follow later injections)."""

    def __init__(self, size, base=0, errors=None):
        self.size, self.base = size, base
        self.errors = [] if errors is None else errors     # a live list (the memory's own) stays live

    def __call__(self, addr, length):
        if addr < self.base or addr + length > self.base + self.size:
            return DECERR
        for lo, hi, resp in self.errors:
            if addr < hi and lo < addr + length:
                return int(resp)
        return None


def _ceil(a, b):
    return -(-a // b)


class DMAModel:
    """The engine's behaviour for one configuration.

    Parameters
    ----------
    atom_bytes, port_bytes, max_burst, addr_width : int
        ``data_width / 8``, ``port_bits / 8``, ``max_burst``, ``addr_width`` of the engine.
    """

    def __init__(self, *, atom_bytes, port_bytes, max_burst, addr_width=34):
        self.D, self.P, self.max_burst, self.addr_width = atom_bytes, port_bytes, max_burst, addr_width

    def beat_bytes(self, cmd):
        return min(1 << cmd.beat_log2, self.P)

    def unit_beats(self, cmd):
        """Unit beats of the command (``m_rd`` beats or ``s_wr_data`` beats)."""
        return 0 if cmd.empty else cmd.rows * _ceil(cmd.row_bytes, self.beat_bytes(cmd))

    def atoms(self, cmd):
        return 0 if cmd.empty else cmd.rows * _ceil(cmd.row_bytes, self.D)

    def bursts(self, cmd):
        """``[(addr, beats)]`` in issue order: per row, its atoms from the atom-aligned row
        address, cut greedily at 4 KiB pages and at ``max_burst`` beats."""
        return [] if cmd.empty else [b for r in range(cmd.rows) for b in self.row_bursts(cmd, r)]

    def _row_base(self, cmd, r):
        return cmd.row_addr(r, self.addr_width) // self.D * self.D

    def row_bursts(self, cmd, r):
        """``[(addr, beats)]`` of row ``r``."""
        a, n = self._row_base(cmd, r), _ceil(cmd.row_bytes, self.D)
        out = []
        while n:
            k = min(n, self.max_burst, (PAGE - a % PAGE) // self.D)
            out.append((a, k))
            a, n = (a + k * self.D) % (1 << self.addr_width), n - k
        return out

    # ------------------------------------------------------------------ reads
    def read(self, image, cmd, faults):
        """``(beats, resp)``: the ``m_rd`` beats ``[(data bytes of port_bytes, last, end)]``
        and the status of a read command over memory ``image`` (indexed by bus address)."""
        if cmd.empty:
            return [], SLVERR if cmd.bad else OKAY
        D, B = self.D, self.beat_bytes(cmd)
        resp = SLVERR if cmd.bad else OKAY
        n = _ceil(cmd.row_bytes, D)
        beats = []
        for r in range(cmd.rows):
            a = self._row_base(cmd, r)
            row = bytearray()
            for k in range(n):
                word = (a + k * D) % (1 << self.addr_width)
                fault = faults(word, D)
                if fault is None:
                    row += bytes(image[word:word + D])
                else:
                    row += bytes(D)
                    resp = max(resp, fault)
            row = bytes(row[:cmd.row_bytes]) if not cmd.bad else bytes(cmd.row_bytes)
            per_row = _ceil(cmd.row_bytes, B)
            for j in range(per_row):
                chunk = row[j * B:(j + 1) * B]
                beats.append((chunk + bytes(self.P - len(chunk)), j == per_row - 1,
                              r == cmd.rows - 1 and j == per_row - 1))
        return beats, resp

    # ------------------------------------------------------------------ writes
    def row_data(self, cmd, beats):
        """The bytes of each row that the unit beats ``beats`` (bytes of ``port_bytes``) carry."""
        B, per_row = self.beat_bytes(cmd), _ceil(cmd.row_bytes, self.beat_bytes(cmd))
        assert len(beats) == self.unit_beats(cmd), f"{len(beats)} beats for a command of {self.unit_beats(cmd)}"
        return [b"".join(bytes(beats[r * per_row + j][:B]) for j in range(per_row))[:cmd.row_bytes]
                for r in range(cmd.rows)] if not cmd.empty else []

    def write(self, image, cmd, beats, faults):
        """Apply a write command with unit beats ``beats`` to ``image`` (in place, as the memory
        would) and return its status."""
        if cmd.empty:
            return SLVERR if cmd.bad else OKAY
        D = self.D
        rows = self.row_data(cmd, beats)
        status = SLVERR if cmd.bad else OKAY
        for r, row in enumerate(rows):
            # the bursts of this row, each with its own first-error response
            done = 0
            for a, k in self.row_bursts(cmd, r):
                burst_resp = OKAY
                for j in range(k):
                    off = (done + j) * D        # byte offset of this atom in the row
                    lo, hi = off, min(off + D, cmd.row_bytes)
                    if cmd.bad or lo >= hi:
                        continue                # no strobe: nothing written, no fault checked
                    word = a + j * D
                    fault = faults(word, hi - lo)
                    if fault is not None:
                        burst_resp = fault if burst_resp == OKAY else burst_resp
                        continue
                    image[word:word + hi - lo] = np.frombuffer(row[lo:hi], np.uint8)
                status = max(status, burst_resp)
                done += k
        return status
