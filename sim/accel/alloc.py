"""HBM allocator: named regions in the accelerator's channel-windowed address map.

Channel ``c`` owns ``[c << channel_shift, (c + 1) << channel_shift)`` (``docs/accel.md``); a
tile streams fastest from one channel, so every region lives inside one channel's window
(first fit inside it), and a region too big for one channel, or meant to be read by every
tile at once, is *spread*: cut into one part per channel.

Every region starts on an HBM atom (32 bytes) or a coarser power of two, and occupies a whole
number of atoms, so a STORE that writes a padded row never touches a neighbour. A matrix region
(:meth:`HBMAllocator.matrix`) pads each row to 32 bytes: its ``stride`` is what LOAD/STORE take.
"""

from dataclasses import dataclass

from scoville.hw.accel.isa import ATOM_BYTES
from scoville.hw.params import ParameterError, check_int


__all__ = ["Region", "HBMAllocator", "AllocationError", "round_up"]


class AllocationError(ParameterError):
    """A region does not fit (or names a region that does not exist)."""


def round_up(value, align):
    return -(-value // align) * align


@dataclass(frozen=True)
class Region:
    """``size`` bytes at ``addr`` in ``channel``, ``align``-aligned. A matrix region has
    ``rows`` rows of ``row_bytes`` bytes, row ``r`` at ``addr + r * stride``; a spread region
    has ``channel`` None and one part per channel in ``parts`` (``first_row``: the first row
    of the whole a part holds)."""
    name: str
    addr: int
    size: int
    align: int
    channel: int = None
    rows: int = None
    row_bytes: int = None
    stride: int = None
    parts: tuple = ()
    first_row: int = 0

    @property
    def end(self):
        return self.addr + self.size

    def row(self, r):
        """Byte address of row ``r`` of a matrix region (a spread one: in its part)."""
        if self.rows is None:
            raise ParameterError(f"{self.name}: not a matrix region (no rows)")
        check_int("row", r, 0, self.rows - 1)
        for part in self.parts:
            if part.first_row <= r < part.first_row + part.rows:
                return part.row(r - part.first_row)
        return self.addr + r * self.stride


class HBMAllocator:
    """First-fit allocation of named regions over ``capacity`` bytes of HBM from ``base``
    (channel windows of ``1 << channel_shift`` bytes; by default one channel).

    ``alloc(name, size, align=32, channel=None)``: ``channel`` an int places the region in that
    channel; None at the lowest address where it fits inside one channel;
    ``"spread"`` cuts it into one part per channel. Refusals raise :class:`AllocationError`
    with the sizes involved. ``free`` returns a region's atoms (neighbours merge)."""

    def __init__(self, capacity, *, channel_shift=None, base=0):
        check_int("capacity", capacity, ATOM_BYTES, 1 << 40)
        if channel_shift is None:
            channel_shift = max(5, (capacity - 1).bit_length())
        check_int("channel_shift", channel_shift, 5, 40)
        if base % (1 << channel_shift):
            raise ParameterError(f"base: {base:#x} is not a multiple of the channel window "
                                 f"{1 << channel_shift:#x} (accepted: a channel boundary)")
        self.capacity, self.channel_shift, self.base = capacity, channel_shift, base
        self.channels = -(-capacity // (1 << channel_shift))
        self._free = [[self.window(c)] for c in range(self.channels)]   # sorted [lo, hi) per channel
        self._regions = {}

    @classmethod
    def for_config(cls, config):
        """The allocator over a :class:`~.config.TileConfig`'s HBM."""
        return cls(config.hbm_bytes, channel_shift=config.channel_shift)

    # -- the address map ----------------------------------------------------------------------
    def window(self, channel):
        """``[lo, hi)`` of ``channel`` inside the capacity."""
        check_int("channel", channel, 0, self.channels - 1)
        lo = self.base + (channel << self.channel_shift)
        return [lo, min(lo + (1 << self.channel_shift), self.base + self.capacity)]

    def channel_of(self, addr):
        return (addr >> self.channel_shift) - (self.base >> self.channel_shift)

    # -- queries -----------------------------------------------------------------------------
    def __getitem__(self, name):
        try:
            return self._regions[name]
        except KeyError:
            raise AllocationError(f"{name!r}: no such region (allocated: "
                                  + (", ".join(self._regions) or "none") + ")") from None

    def __contains__(self, name):
        return name in self._regions

    def __iter__(self):
        return iter(self._regions.values())

    def free_bytes(self, channel=None):
        chans = range(self.channels) if channel is None else [channel]
        return sum(hi - lo for c in chans for lo, hi in self._free[c])

    def largest_free(self, channel):
        return max((hi - lo for lo, hi in self._free[channel]), default=0)

    # -- allocation --------------------------------------------------------------------------
    def _align(self, align):
        check_int("align", align, 1, 1 << 40, power_of_two=True)
        return max(align, ATOM_BYTES)

    def _fit(self, channel, size, align):
        """Address of the first fit of ``size`` (a multiple of 32) in ``channel``, or None."""
        for lo, hi in self._free[channel]:
            start = round_up(lo, align)
            if start + size <= hi:
                return start
        return None

    def _take(self, channel, start, size):
        free = self._free[channel]
        for i, (lo, hi) in enumerate(free):
            if lo <= start and start + size <= hi:
                pieces = [p for p in ([lo, start], [start + size, hi]) if p[1] > p[0]]
                free[i:i + 1] = pieces
                return
        raise AssertionError("allocator free list out of step")

    def _give(self, channel, start, size):
        free = self._free[channel]
        free.append([start, start + size])
        free.sort()
        merged = [free[0]]
        for lo, hi in free[1:]:
            if lo == merged[-1][1]:
                merged[-1][1] = hi
            else:
                merged.append([lo, hi])
        self._free[channel] = merged

    def _check_name(self, name):
        if not isinstance(name, str) or not name:
            raise ParameterError(f"name: {name!r} is not accepted (accepted: a non-empty string)")
        if name in self._regions:
            raise AllocationError(f"{name!r}: already allocated at {self._regions[name].addr:#x}")

    def _place(self, name, size, align, channel):
        """One region of ``size`` bytes in one channel (int, or None: the first that fits)."""
        span = round_up(size, ATOM_BYTES)
        if channel is None:
            order = range(self.channels)
        else:
            check_int("channel", channel, 0, self.channels - 1)
            order = [channel]
        for c in order:
            start = self._fit(c, span, align)
            if start is not None:
                self._take(c, start, span)
                return start, c
        where = f"channel {channel}" if channel is not None else f"any of the {self.channels} channels"
        largest = max(self.largest_free(c) for c in order)
        free = sum(self.free_bytes(c) for c in order)
        raise AllocationError(f"{name!r}: {size} bytes (align {align}) do not fit {where} "
                              f"(largest free block {largest} bytes, {free} bytes free there; a region "
                              f"bigger than a channel's {1 << self.channel_shift} bytes needs channel='spread')")

    def alloc(self, name, size, *, align=ATOM_BYTES, channel=None):
        """A region of ``size`` bytes (see the class docstring for ``channel``)."""
        self._check_name(name)
        check_int("size", size, 1, self.capacity)
        align = self._align(align)
        if channel == "spread":
            part = round_up(-(-size // self.channels), ATOM_BYTES)
            sizes = [min(part, size - c * part) for c in range(self.channels)]
            return self._spread(name, align, [(s, {}) for s in sizes if s > 0])
        addr, c = self._place(name, size, align, channel)
        region = Region(name, addr, size, align, c)
        self._regions[name] = region
        return region

    def matrix(self, name, rows, row_bytes, *, align=ATOM_BYTES, channel=None):
        """A matrix region: ``rows`` rows of ``row_bytes`` bytes, each padded to 32 bytes
        (``stride``). ``channel="spread"`` gives each channel a block of consecutive rows."""
        self._check_name(name)
        check_int("rows", rows, 1, 1 << 32)
        check_int("row_bytes", row_bytes, 1, 1 << 24)
        align = self._align(align)
        stride = round_up(row_bytes, ATOM_BYTES)
        if channel == "spread":
            per = -(-rows // self.channels)
            blocks = [(r0, min(per, rows - r0)) for r0 in range(0, rows, per)]
            return self._spread(name, align, [(n * stride, {"rows": n, "row_bytes": row_bytes, "stride": stride,
                                                            "first_row": r0}) for r0, n in blocks],
                                rows=rows, row_bytes=row_bytes, stride=stride)
        addr, c = self._place(name, rows * stride, align, channel)
        region = Region(name, addr, rows * stride, align, c, rows, row_bytes, stride)
        self._regions[name] = region
        return region

    def _spread(self, name, align, pieces, **whole):
        parts = []
        try:
            for c, (size, extra) in enumerate(pieces):
                addr, _ = self._place(f"{name}[{c}]", size, align, c)
                parts.append(Region(f"{name}[{c}]", addr, size, align, c, **extra))
        except AllocationError:
            for p in parts:
                self._give(p.channel, p.addr, round_up(p.size, ATOM_BYTES))
            raise
        region = Region(name, parts[0].addr, sum(p.size for p in parts), align, None,
                        parts=tuple(parts), **whole)
        self._regions[name] = region
        return region

    def reserve(self, name, addr, size):
        """A region at a fixed address (a program, a host buffer), inside one channel."""
        self._check_name(name)
        check_int("size", size, 1, self.capacity)
        if addr % ATOM_BYTES:
            raise ParameterError(f"addr: {addr:#x} is not a multiple of {ATOM_BYTES} (accepted: an atom address)")
        c = self.channel_of(addr)
        span = round_up(size, ATOM_BYTES)
        if not 0 <= c < self.channels or not any(lo <= addr and addr + span <= hi for lo, hi in self._free[c]):
            raise AllocationError(f"{name!r}: [{addr:#x}, {addr + span:#x}) is not free in one channel")
        self._take(c, addr, span)
        region = Region(name, addr, size, ATOM_BYTES, c)
        self._regions[name] = region
        return region

    def free(self, region):
        """Return ``region`` (or the region of that name) to the free space."""
        name = region if isinstance(region, str) else region.name
        r = self[name]
        for p in r.parts or (r,):
            self._give(p.channel, p.addr, round_up(p.size, ATOM_BYTES))
        del self._regions[name]
