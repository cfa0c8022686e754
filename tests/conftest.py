"""The fixture chain: settings -> store -> app -> client, for each dataset the tests publish.

Datasets and helpers live in `tests/support/`; this file holds the fixtures, the PostGIS databases
and Redis prefixes they need, and the hooks that mark and report tests needing ../shared/data.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from urllib.parse import urlsplit

import psycopg
import pytest
import redis
from flask import Flask

from tests.support import datasets, served
from tests.support.national import DATA, NO_DATA, Ingested, ingest_into
from tests.support.postgis import POSTGIS_ADMIN_URL, create_database, drop_database, next_name
from tileserver.core.dataset import Dataset
from tileserver.core.settings import Settings
from tileserver.core.stores import open_store


@pytest.fixture
def small_dataset() -> Dataset:
    """A fresh, complete Dataset: six schools, three communes with two generalised levels, clusters."""
    return datasets.small_dataset()


@pytest.fixture(scope="session")
def features_dataset() -> Dataset:
    """Schools spread over four départements (two overseas), with every field type and unknown values."""
    return datasets.features_dataset()


@pytest.fixture(scope="session")
def postgis_template():
    """A database with PostGIS installed, cloned for each test (much faster than installing)."""
    name = f"ecarto_test_template_{os.getpid()}"
    with psycopg.connect(create_database(name), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION postgis")
    yield name
    with psycopg.connect(POSTGIS_ADMIN_URL, autocommit=True) as admin:
        drop_database(admin, name)


@pytest.fixture
def postgis_url(postgis_template) -> str:
    """The URL of an empty PostGIS database of this test's own, dropped afterwards."""
    name = next_name()
    yield create_database(name, template=postgis_template)
    with psycopg.connect(POSTGIS_ADMIN_URL, autocommit=True) as admin:
        drop_database(admin, name)


@pytest.fixture(scope="session")
def national_gpkg(tmp_path_factory) -> Ingested:
    """../shared/data ingested into a GeoPackage (about 30 s, once per session)."""
    folder = tmp_path_factory.mktemp("national")
    return ingest_into(str(folder / "ecarto.gpkg"), folder / "cache")


@pytest.fixture(scope="session")
def national_postgis(tmp_path_factory, postgis_template) -> Ingested:
    """../shared/data ingested into a PostGIS database of its own (once per session)."""
    url = create_database(f"ecarto_national_{os.getpid()}", template=postgis_template)
    yield ingest_into(url, tmp_path_factory.mktemp("national-pg") / "cache")
    with psycopg.connect(POSTGIS_ADMIN_URL, autocommit=True) as admin:
        drop_database(admin, urlsplit(url).path.lstrip("/"))


@pytest.fixture(scope="session")
def geopackage_store(tmp_path_factory, features_dataset):
    """The embedded store serving `features_dataset`."""
    from tileserver.core.settings import Settings
    from tileserver.core.stores.geopackage import GeoPackageStore

    path = str(tmp_path_factory.mktemp("features") / "features.gpkg")
    store = GeoPackageStore(path, Settings(database=path))
    store.publish(features_dataset)
    yield store
    store.close()


@pytest.fixture(scope="session")
def postgis_store(postgis_template, tmp_path_factory, features_dataset):
    """The PostGIS store serving `features_dataset`, in a database of its own for the session."""
    from tileserver.core.settings import Settings
    from tileserver.core.stores.postgis import PostGISStore

    name = f"ecarto_test_features_{os.getpid()}"
    url = create_database(name, template=postgis_template)
    settings = Settings(database=url, assets_dir=str(tmp_path_factory.mktemp("assets")))
    store = PostGISStore(url, settings)
    store.publish(features_dataset)
    yield store
    store.close()
    with psycopg.connect(POSTGIS_ADMIN_URL, autocommit=True) as admin:
        drop_database(admin, name)


@pytest.fixture(scope="session", params=["geopackage", "postgis"])
def feature_store(request):
    """Each store in turn, serving the same `features_dataset`."""
    return request.getfixturevalue(f"{request.param}_store")


@pytest.fixture(scope="session")
def feature_app(feature_store):
    """An app over `feature_store`."""
    from tileserver.core.settings import Settings
    from tileserver.web.app import create_app

    return create_app(Settings(database=feature_store.url, max_limit=1000), store=feature_store)


# Styles, map, sheets and QGIS: every collection and the real catalogue (see tests/support/themed.py).
@pytest.fixture(scope="session")
def themed_store(tmp_path_factory):
    """A GeoPackage store serving `themed.themed_dataset()`."""
    from tests.support.themed import themed_dataset

    path = str(tmp_path_factory.mktemp("themed") / "ecarto.gpkg")
    store = open_store(path, Settings(database=path))
    store.publish(themed_dataset())
    yield store
    store.close()


@pytest.fixture(scope="session")
def themed_postgis_store(postgis_template, tmp_path_factory):
    """A PostGIS store serving `themed.themed_dataset()`, in a database of its own for the session."""
    from tests.support.themed import themed_dataset

    name = f"ecarto_test_themed_{os.getpid()}"
    url = create_database(name, template=postgis_template)
    store = open_store(url, Settings(database=url, assets_dir=str(tmp_path_factory.mktemp("themed-assets"))))
    store.publish(themed_dataset())
    yield store
    store.close()
    with psycopg.connect(POSTGIS_ADMIN_URL, autocommit=True) as admin:
        drop_database(admin, name)


@pytest.fixture
def themed_app(themed_store):
    """An app over `themed_store`."""
    from tileserver.web.app import create_app

    return create_app(Settings(database=themed_store.url), store=themed_store)


# Tests that need ../shared/data: marked `national` (by hand, or here when they use a national
# fixture). Without the data they are skipped, except in CI (`CI` set), where the data must be.
NATIONAL_FIXTURES = {"national_gpkg", "national_postgis"}


def pytest_collection_modifyitems(config, items):
    """Mark the tests of national fixtures `national`; skip every `national` test when the data is absent."""
    for item in items:
        if NATIONAL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.national)
    if DATA.is_dir() or os.environ.get("CI"):
        return
    for item in items:
        if "national" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=NO_DATA))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI the data is there: a test skipped for want of it (a module's own `pytest.skip`) fails."""
    report = (yield).get_result()
    if os.environ.get("CI") and report.skipped and "ECARTO_DATA" in str(report.longrepr):
        report.outcome = "failed"


def pytest_terminal_summary(terminalreporter):
    """One line naming the tests not run and why, so a skip is never missed in a long log."""
    reasons: dict[str, list[str]] = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2].removeprefix("Skipped: ") if isinstance(report.longrepr, tuple) else "?"
        reason = NO_DATA if "ECARTO_DATA" in reason else reason
        reasons.setdefault(reason, []).append(report.nodeid.split("::")[0].removeprefix("tests/"))
    if reasons:
        parts = [f"{len(files)} ({', '.join(sorted(set(files)))}) {reason}" for reason, files in reasons.items()]
        terminalreporter.write_line(f"not run: {'; '.join(parts)}", yellow=True)


# Redis: the machine's server on 127.0.0.1:6379 (shared by every test run: use `redis_prefix`).
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The machine's Redis, started as scripts/system-packages.sh starts it when it is not running."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.ConnectionError:
        subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379", "--save", "",
                        "--appendonly", "no"], check=True)
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url) -> str:
    """A key prefix of this test's own, its keys deleted afterwards."""
    name = f"ecarto-test-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{name}:*"))
    if keys:
        client.delete(*keys)
    client.close()


# `pytest --served`: every test client speaks HTTP to a server started as the Procfile starts it.
def pytest_addoption(parser):
    parser.addoption("--served", action="store_true",
                     help="send every test client's requests to the Procfile's server (tests/support/served.py)")


@pytest.fixture(scope="session", autouse=True)
def served_pool(request, tmp_path_factory):
    """Under `--served`, `Flask.test_client` answers over HTTP from Procfile servers; otherwise nothing."""
    if not request.config.getoption("--served"):
        yield None
        return
    pool = served.ServerPool(tmp_path_factory.mktemp("served"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Flask, "test_client", lambda app, *args, **kwargs: served.ServedClient(app, pool))
        yield pool
    pool.close()


@pytest.fixture(autouse=True)
def in_process(request, served_pool):
    """A test marked `in_process` keeps Flask's own client under `--served` (its reason says why)."""
    if served_pool is None:
        yield
        return
    if request.node.get_closest_marker("in_process") is not None:
        served.IN_PROCESS.set()
    yield
    served.IN_PROCESS.clear()
