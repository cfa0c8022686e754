"""Class limits computed from the data, per indicator and per level, rounded to numbers people read.

Limits set for single schools do not fit territories: a département's mean speed hides the spread
of its schools, so 96 of 101 départements fell in one class. Each level gets its own limits, near
the quantiles of its own values (so each class holds a similar share of its territories) but moved,
within a window around each quantile, to the roundest number there (so a legend reads "30 – 50",
not "31,27 – 48,91"). A value repeated by many territories (100 % of schools on the ENT) cannot
be split; it starts a class of its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from tileserver.core.dataset import SCHOOLS, Layer

CLASSES = 5
WINDOW = 0.05  # how far (as a share of the values) a limit may move from its quantile to be round


def readable_breaks(values: Sequence[float | None] | np.ndarray, classes: int = CLASSES) -> list[float]:
    """Limits splitting `values` into about `classes` classes of similar size, each a round number.

    >>> readable_breaks(range(100))
    [20.0, 40.0, 60.0, 80.0]
    >>> readable_breaks([0.113, 0.2, 0.31, 0.42, 0.57, 0.61, 0.77, 0.8, 0.93, 0.98])
    [0.3, 0.5, 0.7, 0.8]
    >>> readable_breaks([100.0] * 8 + [50.0, 70.0])
    [100.0]
    >>> readable_breaks([3.0, 3.0]), readable_breaks([])
    ([], [])
    """
    data = np.sort(np.array([v for v in values if v is not None], dtype=float))
    data = data[np.isfinite(data)]
    if data.size < 2 or data[0] == data[-1]:
        return []
    limits = []
    for k in range(1, classes):
        share = k / classes
        low, near, high = np.quantile(data, [max(share - WINDOW, 0), share, min(share + WINDOW, 1)])
        limits.append(roundest(float(low), float(high), float(near)))
    # A limit at or below the smallest value would leave its lower class empty.
    found = sorted({limit for limit in limits if data[0] < limit <= data[-1]})
    for _ in range(classes):
        cut = _split_biggest(data, found)
        if cut is None:
            break
        found = sorted({*found, cut})
    return found


def _split_biggest(data: np.ndarray, limits: list[float]) -> float | None:
    """A limit splitting the class holding more than half the values, when it holds more than one value.

    A value many territories share (0 % of schools with a 3D printer, in 8 communes out of 10)
    swallows the quantiles around it; the limit then goes just above it, at the roundest number
    before the next value.
    >>> _split_biggest(np.array([0.0] * 8 + [30.0, 70.0]), [])
    20.0
    >>> _split_biggest(np.array([1.0, 2.0, 2.0, 2.0]), [2.0]) is None  # one value: the data is that uniform
    True
    """
    edges = np.searchsorted(np.asarray(limits, dtype=float), data, side="right")
    biggest = int(np.bincount(edges).argmax())
    members = data[edges == biggest]
    if members.size * 2 <= data.size or members[0] == members[-1]:
        return None
    median = float(np.median(members))
    if median > members[0]:
        low, high = np.quantile(members, [0.5 - WINDOW, 0.5 + WINDOW])
        cut = roundest(max(float(low), float(members[members > members[0]][0])), float(high), median)
        return cut if members[0] < cut <= members[-1] else None
    above = float(members[members > median][0])
    return roundest(median + (above - median) / 1000, above, median)


def roundest(low: float, high: float, near: float) -> float:
    """The number in [low, high] with the fewest significant digits, the one nearest `near` among those.

    >>> roundest(31.2, 48.9, 40.1), roundest(0.113, 0.125, 0.12), roundest(7.0, 7.0, 7.0), roundest(3.4, 6.6, 5.1)
    (40.0, 0.12, 7.0, 5.0)
    """
    if high <= low:
        return round(near, 6)
    step = 10.0 ** math.ceil(math.log10(high - low))
    while True:
        for candidate_step in (step, step / 2, step / 5):
            first, last = math.ceil(low / candidate_step), math.floor(high / candidate_step)
            if first <= last:
                best = min(range(first, last + 1), key=lambda m: abs(m * candidate_step - near))
                return round(best * candidate_step, 10)
        step /= 10


def breaks_by_level(entry: Mapping, layers: Mapping[str, Layer]) -> dict[str, list[float]]:
    """Limits for each level holding the indicator's values, rolled-up levels included (schools: numbers only)."""
    out: dict[str, list[float]] = {}
    for level, layer in layers.items():
        values = layer.columns.get(entry["id"])
        if values is None or (level == SCHOOLS and entry["kind"] != "number"):
            continue
        found = readable_breaks([v for v in values if not isinstance(v, str)])
        if found:
            out[level] = found
    return out

