"""Territory indicators: their cells per territory, and rolled up to the levels above.

An indicator published per commune (Arcep's) or per département (TNE) is a value per territory
of its level; the levels above get sum/sum for a ratio or a weighted number (so a région's share
of premises is weighted by premises, not by communes), the aggregate for other numbers, and the
share of territories for a yes/no. Former commune codes count for the current commune (COG history).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ingest.indicators import IndicatorValues, aggregate_numbers, count, value_of
from ingest.manifest import Indicator
from ingest.periods import Cell
from ingest.report import DatasetReport


def territory_cells(
    codes_: Sequence[str], table: IndicatorValues, report: DatasetReport, indicators: Sequence[Indicator],
    history: Mapping[str, str],
) -> dict[str, list[Cell]]:
    """A territory indicator's cells aligned with its level's codes; unmatched codes are rejected.

    A commune code found in the COG history counts for the current commune that absorbed it (its
    cells added, so merged communes' premises add up). A `presence` territory absent from the source is 0.
    """
    index = {c: i for i, c in enumerate(codes_)}
    level = indicators[0].level
    out: dict[str, list[Cell]] = {i.id: [None] * len(codes_) for i in indicators}
    renamed = 0
    for key, row in table.by_key.items():
        at = index.get(key)
        if at is None and level == "communes" and history.get(key) in index:
            at, renamed = index[history[key]], renamed + 1
        if at is None:
            report.unload(table.lines[key], f"code {key} is not a loaded {level} territory")
            continue
        for i in indicators:
            out[i.id][at] = _add(out[i.id][at], row[i.id])
    if renamed:
        report.note(f"{renamed} former commune codes counted in their current commune (COG history)")
    for i in indicators:
        if i.kind == "presence":
            out[i.id] = [0.0 if c is None else c for c in out[i.id]]
    return out


def _add(held: Cell, cell: Cell) -> Cell:
    """Two cells of one territory added (pairs term by term); a string keeps the first."""
    if held is None or cell is None or isinstance(held, str):
        return cell if held is None else held
    if isinstance(held, tuple):
        return (held[0] + cell[0], held[1] + cell[1])
    return held + cell


def roll_up(ind: Indicator, cells: Sequence[Cell], upper: Sequence[str | None], order: Mapping[str, int]) -> list:
    """A territory indicator at a level above its own: pairs summed, numbers aggregated, yes/no as shares.

    `upper[i]` is the code, at the upper level, of the lower territory `i`; the result follows `order`.
    """
    n = len(order)
    group = np.array([order.get(c, -1) if c else -1 for c in upper], dtype=np.int64)
    paired = [i for i, c in enumerate(cells) if isinstance(c, tuple) and group[i] >= 0]
    if ind.kind == "ratio" or ind.weight:
        g = group[paired]
        num = np.bincount(g, weights=[cells[i][0] for i in paired], minlength=n)
        den = np.bincount(g, weights=[cells[i][1] for i in paired], minlength=n)
        has = np.bincount(g, minlength=n)
        return [value_of(ind, (float(a), float(b))) if k else None for a, b, k in zip(num, den, has, strict=True)]
    inside = group >= 0
    if ind.kind == "category":
        known = np.array([c is not None for c in cells], dtype=bool)
        return count(group[inside & known], n).tolist()
    values = np.array([np.nan if c is None else float(c) for c in cells])
    how = "share" if ind.kind in ("boolean", "presence") else ind.aggregate
    return aggregate_numbers(group[inside], values[inside], n, how)
