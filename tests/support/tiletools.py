"""Helpers of the vector tile tests: a synthetic dataset, and three ways to read a tile back.

`synthetic_dataset` is bigger than `small_dataset` and built like the ingest builds a real one
(clusters by `ingest.clusters.build_clusters`, territories with generalised bands), with traps: schools
exactly on tile edges, schools sharing a position, communes with holes, one commune that vanishes
at low zoom, a territory level without any band.

Tiles are decoded by mapbox-vector-tile, by GDAL's MVT driver (`ogr2ogr`, independent of both
encoders), and by `raw_rings`, which reads the geometry commands itself to check ring winding.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import mapbox_vector_tile
import numpy as np
import shapely
from mapbox_vector_tile.Mapbox import vector_tile_pb2
from shapely.geometry import MultiPolygon, Polygon, box

from tests.support.datasets import clusters_of, mercator, school_counts
from tileserver.core.dataset import COUNTED_TYPES, Dataset, Field, Generalised, Layer
from tileserver.core.grid import Tile

OGR2OGR = shutil.which("ogr2ogr") or "/usr/bin/ogr2ogr"
CLUSTER_MAXZOOM = 10
CELLS = 16
TYPES = ("ecole",) * 6 + ("college", "college", "lycee", "erea", "autre")
WEST, SOUTH, EAST, NORTH = -5.0, 43.0, 3.0, 50.0
STEP = 0.5  # side of a synthetic commune, in degrees

SCHOOL_FIELDS = [
    Field("uai", "string", "UAI"),
    Field("nom", "string", "Nom"),
    Field("type", "string", "Type"),
    Field("statut", "string", "Statut"),
    Field("code_commune", "string", "Commune"),
    Field("education_prioritaire", "string", "Éducation prioritaire"),
    Field("effectif", "integer", "Élèves"),
    Field("debit", "number", "Débit", unit="Mbit/s"),
    Field("fibre", "boolean", "Fibre"),
]


def synthetic_dataset(n: int = 3000, seed: int = 7, *, label: str = "") -> Dataset:
    """Schools spread over western France and La Réunion, communes on a grid, two départements.

    `label` is appended to every school name, so two datasets differ in content but not in shape.
    """
    rng = np.random.default_rng(seed)
    lon = rng.uniform(WEST, EAST, n)
    lat = rng.uniform(SOUTH, NORTH, n)
    lon[:5], lat[:5] = 0.0, 45.0 + np.arange(5) * 0.01  # x = 0: on a tile edge at every zoom
    lon[5:8], lat[5:8] = -1.5, 47.2  # three schools at one position
    lon[8:20], lat[8:20] = rng.uniform(55.3, 55.7, 12), rng.uniform(-21.3, -20.9, 12)  # La Réunion
    schools = _schools(rng, lon, lat, label)
    communes = _communes(schools)
    departements = _departements(schools)
    values = {
        "debit": np.array([np.nan if v is None else v for v in schools.columns["debit"]]),
        "fibre": np.array([np.nan if v is None else float(v) for v in schools.columns["fibre"]]),
    }
    clusters = clusters_of(lon, lat, schools.columns["type"], schools.columns["statut"], values,
                           maxzoom=CLUSTER_MAXZOOM, cells=CELLS)
    return Dataset(
        layers={layer.id: layer for layer in (schools, communes, departements)},
        clusters=clusters,
        cluster_maxzoom=CLUSTER_MAXZOOM,
        cluster_cells=CELLS,
        catalogue=[{"id": "debit", "level": "etablissements"}, {"id": "fibre", "level": "etablissements"}],
        report={"datasets": {}},
    )


def _schools(rng: np.random.Generator, lon: np.ndarray, lat: np.ndarray, label: str) -> Layer:
    """The school layer: every kind of property, with gaps."""
    n = len(lon)
    uai = [f"{i:07d}{'ABCDEFGHJ'[i % 9]}" for i in range(n)]
    debit = rng.gamma(2.0, 40.0, n).round(1)
    columns = {
        "uai": uai,
        "nom": [f"École synthétique {i}{label}" for i in range(n)],
        "type": [TYPES[i] for i in rng.integers(0, len(TYPES), n)],
        "statut": ["prive" if p else "public" for p in rng.random(n) < 0.2],
        "code_commune": [_commune_code(a, b) for a, b in zip(lon, lat, strict=True)],
        "education_prioritaire": [["REP", "REP+", None, None, None][i] for i in rng.integers(0, 5, n)],
        "effectif": [None if i % 13 == 0 else int(v) for i, v in enumerate(rng.integers(20, 1500, n))],
        "debit": [None if i % 7 == 0 else float(v) for i, v in enumerate(debit)],
        "fibre": [None if i % 11 == 0 else bool(v) for i, v in enumerate(rng.random(n) < 0.6)],
    }
    return Layer("etablissements", "Établissements", "Synthetic schools", "Point", "uai", list(SCHOOL_FIELDS),
                 uai, columns, shapely.points(lon, lat), 0, 14)


def _commune_code(lon: float, lat: float) -> str:
    """The code of the grid commune holding a position ('97400' for La Réunion)."""
    if lon > EAST:
        return "97400"
    col = min(int((lon - WEST) / STEP), int((EAST - WEST) / STEP) - 1)
    row = min(int((lat - SOUTH) / STEP), int((NORTH - SOUTH) / STEP) - 1)
    return f"{col:02d}{row:03d}"


def _communes(schools: Layer) -> Layer:
    """Grid communes, every third with a hole; bands: envelopes at zooms 6-9, exact shapes at 10-14."""
    codes, shapes = [], []
    for col in range(int((EAST - WEST) / STEP)):
        for row in range(int((NORTH - SOUTH) / STEP)):
            w, s = WEST + col * STEP, SOUTH + row * STEP
            outer = [(w, s), (w + STEP, s), (w + STEP, s + STEP * 0.6), (w + STEP * 0.5, s + STEP), (w, s + STEP)]
            hole = [box(w + 0.1, s + 0.1, w + 0.2, s + 0.2).exterior.coords] if (col + row) % 3 == 0 else []
            codes.append(f"{col:02d}{row:03d}")
            shapes.append(MultiPolygon([Polygon(outer, hole)]))
    codes.append("97400")
    shapes.append(MultiPolygon([box(55.2, -21.4, 55.85, -20.85)]))
    low = [None if code == "00000" else mercator(s.envelope) for code, s in zip(codes, shapes, strict=True)]
    generalised = [Generalised(6, 9, np.array(low, dtype=object)),
                   Generalised(10, 14, np.array([mercator(s) for s in shapes], dtype=object))]
    return _territories("communes", codes, shapes, schools.columns["code_commune"], schools, 6, 14, generalised)


def _departements(schools: Layer) -> Layer:
    """Two départements splitting the area west and east of 0°, and La Réunion; no generalised band."""
    codes = ["D1", "D2", "974"]
    shapes = [MultiPolygon([box(WEST, SOUTH, 0.0, NORTH)]), MultiPolygon([box(0.0, SOUTH, EAST, NORTH)]),
              MultiPolygon([box(55.2, -21.4, 55.85, -20.85)])]
    member_of = [
        "974" if c == "97400" else "D1" if int(c[:2]) * STEP + WEST < 0 else "D2"
        for c in schools.columns["code_commune"]
    ]
    return _territories("departements", codes, shapes, member_of, schools, 0, 10, [])


def _territories(level: str, codes: list[str], shapes: list, member_of: list[str], schools: Layer, minzoom: int,
                 maxzoom: int, generalised: list[Generalised]) -> Layer:
    """A territory layer with its school counts and the mean debit of its schools (`member_of`: each school's code)."""
    members: dict[str, list[int]] = {code: [] for code in codes}
    for i, code in enumerate(member_of):
        members[code].append(i)
    columns: dict[str, list] = {"code": codes, "nom": [f"{level} {c}" for c in codes],
                                **school_counts(schools.columns["type"], [members[c] for c in codes])}
    debits = [[schools.columns["debit"][i] for i in members[c] if schools.columns["debit"][i] is not None]
              for c in codes]
    columns["debit"] = [sum(d) / len(d) if d else None for d in debits]
    fields = [Field("code", "string", "Code"), Field("nom", "string", "Nom"),
              Field("etablissements", "integer", "Établissements"),
              *(Field(f"n_{t}", "integer", t) for t in COUNTED_TYPES), Field("debit", "number", "Débit moyen")]
    return Layer(level, level.capitalize(), f"Synthetic {level}", "MultiPolygon", "code", fields, codes, columns,
                 np.array(shapes, dtype=object), minzoom, maxzoom, generalised)




def decode(data: bytes) -> dict[str, list[dict]]:
    """Each layer's features, as mapbox-vector-tile reads them (tile coordinates, y up)."""
    return {name: layer["features"] for name, layer in mapbox_vector_tile.decode(data).items()}


def gdal_decode(data: bytes, tile: Tile, folder: Path) -> dict[str, list[dict]]:
    """Each layer's GeoJSON features as GDAL's MVT driver reads them, georeferenced in EPSG:3857."""
    path = folder / str(tile.z) / str(tile.x) / f"{tile.y}.mvt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    layers = {}
    for name in mapbox_vector_tile.decode(data):
        out = subprocess.run([OGR2OGR, "-f", "GeoJSON", "/vsistdout/", str(path), name],
                             capture_output=True, text=True, check=True)
        layers[name] = json.loads(out.stdout)["features"]
    return layers


def raw_rings(data: bytes) -> dict[str, list[list[list[tuple[int, int]]]]]:
    """Per layer, per polygon feature, its rings in tile coordinates (y down), read from the commands."""
    tile = vector_tile_pb2.tile()
    tile.ParseFromString(data)
    out: dict[str, list] = {}
    for layer in tile.layers:
        out[layer.name] = [_rings(list(f.geometry)) for f in layer.features if f.type == 3]
    return out


def _rings(commands: list[int]) -> list[list[tuple[int, int]]]:
    """The rings of one polygon feature's geometry commands."""
    rings, ring, x, y, i = [], [], 0, 0, 0
    while i < len(commands):
        command, count = commands[i] & 7, commands[i] >> 3
        i += 1
        if command == 7:
            rings.append(ring)
            ring = []
            continue
        for _ in range(count):
            dx, dy = commands[i], commands[i + 1]
            x += (dx >> 1) ^ -(dx & 1)
            y += (dy >> 1) ^ -(dy & 1)
            ring.append((x, y))
            i += 2
    return rings


def signed_area(ring: list[tuple[int, int]]) -> float:
    """The surveyor's-formula area of a ring as MVT defines it (positive: an exterior ring)."""
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1], strict=True)) / 2

