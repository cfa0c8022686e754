"""The version pointer: `ecarto.versions` says which schema is served, and old versions are pruned.

A version lives in schema `ecarto_v<id>` and, for its files, in `<assets_dir>/<id>/`. Exactly one
row of `ecarto.versions` is current; switching is an UPDATE and an INSERT in the transaction that
wrote the version, so readers see the old version or the new one, never half of one. Publishers
take a session advisory lock, so two ingests never interleave and pruning never removes the
files of a version being written.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import errors, sql
from psycopg.types.json import Jsonb

from tileserver.core.store import VersionInfo

log = logging.getLogger(__name__)

CONTROL_SCHEMA = "ecarto"
SCHEMA_PREFIX = "ecarto_v"
ID_FORMAT = "%Y%m%dT%H%M%S%f"
ID_PATTERN = re.compile(r"\d{8}T\d{12}")
PUBLISH_LOCK = 0x65436172746F  # pg_advisory_lock key held by a publishing session ("eCarto")
KEEP = 2  # the current version and the one before it, which workers may still be reading
DROP_LOCK_TIMEOUT = "2s"  # an old version still being read is dropped at the next publish instead

CREATE_CONTROL = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE SCHEMA IF NOT EXISTS ecarto;
CREATE TABLE IF NOT EXISTS ecarto.versions (
    id text PRIMARY KEY,
    created timestamptz NOT NULL,
    report jsonb NOT NULL,
    meta jsonb NOT NULL,
    current boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX IF NOT EXISTS versions_one_current ON ecarto.versions (current) WHERE current;
"""


def new_version() -> tuple[str, datetime]:
    """A fresh version id (a UTC timestamp, so ids sort by age) and the instant it names."""
    created = datetime.now(UTC)
    return created.strftime(ID_FORMAT), created


def created_text(created: datetime) -> str:
    """An instant as both stores write it: ISO 8601 in UTC with microseconds and a `Z`.

    >>> created_text(datetime(2026, 5, 9, 7, 35, 25, 123456, tzinfo=UTC))
    '2026-05-09T07:35:25.123456Z'
    """
    return created.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def version_schema(version_id: str) -> str:
    """The schema holding a version (mixed case: always quote it, e.g. with `sql.Identifier`)."""
    return SCHEMA_PREFIX + version_id


@contextmanager
def publishing(conn: psycopg.Connection) -> Iterator[None]:
    """Hold the publish lock and make sure the control table and pg_trgm (folded text indexes) exist."""
    conn.execute("SELECT pg_advisory_lock(%s)", [PUBLISH_LOCK])
    try:
        conn.execute(CREATE_CONTROL)
        yield
    finally:
        if not conn.closed:
            conn.execute("SELECT pg_advisory_unlock(%s)", [PUBLISH_LOCK])


def mark_current(conn: psycopg.Connection, version: VersionInfo, meta: dict) -> None:
    """Make `version` the served one (call inside the transaction that wrote it)."""
    conn.execute("UPDATE ecarto.versions SET current = false WHERE current")
    conn.execute(
        "INSERT INTO ecarto.versions (id, created, report, meta, current) VALUES (%s, %s, %s, %s, true)",
        [version.id, version.created, Jsonb(version.report), Jsonb(meta)],
    )


def current_id(conn: psycopg.Connection) -> str | None:
    """The id of the version being served, or None before the first publish."""
    try:
        row = conn.execute("SELECT id FROM ecarto.versions WHERE current").fetchone()
    except errors.UndefinedTable:
        return None
    return row[0] if row else None


def load(conn: psycopg.Connection, version_id: str) -> tuple[VersionInfo, dict]:
    """A version's description and its metadata (rows are never deleted, so it is there)."""
    row = conn.execute(
        "SELECT id, created, report, meta - 'summaries', (meta -> 'summaries')::text FROM ecarto.versions"
        " WHERE id = %s", [version_id]
    ).fetchone()
    return VersionInfo(row[0], created_text(row[1]), row[2]), {**row[3], "summaries": row[4]}  # decoded when asked


def listed(conn: psycopg.Connection) -> list[VersionInfo]:
    """Every published version, newest first (old ones keep their report after their data is gone)."""
    try:
        rows = conn.execute("SELECT id, created, report FROM ecarto.versions ORDER BY id DESC").fetchall()
    except errors.UndefinedTable:
        return []
    return [VersionInfo(id_, created_text(created), report) for id_, created, report in rows]


def prune(conn: psycopg.Connection, assets_dir: Path) -> None:
    """Drop the schemas and files of every version but the current and the previous one.

    This also removes what killed runs left: a schema or a folder whose version was never marked.
    """
    keep = {
        row[0]
        for row in conn.execute(
            "SELECT id FROM ecarto.versions ORDER BY current DESC, id DESC LIMIT %s", [KEEP]
        )
    }
    schemas = conn.execute(
        "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s) ORDER BY nspname", [SCHEMA_PREFIX]
    ).fetchall()
    for (schema,) in schemas:
        if schema.removeprefix(SCHEMA_PREFIX) not in keep:
            _drop_schema(conn, schema)
    if assets_dir.is_dir():
        for folder in assets_dir.iterdir():
            if ID_PATTERN.fullmatch(folder.name) and folder.name not in keep:
                shutil.rmtree(folder)


def _drop_schema(conn: psycopg.Connection, schema: str) -> None:
    """Drop one old version, unless a long read still holds it: then the next publish will."""
    try:
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(DROP_LOCK_TIMEOUT)))
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    except errors.LockNotAvailable:
        log.warning("version schema %s is still being read; it will be dropped at the next publish", schema)
