"""The embedded store: each version is a whole GeoPackage file, made current by one `os.replace`.

A publish writes `<name>.gpkg.<id>.tmp`, fsyncs it and renames it onto `<name>.gpkg`: readers see
the old file or the new one, never a mix, and a failed or killed run leaves the served file as it
was. Readers look at the file's identity at most once per `version_check_seconds`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from tileserver.core.dataset import Dataset
from tileserver.core.errors import IngestError, Unavailable
from tileserver.core.settings import Settings
from tileserver.core.store import VersionInfo
from tileserver.core.stores.geopackage import layout
from tileserver.core.stores.geopackage.publish import History, write_version
from tileserver.core.stores.geopackage.snapshot import GeoPackageSnapshot, connect

log = logging.getLogger(__name__)

VERSION_FORMAT = "%Y%m%dT%H%M%S%f"
RASTER_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class GeoPackageStore:
    """Versions published to, and read from, one GeoPackage path."""

    def __init__(self, path: str, settings: Settings):
        self.url = path
        self.path = os.path.abspath(path)
        self.settings = settings
        self._lock = threading.Lock()
        self._snapshot: GeoPackageSnapshot | None = None
        self._identity: tuple | None = None
        self._checked: float | None = None  # time.monotonic() of the last look at the file
        self._broken: str | None = None  # why the file now served cannot be read

    def publish(self, dataset: Dataset) -> VersionInfo:
        """Write a new version file and swap it in; the previous version's assets are kept.

        A full or read-only disk is an `IngestError` that says so, and the served file stays as it was.
        """
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with _exclusive(layout.lock_file(self.path)):
                for leftover in layout.leftovers(self.path):
                    os.remove(leftover)
                history = _read_history(self.path)
                version = _new_version(dataset.report)
                _write_and_swap(self.path, dataset, version, history)
                _prune_assets(self.path, keep={version.id, *(row[0] for row in history[:1])})
        except (OSError, sqlite3.Error) as error:
            raise IngestError(f"cannot publish to {self.path}: {error}") from error
        with self._lock:
            self._checked = None  # the publisher sees its version at once (`ecarto ingest` warms it next)
        return version

    def check_publish(self) -> Path:
        """The store's folder, once it is known to be writable and the file there (if any) one of ours."""
        folder = os.path.dirname(self.path)
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as error:
            raise IngestError(f"cannot publish to {self.path}: {error}") from error
        if not os.access(folder, os.W_OK | os.X_OK):
            raise IngestError(f"cannot publish to {self.path}: its folder is not writable")
        _read_history(self.path)
        return Path(folder)

    def current(self) -> GeoPackageSnapshot | None:
        """The snapshot of the file now served, rebuilt when the file changed since the last look.

        An unreadable file is an `Unavailable` on every call until it is replaced, not "nothing
        published" between two looks; its path goes to the log only, never to a client.
        """
        with self._lock:
            now = time.monotonic()
            if self._checked is None or now - self._checked >= self.settings.version_check_seconds:
                self._checked = now
                identity = _identity(self.path)
                if identity != self._identity:
                    self._snapshot, self._broken = self._open(identity)
                    self._identity = identity
            if self._broken is not None:
                raise Unavailable(self._broken, retry_after=60)
            return self._snapshot

    def _open(self, identity: tuple | None) -> tuple[GeoPackageSnapshot | None, str | None]:
        """The snapshot of the file, or why it cannot be read (logged with the path)."""
        if identity is None:
            return None, None
        try:
            return GeoPackageSnapshot(self.path, self.settings.request_timeout), None
        except Unavailable as error:
            log.error("%s: %s", self.path, error.description)
            return None, f"the data store is damaged ({error.description}): publish again with `ecarto ingest`"

    def versions(self) -> list[VersionInfo]:
        """Published versions, newest first, with their reports."""
        snapshot = self.current()
        return snapshot.versions() if snapshot else []

    def close(self) -> None:
        """Close the current snapshot's connections; the next `current()` opens it again."""
        with self._lock:
            if self._snapshot is not None:
                self._snapshot.close()
            self._snapshot, self._identity, self._checked, self._broken = None, None, None, None


@contextmanager
def _exclusive(path: str) -> Iterator[None]:
    """Hold an exclusive lock on `path` (waiting for another publish to finish)."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _identity(path: str) -> tuple | None:
    """What changes when another file is renamed onto `path` (None when there is none)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


def _new_version(report: dict) -> VersionInfo:
    """A version stamped now, in UTC."""
    now = datetime.now(UTC)
    created = now.isoformat(timespec="microseconds").replace("+00:00", "Z")
    return VersionInfo(now.strftime(VERSION_FORMAT), created, report)


def _read_history(path: str) -> History:
    """(id, created, report JSON) of the versions recorded in the served file, newest first."""
    if not os.path.exists(path):
        return []
    try:
        conn = connect(path)
        try:
            return conn.execute("SELECT id, created, report FROM ecarto_versions ORDER BY id DESC").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise IngestError(f"{path} is not an eCarto GeoPackage ({e}); move it away to publish there") from e


def _write_and_swap(path: str, dataset: Dataset, version: VersionInfo, history: History) -> None:
    """Write the version beside `path` and rename it onto `path`; on failure remove what was written."""
    tmp = layout.tmp_file(path, version.id)
    assets = layout.assets_dir(path, version.id)
    try:
        os.makedirs(assets)
        rasters = _copy_rasters(dataset.rasters, assets)
        write_version(tmp, dataset, version, history, rasters)
        _fsync(tmp)
        os.link(tmp, layout.version_file(path, version.id))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        shutil.rmtree(assets, ignore_errors=True)
        raise
    _fsync(os.path.dirname(path))


def _copy_rasters(rasters: dict[str, dict], assets: str) -> dict[str, dict]:
    """Copy each raster into the version's directory; its metadata then points at the copy."""
    copied = {}
    for raster_id, meta in rasters.items():
        if not RASTER_ID.fullmatch(raster_id) or "path" not in meta:
            raise IngestError(f"raster {raster_id!r}: needs a plain id and a 'path'")
        target = os.path.join(assets, f"{raster_id}.tif")
        shutil.copyfile(meta["path"], target)
        _fsync(target)
        copied[raster_id] = {**meta, "path": target}
    return copied


def _fsync(path: str) -> None:
    """Flush a file or a directory entry to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prune_assets(path: str, keep: set[str]) -> None:
    """Remove the directories of versions neither current nor previous (nor unfinished ones)."""
    root = layout.assets_root(path)
    for name in os.listdir(root):
        if name not in keep:
            shutil.rmtree(os.path.join(root, name))
