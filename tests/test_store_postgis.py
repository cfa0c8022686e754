"""The PostGIS store against a real database: publish, reads, atomic switch, pruning, read-only role.

Each test gets its own database (`postgis_url` in conftest.py), so tests never see each other's
versions, nor those of any other suite using the same server. An unreachable server fails the
tests: it is never a reason to skip them.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from psycopg import errors, sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

from tests.test_cql import FOLDED, INFO
from tileserver.core import cql
from tileserver.core.crs import CRS84
from tileserver.core.errors import Unavailable
from tileserver.core.mercator import to_mercator
from tileserver.core.settings import Settings
from tileserver.core.store import FeatureQuery
from tileserver.core.stores.postgis import PostGISStore, database, grant_read_only
from tileserver.web import filters


@pytest.fixture
def read_only_role(postgis_url):
    """A role name of this run's own, dropped afterwards (roles belong to the whole server)."""
    role = f"ecarto_reader_{os.getpid()}"
    yield role
    with psycopg.connect(postgis_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
            conn.execute(sql.SQL("DROP OWNED BY {name}; DROP ROLE {name}").format(name=sql.Identifier(role)))


@pytest.fixture
def settings(postgis_url, tmp_path) -> Settings:
    return Settings(database=postgis_url, assets_dir=str(tmp_path / "assets"), version_check_seconds=0)


@pytest.fixture
def store(settings):
    store = PostGISStore(settings.database, settings)
    yield store
    store.close()


@pytest.fixture
def snapshot(store, small_dataset):
    store.publish(small_dataset)
    return store.current()


def schemas(url: str) -> list[str]:
    """The version schemas present in the database."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, 'ecarto_v')")
        return sorted(r[0] for r in rows)






def test_an_abandoned_page_gives_its_connection_back(settings, small_dataset):
    store = PostGISStore(settings.database, settings.replace(db_pool_size=1, db_timeout_seconds=2))
    try:
        store.publish(small_dataset)
        page = store.current().query(FeatureQuery("etablissements", limit=100))
        next(page.features)  # the page now holds the only connection
        page.features.close()
        assert store.current().get("etablissements", small_dataset.layers["etablissements"].ids[0])
    finally:
        store.close()


def test_physical_schema_for_tiles(store, snapshot, small_dataset):
    schema = sql.Identifier(snapshot.schema)
    with psycopg.connect(store.url) as conn:
        x, y = conn.execute(
            sql.SQL("SELECT ST_X(geom3857), ST_Y(geom3857) FROM {}.etablissements ORDER BY fid LIMIT 1").format(
                schema
            )
        ).fetchone()
        generalised = conn.execute(
            sql.SQL("SELECT code, minzoom, maxzoom FROM {}.communes_generalised ORDER BY 2, 1").format(schema)
        ).fetchall()
        clusters = conn.execute(sql.SQL("SELECT count(*), sum(n) FROM {}.clusters").format(schema)).fetchone()
        indexes = {
            r[0]
            for r in conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = %s", [snapshot.schema]
            )
        }
    first = small_dataset.layers["etablissements"].geometries[0]
    assert (x, y) == pytest.approx(to_mercator(first.x, first.y), abs=1e-6)
    communes = small_dataset.layers["communes"]
    expected = sorted(
        (k, g.minzoom, g.maxzoom)
        for g in communes.generalised
        for k, geom in zip(communes.ids, g.geometries, strict=True)
        if geom is not None
    )
    assert sorted(generalised) == expected
    assert clusters == (len(small_dataset.clusters), int(small_dataset.clusters.columns["n"].sum()))
    assert any("USING gist (geom3857)" in d and ".etablissements " in d for d in indexes)
    assert any("USING gist (geom)" in d and ".communes_generalised " in d for d in indexes)
    assert any("(z, cx, cy)" in d for d in indexes)




def test_a_failed_publish_leaves_the_previous_version_served(store, settings, small_dataset, tmp_path):
    first = store.publish(small_dataset)
    source = tmp_path / "r.tif"
    source.write_bytes(b"x")
    small_dataset.rasters = {"r": {"path": str(source)}}
    small_dataset.layers["communes"].columns["etablissements"][0] = "many"  # fails the second COPY
    with pytest.raises(ValueError):
        store.publish(small_dataset)
    assert store.current().version.id == first.id
    assert [v.id for v in store.versions()] == [first.id]
    assert schemas(store.url) == [f"ecarto_v{first.id}"]
    assert not (Path(settings.assets_dir).exists() and any(Path(settings.assets_dir).iterdir()))


def test_a_database_error_midway_rolls_back_too(store, small_dataset):
    first = store.publish(small_dataset)
    small_dataset.layers["communes"].ids[1] = small_dataset.layers["communes"].ids[0]  # duplicate key
    with pytest.raises(errors.UniqueViolation):
        store.publish(small_dataset)
    assert store.current().version.id == first.id
    assert schemas(store.url) == [f"ecarto_v{first.id}"]


def test_publish_keeps_the_previous_version_and_drops_older_and_unmarked_ones(store, settings, small_dataset):
    first = store.publish(small_dataset)
    with psycopg.connect(store.url, autocommit=True) as conn:
        conn.execute('CREATE SCHEMA "ecarto_v20000101T000000000000"')  # left by a killed run
    killed_files = Path(settings.assets_dir) / "20000101T000000000000"
    killed_files.mkdir(parents=True)
    second = store.publish(small_dataset)
    assert schemas(store.url) == [f"ecarto_v{first.id}", f"ecarto_v{second.id}"]
    assert not killed_files.exists()
    third = store.publish(small_dataset)
    assert schemas(store.url) == [f"ecarto_v{second.id}", f"ecarto_v{third.id}"]
    assert [v.id for v in store.versions()] == [third.id, second.id, first.id]
    assert store.current().version.id == third.id


def test_concurrent_publishes_take_turns(settings, small_dataset):
    stores = [PostGISStore(settings.database, settings) for _ in range(3)]
    try:
        with ThreadPoolExecutor(len(stores)) as pool:
            published = sorted(v.id for v in pool.map(lambda s: s.publish(small_dataset), stores))
        assert [v.id for v in stores[0].versions()] == published[::-1]
        assert stores[0].current().version.id == published[-1]
        assert schemas(settings.database) == [f"ecarto_v{i}" for i in published[-2:]]
    finally:
        for store in stores:
            store.close()




def test_a_connection_is_pinged_only_after_sitting_idle_and_one_lost_meanwhile_is_replaced(
        settings, small_dataset, monkeypatch):
    name = f"ecarto_idle_{os.getpid()}"
    url = make_conninfo(settings.database, application_name=name)
    store = PostGISStore(url, settings.replace(database=url, db_pool_size=1))
    pings = []
    ping = ConnectionPool.check_connection
    monkeypatch.setattr(ConnectionPool, "check_connection", lambda conn: (pings.append(conn), ping(conn)))
    try:
        store.publish(small_dataset)
        snapshot, key = store.current(), small_dataset.layers["etablissements"].ids[0]
        pings.clear()
        for _ in range(5):  # one after the other, as under load: no round trip before each
            assert snapshot.get("etablissements", key)
        assert pings == []
        with psycopg.connect(settings.database, autocommit=True) as admin:
            killed = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                   " WHERE application_name = %s", [name]).fetchone()[0]
        assert killed == 1
        time.sleep(database.TRUSTED_FOR + 0.2)
        assert snapshot.get("etablissements", key)  # the ping found the connection dead: a new one answered
        assert len(pings) >= 1
    finally:
        store.close()


def test_an_unreachable_database_is_unavailable_quickly(tmp_path):
    settings = Settings(db_timeout_seconds=1, assets_dir=str(tmp_path))
    store = PostGISStore("postgresql://postgres@127.0.0.1:1/none", settings)
    started = time.monotonic()
    try:
        with pytest.raises(Unavailable) as raised:
            store.current()
    finally:
        store.close()
    assert raised.value.retry_after == 5
    assert time.monotonic() - started < 5


def test_the_read_only_role_reads_but_cannot_write(store, small_dataset, read_only_role):
    version = store.publish(small_dataset)
    grant_read_only(store.url, read_only_role)
    reader_url = make_conninfo(store.url, user=read_only_role)
    reader = PostGISStore(reader_url, Settings(version_check_seconds=0))
    try:
        assert reader.current().query(FeatureQuery("communes")).matched == len(small_dataset.layers["communes"])
    finally:
        reader.close()
    table = sql.Identifier(f"ecarto_v{version.id}", "communes")
    with psycopg.connect(reader_url, autocommit=True) as conn:
        with pytest.raises(errors.ReadOnlySqlTransaction):
            conn.execute(sql.SQL("INSERT INTO {} (code) VALUES ('x')").format(table))
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(sql.SQL("INSERT INTO {} (code) VALUES ('x')").format(table))
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("UPDATE ecarto.versions SET current = false")


def test_the_read_only_role_reads_versions_published_after_the_grant(store, small_dataset, read_only_role):
    store.publish(small_dataset)
    grant_read_only(store.url, read_only_role)
    store.publish(small_dataset)
    reader = PostGISStore(make_conninfo(store.url, user=read_only_role), Settings())
    try:
        assert reader.current().get("communes", "35001").id == "35001"
    finally:
        reader.close()


def test_casei_and_accenti_fold_as_the_embedded_store_does(postgis_url):
    """The database's translate() with the dialect's maps gives what SQLite's functions give, whatever its locale."""
    folds = [cql.to_postgis(INFO, filters.parse(f"{name}(nom) = 'x'", "cql2-text", CRS84, max_length=100,
                                                max_depth=5))[1][:2] for name in ("CASEI", "ACCENTI")]
    with psycopg.connect(postgis_url) as conn:
        folded = conn.execute("SELECT translate(%s, %s, %s), translate(%s, %s, %s)",
                              [FOLDED, *folds[0], FOLDED, *folds[1]]).fetchone()
    assert folded == ("l'école noël-çà, œuvre ÿ åström δ", "L'ECOLE Noel-Ca, Œuvre Y ASTROM Δ")
