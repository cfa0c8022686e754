"""Read one published version: a schema that never changes, described by metadata loaded once."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import shapely

from tileserver.core.grid import Tile
from tileserver.core.store import (
    Feature,
    FeaturePage,
    FeatureQuery,
    TileFilter,
    VersionInfo,
    VersionMeta,
)
from tileserver.core.stores.postgis import tiles
from tileserver.core.stores.postgis.database import Database
from tileserver.core.stores.postgis.query import all_properties, feature_by_key_sql, feature_sql
from tileserver.core.stores.postgis.versions import version_schema

BATCH = 500  # rows fetched from the server-side cursor at a time


class PostGISSnapshot(VersionMeta):
    """One version schema; every read of a request made through it sees the same data."""

    def __init__(self, db: Database, version: VersionInfo, meta: dict):
        self.version = version
        self.schema = version_schema(version.id)
        self.db = db
        VersionMeta.__init__(self, meta)

    def get(self, collection: str, fid: str) -> Feature | None:
        """One feature by its key (a text column, as `uai` and `code` are), or None."""
        info = self.collection(collection)
        with self.db.connection() as conn, conn.cursor(binary=True) as cur:
            row = cur.execute(feature_by_key_sql(self.schema, info), [fid]).fetchone()
        return None if row is None else next(_features([row], all_properties(info)))

    def query(self, q: FeatureQuery) -> FeaturePage:
        """Features matching a query, sortby then key order; the rows stream as they are read."""
        info = self.collection(q.collection)
        statement = feature_sql(self.schema, info, q)
        matched, spent = (info.count if q.count else None), 0.0
        if statement.count is not None and q.count:
            started = time.monotonic()
            with self.db.connection() as conn:
                matched = conn.execute(statement.count, statement.where_params).fetchone()[0]
            spent = time.monotonic() - started
        return FeaturePage(self._stream(statement.rows, statement.page_params, statement.properties, spent), matched)

    def query_many(self, queries: Sequence[FeatureQuery]) -> list[FeaturePage]:
        """Several queries in one round trip (a pipeline), each page read whole: for small pages only."""
        planned = [(q, feature_sql(self.schema, self.collection(q.collection), q)) for q in queries]
        with self.db.connection() as conn:
            with conn.pipeline():
                pages = [conn.cursor(binary=True).execute(s.rows, s.page_params) for _, s in planned]
                counts = [conn.execute(s.count, s.where_params) if q.count and s.count is not None else None
                          for q, s in planned]
            matched = [
                None if not q.count else count.fetchone()[0] if count else self.collection(q.collection).count
                for (q, _), count in zip(planned, counts, strict=True)
            ]
            return [FeaturePage(_features(page.fetchall(), s.properties), n)
                    for (_, s), page, n in zip(planned, pages, matched, strict=True)]

    def tile(self, tile: Tile, *, layers: Sequence[str], filters: TileFilter) -> bytes:
        """One Mapbox Vector Tile holding the named layers (b'' when empty), encoded by PostGIS."""
        infos = [self.collection(name) for name in layers]
        return tiles.encode_tile(self.db, self.schema, infos, self._meta, tile, filters)

    def _stream(self, statement: Any, params: list, properties: tuple[str, ...], spent: float) -> Iterator[Feature]:
        """Features read through a server-side cursor, a batch at a time, holding a connection meanwhile.

        The first batch shares the request deadline with the count (`spent` seconds of it are gone),
        so the answer starts within one deadline; each later batch, a `FETCH`, has a deadline of its own.
        """
        with (
            self.db.connection() as conn,
            conn.transaction(),
            conn.cursor(name="features", binary=True) as cur,
        ):
            if spent:
                self.db.limit(conn, self.db.timeout - spent)
            cur.execute(statement, params)
            rows = cur.fetchmany(BATCH)
            if spent:
                self.db.limit(conn, self.db.timeout)
            while rows:
                yield from _features(rows, properties)
                rows = cur.fetchmany(BATCH)


def _features(rows: Sequence[Sequence], properties: tuple[str, ...]) -> Iterator[Feature]:
    """Features from (key, WKB, *properties) rows, geometries decoded in one call."""
    geometries = shapely.from_wkb([row[1] for row in rows])
    for row, geometry in zip(rows, geometries, strict=True):
        yield Feature(str(row[0]), geometry, dict(zip(properties, row[2:], strict=True)))

