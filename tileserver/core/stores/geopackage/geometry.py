"""GeoPackage binary geometries: the header GDAL and QGIS expect in front of a little-endian WKB.

A blob is `GP`, a version byte, a flags byte, the SRS id, an optional envelope, then the WKB
(GeoPackage 1.3, clause 2.1.3). We always write the envelope of non-empty geometries, so readers
(and the bbox filter of the snapshot) can test a box without decoding the WKB.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

MAGIC = b"GP"
LITTLE_ENDIAN = 0b0000_0001
XY_ENVELOPE = 0b0000_0010  # envelope indicator 1 (minx, maxx, miny, maxy) in bits 1-3
EMPTY = 0b0001_0000
ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}  # by envelope indicator

_HEADER = struct.Struct("<2sBBi")
_ENVELOPE = struct.Struct("<4d")


def encode(geometries: np.ndarray, srs_id: int) -> list[bytes | None]:
    """GeoPackage blobs of shapely geometries (None stays None, so the column is NULL).

    >>> from shapely import Point
    >>> blob = encode(np.array([Point(2.5, 48.0), None], dtype=object), 4326)
    >>> blob[0][:2], len(blob[0]), blob[1]
    (b'GP', 61, None)
    """
    wkbs = shapely.to_wkb(geometries, byte_order=1, output_dimension=2)
    bounds = shapely.bounds(geometries).tolist()
    return [_blob(wkb, box, srs_id) for wkb, box in zip(wkbs.tolist(), bounds, strict=True)]


def _blob(wkb: bytes | None, box: list[float], srs_id: int) -> bytes | None:
    """One blob: header, envelope when the geometry has one, WKB."""
    if wkb is None:
        return None
    minx, miny, maxx, maxy = box
    if minx != minx:  # NaN bounds: an empty geometry has no envelope
        return _HEADER.pack(MAGIC, 0, EMPTY | LITTLE_ENDIAN, srs_id) + wkb
    header = _HEADER.pack(MAGIC, 0, XY_ENVELOPE | LITTLE_ENDIAN, srs_id)
    return header + _ENVELOPE.pack(minx, maxx, miny, maxy) + wkb


def decode(blob: bytes | None) -> BaseGeometry | None:
    """The shapely geometry of a blob.

    >>> from shapely import Point
    >>> decode(encode(np.array([Point(1, 2)], dtype=object), 4326)[0]).wkt
    'POINT (1 2)'
    """
    if blob is None:
        return None
    return shapely.from_wkb(bytes(blob[_HEADER.size + _envelope_bytes(blob) :]))


def decode_many(blobs: Sequence[bytes | None]) -> np.ndarray:
    """The shapely geometries of many blobs, parsed in one call: a per-blob call costs more than the parse.

    >>> from shapely import Point
    >>> [g and g.wkt for g in decode_many(encode(np.array([Point(1, 2), None], dtype=object), 4326))]
    ['POINT (1 2)', None]
    """
    wkbs = [None if blob is None else bytes(blob[_HEADER.size + _envelope_bytes(blob) :]) for blob in blobs]
    return shapely.from_wkb(np.array(wkbs, dtype=object))


def envelope(blob: bytes) -> tuple[float, float, float, float] | None:
    """The (minx, maxx, miny, maxy) stored in the header, None when there is none."""
    if _envelope_bytes(blob) == 0:
        return None
    byte_order = "<" if blob[3] & LITTLE_ENDIAN else ">"
    return struct.unpack_from(byte_order + "4d", blob, _HEADER.size)


def _envelope_bytes(blob: bytes) -> int:
    """Length of the envelope, read from the flags byte."""
    if blob[:2] != MAGIC:
        raise ValueError("not a GeoPackage geometry blob")
    return ENVELOPE_BYTES[(blob[3] >> 1) & 0b111]


def intersects_box(blob: bytes | None, west: float, south: float, east: float, north: float) -> bool:
    """Whether a blob's geometry touches a box; the envelope settles most cases without decoding.

    >>> from shapely import Point
    >>> blob = encode(np.array([Point(2.5, 48.0)], dtype=object), 4326)[0]
    >>> intersects_box(blob, 2, 47, 3, 49), intersects_box(blob, 3, 47, 4, 49)
    (True, False)
    """
    if blob is None:
        return False
    box = envelope(blob)
    if box is not None:
        minx, maxx, miny, maxy = box
        if minx > east or maxx < west or miny > north or maxy < south:
            return False
        if minx >= west and maxx <= east and miny >= south and maxy <= north:
            return True
    return bool(shapely.intersects(decode(blob), shapely.box(west, south, east, north)))
