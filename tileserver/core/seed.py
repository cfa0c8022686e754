"""Write the server's vector tiles into a PMTiles v3 archive or a `{z}/{x}/{y}.mvt` folder, for static hosting.

The tiles are the very bytes the server sends (`Snapshot.tile`). Only the tiles that can hold a
feature are made (`coverage`), by one process per core: each opens the store itself (with the
`opener` it is given, a picklable function such as `partial(open_store, url, settings)`) and checks
it still serves the version being seeded. Tiles come back in PMTiles id order, so the archive is
"clustered", and the writer stores each distinct tile once (deduplicated).
"""

from __future__ import annotations

import gzip
import logging
import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from pathlib import Path

from pmtiles.tile import Compression, TileType, tileid_to_zxy
from pmtiles.writer import Writer
from tqdm import tqdm

from tileserver.core import coverage, tilesets
from tileserver.core.errors import BadRequest, Unavailable
from tileserver.core.grid import Tile
from tileserver.core.store import CollectionInfo, Snapshot, Store, TileFilter

log = logging.getLogger("ecarto.seed")
_BATCH = 64  # tiles a process makes per task: small enough to keep both busy to the end
_worker: tuple[Store, Snapshot | None] | None = None  # a seed process's store and snapshot, opened once
Asked = tuple[int, int, int, int]  # a tile to make: PMTiles id, zoom, column, row
Made = tuple[int, int, bytes]  # a tile made: PMTiles id, zoom, bytes


class Format(StrEnum):
    """What a seed writes."""

    PMTILES = "pmtiles"  # one archive, tiles gzipped
    DIR = "dir"  # one plain `.mvt` file per tile, under `{z}/{x}/`


@dataclass
class SeedReport:
    """What a seed wrote: tiles and bytes (as written) per zoom, and how many tiles were made but came out empty."""

    path: str
    tiles: dict[int, int] = field(default_factory=dict)
    bytes: dict[int, int] = field(default_factory=dict)
    empty: int = 0

    def summary(self) -> str:
        """One line per zoom, then the total."""
        lines = [f"zoom {z:2d}: {self.tiles[z]:8d} tiles {self.bytes[z] / 1e6:9.1f} MB" for z in sorted(self.tiles)]
        lines.append(f"{self.path}: {sum(self.tiles.values())} tiles, {sum(self.bytes.values()) / 1e6:.1f} MB"
                     f" ({self.empty} made empty)")
        return "\n".join(lines)


def seed(
    opener: Callable[[], Store],
    output: Path,
    *,
    layers: Sequence[str] | None = None,
    minzoom: int | None = None,
    maxzoom: int | None = None,
    jobs: int | None = None,
    output_format: Format = Format.PMTILES,
    progress: bool = False,
) -> SeedReport:
    """Write every tile of the layers (all collections by default) that holds something, between two zooms."""
    store = opener()
    try:
        snapshot = store.current()
        if snapshot is None:
            raise Unavailable(f"nothing is published in {store.url}: run `ecarto ingest` first")
        infos = _collections(snapshot, layers)
        minzoom, maxzoom = _zooms(infos, minzoom, maxzoom)
        asked = [(i, zoom.z, x, y) for zoom in coverage.covered(snapshot, infos, minzoom, maxzoom).values()
                 for i, x, y in zip(zoom.ids.tolist(), zoom.x.tolist(), zoom.y.tolist(), strict=True)]
        log.info("%d tiles can hold a feature, zooms %d to %d", len(asked), minzoom, maxzoom)
        names = [i.id for i in infos]
        with tqdm(total=len(asked), unit="tile", disable=not progress, smoothing=0.05) as bar:
            gzipped = output_format is Format.PMTILES
            tiles = _made(opener, snapshot, names, asked, jobs or os.cpu_count() or 1, gzipped, bar)
            if output_format is Format.DIR:
                return _write_dir(output, tiles)
            return _write_pmtiles(output, tiles, snapshot, infos, minzoom, maxzoom)
    finally:
        store.close()


def _zooms(infos: Sequence[CollectionInfo], minzoom: int | None, maxzoom: int | None) -> tuple[int, int]:
    """The zooms to seed: those asked, else the layers' range."""
    low, high = tilesets.zoom_range(infos)
    minzoom = low if minzoom is None else minzoom
    maxzoom = high if maxzoom is None else maxzoom
    if not 0 <= minzoom <= maxzoom <= 24:
        raise BadRequest(f"zooms {minzoom} to {maxzoom}: need 0 <= minzoom <= maxzoom <= 24")
    return minzoom, maxzoom


def _collections(snapshot: Snapshot, layers: Sequence[str] | None) -> list[CollectionInfo]:
    """The collections to seed, in the order given (all by default)."""
    known = {info.id: info for info in snapshot.collections()}
    unknown = [name for name in layers or () if name not in known]
    if unknown:
        raise BadRequest(f"no collection {unknown[0]!r}; known: {', '.join(known)}")
    return [known[name] for name in layers] if layers else list(known.values())


def _made(opener: Callable[[], Store], snapshot: Snapshot, names: list[str], asked: list[Asked], jobs: int,
          gzipped: bool, bar: tqdm) -> Iterator[Made]:
    """(id, zoom, tile) of every tile asked, b'' when empty, in id order, made by `jobs` processes (here when 1)."""
    batches = [asked[i : i + _BATCH] for i in range(0, len(asked), _BATCH)]
    if jobs == 1:
        made = (_make(snapshot, names, batch, gzipped) for batch in batches)
        yield from _counted(made, bar)
        return
    context = multiprocessing.get_context("spawn")  # a fork would share the parent's database connections
    task = partial(_make_in_worker, opener, snapshot.version.id, names, gzipped)
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        yield from _counted(pool.map(task, batches), bar)


def _counted(made: Iterator[list[Made]], bar: tqdm) -> Iterator[Made]:
    """The tiles of each batch, the bar moved by the batch's size (empty tiles included)."""
    for batch in made:
        bar.update(len(batch))
        yield from batch


def _make_in_worker(opener: Callable[[], Store], version_id: str, names: list[str], gzipped: bool,
                    batch: list[Asked]) -> list[Made]:
    """A batch of tiles made in a seed process, which opens the store on its first batch.

    The process refuses to go on if the store serves another version by then: the archive would mix two.
    """
    global _worker
    if _worker is None:
        store = opener()
        _worker = (store, store.current())
    snapshot = _worker[1]
    if snapshot is None or snapshot.version.id != version_id:
        raise Unavailable(f"version {version_id} was replaced while seeding it: run the seed again")
    return _make(snapshot, names, batch, gzipped)


def _make(snapshot: Snapshot, names: list[str], batch: list[Asked], gzipped: bool) -> list[Made]:
    """(id, zoom, tile bytes, gzipped if asked) of each tile of a batch, b'' for an empty one."""
    made = []
    for tile_id, z, x, y in batch:
        data = snapshot.tile(Tile(z, x, y), layers=names, filters=TileFilter())
        made.append((tile_id, z, gzip.compress(data, 6, mtime=0) if data and gzipped else data))
    return made


def _write_pmtiles(output: Path, tiles: Iterator[Made], snapshot: Snapshot,
                   infos: Sequence[CollectionInfo], minzoom: int, maxzoom: int) -> SeedReport:
    """Write the archive beside `output`, then rename it there: a failed seed leaves no file."""
    report = SeedReport(str(output))
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".tmp")
    try:
        with open(partial, "wb") as f:
            writer = Writer(f)
            try:
                for tile_id, data in _kept(tiles, report):
                    writer.write_tile(tile_id, data)
                _check_not_empty(report, infos, minzoom, maxzoom)
                writer.finalize(_header(infos, minzoom), _metadata(snapshot, infos, minzoom, maxzoom))
            finally:
                writer.tile_f.close()  # the writer's scratch file, left open when it is not finalized
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return report


def _write_dir(output: Path, tiles: Iterator[Made]) -> SeedReport:
    """Write `{z}/{x}/{y}.mvt` files into a new folder, renamed onto `output` (replacing it) once complete."""
    report = SeedReport(str(output))
    partial = output.with_name(output.name + ".tmp")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        for tile_id, data in _kept(tiles, report):
            z, x, y = tileid_to_zxy(tile_id)  # a few folders' worth: the cost of this lookup does not matter
            folder = partial / str(z) / str(x)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{y}.mvt").write_bytes(data)
        if not report.tiles:
            raise BadRequest("no tile holds a feature of these layers in these zooms")
        shutil.rmtree(output, ignore_errors=True)
        os.replace(partial, output)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return report


def _kept(tiles: Iterator[Made], report: SeedReport) -> Iterator[tuple[int, bytes]]:
    """(id, tile) of the tiles that are not empty, counted per zoom (the empty ones counted apart)."""
    for tile_id, z, data in tiles:
        if not data:
            report.empty += 1
            continue
        report.tiles[z] = report.tiles.get(z, 0) + 1
        report.bytes[z] = report.bytes.get(z, 0) + len(data)
        yield tile_id, data


def _check_not_empty(report: SeedReport, infos: Sequence[CollectionInfo], minzoom: int, maxzoom: int) -> None:
    if not report.tiles:
        names = ", ".join(i.id for i in infos)
        raise BadRequest(f"no tile holds a feature of {names} in zooms {minzoom} to {maxzoom}")


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
