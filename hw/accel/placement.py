"""Where each node of the accelerator sits on the mesh: tiles on the top row, HBM channels on the
bottom row (memories at the edge, as their PHYs are), the host bridge and the KV-cache DMA on
free nodes of those rows, or on a middle row when they are full.

Tile ``t`` and channel ``t`` share a column (for ``t < min(tiles, channels)``), so under XY routing
each tile's reads from its own channel go straight down its column and no two such flows share
a link: the layout the compiler assumes when it places a tile's weights in its channel.
"""

from dataclasses import dataclass

from ..params import ParameterError


__all__ = ["Placement", "place"]


@dataclass(frozen=True)
class Placement:
    cols: int
    rows: int
    tiles: tuple       # node of each tile
    channels: tuple    # node of each HBM channel
    host: int
    kv: int            # node of the KV-cache DMA (-1: none)

    @property
    def nodes(self):
        return self.cols * self.rows

    @property
    def managers(self):
        """Manager nodes (AXI4 into the mesh): tiles, host, KV-cache DMA."""
        return self.tiles + (self.host,) + ((self.kv,) if self.kv >= 0 else ())

    @property
    def unused(self):
        used = set(self.managers) | set(self.channels)
        return tuple(n for n in range(self.nodes) if n not in used)


def place(*, tiles, channels, kv=True, cols=0):
    """The default placement (``cols`` 0: ``max(tiles, channels, 2)`` columns)."""
    cols = cols or max(tiles, channels, 2)
    if cols < max(tiles, channels):
        raise ParameterError(f"mesh_cols: {cols} cannot hold {tiles} tiles on one row and {channels} "
                             f"channels on another (accepted: 0 or >= {max(tiles, channels)})")
    extra = 1 + bool(kv)                       # host, KV-cache DMA
    node = lambda x, y: y * cols + x           # noqa: E731
    # beside the tiles or the channels if there is room (a two-row mesh), else a middle row
    spare = [node(x, 0) for x in range(tiles, cols)] + [node(x, 1) for x in range(channels, cols)]
    rows = 2 if len(spare) >= extra else 3
    if rows == 3:
        spare = [node(x, 1) for x in range(cols)]
    return Placement(cols=cols, rows=rows, tiles=tuple(node(t, 0) for t in range(tiles)),
                     channels=tuple(node(c, rows - 1) for c in range(channels)),
                     host=spare[0], kv=spare[1] if kv else -1)
