"""Write a `Dataset` as one version schema, so serving SQL only selects from ready, indexed tables.

Physical schema (write SQL against this; `<id>` is a version id such as `20250101T120000123456`):

`ecarto.versions` — one row per published version
    id text PRIMARY KEY, created timestamptz, report jsonb (the ingest report), meta jsonb (below),
    current boolean (exactly one row is true: that version is served)

`"ecarto_v<id>"` — one schema per version. The name has an upper-case `T`: always quote it
(`sql.Identifier(snapshot.schema, table)`). Every table below lives in it.

`<collection>` (etablissements, regions, academies, departements, epci, communes)
    fid        serial PRIMARY KEY       insertion order = the order of `Layer.ids`
    <field>    one column per `Layer.fields`, in that order, named by `Field.name`:
               string -> text COLLATE "C", integer -> bigint, number -> double precision,
               boolean -> boolean; NULL = unknown
    <key>      text COLLATE "C", only when the key (`uai`, `code`) is not among the fields;
               either way the key column holds `Layer.ids` and has a UNIQUE index
    <name>_folded text COLLATE "C", per searchable field (`Layer.searchable`, e.g. `nom`): its
               `textfold.search_key`, with a pg_trgm GIN index (LIKE: equality, prefix, infix); and
               `<name>_casei`, `<name>_accenti`, `<name>_casei_accenti` (`textfold.STORED_FOLDS`);
               not properties (the APIs never show them). A B-tree in text search order: (size DESC NULLS
               LAST, first folded column, key), size being `dataset.size_property` when there is one
    geom       geometry(Point|MultiPolygon, 4326)   GiST
    geom3857   geometry(Point|MultiPolygon, 3857)   GENERATED ALWAYS AS (ST_Transform(geom, 3857))
                                                    STORED; GiST

`<collection>_generalised` — only when `meta.collections[].generalised` is non-empty
    <key>      text COLLATE "C"         joins `<collection>.<key>`
    minzoom    integer, maxzoom integer the zoom range (inclusive) this row serves
    geom       geometry(MultiPolygon, 3857)         GiST; no row where the level lost the shape

`clusters` — one row per group of `Dataset.clusters`, one column per `Clusters.columns`, in order:
    z, cx, cy, type, statut, n, sx, sy, <indicator>_sum, <indicator>_n  (numpy integer -> bigint,
    float -> double precision, bool -> boolean, text -> text COLLATE "C"); btree (z, cx, cy)

`meta` (in `ecarto.versions.meta`):
    {"catalogue": [...], "cluster_maxzoom": int, "cluster_cells": int, "cluster_sums": [ids],
     "summaries": {level: {code: what its sheet compares}},
     "rasters": {id: {..., "path": absolute path of the copied file}},
     "collections": [{"id", "title", "description", "geometry_type", "key",
                      "fields": [{"name", "type", "title", "unit", "theme", "description"}],
                      "count", "extent": [west, south, east, north], "minzoom", "maxzoom",
                      "generalised": [[minzoom, maxzoom], ...]}]}
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from itertools import repeat
from pathlib import Path

import numpy as np
import psycopg
import shapely
from psycopg import sql
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.types import TypeInfo

from tileserver.core.dataset import Clusters, Dataset, FieldType, Layer, folded_column, size_property
from tileserver.core.store import collection_meta

COLUMN_TYPES = {
    "string": 'text COLLATE "C"',  # byte order, like SQLite: both stores sort strings alike
    "integer": "bigint",
    "number": "double precision",
    "boolean": "boolean",
}
COPY_TYPES = {"string": "text", "integer": "int8", "number": "float8", "boolean": "bool"}


def write_version(conn: psycopg.Connection, schema: str, dataset: Dataset) -> dict:
    """Create the version schema with every table and index; return its metadata (no rasters yet)."""
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    _register_geometry(conn)
    collections = [_write_layer(conn, schema, layer) for layer in dataset.layers.values()]
    _write_clusters(conn, schema, dataset.clusters)
    return {
        "catalogue": dataset.catalogue,
        "summaries": dataset.summaries,
        "cluster_maxzoom": dataset.cluster_maxzoom,
        "cluster_cells": dataset.cluster_cells,
        "cluster_sums": list(dataset.clusters.sums),
        "collections": collections,
    }


def copy_rasters(rasters: dict[str, dict], folder: Path) -> dict[str, dict]:
    """Copy each raster into the version's folder; return the metadata pointing at the copies."""
    published = {}
    for raster_id, meta in rasters.items():
        folder.mkdir(parents=True, exist_ok=True)
        target = (folder / f"{raster_id}.tif").resolve()
        shutil.copyfile(meta["path"], target)
        published[raster_id] = {**meta, "path": str(target)}
    return published


class _EWKBDumper(Dumper):
    """Pass EWKB bytes through untouched in binary COPY (the oid is set per connection)."""

    format = Format.BINARY

    def dump(self, obj: bytes) -> bytes:
        return obj


def _register_geometry(conn: psycopg.Connection) -> None:
    """Teach this connection's binary COPY to send EWKB bytes as `geometry`."""
    info = TypeInfo.fetch(conn, "geometry")
    info.register(conn)
    conn.adapters.register_dumper(None, type("GeometryEWKBDumper", (_EWKBDumper,), {"oid": info.oid}))


def _write_layer(conn: psycopg.Connection, schema: str, layer: Layer) -> dict:
    """One collection table, loaded, indexed and analysed; its description for the metadata."""
    table = sql.Identifier(schema, layer.id)
    hidden = layer.hidden_texts()
    columns = _columns(layer, hidden)
    conn.execute(
        sql.SQL(
            "CREATE TABLE {table} (fid serial PRIMARY KEY, {definitions}, geom geometry({kind}, 4326),"
            " geom3857 geometry({kind}, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED)"
        ).format(table=table, definitions=_definitions(columns), kind=sql.SQL(layer.geometry_type))
    )
    geometries = _as_declared(layer.geometries, layer.geometry_type)
    values = [hidden[name] if name in hidden else _values(layer, name, kind) for name, kind in columns]
    names = [name for name, _ in columns]
    types = [COPY_TYPES[kind] for _, kind in columns]
    rows = zip(*values, _ewkb(geometries, 4326), strict=True)
    _copy(conn, table, [*names, "geom"], [*types, "geometry"], rows)
    _index_search(conn, table, layer)
    _index(conn, table, ["geom", "geom3857"], unique=layer.key)
    if layer.generalised:
        _write_generalised(conn, schema, layer)
    return collection_meta(layer, shapely.total_bounds(geometries))


def _index_search(conn: psycopg.Connection, table: sql.Identifier, layer: Layer) -> None:
    """A trigram index per folded column, and a B-tree in text search order (size, first folded name, key).

    The B-tree lets a prefix shared by thousands of names ('saint') be answered by walking the rows
    largest first until enough match, rather than sorting them all.
    """
    folded = [sql.Identifier(folded_column(name)) for name in layer.searchable()]
    for column in folded:
        conn.execute(sql.SQL("CREATE INDEX ON {} USING gin ({} gin_trgm_ops)").format(table, column))
    if folded:
        size = size_property(layer.fields)
        order = [sql.SQL("{} DESC NULLS LAST").format(sql.Identifier(size))] if size else []
        order += [folded[0], sql.Identifier(layer.key)]
        conn.execute(sql.SQL("CREATE INDEX ON {} ({})").format(table, sql.SQL(", ").join(order)))


def _columns(layer: Layer, hidden: Iterable[str]) -> list[tuple[str, FieldType]]:
    """(name, type) of each attribute column: the fields, the key if it is not one of them, the hidden texts."""
    columns = [(f.name, f.type) for f in layer.fields]
    if layer.key not in {name for name, _ in columns}:
        columns.append((layer.key, "string"))
    columns += [(name, "string") for name in hidden]
    return columns


def _write_generalised(conn: psycopg.Connection, schema: str, layer: Layer) -> None:
    """The per-zoom simplified shapes of a territory layer, in EPSG:3857."""
    table = sql.Identifier(schema, f"{layer.id}_generalised")
    conn.execute(
        sql.SQL(
            'CREATE TABLE {} ({} text COLLATE "C" NOT NULL, minzoom integer NOT NULL,'
            " maxzoom integer NOT NULL, geom geometry(MultiPolygon, 3857) NOT NULL)"
        ).format(table, sql.Identifier(layer.key))
    )
    ids = np.asarray(layer.ids, dtype=object)
    rows = []
    for level in layer.generalised:
        geometries = _as_declared(level.geometries, "MultiPolygon")
        kept = ~shapely.is_missing(geometries) & ~shapely.is_empty(geometries)
        wkbs = _ewkb(geometries[kept], 3857)
        rows.extend(zip(ids[kept].tolist(), repeat(level.minzoom), repeat(level.maxzoom), wkbs, strict=False))
    _copy(conn, table, [layer.key, "minzoom", "maxzoom", "geom"], ["text", "int4", "int4", "geometry"], rows)
    _index(conn, table, ["geom"])


def _write_clusters(conn: psycopg.Connection, schema: str, clusters: Clusters) -> None:
    """The school clusters, one column per `Clusters.columns`, found by (z, cx, cy)."""
    table = sql.Identifier(schema, "clusters")
    kinds = {name: _numpy_kind(values) for name, values in clusters.columns.items()}
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(table, _definitions(kinds.items())))
    rows = zip(*(np.asarray(values).tolist() for values in clusters.columns.values()), strict=True)
    _copy(conn, table, list(kinds), [COPY_TYPES[k] for k in kinds.values()], rows)
    conn.execute(sql.SQL("CREATE INDEX ON {} (z, cx, cy)").format(table))
    conn.execute(sql.SQL("ANALYZE {}").format(table))


def _definitions(columns: Iterable[tuple[str, FieldType]]) -> sql.Composed:
    """Column definitions `name type, ...` for CREATE TABLE."""
    return sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(COLUMN_TYPES[kind])) for name, kind in columns
    )


def _copy(
    conn: psycopg.Connection, table: sql.Identifier, names: Sequence[str], types: Sequence[str],
    rows: Iterable[Sequence],
) -> None:
    """Bulk-load rows with binary COPY (geometry values are EWKB bytes)."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        table, sql.SQL(", ").join(map(sql.Identifier, names))
    )
    with conn.cursor() as cur, cur.copy(statement) as copy:
        copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)


def _index(conn: psycopg.Connection, table: sql.Identifier, spatial: Sequence[str], unique: str = "") -> None:
    """GiST indexes on the geometry columns, a unique index on the key, then fresh statistics."""
    for column in spatial:
        conn.execute(sql.SQL("CREATE INDEX ON {} USING gist ({})").format(table, sql.Identifier(column)))
    if unique:
        conn.execute(sql.SQL("CREATE UNIQUE INDEX ON {} ({})").format(table, sql.Identifier(unique)))
    conn.execute(sql.SQL("ANALYZE {}").format(table))


def _values(layer: Layer, name: str, kind: FieldType) -> list:
    """A column's values as plain Python values of its type; NaN and None become NULL."""
    raw = layer.ids if name == layer.key else layer.columns[name]
    convert = {"string": str, "integer": int, "number": float, "boolean": bool}[kind]
    return [None if v is None or v != v else convert(v) for v in raw]


def _as_declared(geometries: Sequence, geometry_type: str) -> np.ndarray:
    """The geometries with single polygons wrapped as multipolygons, to fit a MultiPolygon column."""
    geometries = np.asarray(geometries, dtype=object)
    if geometry_type != "MultiPolygon":
        return geometries
    polygons = np.flatnonzero(shapely.get_type_id(geometries) == shapely.GeometryType.POLYGON)
    if len(polygons):
        geometries = geometries.copy()
        geometries[polygons] = shapely.multipolygons(geometries[polygons], indices=np.arange(len(polygons)))
    return geometries


def _ewkb(geometries: np.ndarray, srid: int) -> list[bytes | None]:
    """EWKB bytes carrying the SRID the column expects (None stays None)."""
    return list(shapely.to_wkb(shapely.set_srid(geometries, srid), include_srid=True))



def _numpy_kind(values: np.ndarray) -> FieldType:
    """The field type holding a numpy column (object and unicode columns hold text)."""
    kind = np.asarray(values).dtype.kind
    return {"i": "integer", "u": "integer", "f": "number", "b": "boolean"}.get(kind, "string")
