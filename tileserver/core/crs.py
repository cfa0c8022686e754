"""Coordinate reference systems of OGC API - Features Part 2: which ones, their URIs, and reprojection.

Stores hold lon/lat (CRS84) and every query reaches them in CRS84; a client may send its bbox and
filter geometries in, and ask for features in, any CRS listed here. pyproj transforms in each CRS's
authority axis order, so EPSG:4326 is latitude first, as Part 2 requires, with no special case.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

from tileserver.core.errors import BadRequest
from tileserver.core.grid import BBox

CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"

# Mainland, web, and the local systems of the overseas départements and collectivities.
EPSG_CODES = (
    4326,  # WGS 84, latitude first
    2154,  # RGF93 / Lambert-93 (mainland France, Corsica)
    3857,  # WGS 84 / Pseudo-Mercator
    5490,  # RGAF09 / UTM 20N (Guadeloupe, Martinique)
    4559,  # RRAF 1991 / UTM 20N (Antilles, older)
    32620,  # WGS 84 / UTM 20N (Antilles)
    2972,  # RGFG95 / UTM 22N (Guyane)
    32622,  # WGS 84 / UTM 22N (Guyane)
    2975,  # RGR92 / UTM 40S (La Réunion)
    32740,  # WGS 84 / UTM 40S (La Réunion)
    4471,  # RGM04 / UTM 38S (Mayotte)
    32738,  # WGS 84 / UTM 38S (Mayotte)
    4467,  # RGSPM06 / UTM 21N (Saint-Pierre-et-Miquelon)
)
SUPPORTED = (CRS84_URI, *(EPSG_URI.format(code) for code in EPSG_CODES))

_REFERENCE = re.compile(
    r"^\[?(?:https?://www\.opengis\.net/def/crs/(?P<auth>OGC|EPSG)/[0-9.]+/(?P<code>\w+)"
    r"|urn:ogc:def:crs:(?P<urn_auth>OGC|EPSG):[0-9.]*:(?P<urn_code>\w+)"
    r"|(?P<curie_auth>OGC|EPSG):(?P<curie_code>\w+))\]?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Crs:
    """A supported CRS: its canonical URI (as `Content-Crs` says it) and its pyproj definition."""

    uri: str

    @property
    def is_crs84(self) -> bool:
        return self.uri == CRS84_URI

    @property
    def is_projected(self) -> bool:
        """Whether coordinates are metres (every supported CRS but CRS84 and EPSG:4326)."""
        return self.uri not in (CRS84_URI, EPSG_URI.format(4326))

    @property
    def header(self) -> str:
        """The value of a `Content-Crs` header."""
        return f"<{self.uri}>"


CRS84 = Crs(CRS84_URI)


def parse(value: str) -> Crs:
    """A supported CRS from its URI (also its URN or `[EPSG:code]` CURIE), or a 400.

    >>> parse("http://www.opengis.net/def/crs/EPSG/0/2154").uri
    'http://www.opengis.net/def/crs/EPSG/0/2154'
    >>> parse("[EPSG:4326]").uri, parse("urn:ogc:def:crs:OGC:1.3:CRS84").is_crs84
    ('http://www.opengis.net/def/crs/EPSG/0/4326', True)
    """
    match = _REFERENCE.match(value.strip())
    if match:
        auth = (match["auth"] or match["urn_auth"] or match["curie_auth"]).upper()
        code = (match["code"] or match["urn_code"] or match["curie_code"]).upper()
        uri = CRS84_URI if (auth, code) == ("OGC", "CRS84") else EPSG_URI.format(code) if auth == "EPSG" else ""
        if uri in SUPPORTED:
            return Crs(uri)
    raise BadRequest(f"unsupported CRS {value[:200]!r}; supported: {', '.join(SUPPORTED)}")


def _definition(uri: str) -> str:
    """The pyproj name of a supported URI.

    >>> _definition(CRS84_URI), _definition(EPSG_URI.format(2154))
    ('OGC:CRS84', 'EPSG:2154')
    """
    return "OGC:CRS84" if uri == CRS84_URI else "EPSG:" + uri.rsplit("/", 1)[1]


_local = threading.local()


def _transformer(source: str, target: str) -> Transformer:
    """A transformer in authority axis order, one per thread (pyproj transformers are not thread-safe)."""
    cache = getattr(_local, "transformers", None)
    if cache is None:
        cache = _local.transformers = {}
    key = (source, target)
    if key not in cache:
        cache[key] = Transformer.from_crs(_definition(source), _definition(target))
    return cache[key]


def _apply(geometries: np.ndarray, source: Crs, target: Crs) -> np.ndarray:
    """Geometries with every coordinate transformed, in one vectorised call."""
    transformer = _transformer(source.uri, target.uri)

    def move(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geometries, move)


def from_crs84(geometries: np.ndarray, target: Crs) -> np.ndarray:
    """Lon/lat geometries in the target CRS, in its axis order (an array of shapely geometries).

    >>> from shapely import Point
    >>> g = from_crs84(np.array([Point(2.0, 48.0)]), parse("EPSG:4326"))
    >>> g[0].wkt
    'POINT (48 2)'
    """
    if target.is_crs84:
        return geometries
    return _apply(geometries, CRS84, target)


def to_crs84(geometry: BaseGeometry, source: Crs) -> BaseGeometry:
    """A geometry given in `source` (its axis order), in lon/lat.

    >>> to_crs84(shapely.Point(48.0, 2.0), parse("EPSG:4326")).wkt
    'POINT (2 48)'
    """
    if source.is_crs84:
        return geometry
    return _apply(np.array([geometry], dtype=object), source, CRS84)[0]


def bbox_to_crs84(numbers: tuple[float, float, float, float], source: Crs) -> tuple[BBox, BaseGeometry]:
    """A bbox given as (min axis 1, min axis 2, max axis 1, max axis 2) in `source`: its lon/lat envelope and outline.

    The outline is densified before it is transformed, so a projected box's curved edges are
    followed; the envelope contains it.

    >>> bbox_to_crs84((47.0, -2.0, 48.0, -1.0), parse("EPSG:4326"))[0]
    BBox(west=-2.0, south=47.0, east=-1.0, north=48.0)
    """
    a1, a2, b1, b2 = numbers
    outline = shapely.box(a1, a2, b1, b2)
    if source.is_crs84:
        return BBox(a1, a2, b1, b2), outline
    outside = BadRequest(f"bbox {numbers} lies outside the area of {source.uri}")
    try:
        if outline.area > 0:  # a box of zero width or height (a point, a line) has no curved edge to follow
            outline = shapely.segmentize(outline, max(b1 - a1, b2 - a2) / 32)
        outline = to_crs84(outline, source)
    except shapely.errors.GEOSException:  # coordinates so far out that GEOS cannot densify the box
        raise outside from None
    west, south, east, north = outline.bounds
    if not all(np.isfinite((west, south, east, north))):
        raise outside
    return BBox(west, south, east, north), outline
