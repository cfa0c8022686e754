"""`python -m bench.scale`: past one machine. The shared Redis cache, the cliff after a version lands, the seed.

Two servers, each as the Procfile runs it with one worker on a port of its own (two machines, as
far as one machine can show it), share a Redis of the bench's own (`maxmemory` 512 MB, LRU):

- **shared**: a cold pass of a tile list on server A, then the same pass on B (each tile made by A
  is a hit on B), then both served warm at once by two wrk, one per port.
- **cliff**: both servers serve a warm tile list; a new version lands (a second GeoPackage renamed
  onto the served one, as docs/scaling.md copies a version to each machine); p99 of the 10 s before,
  of the first 10 s after it landed, and of the 10 s after the servers switched to it. Three times:
  warmed by `ecarto warm` before it lands (as the ingest machine would), warmed by the servers
  (warm-then-switch), and with `ECARTO_WARM_DEADLINE_SECONDS=0` (switch at once, the old behaviour).
- **seed**: `ecarto seed` of every layer, z0-14, with a process per core: seconds, tiles a second.

Everything runs on the machine's shared processor: the figures move with what else runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import shapely

from bench import servers
from bench.landing import served_version
from bench.load import Load, one_pass, wrk
from bench.processes import Server, ecarto, free_port, run_timed
from bench.workload import school_tiles
from tileserver.core import coverage
from tileserver.core.dataset import SCHOOLS
from tileserver.core.settings import Settings
from tileserver.core.stores import open_store
from tileserver.core.stores.geopackage import layout

ROOT = Path(__file__).resolve().parents[1]
WINDOW = 10.0  # seconds: "the first 10 s after a version lands"
# How the new version's hot set gets into Redis, and the servers' warm-up deadline (0: switch at once).
CLIFFS = {"warmed-before-landing": 120, "warm-then-switch": 120, "switch-at-once": 0}


def main(argv: list[str] | None = None) -> int:
    """Run the phases asked; print one line per figure and write them all to a JSON file."""
    args = _parser().parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    results: dict = {"load_at_start": os.getloadavg()}
    paths = tile_paths(args.database, args.tiles)
    with redis_server(args.work) as redis_url:
        if "shared" in args.phases:
            results["shared"] = shared(args.database, paths, redis_url, args.work)
        if "cliff" in args.phases:
            results["cliff"] = {name: cliff(args.database, args.second, paths, redis_url, args.work, deadline, name)
                                for name, deadline in CLIFFS.items()}
    if "seed" in args.phases:
        results["seed"] = seed(args.database, args.work)
    results["load_at_end"] = os.getloadavg()
    out = args.work / f"scale-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"every figure in {out}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--database", type=Path, required=True, help="a GeoPackage holding a published version")
    parser.add_argument("--second", type=Path, help="another GeoPackage (another version) landed by the cliff phase")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench-scale")
    parser.add_argument("--tiles", type=int, default=300, help="tiles in the list (zooms 6-14)")
    parser.add_argument("--phases", default="shared,cliff,seed", type=lambda s: s.split(","))
    return parser


def tile_paths(database: Path, n: int) -> list[str]:
    """`n` tiles of the schools layer holding a school, at zooms 6 to 14."""
    store = open_store(str(database), Settings(database=str(database)))
    snapshot = store.current()
    info = next(i for i in snapshot.collections() if i.id == SCHOOLS)
    xy = shapely.get_coordinates(coverage.geometries(snapshot, info))
    store.close()
    tiles = school_tiles(np.random.default_rng(2026), xy[:, 0], xy[:, 1], (6, 14), n)
    return servers.OURS.tile_paths(tiles)


@contextlib.contextmanager
def redis_server(work: Path) -> Iterator[str]:
    """A Redis of the bench's own on a free port, bounded as docs/scaling.md says; its URL."""
    port = free_port()
    process = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                "--appendonly", "no", "--maxmemory", "512mb", "--maxmemory-policy", "allkeys-lru"],
                               stdout=subprocess.PIPE, text=True)
    try:
        for line in process.stdout:
            if "Ready to accept connections" in line:
                break
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait()


@contextlib.contextmanager
def two_servers(database: Path, work: Path, settings: dict[str, str]) -> Iterator[tuple[Server, Server]]:
    """Servers A and B, one worker each, on ports of their own; always stopped."""
    started: list[Server] = []
    try:
        for name in ("a", "b"):
            started.append(servers.start_ours(f"scale-{name}", str(database), workers=1, logs=work,
                                              settings=settings))
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


def shared(database: Path, paths: list[str], redis_url: str, work: Path) -> dict:
    """A's cold pass, B's pass of the same tiles (from the shared cache), then both warm at once."""
    settings = {"ECARTO_REDIS_URL": redis_url, "ECARTO_REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:8]}"}
    with two_servers(database, work, settings) as (a, b):
        found = {"cold on A": one_pass(a.url, paths), "same tiles on B (shared cache)": one_pass(b.url, paths)}
        found["warm, A and B at once"] = both(a, b, paths, work)
    for name, load in found.items():
        _say("shared", name, load)
    return {name: load.to_dict() for name, load in found.items()}


def both(a: Server, b: Server, paths: list[str], work: Path, seconds: float = WINDOW) -> Load:
    """Two wrk at once, one per server: requests and seconds added up, the worse percentiles kept."""
    with ThreadPoolExecutor(2) as pool:
        loads = list(pool.map(lambda s: wrk(s.url, paths, seconds=seconds, script=work / f"{s.name}.lua",
                                            connections=16), (a, b)))
    return Load(sum(x.requests for x in loads), max(x.seconds for x in loads), sum(x.errors for x in loads),
                max(x.p50_ms for x in loads), max(x.p95_ms for x in loads), max(x.p99_ms for x in loads), "wrk")


def cliff(database: Path, second: Path | None, paths: list[str], redis_url: str, work: Path, deadline: int,
          name: str) -> dict:
    """p99 before, in the first 10 s after a version lands, and in the 10 s after the servers switched.

    `warmed-before-landing` runs `ecarto warm` on the new version's file before it lands, as the
    machine that ingested it would (docs/scaling.md): the servers find its hot set ready. The others
    leave the warm-up to the servers (`warm-then-switch`), or switch at once without one.
    """
    if second is None:
        raise SystemExit("the cliff phase needs --second, a GeoPackage of another version")
    served = work / "served.gpkg"
    land(database, served)
    settings = {"ECARTO_REDIS_URL": redis_url, "ECARTO_REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
                "ECARTO_WARM_DEADLINE_SECONDS": str(deadline)}
    found: dict[str, Load] = {}
    with two_servers(served, work, settings) as (a, b):
        old = served_version(a)
        both(a, b, paths, work, seconds=5)  # warm-up: both caches and the hit counts
        found["steady"] = both(a, b, paths, work)
        if name == "warmed-before-landing":
            warm_elsewhere(second, settings, old, work)
        new = land(second, served)
        with ThreadPoolExecutor(1) as pool:
            switch = pool.submit(switched, (a, b), new, time.monotonic(), deadline + 60)
            found["first 10 s after landing"] = both(a, b, paths, work)
            while not switch.done():
                both(a, b, paths, work, seconds=2)
            seconds = switch.result()
        found["10 s after the switch"] = both(a, b, paths, work)
    for phase, load in found.items():
        _say(name, phase, load)
    print(f"  {name}: {old} -> {new}, both servers switched {seconds:.1f} s after it landed")
    return {"switched_after_s": round(seconds, 1), **{phase: load.to_dict() for phase, load in found.items()}}


def warm_elsewhere(version_file: Path, settings: dict[str, str], previous: str, work: Path) -> None:
    """`ecarto warm` of a version's file before it lands, with the servers' Redis and the served version's counts."""
    timed = run_timed([ecarto(), "warm", "--database", str(version_file), "--previous", previous],
                      env={**os.environ, **settings}, log=work / "warm.log", timeout=600)
    if timed.returncode != 0:
        raise RuntimeError(f"ecarto warm failed; see {work / 'warm.log'}")
    print(f"  ecarto warm before landing: {timed.seconds:.1f} s ({timed.cpu_seconds:.1f} s of processor)")


def switched(pair: tuple[Server, Server], version: str, since: float, limit: float) -> float:
    """Seconds from `since` until both servers serve `version` (asked every 0.2 s), or `limit`."""
    while time.monotonic() - since < limit:
        if all(served_version(s) == version for s in pair):
            return time.monotonic() - since
        time.sleep(0.2)
    return limit


def land(version_file: Path, served: Path) -> str:
    """Publish a version built elsewhere by renaming a copy onto the served file; its id.

    The copy is also linked where the store keeps each version's file, so a reader of the previous
    version goes on reading it (`stores.geopackage.layout`).
    """
    store = open_store(str(version_file), Settings(database=str(version_file)))
    version_id = store.current().version.id
    store.close()
    tmp = served.with_name(served.name + ".landing")
    shutil.copyfile(version_file, tmp)
    link = Path(layout.version_file(str(served), version_id))
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    os.link(tmp, link)
    os.replace(tmp, served)
    return version_id


def seed(database: Path, work: Path) -> dict:
    """`ecarto seed` of every layer, zooms 0-14, one process per core; wall and processor seconds."""
    output = work / "national.pmtiles"
    timed = run_timed([ecarto(), "seed", "--no-progress", "--database", str(database), "--output", str(output)],
                      env=os.environ, log=work / "seed.log", timeout=7200)
    summary = (work / "seed.log").read_text().strip().splitlines()[-1]
    tiles = int(summary.split(": ")[1].split(" tiles")[0])
    found = {"seconds": round(timed.seconds, 1), "cpu_seconds": round(timed.cpu_seconds, 1), "tiles": tiles,
             "tiles_per_s": round(tiles / timed.seconds, 1), "max_rss_mb": round(timed.max_rss_mb),
             "returncode": timed.returncode, "summary": summary}
    print(f"  seed: {found['seconds']} s ({found['cpu_seconds']} s of processor), {tiles} tiles,"
          f" {found['tiles_per_s']} tiles/s")
    return found


def _say(group: str, name: str, load: Load) -> None:
    print(f"  {group:17} {name:32} {load.rps:8.1f} req/s  p50 {load.p50_ms:7.1f}  p99 {load.p99_ms:7.1f} ms"
          f"  errors {load.errors}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
