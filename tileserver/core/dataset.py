"""What an ingest produces and a store publishes: layers, their schema, and the tile pyramids.

Everything a request needs that can be computed once (reprojection to EPSG:3857, per-zoom
generalisation, point clusters) is computed at ingest and carried here, so the serving path
only selects and encodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

FieldType = Literal["string", "integer", "number", "boolean"]

SCHOOLS = "etablissements"
TERRITORY_LEVELS = ("regions", "academies", "departements", "epci", "communes")
COLLECTIONS = (SCHOOLS, *TERRITORY_LEVELS)

# School types kept as their own count (`n_<type>`) on clusters and territories; others are `autre`.
COUNTED_TYPES = ("ecole", "college", "lycee", "autre")


@dataclass(frozen=True)
class Field:
    """One property of a collection, as every API describes it."""

    name: str
    type: FieldType
    title: str = ""
    unit: str = ""
    theme: str = ""
    description: str = ""


@dataclass
class Generalised:
    """Territory geometries simplified for a zoom range, in EPSG:3857 (aligned with `Layer.ids`)."""

    minzoom: int
    maxzoom: int
    geometries: np.ndarray  # shapely geometries, EPSG:3857; None where it vanished


@dataclass
class Layer:
    """One collection's features, column-wise; geometries in EPSG:4326 (lon/lat)."""

    id: str
    title: str
    description: str
    geometry_type: Literal["Point", "MultiPolygon"]
    key: str  # the property that identifies a feature: `uai` or `code`
    fields: list[Field]
    ids: list[str]
    columns: dict[str, list]  # field name -> values aligned with ids (None = unknown)
    geometries: np.ndarray  # shapely geometries, EPSG:4326
    minzoom: int = 0
    maxzoom: int = 14
    generalised: list[Generalised] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def field(self, name: str) -> Field:
        """The field called `name` (KeyError if absent)."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


@dataclass
class Clusters:
    """Pre-aggregated school clusters, one row per (zoom, cell, type, statut) group.

    A cell is a square of the grid `cluster_cells` times finer than the zoom's tiles, so every
    cell lies in exactly one tile: a tile's clusters count each of its schools exactly once, and
    the same school lands in the same cell whichever tile asks. Sums (not means) are stored so
    groups can be added up after filtering by type or statut.
    """

    columns: dict[str, np.ndarray]  # z, cx, cy, type, statut, n, sx, sy, <indicator>_sum, <indicator>_n
    sums: list[str]  # indicator ids carrying `<id>_sum` and `<id>_n`

    def __len__(self) -> int:
        return len(self.columns["z"])


@dataclass
class Dataset:
    """A complete data version, ready to publish."""

    layers: dict[str, Layer]
    clusters: Clusters
    cluster_maxzoom: int  # clusters below this zoom, single schools from it on
    cluster_cells: int  # cells per tile side
    catalogue: list[dict]  # the indicator catalogue, as published (drives styles and legends)
    report: dict  # the ingest report (see ingest.report)
    rasters: dict[str, dict] = field(default_factory=dict)  # raster id -> metadata incl. local path
    summaries: dict[str, dict[str, dict]] = field(default_factory=dict)  # level -> code -> what its sheet compares
