"""The small synthetic datasets the store, feature and tile tests publish: rows in, a `Dataset` out.

`small_dataset` (six schools, three communes: every store contract test) and `features_dataset`
(a few hundred schools in four départements: the OGC API tests on both stores). The larger ones
are `themed.themed_dataset` (every collection and the real catalogue) and
`tiletools.synthetic_dataset` (tile content at scale).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Point, box

from ingest.clusters import build_clusters
from ingest.manifest import Indicator
from tileserver.core.dataset import COUNTED_TYPES, Clusters, Dataset, Field, Generalised, Layer
from tileserver.core.mercator import to_mercator

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
    members = [[i for i, s in enumerate(SCHOOLS) if s[4] == code] for code in codes]
    ips = [[SCHOOLS[i][7] for i in group if SCHOOLS[i][7] is not None] for group in members]
    columns = {
        "code": codes,
        "nom": [c[1] for c in COMMUNES],
        **school_counts([s[2] for s in SCHOOLS], members),
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


def clusters() -> Clusters:
    """The schools grouped by (zoom, cell, type, statut), by the ingest's own clustering."""
    ips = np.array([np.nan if s[7] is None else s[7] for s in SCHOOLS])
    return clusters_of([s[8] for s in SCHOOLS], [s[9] for s in SCHOOLS], [s[2] for s in SCHOOLS],
                       [s[3] for s in SCHOOLS], {"ips": ips}, maxzoom=CLUSTER_MAXZOOM, cells=CLUSTER_CELLS)


# The pieces every synthetic dataset here is built from (this module's, `themed`'s, `tiletools`').


def mercator(geom):
    """A lon/lat geometry in EPSG:3857, projected point by point (independently of the code under test)."""
    return shapely.transform(geom, lambda xy: np.array([to_mercator(x, y) for x, y in xy]))


def clusters_of(lon: Sequence[float], lat: Sequence[float], types: Sequence[str], statuts: Sequence[str],
                sums: dict[str, np.ndarray], *, maxzoom: int, cells: int) -> Clusters:
    """Schools at lon/lat grouped by (zoom, cell, type, statut) with the ingest's own `build_clusters`."""
    x, y = np.array([to_mercator(a, b) for a, b in zip(lon, lat, strict=True)]).T
    return build_clusters(x, y, list(types), list(statuts), sums, maxzoom=maxzoom, cells=cells)


def school_counts(kinds: Sequence[str], members: Sequence[Sequence[int]]) -> dict[str, list[int]]:
    """`etablissements` and `n_<type>` of each territory from its schools' indices (other types: `autre`).

    >>> school_counts(["ecole", "erea", "ecole"], [[0, 1], [2], []])["n_ecole"]
    [1, 1, 0]
    """
    named = [kind if kind in COUNTED_TYPES else "autre" for kind in kinds]
    return {"etablissements": [len(m) for m in members],
            **{f"n_{t}": [sum(named[i] == t for i in m) for m in members] for t in COUNTED_TYPES}}


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
