"""The server's database role: it reads every published version and can change nothing.

The ingest runs as the owner of the schemas; the server connects as a read-only role, so a
leaked server URL or an injection bug cannot alter or drop data.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from tileserver.core.stores.postgis.versions import CONTROL_SCHEMA, SCHEMA_PREFIX


def grant_read_only(url: str, role: str) -> None:
    """Create `role` (LOGIN) if missing and let it read `ecarto` and every version schema.

    Run it as the user that publishes: default privileges then make each schema and table this
    user creates later readable by `role` too, so a new version needs no new grant.
    """
    name = sql.Identifier(role)
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone() is None:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(name))
        conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(name))
        schemas = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname = %s OR starts_with(nspname, %s)",
            [CONTROL_SCHEMA, SCHEMA_PREFIX],
        ).fetchall()
        for (schema,) in schemas:
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), name))
            conn.execute(
                sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(sql.Identifier(schema), name)
            )
        conn.execute(sql.SQL("ALTER DEFAULT PRIVILEGES GRANT USAGE ON SCHEMAS TO {}").format(name))
        conn.execute(sql.SQL("ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO {}").format(name))
