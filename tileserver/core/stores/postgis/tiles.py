"""Vector tiles encoded by PostGIS: one statement per tile, one `ST_AsMVT` per layer, joined with `||`.

Geometries are read in EPSG:3857 (`geom3857`, `<layer>_generalised.geom`) through their GiST
indexes and cut to the tile by `ST_AsMVTGeom`, which clips, snaps to the grid, fixes winding and
drops what collapsed. What each layer holds at a zoom comes from `tileserver.core.tilecontent`, and the
selection rules are those of the embedded store (a school belongs to the tile holding it with
edges going east and south; clusters add up the tile's cells), so both stores give the same tile.
Identifiers are composed with `psycopg.sql` and every value is a parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from psycopg import sql

from tileserver.core import mvt, tilecontent
from tileserver.core.dataset import COUNTED_TYPES
from tileserver.core.grid import Bounds, Tile, tile_bounds, tile_size
from tileserver.core.mercator import ORIGIN
from tileserver.core.store import CollectionInfo, TileFilter
from tileserver.core.stores.postgis.database import Database
from tileserver.core.tilecontent import Content, LayerPlan

_ENVELOPE = sql.SQL("ST_MakeEnvelope(%(left)s, %(bottom)s, %(right)s, %(top)s, 3857)")
_BUFFERED = sql.SQL("ST_MakeEnvelope(%(bleft)s, %(bbottom)s, %(bright)s, %(btop)s, 3857)")


def encode_tile(
    db: Database, schema: str, infos: Sequence[CollectionInfo], meta: dict, tile: Tile, filters: TileFilter
) -> bytes:
    """One vector tile holding the layers of `infos` (b'' when empty), in one round trip."""
    plans = [p for p in (tilecontent.plan(info, tile.z, meta["cluster_maxzoom"]) for info in infos) if p]
    if not plans:
        return b""
    filtered = bool(filters.types or filters.statuts)
    territories = tuple(column for column, _ in filters.territories)
    statement = _statement(schema, tuple(plans), tuple(meta["cluster_sums"]), filtered, territories)
    with db.connection() as conn, conn.cursor(binary=True) as cur:
        row = cur.execute(statement, _params(tile, meta["cluster_cells"], filters)).fetchone()
    return bytes(row[0])


@lru_cache(maxsize=512)
def _statement(schema: str, plans: tuple[LayerPlan, ...], sums: tuple[str, ...], filtered: bool,
               territories: tuple[str, ...] = ()) -> bytes:
    """A tile's SQL for these layers, composed once: at high zoom, composing cost more than the query.

    Without school filters (most requests) the statement has no filter clause, so neither the
    server tests them nor the client sends their values. `territories` names the code columns
    the schools are limited by (their codes are parameters).
    """
    layers = [_layer(schema, p, sums, filtered, territories) for p in plans]
    return sql.SQL("SELECT {}").format(sql.SQL(" || ").join(layers)).as_bytes(None)


def _params(tile: Tile, cells: int, filters: TileFilter) -> dict:
    """The values every layer's SQL may refer to."""
    b = tile_bounds(tile)
    margin = (b.right - b.left) * mvt.BUFFER / mvt.EXTENT
    w = tilecontent.cell_window(tile, cells)
    return {
        **b._asdict(),
        **{f"b{k}": v for k, v in Bounds(b.left - margin, b.bottom - margin, b.right + margin, b.top + margin)
           ._asdict().items()},
        "z": tile.z, "x": tile.x, "y": tile.y, "origin": ORIGIN, "size": tile_size(tile.z),
        "cx_min": w.cx_min, "cx_max": w.cx_max, "cy_min": w.cy_min, "cy_max": w.cy_max,
        "side": tilecontent.grid_side(tile.z, cells),
        "types": list(filters.types), "statuts": list(filters.statuts),
        "any_type": not filters.types, "any_statut": not filters.statuts,
        "other_types": tilecontent.OTHER_TYPE in filters.types, "counted": list(COUNTED_TYPES[:-1]),
        "cell_size": tile_size(tile.z) / cells, **dict(filters.territories),
    }


def _layer(schema: str, layer_plan: LayerPlan, sums: Sequence[str], filtered: bool,
           territories: tuple[str, ...]) -> sql.Composable:
    """`ST_AsMVT` of one layer's features, '' when it has none."""
    info = layer_plan.info
    if layer_plan.content is Content.CLUSTERS and territories:
        rows = _territory_clusters(schema, info, sums, filtered, territories)
    elif layer_plan.content is Content.CLUSTERS:
        rows = _clusters(schema, sums, filtered)
    elif layer_plan.content is Content.POINTS:
        rows = _points(schema, info, filtered, territories)
    else:
        rows = _shapes(schema, info, layer_plan.band.minzoom if layer_plan.band else None)
    # OFFSET 0 keeps the planner from pushing `geom IS NOT NULL` into the scan, where it would run
    # ST_AsMVTGeom a second time for every row (it costs more than the rest of the layer together)
    return sql.SQL(
        "COALESCE((SELECT ST_AsMVT(q, {name}, {extent}, 'geom', 'fid') FROM ({rows} OFFSET 0) q"
        " WHERE q.geom IS NOT NULL), ''::bytea)"
    ).format(name=sql.Literal(info.id), extent=sql.Literal(mvt.EXTENT), rows=rows)


def _clusters(schema: str, sums: Sequence[str], filtered: bool) -> sql.Composable:
    """One row per cell of the tile holding schools that pass the filters, with counts and sums."""
    counted = COUNTED_TYPES[:-1]
    counts = [sql.SQL("sum(n)::bigint AS point_count")]
    counts += [
        sql.SQL("COALESCE(sum(n) FILTER (WHERE type = {}), 0)::bigint AS {}").format(
            sql.Literal(t), sql.Identifier(f"n_{t}")
        )
        for t in counted
    ]
    counts.append(
        sql.SQL("COALESCE(sum(n) FILTER (WHERE type <> ALL({})), 0)::bigint AS {}").format(
            sql.Literal(list(counted)), sql.Identifier(f"n_{tilecontent.OTHER_TYPE}")
        )
    )
    for s in sums:
        total, known = sql.Identifier(f"{s}_sum"), sql.Identifier(f"{s}_n")
        counts.append(sql.SQL("sum({})::float8 AS {}").format(total, total))
        counts.append(sql.SQL("sum({})::bigint AS {}").format(known, known))
    position = sql.SQL("ST_SetSRID(ST_MakePoint(sum(sx) / sum(n)::float8, sum(sy) / sum(n)::float8), 3857)")
    return sql.SQL(
        "SELECT cx::bigint * %(side)s + cy AS fid, {counts}, {geom} FROM {table} "
        "WHERE z = %(z)s AND cx BETWEEN %(cx_min)s AND %(cx_max)s AND cy BETWEEN %(cy_min)s AND %(cy_max)s "
        "{filters} GROUP BY cx, cy"
    ).format(
        filters=sql.SQL("AND (%(any_type)s OR type = ANY(%(types)s)) AND (%(any_statut)s OR statut = ANY(%(statuts)s))"
                        if filtered else ""),
        counts=sql.SQL(", ").join(counts),
        geom=_geom(position),
        table=sql.Identifier(schema, "clusters"),
    )


def _points(schema: str, info: CollectionInfo, filtered: bool, territories: tuple[str, ...]) -> sql.Composable:
    """The single schools of the tile that pass the filters; the tile of a point as `grid.tile_at` finds it."""
    return sql.SQL("SELECT t.fid, {fields}, {geom} FROM {schools}").format(
        fields=_fields(info), geom=_geom(sql.SQL("t.geom3857")), schools=_schools(schema, info, filtered, territories)
    )


def _schools(schema: str, info: CollectionInfo, filtered: bool, territories: tuple[str, ...]) -> sql.Composable:
    """`table t WHERE ...`: the schools of the tile that pass the filters."""
    conditions = [sql.SQL(
        "AND (%(any_type)s OR t.type = ANY(%(types)s) OR (%(other_types)s AND t.type <> ALL(%(counted)s))) "
        "AND (%(any_statut)s OR t.statut = ANY(%(statuts)s))" if filtered else ""
    )]
    conditions += [sql.SQL("AND t.{} = {}").format(sql.Identifier(c), sql.Placeholder(c)) for c in territories]
    return sql.SQL(
        "{table} t WHERE t.geom3857 && {env} "
        "AND floor((ST_X(t.geom3857) + %(origin)s) / %(size)s) = %(x)s "
        "AND floor((%(origin)s - ST_Y(t.geom3857)) / %(size)s) = %(y)s {filters}"
    ).format(table=sql.Identifier(schema, info.id), env=_BUFFERED, filters=sql.SQL(" ").join(conditions))


def _territory_clusters(schema: str, info: CollectionInfo, sums: Sequence[str], filtered: bool,
                        territories: tuple[str, ...]) -> sql.Composable:
    """Clusters made from the tile's schools in the filters' territories (the clusters table has none).

    Each school goes to the cell the ingest gives it, and the columns are those of `_clusters`.
    """
    counted = COUNTED_TYPES[:-1]
    x, y = sql.SQL("ST_X(t.geom3857)"), sql.SQL("ST_Y(t.geom3857)")
    counts = [sql.SQL("count(*)::bigint AS point_count")]
    counts += [sql.SQL("count(*) FILTER (WHERE t.type = {})::bigint AS {}").format(sql.Literal(t),
                                                                                   sql.Identifier(f"n_{t}"))
               for t in counted]
    counts.append(sql.SQL("count(*) FILTER (WHERE t.type IS NULL OR t.type <> ALL({}))::bigint AS {}").format(
        sql.Literal(list(counted)), sql.Identifier(f"n_{tilecontent.OTHER_TYPE}")))
    for s in sums:
        field = info.field(s)
        value = sql.SQL("t.{}::int" if field is not None and field.type == "boolean" else "t.{}").format(
            sql.Identifier(s))
        counts.append(sql.SQL("COALESCE(sum({}::float8), 0)::float8 AS {}").format(value, sql.Identifier(f"{s}_sum")))
        counts.append(sql.SQL("count({})::bigint AS {}").format(value, sql.Identifier(f"{s}_n")))
    return sql.SQL(
        "SELECT floor(({x} + %(origin)s) / %(cell_size)s)::bigint * %(side)s "
        "+ floor((%(origin)s - {y}) / %(cell_size)s)::bigint AS fid, {counts}, "
        "{geom} FROM {schools} GROUP BY 1"
    ).format(
        x=x, y=y, counts=sql.SQL(", ").join(counts), schools=_schools(schema, info, filtered, territories),
        geom=_geom(sql.SQL("ST_SetSRID(ST_MakePoint(avg({}), avg({})), 3857)").format(x, y)),
    )


def _shapes(schema: str, info: CollectionInfo, band: int | None) -> sql.Composable:
    """The territories reaching the buffered tile: the band starting at zoom `band`, or full resolution."""
    table = sql.Identifier(schema, info.id)
    if band is None:
        return sql.SQL("SELECT t.fid, {fields}, {geom} FROM {table} t WHERE t.geom3857 && {env}").format(
            fields=_fields(info), geom=_geom(sql.SQL("t.geom3857")), table=table, env=_BUFFERED
        )
    return sql.SQL(
        "SELECT t.fid, {fields}, {geom} FROM {generalised} g JOIN {table} t ON t.{key} = g.{key} "
        "WHERE g.minzoom = {band} AND g.geom && {env}"
    ).format(
        fields=_fields(info),
        geom=_geom(sql.SQL("g.geom")),
        generalised=sql.Identifier(schema, f"{info.id}_generalised"),
        table=table,
        key=sql.Identifier(info.key),
        band=sql.Literal(band),
        env=_BUFFERED,
    )


def _geom(column: sql.Composable) -> sql.Composable:
    """A geometry in EPSG:3857 cut to the tile, on its grid, as the `geom` column of a layer."""
    return sql.SQL("ST_AsMVTGeom({}, {}, {}, {}, true) AS geom").format(
        column, _ENVELOPE, sql.Literal(mvt.EXTENT), sql.Literal(mvt.BUFFER)
    )


def _fields(info: CollectionInfo) -> sql.Composable:
    """The field columns of a feature table (alias `t`), in field order."""
    return sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(f.name)) for f in info.fields)
