"""Write the server's vector tiles into a PMTiles v3 archive, for static hosting or offline use.

The tiles are the very bytes the server sends (`Snapshot.tile`), gzipped. Only tiles that can
hold a feature are made: at each zoom, those covering a feature's bounding box. Tiles are written
in PMTiles id order (the archive is then "clustered") and made by a pool of threads.
"""

from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from pmtiles.tile import Compression, TileType, tileid_to_zxy, zxy_to_tileid
from pmtiles.writer import Writer

from tileserver.core import tilesets
from tileserver.core.errors import BadRequest
from tileserver.core.grid import Tile, tile_size
from tileserver.core.mercator import ORIGIN, to_mercator
from tileserver.core.store import CollectionInfo, FeatureQuery, Snapshot, TileFilter

log = logging.getLogger("ecarto.seed")
_BATCH = 4096  # tiles handed to the thread pool at once


@dataclass
class SeedReport:
    """What a seed wrote: tiles and bytes (gzipped) per zoom."""

    path: str
    tiles: dict[int, int] = field(default_factory=dict)
    bytes: dict[int, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line per zoom, then the total."""
        lines = [f"zoom {z:2d}: {self.tiles[z]:8d} tiles {self.bytes[z] / 1e6:9.1f} MB" for z in sorted(self.tiles)]
        lines.append(f"{self.path}: {sum(self.tiles.values())} tiles, {sum(self.bytes.values()) / 1e6:.1f} MB")
        return "\n".join(lines)


def seed(
    snapshot: Snapshot,
    output: Path,
    *,
    layers: Sequence[str] | None = None,
    minzoom: int | None = None,
    maxzoom: int | None = None,
    workers: int | None = None,
) -> SeedReport:
    """Write every non-empty tile of the layers (all collections by default) between two zooms."""
    infos = _collections(snapshot, layers)
    low, high = tilesets.zoom_range(infos)
    minzoom = low if minzoom is None else minzoom
    maxzoom = high if maxzoom is None else maxzoom
    if not 0 <= minzoom <= maxzoom <= 24:
        raise BadRequest(f"zooms {minzoom} to {maxzoom}: need 0 <= minzoom <= maxzoom <= 24")
    names = [i.id for i in infos]
    boxes = np.concatenate([feature_boxes(snapshot, info) for info in infos])
    ids = np.unique(np.concatenate([candidates(boxes, z) for z in range(minzoom, maxzoom + 1)]))
    log.info("%d candidate tiles, zooms %d to %d", len(ids), minzoom, maxzoom)
    report = SeedReport(str(output))
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".tmp")
    try:
        with open(partial, "wb") as f:
            writer = Writer(f)
            try:
                _write(writer, _made(snapshot, names, ids, workers or os.cpu_count() or 1), report)
                if not report.tiles:
                    raise BadRequest(f"no tile holds a feature of {', '.join(names)} in zooms {minzoom} to {maxzoom}")
                writer.finalize(_header(infos, minzoom), _metadata(snapshot, infos, minzoom, maxzoom))
            finally:
                writer.tile_f.close()  # the writer's scratch file, left open when it is not finalized
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return report


def _write(writer: Writer, tiles: Iterator[tuple[int, bytes]], report: SeedReport) -> None:
    """Add the tiles to the archive, counting them per zoom."""
    for tile_id, data in tiles:
        z = tileid_to_zxy(tile_id)[0]
        writer.write_tile(tile_id, data)
        report.tiles[z] = report.tiles.get(z, 0) + 1
        report.bytes[z] = report.bytes.get(z, 0) + len(data)


def _collections(snapshot: Snapshot, layers: Sequence[str] | None) -> list[CollectionInfo]:
    """The collections to seed, in the order given (all by default)."""
    known = {info.id: info for info in snapshot.collections()}
    unknown = [name for name in layers or () if name not in known]
    if unknown:
        raise BadRequest(f"no collection {unknown[0]!r}; known: {', '.join(known)}")
    return [known[name] for name in layers] if layers else list(known.values())


def feature_boxes(snapshot: Snapshot, info: CollectionInfo) -> np.ndarray:
    """The EPSG:3857 bounding box of every feature of a collection, one row each."""
    page = snapshot.query(FeatureQuery(info.id, properties=(), limit=max(info.count, 1)))
    lnglat = shapely.bounds(np.array([f.geometry for f in page.features], dtype=object)).reshape(-1, 4)
    lnglat = lnglat[np.isfinite(lnglat).all(axis=1)]
    corners = [to_mercator(*p) for row in lnglat.tolist() for p in (row[:2], row[2:])]
    return np.array(corners, dtype=float).reshape(-1, 4)


def candidates(boxes: np.ndarray, z: int) -> np.ndarray:
    """The PMTiles ids of the tiles of zoom z that intersect any of the boxes, in id order.

    >>> from tileserver.core.grid import BBox, bbox_to_bounds
    >>> b = bbox_to_bounds(BBox(2.0, 48.0, 3.0, 49.0))
    >>> [tileid_to_zxy(int(i)) for i in candidates(np.array([b]), 6)]
    [(6, 32, 22), (6, 32, 21)]
    """
    x, y = touched(boxes, z)
    cells = np.unique(x * (1 << z) + y)
    return np.array(sorted(zxy_to_tileid(z, int(c) >> z, int(c) & ((1 << z) - 1)) for c in cells), dtype=np.int64)


def touched(boxes: np.ndarray, z: int) -> tuple[np.ndarray, np.ndarray]:
    """Column and row of every (box, tile) pair where a box (left, bottom, right, top) meets a tile of zoom z.

    >>> [a.tolist() for a in touched(np.array([[0.0, 0.0, 1.0, 1.0], [-1.0, -1.0, 1.0, 1.0]]), 1)]
    [[1, 1, 0, 1, 0, 1], [0, 1, 0, 0, 1, 1]]
    """
    size = tile_size(z)
    last = (1 << z) - 1
    x0 = np.clip(np.floor((boxes[:, 0] + ORIGIN) / size), 0, last).astype(np.int64)
    x1 = np.clip(np.floor((boxes[:, 2] + ORIGIN) / size), 0, last).astype(np.int64)
    y0 = np.clip(np.floor((ORIGIN - boxes[:, 3]) / size), 0, last).astype(np.int64)
    y1 = np.clip(np.floor((ORIGIN - boxes[:, 1]) / size), 0, last).astype(np.int64)
    width, height = x1 - x0 + 1, y1 - y0 + 1
    count = width * height
    box = np.repeat(np.arange(len(boxes)), count)
    k = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    return x0[box] + k % width[box], y0[box] + k // width[box]


def _made(snapshot: Snapshot, names: list[str], ids: np.ndarray, workers: int) -> Iterator[tuple[int, bytes]]:
    """(id, gzipped tile) of every non-empty tile, in id order, made by `workers` threads."""

    def make(tile_id: int) -> bytes:
        tile = Tile(*tileid_to_zxy(tile_id))
        data = snapshot.tile(tile, layers=names, filters=TileFilter())
        return gzip.compress(data, 6, mtime=0) if data else b""

    with ThreadPoolExecutor(workers) as pool:
        for start in range(0, len(ids), _BATCH):  # a batch at a time: a national seed has millions of tiles
            batch = ids[start : start + _BATCH].tolist()
            for tile_id, data in zip(batch, pool.map(make, batch), strict=True):
                if data:
                    yield tile_id, data


def _header(infos: Sequence[CollectionInfo], minzoom: int) -> dict:
    """The archive header fields the writer does not compute."""
    box = tilesets.extent(infos)
    lon, lat, _ = tilesets.center(box, minzoom)
    e7 = 10_000_000
    return {
        "tile_type": TileType.MVT,
        "tile_compression": Compression.GZIP,
        "min_lon_e7": int(box.west * e7),
        "min_lat_e7": int(box.south * e7),
        "max_lon_e7": int(box.east * e7),
        "max_lat_e7": int(box.north * e7),
        "center_zoom": minzoom,
        "center_lon_e7": int(lon * e7),
        "center_lat_e7": int(lat * e7),
    }


def _metadata(snapshot: Snapshot, infos: Sequence[CollectionInfo], minzoom: int, maxzoom: int) -> dict:
    """The archive's JSON metadata: the TileJSON fields that describe layers, and the data version."""
    doc = tilesets.tilejson(infos, tiles_url="", sums=snapshot.meta()["cluster_sums"],
                            name="eCarto: " + ",".join(i.id for i in infos))
    kept = ("name", "description", "bounds", "center", "vector_layers")
    return {**{key: doc[key] for key in kept}, "minzoom": minzoom, "maxzoom": maxzoom, "format": "pbf",
            "version": snapshot.version.id}
