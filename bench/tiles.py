"""Vector tiles on the national data, per store: sizes against the budget, cold and warm speed per zoom band.

- sizes: every tile of zooms 0-8 that can hold a feature; from zoom 9 on, a random draw of those
  tiles plus the ones touched by the most features (the heaviest), so the maximum is a real one;
- encode: each band's tiles made once by `Snapshot.tile` in this process, one at a time (what a
  cache miss costs, without HTTP);
- served: our server started as the Procfile runs it, each band's tiles asked once over 32
  connections (cold: every worker's cache starts empty), then wrk with 32 connections cycling
  through them once every worker has them cached (warm).

Every tile holds every layer (`LAYERS`), the heaviest request a map makes. `run` is what
`python -m bench` calls; `python -m bench.tiles --database NAME=URL ...` runs it alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from bench.load import one_pass, wrk
from bench.servers import start_ours
from bench.workload import BANDS
from tileserver.core.coverage import feature_boxes, touched
from tileserver.core.dataset import COLLECTIONS, SCHOOLS
from tileserver.core.grid import Tile, tile_at
from tileserver.core.settings import Settings
from tileserver.core.store import Snapshot, TileFilter
from tileserver.core.stores import open_store

LAYERS = COLLECTIONS
BUDGET_KB = 500
EXHAUSTIVE_UP_TO = 8  # zooms measured tile by tile; above, a sample
ROOT = Path(__file__).resolve().parents[1]


def run(stores: Mapping[str, str], *, work: Path = ROOT / "var" / "bench", quick: bool = False,
        seed: int = 2026, say=print) -> dict:
    """Sizes, encode speed and served speed of each store (name -> database), as one JSON-able dict."""
    sample = 60 if quick else 300
    per_band = 60 if quick else 200
    results: dict = {"layers": list(LAYERS), "budget_kb": BUDGET_KB, "stores": {}}
    for name, database in stores.items():
        say(f"{name}: {database}")
        store = open_store(database, Settings(database=database))
        try:
            snapshot = store.current()
            if snapshot is None:
                raise RuntimeError(f"nothing is published in {database}")
            found = {"version": snapshot.version.id, "sizes": sizes(snapshot, LAYERS, sample=sample, seed=seed)}
            say(size_table(found["sizes"]))
            bands = {band: band_tiles(snapshot, zooms, per_band, seed) for band, zooms in BANDS.items()}
            found["encode"] = {band: encode_speed(snapshot, LAYERS, tiles) for band, tiles in bands.items()}
        finally:
            store.close()
        found["served"] = served(name, database, bands, work=work, seconds=3 if quick else 8)
        say(speed_table(found))
        results["stores"][name] = found
    return results


def sizes(snapshot: Snapshot, layers: Sequence[str], *, sample: int = 300, seed: int = 2026,
          zooms: Sequence[int] = range(15)) -> dict[int, dict]:
    """Per zoom: tiles measured and non-empty, p50 and p95 size of the non-empty ones, the largest (KB) and where."""
    rng = np.random.default_rng(seed)
    boxes = np.concatenate([feature_boxes(snapshot, info) for info in snapshot.collections() if info.id in layers])
    out = {}
    for z in zooms:
        tiles = _measured_tiles(boxes, z, sample, rng)
        measured = [(len(snapshot.tile(t, layers=layers, filters=TileFilter())), t) for t in tiles]
        kb = np.array([size for size, _ in measured if size]) / 1024
        largest, where = max(measured)
        out[z] = {"tiles": len(measured), "non_empty": len(kb),
                  "p50_kb": round(float(np.percentile(kb, 50)), 1) if len(kb) else 0.0,
                  "p95_kb": round(float(np.percentile(kb, 95)), 1) if len(kb) else 0.0,
                  "max_kb": round(largest / 1024, 1), "max_tile": f"{where.z}/{where.x}/{where.y}"}
    return out


def _measured_tiles(boxes: np.ndarray, z: int, sample: int, rng: np.random.Generator) -> list[Tile]:
    """Every tile of zoom z that can hold a feature, or a random draw of them plus the most crowded."""
    x, y = touched(boxes, z)
    cells, counts = np.unique(x * (1 << z) + y, return_counts=True)
    if z > EXHAUSTIVE_UP_TO and len(cells) > sample:
        crowded = cells[np.argsort(counts)[-(sample // 3):]]
        cells = np.union1d(rng.choice(cells, sample, replace=False), crowded)
    return [Tile(z, int(c) >> z, int(c) & ((1 << z) - 1)) for c in cells]


def band_tiles(snapshot: Snapshot, zooms: tuple[int, int], n: int, seed: int) -> list[Tile]:
    """Up to n distinct tiles of a zoom band, each holding a school drawn at random (where maps look)."""
    rng = np.random.default_rng(seed)
    info = next(i for i in snapshot.collections() if i.id == SCHOOLS)
    xy = feature_boxes(snapshot, info)[:, :2].tolist()
    found: dict[Tile, None] = {}
    for pick, z in zip(rng.integers(0, len(xy), 50 * n), rng.integers(zooms[0], zooms[1] + 1, 50 * n), strict=True):
        found.setdefault(tile_at(*xy[pick], int(z)))
        if len(found) == n:
            break
    return list(found)


def encode_speed(snapshot: Snapshot, layers: Sequence[str], tiles: Sequence[Tile]) -> dict:
    """Tiles per second and latency percentiles (ms) of making each tile once, one after the other."""
    times = []
    for tile in tiles:
        start = time.perf_counter()
        snapshot.tile(tile, layers=layers, filters=TileFilter())
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1000
    return {"tiles": len(tiles), "tiles_per_s": round(len(tiles) / sum(times), 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1)}


def served(name: str, database: str, bands: Mapping[str, Sequence[Tile]], *, work: Path, seconds: float) -> dict:
    """Cold (each tile once, fresh server) then warm (wrk) tiles per second per band, 32 connections."""
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    server = start_ours(f"tiles-{name}", database, workers=2, logs=logs)
    try:
        paths = {band: [f"/tiles/{','.join(LAYERS)}/{t.z}/{t.x}/{t.y}.mvt" for t in tiles]
                 for band, tiles in bands.items()}
        out = {band: {"cold": one_pass(server.url, p).to_dict()} for band, p in paths.items()}
        script = logs / f"tiles-{name}.lua"
        for band, p in paths.items():
            wrk(server.url, p, seconds=warmup_seconds(len(p), out[band]["cold"]["rps"]), script=script)
            out[band]["warm"] = wrk(server.url, p, seconds=seconds, script=script).to_dict()
    finally:
        server.stop()
    return out


def warmup_seconds(tiles: int, cold_rps: float) -> float:
    """Long enough for about four requests per tile at the cold rate, so each worker has made each tile.

    >>> warmup_seconds(200, 10.0), warmup_seconds(200, 1000.0)
    (80.0, 2.0)
    """
    return min(180.0, max(2.0, 4 * tiles / max(cold_rps, 1.0)))


def size_table(found: Mapping[int, dict]) -> str:
    """One line per zoom: tiles measured, non-empty, p50 and p95 of the non-empty, max and where."""
    lines = [f"{'zoom':>4} {'tiles':>6} {'filled':>6} {'p50 KB':>8} {'p95 KB':>8} {'max KB':>8}  largest"]
    lines += [f"{z:4d} {s['tiles']:6d} {s['non_empty']:6d} {s['p50_kb']:8.1f} {s['p95_kb']:8.1f} {s['max_kb']:8.1f}"
              f"  {s['max_tile']}" for z, s in found.items()]
    return "\n".join(lines)


def speed_table(found: Mapping[str, dict]) -> str:
    """One line per band: encode, cold and warm tiles per second with p95 latencies."""
    lines = [f"{'band':6} {'encode/s':>9} {'p95 ms':>7} {'cold/s':>8} {'p95 ms':>7} {'warm/s':>8} {'p95 ms':>7}"]
    for band in BANDS:
        e, c, w = found["encode"][band], found["served"][band]["cold"], found["served"][band]["warm"]
        lines.append(f"{band:6} {e['tiles_per_s']:9.1f} {e['p95_ms']:7.1f} {c['rps']:8.1f} {c['p95_ms']:7.1f}"
                     f" {w['rps']:8.1f} {w['p95_ms']:7.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.tiles --database NAME=URL [...]`: measure published versions, print, write JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.tiles", description=__doc__.splitlines()[0])
    parser.add_argument("--database", action="append", required=True, metavar="NAME=URL",
                        help="a store to measure (a .gpkg path or a postgresql:// URL), already ingested")
    parser.add_argument("--quick", action="store_true", help="smaller samples and windows")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    stores = dict(item.split("=", 1) for item in args.database)
    results = run(stores, quick=args.quick)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    oversize = [(name, z) for name, r in results["stores"].items() for z, s in r["sizes"].items()
                if s["max_kb"] > BUDGET_KB]
    for name, z in oversize:
        print(f"{name}: zoom {z} has a tile over {BUDGET_KB} KB", file=sys.stderr)
    return 1 if oversize else 0


if __name__ == "__main__":
    sys.exit(main())
