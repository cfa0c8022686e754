"""Tile math for the WebMercatorQuad grid: pure functions on honest value types.

`BBox` is always longitude/latitude (CRS84 axis order); `Bounds` is always projected metres
(EPSG:3857). The names of the fields say the axis order, so nothing has to be guessed.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from tileserver.core.mercator import ORIGIN, to_lnglat, to_mercator

MAX_ZOOM = 24


class Tile(NamedTuple):
    """A tile of the XYZ scheme (row 0 at the north)."""

    z: int
    x: int
    y: int


class BBox(NamedTuple):
    """A longitude/latitude box."""

    west: float
    south: float
    east: float
    north: float


class Bounds(NamedTuple):
    """A box in EPSG:3857 metres."""

    left: float
    bottom: float
    right: float
    top: float


def is_valid(tile: Tile) -> bool:
    """Whether the tile exists in the grid.

    >>> is_valid(Tile(2, 3, 3)), is_valid(Tile(2, 4, 0)), is_valid(Tile(-1, 0, 0))
    (True, False, False)
    """
    if not 0 <= tile.z <= MAX_ZOOM:
        return False
    n = 1 << tile.z
    return 0 <= tile.x < n and 0 <= tile.y < n


def tile_size(z: int) -> float:
    """Width of a tile at zoom z, in metres.

    >>> round(tile_size(0))
    40075017
    """
    return 2 * ORIGIN / (1 << z)


def tile_bounds(tile: Tile) -> Bounds:
    """The tile's box in metres.

    >>> tile_bounds(Tile(1, 0, 0)) == Bounds(-ORIGIN, 0.0, 0.0, ORIGIN)
    True
    """
    size = tile_size(tile.z)
    left = -ORIGIN + tile.x * size
    top = ORIGIN - tile.y * size
    return Bounds(left, top - size, left + size, top)


def tile_bbox(tile: Tile) -> BBox:
    """The tile's box in longitude/latitude."""
    b = tile_bounds(tile)
    west, south = to_lnglat(b.left, b.bottom)
    east, north = to_lnglat(b.right, b.top)
    return BBox(west, south, east, north)


def bbox_to_bounds(bbox: BBox) -> Bounds:
    """Project a longitude/latitude box to metres."""
    left, bottom = to_mercator(bbox.west, bbox.south)
    right, top = to_mercator(bbox.east, bbox.north)
    return Bounds(left, bottom, right, top)


def tile_at(x: float, y: float, z: int) -> Tile:
    """The tile containing a point given in metres (points on an edge go east/south).

    >>> tile_at(1.0, -1.0, 1)
    Tile(z=1, x=1, y=1)
    """
    size = tile_size(z)
    n = (1 << z) - 1
    col = min(n, max(0, math.floor((x + ORIGIN) / size)))
    row = min(n, max(0, math.floor((ORIGIN - y) / size)))
    return Tile(z, col, row)


def tiles_covering(bounds: Bounds, z: int) -> list[Tile]:
    """Every tile of zoom z that intersects the box.

    >>> len(tiles_covering(tile_bounds(Tile(0, 0, 0)), 2))
    16
    """
    size = tile_size(z)
    eps = size * 1e-9
    first = tile_at(bounds.left, bounds.top, z)
    last = tile_at(bounds.right - eps, bounds.bottom + eps, z)
    return [Tile(z, x, y) for x in range(first.x, last.x + 1) for y in range(first.y, last.y + 1)]


def resolution(z: int, extent: int = 4096) -> float:
    """Size in metres of one tile-coordinate unit at zoom z.

    >>> round(resolution(0), 2)
    9783.94
    """
    return tile_size(z) / extent
