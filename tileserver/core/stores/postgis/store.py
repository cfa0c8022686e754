"""The PostGIS store: one schema per version, switched by a pointer row in one transaction."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

from psycopg import errors

from tileserver.core.dataset import Dataset
from tileserver.core.errors import IngestError
from tileserver.core.settings import Settings
from tileserver.core.store import VersionInfo
from tileserver.core.stores.postgis import versions
from tileserver.core.stores.postgis.database import Database, check_connection, unbounded, where
from tileserver.core.stores.postgis.publish import copy_rasters, write_version
from tileserver.core.stores.postgis.snapshot import PostGISSnapshot


class PostGISStore:
    """Publish datasets to, and serve them from, a PostGIS database.

    `current()` asks the database for the served version at most once per
    `settings.version_check_seconds`, so a request costs no extra round trip; a new version shows
    up within that delay in every worker.
    """

    def __init__(self, url: str, settings: Settings):
        self.url = url
        self._settings = settings
        self._assets = Path(settings.assets_dir)
        self._db = Database(url, settings)
        self._next_check = float("-inf")
        self._checking = threading.Lock()
        self._current_id: str | None = None
        self._snapshot: PostGISSnapshot | None = None

    def publish(self, dataset: Dataset) -> VersionInfo:
        """Write a new version and make it current in the transaction that wrote it.

        A failure rolls the whole schema back and removes the copied files; the version served
        before stays current. Versions older than the previous one are dropped afterwards. A
        database that refuses the writes (a read-only role or server) is an `IngestError` that says why.
        """
        try:
            with self._db.connection() as conn, unbounded(conn), versions.publishing(conn):
                version_id, created = versions.new_version()  # under the lock, so ids grow in publish order
                version = VersionInfo(version_id, versions.created_text(created), dataset.report)
                folder = self._assets / version_id
                try:
                    with conn.transaction():
                        meta = write_version(conn, versions.version_schema(version_id), dataset)
                        meta["rasters"] = copy_rasters(dataset.rasters, folder)
                        versions.mark_current(conn, version, meta)
                except BaseException:
                    shutil.rmtree(folder, ignore_errors=True)
                    raise
                versions.prune(conn, self._assets)
        except (errors.ReadOnlySqlTransaction, errors.InsufficientPrivilege) as error:
            raise IngestError(f"cannot publish to the PostGIS database: {error}") from error
        self._next_check = float("-inf")  # the publisher sees its version at once (`ecarto ingest` warms it next)
        return version

    def check_publish(self) -> Path:
        """The assets folder, once the database answers and lets this user create a version's schema."""
        with check_connection(self.url, self._settings) as conn:
            if not conn.execute("SELECT has_database_privilege(current_database(), 'CREATE')").fetchone()[0]:
                raise IngestError(f"cannot publish to PostGIS at {where(self.url)}: user {conn.info.user} "
                                  "may not create schemas in the database")
        return self._assets

    def current(self) -> PostGISSnapshot | None:
        """The version being served now (None before any publish).

        One thread asks the database at a time; the others meanwhile serve the version known, so a
        burst of requests (`/health` among them) never queues for the pool behind one look.
        """
        now = time.monotonic()
        if now >= self._next_check and self._checking.acquire(blocking=self._current_id is None):
            try:
                with self._db.connection() as conn:
                    self._current_id = versions.current_id(conn)
                self._next_check = now + self._settings.version_check_seconds
            finally:
                self._checking.release()
        version_id = self._current_id
        if version_id is None:
            return None
        snapshot = self._snapshot
        if snapshot is None or snapshot.version.id != version_id:
            with self._db.connection() as conn:
                version, meta = versions.load(conn, version_id)
            snapshot = self._snapshot = PostGISSnapshot(self._db, version, meta)
        return snapshot

    def versions(self) -> list[VersionInfo]:
        """Published versions, newest first, with their reports."""
        with self._db.connection() as conn:
            return versions.listed(conn)

    def close(self) -> None:
        """Release connections."""
        self._db.close()
