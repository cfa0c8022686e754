"""Supported CRSs, their URIs and reprojection, checked against pyproj and known coordinates."""

from __future__ import annotations

import doctest
import threading

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from tileserver.core import crs
from tileserver.core.errors import BadRequest

RENNES = (-1.6794, 48.1116)
# Lambert-93 is defined so that its origin (3°E, 46.5°N) lies at (700,000 m, 6,600,000 m).
ORIGIN, ORIGIN_L93 = (3.0, 46.5), (700000.0, 6600000.0)


def test_doctests():
    assert doctest.testmod(crs).failed == 0


@pytest.mark.parametrize(
    "value",
    ["http://www.opengis.net/def/crs/EPSG/0/2154", "https://www.opengis.net/def/crs/EPSG/0/2154", "EPSG:2154",
     "[EPSG:2154]", "urn:ogc:def:crs:EPSG::2154", "epsg:2154"],
)
def test_the_usual_spellings_of_a_crs(value):
    assert crs.parse(value).uri == "http://www.opengis.net/def/crs/EPSG/0/2154"


@pytest.mark.parametrize("value", ["EPSG:27700", "OGC:CRS83", "http://example.org/crs/2154", "", "EPSG:", "2154"])
def test_unsupported_or_malformed_crs(value):
    with pytest.raises(BadRequest):
        crs.parse(value)


def test_lambert_93_matches_its_definition():
    x, y = crs.from_crs84(np.array([shapely.Point(*ORIGIN)]), crs.parse("EPSG:2154"))[0].coords[0]
    assert (x, y) == pytest.approx(ORIGIN_L93, abs=1e-3)


@pytest.mark.parametrize("code", crs.EPSG_CODES)
def test_every_crs_round_trips_and_agrees_with_pyproj(code):
    target = crs.parse(f"EPSG:{code}")
    point = shapely.Point(-61.5, 16.2) if code in (5490, 4559, 32620) else shapely.Point(*RENNES)
    moved = crs.from_crs84(np.array([point]), target)[0]
    want = Transformer.from_crs("OGC:CRS84", f"EPSG:{code}").transform(point.x, point.y)
    assert moved.coords[0] == pytest.approx(want)
    assert crs.to_crs84(moved, target).coords[0] == pytest.approx(point.coords[0], abs=1e-9)


def test_epsg_4326_puts_latitude_first():
    moved = crs.from_crs84(np.array([shapely.Point(2.35, 48.85)]), crs.parse("EPSG:4326"))[0]
    assert moved.coords[0] == pytest.approx((48.85, 2.35))
    assert crs.bbox_to_crs84((48.0, 2.0, 49.0, 3.0), crs.parse("EPSG:4326"))[0] == (2.0, 48.0, 3.0, 49.0)


def test_a_bbox_outside_the_crs_area_is_a_400():
    with pytest.raises(BadRequest):
        crs.bbox_to_crs84((0, 0, 1e40, 1e40), crs.parse("EPSG:32620"))


def test_transformers_are_per_thread():
    seen = []  # the transformers themselves: an id alone may be reused once a finished thread's is freed

    def work():
        seen.append([crs._transformer(crs.CRS84_URI, crs.EPSG_URI.format(2154)) for _ in range(2)])

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(first is again for first, again in seen)  # one per thread, kept
    assert len({id(first) for first, _ in seen}) == 3
