"""Address mapping: a 32-byte atom index to (bank group, bank, row, column).

A mapping is named by its fields, most significant first: ``ro_ba_co_bg`` puts the bank group in
the lowest bits, so consecutive atoms rotate over the bank groups (back-to-back bursts then need
only tCCD_S) and a row of every bank group stays open for ``columns`` atoms each. ``xor_bank``
XORs the bank and bank-group bits with the lowest row bits, spreading rows that would otherwise
conflict in one bank (e.g. power-of-two strides) over several banks.

The flat bank index used by the controller, the devices and the model is ``bg * banks_per_group
+ ba``. :class:`AddressMap` gives the same split both as Python integers (for testbenches) and as
Amaranth expressions (for the gateware).
"""

from amaranth.hdl import Cat, Value


__all__ = ["AddressMap"]


def _log2(n):
    return n.bit_length() - 1


class AddressMap:
    """Split of an atom index by ``mapping`` for the organisation of ``timing``."""

    def __init__(self, timing, mapping="ro_ba_co_bg", xor_bank=False):
        self.timing = timing
        self.mapping = mapping
        self.xor_bank = bool(xor_bank)
        self.widths = {"ro": _log2(timing.rows), "ba": _log2(timing.banks_per_group),
                       "bg": _log2(timing.bank_groups), "co": _log2(timing.columns)}
        self.order = mapping.split("_")  # most significant first
        if sorted(self.order) != sorted(self.widths):
            raise ValueError(f"mapping: {mapping!r} must name each of ro, ba, bg, co once")
        self.atom_bits = sum(self.widths.values())
        self.bank_bits = self.widths["ba"] + self.widths["bg"]

    @property
    def atoms(self):
        return 1 << self.atom_bits

    def _lsb(self):
        lsb, at = {}, 0
        for name in reversed(self.order):
            lsb[name] = at
            at += self.widths[name]
        return lsb

    def split(self, atom):
        """``(bank, row, col)`` of an atom index (Python integers)."""
        lsb = self._lsb()
        f = {n: (atom >> lsb[n]) & ((1 << self.widths[n]) - 1) for n in self.widths}
        if self.xor_bank:
            f["ba"] ^= f["ro"] & ((1 << self.widths["ba"]) - 1)
            f["bg"] ^= (f["ro"] >> self.widths["ba"]) & ((1 << self.widths["bg"]) - 1)
        return (f["bg"] << self.widths["ba"]) | f["ba"], f["ro"], f["co"]

    def join(self, bank, row, col):
        """Inverse of :meth:`split`."""
        ba = bank & ((1 << self.widths["ba"]) - 1)
        bg = bank >> self.widths["ba"]
        if self.xor_bank:
            ba ^= row & ((1 << self.widths["ba"]) - 1)
            bg ^= (row >> self.widths["ba"]) & ((1 << self.widths["bg"]) - 1)
        f = {"ro": row, "ba": ba, "bg": bg, "co": col}
        lsb = self._lsb()
        return sum(f[n] << lsb[n] for n in f)

    def split_hw(self, atom):
        """``(bank, row, col)`` Amaranth values of the atom-index value ``atom``."""
        atom = Value.cast(atom)
        lsb = self._lsb()
        f = {n: atom[lsb[n]:lsb[n] + self.widths[n]] for n in self.widths}
        ba, bg, ro = f["ba"], f["bg"], f["ro"]
        if self.xor_bank:
            ba = ba ^ ro[:self.widths["ba"]]
            bg = bg ^ ro[self.widths["ba"]:self.widths["ba"] + self.widths["bg"]]
        return Cat(ba, bg), ro, f["co"]
