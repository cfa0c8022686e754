"""The store protocol: what ingest publishes to and what the server reads from.

Two implementations stand behind it, the embedded GeoPackage (`stores.geopackage`) and PostGIS
(`stores.postgis`); the same contract tests run on both. Reads go through a `Snapshot`, one
published data version: a request takes one snapshot and every read it makes sees that version,
even if a new ingest publishes meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shapely.geometry.base import BaseGeometry

from tileserver.dataset import Dataset, Field
from tileserver.grid import BBox, Tile


@dataclass(frozen=True)
class GeneralisedRange:
    """A zoom range served from one generalisation of a territory layer."""

    minzoom: int
    maxzoom: int


@dataclass(frozen=True)
class CollectionInfo:
    """A published collection, as the APIs describe it."""

    id: str
    title: str
    description: str
    geometry_type: str
    key: str
    fields: tuple[Field, ...]
    count: int
    extent: BBox
    minzoom: int
    maxzoom: int
    generalised: tuple[GeneralisedRange, ...] = ()

    def field(self, name: str) -> Field | None:
        """The field called `name`, or None."""
        return next((f for f in self.fields if f.name == name), None)


@dataclass(frozen=True)
class FeatureQuery:
    """A page of features: every filter is already parsed and in lon/lat (CRS84).

    `filter` is a pygeofilter AST; `equals` holds simple property equality filters (each value
    list is an OR); `sortby` pairs a property with True for ascending.
    """

    collection: str
    bbox: BBox | None = None
    equals: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    filter: Any = None
    properties: tuple[str, ...] | None = None
    sortby: tuple[tuple[str, bool], ...] = ()
    limit: int = 10
    offset: int = 0


@dataclass
class Feature:
    """One feature: geometry in lon/lat."""

    id: str
    geometry: BaseGeometry | None
    properties: dict[str, Any]


@dataclass
class FeaturePage:
    """The features of a query (an iterator, so big pages stream) and how many matched in all."""

    features: Iterator[Feature]
    matched: int | None


@dataclass(frozen=True)
class TileFilter:
    """Filters applied to schools before clustering (empty tuple = no filter)."""

    types: tuple[str, ...] = ()
    statuts: tuple[str, ...] = ()


@dataclass(frozen=True)
class VersionInfo:
    """One published data version."""

    id: str
    created: str
    report: dict = field(default_factory=dict)


class Snapshot(Protocol):
    """Read access to one published data version."""

    version: VersionInfo

    def collections(self) -> list[CollectionInfo]:
        """Every collection of this version."""
        ...

    def catalogue(self) -> list[dict]:
        """The indicator catalogue this version was built with."""
        ...

    def meta(self) -> dict:
        """Version-wide metadata: cluster zoom, cell count, raster list."""
        ...

    def query(self, q: FeatureQuery) -> FeaturePage:
        """Features matching a query, in a stable order (sortby, then key)."""
        ...

    def get(self, collection: str, fid: str) -> Feature | None:
        """One feature by its key, or None."""
        ...

    def tile(self, tile: Tile, *, layers: Sequence[str], filters: TileFilter) -> bytes:
        """One Mapbox Vector Tile holding the named layers (b'' when empty)."""
        ...


class Store(Protocol):
    """A place where data versions are published and read."""

    url: str

    def publish(self, dataset: Dataset) -> VersionInfo:
        """Write a new version and make it current in one atomic step."""
        ...

    def current(self) -> Snapshot | None:
        """The version being served now (None before any ingest); cheap, call per request."""
        ...

    def versions(self) -> list[VersionInfo]:
        """Published versions, newest first, with their reports."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
