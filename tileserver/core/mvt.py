"""Mapbox Vector Tile encoding: EPSG:3857 geometries and properties in, tile bytes out, no I/O.

Geometry work is vectorised with shapely 2: every geometry of a layer is clipped to the tile and
its buffer, moved to the tile grid and rounded in a few array calls, and only the few that
rounding made invalid are repaired one by one. The geometry commands are then built with numpy and
written into mapbox-vector-tile's protobuf message: its own encoder walks every coordinate in
Python, which costs several times more than everything else together on polygon tiles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from mapbox_vector_tile.Mapbox import vector_tile_pb2

from tileserver.core.grid import Bounds

EXTENT = 4096  # tile grid units per side
BUFFER = 64  # grid units kept around the tile, so strokes and labels meet across tile edges

_MOVE_TO, _LINE_TO, _CLOSE_PATH = 1, 2, 7
_POINT, _POLYGON = 1, 3
_POINT_TYPES = {shapely.GeometryType.POINT}
_POLYGON_TYPES = {shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON}


@dataclass(frozen=True)
class TileLayer:
    """One layer of a tile: geometries in EPSG:3857, integer ids and property columns, all aligned.

    A property that is None (or NaN) is left out of its feature, as MVT has no null.
    """

    name: str
    geometries: np.ndarray
    ids: Sequence[int]
    columns: Mapping[str, Sequence[Any]]


def encode(bounds: Bounds, layers: Sequence[TileLayer], *, extent: int = EXTENT, buffer: int = BUFFER) -> bytes:
    """The tile holding `layers` (b'' when no feature is left after clipping and rounding)."""
    tile = vector_tile_pb2.tile()
    for layer in layers:
        geometries = to_grid(np.asarray(layer.geometries, dtype=object), bounds, extent, buffer)
        kept = np.flatnonzero(~shapely.is_empty(geometries) & ~shapely.is_missing(geometries))
        if len(kept):
            _write_layer(tile.layers.add(), layer, geometries[kept], kept, extent)
    return tile.SerializeToString() if len(tile.layers) else b""


def to_grid(geometries: np.ndarray, bounds: Bounds, extent: int = EXTENT, buffer: int = BUFFER) -> np.ndarray:
    """Geometries clipped to the buffered tile, on the integer tile grid (y down), valid, MVT-wound.

    Rounding can collapse a ring or make it cross another; those few geometries are repaired and
    snapped again, and a polygon left with no area comes out empty (its feature is then dropped).

    >>> from tileserver.core.grid import Bounds
    >>> from shapely.geometry import Point, box
    >>> cells = to_grid(np.array([Point(5.2, 5.0), box(-1, -1, 4, 4), box(1.0, 1.0, 1.0001, 1.0001)]),
    ...                 Bounds(0, 0, 10, 10), extent=10, buffer=0)
    >>> [g.wkt for g in cells]
    ['POINT (5 5)', 'POLYGON ((0 10, 0 6, 4 6, 4 10, 0 10))', 'POLYGON EMPTY']
    """
    size_x = bounds.right - bounds.left
    size_y = bounds.top - bounds.bottom
    margin_x, margin_y = size_x * buffer / extent, size_y * buffer / extent
    clipped = shapely.clip_by_rect(
        geometries, bounds.left - margin_x, bounds.bottom - margin_y, bounds.right + margin_x, bounds.top + margin_y
    )
    scale = np.array([extent / size_x, -extent / size_y])
    origin = np.array([bounds.left, bounds.top])
    gridded = shapely.transform(clipped, lambda xy: np.rint((xy - origin) * scale))
    invalid = np.flatnonzero(~shapely.is_valid(gridded) & ~shapely.is_missing(gridded))
    if len(invalid):
        gridded[invalid] = _snap_round(shapely.transform(clipped[invalid], lambda xy: (xy - origin) * scale))
    return shapely.orient_polygons(gridded, exterior_cw=False)


def _snap_round(polygons: np.ndarray) -> np.ndarray:
    """Polygons put on the integer grid by snap rounding, valid (empty where they collapse), in one call.

    Plain rounding is cheaper and right for most geometries; snap rounding is only needed where it
    made a ring cross itself or another. A source geometry that is not valid is made valid first.

    >>> from shapely.geometry import Polygon, box
    >>> [g.wkt for g in _snap_round(np.array([Polygon([(0, 0), (0, 1.2), (0.6, 0.4), (1.4, 0)]), box(0, 0, 9, 0.2)]))]
    ['POLYGON ((0 1, 1 0, 0 0, 0 1))', 'POLYGON EMPTY']
    """
    try:
        return shapely.set_precision(polygons, 1.0)
    except shapely.errors.GEOSException:
        return shapely.set_precision(shapely.make_valid(polygons, method="structure", keep_collapsed=False), 1.0)


def _write_layer(message: Any, layer: TileLayer, geometries: np.ndarray, rows: np.ndarray, extent: int) -> None:
    """Fill one layer message with the features of `rows` (their geometries already on the grid)."""
    message.version = 2
    message.name = layer.name
    message.extent = extent
    kinds = shapely.get_type_id(geometries)
    if not set(np.unique(kinds).tolist()) <= _POINT_TYPES | _POLYGON_TYPES:
        raise ValueError(f"layer {layer.name}: only points and polygons are encoded")
    points = kinds == shapely.GeometryType.POINT
    commands: list[list[int]] = [[] for _ in range(len(geometries))]
    for which, encoded in ((points, point_commands(geometries[points])),
                           (~points, polygon_commands(geometries[~points]))):
        for i, command in zip(np.flatnonzero(which).tolist(), encoded, strict=True):
            commands[i] = command
    tags = feature_tags(message, layer.columns, rows)
    ids = np.asarray(layer.ids)[rows].tolist()
    for fid, is_point, feature_tag, geometry in zip(ids, points.tolist(), tags, commands, strict=True):
        feature = message.features.add()
        feature.id = fid
        feature.type = _POINT if is_point else _POLYGON
        feature.tags.extend(feature_tag)
        feature.geometry.extend(geometry)


def zigzag(values: np.ndarray) -> np.ndarray:
    """Signed integers as MVT parameter integers.

    >>> zigzag(np.array([0, -1, 1, -2, 2])).tolist()
    [0, 1, 2, 3, 4]
    """
    values = values.astype(np.int64)
    return ((values << 1) ^ (values >> 63)).astype(np.uint32)


def _command(command: int, count: int | np.ndarray) -> int | np.ndarray:
    """A command integer: the command id and how many times it repeats."""
    return (np.asarray(count, dtype=np.int64) << 3) | command


def point_commands(points: np.ndarray) -> list[list[int]]:
    """The geometry of each point feature: one MoveTo from the tile origin.

    >>> from shapely.geometry import Point
    >>> point_commands(np.array([Point(2, 3), Point(0, -1)]))
    [[9, 4, 6], [9, 0, 1]]
    """
    if not len(points):
        return []
    xy = zigzag(shapely.get_coordinates(points))
    moves = np.full((len(points), 1), _command(_MOVE_TO, 1), dtype=np.uint32)
    return np.hstack([moves, xy]).tolist()


def polygon_commands(polygons: np.ndarray) -> list[list[int]]:
    """The geometry of each (multi)polygon feature, from valid, MVT-wound, integer-grid geometries.

    Each ring becomes MoveTo, LineTo and ClosePath; its closing vertex and any vertex repeating the
    previous one (left by rounding) are dropped, and the cursor carries over from ring to ring.

    >>> from shapely.geometry import Polygon
    >>> polygon_commands(np.array([Polygon([(0, 0), (0, 2), (0, 2), (2, 0), (0, 0)])]))
    [[9, 0, 0, 18, 0, 4, 4, 3, 15]]
    """
    if not len(polygons):
        return []
    parts, part_feature = shapely.get_parts(polygons, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    ring_feature = part_feature[ring_part]
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    keep = _distinct_vertices(coords, coord_ring)
    coords, coord_ring = coords[keep].astype(np.int64), coord_ring[keep]
    vertices = np.bincount(coord_ring, minlength=len(rings))
    deltas = np.diff(coords, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
    starts = np.cumsum(vertices) - vertices
    feature_start = _changes(ring_feature)
    first = starts[feature_start & (vertices > 0)]
    deltas[first] = coords[first]  # each feature starts from the tile origin
    sizes = 2 * vertices + 3  # MoveTo x y, LineTo, (x y) per other vertex, ClosePath
    out_start = np.cumsum(sizes) - sizes
    out = np.empty(int(sizes.sum()), dtype=np.uint32)
    out[out_start] = _command(_MOVE_TO, 1)
    out[out_start + 3] = _command(_LINE_TO, vertices - 1)
    out[out_start + sizes - 1] = _command(_CLOSE_PATH, 1)
    within = np.arange(len(coords)) - np.repeat(starts, vertices)
    at = np.repeat(out_start, vertices) + 1 + 2 * within + (within > 0)
    encoded = zigzag(deltas)
    out[at], out[at + 1] = encoded[:, 0], encoded[:, 1]
    ends = np.cumsum(sizes)
    rings_per_feature = np.bincount(ring_feature, minlength=len(polygons))
    last_ring = np.cumsum(rings_per_feature) - 1
    stops = ends[last_ring].tolist()
    begins = [0, *stops[:-1]]
    return [out[a:b].tolist() for a, b in zip(begins, stops, strict=True)]


def _distinct_vertices(coords: np.ndarray, coord_ring: np.ndarray) -> np.ndarray:
    """Which vertices a ring keeps: not the closing one, none equal to the one before or to the first."""
    ring_start = _changes(coord_ring)
    ring_end = np.append(ring_start[1:], True)
    first = np.flatnonzero(ring_start)
    first_of_ring = coords[np.repeat(first, np.diff(first, append=len(coords)))]
    repeated = np.insert((coords[1:] == coords[:-1]).all(axis=1), 0, False) & ~ring_start
    back_to_first = (coords == first_of_ring).all(axis=1) & ~ring_start
    return ~ring_end & ~repeated & ~back_to_first


def _changes(values: np.ndarray) -> np.ndarray:
    """Where a run of equal values starts (numpy's `r_` costs more than the rest on small tiles).

    >>> _changes(np.array([4, 4, 5, 4])).tolist()
    [True, False, True, True]
    """
    starts = np.empty(len(values), dtype=bool)
    starts[:1] = True
    np.not_equal(values[1:], values[:-1], out=starts[1:])
    return starts


def feature_tags(message: Any, columns: Mapping[str, Sequence[Any]], rows: np.ndarray) -> list[list[int]]:
    """The tags of the features of `rows` (ascending), filling the layer's keys and values tables.

    Each column's distinct values are found at once, then looked up in the layer's values table,
    shared by every column. Columns with few distinct values go first, so their values get the
    small indexes that take one byte in every feature using them. Plain Python lists: most tiles
    hold a few features, where numpy's cost per call was most of a tile's encoding time.
    """
    prepared = []
    for name, column in columns.items():
        values = np.asarray(column, dtype=object)[rows].tolist()
        present = [i for i, v in enumerate(values) if v is not None and v == v]  # v != v: NaN
        if present:
            distinct, inverse = distinct_values([values[i] for i in present])
            prepared.append((len(distinct), name, present, distinct, inverse))
    prepared.sort(key=lambda p: p[0])
    table: dict[tuple[type, Any], int] = {}  # 1, 1.0 and True are equal in Python, not in a tile
    tags: list[list[int]] = [[] for _ in range(len(rows))]
    for _, name, present, distinct, inverse in prepared:
        key = len(message.keys)
        message.keys.append(name)
        indexes = [_value_index(message, table, value) for value in distinct]
        for row, which in zip(present, inverse, strict=True):
            tags[row] += (key, indexes[which])
    return tags


def _value_index(message: Any, table: dict[tuple[type, Any], int], value: Any) -> int:
    """The index of a value in the layer's values table, added to it when new."""
    index = table.setdefault((type(value), value), len(table))
    if index == len(message.values):
        _set_value(message.values.add(), value)
    return index


def distinct_values(values: list[Any]) -> tuple[list[Any], list[int]]:
    """The distinct values of a column and the index of each value among them.

    Values of one type come sorted; values of different types stay apart, in order of appearance,
    since 1, 1.0 and True are equal in Python but not in a tile.

    >>> distinct_values(["b", "a", "b"])
    (['a', 'b'], [1, 0, 1])
    >>> distinct_values([1, True, 1.0, 1])
    ([1, True, 1.0], [0, 1, 2, 0])
    """
    if len({type(v) for v in values}) == 1:
        distinct = sorted(set(values))
        position = {v: i for i, v in enumerate(distinct)}
        return distinct, [position[v] for v in values]
    index: dict[tuple[type, Any], int] = {}
    inverse = [index.setdefault((type(v), v), len(index)) for v in values]
    return [v for _, v in index], inverse


def _set_value(message: Any, value: Any) -> None:
    """Write one property value with the MVT type that fits it."""
    if isinstance(value, bool):
        message.bool_value = value
    elif isinstance(value, int):
        if value < 0:
            message.sint_value = value
        else:
            message.uint_value = value
    elif isinstance(value, float):
        message.double_value = value
    elif isinstance(value, str):
        message.string_value = value
    else:
        raise TypeError(f"cannot encode a {type(value).__name__} property in a vector tile")
