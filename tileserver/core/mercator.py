"""Web Mercator (EPSG:3857) on a sphere: the one place its maths is written, for points and arrays.

Everything that projects longitude/latitude to the tiles' metres, or back, calls these; latitudes
are clamped to the grid's square world, as tiles and their clients do.
"""

from __future__ import annotations

import math

import numpy as np
import shapely

EARTH_RADIUS = 6378137.0
ORIGIN = math.pi * EARTH_RADIUS  # half the width of the world in EPSG:3857 metres
MAX_LATITUDE = 85.0511287798066


def to_mercator(lon: float, lat: float) -> tuple[float, float]:
    """Project a point to EPSG:3857, clamping latitude to the grid.

    >>> to_mercator(180.0, 0.0)[0] == ORIGIN
    True
    """
    lat = max(-MAX_LATITUDE, min(MAX_LATITUDE, lat))
    x = EARTH_RADIUS * math.radians(lon)
    y = EARTH_RADIUS * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))
    return x, y


def to_lnglat(x: float, y: float) -> tuple[float, float]:
    """Unproject a point from EPSG:3857.

    >>> [round(v, 6) for v in to_lnglat(*to_mercator(2.35, 48.85))]
    [2.35, 48.85]
    """
    lon = math.degrees(x / EARTH_RADIUS)
    lat = math.degrees(2 * math.atan(math.exp(y / EARTH_RADIUS)) - math.pi / 2)
    return lon, lat


def array_to_mercator(lnglat: np.ndarray) -> np.ndarray:
    """Longitude/latitude pairs (n x 2) in EPSG:3857 metres: `to_mercator` for a whole array.

    >>> array_to_mercator(np.array([[180.0, 90.0], [-180.0, -89.0]])).round()
    array([[ 20037508.,  20037508.],
           [-20037508., -20037508.]])
    """
    lat = np.radians(np.clip(lnglat[:, 1], -MAX_LATITUDE, MAX_LATITUDE))
    x = EARTH_RADIUS * np.radians(lnglat[:, 0])
    return np.column_stack([x, EARTH_RADIUS * np.log(np.tan(np.pi / 4 + lat / 2))])


def latitudes(y: np.ndarray) -> np.ndarray:
    """The latitude of each EPSG:3857 northing, in degrees.

    >>> latitudes(np.array([0.0, ORIGIN])).round(4)
    array([ 0.    , 85.0511])
    """
    return np.degrees(2 * np.arctan(np.exp(y / EARTH_RADIUS)) - np.pi / 2)


def geometries_to_mercator(geometries: np.ndarray) -> np.ndarray:
    """Lon/lat shapely geometries in Web Mercator metres (latitudes clamped to the grid).

    >>> corners = np.array([shapely.Point(-180, -89), shapely.Point(180, 89)])
    >>> shapely.get_coordinates(geometries_to_mercator(corners)).round()
    array([[-20037508., -20037508.],
           [ 20037508.,  20037508.]])
    """
    return shapely.transform(np.asarray(geometries, dtype=object), array_to_mercator)
