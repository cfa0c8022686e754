"""Fixtures shared by the test modules; `small_dataset` is what both stores' contract tests publish."""

from __future__ import annotations

import gzip
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import psycopg
import pytest
import shapely
from psycopg import sql
from shapely.geometry import MultiPolygon, Point, box

from ingest.clusters import build_clusters
from ingest.job import run
from ingest.manifest import Indicator, load_manifest
from ingest.report import Report
from tileserver.core.dataset import Clusters, Dataset, Field, Generalised, Layer
from tileserver.core.mercator import to_mercator
from tileserver.core.settings import Settings
from tileserver.core.store import VersionInfo
from tileserver.core.stores import open_store

# uai, nom, type, statut, code_commune, education_prioritaire, effectif, ips, lon, lat
SCHOOLS = [
    ("0350001L", "École Jules Ferry", "ecole", "public", "35001", True, 210, 105.2, -1.68, 48.11),
    ("0350002M", "Collège Anne de Bretagne", "college", "public", "35001", False, 420, 98.4, -1.62, 48.09),
    ("0350003N", "Lycée Chateaubriand", "lycee", "public", "35002", False, 1350, 121.7, -1.45, 48.12),
    ("0350004P", "École Saint-Joseph", "ecole", "prive", "35003", None, None, None, -1.15, 48.05),
    ("0350005R", "Collège Les Gayeulles", "college", "public", "35001", True, 380, None, -1.58, 48.13),
    ("0941001C", "EREA Jean Zay", "erea", "public", "94028", False, 95, 88.0, 2.45, 48.79),
]

SCHOOL_FIELDS = [
    Field("uai", "string", "Code UAI"),
    Field("nom", "string", "Nom"),
    Field("type", "string", "Type"),
    Field("statut", "string", "Statut"),
    Field("code_commune", "string", "Commune"),
    Field("education_prioritaire", "boolean", "Éducation prioritaire"),
    Field("effectif", "integer", "Élèves", unit="élèves"),
    Field("ips", "number", "Indice de position sociale", theme="contexte"),
]

# code, nom, geometry (lon/lat); 35003 is L-shaped, so its envelope covers ground its shape does not.
COMMUNES = [
    ("35001", "Rennes", MultiPolygon([box(-1.75, 48.05, -1.55, 48.2)])),
    ("35002", "Cesson-Sévigné", MultiPolygon([box(-1.55, 48.05, -1.25, 48.2)])),
    ("35003", "Acigné", MultiPolygon([box(-1.2, 48.0, -1.0, 48.1), box(-1.1, 48.1, -1.0, 48.2)])),
]

COMMUNE_FIELDS = [
    Field("code", "string", "Code INSEE"),
    Field("nom", "string", "Nom"),
    Field("etablissements", "integer", "Établissements"),
    Field("n_ecole", "integer", "Écoles"),
    Field("n_college", "integer", "Collèges"),
    Field("n_lycee", "integer", "Lycées"),
    Field("n_autre", "integer", "Autres"),
    Field("ips", "number", "Indice de position sociale (moyenne)", theme="contexte"),
]

CLUSTER_MAXZOOM = 8
CLUSTER_CELLS = 4


@pytest.fixture
def small_dataset() -> Dataset:
    """A fresh, complete Dataset: six schools, three communes with two generalised levels, clusters."""
    return Dataset(
        layers={"etablissements": schools_layer(), "communes": communes_layer()},
        clusters=clusters(),
        cluster_maxzoom=CLUSTER_MAXZOOM,
        cluster_cells=CLUSTER_CELLS,
        catalogue=[
            Indicator("ips", "contexte", "Indice de position sociale", "ips.csv", "ips", main=True).to_dict(),
            Indicator("effectif", "contexte", "Élèves", "effectif.csv", "effectif", unit="élèves").to_dict(),
        ],
        report={"datasets": {"annuaire": {"read": 6, "loaded": 6, "rejected": 0, "rejections": []}}},
    )


def schools_layer() -> Layer:
    """The schools, one column per field (the key `uai` included)."""
    columns = {f.name: [row[i] for row in SCHOOLS] for i, f in enumerate(SCHOOL_FIELDS)}
    return Layer(
        id="etablissements",
        title="Établissements",
        description="Écoles, collèges et lycées",
        geometry_type="Point",
        key="uai",
        fields=list(SCHOOL_FIELDS),
        ids=[row[0] for row in SCHOOLS],
        columns=columns,
        geometries=np.array([Point(row[8], row[9]) for row in SCHOOLS], dtype=object),
    )


def communes_layer() -> Layer:
    """The communes with school counts and mean IPS; 35003 vanishes below zoom 8."""
    codes = [c[0] for c in COMMUNES]
    schools = [[s for s in SCHOOLS if s[4] == code] for code in codes]
    ips = [[s[7] for s in group if s[7] is not None] for group in schools]
    counted = {"ecole", "college", "lycee"}
    columns = {
        "code": codes,
        "nom": [c[1] for c in COMMUNES],
        "etablissements": [len(g) for g in schools],
        **{f"n_{t}": [sum(s[2] == t for s in g) for g in schools] for t in sorted(counted)},
        "n_autre": [sum(s[2] not in counted for s in g) for g in schools],
        "ips": [sum(v) / len(v) if v else None for v in ips],
    }
    shapes = [c[2] for c in COMMUNES]
    low = [None if code == "35003" else mercator(s.envelope) for code, s in zip(codes, shapes, strict=True)]
    return Layer(
        id="communes",
        title="Communes",
        description="Communes (COG 2018)",
        geometry_type="MultiPolygon",
        key="code",
        fields=list(COMMUNE_FIELDS),
        ids=codes,
        columns=columns,
        geometries=np.array(shapes, dtype=object),
        generalised=[
            Generalised(0, 7, np.array(low, dtype=object)),
            Generalised(8, 14, np.array([mercator(s) for s in shapes], dtype=object)),
        ],
    )


def mercator(geom):
    """A lon/lat geometry in EPSG:3857."""
    return shapely.transform(geom, lambda xy: np.array([to_mercator(x, y) for x, y in xy]))


def clusters() -> Clusters:
    """The schools grouped by (zoom, cell, type, statut), by the ingest's own clustering."""
    xy = np.array([to_mercator(s[8], s[9]) for s in SCHOOLS])
    ips = np.array([np.nan if s[7] is None else s[7] for s in SCHOOLS])
    return build_clusters(xy[:, 0], xy[:, 1], [s[2] for s in SCHOOLS], [s[3] for s in SCHOOLS], {"ips": ips},
                          maxzoom=CLUSTER_MAXZOOM, cells=CLUSTER_CELLS)


# PostGIS: the server named by ECARTO_TEST_POSTGIS. An unreachable server fails the tests that use it.
POSTGIS_ADMIN_URL = os.environ.get("ECARTO_TEST_POSTGIS", "postgresql://postgres@127.0.0.1:5432/test")
_databases = itertools.count()


def _create_database(name: str, template: str | None = None) -> str:
    """A new database on the test server (replacing one a killed run left); its URL."""
    with psycopg.connect(POSTGIS_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        _drop_database(admin, name)
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        admin.execute(create)
    return urlsplit(POSTGIS_ADMIN_URL)._replace(path=f"/{name}").geturl()


def _drop_database(admin: psycopg.Connection, name: str) -> None:
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def postgis_template():
    """A database with PostGIS installed, cloned for each test (much faster than installing)."""
    name = f"ecarto_test_template_{os.getpid()}"
    with psycopg.connect(_create_database(name), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION postgis")
    yield name
    with psycopg.connect(POSTGIS_ADMIN_URL, autocommit=True) as admin:
        _drop_database(admin, name)


@pytest.fixture
def postgis_url(postgis_template) -> str:
    """The URL of an empty PostGIS database of this test's own, dropped afterwards."""
    name = f"ecarto_test_{os.getpid()}_{next(_databases)}"
    yield _create_database(name, template=postgis_template)
    with psycopg.connect(POSTGIS_ADMIN_URL, autocommit=True) as admin:
        _drop_database(admin, name)


# The national-scale data of ../shared/data, ingested once per test session into each store.
REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ECARTO_DATA", REPO.parent / "shared" / "data"))


@dataclass
class Ingested:
    """A store holding the national data, with what the ingest reported."""

    url: str
    version: VersionInfo
    report: Report
    cache_dir: Path


def ingest_into(url: str, cache_dir: Path, manifest_path: Path = REPO / "sources" / "local.toml") -> Ingested:
    """Run the real ingest of a manifest into the store at `url`."""
    settings = Settings(database=url, version_check_seconds=0, assets_dir=str(cache_dir.parent / "assets"))
    store = open_store(url, settings)
    try:
        version, report = run(load_manifest(manifest_path), store, cache_dir=cache_dir, progress=False)
    finally:
        store.close()
    return Ingested(url, version, report, cache_dir)


@pytest.fixture(scope="session")
def national_gpkg(tmp_path_factory) -> Ingested:
    """../shared/data ingested into a GeoPackage (about 30 s, once per session)."""
    folder = tmp_path_factory.mktemp("national")
    return ingest_into(str(folder / "ecarto.gpkg"), folder / "cache")


@pytest.fixture(scope="session")
def national_postgis(tmp_path_factory, postgis_template) -> Ingested:
    """../shared/data ingested into a PostGIS database of its own (once per session)."""
    url = _create_database(f"ecarto_national_{os.getpid()}", template=postgis_template)
    yield ingest_into(url, tmp_path_factory.mktemp("national-pg") / "cache")
    with psycopg.connect(POSTGIS_ADMIN_URL, autocommit=True) as admin:
        _drop_database(admin, urlsplit(url).path.lstrip("/"))


# OGC API - Features: a few hundred schools in four départements, published once per session to
# each store; the feature tests run against both (`feature_store`), and compare them (`*_store`).
FEATURE_DEPARTEMENTS = [
    # code, nom, lon/lat box, schools
    ("35", "Ille-et-Vilaine", (-2.0, 47.6, -1.0, 48.6), 420),
    ("94", "Val-de-Marne", (2.3, 48.68, 2.6, 48.86), 160),
    ("971", "Guadeloupe", (-61.8, 15.85, -61.0, 16.5), 45),
    ("974", "La Réunion", (55.2, -21.4, 55.85, -20.85), 45),
]
FEATURE_SCHOOL_FIELDS = [
    Field("uai", "string", "UAI"),
    Field("nom", "string", "Nom"),
    Field("type", "string", "Type"),
    Field("statut", "string", "Statut"),
    Field("code_departement", "string", "Code département"),
    Field("education_prioritaire", "boolean", "Éducation prioritaire"),
    Field("effectif", "integer", "Élèves", unit="élèves"),
    Field("ips", "number", "Indice de position sociale"),
]
_UAI_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"


def uai(number: int) -> str:
    """A valid UAI: seven digits and their check letter."""
    return f"{number:07d}{_UAI_LETTERS[number % 23]}"


@pytest.fixture(scope="session")
def features_dataset() -> Dataset:
    """Schools spread over four départements (two overseas), with every field type and unknown values."""
    rng = np.random.default_rng(2026)
    rows = []
    for code, _, (w, s, e, n), count in FEATURE_DEPARTEMENTS:
        for i in range(count):
            kind = ("ecole", "ecole", "college", "lycee", "erea")[i % 5]
            name = {0: f"École Jules-Ferry n°{i}", 1: f"L'École du Parc {i}", 2: f"Collège Anne de Bretagne {i}",
                    3: f"Lycée Chateaubriand {i}", 4: f"EREA 100% réussite_{i}"}[i % 5]
            rows.append((
                uai(int(code.ljust(3, "0")) * 10_000 + i), name, kind, ("public", "prive")[i % 7 == 3], code,
                None if i % 11 == 0 else i % 3 == 0, None if i % 13 == 0 else int(rng.integers(40, 1500)),
                None if i % 9 == 0 else round(float(rng.uniform(60, 140)), 1),
                Point(rng.uniform(w, e), rng.uniform(s, n)),
            ))
    schools = Layer(
        id="etablissements", title="Établissements", description="Écoles, collèges et lycées",
        geometry_type="Point", key="uai", fields=list(FEATURE_SCHOOL_FIELDS), ids=[r[0] for r in rows],
        columns={f.name: [r[i] for r in rows] for i, f in enumerate(FEATURE_SCHOOL_FIELDS)},
        geometries=np.array([r[-1] for r in rows], dtype=object),
    )
    departements = Layer(
        id="departements", title="Départements", description="Départements", geometry_type="MultiPolygon",
        key="code", fields=[Field("code", "string", "Code"), Field("nom", "string", "Nom"),
                            Field("etablissements", "integer", "Établissements")],
        ids=[d[0] for d in FEATURE_DEPARTEMENTS],
        columns={"code": [d[0] for d in FEATURE_DEPARTEMENTS], "nom": [d[1] for d in FEATURE_DEPARTEMENTS],
                 "etablissements": [d[3] for d in FEATURE_DEPARTEMENTS]},
        geometries=np.array([MultiPolygon([box(*d[2])]) for d in FEATURE_DEPARTEMENTS], dtype=object),
    )
    one_cluster = {"z": [0], "cx": [0], "cy": [0], "type": ["ecole"], "statut": ["public"], "n": [len(rows)],
                   "sx": [0.0], "sy": [0.0]}
    return Dataset(
        layers={"etablissements": schools, "departements": departements},
        clusters=Clusters({k: np.array(v, dtype=object if k in ("type", "statut") else None)
                           for k, v in one_cluster.items()}, sums=[]),
        cluster_maxzoom=8, cluster_cells=4, catalogue=[], report={},
    )


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
    url = _create_database(name, template=postgis_template)
    settings = Settings(database=url, assets_dir=str(tmp_path_factory.mktemp("assets")))
    store = PostGISStore(url, settings)
    store.publish(features_dataset)
    yield store
    store.close()
    with psycopg.connect(POSTGIS_ADMIN_URL, autocommit=True) as admin:
        _drop_database(admin, name)


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


# Styles, map, sheets and QGIS: every collection and the real catalogue (see tests/themed.py).
@pytest.fixture(scope="session")
def themed_store(tmp_path_factory):
    """A GeoPackage store serving `themed.themed_dataset()`."""
    from tests.themed import themed_dataset

    path = str(tmp_path_factory.mktemp("themed") / "ecarto.gpkg")
    store = open_store(path, Settings(database=path))
    store.publish(themed_dataset())
    yield store
    store.close()


@pytest.fixture(scope="session")
def themed_postgis_store(postgis_template, tmp_path_factory):
    """A PostGIS store serving `themed.themed_dataset()`, in a database of its own for the session."""
    from tests.themed import themed_dataset

    name = f"ecarto_test_themed_{os.getpid()}"
    url = _create_database(name, template=postgis_template)
    store = open_store(url, Settings(database=url, assets_dir=str(tmp_path_factory.mktemp("themed-assets"))))
    store.publish(themed_dataset())
    yield store
    store.close()
    with psycopg.connect(POSTGIS_ADMIN_URL, autocommit=True) as admin:
        _drop_database(admin, name)


@pytest.fixture
def themed_app(themed_store):
    """An app over `themed_store`."""
    from tileserver.web.app import create_app

    return create_app(Settings(database=themed_store.url), store=themed_store)


def small_manifest(tmp_path: Path, schools: Path, *, departement: str) -> Path:
    """A manifest over one sample file, with the communes of its département only (fast)."""
    with gzip.open(DATA / "boundaries-2018/communes-avec-outre-mer.geojson.gz", "rt", encoding="utf-8") as handle:
        communes = json.load(handle)
    communes["features"] = [f for f in communes["features"] if f["properties"]["code"].startswith(departement)]
    (tmp_path / "communes.geojson").write_text(json.dumps(communes), encoding="utf-8")
    manifest = tmp_path / f"sources-{departement}.toml"
    manifest.write_text(
        f"""
surfaces = false
[schools]
url = "{schools}"
[communes]
url = "communes.geojson"
[departements]
url = "{DATA}/boundaries-2018/departements-avec-outre-mer.geojson"
[academies]
url = "{DATA}/academies/fr-en-contour-academies-2020.geojson"
[regions]
url = "{DATA}/boundaries-2018/regions-avec-outre-mer.geojson"
""",
        encoding="utf-8",
    )
    return manifest


# Tests that need ../shared/data: marked `national` (by hand, or here when they use a national
# fixture). Without the data they are skipped, except in CI (`CI` set), where the data must be.
NATIONAL_FIXTURES = {"national_gpkg", "national_postgis"}
NO_DATA = f"needs ../shared/data, absent here ({DATA}; set ECARTO_DATA)"


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
