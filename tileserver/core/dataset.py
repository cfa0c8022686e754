"""What an ingest produces and a store publishes: layers, their schema, and the tile pyramids.

Everything a request needs that can be computed once (reprojection to EPSG:3857, per-zoom
generalisation, point clusters) is computed at ingest and carried here, so the serving path
only selects and encodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tileserver.core.textfold import STORED_FOLDS, search_key

FieldType = Literal["string", "integer", "number", "boolean"]

SCHOOLS = "etablissements"
TERRITORY_LEVELS = ("regions", "academies", "departements", "epci", "communes")
COLLECTIONS = (SCHOOLS, *TERRITORY_LEVELS)

# Text properties stored again as their `textfold.search_key`, hidden from the APIs and indexed for
# `LIKE` (prefix and infix), and as each of `textfold.STORED_FOLDS`: what text search (`q=`, `/search`)
# and folded CQL2 comparisons read.
SEARCHABLE = ("nom", "nom_commune")
# The property giving a feature's size, to order search results that match equally well (first present).
SIZE_PROPERTIES = ("population", "etablissements", "effectif")

# School types kept as their own count (`n_<type>`) on clusters and territories; others are `autre`.
COUNTED_TYPES = ("ecole", "college", "lycee", "autre")


def size_property(fields: list[Field] | tuple[Field, ...]) -> str | None:
    """The numeric field that orders equally good search matches, largest first (see `SIZE_PROPERTIES`).

    >>> size_property([Field("nom", "string"), Field("etablissements", "integer")])
    'etablissements'
    """
    numeric = {f.name for f in fields if f.type in ("integer", "number")}
    return next((name for name in SIZE_PROPERTIES if name in numeric), None)


def folded_column(name: str) -> str:
    """The hidden column holding the search key of the text property `name`.

    >>> folded_column("nom")
    'nom_folded'
    """
    return f"{name}_folded"


def stored_column(name: str, folds: tuple[str, ...]) -> str:
    """The hidden column holding the text property `name` folded by `folds` (see `textfold.STORED_FOLDS`).

    >>> stored_column("nom", ("casei", "accenti"))
    'nom_casei_accenti'
    """
    return "_".join((name, *folds))


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

    def searchable(self) -> list[str]:
        """The text fields stored with a hidden, indexed search key (see `SEARCHABLE`)."""
        return [f.name for f in self.fields if f.name in SEARCHABLE and f.type == "string"]

    def hidden_texts(self) -> dict[str, list[str | None]]:
        """The hidden text columns of the searchable fields, with their values: search keys, stored folds."""
        hidden = {}
        for name in self.searchable():
            values = [None if v is None else str(v) for v in self.columns[name]]
            hidden[folded_column(name)] = [None if v is None else search_key(v) for v in values]
            for folds, fold in STORED_FOLDS.items():
                hidden[stored_column(name, folds)] = [None if v is None else fold(v) for v in values]
        return hidden

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
