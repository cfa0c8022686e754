"""School clusters for the low zooms, computed once at ingest.

At zoom z each tile is cut into `cells` x `cells` squares and a school belongs to the square its
position falls in. A square lies in exactly one tile, so the clusters of a tile count every school
of that tile once, and a cluster never jumps when the neighbouring tile loads. Rows are kept per
(type, statut) so a tile filtered by type or statut is still exact: it just adds fewer rows up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tileserver.core.dataset import Clusters
from tileserver.core.tilecontent import cell_of

DEFAULT_CLUSTER_MAXZOOM = 12
DEFAULT_CELLS = 16


def build_clusters(
    x: np.ndarray,
    y: np.ndarray,
    types: Sequence[str],
    statuts: Sequence[str],
    values: Mapping[str, np.ndarray],
    *,
    maxzoom: int = DEFAULT_CLUSTER_MAXZOOM,
    cells: int = DEFAULT_CELLS,
) -> Clusters:
    """Group schools per zoom below `maxzoom`, cell, type and statut, with sums per indicator.

    `values` holds numeric indicators aligned with the schools (NaN = unknown); each gets
    `<id>_sum` and `<id>_n` (how many schools of the group have a value), so a style can show
    a mean or a share for any set of groups.
    """
    type_names, type_idx = np.unique(np.asarray(types, dtype=object).astype(str), return_inverse=True)
    statut_names, statut_idx = np.unique(np.asarray(statuts, dtype=object).astype(str), return_inverse=True)
    parts = [
        _zoom_groups(z, x, y, type_idx, statut_idx, len(statut_names), values, cells) for z in range(maxzoom)
    ]
    columns = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]} if parts else {}
    if columns:
        columns["type"] = type_names[columns.pop("type_idx")]
        columns["statut"] = statut_names[columns.pop("statut_idx")]
    return Clusters(columns=columns, sums=list(values))


def _zoom_groups(z, x, y, type_idx, statut_idx, n_statuts, values, cells) -> dict[str, np.ndarray]:
    """The groups of one zoom level: one row per distinct (cell, type, statut)."""
    cx, cy = cell_of(x, y, z, cells)
    side = (1 << z) * cells
    cell = cx * side + cy
    key = (cell * (type_idx.max(initial=0) + 1) + type_idx) * n_statuts + statut_idx
    unique, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    first = np.zeros(len(unique), dtype=np.int64)
    first[inverse[::-1]] = np.arange(len(key))[::-1]  # any member locates its group's cell
    out = {
        "z": np.full(len(unique), z, dtype=np.int64),
        "cx": cx[first],
        "cy": cy[first],
        "type_idx": type_idx[first],
        "statut_idx": statut_idx[first],
        "n": counts.astype(np.int64),
        "sx": np.bincount(inverse, weights=x, minlength=len(unique)),
        "sy": np.bincount(inverse, weights=y, minlength=len(unique)),
    }
    for name, v in values.items():
        known = ~np.isnan(v)
        out[f"{name}_sum"] = np.bincount(inverse[known], weights=v[known], minlength=len(unique))
        out[f"{name}_n"] = np.bincount(inverse[known], minlength=len(unique)).astype(np.int64)
    return out
