"""The store protocol: what ingest publishes to and what the server reads from.

Two implementations stand behind it, the embedded GeoPackage (`stores.geopackage`) and PostGIS
(`stores.postgis`); the same contract tests run on both. Reads go through a `Snapshot`, one
published data version: a request takes one snapshot and every read it makes sees that version,
even if a new ingest publishes meanwhile.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from shapely.geometry.base import BaseGeometry

from tileserver.core.dataset import Dataset, Field, Layer, size_property
from tileserver.core.errors import NotFound
from tileserver.core.grid import BBox, Tile


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
    searchable: tuple[str, ...] = ()  # text fields with a hidden search key column (see `folded_column`)

    def field(self, name: str) -> Field | None:
        """The field called `name`, or None."""
        return next((f for f in self.fields if f.name == name), None)

    def size_property(self) -> str | None:
        """The numeric property ordering equally good search matches, largest first (see `SIZE_PROPERTIES`)."""
        return size_property(self.fields)

    @classmethod
    def from_meta(cls, entry: dict) -> CollectionInfo:
        """A collection as `collection_meta` described it in a version's metadata."""
        return cls(
            id=entry["id"],
            title=entry["title"],
            description=entry["description"],
            geometry_type=entry["geometry_type"],
            key=entry["key"],
            fields=tuple(Field(**f) for f in entry["fields"]),
            count=entry["count"],
            extent=BBox(*entry["extent"]),
            minzoom=entry["minzoom"],
            maxzoom=entry["maxzoom"],
            generalised=tuple(GeneralisedRange(*g) for g in entry["generalised"]),
            searchable=tuple(entry.get("searchable", ())),  # absent from versions published before it
        )


def collection_meta(layer: Layer, extent: Sequence[float]) -> dict:
    """A published layer's entry in the version metadata (JSON), read back by `CollectionInfo.from_meta`."""
    return {
        "id": layer.id,
        "title": layer.title,
        "description": layer.description,
        "geometry_type": layer.geometry_type,
        "key": layer.key,
        "fields": [asdict(f) for f in layer.fields],
        "count": len(layer),
        "extent": [float(v) for v in extent] if all(map(math.isfinite, extent)) else list(WORLD),
        "minzoom": layer.minzoom,
        "maxzoom": layer.maxzoom,
        "generalised": [[g.minzoom, g.maxzoom] for g in layer.generalised],
        "searchable": layer.searchable(),
    }


def public_meta(meta: dict) -> dict:
    """What `Snapshot.meta` offers of a version's metadata, copied once so a reader cannot change the rest.

    >>> public_meta({"cluster_maxzoom": 12, "cluster_cells": 16, "cluster_sums": [], "rasters": {}, "collections": []})
    {'cluster_maxzoom': 12, 'cluster_cells': 16, 'cluster_sums': [], 'rasters': {}}
    """
    return copy.deepcopy({key: meta[key] for key in ("cluster_maxzoom", "cluster_cells", "cluster_sums", "rasters")})


class VersionMeta:
    """The part of a snapshot both stores share: a version's metadata, read once when it is opened.

    Its `summaries` may come as JSON text, decoded on first use: both stores hand them over so.
    """

    def __init__(self, meta: dict):
        self._meta = meta
        self._public_meta = public_meta(meta)
        self._collections = {c["id"]: CollectionInfo.from_meta(c) for c in meta["collections"]}

    def collections(self) -> list[CollectionInfo]:
        """Every collection of this version, in published order."""
        return list(self._collections.values())

    def collection(self, name: str) -> CollectionInfo:
        """One collection's description, or NotFound."""
        info = self._collections.get(name)
        if info is None:
            raise NotFound(f"no collection {name[:100]!r}; see /collections")
        return info

    def catalogue(self) -> list[dict]:
        """The indicator catalogue this version was built with (a copy: styles may change it)."""
        return copy.deepcopy(self._meta["catalogue"])

    def summaries(self, level: str) -> Mapping[str, dict]:
        """Code -> the ingest's summary of each territory of `level` (empty for levels it did not summarise).

        Shared by every request that reads this version: callers read it and never change it.
        """
        return self._summaries.get(level, {})

    @cached_property
    def _summaries(self) -> dict:
        """Every level's summaries, decoded on the first sheet asked: a megabyte of JSON whose decoding
        held a worker's interpreter lock for 40 ms in the middle of the tile traffic when a version landed."""
        found = self._meta.get("summaries") or {}
        return json.loads(found) if isinstance(found, str) else found

    def meta(self) -> dict:
        """Cluster zoom, cells per tile side, indicators summed in clusters, rasters by id.

        Built once per version and shared by every request that reads it (raster tiles read it each
        time): callers read it and never change it.
        """
        return self._public_meta

    def query_many(self, queries: Sequence[FeatureQuery]) -> list[FeaturePage]:
        """Several queries, one after the other (a store where a query costs a round trip batches them)."""
        return [self.query(q) for q in queries]  # type: ignore[attr-defined]  # every snapshot has `query`


WORLD = BBox(-180.0, -90.0, 180.0, 90.0)  # the extent given to an empty collection


@dataclass(frozen=True)
class FeatureQuery:
    """A page of features: every filter is already parsed and in lon/lat (CRS84).

    `filter` is a pygeofilter AST; `equals` holds simple property equality filters, typed as the
    property's column holds them (the web layer types request strings: `params.equals`; each value
    list is an OR); `sortby` pairs a property with True for ascending; `q` holds text search terms
    (search keys, ORed; see `textsearch`), which order the page best match first unless `sortby` is given.
    """

    collection: str
    bbox: BBox | None = None
    equals: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    filter: Any = None
    properties: tuple[str, ...] | None = None
    sortby: tuple[tuple[str, bool], ...] = ()
    q: tuple[str, ...] = ()
    q_rank: int | None = None  # only the rows of this text search rank (see `textsearch`)
    limit: int = 10
    offset: int = 0
    count: bool = True  # False: the caller needs no `FeaturePage.matched` (None), so none is counted


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


# The school properties a tile can be limited by, one territory code each (`?code_departement=35`).
TERRITORY_FILTERS = ("code_commune", "code_epci", "code_departement", "code_academie", "code_region")


@dataclass(frozen=True)
class TileFilter:
    """Filters applied to schools before clustering (empty tuple = no filter).

    `territories` pairs a property of `TERRITORY_FILTERS` with a code, in that order; a school
    passes when it has every one of them.
    """

    types: tuple[str, ...] = ()
    statuts: tuple[str, ...] = ()
    territories: tuple[tuple[str, str], ...] = ()


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

    def collection(self, name: str) -> CollectionInfo:
        """One collection's description, or NotFound (a 404)."""
        ...

    def catalogue(self) -> list[dict]:
        """The indicator catalogue this version was built with."""
        ...

    def meta(self) -> dict:
        """Version-wide metadata: cluster zoom, cell count, raster list; shared, so read and never changed."""
        ...

    def summaries(self, level: str) -> Mapping[str, dict]:
        """Code -> the ingest's summary (`TerritorySummary.to_dict`) of each territory of a level; shared."""
        ...

    def query(self, q: FeatureQuery) -> FeaturePage:
        """Features matching a query, in a stable order (sortby, then key)."""
        ...

    def query_many(self, queries: Sequence[FeatureQuery]) -> list[FeaturePage]:
        """The pages of several small queries (the map's search asks every collection at once)."""
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

    def check_publish(self) -> Path:
        """Fail now, naming the store, if a version could not be published to it; else the folder for
        an ingest's scratch files, beside the store (a wrong URL then costs seconds, not a whole ingest)."""
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
