"""The server's database role: it reads every published version and can write nothing, not even scratch.

The ingest runs as the owner of the schemas; the server connects as a read-only role, so a
leaked server URL or an injection bug cannot alter or drop data, nor fill the disk: besides
having no write privilege on any schema, the role cannot create temporary tables (no `TEMP`
on the database), nor large objects, and its sorts and hashes spill at most `temp_file_limit`.

`TEMP` is a database privilege every role holds through `PUBLIC`, and PostgreSQL cannot deny a
single role what `PUBLIC` grants: so `PUBLIC` loses it on this database, and the calling user and
the database owner get it back by name. Any other role that needs temporary tables here must
then be granted `TEMPORARY` by name. Large objects likewise: creating one is revoked from
`PUBLIC` on this database (the server and the ingest never use them).
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from tileserver.core.errors import ConfigError
from tileserver.core.stores.postgis.versions import CONTROL_SCHEMA, SCHEMA_PREFIX

DEFAULT_TEMP_FILE_LIMIT = "256MB"  # per session: room for the server's sorts, not for filling the disk
LARGE_OBJECT_MAKERS = ("lo_create(oid)", "lo_creat(integer)", "lo_from_bytea(oid, bytea)", "lo_import(text)",
                       "lo_import(text, oid)")


def grant_read_only(url: str, role: str, *, temp_file_limit: str = DEFAULT_TEMP_FILE_LIMIT) -> None:
    """Create `role` (LOGIN) if missing, let it read `ecarto` and every version schema, and write nothing.

    Run it as the user that publishes: default privileges then make each schema and table this
    user creates later readable by `role` too, so a new version needs no new grant. Revoking
    `TEMP` needs the database's owner; `temp_file_limit` and large objects need a superuser: a
    `ConfigError` names what is left for one to run.
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
        _no_scratch(conn, role, temp_file_limit)


def _no_scratch(conn: psycopg.Connection, role: str, temp_file_limit: str) -> None:
    """Take `TEMP` and large objects away from `role`, bound its temporary files, and check it holds."""
    name = sql.Identifier(role)
    database = sql.Identifier(conn.info.dbname)
    owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
                         ).fetchone()[0]
    for keeper in dict.fromkeys((conn.info.user, owner)):
        if keeper != role:
            conn.execute(sql.SQL("GRANT TEMPORARY ON DATABASE {} TO {}").format(database, sql.Identifier(keeper)))
    for grantee in (sql.SQL("PUBLIC"), name):
        conn.execute(sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM {}").format(database, grantee))
    left = []
    try:
        conn.execute(sql.SQL("ALTER ROLE {} SET temp_file_limit = {}").format(name, sql.Literal(temp_file_limit)))
    except psycopg.errors.InsufficientPrivilege:
        left.append(f"ALTER ROLE {role} SET temp_file_limit = '{temp_file_limit}'")
    for function in LARGE_OBJECT_MAKERS:  # a user who may not revoke gets a warning, not an error: checked below
        conn.execute(f"REVOKE EXECUTE ON FUNCTION pg_catalog.{function} FROM PUBLIC")
        if conn.execute("SELECT has_function_privilege(%s, %s, 'EXECUTE')", [role, f"pg_catalog.{function}"]
                        ).fetchone()[0]:
            left.append(f"REVOKE EXECUTE ON FUNCTION pg_catalog.{function} FROM PUBLIC")
    if conn.execute("SELECT has_database_privilege(%s, current_database(), 'TEMP')", [role]).fetchone()[0]:
        left.insert(0, f"REVOKE TEMPORARY ON DATABASE {conn.info.dbname} FROM PUBLIC (as the database owner)")
    if left:
        raise ConfigError(f"role {role} can still write scratch data; a superuser must run: {'; '.join(left)}")
