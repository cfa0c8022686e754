"""The app factory: the only place a Flask app is built."""

from __future__ import annotations

import importlib
import logging

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException, RequestURITooLarge

from tileserver.core.errors import BadRequest, EcartoError
from tileserver.core.settings import Settings
from tileserver.core.sharedcache import SharedCache
from tileserver.core.store import Store
from tileserver.core.stores import open_store
from tileserver.web import params
from tileserver.web.admission import Admission
from tileserver.web.cache import SummaryCache, TileCache
from tileserver.web.proxies import TrustedProxies, vary_headers
from tileserver.web.shortcut import ERROR, TileShortcut
from tileserver.web.warm import VersionGate

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024  # no route reads a body; werkzeug refuses a bigger one (413) if one ever does

# One blueprint per API resource; each module exposes `blueprint`.
BLUEPRINTS = (
    "tileserver.web.common",
    "tileserver.web.features",
    "tileserver.web.search",
    "tileserver.web.tiles",
    "tileserver.web.raster",
    "tileserver.web.versions",
    "tileserver.web.indicators",
    "tileserver.web.styles",
    "tileserver.web.maps",
    "tileserver.web.sheets",
    "tileserver.web.qgis",
)


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> Flask:
    """Build the app: settings read once, one store, every blueprint, one error handler."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.json.sort_keys = False
    app.url_map.converters["int"] = params.AsciiInteger
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["ecarto.settings"] = settings
    store = app.extensions["ecarto.store"] = store or open_store(settings.database, settings)
    cache = app.extensions["ecarto.cache"] = TileCache(settings.cache_bytes, SharedCache.from_settings(settings))
    app.extensions["ecarto.admission"] = Admission(settings.max_expensive)
    app.extensions["ecarto.summaries"] = SummaryCache()
    gate = app.extensions["ecarto.gate"] = VersionGate(store, cache.shared, settings)
    app.wsgi_app = TileShortcut(TrustedProxies(app.wsgi_app, settings), gate=gate, cache=cache, settings=settings,
                                cors=cors_headers(settings.cors_origins))
    for name in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(name).blueprint)
    _register_errors(app)
    app.before_request(_raise_shortcut_error)
    app.before_request(_check_request(12 * settings.max_filter_length + 8192))
    app.after_request(_cors(settings.cors_origins))
    app.after_request(_vary_on_links(vary_headers(settings)))
    return app


def _register_errors(app: Flask) -> None:
    """Every error becomes an OGC exception JSON body; no stack trace ever reaches a client."""

    @app.errorhandler(EcartoError)
    def ecarto_error(exc: EcartoError) -> Response:
        return _exception(exc.status, exc.code, exc.description, exc.retry_after)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = (exc.name or "Error").replace(" ", "")
        return _exception(exc.code or 500, code, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unexpected error")
        return _exception(500, "ServerError", "internal error; the details are in the server log")


def _exception(status: int, code: str, description: str, retry_after: int | None = None) -> Response:
    """An OGC API exception response."""
    response = jsonify({"code": code, "description": description})
    response.status_code = status
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _raise_shortcut_error() -> None:
    """Raise the error the tile shortcut met below Flask, so the one error handler above renders it."""
    error = request.environ.get(ERROR)
    if error is not None:
        raise error


def _check_request(max_query_bytes: int):
    """A before-request hook refusing a query string too long (414) or a NUL character (400).

    The limit leaves room for a filter of the maximal length whose every character takes four bytes
    of UTF-8, percent-encoded; no stored text can hold a NUL, and PostgreSQL refuses one in a parameter.
    """

    def check() -> None:
        query = request.query_string
        if len(query) > max_query_bytes:
            raise RequestURITooLarge(f"the query string is longer than {max_query_bytes} bytes")
        nul_in_query = query and any("\x00" in key + value for key, value in request.args.items(multi=True))
        if nul_in_query or "\x00" in request.path:
            raise BadRequest("the request holds a NUL character")

    return check


def cors_headers(origins: str) -> dict[str, str]:
    """The CORS headers every response carries, errors included.

    >>> cors_headers("*")["Access-Control-Allow-Origin"]
    '*'
    """
    return {
        "Access-Control-Allow-Origin": origins,
        "Access-Control-Allow-Headers": "Content-Type, If-None-Match, Accept",
        "Access-Control-Expose-Headers": "ETag, Content-Crs, Link, Retry-After",
    }


def _cors(origins: str):
    """An after-request hook adding the CORS headers to every response."""
    headers = cors_headers(origins)

    def add_headers(response: Response) -> Response:
        response.headers.update(headers)
        return response

    return add_headers


def _vary_on_links(headers: tuple[str, ...]):
    """An after-request hook: an answer that wrote our URL into its body varies on what that URL came from.

    `context.base_url` marks the request; without the `Vary`, a shared cache would serve links built
    for one client's `Host` to every other client.
    """

    def add_vary(response: Response) -> Response:
        if g.get("ecarto_links"):
            for name in headers:
                response.vary.add(name)
        return response

    return add_vary
