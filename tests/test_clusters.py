"""School clusters: every school counted once per zoom, cells nested in tiles, sums exact."""

import numpy as np

from ingest.clusters import build_clusters, cell_of
from tileserver.core.grid import tile_at


def points(n=2000, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-600_000, 1_100_000, n)
    y = rng.uniform(5_000_000, 6_700_000, n)
    return x, y


def test_each_zoom_counts_every_school_once_with_exact_sums():
    x, y = points()
    types = np.where(np.arange(len(x)) % 3 == 0, "college", "ecole")
    statuts = np.where(np.arange(len(x)) % 2 == 0, "public", "prive")
    speed = np.where(np.arange(len(x)) % 5 == 0, np.nan, np.arange(len(x), dtype=float))
    c = build_clusters(x, y, types, statuts, {"debit": speed}, maxzoom=8, cells=16)
    for z in range(8):
        rows = c.columns["z"] == z
        assert c.columns["n"][rows].sum() == len(x)
        assert np.isclose(c.columns["debit_sum"][rows].sum(), np.nansum(speed))
        assert c.columns["debit_n"][rows].sum() == np.count_nonzero(~np.isnan(speed))
        assert np.isclose(c.columns["sx"][rows].sum(), x.sum())
    college = (c.columns["type"] == "college") & (c.columns["z"] == 3)
    assert c.columns["n"][college].sum() == np.count_nonzero(types == "college")


def test_a_cell_lies_in_the_tile_of_its_points():
    x, y = points(500, seed=2)
    for z in (0, 4, 9):
        cx, cy = cell_of(x, y, z, 16)
        for i in range(0, 500, 37):
            tile = tile_at(x[i], y[i], z)
            assert (cx[i] // 16, cy[i] // 16) == (tile.x, tile.y)


def test_cluster_centre_is_the_mean_of_its_members():
    x = np.array([100.0, 300.0, 5_000_000.0])
    y = np.array([100.0, 500.0, 5_000_000.0])
    c = build_clusters(x, y, ["ecole"] * 3, ["public"] * 3, {}, maxzoom=8, cells=4)
    assert c.columns["n"][c.columns["z"] == 0].tolist() == [3]
    last = np.flatnonzero(c.columns["z"] == 7)
    assert sorted(c.columns["n"][last].tolist()) == [1, 2]
    first = last[np.argmax(c.columns["n"][last])]
    assert (c.columns["sx"][first] / 2, c.columns["sy"][first] / 2) == (200.0, 300.0)
