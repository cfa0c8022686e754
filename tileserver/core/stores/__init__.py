"""Stores: where data versions are published and read. `open_store` picks one from a URL."""

from __future__ import annotations

from tileserver.core.errors import ConfigError
from tileserver.core.settings import Settings
from tileserver.core.store import Store


def open_store(url: str, settings: Settings) -> Store:
    """The embedded GeoPackage for a `.gpkg` path, PostGIS for a `postgresql://` URL."""
    if url.startswith(("postgresql://", "postgres://")):
        from tileserver.core.stores.postgis import PostGISStore

        return PostGISStore(url, settings)
    if url.endswith(".gpkg"):
        from tileserver.core.stores.geopackage import GeoPackageStore

        return GeoPackageStore(url, settings)
    raise ConfigError(
        f"ECARTO_DATABASE={url!r}: expected a path ending in .gpkg or a postgresql:// URL"
    )
