"""Multi-row sources: rows per key and period, combined, and the latest complete period kept.

A source such as the ENT audience has one row per school and week. An indicator names its `period`
column and how rows combine (`sum`, `mean`, `last`); the reader keeps, per period and key, the
combined cells, and at the end only the latest complete period is published. A dated period
(`2024-09-02`) counts in its school year (`2024-2025`, from 1 September), complete once the data
reaches the year's last week (a date from 25 August on) or a later year; any other value (`2024`,
`2023-2024`) is a period of its own and the latest is taken as complete (these are published
once the year is over). Without `period`, every row is one period and `last` with the `latest`
column keeps, per key, the most recent row, as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ingest.report import DatasetReport

_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
LAST_WEEK = "08-25"  # a school year's last week starts on or after 25 August

Cell = float | str | tuple[float, float] | None  # a pair is (numerator, denominator)


def period_of(raw: str) -> str:
    """The period a `period` cell belongs to: a date's school year, else the value itself.

    >>> period_of('2024-09-02'), period_of('2025-08-25T00:00:00+02:00'), period_of('2025-08-31')
    ('2024-2025', '2024-2025', '2024-2025')
    >>> period_of('2023-2024'), period_of(' 2024 ')
    ('2023-2024', '2024')
    """
    text = raw.strip()
    match = _DATE.match(text)
    if not match:
        return text
    year = int(match.group(1)) - (int(match.group(2)) < 9)
    return f"{year}-{year + 1}"


def latest_complete(periods: dict[str, str]) -> tuple[str, bool]:
    """The latest complete period, given each period's latest raw cell, and whether it is complete.

    >>> latest_complete({'2023-2024': '2024-08-26', '2024-2025': '2025-03-10'})
    ('2023-2024', True)
    >>> latest_complete({'2024-2025': '2025-08-25'}), latest_complete({'2024': '2024', '2025': '2025'})
    (('2024-2025', True), ('2025', True))
    >>> latest_complete({'2024-2025': '2025-03-10'})
    ('2024-2025', False)
    """
    ordered = sorted(periods)
    for label in reversed(ordered):
        last = periods[label]
        if not _DATE.match(last.strip()) or label != ordered[-1]:
            return label, True
        if last.strip()[5:10] >= LAST_WEEK and last.strip()[:4] == label[-4:]:
            return label, True
    return ordered[-1], False


@dataclass
class Combined:
    """The rows of one key within one period: summed cells (with counts) or the latest row."""

    line: int
    rank: str
    cells: dict[str, Cell]
    counts: dict[str, int] = field(default_factory=dict)


class PeriodReader:
    """Rows added one at a time; `finish` gives the cells of the latest complete period per key."""

    def __init__(self, combine: str, dated: bool, duplicates_allowed: bool, report: DatasetReport):
        self.combine, self.dated, self.duplicates_allowed, self.report = combine, dated, duplicates_allowed, report
        self.periods: dict[str, dict[str, Combined]] = {}
        self.latest_cell: dict[str, str] = {}
        self.rows: dict[str, int] = {}

    def add(self, line: int, key: str, rank: str, cells: dict[str, Cell]) -> None:
        """One parsed row of `key` whose period cell (or `latest` cell) is `rank`."""
        self.report.load()
        label = period_of(rank) if self.dated else ""
        self.rows[label] = self.rows.get(label, 0) + 1
        if rank > self.latest_cell.get(label, ""):
            self.latest_cell[label] = rank
        keys = self.periods.setdefault(label, {})
        previous = keys.get(key)
        if previous is None:
            keys[key] = Combined(line, rank, dict(cells), {k: int(v is not None) for k, v in cells.items()})
        elif self.combine == "last":
            self._keep_latest(keys, key, previous, line, rank, cells)
        else:
            _accumulate(previous, cells)

    def _keep_latest(self, keys: dict, key: str, previous: Combined, line: int, rank: str, cells: dict) -> None:
        if self.duplicates_allowed:
            return
        if rank <= previous.rank:
            self.report.unload(line, f"duplicate key {key} (kept line {previous.line})")
            return
        self.report.unload(previous.line, f"duplicate key {key}: line {line} is more recent")
        keys[key] = Combined(line, rank, dict(cells))

    def finish(self) -> tuple[dict[str, dict[str, Cell]], dict[str, int], str]:
        """Cells per key of the kept period, the line of each key, and the vintage (the period)."""
        if not self.periods:
            return {}, {}, ""
        if not self.dated:
            kept = self.periods[""]
            return _values(kept, self.combine), {k: c.line for k, c in kept.items()}, self.latest_cell.get("", "")
        label, complete = latest_complete(self.latest_cell)
        left = sum(n for p, n in self.rows.items() if p != label)
        self.report.note(f"period {label}{'' if complete else ' (incomplete: no complete period)'}: "
                         f"{self.rows[label]} rows kept; {left} rows of other periods left aside")
        kept = self.periods[label]
        return _values(kept, self.combine), {k: c.line for k, c in kept.items()}, label


def _accumulate(into: Combined, cells: dict[str, Cell]) -> None:
    """Add a row's cells to the running sums (pairs add term by term; strings keep the first)."""
    for name, cell in cells.items():
        if cell is None or isinstance(cell, str):
            continue
        into.counts[name] = into.counts.get(name, 0) + 1
        held = into.cells.get(name)
        if held is None:
            into.cells[name] = cell
        elif isinstance(cell, tuple):
            into.cells[name] = (held[0] + cell[0], held[1] + cell[1])
        else:
            into.cells[name] = held + cell


def _values(kept: dict[str, Combined], combine: str) -> dict[str, dict[str, Cell]]:
    """The combined cells; a `mean` divides plain numbers by their count (pairs are sum/sum anyway)."""
    if combine != "mean":
        return {key: c.cells for key, c in kept.items()}
    return {key: {name: _mean(cell, c.counts.get(name, 0)) for name, cell in c.cells.items()}
            for key, c in kept.items()}


def _mean(cell: Any, count: int) -> Cell:
    return cell / count if isinstance(cell, float) and count else cell
