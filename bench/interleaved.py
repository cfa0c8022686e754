"""`python -m bench.interleaved`: one scenario on two HTTP servers at once, measured in alternating windows.

The full bench measures each server in one window, minutes apart from the other's: a scenario
bound by the database (CQL2 pages, bbox queries, whole-table streams) moves by 10-20 % between
runs, more than the servers differ. Here both servers run the same app on the same published
PostGIS version (as the Procfile's lines start them) and take turns, A B then B A, so what drifts
in the machine falls on both alike. The streams of every school are timed the same way, each
response read whole.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

from bench import servers
from bench.clients import STREAM_LIMIT
from bench.load import Load, wrk
from bench.processes import Server
from bench.search import keystrokes
from bench.servers import ROOT
from bench.suite import QUERY_CONNECTIONS
from bench.workload import DATABASE, Api, Sizes, Workload, build

SCENARIOS: dict[str, Callable[[Api, Workload], list[str]]] = {
    "bbox": lambda api, w: api.bbox_paths(w.boxes),
    "item": lambda api, w: api.item_paths(w.schools),
    "cql2": lambda api, w: api.filter_paths(w.filters),
    "search": lambda api, w: api.search_paths(keystrokes()),
}


def main(argv: list[str] | None = None) -> int:
    """Start both servers, warm them, then alternate timed windows and streams; print each and the means."""
    args = _parser().parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    workload = build(args.database, seed=args.seed, sizes=Sizes(cold=1, warm=1, queries=300))
    paths = SCENARIOS[args.scenario](servers.OURS, workload)
    started: list[Server] = []
    try:
        for name in args.servers:
            started.append(servers.start_ours(f"interleaved-{name}", args.database, workers=2, logs=args.work,
                                              server=name))
        for server in started:
            window(server, paths, args.work, 3)  # connection pools and caches, unmeasured
        loads: dict[str, list[Load]] = {s.name: [] for s in started}
        for turn in range(args.rounds):
            for server in started if turn % 2 == 0 else started[::-1]:
                load = window(server, paths, args.work, args.seconds)
                loads[server.name].append(load)
                print(f"round {turn} {server.name:22} {load.rps:8.1f} req/s  p50 {load.p50_ms:7.1f}"
                      f"  p99 {load.p99_ms:7.1f} ms  errors {load.errors}", flush=True)
        for server in started:
            rates = [load.rps for load in loads[server.name]]
            print(f"{server.name:22} {args.scenario}: mean {statistics.mean(rates):.1f} req/s"
                  f" (min {min(rates):.1f}, max {max(rates):.1f})")
        for fmt in ("json", "csv"):
            for turn in range(args.streams):
                for server in started if turn % 2 == 0 else started[::-1]:
                    print(f"{server.name:22} all schools {fmt}: {stream_seconds(server, fmt):.2f} s", flush=True)
    finally:
        for server in started:
            server.stop()
    return 0


def window(server: Server, paths: list[str], work: Path, seconds: float) -> Load:
    """One timed wrk window of the scenario's requests on `server`, with the bench's query connections."""
    return wrk(server.url, paths, seconds=seconds, script=work / f"{server.name}.lua", connections=QUERY_CONNECTIONS)


def stream_seconds(server: Server, fmt: str) -> float:
    """Seconds to read every school in one response (GeoJSON or CSV)."""
    started = time.perf_counter()
    response = requests.get(f"{server.url}/collections/etablissements/items",
                            params={"limit": STREAM_LIMIT, "f": fmt}, timeout=300)
    response.raise_for_status()
    _ = response.content
    return time.perf_counter() - started


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.interleaved", description=__doc__)
    parser.add_argument("--database", default=os.environ.get("ECARTO_BENCH_DATABASE", DATABASE),
                        help="a PostGIS database holding a published version (the bench's)")
    parser.add_argument("--servers", default="granian,gunicorn", type=lambda s: s.split(","),
                        help="the two HTTP servers, as the Procfile names them")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="cql2")
    parser.add_argument("--rounds", type=int, default=4, help="windows per server")
    parser.add_argument("--seconds", type=float, default=8, help="length of each window")
    parser.add_argument("--streams", type=int, default=3, help="timed whole-table responses per server and format")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the request lists")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench-interleaved")
    return parser


if __name__ == "__main__":
    sys.exit(main())
