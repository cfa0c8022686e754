"""The app factory: the only place a Flask app is built."""

from __future__ import annotations

import importlib
import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from tileserver.cache import TileCache
from tileserver.errors import EcartoError
from tileserver.settings import Settings
from tileserver.stores import open_store
from tileserver.stores.base import Store

log = logging.getLogger(__name__)

# One blueprint per API resource; each module exposes `blueprint`.
BLUEPRINTS = (
    "tileserver.versions",
)


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> Flask:
    """Build the app: settings read once, one store, every blueprint, one error handler."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.json.sort_keys = False
    app.extensions["ecarto.settings"] = settings
    app.extensions["ecarto.store"] = store or open_store(settings.database, settings)
    app.extensions["ecarto.cache"] = TileCache(settings.cache_bytes)
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1)
    for name in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(name).blueprint)
    _register_errors(app)
    app.after_request(_cors(settings.cors_origins))
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


def _cors(origins: str):
    """An after-request hook adding CORS headers to every response, errors included."""

    def add_headers(response: Response) -> Response:
        response.headers["Access-Control-Allow-Origin"] = origins
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, If-None-Match, Accept"
        response.headers["Access-Control-Expose-Headers"] = "ETag, Content-Crs, Link, Retry-After"
        return response

    return add_headers
