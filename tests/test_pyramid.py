"""Generalisation: bands that cover each level's zooms, shared borders kept shared, nothing lost."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, box

from ingest.pyramid import BANDS, ZOOM_RANGES, generalise, tolerance
from ingest.report import Report
from ingest.territories import read_territories
from tileserver.core import grid
from tileserver.core.dataset import TERRITORY_LEVELS
from tileserver.core.mercator import geometries_to_mercator

DATA = Path(os.environ.get("ECARTO_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
BOUNDARIES = DATA / "boundaries-2018"


def read_mercator(level: str, path: Path) -> tuple[list[str], np.ndarray]:
    if not path.exists():
        pytest.skip(f"test data not found: {path} (set ECARTO_DATA)")
    territories = read_territories(level, path, report=Report().dataset(level, str(path)))
    return territories.codes, geometries_to_mercator(territories.geometries)


@pytest.fixture(scope="module")
def departements():
    codes, geometries = read_mercator("departements", BOUNDARIES / "departements-avec-outre-mer.geojson")
    return codes, geometries, generalise(geometries, BANDS["departements"])


@pytest.fixture(scope="module")
def communes():
    codes, geometries = read_mercator("communes", BOUNDARIES / "communes-avec-outre-mer.geojson.gz")
    return codes, geometries, generalise(geometries, BANDS["communes"])


def vertices(geometries: np.ndarray) -> int:
    return int(shapely.get_num_coordinates(geometries).sum())


def test_bands_cover_each_level_zoom_range_in_order():
    for level in TERRITORY_LEVELS:
        bands, (minzoom, maxzoom) = BANDS[level], ZOOM_RANGES[level]
        assert 3 <= len(bands) <= 4, level
        assert bands[0][0] == minzoom and bands[-1][1] == maxzoom, level
        assert all(low <= high for low, high in bands), level
        assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(bands)), level


def test_to_mercator_agrees_with_the_grid_and_clamps_latitude():
    lonlat = [(2.35, 48.85), (-61.5, 16.2), (55.5, -21.1), (10.0, 89.9)]
    projected = geometries_to_mercator(np.array([shapely.Point(p) for p in lonlat], dtype=object))
    for point, (lon, lat) in zip(projected, lonlat, strict=True):
        x, y = grid.to_mercator(lon, lat)
        assert (point.x, point.y) == pytest.approx((x, y), abs=1e-6)
    assert projected[-1].y == pytest.approx(grid.ORIGIN)


def test_departements_stay_valid_multipolygons_and_get_lighter(departements):
    codes, full, generalised = departements
    assert [(g.minzoom, g.maxzoom) for g in generalised] == BANDS["departements"]
    counts = [vertices(g.geometries) for g in generalised]
    assert counts == sorted(counts) and counts[0] < counts[-1] / 20
    for band in generalised:
        assert len(band.geometries) == len(codes)
        assert (shapely.get_type_id(band.geometries) == 6).all() and shapely.is_valid(band.geometries).all()
        assert shapely.coverage_is_valid(band.geometries)
    assert all(a.equals_exact(b, 0) for a, b in zip(generalised[-1].geometries, full, strict=True))


def test_simplified_borders_stay_within_about_a_pixel(departements):
    _, full, generalised = departements
    for band in generalised[:-1]:
        pixel = grid.tile_size(band.maxzoom) / 256
        error = shapely.hausdorff_distance(shapely.boundary(full), shapely.boundary(band.geometries)) / pixel
        assert np.median(error) < 0.6 and np.percentile(error, 90) < 1 and error.max() < 2.5, band


@pytest.mark.parametrize("pair", [("35", "56"), ("75", "92"), ("2A", "2B"), ("69", "01")])
def test_adjacent_departements_still_share_their_border(departements, pair):
    codes, full, generalised = departements
    i, j = (codes.index(c) for c in pair)
    border = shapely.intersection(shapely.boundary(full[i]), shapely.boundary(full[j])).length
    for band in generalised:
        a, b = band.geometries[i], band.geometries[j]
        assert a.intersection(b).area < 1e-9 * min(a.area, b.area), (pair, band.minzoom)
        shared = shapely.intersection(a.boundary, b.boundary).length
        assert shared > 0.5 * border, (pair, band.minzoom)
        holes = sum(len(p.interiors) for p in getattr(a.union(b), "geoms", [a.union(b)]))
        original = full[i].union(full[j])
        assert holes == sum(len(p.interiors) for p in getattr(original, "geoms", [original])), (pair, band.minzoom)


@pytest.mark.national
def test_no_commune_vanishes_at_any_band(communes):
    codes, _, generalised = communes
    for band in generalised:
        geometries = band.geometries
        assert len(geometries) == len(codes) == 35357
        assert not any(g is None for g in geometries)
        assert not shapely.is_empty(geometries).any() and shapely.is_valid(geometries).all()
        assert (shapely.get_type_id(geometries) == 6).all()
    assert vertices(generalised[0].geometries) <= vertices(generalised[-1].geometries)


def test_tiny_island_survives_the_coarsest_band():
    land = [box(0, 0, 500_000, 500_000), box(500_000, 0, 1_000_000, 500_000), box(600_000, 600_000, 600_020, 600_015)]
    generalised = generalise(np.array([MultiPolygon([p]) for p in land], dtype=object), [(0, 4), (5, 8)])
    island = generalised[0].geometries[2]
    assert tolerance(4) > 1000 and island.is_valid and island.area > 0
    assert island.intersects(land[2])


def test_missing_geometries_stay_missing_and_aligned():
    squares = np.array([MultiPolygon([box(0, 0, 1e5, 1e5)]), None, MultiPolygon([box(1e5, 0, 2e5, 1e5)])],
                       dtype=object)
    for band in generalise(squares, [(0, 3), (4, 6), (7, 9)]):
        assert band.geometries[1] is None
        assert band.geometries[0].geom_type == band.geometries[2].geom_type == "MultiPolygon"


def test_overlapping_layer_is_cleaned_into_a_coverage_first():
    overlapping = np.array([MultiPolygon([box(0, 0, 100_000, 100_000)]),
                            MultiPolygon([box(99_000, 0, 200_000, 100_000)])], dtype=object)
    report = Report().dataset("x", "x")
    generalised = generalise(overlapping, [(0, 5), (6, 9)], report=report)
    assert report.notes == ["not a valid coverage (2 polygons with overlapping or unmatched edges): "
                            "cleaned with coverage_clean before simplifying"]
    for band in generalised:  # every band, the finest included, is the cleaned coverage
        assert shapely.is_valid(band.geometries).all()
        assert band.geometries[0].intersection(band.geometries[1]).area < 1
    assert (generalised[0].minzoom, generalised[-1].maxzoom) == (0, 9)


def test_bands_that_save_nothing_are_merged_into_the_finer_one():
    squares = np.array([MultiPolygon([box(0, 0, 100_000, 100_000)])], dtype=object)
    generalised = generalise(squares, [(0, 3), (4, 6), (7, 9)])
    assert [(g.minzoom, g.maxzoom) for g in generalised] == [(0, 9)]
    assert generalised[0].geometries[0].equals(squares[0])


def test_uncleanable_layer_is_simplified_polygon_by_polygon():
    nested = np.array([MultiPolygon([box(0, 0, 100_000, 100_000)]),
                       MultiPolygon([box(40_000, 40_000, 41_000, 41_000)])], dtype=object)
    report = Report().dataset("x", "x")
    generalised = generalise(nested, [(0, 5), (6, 9)], report=report)
    assert len(report.notes) == 1 and "simplified polygon by polygon" in report.notes[0]
    for band in generalised:
        assert shapely.is_valid(band.geometries).all() and not shapely.is_empty(band.geometries).any()
