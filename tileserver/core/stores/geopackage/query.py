"""Turn a `FeatureQuery` into SQL on a feature table, safely and in a stable order.

Identifiers come only from the collection's published fields (unknown names are a 400) and every
value goes as a parameter, so no request string ever becomes SQL. The bbox prefilters on the
R-tree and is then tested exactly by `ecarto_intersects` (see `GeoPackageSnapshot`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import shapely

from tileserver.core import cql, textsearch
from tileserver.core.dataset import Field
from tileserver.core.errors import BadRequest
from tileserver.core.grid import BBox
from tileserver.core.store import CollectionInfo, Feature, FeatureQuery
from tileserver.core.stores.geopackage import geometry
from tileserver.core.stores.geopackage.container import quote, rtree_name, search_table

BATCH = 500  # rows whose geometries are parsed in one call; the page still streams


@dataclass(frozen=True)
class Statement:
    """SQL and its parameters."""

    sql: str
    params: tuple


@dataclass(frozen=True)
class Plan:
    """The statements of a query: the page, the count (None when every feature matches), the columns."""

    page: Statement
    count: Statement | None
    properties: tuple[Field, ...]


def plan(info: CollectionInfo, q: FeatureQuery) -> Plan:
    """The SQL of a page of features and of their total count."""
    if q.limit < 0 or q.offset < 0:
        raise BadRequest("limit and offset cannot be negative")
    known = _known(info)
    clauses, params = _where(info, known, q)
    properties = _properties(info, known, q.properties)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    table = quote(info.id)
    order, order_params = _order(info, known, q)
    page = Statement(
        f"SELECT {_selected(info, properties)} FROM {table}{where} ORDER BY {order} LIMIT ? OFFSET ?",
        (*params, *order_params, q.limit, q.offset),
    )
    count = Statement(f"SELECT COUNT(*) FROM {table}{where}", tuple(params)) if clauses else None
    return Plan(page, count, properties)


def _order(info: CollectionInfo, known: dict[str, Field], q: FeatureQuery) -> tuple[str, list]:
    """ORDER BY the requested properties, else by text search rank, size and name; then the key; and its parameters."""
    terms = [f"{_column(known, n)} {'ASC' if up else 'DESC'} NULLS LAST" for n, up in q.sortby]
    params: list[Any] = []
    if q.q and not q.sortby:
        best, params = cql.render_sqlite(textsearch.order(info, q, _dialect(info)))
        terms.append(best)
    return ", ".join([*terms, quote(info.key)]), params


def lookup(info: CollectionInfo, fid: str) -> Plan:
    """The SQL of one feature by its key."""
    properties = info.fields
    sql = f"SELECT {_selected(info, properties)} FROM {quote(info.id)} WHERE {quote(info.key)} = ?"
    return Plan(Statement(sql, (fid,)), None, properties)


def read_features(rows: Iterable[tuple], properties: tuple[Field, ...]) -> Iterator[Feature]:
    """Features from the rows of a plan, read a batch at a time: one geometry parse per batch, booleans as bool.

    >>> import numpy as np, shapely
    >>> blob = geometry.encode(np.array([shapely.Point(1, 2)], dtype=object), 4326)[0]
    >>> next(read_features([("a", blob, 1, "x")], (Field("ok", "boolean"), Field("nom", "string"))))
    Feature(id='a', geometry=<POINT (1 2)>, properties={'ok': True, 'nom': 'x'})
    >>> next(read_features([("a", None)], ())).properties
    {}
    """
    names = [f.name for f in properties]
    booleans = [i for i, f in enumerate(properties) if f.type == "boolean"]
    iterator = iter(rows)
    while batch := list(islice(iterator, BATCH)):
        keys, blobs, *columns = zip(*batch, strict=True)
        for i in booleans:  # SQLite stores 0 and 1
            columns[i] = [None if v is None else bool(v) for v in columns[i]]
        shapes = geometry.decode_many(blobs).tolist()
        rows_values = zip(*columns, strict=True) if columns else [()] * len(batch)
        for key, shape, values in zip(keys, shapes, rows_values, strict=True):
            yield Feature(str(key), shape, dict(zip(names, values, strict=True)))


def _selected(info: CollectionInfo, properties: tuple[Field, ...]) -> str:
    """The column list of a plan: key, geometry, then the properties."""
    return ", ".join([quote(info.key), "geom", *(quote(f.name) for f in properties)])


def _known(info: CollectionInfo) -> dict[str, Field]:
    """Every name a query may use: the fields, and the key even when it is not a field."""
    known = {f.name: f for f in info.fields}
    known.setdefault(info.key, Field(info.key, "string"))
    return known


def _column(known: dict[str, Field], name: str) -> str:
    """The quoted column of a property, or a 400 naming the unknown one."""
    if name not in known:
        raise BadRequest(f"unknown property {name!r}; known: {', '.join(known)}")
    return quote(name)


def _properties(
    info: CollectionInfo, known: dict[str, Field], requested: tuple[str, ...] | None
) -> tuple[Field, ...]:
    """The fields to output, in the requested order (all fields when none is requested)."""
    if requested is None:
        return info.fields
    for name in requested:
        _column(known, name)
    return tuple(known[name] for name in dict.fromkeys(requested))


def _where(info: CollectionInfo, known: dict[str, Field], q: FeatureQuery) -> tuple[list[str], list]:
    """The conditions of a query and their parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    if q.bbox is not None:
        clauses.append(_bbox_clause(info, q.bbox, params))
    for name, values in q.equals:
        column = _column(known, name)
        params.extend(values)
        clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
    if q.filter is not None:
        sql, filter_params = cql_filter(info, q.filter)
        clauses.append(sql)
        params.extend(filter_params)
    if q.q:
        sql, search_params = cql.render_sqlite(textsearch.condition(info, q.q, _dialect(info), q.q_rank))
        clauses.append(sql)
        params.extend(search_params)
    return clauses, params


def cql_filter(info: CollectionInfo, ast: Any) -> tuple[str, list]:
    """SQL and parameters of a CQL2 filter (a pygeofilter AST) on the collection's columns."""
    return cql.to_sqlite(info, ast, rtree=rtree_name(info.id, "geom"), search=search_table(info.id))


def _dialect(info: CollectionInfo) -> cql.SQLite:
    """The SQLite dialect of a collection's table, with its indexes."""
    return cql.SQLite(rtree_name(info.id, "geom"), search_table(info.id))


def _bbox_clause(info: CollectionInfo, bbox: BBox, params: list) -> str:
    """R-tree prefilter, then the exact test; a box across the antimeridian is split in two.

    A feature whose R-tree box lies inside the bbox needs no exact test (the R-tree's float32 boxes
    are rounded outward), so only the features across its edges are decoded and tested in Python.
    """
    boxes = [bbox] if bbox.west <= bbox.east else [
        BBox(bbox.west, bbox.south, 180.0, bbox.north),
        BBox(-180.0, bbox.south, bbox.east, bbox.north),
    ]
    rtree = quote(rtree_name(info.id, "geom"))
    key = cql.rtree_key(bbox, shapely.box(*info.extent)) if len(boxes) == 1 else "fid"
    inside = " OR ".join("(minx >= ? AND maxx <= ? AND miny >= ? AND maxy <= ?)" for _ in boxes)
    near = " OR ".join("(minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?)" for _ in boxes)
    exact = " OR ".join("ecarto_intersects(geom, ?, ?, ?, ?)" for _ in boxes)
    for b in boxes:
        params.extend((b.east, b.west, b.north, b.south))
    for b in boxes:
        params.extend((b.west, b.east, b.south, b.north))
    for b in boxes:
        params.extend(b)
    return (f"{key} IN (SELECT id FROM {rtree} WHERE {near})"
            f" AND (fid IN (SELECT id FROM {rtree} WHERE {inside}) OR {exact})")

