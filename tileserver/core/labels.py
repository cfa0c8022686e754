"""One label point per territory, so a name shows once per view instead of once per tile.

A territory's polygon is cut by every tile it crosses, and MapLibre labels each piece: "Bretagne"
three times at zoom 6, "Rennes" four times at zoom 13. Here each territory gets one point inside
its largest part, computed once per data version; a label tile carries the points that fall in
it, so each name lies in exactly one tile.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from tileserver.core import mvt
from tileserver.core.grid import Tile, tile_bounds
from tileserver.core.mercator import geometries_to_mercator
from tileserver.core.store import Feature

LABEL_MAXZOOM = 14  # clients overzoom label tiles past this zoom


@dataclass(frozen=True)
class LabelPoints:
    """The label points of one territory level: EPSG:3857 points, codes and names, aligned."""

    level: str
    minzoom: int
    points: np.ndarray
    codes: list[str]
    names: list[str]


def largest_part(geometry: BaseGeometry) -> BaseGeometry:
    """A territory's largest polygon: its name goes on the mainland, not on an island.

    >>> from shapely.geometry import MultiPolygon, box
    >>> largest_part(MultiPolygon([box(0, 0, 1, 1), box(10, 0, 14, 2)])).bounds
    (10.0, 0.0, 14.0, 2.0)
    """
    return max(getattr(geometry, "geoms", [geometry]), key=lambda part: part.area)


def level_points(level: str, minzoom: int, features: Iterable[Feature]) -> LabelPoints:
    """The label points of a level's features (lon/lat geometries), projected to EPSG:3857.

    A point on the surface of the largest part (GEOS, vectorised): the pole of inaccessibility
    would sit a little better but costs ten seconds for the 35,000 communes.
    """
    kept = [f for f in features if f.geometry is not None and not f.geometry.is_empty]
    parts = np.array([largest_part(f.geometry) for f in kept], dtype=object)
    points = geometries_to_mercator(shapely.point_on_surface(parts)) if len(kept) else parts
    return LabelPoints(level, minzoom, points, [f.id for f in kept],
                       [str(f.properties.get("nom") or f.id) for f in kept])


def labels_tile(levels: Sequence[LabelPoints], tile: Tile) -> bytes:
    """The label tile: one layer per level shown at this zoom, holding the points inside the tile."""
    bounds = tile_bounds(tile)
    layers = []
    for entry in levels:
        if tile.z < entry.minzoom or not len(entry.points):
            continue
        x, y = shapely.get_x(entry.points), shapely.get_y(entry.points)
        inside = np.flatnonzero((x >= bounds.left) & (x < bounds.right) & (y > bounds.bottom) & (y <= bounds.top))
        if len(inside):
            columns: Mapping[str, list[str]] = {"code": [entry.codes[i] for i in inside],
                                                "nom": [entry.names[i] for i in inside]}
            layers.append(mvt.TileLayer(entry.level, entry.points[inside], inside.tolist(), columns))
    return mvt.encode(bounds, layers, buffer=0) if layers else b""

