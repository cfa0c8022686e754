"""Test databases on the PostgreSQL server named by ECARTO_TEST_POSTGIS: created per test or session, dropped after."""

from __future__ import annotations

import itertools
import os
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

# PostGIS: the server named by ECARTO_TEST_POSTGIS. An unreachable server fails the tests that use it.
POSTGIS_ADMIN_URL = os.environ.get("ECARTO_TEST_POSTGIS", "postgresql://postgres@127.0.0.1:5432/test")
_databases = itertools.count()


def next_name() -> str:
    """A database name of this process's own, new at each call."""
    return f"ecarto_test_{os.getpid()}_{next(_databases)}"


def create_database(name: str, template: str | None = None) -> str:
    """A new database on the test server (replacing one a killed run left); its URL."""
    with psycopg.connect(POSTGIS_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        drop_database(admin, name)
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        admin.execute(create)
    return urlsplit(POSTGIS_ADMIN_URL)._replace(path=f"/{name}").geturl()


def drop_database(admin: psycopg.Connection, name: str) -> None:
    """Drop a test database, closing the sessions still on it."""
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
