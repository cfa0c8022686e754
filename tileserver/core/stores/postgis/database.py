"""The connection pool, opened on first use so that building a store never touches the network.

Every way the database can fail to answer (down, unreachable, pool exhausted, connection lost
mid-query) surfaces as `Unavailable` with a retry hint, so a client gets a 503 within
`db_timeout_seconds` instead of a hang or a 500.

Every connection starts with the request deadline as its session defaults: no statement runs or
waits for a lock longer than `request_timeout`, nor sits idle inside a transaction (a stream whose
client stops reading) longer than `IDLE_DEADLINES` of them; PostgreSQL cancels it and the client
gets a `Timeout` (503). The deadline is per
statement, so a long stream of pages, each a `FETCH`, goes on as long as each page is quick. A
publish lifts it for its own session (`unbounded`): an ingest's statements run as long as they need.
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from tileserver.core.errors import IngestError, Timeout, Unavailable
from tileserver.core.settings import Settings

# A database that goes silent (a dropped route, a frozen host) must not hold a request until the
# kernel's two-hour TCP timeout: probe idle connections and give up after about 15 s of silence.
_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 5,
               "tcp_user_timeout": 15_000}
RETRY_AFTER = 5  # seconds a client is told to wait when the database does not answer
TRUSTED_FOR = 1.0  # seconds after a successful use during which a connection is lent without a ping
DEADLINES = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")
# A stream's transaction is idle while the server encodes a page and its client reads it: allow a
# slow client this many deadlines between two pages, then end its session (and free its snapshot).
IDLE_DEADLINES = 6
# What PostgreSQL raises when a deadline cancels a statement (the idle timeout ends the session).
_TIMED_OUT = (errors.QueryCanceled, errors.LockNotAvailable, errors.IdleInTransactionSessionTimeout)


class Database:
    """A lazily opened pool of autocommit connections; use `with db.connection() as conn`."""

    def __init__(self, url: str, settings: Settings):
        self.timeout = settings.request_timeout
        connect_timeout = max(1, math.ceil(settings.db_timeout_seconds))
        self._used: weakref.WeakKeyDictionary[psycopg.Connection, float] = weakref.WeakKeyDictionary()
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=settings.db_pool_size,
            timeout=settings.db_timeout_seconds,
            kwargs={"autocommit": True, "connect_timeout": connect_timeout, **_KEEPALIVES,
                    "options": deadline_options(url, settings.request_timeout)},
            check=self._check,
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
                self._used[conn] = time.monotonic()
        except _TIMED_OUT as error:
            raise Timeout("the query ran past the request deadline and was cancelled") from error
        except (PoolTimeout, psycopg.OperationalError) as error:
            raise Unavailable("the database does not answer", retry_after=RETRY_AFTER) from error

    def limit(self, conn: psycopg.Connection, seconds: float) -> None:
        """Give the statements of the current transaction `seconds` each (what is left of a deadline)."""
        if seconds <= 0:
            raise Timeout("the query ran past the request deadline")
        conn.execute("SELECT set_config('statement_timeout', %s, true)", [f"{max(1, round(seconds * 1000))}"])

    def _check(self, conn: psycopg.Connection) -> None:
        """Ping a connection before lending it, unless it answered less than `TRUSTED_FOR` seconds ago.

        The ping is what lets the pool swap a connection lost while idle (a database restart, a cut
        link) for a new one, so no request sees it; under load, when every connection is busy, it
        would be one more round trip per request (a fifth of a small tile's cost).
        """
        if time.monotonic() - self._used.get(conn, -math.inf) > TRUSTED_FOR:
            ConnectionPool.check_connection(conn)

    def close(self) -> None:
        """Close every connection; the pool cannot be used afterwards."""
        self._pool.close()


@contextmanager
def unbounded(conn: psycopg.Connection) -> Iterator[None]:
    """Lift the request deadline on one connection for a block (a publish), then restore its defaults."""
    for name in DEADLINES:
        conn.execute(sql.SQL("SET {} = 0").format(sql.Identifier(name)))
    try:
        yield
    finally:
        if not conn.closed:
            for name in DEADLINES:
                conn.execute(sql.SQL("RESET {}").format(sql.Identifier(name)))


def deadline_options(url: str, seconds: float) -> str:
    """The `options` of a connection: the URL's own, then each deadline of `DEADLINES` (milliseconds).

    Given at connection start, they are the session's defaults, which `RESET` restores.

    >>> deadline_options("postgresql://h/db?options=-c%20search_path%3Dx", 2.5)
    '-c search_path=x -c statement_timeout=2500 -c lock_timeout=2500 -c idle_in_transaction_session_timeout=15000'
    """
    milliseconds = max(1, round(seconds * 1000))
    values = {name: milliseconds for name in DEADLINES} | {DEADLINES[2]: milliseconds * IDLE_DEADLINES}
    own = conninfo_to_dict(url).get("options") or ""
    return " ".join([*([own] if own else []), *(f"-c {name}={value}" for name, value in values.items())])


def where(url: str) -> str:
    """Host, port and database of a connection URL, for messages (never its password).

    >>> where("postgresql://owner:secret@db.example:6432/ecarto")
    'host db.example, port 6432, database ecarto'
    >>> where("postgresql:///ecarto")
    'host localhost (socket), port 5432, database ecarto'
    """
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "an unreadable URL"
    host = parts.get("host") or "localhost (socket)"
    return f"host {host}, port {parts.get('port') or 5432}, database {parts.get('dbname') or parts.get('user') or '?'}"


def check_connection(url: str, settings: Settings) -> psycopg.Connection:
    """One direct connection (autocommit), or an `IngestError` saying where it could not be made and why."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=max(1, math.ceil(settings.db_timeout_seconds)))
    except psycopg.Error as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise IngestError(f"cannot connect to PostGIS at {where(url)}: {reason}") from None
