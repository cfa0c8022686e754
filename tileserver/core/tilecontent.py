"""What a vector tile holds for each collection at each zoom, decided once for both stores.

Schools are clusters below the version's `cluster_maxzoom` and single schools from it on;
territories are the generalised shapes of the band containing the zoom. Outside a collection's
zoom range its layer is absent. Both stores follow this plan, so the same tile decodes to the same
features (same ids, same properties) whichever store produced it.

A cluster is one cell of the ingest's cluster grid (`ingest.clusters`): `cells` x `cells` cells per
tile, so a tile's clusters count each of its schools once. Its id is the cell's index in the zoom's
grid (`cx * side + cy`), stable across tiles, filters and versions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from tileserver.core.dataset import COUNTED_TYPES, Field
from tileserver.core.grid import Tile, tile_size
from tileserver.core.mercator import ORIGIN
from tileserver.core.store import CollectionInfo, GeneralisedRange, TileFilter

COUNT_FIELDS = ("point_count", *(f"n_{t}" for t in COUNTED_TYPES))
OTHER_TYPE = COUNTED_TYPES[-1]  # every type not counted on its own is counted as `autre`


class Content(StrEnum):
    """The kind of features a layer carries at one zoom."""

    CLUSTERS = "clusters"
    POINTS = "points"
    SHAPES = "shapes"


@dataclass(frozen=True)
class LayerPlan:
    """One layer of a tile: its collection, what it carries, and for shapes the band to read."""

    info: CollectionInfo
    content: Content
    band: GeneralisedRange | None = None  # None for shapes: the full-resolution geometry


def plan(info: CollectionInfo, z: int, cluster_maxzoom: int) -> LayerPlan | None:
    """What the collection's layer holds at zoom z (None: no feature at this zoom).

    >>> from tileserver.core.grid import BBox
    >>> schools = CollectionInfo("etablissements", "", "", "Point", "uai", (), 0, BBox(0, 0, 1, 1), 0, 14)
    >>> [plan(schools, z, 12).content for z in (0, 11, 12)], plan(schools, 15, 12)
    ([<Content.CLUSTERS: 'clusters'>, <Content.CLUSTERS: 'clusters'>, <Content.POINTS: 'points'>], None)
    >>> communes = CollectionInfo("communes", "", "", "MultiPolygon", "code", (), 0, BBox(0, 0, 1, 1), 8, 14,
    ...                           (GeneralisedRange(8, 10), GeneralisedRange(11, 14)))
    >>> plan(communes, 7, 12), plan(communes, 11, 12).band
    (None, GeneralisedRange(minzoom=11, maxzoom=14))
    """
    if not info.minzoom <= z <= info.maxzoom:
        return None
    if info.geometry_type == "Point":
        return LayerPlan(info, Content.CLUSTERS if z < cluster_maxzoom else Content.POINTS)
    band = next((g for g in info.generalised if g.minzoom <= z <= g.maxzoom), None)
    return LayerPlan(info, Content.SHAPES, band)


def cluster_fields(sums: Sequence[str]) -> tuple[Field, ...]:
    """The properties of a cluster: school counts, then a sum and a count per summed indicator.

    >>> [f.name for f in cluster_fields(["ips"])]
    ['point_count', 'n_ecole', 'n_college', 'n_lycee', 'n_autre', 'ips_sum', 'ips_n']
    """
    titles = {"point_count": "Schools in the cluster"}
    counts = [Field(name, "integer", titles.get(name, f"Schools of type {name[2:]}")) for name in COUNT_FIELDS]
    per_indicator = [
        f
        for s in sums
        for f in (
            Field(f"{s}_sum", "number", f"Sum of {s} over the cluster's schools that have it"),
            Field(f"{s}_n", "integer", f"Schools of the cluster with a value of {s}"),
        )
    ]
    return (*counts, *per_indicator)


@dataclass(frozen=True)
class CellWindow:
    """The cluster cells of one tile: columns and rows, bounds included."""

    z: int
    cx_min: int
    cx_max: int
    cy_min: int
    cy_max: int


def cell_window(tile: Tile, cells: int) -> CellWindow:
    """The cells of the cluster grid that lie in a tile.

    >>> cell_window(Tile(3, 2, 5), 16)
    CellWindow(z=3, cx_min=32, cx_max=47, cy_min=80, cy_max=95)
    """
    return CellWindow(tile.z, tile.x * cells, (tile.x + 1) * cells - 1, tile.y * cells, (tile.y + 1) * cells - 1)


def grid_side(z: int, cells: int) -> int:
    """Cells per side of the whole cluster grid at zoom z: the factor of a cluster id.

    >>> grid_side(2, 16)
    64
    """
    return (1 << z) * cells


def cell_of(x: np.ndarray, y: np.ndarray, z: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Column and row of the cluster cell holding each point (EPSG:3857 metres) at zoom z.

    >>> cell_of(np.array([0.0]), np.array([0.0]), 0, 16)
    (array([8]), array([8]))
    """
    size = tile_size(z) / cells
    limit = (1 << z) * cells - 1
    cx = np.clip(np.floor((x + ORIGIN) / size), 0, limit).astype(np.int64)
    cy = np.clip(np.floor((ORIGIN - y) / size), 0, limit).astype(np.int64)
    return cx, cy


def school_rows(x: np.ndarray, y: np.ndarray, types: np.ndarray, statuts: np.ndarray,
                values: Mapping[str, np.ndarray], z: int, cells: int) -> dict[str, np.ndarray]:
    """Single schools as rows of the `clusters` table (one school each), for `aggregate`.

    The clusters table has no territory, so a tile limited to one territory clusters that
    territory's schools when it is asked for; each school lands in the cell the ingest gives it.
    >>> rows = school_rows(np.array([0.0]), np.array([0.0]), np.array(["ecole"]), np.array(["public"]),
    ...                    {"ips": np.array([np.nan])}, 0, 16)
    >>> rows["cx"].tolist(), rows["n"].tolist(), rows["ips_sum"].tolist(), rows["ips_n"].tolist()
    ([8], [1], [0.0], [0])
    """
    cx, cy = cell_of(x, y, z, cells)
    rows = {"cx": cx, "cy": cy, "type": types, "statut": statuts, "n": np.ones(len(x), dtype=np.int64),
            "sx": x, "sy": y}
    for name, v in values.items():
        known = ~np.isnan(v)
        rows[f"{name}_sum"] = np.where(known, v, 0.0)
        rows[f"{name}_n"] = known.astype(np.int64)
    return rows


@dataclass
class ClusterTable:
    """The clusters of a tile: positions (EPSG:3857), ids, and property columns, aligned."""

    x: np.ndarray
    y: np.ndarray
    ids: np.ndarray
    columns: dict[str, np.ndarray]


def aggregate(rows: Mapping[str, np.ndarray], z: int, cells: int, sums: Sequence[str],
              filters: TileFilter) -> ClusterTable:
    """Add up the (cell, type, statut) groups of a tile into one cluster per cell, after the filters.

    `rows` holds the `clusters` columns (`cx`, `cy`, `type`, `statut`, `n`, `sx`, `sy`, `<id>_sum`,
    `<id>_n`); the position is the mean of the members' positions, sum(sx) / sum(n).

    >>> rows = {"cx": np.array([1, 1, 2]), "cy": np.array([0, 0, 0]), "type": np.array(["ecole", "erea", "lycee"]),
    ...         "statut": np.array(["public", "prive", "public"]), "n": np.array([2, 1, 1]),
    ...         "sx": np.array([2.0, 4.0, 9.0]), "sy": np.array([0.0, 3.0, 1.0])}
    >>> t = aggregate(rows, 0, 4, [], TileFilter())
    >>> t.ids.tolist(), t.columns["point_count"].tolist(), t.columns["n_autre"].tolist(), t.x.tolist()
    ([4, 8], [3, 1], [1, 0], [2.0, 9.0])
    >>> aggregate(rows, 0, 4, [], TileFilter(statuts=("public",))).columns["point_count"].tolist()
    [2, 1]
    """
    keep = _matching(rows["type"], filters.types) & _matching(rows["statut"], filters.statuts)
    cx, cy = rows["cx"][keep].astype(np.int64), rows["cy"][keep].astype(np.int64)
    ids = cx * grid_side(z, cells) + cy
    unique, group = np.unique(ids, return_inverse=True)
    n = rows["n"][keep]
    kinds = rows["type"][keep].astype(str)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(group, weights=values, minlength=len(unique))

    count = total(n)
    columns = {"point_count": count.astype(np.int64)}
    counted = COUNTED_TYPES[:-1]
    for t in counted:
        columns[f"n_{t}"] = total(np.where(kinds == t, n, 0)).astype(np.int64)
    columns[f"n_{OTHER_TYPE}"] = total(np.where(np.isin(kinds, counted), 0, n)).astype(np.int64)
    for s in sums:
        columns[f"{s}_sum"] = total(rows[f"{s}_sum"][keep].astype(float))
        columns[f"{s}_n"] = total(rows[f"{s}_n"][keep]).astype(np.int64)
    x, y = total(rows["sx"][keep]) / count, total(rows["sy"][keep]) / count
    return ClusterTable(x, y, unique, columns)


def _matching(values: np.ndarray, allowed: tuple[str, ...]) -> np.ndarray:
    """Which values pass a filter (all of them when the filter is empty)."""
    if not allowed:
        return np.ones(len(values), dtype=bool)
    return np.isin(values.astype(str), list(allowed))
