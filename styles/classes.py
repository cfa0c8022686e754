"""Classes of an indicator: the limits, colours and legend labels that turn values into colours.

One `Classes` object gives both the MapLibre expression and the QGIS expression for a layer, and
the legend that explains them, so a map, a QGIS project and a legend can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

from styles import palettes
from tileserver.core.dataset import SCHOOLS
from tileserver.core.summary import level_breaks

SHARE_BREAKS = (20.0, 40.0, 60.0, 80.0)  # shares of schools, in %
Kind = Literal["steps", "boolean", "single"]


@dataclass(frozen=True)
class Classes:
    """How one indicator's values become colours at one level."""

    title: str
    unit: str
    kind: Kind
    breaks: tuple[float, ...]
    colours: tuple[str, ...]

    @property
    def labels(self) -> list[str]:
        """One legend label per colour.

        >>> Classes("x", "", "steps", (8, 30.5), ("a", "b", "c")).labels
        ['< 8', '8 – 30,5', '≥ 30,5']
        """
        if self.kind == "boolean":
            return ["Non", "Oui"]
        if self.kind == "single":
            return ["Renseigné"]
        limits = [format_number(b) for b in self.breaks]
        middle = [f"{a} – {b}" for a, b in pairwise(limits)]
        return [f"< {limits[0]}", *middle, f"≥ {limits[-1]}"]

    def paint(self, value: list, present: list | None = None) -> list:
        """A MapLibre colour expression for `value`; "no data" unless `present` holds.

        `present` defaults to "the value is a number" (booleans test their own values).
        """
        if self.kind == "boolean":
            no, yes = self.colours
            return ["match", ["to-string", value], ["true", "1"], yes, ["false", "0"], no, palettes.NO_DATA]
        if present is None:
            present = ["==", ["typeof", value], "number"]
        if self.kind == "single":
            return ["case", present, self.colours[0], palettes.NO_DATA]
        steps: list[Any] = [self.colours[0]]
        for limit, colour in zip(self.breaks, self.colours[1:], strict=True):
            steps += [limit, colour]
        return ["case", present, ["step", value, *steps], palettes.NO_DATA]

    def qgis(self, value: str) -> str:
        """The same colours as a QGIS expression on `value` (an expression text).

        >>> Classes("x", "", "steps", (8,), ("#aaa", "#bbb")).qgis('"d"')
        'CASE WHEN "d" IS NULL THEN \\'#bdbdbd\\' WHEN "d" < 8 THEN \\'#aaa\\' ELSE \\'#bbb\\' END'
        """
        cases = [f"WHEN {value} IS NULL THEN '{palettes.NO_DATA}'"]
        if self.kind == "boolean":
            cases.append(f"WHEN to_string({value}) IN ('true', '1') THEN '{self.colours[1]}'")
            last = self.colours[0]
        else:
            cases += [f"WHEN {value} < {_plain(b)} THEN '{c}'" for b, c in zip(self.breaks, self.colours, strict=False)]
            last = self.colours[-1]
        return f"CASE {' '.join(cases)} ELSE '{last}' END"

    def legend(self) -> dict:
        """The legend of these classes, "no data" included, as the map page draws it."""
        return {
            "title": self.title,
            "unit": self.unit,
            "classes": [{"colour": c, "label": label} for c, label in zip(self.colours, self.labels, strict=True)],
            "no_data": {"colour": palettes.NO_DATA, "label": "Pas de données"},
        }


def for_schools(entry: Mapping) -> Classes:
    """Classes of an indicator on single schools: yes/no, the catalogue's limits or the computed ones, or one colour."""
    ramp = palettes.ramp_name(entry.get("palette", ""), entry["theme"])
    title, unit = entry["label"], entry.get("unit", "")
    if entry["kind"] == "boolean":
        return Classes(title, "", "boolean", (), tuple(palettes.colours(ramp, 2)))
    return _stepped(title, unit, level_breaks(entry, SCHOOLS) if entry["kind"] == "number" else (), ramp)


def for_aggregates(entry: Mapping, level: str | None = None) -> Classes:
    """Classes of an indicator aggregated on territories of `level` (shares in %, means in the unit).

    The limits computed at ingest for the level when there are some; else, and for clusters (no
    level), fixed limits: every 20 % for shares, the catalogue's `breaks` for means.
    """
    ramp = palettes.ramp_name(entry.get("palette", ""), entry["theme"])
    aggregate = entry.get("aggregate") or ("share" if entry["kind"] == "boolean" else "mean")
    unit = "% des établissements" if aggregate == "share" else entry.get("unit", "")
    computed = (entry.get("breaks_by_level") or {}).get(level) if level else None
    if computed:
        return _stepped(entry["label"], unit, tuple(computed), ramp)
    if aggregate == "share":
        return _stepped(entry["label"], unit, SHARE_BREAKS, ramp)
    breaks = tuple(entry.get("breaks") or ()) if aggregate in ("mean", "min", "max", "ratio") else ()
    return _stepped(entry["label"], unit, breaks, ramp)


def _stepped(title: str, unit: str, breaks: tuple[float, ...], ramp: str) -> Classes:
    """Steps at `breaks`, or a single colour when the catalogue gives no limits."""
    if not breaks:
        return Classes(title, unit, "single", (), tuple(palettes.colours(ramp, 1)))
    breaks = tuple(sorted(float(b) for b in breaks))[: palettes.MAX_CLASSES - 1]
    return Classes(title, unit, "steps", breaks, tuple(palettes.colours(ramp, len(breaks) + 1)))


def format_number(value: float, decimals: int = 6) -> str:
    """A number as French readers write it (decimal comma, a space between thousands).

    >>> format_number(8.0), format_number(0.25), format_number(1500), format_number(12.345, 1), format_number(10, 0)
    ('8', '0,25', '1 500', '12,3', '10')
    """
    text = f"{value:,.{decimals}f}"
    if "." in text:  # trailing zeros of the decimals only: 10 stays 10
        text = text.rstrip("0").rstrip(".")
    return text.replace(",", " ").replace(".", ",")


def _plain(value: float) -> str:
    """A limit as an expression literal.

    >>> _plain(8.0), _plain(0.25)
    ('8', '0.25')
    """
    return f"{value:.10g}"
