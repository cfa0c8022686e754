"""What a group of schools says about each indicator: its value, by school type, the unknowns, the classes.

One pure function serves France (summarised at ingest, over every school, and kept in the
catalogue) and any territory (summarised when its sheet is asked for), so a territory and France
are always compared on the same terms. Values aggregate as the ingest aggregates territories: a
mean, a share of schools in %, a sum, a minimum, a maximum or a count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tileserver.core.dataset import SCHOOLS

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
    """
    if entry["kind"] == "category":  # counted: a school with any value counts one
        values = [None if v is None else 1.0 for v in values]
    numbers = np.array([_number(v) for v in values], dtype=float)
    kinds = np.array([t or "" for t in types], dtype=object)
    how = entry.get("aggregate") or ("share" if entry["kind"] == "boolean" else "mean")
    by_type = {t: aggregate(numbers[kinds == t], how) for t in SPLIT_TYPES}
    breaks = school_breaks(entry)
    classes = class_counts(numbers, breaks) if breaks else []
    return IndicatorSummary(aggregate(numbers, how), by_type, int(np.isnan(numbers).sum()), classes)


def aggregate(numbers: np.ndarray, how: str) -> float | None:
    """The aggregate of the known numbers (NaN unknown) as the ingest computes it; None when none is known.

    >>> aggregate(np.array([1.0, 0.0, np.nan, 1.0]), "share"), aggregate(np.array([2.0, 0.0]), "count")
    (66.67, 1.0)
    """
    known = numbers[~np.isnan(numbers)]
    if how == "count":
        return float(np.count_nonzero(known))
    if not known.size:
        return None
    result = {"mean": np.mean, "sum": np.sum, "min": np.min, "max": np.max}.get(how)
    value = 100.0 * float(np.mean(known)) if how == "share" else float(result(known) if result else np.mean(known))
    return round(value, 2)


def class_counts(values: Sequence[float | None] | np.ndarray, breaks: Sequence[float]) -> list[int]:
    """How many known values fall in each class (`< breaks[0]`, then `[b_i, b_i+1)`, then `>= last`).

    >>> class_counts([1, 5, 5, 9, None], [5, 8])
    [1, 2, 1]
    """
    data = np.array([_number(v) for v in values], dtype=float)
    data = data[np.isfinite(data)]
    positions = np.searchsorted(np.asarray(breaks, dtype=float), data, side="right")
    return np.bincount(positions, minlength=len(breaks) + 1).tolist()


def _number(value: Any) -> float:
    """A school's value as a float (NaN when unknown or not a number)."""
    if value is None or isinstance(value, str):
        return float("nan")
    return float(value)
