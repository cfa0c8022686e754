"""Warm, then switch: readers keep the previous version until the new one's hot set is in the shared cache.

Without it, every worker of every machine starts cold on the minute a version lands, and the
first seconds are the slowest of the day. With a shared cache (`core.sharedcache`), one worker
takes a lock in Redis and starts `ecarto warm`, which makes the new version's hot set in a process
of its own at a lower priority (`WARM_NICE`): made in a thread of a serving worker, it held that
worker's interpreter lock for milliseconds at a time and multiplied the p99 of the tiles it served
by eight (bench.scale). The hot set is every tile that holds something up to
`ECARTO_WARM_MAXZOOM`, for each layer combination the previous version was asked for (each
collection alone, as the styles ask, when nothing was counted), then the previous version's
`ECARTO_WARM_TOP` most requested tiles. It then raises a flag; every worker looks for the flag at
most once per `ECARTO_VERSION_CHECK_SECONDS` and serves the new version once it is up, or once
`ECARTO_WARM_DEADLINE_SECONDS` have passed since it first saw the version, whatever happened to
the warm-up. A Redis away is no reason to wait: the new version is served at once.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

from tileserver.core import coverage
from tileserver.core.errors import ConfigError
from tileserver.core.grid import Tile
from tileserver.core.media import MediaType
from tileserver.core.priority import lower_priority
from tileserver.core.settings import Settings
from tileserver.core.sharedcache import SharedCache, key_text
from tileserver.core.store import Snapshot, Store, TileFilter
from tileserver.web.cache import mvt_key, prepare

log = logging.getLogger("ecarto.warm")

WARM_NICE = 10  # the warm-up's niceness: about a tenth of a busy core's time, all of an idle one


class VersionGate:
    """The snapshot readers get: the store's current one, once its hot set is warm."""

    def __init__(self, store: Store, shared: SharedCache | None, settings: Settings):
        self.store = store
        self.shared = shared
        self.settings = settings
        self._serving: Snapshot | None = None
        self._pending: tuple[str, float] | None = None  # the version waited for, and since when
        self._next_look = float("-inf")
        self._lock = threading.Lock()

    def current(self) -> Snapshot | None:
        """The version to read now (None before any publish)."""
        newest = self.store.current()
        serving = self._serving
        if self.shared is None or newest is None or serving is None or newest.version.id == serving.version.id:
            self._serving = newest
            return newest
        if self._lock.acquire(blocking=False):  # one thread looks (Redis, at most once a second); the rest read on
            try:
                if self._ready(newest, serving):
                    self._serving, self._pending = newest, None
            finally:
                self._lock.release()
        return self._serving

    def _ready(self, newest: Snapshot, serving: Snapshot) -> bool:
        """Whether to switch to `newest`; starts its warm-up when no worker has."""
        now = time.monotonic()
        if self._pending is None or self._pending[0] != newest.version.id:
            self._pending, self._next_look = (newest.version.id, now), now
        if now - self._pending[1] >= self.settings.warm_deadline_seconds:
            log.warning("serving %s before its warm-up ended (deadline passed)", newest.version.id)
            return True
        if now < self._next_look:
            return False
        self._next_look = now + self.settings.version_check_seconds
        flagged = self.shared.flagged(ready_flag(newest.version.id))
        if flagged is None or flagged:  # Redis away: nothing to wait for
            return True
        if self.shared.lock(warm_lock(newest.version.id), self.settings.warm_deadline_seconds):
            self.shared.flush()  # this worker's latest hit counts, for the hot set
            start_warming(self.settings, serving.version.id, newest.version.id)
        return False


def start_warming(settings: Settings, previous: str, version: str) -> subprocess.Popen:
    """Start `ecarto warm` of `version` at niceness `WARM_NICE`; a thread named `warm <version>` waits for its end."""
    command = [sys.executable, "-m", "tileserver.cli", "-q", "warm", "--version", version, "--previous", previous,
               "--nice", str(WARM_NICE), "--locked"]
    process = subprocess.Popen(command, env={**os.environ, **settings.environ()}, stdin=subprocess.DEVNULL,
                               start_new_session=True)  # a worker's restart does not end it
    lower_priority(WARM_NICE, process.pid)  # now, before its imports (half a second of processor)
    threading.Thread(target=_reap, args=(process, version), name=f"warm {version}", daemon=True).start()
    return process


def _reap(process: subprocess.Popen, version: str) -> None:
    """Wait for a warm-up process, so it leaves no zombie; a failure goes to the log (the deadline still holds)."""
    if process.wait() != 0:
        log.error("the warm-up of %s ended with status %s; see its log above", version, process.returncode)


def warm_published(store: Store, settings: Settings, *, previous: str = "", version: str | None = None,
                   locked: bool = False) -> tuple[str | None, int | None]:
    """Warm the store's current version into the shared cache: `ecarto warm`, and `ecarto ingest` once it published.

    Returns the version and the tiles made; no version when the current one is not `version`, no
    tiles when another process holds the warm-up's lock (unless the caller does: `locked`).
    """
    shared = SharedCache.from_settings(settings)
    if shared is None:
        raise ConfigError("ECARTO_REDIS_URL is not set: there is no shared cache to warm")
    try:
        current = store.current()
        if current is None or (version and current.version.id != version):
            return None, None
        if not (locked or shared.lock(warm_lock(current.version.id), settings.warm_deadline_seconds)):
            if not shared.available:
                raise ConfigError(f"Redis at {settings.redis_url} does not answer")
            return current.version.id, None
        return current.version.id, warm(shared, previous, current, settings)
    finally:
        shared.close()


def warm_lock(version: str) -> str:
    """The lock of a version's warm-up: one process of all makes its hot set."""
    return f"warm:{version}"


def ready_flag(version: str) -> str:
    """The flag raised when a version's hot set is in the shared cache."""
    return f"ready:{version}"


def warm(shared: SharedCache, previous: str, newest: Snapshot, settings: Settings) -> int:
    """Make the hot set of `newest` into the shared cache, raise its flag, and say how many tiles it made.

    `previous` is the version whose most requested tiles join the hot set (none when it is ""). A
    failure raises before the flag is up: the servers then switch at their deadline.
    """
    started, made = time.monotonic(), 0
    for names, tile in hot_set(shared, previous, newest, settings):
        body = newest.tile(tile, layers=names, filters=TileFilter())
        made_tile = prepare(body, MediaType.MVT)
        shared.put(key_text(mvt_key(newest.version.id, names, tile)), made_tile.body, made_tile.gzipped)
        made += 1
    shared.flag(ready_flag(newest.version.id))
    log.info("warmed %s: %d tiles in %.1f s", newest.version.id, made, time.monotonic() - started)
    return made


def hot_set(shared: SharedCache, previous: str, newest: Snapshot,
            settings: Settings) -> Iterator[tuple[tuple[str, ...], Tile]]:
    """(layers, tile) of the hot set: the low zooms of each combination asked, then the most requested tiles."""
    known = {info.id: info for info in newest.collections()}
    top = [parse_member(m) for m in shared.most_requested(previous, settings.warm_top)] if previous else []
    top = [(names, tile) for names, tile in top if names and all(n in known for n in names)]
    combinations = list(dict.fromkeys(names for names, _ in top)) or [(name,) for name in known]
    seen: set[tuple[tuple[str, ...], Tile]] = set()
    for names in combinations:
        infos = [known[n] for n in names]
        for zoom in coverage.covered(newest, infos, 0, settings.warm_maxzoom).values():
            for tile in zoom.tiles():
                seen.add((names, tile))
                yield names, tile
    yield from (pair for pair in top if pair not in seen)


def parse_member(member: str) -> tuple[tuple[str, ...], Tile]:
    """The layers and tile of a hit-count member (`cache.hot_member`); no layers when it is not one.

    >>> parse_member("regions,epci/3/2/5"), parse_member("junk")
    ((('regions', 'epci'), Tile(z=3, x=2, y=5)), ((), Tile(z=0, x=0, y=0)))
    """
    parts = member.split("/")
    if len(parts) != 4 or not all(p.isdigit() for p in parts[1:]):
        return (), Tile(0, 0, 0)
    return tuple(parts[0].split(",")), Tile(*map(int, parts[1:]))
