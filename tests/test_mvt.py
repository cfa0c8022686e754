"""The pure MVT encoder: grid, clipping, winding, degenerate features, properties, and two decoders."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, box, shape

from tests.support.tiletools import decode, gdal_decode, raw_rings, signed_area
from tileserver.core.grid import Tile, tile_bounds
from tileserver.core.mvt import BUFFER, EXTENT, TileLayer, encode, polygon_commands

UNIT = Tile(0, 0, 0)
BOUNDS = tile_bounds(UNIT)
SCALE = (BOUNDS.right - BOUNDS.left) / EXTENT  # metres per tile unit at zoom 0


def metres(x: float, y: float) -> tuple[float, float]:
    """A tile position (y down) of the zoom-0 tile, in EPSG:3857 metres."""
    return BOUNDS.left + x * SCALE, BOUNDS.top - y * SCALE


def tile_box(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    """A box given in tile units of the zoom-0 tile (y down), in metres."""
    (left, top), (right, bottom) = metres(x0, y0), metres(x1, y1)
    return box(left, bottom, right, top)


def layer(name: str, geometries: list, **columns) -> TileLayer:
    return TileLayer(name, np.array(geometries, dtype=object), list(range(1, len(geometries) + 1)), columns)


def test_points_land_on_the_grid_with_ids_and_typed_properties():
    pts = [Point(*metres(10.4, 20.6)), Point(*metres(4095.0, 0.0)), Point(*metres(2048, 2048))]
    data = encode(BOUNDS, [layer("p", pts, s=["a", "b", None], i=[1, -7, 0], f=[1.5, float("nan"), 2.0],
                                 b=[True, False, None])])
    features = decode(data)["p"]
    assert [f["id"] for f in features] == [1, 2, 3]
    assert [f["geometry"]["coordinates"] for f in features] == [[10, EXTENT - 21], [4095, EXTENT], [2048, 2048]]
    assert features[0]["properties"] == {"s": "a", "i": 1, "f": 1.5, "b": True}
    assert features[1]["properties"] == {"s": "b", "i": -7, "b": False}  # NaN is no value
    assert features[2]["properties"] == {"i": 0, "f": 2.0}  # None is no value
    assert type(features[2]["properties"]["f"]) is float and type(features[2]["properties"]["i"]) is int


def test_equal_values_of_different_types_stay_apart():
    data = encode(BOUNDS, [layer("p", [Point(*metres(1, 1)), Point(*metres(2, 2))], v=[1, True], w=[1.0, 1])])
    props = [f["properties"] for f in decode(data)["p"]]
    assert [type(p["v"]) for p in props] == [int, bool]
    assert [type(p["w"]) for p in props] == [float, int]


def test_polygons_are_clipped_to_the_buffer():
    big = tile_box(-1000, -1000, 5000, 5000)
    data = encode(BOUNDS, [layer("s", [big])])
    ring = raw_rings(data)["s"][0][0]
    xs, ys = {x for x, _ in ring}, {y for _, y in ring}
    assert xs == {-BUFFER, EXTENT + BUFFER} and ys == {-BUFFER, EXTENT + BUFFER}


def test_rings_are_wound_as_mvt_requires_and_holes_survive():
    holey = Polygon(tile_box(100, 100, 1000, 1000).exterior.coords, [tile_box(200, 200, 300, 300).exterior.coords])
    clockwise_input = shapely.orient_polygons(holey, exterior_cw=True)
    two = MultiPolygon([tile_box(2000, 2000, 2100, 2100), tile_box(3000, 3000, 3100, 3200)])
    data = encode(BOUNDS, [layer("s", [clockwise_input, two])])
    first, second = raw_rings(data)["s"]
    assert [signed_area(r) > 0 for r in first] == [True, False]  # exterior positive, hole negative
    assert [signed_area(r) for r in second] == [100 * 100, 100 * 200]
    decoded = [shape(f["geometry"]) for f in decode(data)["s"]]
    assert decoded[0].geom_type == "Polygon" and len(decoded[0].interiors) == 1
    assert decoded[0].area == 900 * 900 - 100 * 100
    assert decoded[1].geom_type == "MultiPolygon" and len(decoded[1].geoms) == 2


def test_features_that_collapse_on_the_grid_are_dropped():
    tiny = tile_box(10.1, 10.1, 10.3, 10.3)
    sliver = tile_box(50, 50, 900, 50.2)
    outside = tile_box(5000, 5000, 5100, 5100)
    kept = tile_box(0, 0, 10, 10)
    data = encode(BOUNDS, [layer("s", [tiny, sliver, outside, kept])])
    assert [f["id"] for f in decode(data)["s"]] == [4]


def test_rounding_that_crosses_rings_is_repaired():
    # two parts 0.3 units apart: rounding makes them overlap, which MVT consumers cannot fill
    near = MultiPolygon([tile_box(10, 10, 20.2, 20), tile_box(20.4, 10, 30, 20)])
    data = encode(BOUNDS, [layer("s", [near])])
    geometry = shape(decode(data)["s"][0]["geometry"])
    assert geometry.is_valid and geometry.area == pytest.approx(200, abs=10)
    for ring in raw_rings(data)["s"][0]:
        assert signed_area(ring) > 0


def test_empty_layers_are_left_out_and_an_empty_tile_is_no_bytes():
    nothing = layer("s", [tile_box(5000, 5000, 5100, 5100)])
    assert encode(BOUNDS, [nothing]) == b""
    data = encode(BOUNDS, [nothing, layer("p", [Point(*metres(5, 5))])])
    assert list(decode(data)) == ["p"]


def test_repeated_vertices_are_not_encoded():
    ring = [metres(0, 0), metres(0, 100), metres(0, 100.2), metres(100, 100), metres(100, 0)]
    (commands,) = polygon_commands(shapely.transform(np.array([Polygon(ring)]), lambda xy: np.rint(
        (xy - [BOUNDS.left, BOUNDS.top]) / [SCALE, -SCALE])))
    assert commands[3] >> 3 == 3  # LineTo count: four distinct vertices, the first by MoveTo


def test_gdal_reads_what_mapbox_vector_tile_reads(tmp_path):
    tile = Tile(5, 15, 11)
    b = tile_bounds(tile)
    span = b.right - b.left
    holey = Polygon(box(b.left + span * 0.1, b.bottom + span * 0.1, b.left + span * 0.6, b.bottom + span * 0.6)
                    .exterior.coords, [box(b.left + span * 0.2, b.bottom + span * 0.2, b.left + span * 0.3,
                                           b.bottom + span * 0.3).exterior.coords])
    points = [Point(b.left + span * 0.25, b.bottom + span * 0.75), Point(b.left + span * 0.5, b.bottom + span * 0.9)]
    data = encode(b, [TileLayer("shapes", np.array([holey]), [42], {"nom": ["Ille"], "n": [3]}),
                      TileLayer("points", np.array(points), [7, 8], {"uai": ["0350001L", "0350002M"]})])
    gdal = gdal_decode(data, tile, tmp_path)
    ours = decode(data)
    assert {name: len(features) for name, features in gdal.items()} == {"shapes": 1, "points": 2}
    assert [f["properties"]["mvt_id"] for f in gdal["points"]] == [f["id"] for f in ours["points"]] == [7, 8]
    assert gdal["shapes"][0]["properties"] == {"mvt_id": 42, "nom": "Ille", "n": 3}
    resolution = span / EXTENT
    assert shapely.hausdorff_distance(shape(gdal["shapes"][0]["geometry"]), holey) <= resolution
    for found, expected in zip(gdal["points"], points, strict=True):
        assert shape(found["geometry"]).distance(expected) <= resolution
