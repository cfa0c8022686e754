"""Fixtures shared by the test modules; `small_dataset` is what both stores' contract tests publish."""

from __future__ import annotations

import itertools
import math
import os
from collections import defaultdict
from urllib.parse import urlsplit

import numpy as np
import psycopg
import pytest
import shapely
from psycopg import sql
from shapely.geometry import MultiPolygon, Point, box

from tileserver.dataset import Clusters, Dataset, Field, Generalised, Layer
from tileserver.grid import ORIGIN, tile_size, to_mercator

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

CLUSTER_ZOOMS = (0, 6)
CLUSTER_CELLS = 4


@pytest.fixture
def small_dataset() -> Dataset:
    """A fresh, complete Dataset: six schools, three communes with two generalised levels, clusters."""
    return Dataset(
        layers={"etablissements": schools_layer(), "communes": communes_layer()},
        clusters=clusters(),
        cluster_maxzoom=8,
        cluster_cells=CLUSTER_CELLS,
        catalogue=[
            {"id": "ips", "level": "etablissements", "title": "Indice de position sociale", "unit": ""},
            {"id": "effectif", "level": "etablissements", "title": "Élèves", "unit": "élèves"},
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
    """The schools grouped by (zoom, cell, type, statut), as the ingest pyramid does."""
    groups: dict[tuple, list] = defaultdict(lambda: [0, 0.0, 0.0, 0.0, 0])
    for _, _, kind, statut, _, _, _, ips, lon, lat in SCHOOLS:
        x, y = to_mercator(lon, lat)
        for z in CLUSTER_ZOOMS:
            size = tile_size(z) / CLUSTER_CELLS
            cell = (z, math.floor((x + ORIGIN) / size), math.floor((ORIGIN - y) / size), kind, statut)
            group = groups[cell]
            group[0] += 1
            group[1] += x
            group[2] += y
            if ips is not None:
                group[3] += ips
                group[4] += 1
    keys, totals = list(groups), list(groups.values())
    columns = {
        name: np.array([k[i] for k in keys], dtype=np.int64 if i < 3 else object)
        for i, name in enumerate(("z", "cx", "cy", "type", "statut"))
    }
    sums = [("n", np.int64), ("sx", float), ("sy", float), ("ips_sum", float), ("ips_n", np.int64)]
    for i, (name, dtype) in enumerate(sums):
        columns[name] = np.array([t[i] for t in totals], dtype=dtype)
    return Clusters(columns=columns, sums=["ips"])


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
