"""Plain vector tile requests answered below Flask: routing, hooks and `Response` objects cost more
than a cached tile, and a third of a small tile made on a miss.

Only a GET of `/tiles/{layers}/{z}/{x}/{y}.mvt`, with no query string or only the `v` a TileJSON puts
in its tile URLs, is answered here: its layers and tile checked by the view's own `params.layers` and
`params.tile`, the tile made and kept on a miss as the view does (`cache.cached_tile`), with the
headers `cache.tile_response` and the app's CORS hook give (a test holds the two paths to the same
answer). Anything else (school filters, a path the route would not match) goes on to the app. An
error met here (an unknown layer, the database away) is handed to the app in the WSGI environ and
raised again there, so one handler renders every error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from tileserver.core.settings import Settings
from tileserver.core.store import TileFilter
from tileserver.web import params
from tileserver.web.cache import CachedTile, TileCache, accepts_gzip, cached_tile, cdn_tags, matches_etag
from tileserver.web.warm import VersionGate

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]
ERROR = "ecarto.shortcut_error"  # the environ key of an error met here, raised again by the app

_PATH = re.compile(r"/tiles/([a-z0-9_,-]{1,400})/([0-9]{1,8})/([0-9]{1,8})/([0-9]{1,8})\.mvt")
_VERSION = re.compile(r"v=([0-9A-Za-z]{1,40})")


class PlainTile(NamedTuple):
    """What a plain tile request asks, as the path spells it, and the data version it expects (if it says)."""

    layers: str
    z: str
    x: str
    y: str
    version: str | None


class TileShortcut:
    """WSGI middleware answering plain tile requests itself and passing every other request to `app`."""

    def __init__(self, app: WSGIApp, *, gate: VersionGate, cache: TileCache, settings: Settings,
                 cors: dict[str, str]):
        self.app = app
        self.gate = gate
        self.cache = cache
        self.cache_control = settings.cache_control
        self.cors = list(cors.items())

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        answer = None
        asked = plain_tile(environ)
        if asked is not None:
            try:
                answer = self._answer(asked, environ)
            except Exception as error:  # rendered (and logged when unexpected) by the app
                environ[ERROR] = error
        if answer is None:
            return self.app(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    def _answer(self, asked: PlainTile, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """Status, headers and body of the tile, or None to let the app answer."""
        snap = self.gate.current()
        if snap is None:  # nothing published yet: the app says so
            return None
        names = tuple(info.id for info in params.layers(snap, asked.layers))
        tile = cached_tile(self.cache, snap, names, params.tile(asked.z, asked.x, asked.y), TileFilter())
        current = asked.version is None or asked.version == snap.version.id
        tags = cdn_tags(snap.version.id, names)
        return self._reply(tile, self.cache_control if current else "no-cache", tags, environ)

    def _reply(self, tile: CachedTile, cache_control: str, tags: tuple[tuple[str, str], ...],
               environ: dict[str, Any]) -> tuple[str, list, bytes]:
        """The answer `cache.tile_response` gives for a tile, CORS headers included."""
        headers = [("ETag", tile.etag), ("Cache-Control", cache_control), ("Vary", "Accept-Encoding"), *tags]
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


def plain_tile(environ: dict[str, Any]) -> PlainTile | None:
    """The request as a plain tile request, or None when it is anything else.

    >>> plain_tile({"REQUEST_METHOD": "GET", "PATH_INFO": "/tiles/regions,epci/3/2/5.mvt", "QUERY_STRING": "v=1"})
    PlainTile(layers='regions,epci', z='3', x='2', y='5', version='1')
    >>> plain_tile({"REQUEST_METHOD": "GET", "PATH_INFO": "/tiles/regions/3/2/5.mvt", "QUERY_STRING": "type=x"})
    """
    path = _PATH.fullmatch(environ.get("PATH_INFO", ""))
    query = environ.get("QUERY_STRING", "")
    version = _VERSION.fullmatch(query) if query else None
    if environ.get("REQUEST_METHOD") != "GET" or path is None or (query and version is None):
        return None
    return PlainTile(*path.groups(), version and version.group(1))
