"""Cached vector tiles answered below Flask: routing, hooks and `Response` objects cost more than the hit.

Only a GET of `/tiles/{layers}/{z}/{x}/{y}.mvt`, with no query string or only the `v` a TileJSON puts
in its tile URLs, whose tile (empty or not) is in the cache is answered here, with the headers
`tiles._tile` and the app's CORS hook give (a test holds the two paths to the same answer). Anything
else, a miss included, goes on to the app, so parsing, validation and errors stay in one place: a
key is only in the cache once the app has checked the request that made it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from tileserver.cache import CachedTile, TileCache, accepts_gzip, matches_etag, mvt_key
from tileserver.errors import EcartoError
from tileserver.grid import Tile
from tileserver.settings import Settings
from tileserver.stores.base import Store

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]

_PATH = re.compile(r"/tiles/([a-z0-9_,-]{1,400})/([0-9]{1,8})/([0-9]{1,8})/([0-9]{1,8})\.mvt")
_VERSION = re.compile(r"v=([0-9A-Za-z]{1,40})")


class CachedTiles:
    """WSGI middleware serving tile cache hits itself and passing every other request to `app`."""

    def __init__(self, app: WSGIApp, *, store: Store, cache: TileCache, settings: Settings,
                 cors: dict[str, str]):
        self.app = app
        self.store = store
        self.cache = cache
        self.cache_control = settings.cache_control
        self.cors = list(cors.items())

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        answer = self._answer(environ) if environ.get("REQUEST_METHOD") == "GET" else None
        if answer is None:
            return self.app(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    def _answer(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """Status, headers and body of a cache hit, or None to let the app answer."""
        path = _PATH.fullmatch(environ.get("PATH_INFO", ""))
        query = environ.get("QUERY_STRING", "")
        version = _VERSION.fullmatch(query) if query else None
        try:
            snap = self.store.current() if path and (version or not query) else None
        except EcartoError:  # the database is away: the app answers with its 503 and Retry-After
            return None
        if snap is None:
            return None
        names, z, x, y = path.groups()
        tile = self.cache.get(mvt_key(snap.version.id, tuple(names.split(",")), Tile(int(z), int(x), int(y))))
        if tile is None:
            return None
        current = version is None or version.group(1) == snap.version.id
        return self._hit(tile, self.cache_control if current else "no-cache", environ)

    def _hit(self, tile: CachedTile, cache_control: str, environ: dict[str, Any]) -> tuple[str, list, bytes]:
        """The answer `cache.tile_response` gives for a cached tile, CORS headers included."""
        headers = [("ETag", tile.etag), ("Cache-Control", cache_control), ("Vary", "Accept-Encoding")]
        if matches_etag(environ.get("HTTP_IF_NONE_MATCH"), tile.etag):
            return "304 NOT MODIFIED", headers + self.cors, b""
        if not tile.body:  # an empty tile: most tiles at high zoom, over the sea or the countryside
            return "204 NO CONTENT", [*headers, ("Content-Type", str(tile.media_type)), *self.cors], b""
        body = tile.body
        if tile.gzipped is not None and accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING")):
            body = tile.gzipped
            headers.append(("Content-Encoding", "gzip"))
        headers += [("Content-Type", str(tile.media_type)), ("Content-Length", str(len(body))), *self.cors]
        return "200 OK", headers, body

