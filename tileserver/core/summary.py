"""What a group of schools says about each indicator: its value, by school type, the unknowns, the classes.

One pure function serves France (summarised at ingest, over every school, and kept in the
catalogue) and any territory (summarised when its sheet is asked for), so a territory and France
are always compared on the same terms. Values aggregate as the ingest aggregates territories: a
mean, a share of schools in %, a sum, a minimum, a maximum or a count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tileserver.core.dataset import SCHOOLS
from tileserver.core.store import FeatureQuery, Snapshot

SPLIT_TYPES = ("ecole", "college", "lycee")  # the school types a sheet compares one by one
YES_NO_BREAKS = (0.5,)  # "Non" below, "Oui" above: the two classes of a yes/no indicator


@dataclass(frozen=True)
class IndicatorSummary:
    """One indicator over a group of schools."""

    value: float | None  # the aggregate over every school with a value
    by_type: dict[str, float | None]  # the same, for the schools of each of `SPLIT_TYPES`
    nc: int  # schools with no value ("non communiqué")
    classes: list[int] = field(default_factory=list)  # schools per class of the schools' legend

    def to_dict(self) -> dict[str, Any]:
        """As stored in the catalogue (`entry["france"]`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> IndicatorSummary:
        """Read back from `to_dict`."""
        return cls(raw["value"], dict(raw["by_type"]), raw["nc"], list(raw.get("classes") or []))


def level_breaks(entry: Mapping, level: str) -> tuple[float, ...]:
    """The class limits of an indicator at a level, as maps and legends draw them.

    Single schools keep the catalogue's fixed `breaks` when it has some (set for single schools,
    and an override of those computed at ingest); other levels take the limits computed at ingest
    for them (`breaks_by_level`), else the fixed ones. Empty: no limits known.
    >>> entry = {"kind": "number", "breaks": [8, 30], "breaks_by_level": {"regions": [150, 200]}}
    >>> level_breaks(entry, SCHOOLS), level_breaks(entry, "regions"), level_breaks(entry, "communes")
    ((8.0, 30.0), (150.0, 200.0), (8.0, 30.0))
    """
    fixed = tuple(float(b) for b in entry.get("breaks") or ())
    if level == SCHOOLS and fixed:
        return fixed
    computed = (entry.get("breaks_by_level") or {}).get(level)
    return tuple(float(b) for b in computed) if computed else fixed


def school_breaks(entry: Mapping) -> tuple[float, ...] | None:
    """The limits of the schools' legend classes (yes/no for booleans); None when it has no classes."""
    if entry["kind"] == "boolean":
        return YES_NO_BREAKS
    if entry["kind"] != "number":
        return None
    return level_breaks(entry, SCHOOLS) or None


def summarise(types: Sequence[str | None], values: Sequence[Any], entry: Mapping) -> IndicatorSummary:
    """One indicator over schools of `types` with `values` (None unknown; booleans as bool or 0/1).

    >>> entry = {"kind": "number", "aggregate": "mean", "breaks": [10]}
    >>> summarise(["ecole", "ecole", "lycee", "college"], [4.0, 8.0, 30.0, None], entry)
    IndicatorSummary(value=14.0, by_type={'ecole': 6.0, 'college': None, 'lycee': 30.0}, nc=1, classes=[2, 1])
    >>> share = {"kind": "boolean", "aggregate": "share"}
    >>> summarise(["ecole", "college", "college"], [True, False, None], share).value
    50.0
    >>> summarise(["ecole", "college"], [None, None], {"kind": "number", "applies_to": ["college"]}).nc
    1
    """
    return summarise_groups(np.zeros(len(types), dtype=np.int64), 1, types, values, entry)[0]


def summarise_groups(groups: np.ndarray, n: int, types: Sequence[str | None], values: Sequence[Any],
                     entry: Mapping) -> list[IndicatorSummary]:
    """One indicator over each of `n` groups of schools (`groups[i]`: school i's group, -1 for none).

    >>> entry = {"kind": "number", "aggregate": "max"}
    >>> [s.value for s in summarise_groups(np.array([0, 1, 0, -1]), 2, ["ecole"] * 4, [1, 2, 3, 4], entry)]
    [3.0, 2.0]
    """
    numbers = numeric(values, counted=entry["kind"] == "category")
    kinds = np.array([t or "" for t in types], dtype=object)
    inside = groups >= 0
    how = entry.get("aggregate") or ("share" if entry["kind"] == "boolean" else "mean")
    total = grouped(groups[inside], numbers[inside], n, how)
    by_type = {}
    for t in SPLIT_TYPES:
        chosen = inside & (kinds == t)
        by_type[t] = grouped(groups[chosen], numbers[chosen], n, how)
    # "non communiqué": schools the indicator applies to (`applies_to` types, else all) with no value
    applies = np.isin(kinds, list(entry["applies_to"])) if entry.get("applies_to") else np.ones(len(kinds), bool)
    nc = np.bincount(groups[inside & applies & np.isnan(numbers)], minlength=n)
    classes = _grouped_classes(groups[inside], numbers[inside], n, school_breaks(entry))
    return [IndicatorSummary(total[i], {t: by_type[t][i] for t in SPLIT_TYPES}, int(nc[i]), classes[i].tolist())
            for i in range(n)]


def _grouped_classes(g: np.ndarray, numbers: np.ndarray, n: int, breaks: tuple[float, ...] | None) -> np.ndarray:
    """Schools per (group, class): an n x classes array (no column when there are no classes)."""
    if not breaks:
        return np.zeros((n, 0), dtype=np.int64)
    known = ~np.isnan(numbers)
    width = len(breaks) + 1
    positions = np.searchsorted(np.asarray(breaks), numbers[known], side="right")
    return np.bincount(g[known] * width + positions, minlength=n * width).reshape(n, width)


def grouped(g: np.ndarray, values: np.ndarray, n: int, how: str) -> list:
    """One aggregate per group 0..n-1 of the values (NaN unknown); None where no value is known (0 for counts).

    The ingest aggregates territories with it too, so sheets and layers agree. Means and shares
    (in %) are rounded to 2 decimals.
    >>> grouped(np.array([0, 0, 1, 1]), np.array([1.0, 0.0, np.nan, 1.0]), 3, "share")
    [50.0, 100.0, None]
    >>> grouped(np.array([0, 0, 1]), np.array([2.0, 0.0, np.nan]), 2, "count")
    [1, 0]
    """
    known = ~np.isnan(values)
    gk, vk = g[known], values[known]
    counts = np.bincount(gk, minlength=n)
    if how == "count":
        result = np.bincount(gk, weights=vk != 0, minlength=n) if vk.size else counts * 0.0
        return [int(v) for v in result]
    if how in ("min", "max"):
        result = np.full(n, np.inf if how == "min" else -np.inf)
        (np.minimum if how == "min" else np.maximum).at(result, gk, vk)
    else:
        result = np.bincount(gk, weights=vk, minlength=n)
        if how == "mean":
            result = np.divide(result, counts, out=np.zeros(n), where=counts > 0)
        elif how == "share":
            result = 100.0 * np.divide(result, counts, out=np.zeros(n), where=counts > 0)
    return [round(float(v), 2) if c else None for v, c in zip(result, counts, strict=True)]


def class_counts(values: Sequence[Any], breaks: Sequence[float]) -> list[int]:
    """How many known values fall in each class (`< breaks[0]`, then `[b_i, b_i+1)`, then `>= last`).

    >>> class_counts([1, 5, 5, 9, None], [5, 8])
    [1, 2, 1]
    """
    numbers = numeric(values)
    return _grouped_classes(np.zeros(len(numbers), dtype=np.int64), numbers, 1, tuple(breaks))[0].tolist()


def numeric(values: Sequence[Any], *, counted: bool = False) -> np.ndarray:
    """Values as floats, NaN where unknown; `counted`: 1 for any known value (categories are counted).

    >>> numeric([1, None, True, "x"]).tolist(), numeric(["a", None], counted=True).tolist()
    ([1.0, nan, 1.0, nan], [1.0, nan])
    """
    if counted:
        return np.array([np.nan if v is None else 1.0 for v in values], dtype=float)
    return np.array([v if isinstance(v, int | float) else np.nan for v in values], dtype=float)


# The school property holding each level's code, finest level first.
LEVEL_CODES = {"communes": "code_commune", "epci": "code_epci", "departements": "code_departement",
               "academies": "code_academie", "regions": "code_region"}
LEVELS_UP = tuple(LEVEL_CODES)  # finest to coarsest
ALL_SCHOOLS = 1_000_000  # a query limit above any territory's school count


@dataclass(frozen=True)
class TerritorySummary:
    """A territory's schools summarised: how many, the territories they mostly lie in, each indicator."""

    schools: int
    parents: dict[str, str]  # coarser level -> the code most of the schools have
    indicators: dict[str, IndicatorSummary]

    def to_dict(self) -> dict[str, Any]:
        """Compact JSON, as the version metadata keeps it (one list per indicator).

        >>> s = TerritorySummary(2, {"regions": "53"}, {"x": IndicatorSummary(1.5, {"ecole": 1.5}, 0, [2])})
        >>> s.to_dict()
        {'n': 2, 'parents': {'regions': '53'}, 'indicators': {'x': [1.5, 1.5, 0, 2]}}
        >>> TerritorySummary.from_dict(s.to_dict(), ("ecole",)) == s
        True
        """
        return {"n": self.schools, "parents": self.parents,
                "indicators": {k: [v.value, *v.by_type.values(), v.nc, *v.classes] for k, v in self.indicators.items()}}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], types: Sequence[str] = SPLIT_TYPES) -> TerritorySummary:
        """Read back from `to_dict`."""
        split = len(types) + 1
        indicators = {k: IndicatorSummary(row[0], dict(zip(types, row[1:split], strict=True)), row[split],
                                          list(row[split + 1:])) for k, row in raw["indicators"].items()}
        return cls(raw["n"], dict(raw["parents"]), indicators)


def summarise_territories(groups: np.ndarray, n: int, columns: Mapping[str, Sequence], entries: Sequence[Mapping],
                          level: str) -> list[TerritorySummary]:
    """Each of `n` territories of `level` from its schools' `columns` (`groups[i]`: school i's territory)."""
    inside = groups >= 0
    counts = np.bincount(groups[inside], minlength=n)
    above = LEVELS_UP[LEVELS_UP.index(level) + 1:]
    parents = {up: _main_codes(groups, n, columns[LEVEL_CODES[up]]) for up in above if LEVEL_CODES[up] in columns}
    per = {e["id"]: summarise_groups(groups, n, columns["type"], columns[e["id"]], e) for e in entries}
    return [TerritorySummary(int(counts[i]), {up: codes[i] for up, codes in parents.items() if codes[i]},
                             {k: v[i] for k, v in per.items()}) for i in range(n)]


def _main_codes(groups: np.ndarray, n: int, codes: Sequence[str | None]) -> list[str | None]:
    """Per group, the code most of its schools have (None for a group without schools).

    >>> _main_codes(np.array([0, 0, 0, 1, -1]), 3, ["a", "b", "b", "c", "d"])
    ['b', 'c', None]
    """
    tallies: list[Counter] = [Counter() for _ in range(n)]
    for group, code in zip(groups.tolist(), codes, strict=True):
        if group >= 0 and code:
            tallies[group][code] += 1
    return [t.most_common(1)[0][0] if t else None for t in tallies]


def school_entries(catalogue: Sequence[Mapping], fields: Sequence[str]) -> list[Mapping]:
    """The catalogue's school indicators that the schools carry and that add up from their values.

    A ratio is a sum of numerators over a sum of denominators, which the schools' values do not hold.
    """
    return [e for e in catalogue if e.get("level", SCHOOLS) == SCHOOLS and e["id"] in fields
            and e.get("aggregate") != "ratio"]


def summarise_territory(snap: Snapshot, level: str, code: str, catalogue: Sequence[Mapping]) -> TerritorySummary:
    """A territory summarised from its schools, read in one query (for levels the ingest did not summarise).

    About 0.2 s for a commune of 1,000 schools (GeoPackage, national data): callers keep the result.
    """
    info = next(c for c in snap.collections() if c.id == SCHOOLS)
    entries = school_entries(catalogue, [f.name for f in info.fields])
    names = ("type", *LEVEL_CODES.values(), *(e["id"] for e in entries))
    query = FeatureQuery(SCHOOLS, equals=((LEVEL_CODES[level], (code,)),),
                         properties=tuple(n for n in names if info.field(n)), limit=ALL_SCHOOLS)
    rows = [f.properties for f in snap.query(query).features]
    columns = {name: [r.get(name) for r in rows] for name in names}
    return summarise_territories(np.zeros(len(rows), dtype=np.int64), 1, columns, entries, level)[0]
