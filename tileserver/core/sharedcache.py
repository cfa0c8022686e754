"""The tile cache every worker of every machine shares, on Redis (`ECARTO_REDIS_URL`; unset, there is none).

It sits behind each worker's in-process cache and in front of the store: a tile one worker made
is a hit for all the others. Keys carry the data version, so a new version never reads an old
tile and nothing is purged; Redis's own `maxmemory` and LRU policy bound it (docs/scaling.md).
Values hold the tile's bytes and their gzip, so no worker compresses a tile another compressed.

Redis is a help, never a need: a Redis that is down or slower than `ECARTO_REDIS_TIMEOUT_SECONDS`
is skipped, the request goes on to the store, and Redis is left alone for
`ECARTO_REDIS_BACKOFF_SECONDS`, so a dead Redis costs one timeout per worker and interval.

The same connection counts the most requested tiles of a version (1 request in
`ECARTO_HOT_SAMPLE`, in a sorted set) and holds the lock and the flag of the warm-up (`warm`).
Counting never waits for Redis: a request adds to a count in memory, and a thread of the cache's
own sends the counts every `FLUSH_SECONDS` in one round trip (a Redis call on one request in
sixteen cost a fifth of the warm tiles' throughput and most of their p99).
"""

from __future__ import annotations

import logging
import random
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tileserver.core.settings import Settings

log = logging.getLogger("ecarto.sharedcache")
T = TypeVar("T")
_LENGTH = struct.Struct(">I")  # a value: the tile's length, the tile, then its gzip (if any)
FLUSH_SECONDS = 1.0  # how often the hit counts kept in memory go to Redis
MAX_COUNTED = 20_000  # distinct tiles counted between two flushes; the rest of that second is not counted


class SharedCache:
    """Tiles, hit counts and warm-up flags in Redis; every call gives up quietly while Redis is away."""

    def __init__(self, url: str, *, prefix: str = "ecarto", timeout: float = 0.05, backoff: float = 5.0,
                 sample: int = 16):
        self.prefix = prefix
        self.sample = sample
        self._backoff = backoff
        self._down_until = float("-inf")
        self._guard = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()  # (version, tile) -> requests, since the last flush
        self._flusher: threading.Thread | None = None
        self._closed = threading.Event()
        # no retry: a second try of a dead server doubles the wait the back-off is there to avoid
        self._redis = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                           retry=Retry(NoBackoff(), 0), retry_on_timeout=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> SharedCache | None:
        """The shared cache the settings ask for, or None when `ECARTO_REDIS_URL` is unset."""
        if not settings.redis_url:
            return None
        return cls(settings.redis_url, prefix=settings.redis_prefix, timeout=settings.redis_timeout_seconds,
                   backoff=settings.redis_backoff_seconds, sample=settings.hot_sample)

    def get(self, key: str) -> tuple[bytes, bytes | None] | None:
        """A tile's bytes and gzip, or None (absent, or Redis away)."""
        value = self._call(lambda: self._redis.get(self._key("tile", key)))
        return None if value is None else unpack(value)

    def put(self, key: str, body: bytes, gzipped: bytes | None) -> None:
        """Keep a tile for every worker (Redis evicts it when its memory is full)."""
        self._call(lambda: self._redis.set(self._key("tile", key), pack(body, gzipped)))

    def count(self, version: str, member: str) -> None:
        """Count one request of a tile, one time in `sample` (by `sample`, so counts stay in requests).

        In memory only: the flusher thread (started on the first count) sends the counts to Redis.
        """
        if self.sample > 0 and random.random() * self.sample < 1:
            counts = self._counts
            if len(counts) < MAX_COUNTED or (version, member) in counts:
                counts[version, member] += self.sample  # a rare lost update between threads is no harm
            if self._flusher is None:
                self._start_flusher()

    def flush(self) -> None:
        """Send the counts kept in memory to Redis, in one round trip."""
        counts, self._counts = self._counts, Counter()
        if counts:
            self._call(lambda: self._send_counts(counts))

    def _send_counts(self, counts: Counter[tuple[str, str]]) -> None:
        pipeline = self._redis.pipeline(transaction=False)
        for (version, member), n in counts.items():
            pipeline.zincrby(self._key("hot", version), n, member)
        pipeline.execute()

    def _start_flusher(self) -> None:
        with self._guard:
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_forever, name="ecarto hit counts", daemon=True)
                self._flusher.start()

    def _flush_forever(self) -> None:
        while not self._closed.wait(FLUSH_SECONDS):
            self.flush()

    def most_requested(self, version: str, n: int) -> list[str]:
        """The n tiles most requested in a version, most first (none when Redis is away)."""
        found = self._call(lambda: self._redis.zrevrange(self._key("hot", version), 0, n - 1))
        return [m.decode() for m in found or []]

    def lock(self, name: str, seconds: float) -> bool:
        """Take a lock for `seconds` unless another worker holds it (False too when Redis is away)."""
        taken = self._call(lambda: self._redis.set(self._key("lock", name), b"1", nx=True, px=int(seconds * 1000)))
        return bool(taken)

    def flag(self, name: str) -> None:
        """Raise a flag every worker can see."""
        self._call(lambda: self._redis.set(self._key("flag", name), b"1"))

    def flagged(self, name: str) -> bool | None:
        """Whether a flag is up; None when Redis cannot say."""
        found = self._call(lambda: self._redis.exists(self._key("flag", name)))
        return None if found is None else bool(found)

    @property
    def available(self) -> bool:
        """False while backing off from a failed call."""
        return time.monotonic() >= self._down_until

    def close(self) -> None:
        """Send the counts still held, stop the flusher and release the connections."""
        self._closed.set()
        if self._flusher is not None:
            self._flusher.join()
        self.flush()
        self._redis.close()

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}:{kind}:{name}"

    def _call(self, command: Callable[[], T]) -> T | None:
        """Run a Redis command; None, and Redis left alone for a while, when it fails or is too slow."""
        if not self.available:
            return None
        try:
            return command()
        except redis.RedisError as error:
            with self._guard:
                if self.available:
                    log.warning("Redis skipped for %.0f s: %s", self._backoff, error)
                self._down_until = time.monotonic() + self._backoff
            return None


def pack(body: bytes, gzipped: bytes | None) -> bytes:
    """A tile and its gzip as one Redis value.

    >>> unpack(pack(b"abc", b"gz")), unpack(pack(b"", None))
    ((b'abc', b'gz'), (b'', None))
    """
    return _LENGTH.pack(len(body)) + body + (gzipped or b"")


def unpack(value: bytes) -> tuple[bytes, bytes | None]:
    """The tile and its gzip (None when it was not worth compressing) from a Redis value."""
    (length,) = _LENGTH.unpack_from(value)
    end = _LENGTH.size + length
    return value[_LENGTH.size : end], value[end:] or None


def key_text(key: tuple) -> str:
    """A cache key tuple as a Redis key: its values joined, nested tuples by commas, pairs by `=`.

    >>> key_text(("mvt", "20260101T000000000000", ("regions", "epci"), 3, 2, 5, (), ("public",)))
    'mvt:20260101T000000000000:regions,epci:3:2:5::public'
    >>> key_text(("mvt", "v", ("etablissements",), 9, 1, 2, (), (), (("code_departement", "35"),)))
    'mvt:v:etablissements:9:1:2:::code_departement=35'
    """
    return ":".join(",".join(_text(item) for item in part) if isinstance(part, tuple) else str(part)
                    for part in key)


def _text(item: object) -> str:
    """One value of a key part; a (name, value) pair such as a territory filter as `name=value`."""
    return "=".join(map(str, item)) if isinstance(item, tuple) else str(item)
