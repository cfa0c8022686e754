"""Territory boundaries keyed by official code, valid and polygonal, so every level joins on codes.

Each level comes from a GeoJSON FeatureCollection in longitude/latitude (plain or gzipped), except
two that can be built from the level below: EPCI polygons are the union of their member communes
(from a membership list such as `decoupage-administratif/epci.json`), and académies the union of
their départements. Property names are recognised for the layouts in use (france-geojson and Etalab
`code`/`nom`, the ministry's `code_academie`/`name`, IGN's upper-case names) or given as `fields`.

Rows and what happens to them:

- a feature without a code, or whose geometry is missing, empty or has no polygon, is rejected
  (its line in the report is its feature number, 1-based);
- an invalid geometry is repaired with `shapely.make_valid`, keeping its polygonal parts (noted);
- features sharing a code are merged into one territory, geometries unioned (noted). Sources split
  a territory into several features (islands, exclave parts); rejecting the repeats would drop land
  and, with it, the schools located there. The note lists the codes, so a genuine mistake shows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.errors import ShapelyError
from shapely.geometry import shape

from ingest import codes
from ingest.fetch import open_text
from ingest.report import DatasetReport
from tileserver.core.errors import IngestError


def siren(code: str | None) -> str | None:
    """An EPCI code: the nine-digit SIREN of the intercommunality.

    >>> siren('200000172'), siren(' 200054781 '), siren('NC'), siren('12345'), siren(None)
    ('200000172', '200054781', None, None, None)
    """
    text = code.strip() if code else ""
    return text if len(text) == 9 and text.isascii() and text.isdigit() else None


NORMALISE: dict[str, Callable[[str | None], str | None]] = {
    "regions": codes.region,
    "academies": codes.academie,
    "departements": codes.departement,
    "epci": siren,
    "communes": codes.commune,
    "code_region": codes.region,
    "code_departement": codes.departement,
    "code_epci": siren,
}
# Candidate property names (lower-case), most specific first; the first one a source has wins.
CODE_KEYS = {
    "regions": ("code", "code_region", "insee_reg", "reg"),
    "academies": ("code_academie", "code", "code_aca"),
    "departements": ("code", "code_departement", "insee_dep", "dep"),
    "epci": ("code", "code_siren", "siren", "code_epci", "siren_epci"),
    "communes": ("code", "code_commune", "insee_com", "code_insee", "com"),
}
NAME_KEYS = ("nom", "name", "libelle", "nom_officiel", "libelle_academie", "nom_m", "libelle_aca_majuscules")
PARENT_KEYS = {
    "code_departement": ("code_departement", "departement", "insee_dep", "dep"),
    "code_region": ("code_region", "region", "insee_reg", "reg", "code_region_2016"),
    "code_epci": ("code_epci", "epci", "siren_epci"),
}
PARENTS = {
    "regions": (),
    "academies": ("code_region",),
    "departements": ("code_region",),
    "epci": (),
    "communes": ("code_departement", "code_region", "code_epci"),
}
# Académie names (ministry contours, 2020), for académies derived from départements.
ACADEMIE_NAMES = {
    "01": "Paris", "02": "Aix-Marseille", "03": "Besançon", "04": "Bordeaux", "06": "Clermont-Ferrand",
    "07": "Dijon", "08": "Grenoble", "09": "Lille", "10": "Lyon", "11": "Montpellier", "12": "Nancy-Metz",
    "13": "Poitiers", "14": "Rennes", "15": "Strasbourg", "16": "Toulouse", "17": "Nantes",
    "18": "Orléans-Tours", "19": "Reims", "20": "Amiens", "22": "Limoges", "23": "Nice", "24": "Créteil",
    "25": "Versailles", "27": "Corse", "28": "La Réunion", "31": "Martinique", "32": "Guadeloupe",
    "33": "Guyane", "43": "Mayotte", "70": "Normandie",
}
POLYGON, MULTIPOLYGON = 3, 6
NESTED = (4, 5, 6, 7)  # multi-part and collection type ids, whose parts get_parts must open
SHOWN = 5  # codes quoted in a note


@dataclass
class Territories:
    """One boundary level, column-wise, in EPSG:4326."""

    level: str  # 'regions' | 'academies' | 'departements' | 'epci' | 'communes'
    codes: list[str]  # normalised official code, unique
    names: list[str]
    geometries: np.ndarray  # shapely MultiPolygon, EPSG:4326, valid, non-empty
    parents: dict[str, list] = field(default_factory=dict)  # e.g. 'code_region' -> codes (None = unknown)
    # Code of a territory of the level below -> code here, for levels built from or laid over their
    # members: commune (current and former codes) -> EPCI, département -> académie.
    members: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.codes)


def as_multipolygons(geometries: np.ndarray) -> np.ndarray:
    """Each geometry's polygonal parts as one MultiPolygon, so a layer has one type; None if none.

    >>> as_multipolygons(np.array([shapely.box(0, 0, 1, 1), shapely.LineString([(0, 0), (1, 1)])]))
    array([<MULTIPOLYGON (((1 0, 1 1, 0 1, 0 0, 1 0)))>, None], dtype=object)
    """
    types = shapely.get_type_id(geometries)
    if (types == MULTIPOLYGON).all() and not shapely.is_empty(geometries).any():
        return np.asarray(geometries, dtype=object).copy()
    parts, index = shapely.get_parts(geometries, return_index=True)
    nested = np.isin(shapely.get_type_id(parts), NESTED)
    while nested.any():
        inner, inner_index = shapely.get_parts(parts[nested], return_index=True)
        parts = np.concatenate([parts[~nested], inner])
        index = np.concatenate([index[~nested], index[nested][inner_index]])
        nested = np.isin(shapely.get_type_id(parts), NESTED)
    keep = (shapely.get_type_id(parts) == POLYGON) & ~shapely.is_empty(parts)
    order = np.argsort(index[keep], kind="stable")
    out = np.full(len(geometries), None, dtype=object)
    if keep.any():
        shapely.multipolygons(parts[keep][order], indices=index[keep][order], out=out)
    return out


def repair(geometries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Valid MultiPolygons (None where nothing polygonal is left), and which ones needed repair."""
    invalid = ~shapely.is_valid(geometries)
    fixed = geometries.copy()
    fixed[invalid] = shapely.make_valid(geometries[invalid], method="structure", keep_collapsed=False)
    return as_multipolygons(fixed), invalid


def read_territories(level: str, path: Path, *, report: DatasetReport,
                     fields: Mapping[str, str] | None = None) -> Territories:
    """One boundary level from a GeoJSON FeatureCollection, every feature counted in the report."""
    features = _features(load_json(path, report), path)
    return _from_features(level, features, path, report, fields)


def load_json(path: Path, report: DatasetReport) -> Any:
    """The parsed file; malformed JSON stops the ingest, as nothing after the error can be read."""
    with open_text(path) as text:
        content = text.read()
        for note in text.notes():
            report.note(note)
    try:
        return json.loads(content)
    except json.JSONDecodeError as error:
        raise IngestError(f"{path}: malformed JSON at line {error.lineno}, column {error.colno} "
                          f"(character {error.pos}): {error.msg}") from None


def _features(data: Any, path: Path) -> list:
    if isinstance(data, dict) and data.get("type") == "FeatureCollection" and isinstance(data.get("features"), list):
        return data["features"]
    raise IngestError(f"{path}: not a GeoJSON FeatureCollection")


def _from_features(level: str, features: list, path: Path, report: DatasetReport,
                   fields: Mapping[str, str] | None) -> Territories:
    columns = property_columns(level, _property_names(features), fields or {}, path)
    rows = _Rows(level, report)
    for number, feature in enumerate(features, start=1):
        rows.add(number, feature if isinstance(feature, dict) else {}, columns)
    territories = rows.finish()
    west, south, east, north = shapely.total_bounds(territories.geometries)
    if len(territories) and (max(abs(west), abs(east)) > 180 or max(abs(south), abs(north)) > 90):
        raise IngestError(f"{path}: coordinates reach ({west:.0f}, {south:.0f}, {east:.0f}, {north:.0f}), "
                          "not longitude/latitude; reproject to EPSG:4326 first")
    if level == "communes" and "code_departement" not in territories.parents:
        territories.parents["code_departement"] = [codes.departement_of_commune(c) for c in territories.codes]
    return territories


def _property_names(features: list) -> dict[str, str]:
    """Every property name of the features, keyed by its lower-case spelling."""
    names: dict[str, str] = {}
    for feature in features:
        props = feature.get("properties") if isinstance(feature, dict) else None
        names.update((k.lower(), k) for k in props or () if k.lower() not in names)
    return names


def property_columns(level: str, available: Mapping[str, str], fields: Mapping[str, str],
                     path: Path) -> dict[str, str]:
    """Which property holds the code, the name and each parent: `fields`, else the first known name.

    >>> property_columns('academies', {'code_academie': 'code_academie', 'name': 'name'}, {}, Path('a'))
    {'code': 'code_academie', 'nom': 'name'}
    """
    if level not in CODE_KEYS:
        raise IngestError(f"{path}: unknown territory level {level!r}")
    candidates = {"code": CODE_KEYS[level], "nom": NAME_KEYS, **{p: PARENT_KEYS[p] for p in PARENTS[level]}}
    unknown = sorted(set(fields) - set(candidates))
    missing = sorted(v for v in fields.values() if v not in available.values())
    if unknown or missing:
        raise IngestError(f"{path}: fields {dict(fields)} name unknown roles {unknown} or absent properties "
                          f"{missing}; roles: {sorted(candidates)}, properties: {sorted(available.values())}")
    columns = {}
    for role, keys in candidates.items():
        found = fields.get(role) or next((available[k] for k in keys if k in available), None)
        if found is not None and found not in columns.values():
            columns[role] = found
    if "code" not in columns:
        raise IngestError(f"{path}: no {level} code property among {sorted(available.values())}; "
                          "name it with fields = {{code = '...'}}")
    return columns


class _Rows:
    """Features accepted so far; `finish` repairs, merges repeats and counts them in the report."""

    def __init__(self, level: str, report: DatasetReport):
        self.level, self.report = level, report
        self.lines: list[int] = []
        self.codes: list[str] = []
        self.names: list[str] = []
        self.geometries: list = []
        self.parents: dict[str, list] = {}
        self.cleaned: list[str] = []  # codes whose name held NUL characters, removed
        self.closed: list[str] = []  # codes whose outline had a ring left open, closed

    def add(self, number: int, feature: dict, columns: Mapping[str, str]) -> None:
        """Keep the feature, or reject it saying which feature and why."""
        props = feature.get("properties") or {}
        raw = props.get(columns["code"])
        code = NORMALISE[self.level](None if raw is None else str(raw))
        if code is None:
            self.report.reject(number, f"feature {number}: no {self.level} code in {columns['code']!r} ({raw!r})")
            return
        geometry, problem = _geometry(feature.get("geometry"))
        if problem:
            self.report.reject(number, f"feature {number} ({code}): {problem}")
            return
        self.lines.append(number)
        self.codes.append(code)
        name = props.get(columns["nom"]) if "nom" in columns else None
        name = str(name).strip() if name not in (None, "") else code
        if "\x00" in name:
            self.cleaned.append(code)
            name = name.replace("\x00", "")
        self.names.append(name)
        self.geometries.append(geometry)
        if unclosed_rings(feature.get("geometry")):
            self.closed.append(code)
        for role in [r for r in columns if r not in ("code", "nom")]:
            value = props.get(columns[role])
            self.parents.setdefault(role, []).append(NORMALISE[role](None if value is None else str(value)))

    def finish(self) -> Territories:
        """Repaired, merged and counted territories."""
        if self.cleaned:
            self.report.note(f"NUL characters removed from {len(self.cleaned)} names: {_quote(self.cleaned)}")
        if self.closed:
            self.report.note(f"{len(self.closed)} outlines had a ring left open (last point not the first), "
                             f"closed: {_quote(self.closed)}")
        geometries, invalid = repair(np.array(self.geometries, dtype=object))
        if invalid.any():
            self.report.note(f"{int(invalid.sum())} invalid geometries repaired with make_valid "
                             f"(polygonal parts kept): {_quote(np.array(self.codes)[invalid])}")
        keep = np.array([g is not None for g in geometries], dtype=bool)
        for i in np.flatnonzero(~keep):
            self.report.reject(self.lines[i], f"feature {self.lines[i]} ({self.codes[i]}): no polygon left "
                                              "after repairing its geometry")
        rows = np.flatnonzero(keep)
        self.report.load(len(rows))
        return self._merged(rows, geometries)

    def _merged(self, rows: np.ndarray, geometries: np.ndarray) -> Territories:
        """One territory per code: the first feature's attributes, every feature's land."""
        first: dict[str, list[int]] = {}
        for i in rows:
            first.setdefault(self.codes[i], []).append(int(i))
        repeated = [c for c, group in first.items() if len(group) > 1]
        merged = np.array([geometries[g[0]] if len(g) == 1 else _union(geometries[g]) for g in first.values()],
                          dtype=object)
        if repeated:
            self.report.note(f"{len(repeated)} codes on several features, merged into one territory each: "
                             f"{_quote(repeated)}")
        index = [g[0] for g in first.values()]
        return Territories(self.level, list(first), [self.names[i] for i in index], merged,
                           {role: [values[i] for i in index] for role, values in self.parents.items()})


def _geometry(raw: Any) -> tuple[Any, str]:
    """The parsed geometry, or what is wrong with it."""
    if not raw:
        return None, "no geometry"
    try:
        geometry = shape(raw)
    except (ShapelyError, ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
        return None, f"unreadable geometry ({type(error).__name__}: {error})"
    if geometry.is_empty:
        return None, "empty geometry"
    if geometry.geom_type not in ("Polygon", "MultiPolygon", "GeometryCollection"):
        return None, f"a {geometry.geom_type}, not a polygon"
    return geometry, ""


def unclosed_rings(raw: Any) -> int:
    """How many rings of a GeoJSON (Multi)Polygon do not end on their first point (shapely closes them).

    >>> unclosed_rings({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]})
    1
    >>> unclosed_rings({"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]]})
    0
    """
    if not isinstance(raw, dict) or raw.get("type") not in ("Polygon", "MultiPolygon"):
        return 0
    coordinates = raw.get("coordinates") or []
    polygons = [coordinates] if raw["type"] == "Polygon" else coordinates
    return sum(1 for polygon in polygons for ring in polygon or ()
               if isinstance(ring, list) and len(ring) > 1 and ring[0] != ring[-1])


def _union(geometries: np.ndarray) -> Any:
    """The union of polygons as a valid MultiPolygon: the fast coverage union when they tile."""
    united = (shapely.coverage_union_all(geometries) if shapely.coverage_is_valid(geometries)
              else shapely.union_all(geometries))
    return repair(np.array([united], dtype=object))[0][0]


def _quote(values: Iterable[str]) -> str:
    """The first few values of a list, for a note.

    >>> _quote(['1', '2', '3', '4', '5', '6', '7'])
    '1, 2, 3, 4, 5, ... (7)'
    """
    values = list(values)
    more = f", ... ({len(values)})" if len(values) > SHOWN else ""
    return ", ".join(values[:SHOWN]) + more


def read_epci(path: Path, communes: Territories, *, report: DatasetReport, history: Path | None = None,
              fields: Mapping[str, str] | None = None) -> Territories:
    """EPCI from whichever form the source takes: polygons, or a membership list over the communes.

    A JSON array is a membership list (`fields` may rename `code`, `nom`, `membres`); a
    FeatureCollection is polygons, whose `members` are found by laying the communes over them.
    """
    data = load_json(path, report)
    if isinstance(data, list):
        return _epci_from_records(data, path, communes, report, history, fields or {})
    epci = _from_features("epci", _features(data, path), path, report, fields)
    epci.members = members_by_location(communes, epci)
    return epci


def epci_from_membership(path: Path, communes: Territories, *, report: DatasetReport,
                         history: Path | None = None, fields: Mapping[str, str] | None = None) -> Territories:
    """EPCI polygons as the union of their member communes, from a list of EPCI with `membres`.

    With `history` (decoupage-administratif `communes.json`), polygons under a former commune code
    are counted in the EPCI of the commune that absorbed them; `members` maps current and former
    commune codes to their EPCI, so schools get `code_epci` from their commune.
    """
    data = load_json(path, report)
    if not isinstance(data, list):
        raise IngestError(f"{path}: not a membership list (a JSON array of EPCI with their 'membres')")
    return _epci_from_records(data, path, communes, report, history, fields or {})


def _epci_from_records(records: list, path: Path, communes: Territories, report: DatasetReport,
                       history: Path | None, fields: Mapping[str, str]) -> Territories:
    epci_of, names, lines = _membership(records, report, fields)
    current = current_communes(history, report) if history else {}
    groups: dict[str, list[int]] = {}
    alone, renamed = [], 0
    for i, code in enumerate(communes.codes):
        now = current.get(code, code)
        renamed += now != code
        epci = epci_of.get(now)
        if epci is None:
            alone.append(code)
        else:
            groups.setdefault(epci, []).append(i)
    if renamed:
        report.note(f"{renamed} commune polygons under a former code counted in their current commune's EPCI")
    if alone:
        report.note(f"{len(alone)} commune polygons belong to no EPCI: {_quote(alone)}")
    for epci in names.keys() - groups.keys():
        size = sum(e == epci for e in epci_of.values())
        report.reject(lines[epci], f"record {lines[epci]}: EPCI {epci} ({names[epci]}): none of its {size} "
                                   "member communes has a polygon")
    order = [e for e in names if e in groups]
    report.load(len(order))
    geometries = np.array([_union(communes.geometries[groups[e]]) for e in order], dtype=object)
    members = {old: epci_of[now] for old, now in current.items() if now in epci_of} | epci_of
    return Territories("epci", order, [names[e] for e in order], geometries, {}, members)


def _membership(records: list, report: DatasetReport,
                fields: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str], dict[str, int]]:
    """Commune -> EPCI, EPCI -> name and EPCI -> record number, rejecting records that cannot be used."""
    code_key, name_key, members_key = (fields.get(k, k) for k in ("code", "nom", "membres"))
    epci_of: dict[str, str] = {}
    names: dict[str, str] = {}
    lines: dict[str, int] = {}
    claimed = 0
    for number, record in enumerate(records, start=1):
        record = record if isinstance(record, dict) else {}
        code = siren(str(record.get(code_key) or ""))
        members = record.get(members_key)
        problem = ("no SIREN code" if code is None
                   else f"EPCI {code} already listed at record {lines[code]}" if code in names
                   else "" if isinstance(members, list) and members else f"EPCI {code} has no '{members_key}'")
        if problem:
            report.reject(number, f"record {number}: {problem}")
            continue
        names[code], lines[code] = str(record.get(name_key) or code), number
        for member in members:
            commune = codes.commune(str(member.get("code") if isinstance(member, dict) else member))
            if commune is not None and epci_of.setdefault(commune, code) != code:
                claimed += 1
    if claimed:
        report.note(f"{claimed} communes listed in several EPCI; each kept in the first")
    return epci_of, names, lines


def current_communes(history: Path, report: DatasetReport) -> dict[str, str]:
    """Former commune code -> the current commune holding it, from decoupage-administratif `communes.json`.

    Merged communes (`anciensCodes` of their commune nouvelle), communes déléguées and associées
    (their `chefLieu`) and municipal arrondissements (their `commune`) all lead to a current commune.
    """
    records = load_json(history, report)
    if not isinstance(records, list):
        raise IngestError(f"{history}: not a list of communes (decoupage-administratif communes.json)")
    records = [r for r in records if isinstance(r, dict)]
    now = {r.get("code") for r in records if r.get("type") == "commune-actuelle"}
    mapping: dict[str, str] = {}
    for r in records:
        kind = r.get("type")
        if kind == "commune-actuelle":
            pairs = [(old, r.get("code")) for old in r.get("anciensCodes") or ()]
        else:
            target = {"commune-deleguee": "chefLieu", "commune-associee": "chefLieu",
                      "arrondissement-municipal": "commune"}.get(kind)
            pairs = [(r.get("code"), r.get(target))] if target else []
        for old, new in pairs:
            if old not in now and new in now:
                mapping.setdefault(old, new)
    return mapping


def members_by_location(lower: Territories, upper: Territories) -> dict[str, str]:
    """Each territory of `lower` -> the one of `upper` holding a point inside it (when one does)."""
    points = shapely.point_on_surface(lower.geometries)
    inner, outer = shapely.STRtree(upper.geometries).query(points, predicate="within")
    return {lower.codes[i]: upper.codes[j] for i, j in zip(inner, outer, strict=True)}


def derive_academies(departements: Territories, dept_to_academie: Mapping[str, str], names: Mapping[str, str],
                     *, report: DatasetReport | None = None) -> Territories:
    """Académies as the union of their départements, when no académie boundaries are given.

    Names come from `names`, else from the ministry's list; an académie's région is kept when
    all its départements share one. Départements with no académie are left out (noted).
    """
    mapping = {codes.departement(d): codes.academie(a) for d, a in dept_to_academie.items()}
    groups: dict[str, list[int]] = {}
    for i, dep in enumerate(departements.codes):
        if mapping.get(dep):
            groups.setdefault(mapping[dep], []).append(i)
    left = [d for d in departements.codes if not mapping.get(d)]
    if left and report is not None:
        report.note(f"{len(left)} départements in no académie: {_quote(left)}")
    order = sorted(groups)
    regions = departements.parents.get("code_region")
    parents = {}
    if regions is not None:
        parents["code_region"] = [_only({regions[i] for i in groups[a]}) for a in order]
    return Territories(
        "academies", order, [names.get(a) or ACADEMIE_NAMES.get(a, f"Académie {a}") for a in order],
        np.array([_union(departements.geometries[groups[a]]) for a in order], dtype=object), parents,
        {departements.codes[i]: a for a in order for i in groups[a]},
    )


def _only(values: set) -> Any:
    """The single value of a set, or None when there are several.

    >>> _only({'84'}), _only({'84', '93'})
    ('84', None)
    """
    return next(iter(values)) if len(values) == 1 else None
