"""Which tiles hold something: the tiles a seed makes, and the ones a warm-up makes first.

A tile can hold a feature only where the feature's geometry meets the tile's buffered box (what
`mvt.to_grid` clips to); every other tile is empty on the server, so it is never made. Points
(schools and their clusters) fall in one tile per zoom, found with array arithmetic. Shapes are
found zoom by zoom from the top of the pyramid: only the children of a tile that met a shape are
tested at the next zoom, against an STRtree of the collection's full-resolution geometries. The
box tested is the tile grown by the encoder's buffer and one more pixel, so a generalised shape
(within a quarter pixel of the full one) is never missed; a tile it makes needlessly comes out empty
and is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import shapely

from tileserver.core import mvt
from tileserver.core.grid import Tile, tile_size
from tileserver.core.mercator import ORIGIN, geometries_to_mercator
from tileserver.core.store import CollectionInfo, FeatureQuery, Snapshot

MARGIN = (mvt.BUFFER + mvt.EXTENT / 256) / mvt.EXTENT  # of a tile's side: the buffer and one pixel
_POINT_PAD = 1e-3  # metres: a school this close to an edge is looked for on both sides of it


def geometries(snapshot: Snapshot, info: CollectionInfo) -> np.ndarray:
    """Every feature geometry of a collection in EPSG:3857 (missing ones left out)."""
    page = snapshot.query(FeatureQuery(info.id, properties=(), limit=max(info.count, 1)))
    found = np.array([f.geometry for f in page.features if f.geometry is not None], dtype=object)
    return geometries_to_mercator(found) if len(found) else found


@dataclass(frozen=True)
class ZoomTiles:
    """Tiles of one zoom: PMTiles ids (ascending), columns and rows, aligned."""

    z: int
    ids: np.ndarray
    x: np.ndarray
    y: np.ndarray

    @classmethod
    def of_cells(cls, z: int, cells: np.ndarray) -> ZoomTiles:
        """The tiles of distinct cells (`x << z | y`), in id order."""
        x, y = cells >> z, cells & ((1 << z) - 1)
        ids = tile_ids(z, x, y)
        order = np.argsort(ids)
        return cls(z, ids[order], x[order], y[order])

    def tiles(self) -> Iterator[Tile]:
        """Each tile, in id order."""
        for x, y in zip(self.x.tolist(), self.y.tolist(), strict=True):
            yield Tile(self.z, x, y)


def feature_boxes(snapshot: Snapshot, info: CollectionInfo) -> np.ndarray:
    """The EPSG:3857 bounding box (left, bottom, right, top) of every feature of a collection, one row each."""
    return shapely.bounds(geometries(snapshot, info)).reshape(-1, 4)


def covered(snapshot: Snapshot, infos: Sequence[CollectionInfo], minzoom: int, maxzoom: int) -> dict[int, ZoomTiles]:
    """The tiles that can hold a feature of the collections, per zoom."""
    found: dict[int, list[np.ndarray]] = {z: [] for z in range(minzoom, maxzoom + 1)}
    for info in infos:
        low, high = max(minzoom, info.minzoom), min(maxzoom, info.maxzoom)
        if low > high:
            continue
        shapes = geometries(snapshot, info)
        zooms = point_tiles(shapes, low, high) if info.geometry_type == "Point" else shape_tiles(shapes, low, high)
        for z, cells in zooms:
            found[z].append(cells)
    return {z: ZoomTiles.of_cells(z, np.unique(np.concatenate(cells))) for z, cells in found.items() if cells}


def point_tiles(points: np.ndarray, minzoom: int, maxzoom: int) -> Iterable[tuple[int, np.ndarray]]:
    """(zoom, cells) of the tiles holding the points, a cell being `x << z | y`.

    >>> [(z, c.tolist()) for z, c in point_tiles(np.array([shapely.Point(1.0, -1.0)]), 0, 1)]
    [(0, [0]), (1, [3])]
    """
    xy = shapely.get_coordinates(points)
    for z in range(minzoom, maxzoom + 1):
        x, y = touched(np.column_stack([xy - _POINT_PAD, xy + _POINT_PAD]), z)
        yield z, np.unique(x << z | y)


def shape_tiles(shapes: np.ndarray, minzoom: int, maxzoom: int) -> Iterable[tuple[int, np.ndarray]]:
    """(zoom, cells) of the tiles whose buffered box meets a shape, descending from zoom 0.

    >>> from shapely.geometry import box
    >>> [(z, len(c)) for z, c in shape_tiles(np.array([box(1e5, 1e5, 2e5, 2e5)]), 0, 9)][-3:]
    [(7, 1), (8, 4), (9, 4)]
    """
    if not len(shapes):
        return
    tree = shapely.STRtree(shapes)
    x, y = np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
    for z in range(maxzoom + 1):
        if z:
            x = np.repeat(2 * x, 4) + np.tile([0, 1, 0, 1], len(x))
            y = np.repeat(2 * y, 4) + np.tile([0, 0, 1, 1], len(y))
        size = tile_size(z)
        pad = size * MARGIN
        left, top = -ORIGIN + x * size, ORIGIN - y * size
        boxes = shapely.box(left - pad, top - size - pad, left + size + pad, top + pad)
        hit = np.unique(tree.query(boxes, predicate="intersects")[0])
        x, y = x[hit], y[hit]
        if z >= minzoom:
            yield z, x << z | y


def touched(boxes: np.ndarray, z: int) -> tuple[np.ndarray, np.ndarray]:
    """Column and row of every (box, tile) pair where a box (left, bottom, right, top) meets a tile of zoom z.

    >>> [a.tolist() for a in touched(np.array([[0.0, 0.0, 1.0, 1.0], [-1.0, -1.0, 1.0, 1.0]]), 1)]
    [[1, 1, 0, 1, 0, 1], [0, 1, 0, 0, 1, 1]]
    """
    size = tile_size(z)
    last = (1 << z) - 1
    x0 = np.clip(np.floor((boxes[:, 0] + ORIGIN) / size), 0, last).astype(np.int64)
    x1 = np.clip(np.floor((boxes[:, 2] + ORIGIN) / size), 0, last).astype(np.int64)
    y0 = np.clip(np.floor((ORIGIN - boxes[:, 3]) / size), 0, last).astype(np.int64)
    y1 = np.clip(np.floor((ORIGIN - boxes[:, 1]) / size), 0, last).astype(np.int64)
    width, height = x1 - x0 + 1, y1 - y0 + 1
    count = width * height
    box = np.repeat(np.arange(len(boxes)), count)
    k = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    return x0[box] + k % width[box], y0[box] + k // width[box]


def tile_ids(z: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The PMTiles ids of tiles of zoom z, `pmtiles.tile.zxy_to_tileid` on whole arrays.

    >>> from pmtiles.tile import zxy_to_tileid
    >>> rng = np.random.default_rng(1)
    >>> x, y = rng.integers(0, 1 << 14, 500), rng.integers(0, 1 << 14, 500)
    >>> tile_ids(14, x, y).tolist() == [zxy_to_tileid(14, int(a), int(b)) for a, b in zip(x, y)]
    True
    """
    x, y = x.astype(np.int64), y.astype(np.int64)
    acc = np.full(len(x), ((1 << (2 * z)) - 1) // 3, dtype=np.int64)
    for a in range(z - 1, -1, -1):  # the Hilbert curve, bit by bit, as the reference does it
        s = 1 << a
        rx, ry = x & s, y & s
        acc += ((3 * rx) ^ ry) << a
        swap = ry == 0
        flip = swap & (rx != 0)
        x, y = np.where(flip, s - 1 - x, x), np.where(flip, s - 1 - y, y)
        x, y = np.where(swap, y, x), np.where(swap, x, y)
    return acc
