"""Territory geometries per zoom band, simplified once at ingest, so serving a tile only selects.

A band's copy is simplified with a tolerance of a quarter of a screen pixel at the band's highest
zoom (256-pixel tiles), with `shapely.coverage_simplify` over the whole layer: neighbours share
their simplified borders exactly, with no gap or overlap, and no polygon is ever dropped (the
coarsest a polygon gets is a triangle). `coverage_simplify` is Visvalingam–Whyatt: its tolerance
is the square root of the triangle areas removed, not a distance. On the 2018 départements, half a
pixel left a median error (Hausdorff distance) of 0.7-0.8 pixel and 1-1.6 pixels for one in ten;
a quarter pixel gives a median of 0.3-0.5 pixel, nine in ten under 0.9, none over 2 (coastal islets
kept as triangles).

Bands are built from the finest to the coarsest, each from the one above it: fewer vertices to
work through, and a border at zoom z never has detail it lacked at z + 2.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import shapely

from ingest.report import DatasetReport
from ingest.territories import as_multipolygons, repair
from tileserver.core.dataset import SCHOOLS, Generalised
from tileserver.core.grid import tile_size

log = logging.getLogger(__name__)

TILE_PIXELS = 256
TOLERANCE_PIXELS = 0.25  # see the module docstring for the measurement behind it

# Zooms at which each layer is served, and its bands of generalisation.
#
# A level is drawn while its territories are between a few pixels and a few screens wide: régions
# and académies for the whole country down to a region (z0-8), départements a little further
# (z0-10), EPCI from a region to a town (z5-12), communes from a département to a street (z8-14).
# Clients over-zoom a layer's last tiles past its maxzoom. Each band spans two zooms (the band's
# finest copy is at most half a pixel off at its lower zoom, and has 2-4 times the vertices it
# needs there); the last band keeps the full geometry, because it is the one over-zoomed. Schools
# are points: clusters below the cluster zoom, single schools from it on (see ingest.clusters).
ZOOM_RANGES: dict[str, tuple[int, int]] = {
    SCHOOLS: (0, 14),
    "regions": (0, 8),
    "academies": (0, 8),
    "departements": (0, 10),
    "epci": (6, 12),
    "communes": (8, 14),
}
BANDS: dict[str, list[tuple[int, int]]] = {
    "regions": [(0, 2), (3, 4), (5, 6), (7, 8)],
    "academies": [(0, 2), (3, 4), (5, 6), (7, 8)],
    "departements": [(0, 3), (4, 5), (6, 7), (8, 10)],
    "epci": [(6, 7), (8, 9), (10, 12)],
    "communes": [(8, 9), (10, 11), (12, 14)],
}


def tolerance(maxzoom: int) -> float:
    """The simplification tolerance (metres) of a band ending at `maxzoom`: a quarter pixel there.

    >>> round(tolerance(0)), round(tolerance(14), 2)
    (39136, 2.39)
    """
    return tile_size(maxzoom) / TILE_PIXELS * TOLERANCE_PIXELS


def generalise(geometries_3857: np.ndarray, bands: Sequence[tuple[int, int]], *,
               report: DatasetReport | None = None) -> list[Generalised]:
    """A simplified copy of a layer per zoom band (ascending), the last band at full detail.

    Every copy is aligned with the input and made of valid MultiPolygons; a feature is None only
    where the input is None or has no polygon.
    """
    full, _ = repair(np.asarray(geometries_3857, dtype=object))
    present = np.flatnonzero([g is not None for g in full])
    shown = full[present]
    coverage = _as_coverage(shown, report)
    detail = shown = shown if coverage is None else coverage
    copies: list[np.ndarray] = []
    for position, (_, maxzoom) in reversed(list(enumerate(bands))):
        if position < len(bands) - 1:
            shown = detail = _simplified(detail, shown, tolerance(maxzoom), coverage is not None, report)
        aligned = np.full(len(full), None, dtype=object)
        aligned[present] = shown
        copies.append(aligned)
    levels = [Generalised(minzoom, maxzoom, geometries)
              for (minzoom, maxzoom), geometries in zip(bands, reversed(copies), strict=True)]
    return merge_similar(levels)


def merge_similar(levels: list[Generalised], keep_below: float = 0.9) -> list[Generalised]:
    """Drop a band that saves under 10 % of the next finer band's vertices: the finer one serves its zooms.

    Already simplified sources (such as 25 % France GeoJSON communes) gain nothing from extra bands,
    which would only cost storage and publish time.
    """
    merged = [levels[-1]]
    for level in reversed(levels[:-1]):
        finer = merged[-1]
        if _vertices(level.geometries) >= keep_below * _vertices(finer.geometries):
            merged[-1] = Generalised(level.minzoom, finer.maxzoom, finer.geometries)
        else:
            merged.append(level)
    return merged[::-1]


def _vertices(geometries: np.ndarray) -> int:
    return int(shapely.get_num_coordinates(geometries[geometries != None]).sum())  # noqa: E711


def _as_coverage(geometries: np.ndarray, report: DatasetReport | None) -> np.ndarray | None:
    """The layer as a valid coverage (cleaned if it needs and survives it), or None if it cannot be."""
    if shapely.coverage_is_valid(geometries):
        return geometries
    bad = int((~shapely.is_empty(shapely.coverage_invalid_edges(geometries))).sum())
    cleaned = as_multipolygons(shapely.coverage_clean(geometries))
    if all(g is not None for g in cleaned) and shapely.coverage_is_valid(cleaned):
        _note(report, f"not a valid coverage ({bad} polygons with overlapping or unmatched edges): "
                      "cleaned with coverage_clean before simplifying")
        return cleaned
    _note(report, f"not a valid coverage ({bad} polygons with overlapping or unmatched edges), nor "
                  "cleanable: simplified polygon by polygon, so shared borders may show slivers")
    return None


def _simplified(source: np.ndarray, finer: np.ndarray, tol: float, coverage: bool,
                report: DatasetReport | None) -> np.ndarray:
    """`source` simplified, each feature that comes out broken or empty kept as it is in `finer`."""
    if coverage:
        result = shapely.coverage_simplify(source, tol)
    else:
        result = shapely.simplify(shapely.set_precision(source, tol / 4), tol, preserve_topology=True)
    broken = shapely.is_empty(result) | ~shapely.is_valid(result)
    if broken.any():
        result[broken] = repair(result[broken])[0]
    lost = np.array([g is None for g in result], dtype=bool)
    result[lost] = finer[lost]
    if broken.any():
        _note(report, f"tolerance {tol:.0f} m: {int(broken.sum())} simplified geometries broken, "
                      f"{int(broken.sum() - lost.sum())} repaired, {int(lost.sum())} kept at the finer detail")
    return as_multipolygons(result)


def _note(report: DatasetReport | None, text: str) -> None:
    """Tell the report, or the log when generalising outside an ingest run."""
    if report is None:
        log.warning(text)
    else:
        report.note(text)
