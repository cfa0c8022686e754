"""Time reading every boundary level and generalising it, and count vertices per band, on the real data.

Run from the repository: `.venv/bin/python -m bench.territories` (ECARTO_DATA names the data folder,
`../shared/data` by default). Times are wall-clock and processor seconds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import shapely

from ingest.pyramid import BANDS, generalise, tolerance
from ingest.report import Report
from ingest.territories import Territories, read_epci, read_territories
from tileserver.core.mercator import geometries_to_mercator

DATA = Path(os.environ.get("ECARTO_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
SOURCES = {
    "regions": "boundaries-2018/regions-avec-outre-mer.geojson",
    "academies": "academies/fr-en-contour-academies-2020.geojson",
    "departements": "boundaries-2018/departements-avec-outre-mer.geojson",
    "communes": "boundaries-2018/communes-avec-outre-mer.geojson.gz",
}


def timed(label: str, work: Callable):
    """Run `work`, printing how long it took."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    print(f"{label:<34}{time.perf_counter() - wall:8.2f} s wall {time.process_time() - cpu:8.2f} s cpu")
    return result


def read_all(report: Report) -> dict[str, Territories]:
    """Every level of the shared data, EPCI built from the communes."""
    levels = {}
    for level, name in SOURCES.items():
        path = DATA / name
        levels[level] = timed(f"read {level}", lambda lv=level, p=path: read_territories(
            lv, p, report=report.dataset(lv, str(p))))
    decoupage = DATA / "decoupage-administratif-2026"
    levels["epci"] = timed("build epci from communes", lambda: read_epci(
        decoupage / "epci.json", levels["communes"], report=report.dataset("epci", "epci.json"),
        history=decoupage / "communes.json"))
    return levels


def main() -> None:
    report = Report()
    levels = read_all(report)
    rows = []
    for level, territories in levels.items():
        projected = timed(f"to_mercator {level}", lambda t=territories: geometries_to_mercator(t.geometries))
        bands = timed(f"generalise {level} ({len(territories)})",
                      lambda p=projected, lv=level: generalise(p, BANDS[lv], report=report.datasets[lv]))
        rows += [(level, b.minzoom, b.maxzoom, int(shapely.get_num_coordinates(b.geometries).sum())) for b in bands]
    print(f"\n{'level':<14}{'zooms':>8}{'tolerance':>12}{'vertices':>12}")
    for level, low, high, count in rows:
        last = high == BANDS[level][-1][1]
        print(f"{level:<14}{f'{low}-{high}':>8}{'full' if last else f'{tolerance(high):.0f} m':>12}{count:>12,}")
    print("\n" + report.summary())


if __name__ == "__main__":
    main()
