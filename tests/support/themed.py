"""A synthetic, complete data version for the style, map and QGIS tests: every collection, the real catalogue.

Territories are nested grids over Brittany (2 régions = 2 académies, 8 départements, 16 EPCI,
144 communes); schools are random points with every indicator of `sources/local.toml` (about one
value in eight unknown), aggregated the way the ingest does (shares in %, means), and clustered by
the ingest's own `build_clusters`. Seeded, so every run builds the same data.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, box

from ingest.clusters import DEFAULT_CELLS
from ingest.manifest import load_manifest
from ingest.summaries import published_catalogue, territory_summaries
from tests.support.datasets import clusters_of, mercator, school_counts
from tileserver.core.dataset import SCHOOLS, Clusters, Dataset, Field, Generalised, Layer

MANIFEST = Path(__file__).resolve().parents[2] / "sources" / "local.toml"
WEST, SOUTH, EAST, NORTH = -4.8, 47.2, -0.8, 48.8
CLUSTER_MAXZOOM = 12
CLUSTER_CELLS = DEFAULT_CELLS
ZOOMS = {SCHOOLS: (0, 14), "regions": (0, 10), "academies": (0, 10), "departements": (0, 12),
         "epci": (4, 14), "communes": (6, 14)}
# Cells per side of each level's grid, and how to name a cell.
GRIDS = {"regions": (2, 1), "academies": (2, 1), "departements": (4, 2), "epci": (8, 2), "communes": (24, 6)}
TYPES = ("ecole", "ecole", "ecole", "college", "lycee", "erea")
NAMES = {"regions": "Région", "academies": "Académie", "departements": "Département", "epci": "EPCI",
         "communes": "Commune"}
LEVEL_CODE = {"regions": "code_region", "academies": "code_academie", "departements": "code_departement",
              "epci": "code_epci", "communes": "code_commune"}


def catalogue() -> list[dict]:
    """The indicator catalogue of the shared data's manifest, as a version publishes it."""
    return [i.to_dict() for i in load_manifest(MANIFEST).indicators]


def themed_dataset(n_schools: int = 3000, seed: int = 7) -> Dataset:
    """The whole version: schools, five territory levels, clusters, catalogue."""
    rng = np.random.default_rng(seed)
    entries = [e for e in catalogue() if e["level"] == SCHOOLS]
    lon = rng.uniform(WEST + 0.01, EAST - 0.01, n_schools)
    lat = rng.uniform(SOUTH + 0.01, NORTH - 0.01, n_schools)
    values = {e["id"]: _values(rng, e, n_schools) for e in entries}
    codes = {level: [_code(level, x, y) for x, y in zip(lon, lat, strict=True)] for level in GRIDS}
    types = [TYPES[i] for i in rng.integers(0, len(TYPES), n_schools)]
    statuts = ["prive" if p < 0.2 else "public" for p in rng.random(n_schools)]
    schools = _schools(lon, lat, types, statuts, codes, values, entries)
    layers = {SCHOOLS: schools}
    for level in GRIDS:
        layers[level] = _territories(level, codes[level], types, values, entries)
    published = published_catalogue(catalogue(), layers)
    return Dataset(layers=layers, clusters=_clusters(lon, lat, types, statuts, values),
                   cluster_maxzoom=CLUSTER_MAXZOOM, cluster_cells=CLUSTER_CELLS, catalogue=published,
                   report={"datasets": {}}, summaries=territory_summaries(published, layers))


def _values(rng: np.random.Generator, entry: dict, n: int) -> np.ndarray:
    """Random values spread over the entry's classes, NaN for about one school in eight."""
    if entry["kind"] == "boolean":
        values = (rng.random(n) < rng.uniform(0.2, 0.8)).astype(float)
    else:
        top = (entry["breaks"] or [50])[-1] * 1.5
        values = np.round(rng.uniform(0, top, n), 1)
    values[rng.random(n) < 0.125] = np.nan
    return values


def _cell(level: str, lon: float, lat: float) -> tuple[int, int]:
    columns, rows = GRIDS[level]
    col = min(columns - 1, int((lon - WEST) / (EAST - WEST) * columns))
    row = min(rows - 1, int((lat - SOUTH) / (NORTH - SOUTH) * rows))
    return col, row


def _code(level: str, lon: float, lat: float) -> str:
    col, row = _cell(level, lon, lat)
    return f"{level[:3].upper()}{row:02d}{col:02d}"


def _schools(lon, lat, types, statuts, codes, values, entries) -> Layer:
    n = len(lon)
    uai = [f"{350000 + i:07d}{'ABCDEFGHJKLMNPRSTUVWXYZ'[(350000 + i) % 23]}" for i in range(n)]
    communes = codes["communes"]
    columns: dict[str, list] = {
        "uai": uai, "nom": [f"{t.upper()} SYNTHETIQUE {i}" for i, t in enumerate(types)], "type": list(types),
        "statut": list(statuts), "nom_commune": [f"Commune {c[-4:]}" for c in communes],
        **{LEVEL_CODE[level]: list(level_codes) for level, level_codes in codes.items()},
    }
    fields = [Field(name, "string", name) for name in columns]
    for e in entries:
        kind = "boolean" if e["kind"] == "boolean" else "number"
        fields.append(Field(e["id"], kind, e["label"], e["unit"], e["theme"]))
        columns[e["id"]] = [None if math.isnan(v) else (bool(v) if kind == "boolean" else float(v))
                            for v in values[e["id"]]]
    return Layer(SCHOOLS, "Établissements", "Synthetic schools", "Point", "uai", fields, uai, columns,
                 shapely.points(lon, lat), *ZOOMS[SCHOOLS])


def _territories(level: str, school_codes, types, values, entries) -> Layer:
    """One grid level with school counts and each indicator aggregated (shares in %)."""
    columns_n, rows_n = GRIDS[level]
    width, height = (EAST - WEST) / columns_n, (NORTH - SOUTH) / rows_n
    cells = [(col, row) for row in range(rows_n) for col in range(columns_n)]
    ids = [f"{level[:3].upper()}{row:02d}{col:02d}" for col, row in cells]
    shapes = [MultiPolygon([box(WEST + c * width, SOUTH + r * height, WEST + (c + 1) * width,
                                SOUTH + (r + 1) * height)]) for c, r in cells]
    members = {code: np.flatnonzero(np.asarray(school_codes) == code) for code in ids}
    columns: dict[str, list] = {"code": ids, "nom": [f"{NAMES[level]} {code[-4:]}" for code in ids],
                                **school_counts(types, [members[c] for c in ids])}
    fields = [Field(name, "string" if name in ("code", "nom") else "integer", name) for name in columns]
    for e in entries:
        share = e["aggregate"] == "share"
        columns[e["id"]] = [_aggregate(values[e["id"]][members[c]], share) for c in ids]
        fields.append(Field(e["id"], "number", e["label"], "%" if share else e["unit"], e["theme"]))
    projected = np.array([mercator(s) for s in shapes], dtype=object)
    minzoom, maxzoom = ZOOMS[level]
    return Layer(level, level.capitalize(), f"Synthetic {level}", "MultiPolygon", "code", fields, ids, columns,
                 np.array(shapes, dtype=object), minzoom, maxzoom, [Generalised(minzoom, maxzoom, projected)])


def _aggregate(values: np.ndarray, share: bool) -> float | None:
    known = values[~np.isnan(values)]
    if not len(known):
        return None
    return round(float(known.mean()) * (100 if share else 1), 2)


def _clusters(lon, lat, types, statuts, values) -> Clusters:
    return clusters_of(lon, lat, types, statuts, values, maxzoom=CLUSTER_MAXZOOM, cells=CLUSTER_CELLS)
