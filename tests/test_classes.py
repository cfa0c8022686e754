"""Class limits computed at ingest: readable numbers, no class holding most territories unless the data does."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from ingest.classes import readable_breaks, roundest
from tileserver.core.dataset import TERRITORY_LEVELS
from tileserver.core.settings import Settings
from tileserver.core.store import FeatureQuery
from tileserver.core.stores import open_store
from tileserver.core.summary import class_counts


def assert_balanced(values: list[float], breaks: list[float]) -> None:
    """No class holds more than half the values, unless one value alone holds a quarter of them."""
    counts = class_counts(values, breaks)
    most = max(counts) / len(values)
    mode = Counter(values).most_common(1)[0][1] / len(values)
    assert most <= 0.5 or mode >= 0.25, (breaks, counts)


@pytest.mark.parametrize("draw", [
    lambda rng: rng.normal(230, 4, 101),  # départements' mean speeds: close together
    lambda rng: rng.lognormal(3, 1.2, 3000),  # schools' speeds: a long tail
    lambda rng: np.round(rng.uniform(60, 100, 500), 2),
    lambda rng: np.concatenate([np.full(40, 100.0), rng.uniform(50, 100, 60)]),  # many at 100 %
])
def test_limits_split_values_into_classes_of_similar_size(draw):
    values = draw(np.random.default_rng(3)).tolist()
    breaks = readable_breaks(values)
    assert breaks == sorted(breaks) and len(breaks) >= 2
    assert_balanced(values, breaks)


def test_limits_are_round_numbers():
    breaks = readable_breaks(np.random.default_rng(1).normal(230, 4, 101).tolist())
    assert all(len(f"{b:g}".replace(".", "").lstrip("0")) <= 4 for b in breaks), breaks
    assert roundest(221.3, 228.8, 225.1) == 225.0


def test_data_that_uniform_has_no_limits():
    assert readable_breaks([0.0] * 30) == []


@pytest.mark.slow
def test_no_level_of_the_national_data_has_most_territories_in_one_class(national_gpkg):
    store = open_store(national_gpkg.url, Settings(database=national_gpkg.url))
    snap = store.current()
    try:
        for entry in snap.catalogue():
            for level in TERRITORY_LEVELS:
                page = snap.query(FeatureQuery(level, properties=(entry["id"],), limit=100_000))
                values = [f.properties[entry["id"]] for f in page.features if f.properties[entry["id"]] is not None]
                breaks = entry["breaks_by_level"].get(level)
                if breaks:
                    assert_balanced(values, breaks)
                else:  # no limits only when every territory has the same value
                    assert len(set(values)) <= 1, (entry["id"], level)
    finally:
        store.close()
