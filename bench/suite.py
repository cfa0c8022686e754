"""The whole bench, phase by phase: ingest both stores, measure every server, then scaling and a new ingest.

Servers are measured one at a time, each started fresh, so its first pass over the cold tile lists
really is cold (our tile cache lives in the worker processes), and each is stopped before the next
starts, so none takes the other's processor. Every phase is bounded in time; an endpoint that
does not answer its first request is reported as n/a with the reason, and the bench goes on.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import math
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from bench import clients, peers, servers
from bench.landing import watch
from bench.load import CONNECTIONS, HEADERS, Load, ogr2ogr, one_pass, wrk
from bench.processes import Server, Timed, ecarto, peak_memory, run_timed
from bench.search import keystrokes
from bench.workload import BANDS, Api, Sizes, Workload, build, current_version

POSTGIS, GPKG = "ecarto-postgis", "ecarto-gpkg"
WORKERS = 2  # the Procfile's default WEB_CONCURRENCY, given to the peers too


@dataclass(frozen=True)
class Plan:
    """How long and how wide each phase is."""

    window: float  # seconds of each timed wrk window
    warmup: float  # seconds of wrk before a warm window (fills every worker's cache)
    cold_budget: float  # seconds a cold pass may run before it stops starting requests
    sizes: Sizes
    reuse: bool  # measure the published versions when there are some, rather than ingesting again
    gpkg: bool  # also ingest and serve the embedded store
    downloads: bool  # ogr2ogr of every school, page size 1000
    scaling: bool  # one worker, then two
    landing: bool  # a new ingest landing while serving
    peers: bool = True  # TiPg and pygeoapi


FULL = Plan(window=6, warmup=2.5, cold_budget=30, sizes=Sizes(cold=3000, warm=300, queries=300), reuse=False,
            gpkg=True, downloads=True, scaling=True, landing=True)
QUICK = Plan(window=4, warmup=2, cold_budget=15, sizes=Sizes(cold=1000, warm=150, queries=150), reuse=True,
             gpkg=False, downloads=False, scaling=False, landing=False)
LONGEST_WINDOW = 30  # seconds: the window given to a server that answers a few requests a second
QUERY_CONNECTIONS = 8  # feature queries saturate 2 workers x 4 threads long before 32 connections


@dataclass(frozen=True)
class Options:
    """What the command line chose."""

    sources: Path
    postgis: str
    gpkg: Path
    work: Path  # var/bench: logs, venvs, static files, configs
    plan: Plan
    ingest: bool = True
    seed: int = 2026
    servers: tuple[str, ...] = ()  # HTTP servers our app runs under (Procfile lines); () is the `web:` line


@dataclass
class Row:
    """One measurement of one server, or why it could not be made."""

    server: str
    scenario: str
    load: Load | None = None
    memory_mb: float | None = None
    note: str = ""


@dataclass
class Results:
    """Everything a run found, in the order it found it."""

    rows: list[Row] = field(default_factory=list)
    ingests: dict[str, dict] = field(default_factory=dict)
    downloads: dict[str, dict] = field(default_factory=dict)
    scaling: list[Row] = field(default_factory=list)
    landing: dict = field(default_factory=dict)
    memory: dict[str, list[float]] = field(default_factory=dict)  # PSS MiB of each process of our servers
    versions: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # what could not be measured, and why
    load_at_start: tuple[float, ...] = field(default_factory=os.getloadavg)  # other work on the machine


def run(options: Options, say: Callable[[str], None] = print) -> Results:
    """Every phase of the plan, in order; servers are always stopped, whatever fails."""
    results = Results()
    (options.work / "logs").mkdir(parents=True, exist_ok=True)
    _create_database(options.postgis)
    if options.ingest and not (options.plan.reuse and current_version(options.postgis)):
        _ingest_all(options, results, say)
    elif options.ingest:
        say(f"--quick: measuring the version already published in {options.postgis} (no ingest)")
    workload = build(options.postgis, seed=options.seed, sizes=options.plan.sizes)
    say(f"workload: version {workload.version}, tiles cold {_counts(workload.cold)}, warm {_counts(workload.warm)}")
    _ours(options, workload, results, say)
    if options.plan.peers:
        _peers(options, workload, results, say)
    _ceiling(options, workload, results, say)
    if options.plan.scaling:
        _scaling(options, workload, results, say)
    if options.plan.landing:
        _landing(options, workload, results, say)
    return results


def measure(server: Server, api: Api, workload: Workload, plan: Plan, results: Results,
            say: Callable[[str], None]) -> None:
    """Cold tiles first (a fresh server), then warm tiles, bbox, single items, CQL2 filters and the map's search."""
    for band in BANDS:
        _record(results, say, server, f"tiles {band} cold", api.tile_paths(workload.cold[band]),
                partial(one_pass, budget=plan.cold_budget))
    for band in BANDS:
        _record(results, say, server, f"tiles {band} warm", api.tile_paths(workload.warm[band]),
                _windowed(server, plan))
    queries = {"bbox 1000": api.bbox_paths(workload.boxes), "item": api.item_paths(workload.schools),
               "cql2 1000": api.filter_paths(workload.filters), "search": api.search_paths(keystrokes())}
    for scenario, paths in queries.items():
        _record(results, say, server, scenario, paths, _windowed(server, plan, QUERY_CONNECTIONS))


def _windowed(server: Server, plan: Plan, connections: int = CONNECTIONS) -> Callable[[str, list[str]], Load]:
    """A timed wrk window, after a warm-up that fills the caches (tiles) or the connection pools (queries)."""
    script = server.log.with_suffix(".lua")

    def window(url: str, paths: list[str]) -> Load:
        first = wrk(url, paths, seconds=plan.warmup, script=script, connections=connections)
        return wrk(url, paths, seconds=_window_for(first, plan.window, connections), script=script,
                   connections=connections)

    return window


def _window_for(warmup: Load, seconds: float, connections: int) -> float:
    """The window to measure in: longer than the plan's when so few requests would end inside it.

    wrk counts only the requests that end inside its window, so a server answering a few requests a
    second (TiPg's low-zoom tiles) gets up to `LONGEST_WINDOW` seconds, judged from its warm-up.

    >>> _window_for(Load(1000, 2.0, 0, 1, 1, 1, "wrk"), 6, 32), _window_for(Load(4, 2.0, 0, 1, 1, 1, "wrk"), 6, 32)
    (6, 30)
    """
    wanted = 3 * connections / warmup.rps if warmup.rps else LONGEST_WINDOW
    return min(LONGEST_WINDOW, max(seconds, math.ceil(wanted)))


def _record(results: Results, say: Callable[[str], None], server: Server, scenario: str, paths: list[str],
            measure_with: Callable[[str, list[str]], Load], into: list[Row] | None = None) -> None:
    """Probe the first path, then measure the others; a failing probe makes an n/a row."""
    if not paths:
        return
    rows = results.rows if into is None else into
    problem = _probe(server.url + paths[0])
    if problem:
        rows.append(Row(server.name, scenario, note=f"n/a: {problem}"))
        say(f"  {server.name:15} {scenario:16} n/a: {problem}")
        return
    try:
        with peak_memory(server) as peak:
            load = measure_with(server.url, paths[1:])
    except (OSError, subprocess.SubprocessError, StopIteration, ValueError) as error:  # wrk failed or said nothing
        load, problem = None, f"the load generator failed ({type(error).__name__}: {error})"
    if load is None or not load.requests:
        problem = problem or "no answer within the window"
        rows.append(Row(server.name, scenario, note=f"n/a: {problem}"))
        say(f"  {server.name:15} {scenario:16} n/a: {problem}")
        return
    rows.append(Row(server.name, scenario, load, round(peak[0], 1)))
    say(f"  {server.name:15} {scenario:16} {load.rps:9.1f} req/s  p50 {load.p50_ms:7.1f}  p99 {load.p99_ms:7.1f} ms"
        f"  errors {load.errors}  {peak[0]:.0f} MiB")


def _probe(url: str) -> str:
    """'' when the URL answers 2xx, else a short reason."""
    request = urllib.request.Request(url, headers=HEADERS)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            return ""
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except OSError as error:
        return type(error).__name__


def _ingest_all(options: Options, results: Results, say: Callable[[str], None]) -> None:
    """Ingest the sources into PostGIS, then into the GeoPackage, each timed as its own process."""
    targets = {POSTGIS: options.postgis}
    if options.plan.gpkg:
        options.gpkg.parent.mkdir(parents=True, exist_ok=True)
        targets[GPKG] = str(options.gpkg)
    for name, database in targets.items():
        say(f"ingest {options.sources} into {name}...")
        timed = ingest(options, database, options.work / "logs" / f"ingest-{name}.log")
        results.ingests[name] = _timed_dict(timed)
        say(f"  {timed.seconds:.1f} s, peak {timed.max_rss_mb:.0f} MiB, exit {timed.returncode}")
        if timed.returncode:
            raise RuntimeError(f"ingest into {name} failed; see {options.work / 'logs'}/ingest-{name}.log")


def ingest(options: Options, database: str, log: Path) -> Timed:
    """One `ecarto ingest` of the sources into `database`, as a child process."""
    command = [ecarto(), "--quiet", "ingest", "--no-progress", "--sources", str(options.sources),
               "--database", database]
    return run_timed(command, env=os.environ, log=log, timeout=900)


def _ours(options: Options, workload: Workload, results: Results, say: Callable[[str], None]) -> None:
    """Our server on each store, as the Procfile runs it; PostGIS also lends its warm tiles to the ceiling."""
    stores = {POSTGIS: options.postgis}
    if options.plan.gpkg and options.gpkg.exists():
        stores[GPKG] = str(options.gpkg)
    elif options.plan.gpkg:
        results.missing.append(f"{GPKG}: no {options.gpkg} (run without --no-ingest)")
    default = next(iter(servers.procfile_commands()))
    for (store, database), http in itertools.product(stores.items(), options.servers or (default,)):
        name = store if http == default else f"{store}+{http}"
        say(f"{name}: {servers.procfile_command(server=http)}")
        start = partial(servers.start_ours, name, database, workers=WORKERS, logs=options.work / "logs",
                        server=http)
        with _running(start, name, results) as server:
            if server is None:
                continue
            measure(server, servers.OURS, workload, options.plan, results, say)
            _streams_and_slow_clients(server, workload, options.plan, results, say)
            results.memory[name] = server.memory_by_process()
            if options.plan.downloads:
                _download(server, servers.OURS, options, results, say)
            if name == POSTGIS:
                _copy_static(server, workload, options.work / "static", say)


def _streams_and_slow_clients(server: Server, workload: Workload, plan: Plan, results: Results,
                              say: Callable[[str], None]) -> None:
    """Every school streamed as GeoJSON then CSV in one response each; warm mid tiles among slow clients."""
    every = f"{servers.OURS.items}?limit={clients.STREAM_LIMIT}"
    for scenario, path in (("all schools json", every), ("all schools csv", f"{every}&f=csv")):
        _record(results, say, server, scenario, [path, path], lambda url, paths: clients.stream(url + paths[0]))
    window = _windowed(server, plan)

    def among_slow_clients(url: str, paths: list[str]) -> Load:
        with clients.slow_clients(url):
            return window(url, paths)

    _record(results, say, server, f"mid warm+{clients.SLOW_CLIENTS} slow",
            servers.OURS.tile_paths(workload.warm["mid"]), among_slow_clients)


def _peers(options: Options, workload: Workload, results: Results, say: Callable[[str], None]) -> None:
    """TiPg and pygeoapi, each from its own virtual environment, on the same tables."""
    logs = options.work / "logs"
    peer_list = (
        ("tipg", peers.TIPG, peers.tipg_api(workload.schema),
         partial(peers.start_tipg, dsn=options.postgis, schema=workload.schema, workers=WORKERS, logs=logs)),
        ("pygeoapi", peers.PYGEOAPI, peers.PYGEOAPI_API,
         partial(peers.start_pygeoapi, dsn=options.postgis, schema=workload.schema, workers=WORKERS, logs=logs,
                 root=options.work)),
    )
    for name, requirements, api, start in peer_list:
        say(f"{name}: {' '.join(requirements)} (installed once under {options.work / 'venvs'})")
        try:
            home = peers.venv(options.work / "venvs", name, requirements, logs / f"{name}-install.log")
        except (OSError, subprocess.SubprocessError) as error:
            results.missing.append(f"{name}: could not be installed ({error}); see {logs}/{name}-install.log")
            continue
        results.versions[name] = peers.installed_version(home, name)
        with _running(partial(start, home), name, results) as server:
            if server is None:
                continue
            measure(server, api, workload, options.plan, results, say)
            if options.plan.downloads:
                _download(server, api, options, results, say)


def _ceiling(options: Options, workload: Workload, results: Results, say: Callable[[str], None]) -> None:
    """The warm tile lists served by nginx from files holding our own tile bytes: the limit of the warm path."""
    root = options.work / "static"
    if not servers.have_nginx():
        results.missing.append("nginx-static: nginx is not installed (apt-get install nginx-light)")
        return
    if not (root / "www").exists():
        results.missing.append("nginx-static: no tiles were copied from our server")
        return
    results.versions["nginx"] = servers.nginx_version()
    say("nginx-static:")
    start = partial(servers.start_nginx, root, workers=WORKERS, logs=options.work / "logs")
    with _running(start, "nginx-static", results) as server:
        if server is None:
            return
        for band in BANDS:
            _record(results, say, server, f"tiles {band} warm", servers.STATIC.tile_paths(workload.warm[band]),
                    _windowed(server, options.plan))


def _copy_static(server: Server, workload: Workload, root: Path, say: Callable[[str], None]) -> None:
    """Write the warm tiles, as our server sends them gzipped, to files for nginx."""
    paths = [p for band in BANDS for p in servers.OURS.tile_paths(workload.warm[band])]
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(_gzipped, [server.url + p for p in paths]))
    count = servers.write_static(root, ((p, b) for p, b in zip(paths, bodies, strict=True) if b is not None))
    say(f"  copied {count} tiles to {root / 'www'} for nginx")


def _gzipped(url: str) -> bytes | None:
    """The gzipped body of a tile (an empty tile gzipped too), None when it cannot be had."""
    request = urllib.request.Request(url, headers=HEADERS)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            body = response.read()
            return body if response.headers.get("Content-Encoding") == "gzip" else gzip.compress(body, mtime=0)
    except OSError:
        return None


def _download(server: Server, api: Api, options: Options, results: Results, say: Callable[[str], None]) -> None:
    """ogr2ogr copying every school, pages of 1000."""
    if not shutil.which("ogr2ogr"):
        results.missing.append("downloads: ogr2ogr is not installed (apt-get install gdal-bin)")
        return
    done = ogr2ogr(server.url, api.layer, out=options.work / f"download-{server.name}.geojsons")
    results.downloads[server.name] = {"seconds": round(done.seconds, 2), "features": done.features,
                                      "returncode": done.returncode}
    say(f"  {server.name:15} ogr2ogr all schools: {done.seconds:.1f} s, {done.features} features, "
        f"exit {done.returncode}")


def _scaling(options: Options, workload: Workload, results: Results, say: Callable[[str], None]) -> None:
    """Our PostGIS server with one worker (two were measured above): warm mid tiles and bbox queries."""
    say("scaling: ecarto-postgis with 1 worker")
    name = f"{POSTGIS}-1w"
    start = partial(servers.start_ours, name, options.postgis, workers=1, logs=options.work / "logs")
    with _running(start, name, results) as server:
        if server is None:
            return
        _record(results, say, server, "tiles mid warm", servers.OURS.tile_paths(workload.warm["mid"]),
                _windowed(server, options.plan), into=results.scaling)
        _record(results, say, server, "bbox 1000", servers.OURS.bbox_paths(workload.boxes),
                _windowed(server, options.plan, QUERY_CONNECTIONS), into=results.scaling)


def _landing(options: Options, workload: Workload, results: Results, say: Callable[[str], None]) -> None:
    """Warm mid tiles in short windows while a new ingest runs into the same PostGIS and lands."""
    say("landing: a new ingest into PostGIS while ecarto-postgis serves warm mid-zoom tiles")
    name = f"{POSTGIS}-landing"
    start = partial(servers.start_ours, name, options.postgis, workers=WORKERS, logs=options.work / "logs")
    with _running(start, name, results) as server:
        if server is None:
            return
        new_ingest = partial(ingest, options, options.postgis, options.work / "logs" / "ingest-landing.log")
        results.landing = watch(server, servers.OURS.tile_paths(workload.warm["mid"]), new_ingest,
                                workers=WORKERS, script=server.log.with_suffix(".lua"), warmup=options.plan.warmup,
                                say=say)


@contextlib.contextmanager
def _running(start: Callable[[], Server], name: str, results: Results) -> Iterator[Server | None]:
    """Start a server for the block (None, noted as missing, when it cannot start); always stop it."""
    try:
        server = start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        results.missing.append(f"{name}: did not start ({error})")
        server = None
    try:
        yield server
    finally:
        if server is not None:
            server.stop()


def _create_database(dsn: str) -> None:
    """Create the bench database with PostGIS if missing (connecting to the cluster's `postgres` db)."""
    import psycopg
    from psycopg import sql

    name = dsn.rsplit("/", 1)[1].split("?")[0]
    admin = dsn.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")


def _timed_dict(timed: Timed) -> dict:
    return {"seconds": round(timed.seconds, 1), "max_rss_mb": round(timed.max_rss_mb), "returncode": timed.returncode}


def _counts(lists: dict[str, list]) -> str:
    return ", ".join(f"{band} {len(tiles)}" for band, tiles in lists.items())
