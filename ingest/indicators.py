"""Indicator tables: read once per source file, joined to schools or territories, aggregated upward.

Values are carried as float arrays aligned with the schools (NaN = unknown; booleans as 0/1), so
aggregation to every territory level is a handful of vectorised group-bys.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest import codes
from ingest import table as tabular
from ingest.fetch import open_text
from ingest.manifest import Indicator
from ingest.report import DatasetReport, Report
from tileserver.core.dataset import COUNTED_TYPES, SCHOOLS
from tileserver.core.errors import IngestError
from tileserver.core.summary import grouped

NULL_VALUES = frozenset({"", "nr", "nc", "nd", "na", "n/a", "-", "s.o."})
_KEY_NORMALISERS = {
    SCHOOLS: codes.uai,
    "communes": codes.commune,
    "departements": codes.departement,
    "academies": codes.academie,
    "regions": codes.region,
    "epci": lambda v: v.strip() or None,
}


def parse_value(indicator: Indicator, raw: str) -> float | str | None:
    """One cell as a number (booleans 0/1), a category string, or None when unknown.

    Raises ValueError with a readable reason when the cell is not of the indicator's kind.
    >>> from ingest.manifest import Indicator
    >>> fibre = Indicator("fibre", "connectivite", "Fibre", "f", "fibre", kind="boolean")
    >>> parse_value(fibre, "oui"), parse_value(fibre, "0"), parse_value(fibre, "nr")
    (1.0, 0.0, None)
    """
    text = raw.strip()
    if text.lower() in NULL_VALUES:
        return None
    if indicator.kind == "number":
        try:
            return float(text.replace(",", ".").replace("\u202f", "").replace(" ", ""))
        except ValueError:
            raise ValueError(f"column {indicator.column}: {text!r} is not a number") from None
    if indicator.kind == "boolean":
        lowered = text.lower()
        if lowered in indicator.true_values:
            return 1.0
        if lowered in indicator.false_values:
            return 0.0
        raise ValueError(f"column {indicator.column}: {text!r} is not a yes/no value")
    return text


@dataclass
class IndicatorValues:
    """Values of some indicators keyed by the join key (UAI or territory code)."""

    by_key: dict[str, dict[str, float | str | None]]
    lines: dict[str, int]  # the source line each key was read from, for later rejections


def read_table(path: Path, indicators: Sequence[Indicator], report: DatasetReport) -> IndicatorValues:
    """Read the indicators that share one source file, rejecting broken rows with their line."""
    first = indicators[0]
    normalise = _KEY_NORMALISERS[first.level]
    with open_text(path) as text:
        table = tabular.read_table(text, path)
        header = [tabular.header_key(c) for c in table.header]
        positions = _positions(path, header, first, indicators)
        latest = _latest_position(path, header, first)
        best: dict[str, tuple[str, int]] = {}
        values: dict[str, dict[str, float | str | None]] = {}
        for record in table.records:
            if record.values is None:
                report.reject(record.line, record.problem)
            elif record.values:
                _read_row(record.line, record.values, positions, latest, normalise, indicators, report, best, values)
    return IndicatorValues(values, {key: line for key, (_, line) in best.items()})


def _positions(path: Path, header: list[str], first: Indicator, indicators: Sequence[Indicator]) -> dict:
    wanted = {"key": tabular.header_key(first.key), **{i.id: tabular.header_key(i.column) for i in indicators}}
    missing = [col for col in wanted.values() if col not in header]
    if missing:
        raise IngestError(f"{path}: missing columns {missing}; found {header[:20]}")
    return {name: header.index(col) for name, col in wanted.items()}


def _latest_position(path: Path, header: list[str], first: Indicator) -> int | None:
    if not first.latest:
        return None
    col = tabular.header_key(first.latest)
    if col not in header:
        raise IngestError(f"{path}: missing column {first.latest!r} (the indicator's `latest`)")
    return header.index(col)


def _read_row(line, row, positions, latest, normalise, indicators, report, best, values) -> None:
    """Parse one row into `values`, keeping per key the row with the highest `latest` column."""
    raw_key = row[positions["key"]]
    key = normalise(raw_key)
    if not key:
        report.reject(line, f"column {indicators[0].key!r}: {raw_key!r} is not a valid {indicators[0].level} key")
        return
    try:
        parsed = {i.id: parse_value(i, row[positions[i.id]]) for i in indicators}
    except ValueError as exc:
        report.reject(line, str(exc))
        return
    rank = row[latest] if latest is not None else ""
    previous = best.get(key)
    if previous is not None:
        if latest is None or rank <= previous[0]:
            report.reject(line, f"duplicate key {key} (kept line {previous[1]})")
            return
        report.unload(previous[1], f"duplicate key {key}: line {line} is more recent")
    best[key] = (rank, line)
    values[key] = parsed
    report.load()


def join_to_schools(
    uai: Sequence[str], tables: Iterable[tuple[IndicatorValues, DatasetReport, Sequence[Indicator]]]
) -> dict[str, np.ndarray | list]:
    """Per indicator, its values aligned with the schools; rows naming no loaded school are rejected."""
    index = {u: i for i, u in enumerate(uai)}
    out: dict[str, np.ndarray | list] = {}
    for table, report, indicators in tables:
        for ind in indicators:
            out[ind.id] = [None] * len(uai) if ind.kind == "category" else np.full(len(uai), np.nan)
        for key, row in table.by_key.items():
            i = index.get(key)
            if i is None:
                report.unload(table.lines[key], f"UAI {key} is not among the loaded schools")
                continue
            for ind in indicators:
                if row[ind.id] is not None:
                    out[ind.id][i] = row[ind.id]
    return out


def group_sources(indicators: Sequence[Indicator]) -> dict[str, list[Indicator]]:
    """Indicators by (source, key, level), so each file is read once."""
    groups: dict[str, list[Indicator]] = defaultdict(list)
    for ind in indicators:
        groups[f"{ind.source}\x00{ind.key}\x00{ind.level}\x00{ind.latest}"].append(ind)
    return dict(groups)


def aggregate(
    territory_codes: Sequence[str | None],
    order: Mapping[str, int],
    types: Sequence[str],
    school_values: Mapping[str, np.ndarray | list],
    indicators: Sequence[Indicator],
) -> dict[str, list]:
    """School counts, counts by type and each indicator's aggregate, per territory of `order`."""
    n = len(order)
    group = np.array([order.get(c, -1) if c else -1 for c in territory_codes], dtype=np.int64)
    inside = group >= 0
    g = group[inside]
    columns: dict[str, list] = {"etablissements": _count(g, n).tolist()}
    kinds = np.array([t if t in COUNTED_TYPES else "autre" for t in types])[inside]
    for t in COUNTED_TYPES:
        columns[f"n_{t}"] = _count(g[kinds == t], n).tolist()
    for ind in indicators:
        if ind.level != SCHOOLS:
            continue
        values = school_values[ind.id]
        if ind.kind == "category":
            known = np.array([v is not None for v in values])[inside]
            columns[ind.id] = _count(g[known], n).tolist()
            continue
        columns[ind.id] = grouped(g, np.asarray(values)[inside], n, ind.aggregate)
    return columns


def _count(groups: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(groups, minlength=n)


def territory_values(
    codes_: Sequence[str], tables: Iterable[tuple[IndicatorValues, DatasetReport, Sequence[Indicator]]]
) -> dict[str, list]:
    """Indicators published per territory, aligned with that level's codes."""
    index = {c: i for i, c in enumerate(codes_)}
    out: dict[str, list] = {}
    for table, report, indicators in tables:
        for ind in indicators:
            out[ind.id] = [None] * len(codes_)
        for key, row in table.by_key.items():
            i = index.get(key)
            if i is None:
                report.unload(table.lines[key], f"code {key} is not a loaded {indicators[0].level} territory")
                continue
            for ind in indicators:
                out[ind.id][i] = row[ind.id]
    return out


def read_all(
    indicators: Sequence[Indicator], fetch_path, report: Report
) -> list[tuple[IndicatorValues, DatasetReport, list[Indicator]]]:
    """Read every indicator source once; one that cannot be used is reported and skipped."""
    tables = []
    for group in group_sources(indicators).values():
        name = ("indicateurs: " + ", ".join(i.id for i in group))[:60]
        try:
            path = fetch_path(group[0].source)
            dataset = report.dataset(name, str(path))
            table = read_table(path, group, dataset)
        except IngestError as exc:
            dataset = report.dataset(name, group[0].source)
            dataset.note(f"skipped, its indicators stay unknown: {exc.description}")
            table = IndicatorValues({}, {})
        tables.append((table, dataset, group))
    return tables
