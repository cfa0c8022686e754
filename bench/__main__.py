"""`python -m bench`: run every phase, print the table, write the JSON file."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

from bench import report, suite
from bench.workload import DATABASE

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    """Run the bench; 1 with one line on stderr when a prerequisite is missing."""
    args = _parser().parse_args(argv)
    if not shutil.which("wrk"):
        print("bench: wrk is not installed (apt-get install wrk, or `make system`)", file=sys.stderr)
        return 1
    plan = dataclasses.replace(suite.QUICK if args.quick else suite.FULL, peers=not args.no_peers)
    options = suite.Options(sources=args.sources, postgis=args.database, gpkg=args.gpkg, work=args.work,
                            plan=plan, ingest=not args.no_ingest, seed=args.seed,
                            servers=tuple(filter(None, args.servers.split(","))))
    started, clock = datetime.now().astimezone(), time.monotonic()
    results = suite.run(options, say=lambda line: print(line, flush=True))
    seconds = time.monotonic() - clock
    print()
    print(report.table(results))
    print()
    print(report.extras(results))
    path = report.write_json(results, directory=args.results, quick=args.quick, started=started, seconds=seconds)
    print(f"\n{seconds / 60:.1f} minutes; every figure in {path}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="a ~3-minute subset: PostGIS only (ingested only when nothing is published yet), short"
                             " windows, no downloads, scaling or new ingest")
    parser.add_argument("--sources", type=Path, default=ROOT / "sources" / "local.toml",
                        help="the sources manifest to ingest (default sources/local.toml)")
    parser.add_argument("--database", default=os.environ.get("ECARTO_BENCH_DATABASE", DATABASE),
                        help=f"the PostGIS database the bench ingests into, created if missing (default {DATABASE})")
    parser.add_argument("--gpkg", type=Path, default=ROOT / "var" / "bench" / "ecarto.gpkg",
                        help="the GeoPackage the bench ingests into")
    parser.add_argument("--no-peers", action="store_true", help="measure our server only (and nginx)")
    parser.add_argument("--no-ingest", action="store_true", help="measure the versions already published")
    parser.add_argument("--servers", default="",
                        help="comma list of HTTP servers to run our app under, each as its Procfile line says"
                             " (e.g. granian,gunicorn; default: the Procfile's web line)")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the request lists")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench",
                        help="logs, virtual environments of the peers, static tiles")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results",
                        help="where the JSON file is written")
    return parser


if __name__ == "__main__":
    sys.exit(main())
