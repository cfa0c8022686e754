"""The ingest run: fetch every source, read and check it, join, aggregate, and publish one version.

Nothing is written to the store until the whole dataset is built in memory, and the store
publishes atomically, so a run that fails or is killed at any point leaves the previous version
serving untouched.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import shapely
from tqdm import tqdm

from ingest import indicators as ind
from ingest.clusters import DEFAULT_CELLS, DEFAULT_CLUSTER_MAXZOOM, build_clusters
from ingest.fetch import fetch
from ingest.manifest import Indicator, Manifest, fingerprint
from ingest.pyramid import BANDS, ZOOM_RANGES, generalise
from ingest.rasters import build_rasters
from ingest.report import DatasetReport, Report
from ingest.schools import Schools, read_schools
from ingest.territories import Territories, derive_academies, read_epci, read_territories
from tileserver.core.dataset import COUNTED_TYPES, SCHOOLS, TERRITORY_LEVELS, Clusters, Dataset, Field, Layer
from tileserver.core.mercator import geometries_to_mercator
from tileserver.core.store import Store, VersionInfo

log = logging.getLogger("ecarto.ingest")

TITLES = {
    SCHOOLS: ("Établissements scolaires", "Écoles, collèges et lycées, with their digital indicators"),
    "communes": ("Communes", "Communes with their schools' indicators aggregated"),
    "epci": ("EPCI", "Intercommunalités with their schools' indicators aggregated"),
    "departements": ("Départements", "Départements with their schools' indicators aggregated"),
    "academies": ("Académies", "Académies with their schools' indicators aggregated"),
    "regions": ("Régions", "Régions with their schools' indicators aggregated"),
}
SCHOOL_FIELDS = (
    Field("uai", "string", "UAI", description="Unique identifier of the school (7 digits + a letter)"),
    Field("nom", "string", "Nom"),
    Field("type", "string", "Type", description="ecole, college, lycee, erea, ..."),
    Field("statut", "string", "Statut", description="public or prive"),
    Field("code_commune", "string", "Code commune"),
    Field("nom_commune", "string", "Commune"),
    Field("code_epci", "string", "Code EPCI"),
    Field("code_departement", "string", "Code département"),
    Field("code_academie", "string", "Code académie"),
    Field("code_region", "string", "Code région"),
    Field("education_prioritaire", "string", "Éducation prioritaire", description="REP, REP+ or empty"),
)
# The school property holding each level's code, and the parent codes a territory level carries.
LEVEL_CODE = {
    "communes": "code_commune", "epci": "code_epci", "departements": "code_departement",
    "academies": "code_academie", "regions": "code_region",
}
ROUGH_LEVEL_ORDER = ("regions", "departements", "academies", "communes", "epci")


class Ingest:
    """One run over a manifest: each step is a method, so a failure names its step."""

    def __init__(self, manifest: Manifest, *, cache_dir: Path, mirror: str | None = None,
                 progress: bool = True, cluster_maxzoom: int = DEFAULT_CLUSTER_MAXZOOM):
        self.manifest = manifest
        self.cache_dir = cache_dir
        self.mirror = mirror
        self.progress = progress
        self.cluster_maxzoom = cluster_maxzoom
        self.report = Report(fingerprint=fingerprint(manifest))
        self.bar: tqdm | None = None

    def fetch(self, url: str) -> Path:
        """A local file for a source URL (downloaded through the mirror and the disk cache)."""
        return fetch(url, cache_dir=self.cache_dir, mirror=self.mirror, progress=self.progress)

    def build(self) -> Dataset:
        """Read every source and build the complete dataset in memory, with a progress bar."""
        steps = 6 + len(TERRITORY_LEVELS) - (self.manifest.sources.get("epci") is None)
        with tqdm(total=steps, desc="ingest", unit="step", disable=not self.progress, leave=False) as bar:
            self.bar = bar
            return self._build()

    def _build(self) -> Dataset:
        territories = self._step("territories", self.read_territories)
        schools = self._step("schools", self.read_schools)
        self._step("territory codes", lambda: assign_territories(schools, territories, self.report))
        if "academies" not in territories:
            territories["academies"] = derive_academies_from_schools(territories["departements"], schools)
        tables = self._step("indicators", lambda: ind.read_all(self.manifest.indicators, self.fetch, self.report))
        school_tables = [t for t in tables if t[2][0].level == SCHOOLS]
        values = ind.join_to_schools(schools.uai, school_tables)
        layers = {SCHOOLS: school_layer(schools, values, self.manifest.indicators)}
        for level, terr in territories.items():
            own = [t for t in tables if t[2][0].level == level]
            layers[level] = self._step(
                f"{level} layer",
                lambda t=terr, o=own: territory_layer(t, schools, values, self.manifest.indicators, o,
                                                      self.report.dataset(t.level, "")),
            )
        clusters = self._step("clusters", lambda: school_clusters(schools, values, self.manifest.indicators,
                                                                  self.cluster_maxzoom))
        rasters = self._step("rasters", lambda: build_rasters(schools, values, self.manifest, layers, self.fetch,
                                                              self.report))
        return Dataset(
            layers={level: layers[level] for level in (SCHOOLS, *ROUGH_LEVEL_ORDER) if level in layers},
            clusters=clusters,
            cluster_maxzoom=self.cluster_maxzoom,
            cluster_cells=DEFAULT_CELLS,
            catalogue=[i.to_dict() for i in self.manifest.indicators],
            report=self.report.to_dict(),
            rasters=rasters,
        )

    def read_territories(self) -> dict[str, Territories]:
        """Every boundary level of the manifest (EPCI from communes when given as a member list)."""
        out: dict[str, Territories] = {}
        for level in ("regions", "departements", "academies", "communes"):
            source = self.manifest.sources.get(level)
            if source is None:
                continue
            path = self.fetch(source.url)
            out[level] = read_territories(level, path, report=self.report.dataset(level, str(path)),
                                          fields=source.fields)
        epci = self.manifest.sources.get("epci")
        if epci is not None:
            path = self.fetch(epci.url)
            history = epci.options.get("history")
            out["epci"] = read_epci(path, out["communes"], report=self.report.dataset("epci", str(path)),
                                    history=self.fetch(history) if history else None, fields=epci.fields)
        return out

    def read_schools(self) -> Schools:
        """The school directory."""
        source = self.manifest.sources["schools"]
        path = self.fetch(source.url)
        return read_schools(path, report=self.report.dataset(SCHOOLS, str(path)), fields=source.fields)

    def _step(self, name: str, work: Callable):
        """Run one step, advancing the progress bar and logging its time."""
        if self.bar is not None:
            self.bar.set_postfix_str(name)
        start = time.perf_counter()
        result = work()
        log.info("%-18s %6.1f s", name, time.perf_counter() - start)
        if self.bar is not None:
            self.bar.update()
        return result


def run(manifest: Manifest, store: Store, **options) -> tuple[VersionInfo, Report]:
    """Build the dataset, then publish it in one atomic step."""
    job = Ingest(manifest, **options)
    dataset = job.build()
    start = time.perf_counter()
    version = store.publish(dataset)
    log.info("%-18s %6.1f s", "publish", time.perf_counter() - start)
    return version, job.report


def assign_territories(schools: Schools, territories: Mapping[str, Territories], report: Report) -> None:
    """Give each school a code per level: its row's code when that territory exists, else by position."""
    points = shapely.points(schools.lon, schools.lat)
    for level, terr in territories.items():
        column = LEVEL_CODE[level]
        known = set(terr.codes)
        codes = schools.columns.get(column) or [None] * len(schools.uai)
        missing = np.array([c not in known for c in codes])
        if missing.any():
            found = locate(points[missing], terr)
            for i, code in zip(np.flatnonzero(missing), found, strict=True):
                codes[i] = code
            unplaced = sum(c is None for c in found)
            report.datasets[SCHOOLS].note(
                f"{level}: {int(missing.sum()) - unplaced} schools placed by position"
                + (f", {unplaced} outside every {level} polygon" if unplaced else "")
            )
        schools.columns[column] = codes


def locate(points: np.ndarray, terr: Territories) -> list[str | None]:
    """The code of the polygon holding each point (None outside all of them)."""
    tree = shapely.STRtree(terr.geometries)
    point_idx, poly_idx = tree.query(points, predicate="intersects")
    found: list[str | None] = [None] * len(points)
    for p, g in zip(point_idx, poly_idx, strict=True):
        if found[p] is None:
            found[p] = terr.codes[g]
    return found


def derive_academies_from_schools(departements: Territories, schools: Schools) -> Territories:
    """Académies as merged départements, each département going to its schools' usual académie."""
    votes: dict[str, Counter] = {}
    for dep, aca in zip(schools.columns["code_departement"], schools.columns["code_academie"], strict=True):
        if dep and aca:
            votes.setdefault(dep, Counter())[aca] += 1
    mapping = {dep: counter.most_common(1)[0][0] for dep, counter in votes.items()}
    return derive_academies(departements, mapping, {})


def school_layer(schools: Schools, values: Mapping[str, np.ndarray | list],
                 indicators: Sequence[Indicator]) -> Layer:
    """The `etablissements` layer: directory properties, then one property per school indicator."""
    own = [i for i in indicators if i.level == SCHOOLS]
    columns = {"uai": list(schools.uai), **{f.name: list(schools.columns.get(f.name) or [None] * len(schools.uai))
                                            for f in SCHOOL_FIELDS[1:]}}
    fields = list(SCHOOL_FIELDS)
    for i in own:
        fields.append(Field(i.id, _school_type(i), i.label, i.unit, i.theme, i.description))
        columns[i.id] = _python_values(values[i.id], i.kind)
    minzoom, maxzoom = ZOOM_RANGES[SCHOOLS]
    title, description = TITLES[SCHOOLS]
    return Layer(SCHOOLS, title, description, "Point", "uai", fields, list(schools.uai), columns,
                 shapely.points(schools.lon, schools.lat), minzoom, maxzoom)


def territory_layer(terr: Territories, schools: Schools, values: Mapping[str, np.ndarray | list],
                    indicators: Sequence[Indicator], own_tables: list, report: DatasetReport) -> Layer:
    """A territory level: code, name, parents, school counts and every indicator's aggregate."""
    order = {code: i for i, code in enumerate(terr.codes)}
    aggregates = ind.aggregate(schools.columns[LEVEL_CODE[terr.level]], order, schools.columns["type"],
                               values, indicators)
    columns: dict[str, list] = {"code": list(terr.codes), "nom": list(terr.names), **terr.parents, **aggregates}
    fields = [Field("code", "string", "Code"), Field("nom", "string", "Nom")]
    fields += [Field(name, "string", name.replace("_", " ").capitalize()) for name in terr.parents]
    fields.append(Field("etablissements", "integer", "Établissements", "établissements"))
    fields += [Field(f"n_{t}", "integer", f"Établissements de type {t}") for t in COUNTED_TYPES]
    for i in indicators:
        if i.level == SCHOOLS:
            kind = "integer" if i.aggregate == "count" or i.kind == "category" else "number"
            unit = "%" if i.aggregate == "share" else i.unit
            fields.append(Field(i.id, kind, f"{i.label} ({i.aggregate})", unit, i.theme, i.description))
    columns.update(ind.territory_values(terr.codes, own_tables))
    for table in own_tables:
        fields += [Field(i.id, _school_type(i), i.label, i.unit, i.theme, i.description) for i in table[2]]
    minzoom, maxzoom = ZOOM_RANGES[terr.level]
    title, description = TITLES[terr.level]
    generalised = generalise(geometries_to_mercator(terr.geometries), BANDS[terr.level], report=report)
    return Layer(terr.level, title, description, "MultiPolygon", "code", fields, list(terr.codes), columns,
                 terr.geometries, minzoom, maxzoom, generalised)


def school_clusters(schools: Schools, values: Mapping[str, np.ndarray | list],
                    indicators: Sequence[Indicator], maxzoom: int) -> Clusters:
    """Clusters of the low zooms, with sums of every numeric school indicator."""
    x, y = shapely.get_coordinates(geometries_to_mercator(shapely.points(schools.lon, schools.lat))).T
    numeric = {i.id: np.asarray(values[i.id], dtype=float) for i in indicators
               if i.level == SCHOOLS and i.kind != "category"}
    statuts = [s or "inconnu" for s in schools.columns["statut"]]
    types = [t if t in COUNTED_TYPES else "autre" for t in schools.columns["type"]]
    return build_clusters(x, y, types, statuts, numeric, maxzoom=maxzoom)


def _school_type(indicator: Indicator) -> str:
    return {"number": "number", "boolean": "boolean", "category": "string"}[indicator.kind]


def _python_values(values: np.ndarray | list, kind: str) -> list:
    """Float arrays back to Python values: None for unknown, bool for yes/no."""
    if kind == "category":
        return list(values)
    if kind == "boolean":
        return [None if np.isnan(v) else bool(v) for v in values]
    return [None if np.isnan(v) else float(v) for v in values]
