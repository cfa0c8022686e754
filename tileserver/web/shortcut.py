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
from tileserver.core.store import Snapshot, TileFilter
from tileserver.web import params
from tileserver.web.cache import CachedTile, TileCache, accepts_gzip, cdn_tags, hot_member, matches_etag, mvt_key
from tileserver.web.warm import VersionGate

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]
ERROR = "ecarto.shortcut_error"  # the environ key of an error met here, raised again by the app

_PATH = re.compile(r"/tiles/([a-z0-9_,-]{1,400})/([0-9]{1,8})/([0-9]{1,8})/([0-9]{1,8})\.mvt")
_VERSION = re.compile(r"v=([0-9A-Za-z]{1,40})")


MAX_ROUTES = 20_000  # plain tile paths remembered per version (1.5-2 KB each, so 40 MB at most); past it, all forgotten

Reply = tuple[str, list[tuple[str, str]], bytes]


class PlainTile(NamedTuple):
    """What a plain tile request asks, as the path spells it, and the data version it expects (if it says)."""

    layers: str
    z: str
    x: str
    y: str
    version: str | None


class Route:
    """A plain tile path in one version, parsed and checked once: its cache key and its answers' headers.

    A warm tile is then a dictionary lookup, a cache lookup and the headers made for its bytes
    the first time they were sent, instead of a regular expression, the layer and tile checks,
    the key and a dozen headers built anew on each request.
    """

    __slots__ = ("cache_control", "key", "member", "names", "prepared", "snap", "tags", "tile")

    def __init__(self, snap: Snapshot, asked: PlainTile, cache_control: str):
        names = tuple(info.id for info in params.layers(snap, asked.layers))
        tile = params.tile(asked.z, asked.x, asked.y)
        self.key = mvt_key(snap.version.id, names, tile)
        self.member = hot_member(names, tile)
        self.snap, self.names, self.tile = snap, names, tile
        current = asked.version is None or asked.version == snap.version.id
        self.cache_control = cache_control if current else "no-cache"
        self.tags = cdn_tags(snap.version.id, names)
        self.prepared: tuple[str, Reply, Reply] | None = None  # an ETag, its plain and its gzipped answers

    def make(self) -> bytes:
        """The tile's bytes, made by the store (on a miss of both caches)."""
        return self.snap.tile(self.tile, layers=self.names, filters=TileFilter())

    def reply(self, tile: CachedTile, environ: dict[str, Any], cors: list[tuple[str, str]]) -> Reply:
        """The answer `cache.tile_response` gives for the tile, CORS headers included."""
        prepared = self.prepared
        if prepared is None or prepared[0] != tile.etag:  # first sent, or evicted and made anew
            prepared = self.prepared = (tile.etag, self._answer(tile, cors, False), self._answer(tile, cors, True))
        if matches_etag(environ.get("HTTP_IF_NONE_MATCH"), tile.etag):
            return "304 NOT MODIFIED", [*self._headers(tile), *cors], b""
        return prepared[2] if accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING")) else prepared[1]

    def _headers(self, tile: CachedTile) -> list[tuple[str, str]]:
        return [("ETag", tile.etag), ("Cache-Control", self.cache_control), ("Vary", "Accept-Encoding"), *self.tags]

    def _answer(self, tile: CachedTile, cors: list[tuple[str, str]], gzipped: bool) -> Reply:
        """The 200 (or, for an empty tile, the 204) of the tile, gzipped when asked and it helps."""
        headers = self._headers(tile)
        if not tile.body:  # an empty tile: most tiles at high zoom, over the sea or the countryside
            return "204 NO CONTENT", [*headers, ("Content-Type", str(tile.media_type)), *cors], b""
        body = tile.body
        if gzipped and tile.gzipped is not None:
            body = tile.gzipped
            headers.append(("Content-Encoding", "gzip"))
        headers += [("Content-Type", str(tile.media_type)), ("Content-Length", str(len(body))), *cors]
        return "200 OK", headers, body


class TileShortcut:
    """WSGI middleware answering plain tile requests itself and passing every other request to `app`."""

    def __init__(self, app: WSGIApp, *, gate: VersionGate, cache: TileCache, settings: Settings,
                 cors: dict[str, str]):
        self.app = app
        self.gate = gate
        self.cache = cache
        self.cache_control = settings.cache_control
        self.cors = list(cors.items())
        self._routes: tuple[str, dict[tuple[str, str], Route]] = ("", {})  # a version and its routes

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        answer = None
        if environ.get("REQUEST_METHOD") == "GET":
            try:
                answer = self._answer(environ)
            except Exception as error:  # rendered (and logged when unexpected) by the app
                environ[ERROR] = error
        if answer is None:
            return self.app(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    def _answer(self, environ: dict[str, Any]) -> Reply | None:
        """Status, headers and body of the tile, or None to let the app answer."""
        snap = self.gate.current()
        if snap is None:  # nothing published yet: the app says so
            return None
        route = self._route(snap, environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""))
        if route is None:
            return None
        tile = self.cache.vector_tile(snap.version.id, route.key, route.member, route.make)
        return route.reply(tile, environ, self.cors)

    def _route(self, snap: Snapshot, path: str, query: str) -> Route | None:
        """The route of a plain tile path in the snapshot's version (made on its first request), else None.

        Only paths that are valid tiles are remembered: a request the app answers with an error is
        parsed again each time, so no crafted path can fill the table.
        """
        version, routes = self._routes  # one read: a thread still on the previous version keeps its own table
        if version != snap.version.id:  # a new version: its keys and tags are new
            routes = {}
            self._routes = (snap.version.id, routes)
        route = routes.get((path, query))
        if route is None:
            asked = plain_tile(path, query)
            if asked is None:
                return None
            route = Route(snap, asked, self.cache_control)
            if len(routes) >= MAX_ROUTES:
                routes.clear()
            routes[(path, query)] = route
        return route


def plain_tile(path: str, query: str) -> PlainTile | None:
    """The path and query string of a GET as a plain tile request, or None when it is anything else.

    >>> plain_tile("/tiles/regions,epci/3/2/5.mvt", "v=1")
    PlainTile(layers='regions,epci', z='3', x='2', y='5', version='1')
    >>> plain_tile("/tiles/regions/3/2/5.mvt", "type=x")
    """
    matched = _PATH.fullmatch(path)
    version = _VERSION.fullmatch(query) if query else None
    if matched is None or (query and version is None):
        return None
    return PlainTile(*matched.groups(), version and version.group(1))
