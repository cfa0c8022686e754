"""Per-request access to what `create_app` set up: settings, the store, this request's snapshot."""

from __future__ import annotations

from flask import current_app, g, request

from tileserver.core.errors import Unavailable
from tileserver.core.settings import Settings
from tileserver.core.store import Snapshot, Store
from tileserver.web.cache import TileCache


def settings() -> Settings:
    """The app's settings."""
    return current_app.extensions["ecarto.settings"]


def store() -> Store:
    """The app's store."""
    return current_app.extensions["ecarto.store"]


def cache() -> TileCache:
    """The app's tile cache (one per worker process)."""
    return current_app.extensions["ecarto.cache"]


def snapshot() -> Snapshot:
    """The data version this request reads: taken once, so every read of a request agrees."""
    if "ecarto_snapshot" not in g:
        snap = store().current()
        if snap is None:
            raise Unavailable("no data has been published yet: run `ecarto ingest`", retry_after=30)
        g.ecarto_snapshot = snap
    return g.ecarto_snapshot


def base_url() -> str:
    """The public root URL, without a trailing slash: the setting, else this request's (see `proxies`).

    Marks the request, so that its answer says it varies on the headers the URL came from.
    """
    g.ecarto_links = True
    configured = settings().base_url
    return (configured or request.url_root).rstrip("/")
