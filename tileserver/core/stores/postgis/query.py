"""Turn a `FeatureQuery` into SQL, naming columns only from the collection's declared fields.

Every identifier comes from `CollectionInfo.fields` (checked before use) and every value travels
as a placeholder, so nothing a client sends is ever spliced into SQL text. Unknown values sort
last in both directions, and the key breaks ties, so paging is stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from tileserver.core import cql, textsearch
from tileserver.core.dataset import Field
from tileserver.core.errors import BadRequest
from tileserver.core.grid import BBox
from tileserver.core.store import CollectionInfo, FeatureQuery

ARRAY_TYPES = {
    "string": "text[]",
    "integer": "bigint[]",
    "number": "double precision[]",
    "boolean": "boolean[]",
}


@dataclass(frozen=True)
class FeatureSQL:
    """The statements answering a query: `rows` yields (key, WKB, *properties); `count` one number.

    `count` is None when nothing is filtered: every feature matches, and the metadata knows how many.
    """

    rows: sql.Composed
    count: sql.Composed | None
    where_params: list[Any]
    page_params: list[Any]
    properties: tuple[str, ...]


def feature_sql(schema: str, info: CollectionInfo, q: FeatureQuery) -> FeatureSQL:
    """The SQL for one page of a collection, with its total count."""
    if q.limit < 0 or q.offset < 0:
        raise BadRequest("limit and offset cannot be negative")
    properties = _properties(info, q.properties)
    conditions, params = _where(info, q)
    where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("")
    table = sql.Identifier(schema, info.id)
    order, order_params = _order(info, q)
    rows = sql.SQL("SELECT {columns} FROM {table}{where} ORDER BY {order} LIMIT %s OFFSET %s").format(
        columns=select_list(info, properties), table=table, where=where, order=order
    )
    count = sql.SQL("SELECT count(*) FROM {table}{where}").format(table=table, where=where)
    page_params = [*params, *order_params, q.limit, q.offset]
    return FeatureSQL(rows, count if conditions else None, params, page_params, properties)


def feature_by_key_sql(schema: str, info: CollectionInfo) -> sql.Composed:
    """The SQL fetching one feature, every property, by its key (one placeholder)."""
    return sql.SQL("SELECT {columns} FROM {table} WHERE {key} = %s").format(
        columns=select_list(info, all_properties(info)),
        table=sql.Identifier(schema, info.id),
        key=sql.Identifier(info.key),
    )


def all_properties(info: CollectionInfo) -> tuple[str, ...]:
    """Every property of a collection, in declared order."""
    return tuple(f.name for f in info.fields)


def select_list(info: CollectionInfo, properties: tuple[str, ...]) -> sql.Composed:
    """Key, geometry as WKB, then the properties."""
    return sql.SQL(", ").join(
        [sql.Identifier(info.key), sql.SQL("ST_AsBinary(geom)"), *map(sql.Identifier, properties)]
    )



def _field(info: CollectionInfo, name: str) -> Field:
    """The declared field `name` (the key counts as one), or a client error naming the collection."""
    field = info.field(name) or (Field(name, "string") if name == info.key else None)
    if field is None:
        raise BadRequest(f"collection {info.id!r} has no property {name!r}")
    return field


def _properties(info: CollectionInfo, requested: tuple[str, ...] | None) -> tuple[str, ...]:
    """The properties to return: all, or the requested ones (checked, without repeats)."""
    if requested is None:
        return all_properties(info)
    return tuple(dict.fromkeys(_field(info, name).name for name in requested))


def _where(info: CollectionInfo, q: FeatureQuery) -> tuple[list[sql.Composable], list[Any]]:
    """The conditions of a query (ANDed) and their parameters."""
    conditions: list[sql.Composable] = []
    params: list[Any] = []
    if q.bbox is not None:
        conditions.append(_bbox(q.bbox, params))
    for name, values in q.equals:
        field = _field(info, name)
        conditions.append(
            sql.SQL("{} = ANY(%s::{})").format(sql.Identifier(field.name), sql.SQL(ARRAY_TYPES[field.type]))
        )
        params.append(list(values))
    if q.filter is not None:
        condition, filter_params = cql.to_postgis(info, q.filter)
        conditions.append(condition)
        params += filter_params
    if q.q:
        condition, search_params = cql.render_postgis(textsearch.condition(info, q.q, cql.PostGIS(), q.q_rank))
        conditions.append(condition)
        params += search_params
    return conditions, params


def _bbox(bbox: BBox, params: list[Any]) -> sql.Composable:
    """Index prefilter, then the exact test; a box across the antimeridian is split in two."""
    boxes = [bbox] if bbox.west <= bbox.east else [
        BBox(bbox.west, bbox.south, 180.0, bbox.north),
        BBox(-180.0, bbox.south, bbox.east, bbox.north),
    ]
    test = sql.SQL(
        "(geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
        " AND ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326)))"
    )
    for b in boxes:
        params.extend([*b, *b])
    return sql.SQL("({})").format(sql.SQL(" OR ").join([test] * len(boxes)))


def _order(info: CollectionInfo, q: FeatureQuery) -> tuple[sql.Composed, list[Any]]:
    """ORDER BY the requested properties (unknown values last), else text search order; then the key."""
    terms: list[sql.Composable] = [
        sql.SQL("{} {} NULLS LAST").format(
            sql.Identifier(_field(info, name).name), sql.SQL("ASC" if ascending else "DESC")
        )
        for name, ascending in q.sortby
    ]
    params: list[Any] = []
    if q.q and not q.sortby:
        best, params = cql.render_postgis(textsearch.order(info, q, cql.PostGIS()))
        terms.append(best)
    terms.append(sql.Identifier(info.key))
    return sql.SQL(", ").join(terms), params
