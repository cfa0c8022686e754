"""Streaming writers of feature pages: GeoJSON and CSV, written a batch of features at a time.

A page of 10,000 features is never held as one document: features are read from the store's
cursor in batches, their geometries reprojected and encoded in one vectorised call per batch
(GEOS writes the GeoJSON and the WKT), and the text leaves in chunks of about `CHUNK` characters.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from operator import itemgetter
from typing import Any

import numpy as np
import shapely

from tileserver.core import crs as crs_
from tileserver.core.dataset import Field
from tileserver.core.store import Feature

BATCH = 500  # features encoded per vectorised call
CHUNK = 64 * 1024  # characters per piece of the response

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_string = json.encoder.encode_basestring  # a str as a JSON string, in C


def batches(features: Iterable[Feature], size: int = BATCH) -> Iterator[list[Feature]]:
    """Features in lists of at most `size`.

    >>> [len(b) for b in batches(range(5), 2)]
    [2, 2, 1]
    """
    iterator = iter(features)
    while batch := list(islice(iterator, size)):
        yield batch


def geometries(batch: list[Feature], target: crs_.Crs) -> np.ndarray:
    """The batch's geometries in the target CRS (None stays None)."""
    return crs_.from_crs84(np.array([f.geometry for f in batch], dtype=object), target)


def encode_feature(feature: Feature, geometry: str | None, extra: str = "") -> str:
    """One GeoJSON feature; `geometry` is already JSON, `extra` more members (starting with a comma).

    >>> encode_feature(Feature("0350001A", None, {"nom": "École"}), '{"type":"Point","coordinates":[1,2]}')
    '{"type":"Feature","id":"0350001A","geometry":{"type":"Point","coordinates":[1,2]},"properties":{"nom":"École"}}'
    """
    return (
        f'{{"type":"Feature","id":{_dumps(feature.id)},"geometry":{geometry or "null"},'
        f'"properties":{_dumps(feature.properties)}{extra}}}'
    )


def feature_document(feature: Feature, target: crs_.Crs, links: list[dict[str, str]]) -> str:
    """One feature as a GeoJSON document, with its links.

    >>> json.loads(feature_document(Feature("a", shapely.Point(1, 2), {}), crs_.CRS84, []))["links"]
    []
    """
    geometry = shapely.to_geojson(geometries([feature], target))[0]
    return encode_feature(feature, geometry, ',"links":' + _dumps(links))


def _numbers(values: list[Any]) -> list[str]:
    return ["null" if v is None or not math.isfinite(v) else repr(v) for v in values]


# JSON text of a whole column of values, by field type: one comprehension per column and batch,
# instead of a JSON encoder call per feature, is what makes a page of 10,000 features cheap.
_COLUMN_ENCODERS: dict[str, Callable[[list[Any]], list[str]]] = {
    "string": lambda values: ["null" if v is None else _string(v) for v in values],
    "integer": lambda values: ["null" if v is None else str(int(v)) for v in values],
    "number": _numbers,
    "boolean": lambda values: ["null" if v is None else "true" if v else "false" for v in values],
}


def _template(names: list[str]) -> str:
    """A %-format of one feature whose properties are `names`: id, geometry, then one slot per property.

    >>> _template(["nom", "taux %"])
    '{"type":"Feature","id":%s,"geometry":%s,"properties":{"nom":%s,"taux %%":%s}}'
    """
    members = ",".join(_dumps(name).replace("%", "%%") + ":%s" for name in names)
    return '{"type":"Feature","id":%s,"geometry":%s,"properties":{' + members + "}}"


def feature_texts(features: Iterable[Feature], target: crs_.Crs, fields: Sequence[Field]) -> Iterator[str]:
    """Each feature as GeoJSON text; geometries and each property column are encoded a batch at a time.

    `fields` are the properties the features carry, in order, with their types.

    >>> from tileserver.core.dataset import Field
    >>> list(feature_texts([Feature("a", shapely.Point(1, 2), {"n": 3, "ok": None})], crs_.CRS84,
    ...                    [Field("n", "integer"), Field("ok", "boolean")]))
    ['{"type":"Feature","id":"a","geometry":{"type":"Point","coordinates":[1.0,2.0]},"properties":{"n":3,"ok":null}}']
    """
    names = [f.name for f in fields]
    template = _template(names)
    values = itemgetter(*names) if len(names) > 1 else lambda p: tuple(p[n] for n in names)
    for batch in batches(features):
        rows = list(zip(*map(values, (feature.properties for feature in batch)), strict=True)) if names else []
        columns = [_COLUMN_ENCODERS[f.type](list(column)) for f, column in zip(fields, rows, strict=True)]
        ids = [_string(feature.id) for feature in batch]
        encoded = ["null" if g is None else g for g in shapely.to_geojson(geometries(batch, target)).tolist()]
        for row in zip(ids, encoded, *columns, strict=True):
            yield template % row


def feature_collection(
    features: Iterable[Feature],
    target: crs_.Crs,
    fields: Sequence[Field],
    head: dict[str, Any],
    tail: Callable[[int], dict[str, Any]],
) -> Iterator[str]:
    """A FeatureCollection in pieces: `head` members, the features, then `tail(count)` members.

    The tail is built once every feature is written, so `numberReturned` and the paging links
    state what was actually sent.

    >>> doc = "".join(feature_collection([Feature("a", shapely.Point(1, 2), {})], crs_.CRS84, [],
    ...                                  {"numberMatched": 1}, lambda n: {"numberReturned": n}))
    >>> json.loads(doc)["numberReturned"], json.loads(doc)["features"][0]["geometry"]["coordinates"]
    (1, [1.0, 2.0])
    """
    opening = _dumps({"type": "FeatureCollection", **head})[:-1]
    count = 0

    def pieces() -> Iterator[str]:
        nonlocal count
        yield opening + ',"features":['
        for text in feature_texts(features, target, fields):
            yield ("," if count else "") + text
            count += 1
        closing = _dumps(tail(count))
        yield "]" + ("," + closing[1:] if len(closing) > 2 else "}")

    return chunked(pieces())


def chunked(pieces: Iterable[str], size: int = CHUNK) -> Iterator[str]:
    """Small pieces of text gathered into chunks of about `size` characters.

    >>> list(chunked(["ab", "cd", "e"], size=3))
    ['abcd', 'e']
    """
    buffer: list[str] = []
    length = 0
    for piece in pieces:
        buffer.append(piece)
        length += len(piece)
        if length >= size:
            yield "".join(buffer)
            buffer, length = [], 0
    if buffer:
        yield "".join(buffer)


def csv_rows(features: Iterable[Feature], target: crs_.Crs, properties: list[str]) -> Iterator[str]:
    """A CSV table: `id`, the properties, then `WKT` (the geometry, which GDAL's CSV driver reads).

    >>> print("".join(csv_rows([Feature("a", shapely.Point(1, 2), {"ok": True, "n": None})], crs_.CRS84,
    ...                        ["ok", "n"])), end="")
    id,ok,n,WKT
    a,true,,POINT (1 2)
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def pieces() -> Iterator[str]:
        writer.writerow(["id", *properties, "WKT"])
        for batch in batches(features):
            wkts = shapely.to_wkt(geometries(batch, target), rounding_precision=-1).tolist()
            for feature, wkt in zip(batch, wkts, strict=True):
                writer.writerow([feature.id, *(_cell(feature.properties.get(p)) for p in properties), wkt or ""])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()

    return chunked(pieces())


def _cell(value: Any) -> Any:
    """A CSV cell: empty for unknown, `true`/`false` for booleans.

    >>> _cell(None), _cell(False), _cell(1.5)
    ('', 'false', 1.5)
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
