"""Vector tiles from a version file: select with the indexes `publish` built, encode with `tileserver.core.mvt`.

Schools are picked by the R-tree in lon/lat, then kept when their EPSG:3857 position (`x3857`,
`y3857`) falls in the tile by the rule of `grid.tile_at` (a school on an edge belongs to the tile
east or south of it), so every school is in exactly one tile. Clusters are the
`clusters` rows of the tile's cells, added up per cell after the filters. Territories come from the
(zoom, x, y) R-tree of `<layer>_generalised`, already in EPSG:3857.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import numpy as np
import shapely

from tileserver.core import mvt, tilecontent
from tileserver.core.dataset import COUNTED_TYPES
from tileserver.core.grid import Bounds, Tile, tile_bbox, tile_bounds, tile_size
from tileserver.core.mercator import ORIGIN, array_to_mercator, to_lnglat
from tileserver.core.store import CollectionInfo, TileFilter
from tileserver.core.stores.geopackage import geometry
from tileserver.core.stores.geopackage.container import quote, rtree_name
from tileserver.core.tilecontent import Content, LayerPlan

_EPSILON = 1e-9  # degrees added around a tile's lon/lat box: the R-tree is only a prefilter


def encode_tile(
    conn: sqlite3.Connection,
    infos: Sequence[CollectionInfo],
    meta: dict,
    tile: Tile,
    filters: TileFilter,
) -> bytes:
    """One vector tile holding the layers of `infos` (b'' when empty)."""
    bounds = tile_bounds(tile)
    layers = []
    for info in infos:
        layer_plan = tilecontent.plan(info, tile.z, meta["cluster_maxzoom"])
        if layer_plan is not None:
            layers.append(_read_layer(conn, layer_plan, tile, bounds, meta, filters))
    return mvt.encode(bounds, layers)


def _read_layer(
    conn: sqlite3.Connection, layer_plan: LayerPlan, tile: Tile, bounds: Bounds, meta: dict, filters: TileFilter
) -> mvt.TileLayer:
    """The features of one layer of the tile."""
    info = layer_plan.info
    if layer_plan.content is Content.CLUSTERS and filters.territories:
        return _territory_clusters(conn, info, tile, meta["cluster_cells"], meta["cluster_sums"], filters)
    if layer_plan.content is Content.CLUSTERS:
        return _clusters(conn, info.id, tile, meta["cluster_cells"], meta["cluster_sums"], filters)
    if layer_plan.content is Content.POINTS:
        return _points(conn, info, tile, filters)
    if layer_plan.band is None:
        return _full_shapes(conn, info, bounds)
    return _generalised_shapes(conn, info, layer_plan.band.minzoom, tile.z, bounds)


def _clusters(
    conn: sqlite3.Connection, name: str, tile: Tile, cells: int, sums: Sequence[str], filters: TileFilter
) -> mvt.TileLayer:
    """One feature per cluster cell of the tile holding schools that pass the filters."""
    names = ["cx", "cy", "type", "statut", "n", "sx", "sy", *(f"{s}_{part}" for s in sums for part in ("sum", "n"))]
    w = tilecontent.cell_window(tile, cells)
    sql = (f"SELECT {', '.join(map(quote, names))} FROM clusters "
           "WHERE z = ? AND cx BETWEEN ? AND ? AND cy BETWEEN ? AND ?")
    rows = conn.execute(sql, (w.z, w.cx_min, w.cx_max, w.cy_min, w.cy_max)).fetchall()
    if not rows:
        return mvt.TileLayer(name, np.array([], dtype=object), [], {})
    columns = {n: np.array([r[i] for r in rows], dtype=object if n in ("type", "statut") else None)
               for i, n in enumerate(names)}
    table = tilecontent.aggregate(columns, tile.z, cells, sums, filters)
    return mvt.TileLayer(name, shapely.points(table.x, table.y), table.ids, table.columns)


def _points(conn: sqlite3.Connection, info: CollectionInfo, tile: Tile, filters: TileFilter) -> mvt.TileLayer:
    """The single schools of the tile that pass the filters, with every property."""
    rows = _schools_of_tile(conn, info, tile, filters, _selected(info))
    xy = np.array([(r[1], r[2]) for r in rows], dtype=float).reshape(-1, 2)
    return _layer(info, shapely.points(xy), rows, first_property=3)


def _territory_clusters(conn: sqlite3.Connection, info: CollectionInfo, tile: Tile, cells: int,
                        sums: Sequence[str], filters: TileFilter) -> mvt.TileLayer:
    """Clusters of the tile's schools in the filters' territories, made from the schools themselves."""
    columns = ["type", "statut", *sums]
    rows = _schools_of_tile(conn, info, tile, filters, ", ".join(map(quote, columns)))
    if not rows:
        return mvt.TileLayer(info.id, np.array([], dtype=object), [], {})
    x, y = (np.array([r[i] for r in rows], dtype=float) for i in (1, 2))
    kinds, statuts = (np.array([r[i] or "" for r in rows], dtype=object) for i in (3, 4))
    values = {s: np.array([np.nan if r[5 + i] is None else float(r[5 + i]) for r in rows]) for i, s in enumerate(sums)}
    table = tilecontent.aggregate(tilecontent.school_rows(x, y, kinds, statuts, values, tile.z, cells),
                                  tile.z, cells, sums, filters)
    return mvt.TileLayer(info.id, shapely.points(table.x, table.y), table.ids, table.columns)


def _schools_of_tile(conn: sqlite3.Connection, info: CollectionInfo, tile: Tile, filters: TileFilter,
                     selected: str) -> list[tuple]:
    """Rows (fid, x3857, y3857, `selected`...) of the schools in the tile that pass the filters."""
    box = tile_bbox(tile)
    size = tile_size(tile.z)
    # the tile holding a point is computed as `grid.tile_at` does: comparing with the tile's edges
    # would put a point on an edge in both tiles, as they are rounded differently on each side
    conditions = ["CAST((x3857 + ?) / ? AS INTEGER) = ?", "CAST((? - y3857) / ? AS INTEGER) = ?"]
    params: list = [box.east + _EPSILON, box.west - _EPSILON, box.north + _EPSILON, box.south - _EPSILON,
                    ORIGIN, size, tile.x, ORIGIN, size, tile.y]
    for column, allowed in (("type", filters.types), ("statut", filters.statuts)):
        if allowed:
            conditions.append(f"({quote(column)} IN ({', '.join('?' * len(allowed))}){_others(column, allowed)})")
            params.extend(allowed)
            if _others(column, allowed):
                params.extend(COUNTED_TYPES[:-1])
    for column, code in filters.territories:
        conditions.append(f"{quote(column)} = ?")
        params.append(code)
    rtree = quote(rtree_name(info.id, "geom"))
    sql = (
        f"SELECT fid, x3857, y3857, {selected} FROM {quote(info.id)} WHERE fid IN "
        f"(SELECT id FROM {rtree} WHERE minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?) "
        f"AND {' AND '.join(conditions)}"
    )
    return conn.execute(sql, params).fetchall()


def _generalised_shapes(conn: sqlite3.Connection, info: CollectionInfo, band: int, z: int,
                        bounds: Bounds) -> mvt.TileLayer:
    """The territories of the band (starting at zoom `band`) that reach the buffered tile."""
    left, bottom, right, top = _buffered(bounds)
    table = quote(f"{info.id}_generalised")
    rtree = quote(f"{info.id}_generalised_rtree")
    sql = (
        f"SELECT g.fid, g.wkb, {_selected(info, 't')} FROM {rtree} r JOIN {table} g ON g.id = r.id "
        f"JOIN {quote(info.id)} t ON t.fid = g.fid WHERE r.minzoom <= ? AND r.maxzoom >= ? "
        "AND r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ? AND g.minzoom = ?"
    )
    rows = conn.execute(sql, (z, z, right, left, top, bottom, band)).fetchall()
    return _layer(info, shapely.from_wkb([r[1] for r in rows]), rows, first_property=2)


def _full_shapes(conn: sqlite3.Connection, info: CollectionInfo, bounds: Bounds) -> mvt.TileLayer:
    """The territories reaching the buffered tile, at full resolution, projected now (no band covers z)."""
    left, bottom, right, top = _buffered(bounds)
    west, south = to_lnglat(max(left, -ORIGIN), bottom)
    east, north = to_lnglat(min(right, ORIGIN), top)
    rtree = quote(rtree_name(info.id, "geom"))
    sql = (
        f"SELECT fid, geom, {_selected(info)} FROM {quote(info.id)} WHERE fid IN "
        f"(SELECT id FROM {rtree} WHERE minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?)"
    )
    rows = conn.execute(sql, (east, west, north, south)).fetchall()
    shapes = np.array([geometry.decode(r[1]) for r in rows], dtype=object)
    return _layer(info, shapely.transform(shapes, array_to_mercator), rows, first_property=2)


def _layer(info: CollectionInfo, geometries: np.ndarray, rows: list[tuple], first_property: int) -> mvt.TileLayer:
    """A tile layer from rows of (fid, geometry columns..., one column per field)."""
    columns = {}
    for offset, field in enumerate(info.fields):
        values = [r[first_property + offset] for r in rows]
        if field.type == "boolean":
            values = [None if v is None else bool(v) for v in values]
        columns[field.name] = values
    return mvt.TileLayer(info.id, geometries, [r[0] for r in rows], columns)


def _selected(info: CollectionInfo, alias: str = "") -> str:
    """The field columns of a feature table, in field order."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + quote(f.name) for f in info.fields)


def _buffered(bounds: Bounds) -> Bounds:
    """The tile's box grown by the MVT buffer."""
    margin = (bounds.right - bounds.left) * mvt.BUFFER / mvt.EXTENT
    return Bounds(bounds.left - margin, bounds.bottom - margin, bounds.right + margin, bounds.top + margin)


def _others(column: str, allowed: tuple[str, ...]) -> str:
    """`autre` in a type filter stands for every type not counted on its own (as on clusters)."""
    if column != "type" or tilecontent.OTHER_TYPE not in allowed:
        return ""
    return f" OR {quote(column)} NOT IN ({', '.join('?' * (len(COUNTED_TYPES) - 1))})"
