"""The tile cache and the HTTP caching around it: bytes-bounded, versioned keys, ETag, 304, gzip.

Keys are tuples of values that include the data version, so a new ingest can never serve a stale
tile and nothing needs to be purged. A tile is compressed once, when it enters the cache, and
errors never enter it (the producer raises instead of returning). Behind each worker's cache, a
vector tile is looked for in the cache every worker shares (`core.sharedcache`) before it is made.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

from cachetools import LRUCache
from flask import Response, request
from werkzeug.http import parse_accept_header, parse_etags

from tileserver.core.dataset import SCHOOLS
from tileserver.core.grid import Tile
from tileserver.core.media import MediaType
from tileserver.core.sharedcache import SharedCache, key_text
from tileserver.core.store import Snapshot, TileFilter

GZIP_MEDIA = {MediaType.MVT, MediaType.JSON, MediaType.GEOJSON}


@dataclass(frozen=True)
class CachedTile:
    """A tile body ready to send, plain and (when it helps) gzipped, with its strong ETag."""

    body: bytes
    gzipped: bytes | None
    etag: str
    media_type: str

    @property
    def size(self) -> int:
        return len(self.body) + len(self.gzipped or b"") + 200


def prepare(body: bytes, media_type: str) -> CachedTile:
    """Hash and compress a freshly produced body once.

    >>> t = prepare(b"abc" * 100, MediaType.MVT)
    >>> t.etag.startswith('"') and len(t.gzipped) < len(t.body)
    True
    """
    gzipped = gzip.compress(body, 6, mtime=0) if body and media_type in GZIP_MEDIA else None
    if gzipped is not None and len(gzipped) >= len(body):
        gzipped = None
    return CachedTile(body, gzipped, etag_of(body), media_type)


def etag_of(body: bytes) -> str:
    """The strong ETag of a body: a hash of its bytes, the same in every worker."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def mvt_key(version: str, names: tuple[str, ...], tile: Tile, filters: TileFilter | None = None) -> tuple:
    """The cache key of a vector tile: every value its bytes depend on, the data version first.

    >>> mvt_key("20260101T000000000000", ("regions",), Tile(3, 2, 5))
    ('mvt', '20260101T000000000000', ('regions',), 3, 2, 5, (), (), ())
    """
    filters = filters or TileFilter()
    return ("mvt", version, names, tile.z, tile.x, tile.y, filters.types, filters.statuts, filters.territories)


class TileCache:
    """A thread-safe LRU cache bounded by the bytes it holds (0 disables it), and the shared cache behind it."""

    def __init__(self, max_bytes: int, shared: SharedCache | None = None):
        self.shared = shared
        self._cache: LRUCache | None = (
            LRUCache(maxsize=max_bytes, getsizeof=lambda t: t.size) if max_bytes > 0 else None
        )
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> CachedTile | None:
        """The cached tile for `key`, or None (a hit is counted, a miss is left to `get_or_make`)."""
        if self._cache is None:
            return None
        with self._lock:
            found = self._cache.get(key)
        if found is not None:
            self.hits += 1
        return found

    def get_or_make(self, key: Hashable, make: Callable[[], CachedTile]) -> CachedTile:
        """The cached tile for `key`, made (outside the lock) and kept when absent."""
        found = self.get(key)
        if found is not None:
            return found
        self.misses += 1
        tile = make()
        if self._cache is not None and tile.size <= self._cache.maxsize:
            with self._lock:
                self._cache[key] = tile
        return tile

    def vector_tile(self, version: str, key: tuple, member: str | None, make: Callable[[], bytes]) -> CachedTile:
        """The vector tile of `key` (`mvt_key`): here, else in the shared cache, else made and kept in both.

        `member` names a plain tile in the hit counts that pick the next version's hot set (`hot_member`);
        a filtered tile (None) is not counted.
        """
        shared = self.shared
        if shared is None:
            return self.get_or_make(key, lambda: prepare(make(), MediaType.MVT))
        if member is not None:
            shared.count(version, member)
        return self.get_or_make(key, lambda: shared_or_made(shared, key, make))

    @property
    def bytes_used(self) -> int:
        return int(self._cache.currsize) if self._cache is not None else 0


class SummaryCache:
    """Territories summarised on request (communes, for their sheets), kept per (version, level, code)."""

    def __init__(self, size: int = 2048):
        self._entries: LRUCache = LRUCache(maxsize=size)
        self._lock = threading.Lock()

    def get_or_make(self, key: tuple[str, str, str], make: Callable[[], Any]) -> Any:
        """The kept value for `key`, made (outside the lock) and kept when absent."""
        with self._lock:
            found = self._entries.get(key)
        if found is None:
            found = make()
            with self._lock:
                self._entries[key] = found
        return found


def cached_tile(cache: TileCache, snap: Snapshot, names: tuple[str, ...], tile: Tile,
                filters: TileFilter) -> CachedTile:
    """A vector tile of the snapshot from the cache, else from the shared cache, else made (and kept in both)."""
    if SCHOOLS not in names:
        filters = TileFilter()  # filters only change the schools: one cache entry whatever they say
    member = hot_member(names, tile) if filters == TileFilter() else None
    return cache.vector_tile(snap.version.id, mvt_key(snap.version.id, names, tile, filters), member,
                             partial(snap.tile, tile, layers=names, filters=filters))


def shared_or_made(shared: SharedCache, key: tuple, make: Callable[[], bytes]) -> CachedTile:
    """A vector tile from the shared cache, or made and put there for every other worker."""
    text = key_text(key)
    found = shared.get(text)
    if found is not None:
        return CachedTile(found[0], found[1], etag_of(found[0]), MediaType.MVT)
    tile = prepare(make(), MediaType.MVT)
    shared.put(text, tile.body, tile.gzipped)
    return tile


def hot_member(names: tuple[str, ...], tile: Tile) -> str:
    """How the hit counts name a plain tile: its path below `/tiles/`, without the `.mvt`.

    >>> hot_member(("regions", "epci"), Tile(3, 2, 5))
    'regions,epci/3/2/5'
    """
    return f"{','.join(names)}/{tile.z}/{tile.x}/{tile.y}"


def tile_response(tile: CachedTile, cache_control: str, tags: Sequence[tuple[str, str]] = ()) -> Response:
    """The HTTP answer for a tile: 304 on a matching If-None-Match, 204 when empty, gzip if accepted.

    `tags` are the CDN headers naming what the tile belongs to (`cdn_tags`).
    """
    headers = {"ETag": tile.etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding", **dict(tags)}
    if matches_etag(request.headers.get("If-None-Match"), tile.etag):
        return Response(status=304, headers=headers)
    if not tile.body:
        return Response(status=204, headers=headers, content_type=tile.media_type)
    body = tile.body
    if tile.gzipped is not None and accepts_gzip(request.headers.get("Accept-Encoding")):
        body = tile.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, status=200, headers=headers, content_type=tile.media_type)


@lru_cache(maxsize=1024)
def cdn_tags(version: str, names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """`Surrogate-Key` (Fastly, Varnish) and `Cache-Tag` (Cloudflare, Akamai) of a vector tile.

    A CDN purges by tag: `ecarto-v<version>` every tile of a version, `ecarto-layer-<id>` every tile
    holding a layer, `ecarto-tiles` every vector tile (docs/scaling.md).

    >>> dict(cdn_tags("20260101T000000000000", ("regions", "epci")))["Cache-Tag"]
    'ecarto-tiles,ecarto-v20260101T000000000000,ecarto-layer-regions,ecarto-layer-epci'
    """
    tags = ["ecarto-tiles", f"ecarto-v{version}", *(f"ecarto-layer-{name}" for name in names)]
    return ("Surrogate-Key", " ".join(tags)), ("Cache-Tag", ",".join(tags))


def matches_etag(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names the ETag (strong or weak, quoted or not); no header, no parse.

    >>> matches_etag('W/"a", "b"', '"b"'), matches_etag(None, '"b"'), matches_etag("*", '"b"')
    (True, False, True)
    """
    if not if_none_match:
        return False
    tags = parse_etags(if_none_match)
    return tags.contains_raw(etag) or tags.contains(etag.strip('"'))


@lru_cache(maxsize=256)
def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an Accept-Encoding header allows gzip; parsed once per distinct header (clients send a few).

    >>> accepts_gzip("gzip, deflate, br"), accepts_gzip("identity"), accepts_gzip(None)
    (True, False, False)
    """
    return "gzip" in parse_accept_header(accept_encoding)
