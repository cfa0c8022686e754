"""Indicator tables: read once per source file, joined to schools or territories, aggregated upward.

Values are carried as float arrays aligned with the schools (NaN = unknown; booleans as 0/1), so
aggregation to every territory level is a handful of vectorised group-bys. A `ratio` (and a
number with a `weight`) travels as a (numerator, denominator) pair, so that every level above is
sum/sum, never a mean of ratios. Territory indicators are rolled up to the levels above theirs.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import numpy as np

from ingest import codes
from ingest import table as tabular
from ingest.fetch import open_text, read_json
from ingest.manifest import Indicator
from ingest.periods import Cell, PeriodReader
from ingest.report import DatasetReport, Report
from tileserver.core.dataset import COUNTED_TYPES, SCHOOLS
from tileserver.core.errors import IngestError
from tileserver.core.summary import grouped as aggregate_numbers  # sheets aggregate the same way

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
    return _parse(indicator, raw, indicator.kind, indicator.column)


def _parse(indicator: Indicator, raw: str, kind: str, column: str) -> float | str | None:
    """`parse_value` for a given kind and column (a ratio's terms and weights are numbers)."""
    text = raw.strip()
    if text.lower() in NULL_VALUES:
        return None
    if kind in ("number", "ratio"):
        try:
            return float(text.replace(",", ".").replace("\u202f", "").replace(" ", ""))
        except ValueError:
            raise ValueError(f"column {column}: {text!r} is not a number") from None
    if kind == "boolean":
        lowered = text.lower()
        if lowered in indicator.true_values:
            return 1.0
        if lowered in indicator.false_values:
            return 0.0
        raise ValueError(f"column {column}: {text!r} is not a yes/no value")
    return text


@dataclass
class IndicatorValues:
    """Values of some indicators keyed by the join key (UAI or territory code)."""

    by_key: dict[str, dict[str, Cell]]  # a `ratio`, or a number with a `weight`, is a (num, den) pair
    lines: dict[str, int]  # the source line each key was read from, for later rejections
    vintage: str = ""  # the period kept, the latest `latest` cell, or the file's date


def read_table(path: Path, indicators: Sequence[Indicator], report: DatasetReport) -> IndicatorValues:
    """Read the indicators that share one source file, rejecting broken rows with their line."""
    first = indicators[0]
    normalise = _KEY_NORMALISERS[first.via or first.level]
    with open_text(path) as text:
        table = tabular.read_table(text, path)
        header = [tabular.header_key(c) for c in table.header]
        positions = _positions(path, header, first, indicators)
        presence = all(i.kind == "presence" for i in indicators)
        reader = PeriodReader(first.combine, bool(first.period), presence, report)
        skipped = 0
        for record in table.records:
            if record.values is None:
                report.reject(record.line, record.problem)
            elif record.values and _kept(record.values, positions, first):
                _read_row(record.line, record.values, positions, normalise, indicators, report, reader)
            elif record.values:
                skipped += 1
                report.load()
    if skipped:
        report.note(f"{skipped} rows left aside by `where` {first.where}")
    by_key, lines, vintage = reader.finish()
    return IndicatorValues(by_key, lines, vintage or file_date(path))


def _positions(path: Path, header: list[str], first: Indicator, indicators: Sequence[Indicator]) -> dict:
    """Where each needed column is; a missing one is an error naming its closest existing names."""
    wanted = {"key": first.key, "rank": first.period or first.latest, **{f"where:{c}": c for c in first.where}}
    for ind in indicators:
        wanted.update({f"{ind.id}:{n}": c for n, c in zip(("value", "weight"), ind.columns, strict=False)})
    missing = [c for c in dict.fromkeys(wanted.values()) if c and tabular.header_key(c) not in header]
    if missing:
        raise IngestError(f"{path}: {missing_columns(missing, header)}")
    return {name: header.index(tabular.header_key(col)) for name, col in wanted.items() if col}


def missing_columns(missing: Sequence[str], header: Sequence[str]) -> str:
    """A message naming missing columns, each with the closest existing names.

    >>> missing_columns(['elig_ftth'], ['code_insee', 'elig_fttx', 'nbr'])
    "missing column 'elig_ftth' (closest: elig_fttx)"
    """
    parts = []
    for name in missing:
        close = difflib.get_close_matches(tabular.header_key(name), header, n=3, cutoff=0.5)
        parts.append(f"missing column {name!r}" + (f" (closest: {', '.join(close)})" if close else " (none close)"))
    return "; ".join(parts)


def _kept(row: list[str], positions: dict, first: Indicator) -> bool:
    """Whether a row passes the indicator's `where` filter (`type = "all"` in the Arcep files)."""
    return all(row[positions[f"where:{c}"]].strip() == v for c, v in first.where.items())


def _read_row(line, row, positions, normalise, indicators, report, reader: PeriodReader) -> None:
    """Parse one row and hand it to the period reader."""
    first = indicators[0]
    raw_key = row[positions["key"]].strip()
    key = normalise(first.aliases.get(raw_key, raw_key))
    if not key:
        report.reject(line, f"column {first.key!r}: {raw_key!r} is not a valid {first.via or first.level} key")
        return
    try:
        parsed = {i.id: _cell(i, row, positions) for i in indicators}
    except ValueError as exc:
        report.reject(line, str(exc))
        return
    reader.add(line, key, row[positions["rank"]].strip() if "rank" in positions else "", parsed)


def _cell(indicator: Indicator, row: list[str], positions: dict) -> Cell:
    """The indicator's cell in a row: a value, or a (numerator, denominator) pair to sum."""
    if indicator.kind == "presence":
        return 1.0
    value = _parse(indicator, row[positions[f"{indicator.id}:value"]], indicator.kind, indicator.columns[0])
    if len(indicator.columns) == 1:
        return value
    second = _parse(indicator, row[positions[f"{indicator.id}:weight"]], "number", indicator.columns[1])
    if value is None or second is None:
        return None
    return (value, second) if indicator.kind == "ratio" else (value * second, second)


def file_date(path: Path) -> str:
    """The date of a fetched file: its server's `Last-Modified` when known, else its modification time."""
    validators = read_json(path.with_name(path.name + ".json"))
    try:
        moment = parsedate_to_datetime(validators["last_modified"])
    except (KeyError, TypeError, ValueError):
        moment = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    return moment.date().isoformat()


def join_to_schools(
    school_keys: Callable[[str], Sequence[str | None]],
    types: Sequence[str],
    tables: Iterable[tuple[IndicatorValues, DatasetReport, Sequence[Indicator]]],
    history: Mapping[str, str],
) -> dict[str, np.ndarray | list]:
    """Per indicator, its values aligned with the schools; keys naming no loaded school are counted.

    `school_keys(level)` gives each school's key at a level (its UAI, or with `via` the code of its
    territory); a `ratio` also gets `<id>:num` and `<id>:den` arrays, summed when aggregated.
    """
    n = len(types)
    out: dict[str, np.ndarray | list] = {}
    for table, report, indicators in tables:
        first = indicators[0]
        index = _index(school_keys(first.via or SCHOOLS))
        for i in indicators:
            out[i.id] = [None] * n if i.kind == "category" else np.full(n, np.nan)
            if len(i.columns) == 2:
                out[f"{i.id}:num"], out[f"{i.id}:den"] = np.full(n, np.nan), np.full(n, np.nan)
        unmatched = 0
        for key, row in table.by_key.items():
            rows = index.get(key) or (index.get(history.get(key, "")) if first.via == "communes" else None)
            if not rows:
                unmatched += 1
                if not first.via:
                    report.unload(table.lines[key], f"UAI {key} is not among the loaded schools")
                continue
            for i in indicators:
                _place(out, i, rows, row[i.id])
        if unmatched:
            where = f"the {first.via} of a loaded school" if first.via else "a loaded school"
            report.note(f"{unmatched} keys are not {where}")
        for i in indicators:
            if i.kind == "presence":
                absent = applies(i, types) & np.isnan(out[i.id])
                out[i.id][absent] = 0.0
    return out


def _index(keys: Sequence[str | None]) -> dict[str, list[int]]:
    index: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        if key:
            index[key].append(i)
    return index


def _place(out: dict, ind: Indicator, rows: list[int], cell: Cell) -> None:
    """Put one key's cell on its schools (a pair as its value and both terms)."""
    if cell is None:
        return
    if isinstance(cell, tuple):
        out[f"{ind.id}:num"][rows], out[f"{ind.id}:den"][rows] = cell
        cell = value_of(ind, cell)
        if cell is None:
            return
    for r in rows:
        out[ind.id][r] = cell


def value_of(ind: Indicator, cell: Cell) -> float | str | None:
    """A published value: a pair becomes its ratio (times `per`) or weighted mean.

    >>> from ingest.manifest import Indicator
    >>> ftth = Indicator("ftth", "connectivite", "FttH", "f", kind="ratio", numerator="a", denominator="b")
    >>> value_of(ftth, (30.0, 40.0)), value_of(ftth, (0.0, 0.0)), value_of(ftth, 1.0)
    (75.0, None, 1.0)
    """
    if not isinstance(cell, tuple):
        return cell
    num, den = cell
    if not den:
        return None
    return round((ind.per if ind.kind == "ratio" else 1.0) * num / den, 4)


def applies(ind: Indicator, types: Sequence[str]) -> np.ndarray:
    """Which schools the indicator concerns (its `applies_to` types, or all)."""
    if not ind.applies_to:
        return np.ones(len(types), dtype=bool)
    return np.isin(np.asarray(types, dtype=object), list(ind.applies_to))


def group_sources(indicators: Sequence[Indicator]) -> dict[str, list[Indicator]]:
    """Indicators that read one file the same way (key, period, filter...), so each file is read once."""
    groups: dict[str, list[Indicator]] = defaultdict(list)
    for i in indicators:
        how = (i.source, i.key, i.level, i.latest, i.period, i.combine, i.via, sorted(i.where.items()),
               sorted(i.aliases.items()))
        groups[repr(how)].append(i)
    return dict(groups)


def aggregate(
    territory_codes: Sequence[str | None],
    order: Mapping[str, int],
    types: Sequence[str],
    school_values: Mapping[str, np.ndarray | list],
    indicators: Sequence[Indicator],
    known: Mapping[str, np.ndarray],
) -> dict[str, list]:
    """School counts, counts by type, each school indicator's aggregate and every `<id>_nc`, per territory.

    `known[id]` says which schools have a value (for a territory indicator: whose territory has one);
    `<id>_nc` counts the schools the indicator applies to without one ("non communiqué").
    """
    n = len(order)
    group = np.array([order.get(c, -1) if c else -1 for c in territory_codes], dtype=np.int64)
    inside = group >= 0
    g = group[inside]
    columns: dict[str, list] = {"etablissements": count(g, n).tolist()}
    kinds = np.array([t if t in COUNTED_TYPES else "autre" for t in types])[inside]
    for t in COUNTED_TYPES:
        columns[f"n_{t}"] = count(g[kinds == t], n).tolist()
    for ind in indicators:
        missing = (applies(ind, types) & ~known[ind.id])[inside]
        if ind.level != SCHOOLS:
            columns[f"{ind.id}_nc"] = count(g[missing], n).tolist()
            continue
        values = school_values[ind.id]
        if ind.kind == "category":
            columns[ind.id] = count(g[~missing & known[ind.id][inside]], n).tolist()
        elif ind.kind == "ratio":
            columns[ind.id] = _ratio(g, n, ind, *(np.asarray(school_values[f"{ind.id}:{t}"])[inside]
                                                  for t in ("num", "den")))
        else:
            columns[ind.id] = aggregate_numbers(g, np.asarray(values)[inside], n, ind.aggregate)
        columns[f"{ind.id}_nc"] = count(g[missing], n).tolist()
    return columns


def _ratio(g: np.ndarray, n: int, ind: Indicator, num: np.ndarray, den: np.ndarray) -> list:
    """sum(numerator) / sum(denominator) per group, over the members that have both."""
    both = ~np.isnan(num) & ~np.isnan(den)
    sums = np.bincount(g[both], weights=num[both], minlength=n), np.bincount(g[both], weights=den[both], minlength=n)
    return [value_of(ind, (float(a), float(b))) for a, b in zip(*sums, strict=True)]


def count(groups: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(groups, minlength=n)


def read_all(
    indicators: Sequence[Indicator], fetch_path, report: Report
) -> list[tuple[IndicatorValues, DatasetReport, list[Indicator]]]:
    """Read every indicator source once; one that cannot be used is reported, its indicators unknown."""
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
            report.lose(group, exc.description)
            table = IndicatorValues({}, {})
        tables.append((table, dataset, group))
    return tables
