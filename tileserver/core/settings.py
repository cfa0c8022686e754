"""One typed settings object, read from `ECARTO_*` environment variables once, validated at start-up."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, get_type_hints
from urllib.parse import urlsplit

from tileserver.core.errors import ConfigError

PREFIX = "ECARTO_"


@dataclass(frozen=True)
class Settings:
    """Everything an operator can set; each field is read from `ECARTO_<NAME>`."""

    database: str = "var/ecarto.gpkg"  # a GeoPackage path or a postgresql:// URL
    base_url: str = ""  # the public URL prefix; when set, no request header changes a link
    trusted_proxies: str = ""  # comma-separated IPs/CIDRs whose X-Forwarded-* headers are believed
    cors_origins: str = "*"  # the Access-Control-Allow-Origin every response carries
    cache_bytes: int = 256 * 1024 * 1024  # in-process tile cache, per worker
    cache_control: str = "public, max-age=3600"  # Cache-Control of tiles and features
    default_limit: int = 10  # features per page when the request gives no `limit`
    max_limit: int = 10_000  # the largest `limit` a request may ask; above it is a 400
    max_filter_depth: int = 20  # nesting depth of a CQL2 filter; deeper is a 400
    max_filter_length: int = 20_000  # characters of a CQL2 filter; longer is a 400
    version_check_seconds: float = 1.0  # how often a worker looks for a newly published version
    basemap_url: str = ""  # a MapLibre style URL under /map, or a raster `{z}/{x}/{y}` template in the styles
    db_pool_size: int = 4  # PostGIS connections per worker (pool maximum)
    db_timeout_seconds: float = 5.0  # PostGIS connect and pool wait; past it a 503, not a hang
    assets_dir: str = "var/assets"  # files of a PostGIS version (raster COGs), one folder per version
    redis_url: str = ""  # the tile cache shared by every worker and machine (docs/scaling.md); unset: none
    redis_prefix: str = "ecarto"  # of every key, so several deployments can share one Redis
    redis_timeout_seconds: float = 0.05  # a Redis call slower than this is given up, and Redis left alone a while
    redis_backoff_seconds: float = 5.0  # how long a worker leaves Redis alone after a failed or slow call
    hot_sample: int = 16  # one tile request in this many is counted, to warm the next version's hot set
    warm_maxzoom: int = 8  # a new version's warm-up makes every tile up to this zoom (docs/scaling.md)
    warm_top: int = 2000  # and this many of the previous version's most requested tiles
    warm_deadline_seconds: float = 120.0  # a new version is served after this long, warm or not
    request_timeout: float = 10.0  # seconds one database statement (or one streamed page) may run
    max_expensive: int = 2  # filtered item requests at once per worker (keep below db_pool_size); more: 503
    max_filter_cost: int = 50_000_000  # estimated row tests of a CQL2 filter (see `filtercost`); more is a 400

    def __post_init__(self) -> None:
        if self.default_limit < 1 or self.max_limit < 1:
            raise ConfigError("ECARTO_DEFAULT_LIMIT and ECARTO_MAX_LIMIT must be positive")
        if self.default_limit > self.max_limit:
            raise ConfigError(
                f"ECARTO_DEFAULT_LIMIT ({self.default_limit}) is above ECARTO_MAX_LIMIT ({self.max_limit})"
            )
        if self.cache_bytes < 0:
            raise ConfigError("ECARTO_CACHE_BYTES cannot be negative")
        if self.db_pool_size < 1:
            raise ConfigError("ECARTO_DB_POOL_SIZE must be at least 1")
        if not self.request_timeout > 0:
            raise ConfigError("ECARTO_REQUEST_TIMEOUT must be a positive number of seconds")
        if self.max_expensive < 1 or self.max_filter_cost < 1:
            raise ConfigError("ECARTO_MAX_EXPENSIVE and ECARTO_MAX_FILTER_COST must be positive")
        if self.base_url and urlsplit(self.base_url).scheme not in ("http", "https"):
            raise ConfigError(f"ECARTO_BASE_URL={self.base_url!r} must start with http:// or https://")
        proxy_networks(self.trusted_proxies)
        if self.redis_timeout_seconds <= 0 or self.redis_backoff_seconds < 0:
            raise ConfigError("ECARTO_REDIS_TIMEOUT_SECONDS must be positive, "
                              "ECARTO_REDIS_BACKOFF_SECONDS not negative")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every field from the environment; `overrides` win (for tests and the CLI)."""
        environ = os.environ if environ is None else environ
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _convert(f.name, raw, hints[f.name])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def environ(self) -> dict[str, str]:
        """The `ECARTO_*` variables that read back as these settings, for a process started from this one.

        >>> Settings.from_env(Settings(max_limit=50).environ()).max_limit
        50
        """
        return {PREFIX + f.name.upper(): str(getattr(self, f.name)) for f in fields(self)}

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def proxy_networks(text: str) -> tuple[Network, ...]:
    """The networks of `ECARTO_TRUSTED_PROXIES`: addresses or CIDRs, comma-separated; none by default.

    >>> [str(n) for n in proxy_networks("10.0.0.0/8, 127.0.0.1,::1")]
    ['10.0.0.0/8', '127.0.0.1/32', '::1/128']
    """
    try:
        return tuple(ipaddress.ip_network(part.strip()) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise ConfigError(f"{PREFIX}TRUSTED_PROXIES={text!r}: {error}") from None


def _convert(name: str, raw: str, kind: type) -> Any:
    """Turn an environment string into the field's type, with a message naming the variable."""
    try:
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is bool:
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        return raw
    except ValueError:
        raise ConfigError(f"{PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}") from None
