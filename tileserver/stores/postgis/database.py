"""The connection pool, opened on first use so that building a store never touches the network.

Every way the database can fail to answer (down, unreachable, pool exhausted, connection lost
mid-query) surfaces as `Unavailable` with a retry hint, so a client gets a 503 within
`db_timeout_seconds` instead of a hang or a 500.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from tileserver.errors import Unavailable
from tileserver.settings import Settings

# A database that goes silent (a dropped route, a frozen host) must not hold a request until the
# kernel's two-hour TCP timeout: probe idle connections and give up after about 15 s of silence.
_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 5,
               "tcp_user_timeout": 15_000}
RETRY_AFTER = 5  # seconds a client is told to wait when the database does not answer


class Database:
    """A lazily opened pool of autocommit connections; use `with db.connection() as conn`."""

    def __init__(self, url: str, settings: Settings):
        connect_timeout = max(1, math.ceil(settings.db_timeout_seconds))
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=settings.db_pool_size,
            timeout=settings.db_timeout_seconds,
            kwargs={"autocommit": True, "connect_timeout": connect_timeout, **_KEEPALIVES},
            check=ConnectionPool.check_connection,
            # psycopg_pool retries a lost connection with a doubling delay for `reconnect_timeout`
            # (5 min by default), so after a long outage it could wait minutes more before trying
            # again; giving up early lets the next request start a fresh, immediate attempt.
            reconnect_timeout=settings.db_timeout_seconds,
            open=False,
            name="ecarto-postgis",
        )

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection, in autocommit mode: wrap writes in `conn.transaction()`."""
        if self._pool.closed:
            self._pool.open(wait=False)
        try:
            with self._pool.connection() as conn:
                yield conn
        except (PoolTimeout, psycopg.OperationalError) as error:
            raise Unavailable("the database does not answer", retry_after=RETRY_AFTER) from error

    def close(self) -> None:
        """Close every connection; the pool cannot be used afterwards."""
        self._pool.close()
