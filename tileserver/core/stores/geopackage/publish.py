"""Write one data version as a GeoPackage 1.3 file; the physical schema below is what readers rely on.

Every table is registered in `gpkg_contents` (feature tables as 'features', the others as
'attributes'), so GDAL and QGIS open the file without a warning. A file is written once and never
changed, so the R-trees are filled directly and secondary indexes are built after the inserts.

Feature tables, one per `Layer`, named by `Layer.id` (`etablissements`, `communes`, ...)::

    fid    INTEGER PRIMARY KEY   position in Layer.ids + 1
    geom   POINT | MULTIPOLYGON  GeoPackage blob (header + envelope + little-endian WKB), EPSG:4326
    <field> TEXT | INTEGER | REAL | BOOLEAN   one per Layer.fields, in order (booleans as 0/1)
    <key>  TEXT                  only when the key (`uai`, `code`) is not among the fields
    x3857, y3857 REAL            Point layers only: the position in EPSG:3857 metres
    <name>_folded TEXT           per searchable field (`Layer.searchable`, e.g. `nom`): its
                                 `textfold.search_key`; and `<name>_casei`, `<name>_accenti`,
                                 `<name>_casei_accenti` (`textfold.STORED_FOLDS`); not properties
    index  "<layer>_key" UNIQUE on the key column; "<layer>_<name>_folded" on each folded column;
           "<layer>_search_order" on (size DESC, first folded column, key), size being
           `dataset.size_property` when there is one (analysed: `sqlite_stat1`)
    rtree_<layer>_geom           R-tree (id = fid, minx, maxx, miny, maxy) in lon/lat
    <layer>_search               FTS5 table (trigram tokenizer, case-sensitive; rowid = fid) holding
                                 the folded columns again: `MATCH '<name>_folded : "text"'` finds the
                                 rows whose folded text contains `text` (3+ characters), from the index

Mercator is separable and monotonic, so a tile's `tile_bbox` selects exactly the points of the tile
from `rtree_<layer>_geom`; their `x3857, y3857` need no reprojection.

`<layer>_generalised`, for layers with `Layer.generalised` levels, one row per feature and level
(features that vanished at a level have no row)::

    id        INTEGER PRIMARY KEY
    fid       INTEGER  the feature's fid in <layer>
    minzoom, maxzoom INTEGER  zoom range of the level
    minx, miny, maxx, maxy REAL  bounds in EPSG:3857
    wkb       BLOB     plain little-endian WKB, EPSG:3857

`<layer>_generalised_rtree` indexes it in three dimensions (zoom, x, y), so one lookup finds the
rows of a tile whatever the number of levels (R-tree bounds are float32 rounded outwards, a
prefilter; clip or test with the exact columns)::

    SELECT g.fid, g.wkb FROM "<layer>_generalised_rtree" r JOIN "<layer>_generalised" g ON g.id = r.id
    WHERE r.minzoom <= :z AND r.maxzoom >= :z AND r.minx <= :right AND r.maxx >= :left
      AND r.miny <= :top AND r.maxy >= :bottom

`clusters`: `id INTEGER PRIMARY KEY`, then every column of `Clusters.columns` in order (`z`, `cx`,
`cy`, `type`, `statut`, `n`, `sx`, `sy`, `<indicator>_sum`, `<indicator>_n`), INTEGER, REAL,
BOOLEAN or TEXT after its numpy dtype; index `clusters_z_cx_cy` on (z, cx, cy).

`ecarto_meta` (`id INTEGER PRIMARY KEY, key TEXT UNIQUE, value TEXT` holding JSON), keys:
`version` (this file's version id), `catalogue`, `cluster_maxzoom`, `cluster_cells`, `cluster_sums`
(indicator ids with `_sum`/`_n` columns), `rasters` (raster id -> metadata, `path` absolute) and
`collections`: a list of `{id, title, description, geometry_type, key, fields: [{name, type, title,
unit, theme, description}], count, extent: [west, south, east, north], minzoom, maxzoom,
generalised: [[minzoom, maxzoom], ...]}`.

`ecarto_versions` (`fid INTEGER PRIMARY KEY, id TEXT UNIQUE, created TEXT, report TEXT` holding
JSON): this version and every earlier one, copied from the file it replaces.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from itertools import repeat

import numpy as np
import shapely
from shapely.geometry import MultiPolygon

from tileserver.core.dataset import Clusters, Dataset, FieldType, Layer, folded_column, size_property
from tileserver.core.errors import IngestError
from tileserver.core.mercator import to_mercator
from tileserver.core.store import VersionInfo, collection_meta
from tileserver.core.stores.geopackage import container, geometry
from tileserver.core.stores.geopackage.container import quote, search_table

SQL_TYPES: dict[FieldType, str] = {"string": "TEXT", "integer": "INTEGER", "number": "REAL", "boolean": "BOOLEAN"}
_CONVERT = {"string": str, "integer": int, "number": float, "boolean": lambda v: int(bool(v))}
_RESERVED = {"fid", "geom"}

# The file is a scratch copy until os.replace: nothing to journal, and one fsync at the end.
_WRITE_PRAGMAS = (
    "PRAGMA journal_mode = OFF",
    "PRAGMA synchronous = OFF",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA cache_size = -262144",
)

History = Sequence[tuple[str, str, str]]  # (id, created, report JSON) of earlier versions


def write_version(
    path: str, dataset: Dataset, version: VersionInfo, history: History, rasters: dict[str, dict]
) -> None:
    """Write the whole version into a new file at `path`, in one transaction."""
    stamp = gpkg_timestamp(version.created)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in _WRITE_PRAGMAS:
            conn.execute(pragma)
        conn.execute("BEGIN")
        container.create_core(conn)
        collections = [write_layer(conn, layer, stamp) for layer in dataset.layers.values()]
        write_clusters(conn, dataset.clusters, stamp)
        meta = {
            "version": version.id,
            "catalogue": dataset.catalogue,
            "summaries": dataset.summaries,
            "cluster_maxzoom": dataset.cluster_maxzoom,
            "cluster_cells": dataset.cluster_cells,
            "cluster_sums": dataset.clusters.sums,
            "rasters": rasters,
            "collections": collections,
        }
        write_meta(conn, meta, stamp)
        write_versions(conn, version, history, stamp)
        conn.execute("COMMIT")
    finally:
        conn.close()


def gpkg_timestamp(created: str) -> str:
    """The `last_change` form GeoPackage requires (milliseconds, Z) of an ISO timestamp.

    >>> gpkg_timestamp("2026-05-09T07:35:25.123456Z")
    '2026-05-09T07:35:25.123Z'
    """
    moment = datetime.fromisoformat(created)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def write_layer(conn: sqlite3.Connection, layer: Layer, stamp: str) -> dict:
    """Write one feature table with its spatial index; return its entry of `collections`."""
    geoms = _geometries(layer)
    columns = _columns(layer, geoms)
    table = quote(layer.id)
    definitions = ", ".join(f"{quote(name)} {kind}" for name, kind, _ in columns)
    geometry_type = layer.geometry_type.upper()
    conn.execute(f"CREATE TABLE {table} (fid INTEGER PRIMARY KEY, geom {geometry_type}, {definitions})")
    names = ", ".join(quote(name) for name, _, _ in columns)
    marks = ", ".join("?" * (len(columns) + 2))
    rows = zip(
        range(1, len(layer) + 1), geometry.encode(geoms, container.GEOGRAPHIC), *(v for *_, v in columns), strict=True
    )
    conn.executemany(f"INSERT INTO {table} (fid, geom, {names}) VALUES ({marks})", rows)
    conn.execute(f"CREATE UNIQUE INDEX {quote(layer.id + '_key')} ON {table} ({quote(layer.key)})")
    write_search(conn, layer)
    bounds = shapely.bounds(geoms)
    container.create_rtree(conn, layer.id, _rtree_rows(bounds))
    meta = collection_meta(layer, shapely.total_bounds(geoms))
    container.register_features(
        conn, layer.id, geometry_type=geometry_type, extent=tuple(meta["extent"]), description=layer.title,
        stamp=stamp,
    )
    if layer.generalised:
        write_generalised(conn, layer, stamp)
    return meta


def _geometries(layer: Layer) -> np.ndarray:
    """The layer's geometries, polygons promoted so a MultiPolygon column holds only MultiPolygons."""
    geoms = np.array(layer.geometries, dtype=object)
    if len(geoms) != len(layer):
        raise IngestError(f"layer {layer.id}: {len(geoms)} geometries for {len(layer)} features")
    if layer.geometry_type == "MultiPolygon":
        polygons = np.flatnonzero(shapely.get_type_id(geoms) == shapely.GeometryType.POLYGON)
        for i in polygons:
            geoms[i] = MultiPolygon([geoms[i]])
    return geoms


def _columns(layer: Layer, geoms: np.ndarray) -> list[tuple[str, str, list]]:
    """(name, SQL type, values) of every attribute column of a feature table."""
    columns = [(f.name, SQL_TYPES[f.type], _sql_values(layer, f.name, f.type)) for f in layer.fields]
    if layer.key not in {f.name for f in layer.fields}:
        columns.append((layer.key, "TEXT", list(layer.ids)))
    columns += [(name, "TEXT", values) for name, values in layer.hidden_texts().items()]
    if layer.geometry_type == "Point":
        xy = [to_mercator(x, y) if x == x else (None, None) for x, y in zip(
            shapely.get_x(geoms).tolist(), shapely.get_y(geoms).tolist(), strict=True
        )]
        columns += [("x3857", "REAL", [p[0] for p in xy]), ("y3857", "REAL", [p[1] for p in xy])]
    names = [name.lower() for name, _, _ in columns]
    clashes = sorted({n for n in names if names.count(n) > 1} | (_RESERVED & set(names)))
    if clashes:
        raise IngestError(f"layer {layer.id}: column names clash: {', '.join(clashes)}")
    return columns


def _sql_values(layer: Layer, name: str, kind: FieldType) -> list:
    """A field's values as SQLite stores them (None for missing, NaN included); the key's are the ids."""
    values = layer.ids if name == layer.key else layer.columns.get(name)
    if values is None or len(values) != len(layer):
        raise IngestError(f"layer {layer.id}: field {name} has no value per feature")
    convert = _CONVERT[kind]
    return [None if v is None or v != v else convert(v) for v in values]


def write_search(conn: sqlite3.Connection, layer: Layer) -> None:
    """Index the folded columns: a B-tree each (equality, prefix), one in search order, a trigram table (infix).

    The search order index (size, first folded name, key) is analysed, so that SQLite walks it
    largest first for a prefix thousands of names share ('saint') rather than sorting them all.
    """
    names = [folded_column(name) for name in layer.searchable()]
    if not names:
        return
    table = quote(layer.id)
    for name in names:
        conn.execute(f"CREATE INDEX {quote(f'{layer.id}_{name}')} ON {table} ({quote(name)})")
    size = size_property(layer.fields)
    order = quote(f"{layer.id}_search_order")
    ordered = [*([f"{quote(size)} DESC"] if size else []), quote(names[0]), quote(layer.key)]
    conn.execute(f"CREATE INDEX {order} ON {table} ({', '.join(ordered)})")
    conn.execute(f"ANALYZE {order}")
    search, columns = quote(search_table(layer.id)), ", ".join(map(quote, names))
    conn.execute(f"CREATE VIRTUAL TABLE {search} USING fts5({columns}, tokenize='trigram case_sensitive 1')")
    conn.execute(f"INSERT INTO {search} (rowid, {columns}) SELECT fid, {columns} FROM {table}")


def _rtree_rows(bounds: np.ndarray) -> zip:
    """(fid, minx, maxx, miny, maxy) of every feature with a non-empty geometry."""
    present = np.isfinite(bounds).all(axis=1)
    fids = np.flatnonzero(present) + 1
    return zip(fids.tolist(), *bounds[present][:, [0, 2, 1, 3]].T.tolist(), strict=True)


def write_generalised(conn: sqlite3.Connection, layer: Layer, stamp: str) -> None:
    """Write the per-zoom EPSG:3857 geometries of a layer and their (zoom, x, y) R-tree."""
    name = f"{layer.id}_generalised"
    table, rtree = quote(name), quote(f"{name}_rtree")
    conn.execute(
        f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, fid INTEGER NOT NULL, minzoom INTEGER NOT NULL, "
        "maxzoom INTEGER NOT NULL, minx REAL, miny REAL, maxx REAL, maxy REAL, wkb BLOB NOT NULL)"
    )
    insert = f"INSERT INTO {table} (fid, minzoom, maxzoom, minx, miny, maxx, maxy, wkb) VALUES (?,?,?,?,?,?,?,?)"
    for level in layer.generalised:
        geoms = np.asarray(level.geometries, dtype=object)
        if len(geoms) != len(layer):
            raise IngestError(f"layer {layer.id}: zooms {level.minzoom}-{level.maxzoom} misaligned with ids")
        kept = np.flatnonzero(~shapely.is_missing(geoms) & ~shapely.is_empty(geoms))
        bounds = shapely.bounds(geoms[kept]).T.tolist()
        wkbs = shapely.to_wkb(geoms[kept], byte_order=1, output_dimension=2).tolist()
        rows = zip((kept + 1).tolist(), repeat(level.minzoom), repeat(level.maxzoom), *bounds, wkbs)
        conn.executemany(insert, rows)
    conn.execute(f"CREATE VIRTUAL TABLE {rtree} USING rtree(id, minzoom, maxzoom, minx, maxx, miny, maxy)")
    conn.execute(f"INSERT INTO {rtree} SELECT id, minzoom, maxzoom, minx, maxx, miny, maxy FROM {table}")
    container.register_attributes(
        conn, name, description=f"{layer.title}: EPSG:3857 geometries per zoom range", stamp=stamp
    )
    container.register_extension(
        conn, name, "wkb", "ecarto_zoom_rtree", "tileserver/core/stores/geopackage/publish.py (module docstring)"
    )


def write_clusters(conn: sqlite3.Connection, clusters: Clusters, stamp: str) -> None:
    """Write the pre-aggregated school clusters, indexed for a tile's cell range."""
    arrays = {name: np.asarray(values) for name, values in clusters.columns.items()}
    definitions = ", ".join(f"{quote(name)} {_dtype_sql(a.dtype)}" for name, a in arrays.items())
    conn.execute(f"CREATE TABLE clusters (id INTEGER PRIMARY KEY, {definitions})")
    names = ", ".join(quote(name) for name in arrays)
    marks = ", ".join("?" * len(arrays))
    rows = zip(*(a.tolist() for a in arrays.values()), strict=True)
    conn.executemany(f"INSERT INTO clusters ({names}) VALUES ({marks})", rows)
    conn.execute("CREATE INDEX clusters_z_cx_cy ON clusters (z, cx, cy)")
    container.register_attributes(conn, "clusters", description="school clusters per zoom and cell", stamp=stamp)


def _dtype_sql(dtype: np.dtype) -> str:
    """The SQL type of a numpy column (strings and objects as TEXT)."""
    return {"b": "BOOLEAN", "i": "INTEGER", "u": "INTEGER", "f": "REAL"}.get(dtype.kind, "TEXT")


def write_meta(conn: sqlite3.Connection, meta: dict, stamp: str) -> None:
    """Write the version-wide metadata, one JSON value per key."""
    conn.execute("CREATE TABLE ecarto_meta (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, value TEXT NOT NULL)")
    rows = [(key, json.dumps(value, ensure_ascii=False)) for key, value in meta.items()]
    conn.executemany("INSERT INTO ecarto_meta (key, value) VALUES (?, ?)", rows)
    container.register_attributes(conn, "ecarto_meta", description="eCarto version metadata (JSON)", stamp=stamp)


def write_versions(conn: sqlite3.Connection, version: VersionInfo, history: History, stamp: str) -> None:
    """Write this version and the earlier ones with their ingest reports."""
    conn.execute(
        "CREATE TABLE ecarto_versions (fid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
        "created TEXT NOT NULL, report TEXT NOT NULL)"
    )
    rows = [*history, (version.id, version.created, json.dumps(version.report, ensure_ascii=False))]
    conn.executemany("INSERT INTO ecarto_versions (id, created, report) VALUES (?, ?, ?)", rows)
    container.register_attributes(
        conn, "ecarto_versions", description="published versions and their ingest reports", stamp=stamp
    )
