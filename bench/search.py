"""Text search per store: the map's `/search` and CQL2 CASEI/ACCENTI LIKE on names, through the app in-process.

Each request goes through the app (parse, store queries, JSON encoding, body read to its end), so the
figures are what one worker thread serves, without HTTP or network noise; the bench suite measures
`/search` over HTTP too (scenario "search"). Run `.venv/bin/python -m bench.search --gpkg var/bench/ecarto.gpkg
--postgis postgresql://...` on stores holding the national data (`sources/local.toml`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from flask import Flask

from tileserver.core.settings import Settings
from tileserver.core.stores import open_store
from tileserver.web.app import create_app

# What people type in the map's search box: the start of a commune, a school type, a school name,
# accents and abbreviations; each also measured as typed, one request per keystroke from 2 characters.
PREFIXES = ("ren", "saint", "lyc", "jean moul", "ecole de la", "évry", "sté")
FILTERS = (  # CQL2 on the schools' and communes' names, as a client of the features API writes them
    "ACCENTI(CASEI(nom)) LIKE ACCENTI(CASEI('%saint%'))",
    "ACCENTI(CASEI(nom)) LIKE ACCENTI(CASEI('lyc%'))",
    "CASEI(nom) LIKE CASEI('%jean moulin%')",
    "ACCENTI(nom) LIKE ACCENTI('%Évry%')",
    "ACCENTI(CASEI(nom)) = ACCENTI(CASEI('rennes'))",
)
TARGETS_MS = {"search": 50.0, "like": 100.0}  # p95 targets (issue "Bounded work")


@dataclass(frozen=True)
class Latency:
    """The latencies of one kind of request on one store."""

    requests: int
    p50_ms: float
    p95_ms: float
    max_ms: float

    def line(self, name: str, target: float) -> str:
        verdict = "ok" if self.p95_ms < target else "OVER"
        return (f"{name:28} {self.requests:5} requests  p50 {self.p50_ms:7.1f}  p95 {self.p95_ms:7.1f}  "
                f"max {self.max_ms:7.1f} ms  (target p95 < {target:.0f} ms: {verdict})")


def keystrokes(prefixes: tuple[str, ...] = PREFIXES) -> list[str]:
    """Every text the map sends while each prefix is typed (from 2 characters on).

    >>> keystrokes(("ren", "sté"))
    ['re', 'ren', 'st', 'sté']
    """
    return [text[:n] for text in prefixes for n in range(2, len(text) + 1) if text[:n].strip() == text[:n]]


def latencies(app: Flask, paths: list[str], *, rounds: int) -> Latency:
    """Each path asked `rounds` times after one warm-up pass; a non-200 answer stops the bench."""
    client = app.test_client()
    measured: list[float] = []
    for round_ in range(rounds + 1):
        for path in paths:
            started = time.perf_counter()
            response = client.get(path)
            response.get_data()
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"{path}: {response.status_code} {response.get_data(as_text=True)[:200]}")
            if round_:
                measured.append(elapsed * 1000)
    ordered = sorted(measured)
    return Latency(len(ordered), round(statistics.median(ordered), 1),
                   round(ordered[int(0.95 * (len(ordered) - 1))], 1), round(ordered[-1], 1))


def search_paths(texts: list[str], limit: int = 8) -> list[str]:
    return [f"/search?q={quote(text)}&limit={limit}" for text in texts]


def like_paths(collections: tuple[str, ...] = ("etablissements", "communes")) -> list[str]:
    return [f"/collections/{c}/items?limit=10&filter-lang=cql2-text&filter={quote(f)}"
            for c in collections for f in FILTERS]


def measure(database: str, *, rounds: int = 10) -> dict[str, Latency]:
    """Search prefixes, search as typed and CASEI/ACCENTI LIKE on the store at `database`."""
    settings = Settings(database=database)
    store = open_store(database, settings)
    try:
        if store.current() is None:
            raise RuntimeError(f"{database}: nothing published; run `ecarto ingest` first")
        app = create_app(settings, store=store)
        return {
            "search (prefixes)": latencies(app, search_paths(list(PREFIXES)), rounds=rounds),
            "search (as typed)": latencies(app, search_paths(keystrokes()), rounds=max(1, rounds // 3)),
            "CASEI/ACCENTI LIKE on nom": latencies(app, like_paths(), rounds=max(1, rounds // 2)),
        }
    finally:
        store.close()


def main(argv: list[str] | None = None, say: Callable[[str], None] = print) -> int:
    """Measure each store given on the command line; 1 when a p95 misses its target."""
    parser = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__)
    parser.add_argument("--gpkg", help="an embedded store (.gpkg)")
    parser.add_argument("--postgis", help="a PostGIS store (postgresql://...)")
    parser.add_argument("--rounds", type=int, default=10, help="times each prefix is asked")
    args = parser.parse_args(argv)
    stores = {name: url for name, url in (("geopackage", args.gpkg), ("postgis", args.postgis)) if url}
    if not stores:
        parser.error("give --gpkg, --postgis or both")
    missed = False
    for name, url in stores.items():
        say(f"{name} (load average {', '.join(f'{v:.1f}' for v in os.getloadavg())}: a shared machine slows it)")
        for kind, latency in measure(url, rounds=args.rounds).items():
            target = TARGETS_MS["like" if "LIKE" in kind else "search"]
            say("  " + latency.line(kind, target))
            missed |= kind != "search (as typed)" and latency.p95_ms >= target
    return int(missed)


if __name__ == "__main__":
    sys.exit(main())
