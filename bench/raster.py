"""Raster tiles per second, cold (read, colour, encode) and warm (from the tile cache), on a national density.

The raster is built the way the ingest builds it: the synthetic national school directory of
ECARTO_DATA (`../shared/data` by default) through `ingest.rasters.build_rasters`, masked by the real
départements. Tiles are asked through the Flask app at zooms 5 to 12 around randomly drawn schools,
so they fall where people look. Cold means the tile cache is off, so each request opens the COG,
warps an overview and encodes a PNG (the file itself is in the OS page cache, as on a server that
runs); warm means every tile is already in the cache. The target: cold p95 under 100 ms. One
thread asks one tile at a time, so tiles per second are per processor.

Run alone: `.venv/bin/python -m bench.raster`; `run()` returns the figures for `python -m bench`.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest.manifest import Manifest
from ingest.rasters import RasterFiles, build_rasters
from ingest.report import Report
from ingest.schools import Schools, read_schools
from ingest.territories import read_territories
from tileserver.core.dataset import Layer
from tileserver.core.grid import Tile, tile_at
from tileserver.core.mercator import to_mercator
from tileserver.core.settings import Settings
from tileserver.core.store import VersionInfo
from tileserver.web.app import create_app

DATA = Path(os.environ.get("ECARTO_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
SCHOOLS = DATA / "synthetic" / "annuaire-education-synthetique.csv.gz"
DEPARTEMENTS = DATA / "boundaries-2018" / "departements-avec-outre-mer.geojson"
RASTER = "densite_etablissements"
ZOOMS = (5, 12)


@dataclass
class _Snapshot:
    version: VersionInfo
    rasters: dict

    def meta(self) -> dict:
        return {"rasters": self.rasters}


class RasterOnlyStore:
    """A store whose one version holds nothing but rasters: all the raster routes read."""

    url = "bench://raster"

    def __init__(self, rasters: dict):
        self._snapshot = _Snapshot(VersionInfo("bench", ""), rasters)

    def current(self) -> _Snapshot:
        return self._snapshot

    def versions(self) -> list[VersionInfo]:
        return [self._snapshot.version]

    def close(self) -> None:
        """Nothing to release."""


def national_density() -> tuple[Schools, RasterFiles, float]:
    """The synthetic schools and their density surfaces, with the seconds the surfaces took."""
    report = Report()
    schools = read_schools(SCHOOLS, report=report.dataset("schools", str(SCHOOLS)))
    deps = read_territories("departements", DEPARTEMENTS, report=report.dataset("departements", str(DEPARTEMENTS)))
    land = {"departements": Layer("departements", "", "", "MultiPolygon", "code", [], list(deps.codes), {},
                                  deps.geometries)}
    start = time.perf_counter()
    scratch = Path(__file__).resolve().parents[1] / "var" / "bench"
    files = build_rasters(schools, {}, Manifest({}, [], [], "bench"), land, _no_fetch, report, scratch)
    return schools, files, time.perf_counter() - start


def sample_tiles(schools: Schools, n: int, seed: int = 2026) -> list[Tile]:
    """n distinct tiles at zooms 5 to 12, each holding a randomly drawn school."""
    rng = np.random.default_rng(seed)
    tiles: set[Tile] = set()
    while len(tiles) < n:
        i = int(rng.integers(len(schools)))
        x, y = to_mercator(float(schools.lon[i]), float(schools.lat[i]))
        tiles.add(tile_at(x, y, int(rng.integers(ZOOMS[0], ZOOMS[1] + 1))))
    return sorted(tiles)


def measure(client, urls: list[str]) -> dict:
    """Tiles per second, latency percentiles and processor time per tile of one sequential pass.

    On a shared machine the wall-clock figures include waiting for a processor; the processor time
    per tile does not.
    """
    times = []
    start, cpu = time.perf_counter(), time.process_time()
    for url in urls:
        begin = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - begin)
        if response.status_code not in (200, 204):
            raise RuntimeError(f"{url}: HTTP {response.status_code} {response.get_data(as_text=True)[:200]}")
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    ms = np.array(times) * 1000
    return {"tiles": len(urls), "tiles_per_s": round(len(urls) / elapsed, 1),
            "cpu_ms_per_tile": round(cpu * 1000 / len(urls), 2),
            "p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2),
            "max_ms": round(float(ms.max()), 2)}


def run(n: int = 500, fmt: str = "png") -> dict:
    """Build the national density, then time a cold and a warm pass over the same n tiles."""
    schools, files, build_seconds = national_density()
    urls = [f"/raster/{RASTER}/{t.z}/{t.x}/{t.y}.{fmt}" for t in sample_tiles(schools, n)]
    store = RasterOnlyStore(dict(files))
    cold_app = create_app(Settings(cache_bytes=0), store=store)
    warm_app = create_app(Settings(), store=store)
    cold = measure(cold_app.test_client(), urls)
    warm_client = warm_app.test_client()
    measure(warm_client, urls)
    warm = measure(warm_client, urls)
    meta = files[RASTER]
    return {
        "raster": {"id": RASTER, "width": meta["width"], "height": meta["height"], "maxzoom": meta["maxzoom"],
                   "bytes": Path(meta["path"]).stat().st_size, "surfaces_built": len(files),
                   "build_seconds": round(build_seconds, 1)},
        "format": fmt, "cold": cold, "warm": warm, "target_cold_p95_ms": 100,
        "cold_p95_ok": cold["p95_ms"] < 100,
    }


def _no_fetch(url: str) -> Path:
    raise RuntimeError(f"the benchmark fetches nothing ({url})")


def main() -> None:
    print(json.dumps(run(), indent=2))


if __name__ == "__main__":
    main()
