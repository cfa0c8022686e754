"""The streaming writers: GeoJSON and CSV pages, encoded a batch at a time."""

from __future__ import annotations

import csv
import doctest
import io
import json
import math

import shapely

from tileserver.core import crs, geojson
from tileserver.core.dataset import Field
from tileserver.core.store import Feature

FIELDS = [Field("nom", "string"), Field("n", "integer"), Field("x", "number"), Field("ok", "boolean"),
          Field('a "quoted" %s name', "string")]


def features(count: int) -> list[Feature]:
    return [
        Feature(f"id{i}", shapely.Point(i / 10, 45 + i / 100) if i % 7 else None, {
            "nom": f"École \"{i}\"\n\\ é" if i % 3 else None, "n": i if i % 4 else None,
            "x": i / 3 if i % 5 else (math.nan if i % 2 else None), "ok": [True, False, None][i % 3],
            'a "quoted" %s name': "%s%d",
        })
        for i in range(count)
    ]


def test_doctests():
    assert doctest.testmod(geojson).failed == 0


def test_a_feature_collection_is_valid_json_with_exact_values():
    items = features(1234)  # more than two batches
    text = "".join(geojson.feature_collection(iter(items), crs.CRS84, FIELDS, {"numberMatched": 2000},
                                              lambda n: {"numberReturned": n, "links": []}))
    doc = json.loads(text)
    assert (doc["type"], doc["numberMatched"], doc["numberReturned"]) == ("FeatureCollection", 2000, 1234)
    for feature, written in zip(items, doc["features"], strict=True):
        assert written["id"] == feature.id
        expected = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in feature.properties.items()}
        assert written["properties"] == expected
        if feature.geometry is None:
            assert written["geometry"] is None
        else:
            assert shapely.geometry.shape(written["geometry"]).equals_exact(feature.geometry, 0)


def test_an_empty_page():
    doc = json.loads("".join(geojson.feature_collection(iter([]), crs.CRS84, FIELDS, {}, lambda n: {})))
    assert doc == {"type": "FeatureCollection", "features": []}


def test_the_text_leaves_in_chunks():
    chunks = list(geojson.feature_collection(iter(features(3000)), crs.CRS84, FIELDS, {}, lambda n: {}))
    assert len(chunks) > 3 and all(len(c) < 2 * geojson.CHUNK for c in chunks)


def test_csv_quotes_what_needs_quoting():
    text = "".join(geojson.csv_rows(iter(features(20)), crs.parse("EPSG:2154"), ["nom", "ok", "x"]))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 20 and list(rows[0]) == ["id", "nom", "ok", "x", "WKT"]
    assert rows[1]["nom"] == 'École "1"\n\\ é' and rows[1]["ok"] == "false"
    assert rows[0]["WKT"] == "" and rows[1]["WKT"].startswith("POINT (")
