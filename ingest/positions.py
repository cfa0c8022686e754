"""School positions in lon/lat (EPSG:4326): as given, or reprojected from the x/y of a local CRS.

The directory gives both: `latitude`/`longitude`, and `x`/`y` in the CRS of the territory
(EPSG:2154 Lambert-93 in mainland France, UTM or local CRSs overseas: EPSG:32620, 5490, 4559
Antilles, 2972 Guyane, 2975 La Réunion, 32738, 4471 Mayotte...). Latitude/longitude are used when
plausible; otherwise x/y are reprojected, one vectorised pyproj call per CRS, and kept only inside
the CRS's area of use (pyproj maps absurd x/y to somewhere on Earth all the same).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import shapely
from pyproj import Geod, Transformer
from pyproj.exceptions import CRSError, ProjError

AREA_MARGIN = 1.0  # degrees around a CRS's area of use where its x/y are still believed
DEPARTEMENT_TOLERANCE_KM = 20.0  # how far outside its own (simplified) département outline a position is believed
_GEOD = Geod(ellps="WGS84")


class Positions(NamedTuple):
    """Where each row is, and why a row is nowhere."""

    lon: np.ndarray
    lat: np.ndarray
    problems: list[str | None]  # why a row has no usable position; None when it has one
    crs: list[str | None]  # the CRS a position was reprojected from; None when read as lon/lat


def positions(
    latitude: Sequence[str], longitude: Sequence[str], x: Sequence[str], y: Sequence[str], crs: Sequence[str]
) -> Positions:
    """lon, lat (EPSG:4326) per row: latitude/longitude when plausible, else x/y reprojected.

    Reprojection is vectorised: one pyproj call per CRS over all the rows that need it.

    >>> found = positions(['48.8', '', '0'], ['2.3', '', '0'], ['', '650267.1', ''],
    ...                   ['', '6850327.2', ''], ['', 'EPSG:2154', ''])
    >>> found.lon[:2].round(3).tolist(), found.lat[:2].round(3).tolist()
    ([2.3, 2.324], [48.8, 48.751])
    >>> found.problems, found.crs
    ([None, None, 'no usable position'], [None, 'EPSG:2154', None])
    """
    lon, lat = _floats(longitude), _floats(latitude)
    problems: list[str | None] = [None] * len(lon)
    used: list[str | None] = [None] * len(lon)
    todo = np.flatnonzero(~_plausible(lon, lat))
    xs, ys = np.full(len(lon), np.nan), np.full(len(lon), np.nan)
    xs[todo], ys[todo] = _floats([x[i] for i in todo]), _floats([y[i] for i in todo])
    groups: dict[str | None, list[int]] = {}
    for i in todo.tolist():
        if np.isnan(xs[i]) or np.isnan(ys[i]):
            problems[i] = "no usable position"
        else:
            groups.setdefault(crs_name(crs[i]), []).append(i)
    for name, members in groups.items():
        lon[members], lat[members], reason = _reproject(xs[members], ys[members], name)
        good = _plausible(lon[members], lat[members])
        for i, ok in zip(members, good.tolist(), strict=True):
            problems[i], used[i] = (None, name) if ok else (reason, None)
    return Positions(lon, lat, problems, used)


def _reproject(xs: np.ndarray, ys: np.ndarray, crs: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    """x/y from `crs` to lon/lat, NaN outside the CRS's area, and the reason to give for those rows."""
    nowhere = np.full(len(xs), np.nan)
    if crs is None:
        return nowhere, nowhere, "no usable position (x/y without a CRS)"
    try:
        transformer, area = _transformer(crs)
        lon, lat = (np.asarray(v, dtype=float) for v in transformer.transform(xs, ys))
    except (CRSError, ProjError):
        return nowhere, nowhere, f"no usable position (unknown CRS {crs!r})"
    outside = ~_within(lon, lat, area)
    lon[outside] = lat[outside] = np.nan
    return lon, lat, f"no usable position (x/y outside the area of {crs})"


@functools.lru_cache(maxsize=64)
def _transformer(crs: str) -> tuple[Transformer, tuple[float, float, float, float]]:
    """One transformer per CRS for the whole run (building one costs far more than using it), and
    the CRS's area of use widened by `AREA_MARGIN`: pyproj maps absurd x/y to somewhere on Earth."""
    transformer = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    area = transformer.source_crs.area_of_use if transformer.source_crs else None
    if area is None:
        return transformer, (-180.0, -90.0, 180.0, 90.0)
    m = AREA_MARGIN
    return transformer, (area.west - m, area.south - m, area.east + m, area.north + m)


def _within(lon: np.ndarray, lat: np.ndarray, area: tuple[float, float, float, float]) -> np.ndarray:
    """Whether each point is in a lon/lat box, which may cross the antimeridian (west > east).

    >>> _within(np.array([2.0, 179.5, -179.5, 0.0]), np.zeros(4), (178.0, -1.0, -178.0, 1.0)).tolist()
    [False, True, True, False]
    """
    west, south, east, north = area
    with np.errstate(invalid="ignore"):
        across = (lon >= west) | (lon <= east) if west > east else (lon >= west) & (lon <= east)
        return across & (lat >= south) & (lat <= north)


def crs_name(text: str) -> str | None:
    """The CRS as pyproj names it: `EPSG:2154` from `2154`, `epsg:2154`, `EPSG : 2154`; None if empty.

    >>> crs_name('2154'), crs_name(' epsg : 32620'), crs_name('EPSG:4559'), crs_name('')
    ('EPSG:2154', 'EPSG:32620', 'EPSG:4559', None)
    """
    name = re.sub(r"\s+", "", text).upper()
    if not name:
        return None
    return f"EPSG:{name}" if name.isdigit() else name


def _floats(texts: Sequence[str]) -> np.ndarray:
    return np.fromiter(map(_float, texts), dtype=float, count=len(texts))


def _float(text: str) -> float:
    """A number written with a point or a French comma; NaN if none.

    >>> _float('48.75'), _float('48,75'), _float(''), _float('n/a')
    (48.75, 48.75, nan, nan)
    """
    try:
        return float(text)
    except ValueError:
        try:
            return float(text.replace(",", "."))
        except ValueError:
            return math.nan


def _plausible(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Within the world's lon/lat range and not the 0, 0 that stands for a missing position."""
    with np.errstate(invalid="ignore"):
        inside = (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    return inside & ~((lon == 0) & (lat == 0))


def distances_km(lon: np.ndarray, lat: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """How far each point lies outside its area, in km on the ellipsoid (0 inside).

    Only the points outside are measured (the nearest point of the outline, then the geodesic), so
    a whole directory costs one vectorised containment test and a few distances.

    >>> square = shapely.box(2.0, 48.0, 3.0, 49.0)
    >>> distances_km(np.array([2.5, 3.1]), np.array([48.5, 48.5]), np.array([square, square])).round(1).tolist()
    [0.0, 7.4]
    """
    points = shapely.points(lon, lat)
    far = np.zeros(len(points))
    outside = np.flatnonzero(~shapely.covers(areas, points))
    if len(outside):
        lines = shapely.shortest_line(points[outside], areas[outside])
        (x0, y0), (x1, y1) = (shapely.get_coordinates(shapely.get_point(lines, i)).T for i in (0, 1))
        far[outside] = _GEOD.inv(x0, y0, x1, y1)[2] / 1000.0
    return far


def departement_problems(lon: np.ndarray, lat: np.ndarray, areas: np.ndarray, names: list[str],
                       tolerance_km: float = DEPARTEMENT_TOLERANCE_KM) -> list[str | None]:
    """Why each position cannot be in its département (None when it can; `areas` None where unknown).

    A point beyond the tolerance is refused; when swapping its latitude and longitude puts it
    within, the reason says so: a school of Val-de-Marne given as (48.8, 2.4) lands off Somalia.

    >>> square = np.array([shapely.box(2.0, 48.0, 3.0, 49.0)] * 3)
    >>> found = departement_problems(np.array([2.5, 48.5, 40.0]), np.array([48.5, 2.5, 10.0]), square, ["94"] * 3)
    >>> found[0], found[1]
    (None, 'position (lon 48.5, lat 2.5) is 6656 km outside its département 94: latitude and longitude swapped')
    >>> found[2]
    'position (lon 40.0, lat 10.0) is 5449 km outside its département 94'
    """
    problems: list[str | None] = [None] * len(lon)
    known = np.flatnonzero(np.array([a is not None for a in areas], dtype=bool))
    if not len(known):
        return problems
    far = distances_km(lon[known], lat[known], areas[known])
    wrong = np.flatnonzero(far > tolerance_km)
    swapped = distances_km(lat[known][wrong], lon[known][wrong], areas[known][wrong]) <= tolerance_km
    for i, is_swapped in zip(known[wrong].tolist(), swapped.tolist(), strict=True):
        problems[i] = (f"position (lon {lon[i]:.1f}, lat {lat[i]:.1f}) is {far[np.searchsorted(known, i)]:.0f} km "
                       f"outside its département {names[i]}"
                       + (": latitude and longitude swapped" if is_swapped else ""))
    return problems
