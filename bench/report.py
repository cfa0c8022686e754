"""The bench's answer: one table with ratios to each peer, the issue's targets checked, and a JSON file.

Ratios compare throughput on the same scenario: `x tipg` is our requests per second over TiPg's,
`of static` is our warm throughput as a share of nginx serving the same tile bytes from files.
The JSON file (`bench/results/<date>-<commit>.json`, not versioned) holds every figure, so two
commits can be compared.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench.suite import GPKG, POSTGIS, Results, Row

OURS = (POSTGIS, GPKG)
ORDER = (POSTGIS, GPKG, "tipg", "pygeoapi", "nginx-static")
# (scenario prefix, peer, minimum ratio) from the issue; checked on our PostGIS server.
TARGETS = (("tiles low cold", "tipg", 2.0), ("tiles mid cold", "tipg", 2.0), ("tiles high cold", "tipg", 2.0),
           ("tiles low warm", "tipg", 10.0), ("tiles mid warm", "tipg", 10.0), ("tiles high warm", "tipg", 10.0),
           ("bbox 1000", "pygeoapi", 2.0), ("bbox 1000", "tipg", 1.5))
DOWNLOAD_TARGET = 5.0  # seconds for ogr2ogr to copy every school, pages of 1000
SEARCH_TARGET_MS = 50.0  # p95 of the map's search, each keystroke of `bench.search.PREFIXES`, per store


def table(results: Results) -> str:
    """Every measurement, grouped by scenario, with our rows' ratios to each peer and to the static ceiling."""
    head = (f"{'scenario':16} {'server':23} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6} "
            f"{'MiB':>6} {'x tipg':>7} {'x pygeoapi':>10} {'of static':>9}")
    lines = [head, "-" * len(head)]
    for scenario in _scenarios(results.rows):
        rows = sorted((r for r in results.rows if r.scenario == scenario), key=lambda r: _rank(r.server))
        by_server = {r.server: r for r in rows}
        for row in rows:
            lines.append(_line(row, by_server))
    return "\n".join(lines)


def extras(results: Results) -> str:
    """Ingests, downloads, scaling, the landing of a new version, the targets, and what was not measured."""
    lines = [f"ingest {name}: {i['seconds']} s, peak {i['max_rss_mb']} MiB, exit {i['returncode']}"
             for name, i in results.ingests.items()]
    lines += [f"ogr2ogr all schools, pages of 1000, {name}: {d['seconds']} s ({d['features']} features,"
              f" exit {d['returncode']})" for name, d in results.downloads.items()]
    lines += [f"memory of {name} (PSS MiB, main process first, then its workers): {', '.join(map(str, mib))}"
              for name, mib in results.memory.items()]
    lines += _scaling(results)
    lines += _landing(results.landing)
    lines += [f"target {t}" for t in targets(results)]
    lines += [f"not measured: {m}" for m in results.missing]
    return "\n".join(lines)


def targets(results: Results) -> list[str]:
    """The issue's targets, each with the measured ratio and whether it is met."""
    found = []
    for scenario, peer, minimum in TARGETS:
        ratio = _ratio(results.rows, scenario, POSTGIS, peer)
        verdict = "n/a" if ratio is None else ("met" if ratio >= minimum else "NOT met")
        shown = "n/a" if ratio is None else _x(ratio)
        found.append(f"{scenario} >= {minimum}x {peer}: {shown} {verdict}")
    for row in results.rows:
        if row.scenario == "search" and row.server in OURS and row.load:
            verdict = "met" if row.load.p95_ms < SEARCH_TARGET_MS else "NOT met"
            found.append(f"search p95 < {SEARCH_TARGET_MS:.0f} ms, {row.server}: {row.load.p95_ms} ms {verdict}")
    download = results.downloads.get(POSTGIS)
    if download:
        ok = download["returncode"] == 0 and download["seconds"] < DOWNLOAD_TARGET
        found.append(f"ogr2ogr all schools < {DOWNLOAD_TARGET:.0f} s: {download['seconds']} s "
                     f"{'met' if ok else 'NOT met'}")
    return found


def write_json(results: Results, *, directory: Path, quick: bool, started: datetime, seconds: float) -> Path:
    """Write every figure to `directory/<date>-<commit>.json` and return its path."""
    commit = _commit()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{started.strftime('%Y%m%dT%H%M%S')}-{commit}.json"
    document = {
        "date": started.astimezone(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "quick": quick,
        "seconds": round(seconds, 1),
        "machine": {"cpus": os.cpu_count(), "memory_gib": _memory_gib(), "python": platform.python_version(),
                    "load_average_at_start": results.load_at_start, "load_average_at_end": os.getloadavg()},
        "versions": results.versions,
        "ingests": results.ingests,
        "results": [_row_dict(r) for r in results.rows],
        "downloads": results.downloads,
        "scaling": [_row_dict(r) for r in results.scaling],
        "landing": results.landing,
        "targets": targets(results),
        "not_measured": results.missing,
    }
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False))
    return path


def _line(row: Row, by_server: dict[str, Row]) -> str:
    """One table line: the figures, or the reason they are missing."""
    if row.load is None:
        return f"{row.scenario:16} {row.server:23} {row.note}"
    load = row.load
    ratios = ["", "", ""]
    if row.server.split("+")[0] in OURS:
        ratios = [_times(row, by_server.get("tipg")), _times(row, by_server.get("pygeoapi")),
                  _share(row, by_server.get("nginx-static"))]
    memory = f"{row.memory_mb:.0f}" if row.memory_mb is not None else ""
    return (f"{row.scenario:16} {row.server:23} {load.rps:9.1f} {load.p50_ms:8.1f} {load.p95_ms:8.1f} "
            f"{load.p99_ms:8.1f} {load.errors:6d} {memory:>6} {ratios[0]:>7} {ratios[1]:>10} {ratios[2]:>9}")


def _times(ours: Row, peer: Row | None) -> str:
    if peer is None or peer.load is None or not peer.load.rps:
        return ""
    return _x(ours.load.rps / peer.load.rps)


def _x(ratio: float) -> str:
    """A ratio with two significant decimals below 10, one above.

    >>> _x(1.234), _x(123.45)
    ('1.23x', '123.5x')
    """
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.1f}x"


def _share(ours: Row, ceiling: Row | None) -> str:
    if ceiling is None or ceiling.load is None or not ceiling.load.rps:
        return ""
    return f"{100 * ours.load.rps / ceiling.load.rps:.0f}%"


def _ratio(rows: list[Row], scenario: str, ours: str, peer: str) -> float | None:
    """Our throughput over the peer's on a scenario (None when either is missing)."""
    found = {r.server: r.load for r in rows if r.scenario == scenario and r.load is not None}
    if ours not in found or peer not in found or not found[peer].rps:
        return None
    return found[ours].rps / found[peer].rps


def _scaling(results: Results) -> list[str]:
    """Throughput with one worker against two, per scenario."""
    lines = []
    for one in results.scaling:
        two = next((r for r in results.rows if r.server == POSTGIS and r.scenario == one.scenario), None)
        if one.load is None or two is None or two.load is None:
            lines.append(f"workers 1 -> 2, {one.scenario}: n/a {one.note}")
            continue
        lines.append(f"workers 1 -> 2, {one.scenario}: {one.load.rps:.1f} -> {two.load.rps:.1f} req/s "
                     f"({two.load.rps / one.load.rps:.2f}x; p99 {one.load.p99_ms:.1f} -> {two.load.p99_ms:.1f} ms)")
    return lines


def _landing(landing: dict) -> list[str]:
    """The new-ingest summary: the ingest itself, then throughput and worst p99 per phase."""
    if not landing:
        return []
    i = landing["ingest"]
    lines = [f"new ingest while serving: {i['seconds']} s, peak {i['max_rss_mb']} MiB, exit {i['returncode']};"
             f" {landing['tiles']} warm tiles, about {landing['inferred_misses']} cache misses once it lands"]
    for phase, part in landing["summary"].items():
        if part:
            lines.append(f"  {phase:20} {part['rps']:8.1f} req/s  worst p99 {part['p99_ms']:7.1f} ms  "
                         f"errors {part['errors']}  ({part['windows']} windows of 2 s)")
    return lines


def _scenarios(rows: list[Row]) -> list[str]:
    return list(dict.fromkeys(r.scenario for r in rows))


def _rank(server: str) -> int:
    return ORDER.index(server.split("+")[0]) if server.split("+")[0] in ORDER else len(ORDER)


def _row_dict(row: Row) -> dict:
    found = asdict(row)
    found["load"] = row.load.to_dict() if row.load else None
    return found


def _commit() -> str:
    """The short commit id, `-dirty` when the tree has changes (`unknown` outside git)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def _memory_gib() -> float:
    return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
