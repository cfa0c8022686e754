"""Feature queries per store: schools in a département-sized box, 1,000 at most, through the whole items path.

Each query goes through the app in-process (parse, store query, GeoJSON encoding, body read to its
end), so the figure is what one worker thread can serve, without HTTP or network noise. Run
`.venv/bin/python -m bench.features --gpkg var/bench/ecarto.gpkg --postgis postgresql://...`, or call
`bbox_rate` from the suite.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from flask import Flask

from tileserver.core.dataset import SCHOOLS
from tileserver.core.grid import BBox
from tileserver.core.settings import Settings
from tileserver.core.store import FeatureQuery, Snapshot
from tileserver.core.stores import open_store
from tileserver.web.app import create_app

BOX_WIDTH, BOX_HEIGHT = 1.3, 0.9  # degrees: about 100 km, the size of a mainland département


@dataclass(frozen=True)
class Rate:
    """How fast one worker thread answered bbox queries."""

    queries: int
    per_second: float
    p50_ms: float
    p95_ms: float
    features_mean: float


def departement_boxes(snapshot: Snapshot, count: int, seed: int = 2026) -> list[BBox]:
    """Boxes the size of a département, centred on schools drawn at random (so none is empty sea)."""
    rng = random.Random(seed)
    total = next(c.count for c in snapshot.collections() if c.id == SCHOOLS)
    boxes = []
    for _ in range(count):
        page = snapshot.query(FeatureQuery(SCHOOLS, properties=(), limit=1, offset=rng.randrange(total)))
        centre = next(page.features).geometry
        boxes.append(BBox(centre.x - BOX_WIDTH / 2, centre.y - BOX_HEIGHT / 2,
                          centre.x + BOX_WIDTH / 2, centre.y + BOX_HEIGHT / 2))
    return boxes


def bbox_rate(app: Flask, boxes: list[BBox], *, seconds: float = 10.0, limit: int = 1000) -> Rate:
    """Queries per second and latencies of `GET /collections/etablissements/items?bbox=...&limit=...`."""
    client = app.test_client()
    latencies: list[float] = []
    features = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        box = boxes[len(latencies) % len(boxes)]
        started = time.perf_counter()
        response = client.get(f"/collections/{SCHOOLS}/items?limit={limit}&bbox={','.join(map(str, box))}")
        body = response.get_data()
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"bbox query failed with {response.status_code}: {body[:200]!r}")
        features += body.count(b'"type":"Feature"')
    elapsed = sum(latencies)
    ordered = sorted(latencies)
    return Rate(
        queries=len(latencies),
        per_second=round(len(latencies) / elapsed, 1),
        p50_ms=round(statistics.median(ordered) * 1000, 1),
        p95_ms=round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
        features_mean=round(features / len(latencies), 1),
    )


def measure(database: str, *, seconds: float = 10.0, boxes: int = 200, seed: int = 2026) -> Rate:
    """`bbox_rate` on the store at `database` (a .gpkg path or a postgresql:// URL)."""
    settings = Settings(database=database)
    store = open_store(database, settings)
    try:
        snapshot = store.current()
        if snapshot is None:
            raise RuntimeError(f"{database}: nothing published; run `ecarto ingest` first")
        app = create_app(settings, store=store)
        return bbox_rate(app, departement_boxes(snapshot, boxes, seed), seconds=seconds)
    finally:
        store.close()


def stores_and_seconds(argv: list[str] | None, prog: str, description: str | None) -> tuple[dict[str, str], float]:
    """The stores (`--gpkg`, `--postgis`, at least one) and `--seconds` of a scenario run per store."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--gpkg", help="an embedded store (.gpkg)")
    parser.add_argument("--postgis", help="a PostGIS store (postgresql://...)")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    stores = {name: url for name, url in (("geopackage", args.gpkg), ("postgis", args.postgis)) if url}
    if not stores:
        parser.error("give --gpkg, --postgis or both")
    return stores, args.seconds


def main(argv: list[str] | None = None, say: Callable[[str], None] = print) -> int:
    """Measure each store given on the command line and print one line per store."""
    stores, seconds = stores_and_seconds(argv, "python -m bench.features", __doc__)
    for name, url in stores.items():
        rate = measure(url, seconds=seconds)
        say(f"{name:11} bbox (département, limit 1000): " + ", ".join(f"{k} {v}" for k, v in asdict(rate).items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
