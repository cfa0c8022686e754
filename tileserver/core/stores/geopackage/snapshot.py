"""One published version of the embedded store, read through read-only connections, one per thread.

Connections open the file `immutable`: SQLite then takes no lock and never re-reads the schema,
which holds because a version file is never changed after it is published. Threads open their
connection on the version's hard link (see `layout`), so a snapshot keeps reading its own version
after the next publish replaced the served file.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
from collections.abc import Sequence
from urllib.parse import quote as quote_uri

from tileserver.core import cql
from tileserver.core.errors import Unavailable
from tileserver.core.grid import Tile
from tileserver.core.store import (
    Feature,
    FeaturePage,
    FeatureQuery,
    TileFilter,
    VersionInfo,
    VersionMeta,
)
from tileserver.core.stores.geopackage import geometry, layout, query, tiles
from tileserver.core.stores.geopackage.deadline import BoundedConnection, paced


def connect(path: str, timeout: float = math.inf) -> BoundedConnection:
    """A read-only connection to a version file, with the SQL functions our queries use.

    Its statements run under `conn.bounded()` stop after `timeout` seconds. `check_same_thread=False`
    only lets `close()` run from another thread: each connection is used by the one thread that opened it.
    """
    uri = f"file:{quote_uri(os.path.abspath(path))}?mode=ro&immutable=1"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, factory=BoundedConnection)
    conn.seconds = timeout
    conn.create_function("ecarto_intersects", 5, geometry.intersects_box, deterministic=True)
    cql.register_sqlite(conn, geometry.decode)
    return conn


class GeoPackageSnapshot(VersionMeta):
    """Read access to the version in one GeoPackage file; its metadata is read once, at opening."""

    def __init__(self, path: str, timeout: float = math.inf):
        self.path = path
        self.timeout = timeout
        conn = connect(path, timeout)
        try:
            meta = _read_meta(conn)
            self.version = _version(conn, meta["version"])
            VersionMeta.__init__(self, meta)
        except (sqlite3.Error, KeyError, TypeError, ValueError) as e:
            conn.close()
            raise Unavailable(f"not an eCarto GeoPackage: {e}") from e
        link = layout.version_file(path, self.version.id)
        self._file = link if os.path.exists(link) else path
        self._local = threading.local()
        self._local.conn = conn
        self._connections = [conn]
        self._guard = threading.Lock()

    def connection(self) -> BoundedConnection:
        """This thread's connection to the version file (opened on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _reopen(self._file, self.version.id, self.timeout)
            with self._guard:
                self._connections.append(conn)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close the connections of every thread."""
        with self._guard:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    def versions(self) -> list[VersionInfo]:
        """This version and the earlier ones, newest first, with their reports."""
        rows = self.connection().execute("SELECT id, created, report FROM ecarto_versions ORDER BY id DESC")
        return [VersionInfo(i, created, json.loads(report)) for i, created, report in rows]

    def query(self, q: FeatureQuery) -> FeaturePage:
        """Features matching a query, in a stable order (sortby, then key), streamed from the cursor."""
        info = self.collection(q.collection)
        plan = query.plan(info, q)
        conn = self.connection()
        with conn.bounded():
            if not q.count:
                matched = None
            elif plan.count is None:
                matched = info.count
            else:
                matched = conn.execute(*_args(plan.count)).fetchone()[0]
            cursor = conn.execute(*_args(plan.page))
        rows = paced(conn, cursor, query.BATCH)
        return FeaturePage(features=query.read_features(rows, plan.properties), matched=matched)

    def get(self, collection: str, fid: str) -> Feature | None:
        """One feature by its key, or None."""
        plan = query.lookup(self.collection(collection), fid)
        conn = self.connection()
        with conn.bounded():
            rows = conn.execute(*_args(plan.page)).fetchall()
        return next(query.read_features(rows, plan.properties), None)

    def tile(self, tile: Tile, *, layers: Sequence[str], filters: TileFilter) -> bytes:
        """One Mapbox Vector Tile holding the named layers (b'' when empty); see `tiles`."""
        infos = [self.collection(name) for name in layers]
        conn = self.connection()
        with conn.bounded():
            return tiles.encode_tile(conn, infos, self._meta, tile, filters)


def _reopen(path: str, version_id: str, timeout: float) -> BoundedConnection:
    """A new connection to a version file, checked to hold that version (else 503: retry)."""
    gone = Unavailable(f"data version {version_id} is no longer available; retry")
    try:
        conn = connect(path, timeout)
    except sqlite3.Error as e:
        raise gone from e
    try:
        found = conn.execute("SELECT value FROM ecarto_meta WHERE key = 'version'").fetchone()
    except sqlite3.Error as e:
        conn.close()
        raise gone from e
    if found is None or json.loads(found[0]) != version_id:
        conn.close()
        raise gone
    return conn


def _args(statement: query.Statement) -> tuple[str, tuple]:
    """A statement as the arguments of `execute`."""
    return statement.sql, statement.params


def _read_meta(conn: sqlite3.Connection) -> dict:
    """Every key of `ecarto_meta`, decoded but `summaries`, which `VersionMeta` decodes when first asked."""
    return {key: value if key == "summaries" else json.loads(value)
            for key, value in conn.execute("SELECT key, value FROM ecarto_meta")}


def _version(conn: sqlite3.Connection, version_id: str) -> VersionInfo:
    """The version row of this file."""
    row = conn.execute("SELECT created, report FROM ecarto_versions WHERE id = ?", (version_id,)).fetchone()
    if row is None:
        raise KeyError(f"version {version_id} missing from ecarto_versions")
    return VersionInfo(version_id, row[0], json.loads(row[1]))

