"""The ingest run: fetch every source, read and check it, join, aggregate, and publish one version.

Nothing is written to the store until the whole dataset is built in memory, and the store
publishes atomically, so a run that fails or is killed at any point leaves the previous version
serving untouched.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import shapely
from tqdm import tqdm

from ingest import indicators as ind
from ingest import rollup
from ingest.clusters import DEFAULT_CELLS, DEFAULT_CLUSTER_MAXZOOM, build_clusters
from ingest.fetch import fetch
from ingest.manifest import Indicator, Manifest, fingerprint
from ingest.pyramid import BANDS, ZOOM_RANGES, generalise
from ingest.rasters import build_rasters
from ingest.report import DatasetReport, Report
from ingest.schools import Schools, check_departements, check_loaded, read_schools
from ingest.summaries import published_catalogue, territory_summaries
from ingest.territories import (
    Territories,
    current_communes,
    derive_academies,
    members_by_location,
    read_epci,
    read_territories,
)
from tileserver.core.dataset import COUNTED_TYPES, SCHOOLS, TERRITORY_LEVELS, Clusters, Dataset, Field, Layer
from tileserver.core.errors import IngestError
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
# The levels a territory indicator is rolled up to, from its own.
ROLL_UP = {"communes": ("epci", "departements", "academies", "regions"), "epci": (),
           "departements": ("academies", "regions"), "academies": ("regions",), "regions": ()}
NC_DESCRIPTION = ("Non communiqué : établissements concernés par l'indicateur (ceux de `applies_to`) "
                  "sans valeur, de la source ou de leur territoire")


class Ingest:
    """One run over a manifest: each step is a method, so a failure names its step."""

    def __init__(self, manifest: Manifest, *, cache_dir: Path, scratch: Path, mirror: str | None = None,
                 progress: bool = True, cluster_maxzoom: int = DEFAULT_CLUSTER_MAXZOOM):
        self.manifest = manifest
        self.cache_dir = cache_dir
        self.scratch = scratch  # beside the store: temporary files (rasters) until publish
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
        steps = 7 + len(TERRITORY_LEVELS) - (self.manifest.sources.get("epci") is None)
        with tqdm(total=steps, desc="ingest", unit="step", disable=not self.progress, leave=False) as bar:
            self.bar = bar
            return self._build()

    def _build(self) -> Dataset:
        territories = self._step("territories", self.read_territories)
        schools = self._step("schools", lambda: self.read_schools(territories.get("departements")))
        self._step("territory codes", lambda: assign_territories(schools, territories, self.report))
        if "academies" not in territories:
            territories["academies"] = derive_academies_from_schools(territories["departements"], schools)
        tables = self._step("indicators", lambda: ind.read_all(self.manifest.indicators, self.fetch, self.report))
        history = self.read_history()
        school_tables = [t for t in tables if t[2][0].level == SCHOOLS]
        values = ind.join_to_schools(keys_at(schools), schools.columns["type"], school_tables, history)
        own, cells = territory_indicators(territories, tables, history)
        known = known_values(schools, values, cells, self.manifest.indicators)
        layers = {SCHOOLS: school_layer(schools, values, self.manifest.indicators)}
        for level, terr in territories.items():
            layers[level] = self._step(
                f"{level} layer",
                lambda t=terr: territory_layer(t, schools, values, self.manifest.indicators, own[t.level], known,
                                               self.report.dataset(t.level, "")),
            )
        clusters = self._step("clusters", lambda: school_clusters(schools, values, self.manifest.indicators,
                                                                  self.cluster_maxzoom))
        rasters = self._step("rasters", lambda: build_rasters(schools, values, self.manifest, layers, self.fetch,
                                                              self.report, self.scratch))
        entries = [i.to_dict(vintage) for i, vintage in vintages(self.manifest.indicators, tables)]
        catalogue = published_catalogue(entries, layers)
        summaries = self._step("summaries", lambda: territory_summaries(catalogue, layers))
        return Dataset(
            layers={level: layers[level] for level in (SCHOOLS, *ROUGH_LEVEL_ORDER) if level in layers},
            clusters=clusters,
            cluster_maxzoom=self.cluster_maxzoom,
            cluster_cells=DEFAULT_CELLS,
            catalogue=catalogue,
            report=self.report.to_dict(),
            rasters=rasters,
            summaries=summaries,
        )

    def read_territories(self) -> dict[str, Territories]:
        """Every boundary level of the manifest (EPCI from communes when given as a member list)."""
        out: dict[str, Territories] = {}
        for level in ("regions", "departements", "academies", "communes"):
            source = self.manifest.sources.get(level)
            if source is None:
                continue
            path = self.fetch(source.url)
            out[level] = read_territories(level, path, report=self.report.dataset(level, source.url),
                                          fields=source.fields)
        epci = self.manifest.sources.get("epci")
        if epci is not None:
            path = self.fetch(epci.url)
            history = epci.options.get("history")
            out["epci"] = read_epci(path, out["communes"], report=self.report.dataset("epci", epci.url),
                                    history=self.fetch(history) if history else None, fields=epci.fields)
        return out

    def read_history(self) -> dict[str, str]:
        """Former commune code -> current commune, from the manifest's `[history]` (empty without one)."""
        source = self.manifest.sources.get("history")
        if source is None:
            return {}
        path = self.fetch(source.url)
        report = self.report.dataset("history", source.url)
        mapping = current_communes(path, report)
        report.note(f"{len(mapping)} former commune codes lead to a current commune")
        return mapping

    def read_schools(self, departements: Territories | None) -> Schools:
        """The school directory, each school checked against its département's outline when there is one."""
        source = self.manifest.sources["schools"]
        path = self.fetch(source.url)
        report = self.report.dataset(SCHOOLS, source.url)
        schools = read_schools(path, report=report, fields=source.fields)
        return check_loaded(check_departements(schools, departements, report) if departements else schools, report)

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


def run(manifest: Manifest, store: Store, *, allow_partial: bool = False, **options) -> tuple[VersionInfo, Report]:
    """Check the store can take a version (before reading any source), build the dataset, publish it atomically.

    A run that lost a `main` indicator (source unreachable, column missing) publishes nothing, so
    the previous version keeps serving, unless `allow_partial`: the report then says `partial`.
    """
    job = Ingest(manifest, scratch=store.check_publish(), **options)
    dataset = job.build()
    lost = job.report.lost_main()
    if lost and not allow_partial:
        print(job.report.summary(), file=sys.stderr)
        raise IngestError(f"main indicators lost: {', '.join(lost)}; nothing published (the previous "
                          "version keeps serving); fix the sources or pass --allow-partial")
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
                    indicators: Sequence[Indicator], own: Mapping[str, list], known: Mapping[str, np.ndarray],
                    report: DatasetReport) -> Layer:
    """A territory level: code, name, parents, school counts, every indicator's aggregate and `<id>_nc`."""
    order = {code: i for i, code in enumerate(terr.codes)}
    aggregates = ind.aggregate(schools.columns[LEVEL_CODE[terr.level]], order, schools.columns["type"],
                               values, indicators, known)
    columns: dict[str, list] = {"code": list(terr.codes), "nom": list(terr.names), **terr.parents, **aggregates}
    fields = [Field("code", "string", "Code"), Field("nom", "string", "Nom")]
    fields += [Field(name, "string", name.replace("_", " ").capitalize()) for name in terr.parents]
    fields.append(Field("etablissements", "integer", "Établissements", "établissements"))
    fields += [Field(f"n_{t}", "integer", f"Établissements de type {t}") for t in COUNTED_TYPES]
    for i in indicators:
        if i.level == SCHOOLS:
            fields.append(_aggregate_field(i))
        elif i.id in own:
            own_level = i.level == terr.level
            fields.append(Field(i.id, _school_type(i), i.label, i.unit, i.theme, i.description) if own_level
                          else _aggregate_field(i))
            columns[i.id] = _python_values(own[i.id], i.kind) if own_level else own[i.id]
        fields.append(Field(f"{i.id}_nc", "integer", f"{i.label} : non communiqué", "établissements", i.theme,
                            NC_DESCRIPTION))
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
    return {"number": "number", "boolean": "boolean", "category": "string", "presence": "boolean",
            "ratio": "number"}[indicator.kind]


def _aggregate_field(i: Indicator) -> Field:
    """The field of an indicator aggregated over a territory's schools or rolled up from below."""
    kind = "integer" if i.aggregate == "count" or i.kind == "category" else "number"
    unit = "%" if i.aggregate == "share" or i.kind in ("boolean", "presence") else i.unit
    how = "share" if i.kind in ("boolean", "presence") and i.aggregate != "count" else i.aggregate
    return Field(i.id, kind, f"{i.label} ({how})", unit, i.theme, i.description)


def _python_values(values: np.ndarray | list, kind: str) -> list:
    """Float arrays back to Python values: None for unknown, bool for yes/no."""
    if kind == "category":
        return list(values)
    if kind in ("boolean", "presence"):
        return [None if v is None or np.isnan(v) else bool(v) for v in values]
    return [None if v is None or np.isnan(v) else float(v) for v in values]


def keys_at(schools: Schools) -> Callable[[str], Sequence[str | None]]:
    """Each school's key at a level: its UAI, or the code of its territory there (a `via` indicator)."""
    return lambda level: schools.uai if level == SCHOOLS else schools.columns[LEVEL_CODE[level]]


def territory_indicators(territories: Mapping[str, Territories], tables: list,
                         history: Mapping[str, str]) -> tuple[dict[str, dict[str, list]], dict[str, dict]]:
    """Territory indicators per level (their own, then rolled up to every level above), and their cells by code."""
    columns: dict[str, dict[str, list]] = {level: {} for level in territories}
    cells_by_id: dict[str, dict] = {}
    for table, report, group in tables:
        level = group[0].level
        if level == SCHOOLS or level not in territories:
            continue
        lower = territories[level]
        cells = rollup.territory_cells(lower.codes, table, report, group, history)
        uppers = {up: parents_of(lower, territories[up]) for up in ROLL_UP[level] if up in territories}
        for i in group:
            cells_by_id[i.id] = dict(zip(lower.codes, cells[i.id], strict=True))
            columns[level][i.id] = [ind.value_of(i, c) for c in cells[i.id]]
            for up, parents in uppers.items():
                order = {c: k for k, c in enumerate(territories[up].codes)}
                columns[up][i.id] = rollup.roll_up(i, cells[i.id], parents, order)
    return columns, cells_by_id


def parents_of(lower: Territories, upper: Territories) -> list[str | None]:
    """The code at `upper`'s level of each territory of `lower`: a parent column, a membership, or by location."""
    column = LEVEL_CODE[upper.level]
    if column in lower.parents:
        return list(lower.parents[column])
    members = [upper.members.get(c) for c in lower.codes]
    if any(members):
        return members
    found = members_by_location(lower, upper)
    return [found.get(c) for c in lower.codes]


def known_values(schools: Schools, values: Mapping[str, np.ndarray | list], cells: Mapping[str, dict],
                 indicators: Sequence[Indicator]) -> dict[str, np.ndarray]:
    """Per indicator, which schools have a value: their own, or their territory's for a territory indicator."""
    known = {}
    for i in indicators:
        if i.level == SCHOOLS and i.kind == "category":
            known[i.id] = np.array([v is not None for v in values[i.id]], dtype=bool)
        elif i.level == SCHOOLS:
            known[i.id] = ~np.isnan(np.asarray(values[i.id], dtype=float))
        else:
            own = cells.get(i.id, {})
            known[i.id] = np.array([own.get(c) is not None for c in schools.columns[LEVEL_CODE[i.level]]],
                                   dtype=bool)
    return known


def vintages(indicators: Sequence[Indicator], tables: list) -> list[tuple[Indicator, str]]:
    """Each indicator with the vintage read from its data (empty when its source was lost)."""
    found = {i.id: table.vintage for table, _, group in tables for i in group}
    return [(i, found.get(i.id, "")) for i in indicators]
