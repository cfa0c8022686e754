"""What a new ingest landing does to a server under load: throughput and latency in short windows.

The server serves a warm tile list while an ingest runs into the same database (taking processor
and disk from it) and then publishes. Within `ECARTO_VERSION_CHECK_SECONDS` each worker serves the
new version, whose cache keys are new: every tile of the list is made again, once per worker, and
the old entries age out of the LRU. The server keeps no hit/miss counter that the bench can read,
so misses are inferred from the list (tiles x workers) and seen as the latency of the windows right
after the version changes.
"""

from __future__ import annotations

import json
import statistics
import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.load import wrk
from bench.processes import Server, Timed

WINDOW = 2.0  # seconds per measurement window
BEFORE = 2  # windows before the ingest starts
AFTER = 4  # windows after the ingest has ended and the new version is served
LIMIT = 400  # seconds the ingest may run before the bench stops watching


def watch(server: Server, paths: Sequence[str], ingest: Callable[[], Timed], *, workers: int, script: Path,
          warmup: float, say: Callable[[str], None]) -> dict:
    """Serve `paths` warm, run `ingest` meanwhile, and report every window until the new version settles."""
    wrk(server.url, paths, seconds=warmup, script=script)
    first = served_version(server)
    windows = [_window(server, paths, script, -1.0) for _ in range(BEFORE)]
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        running = pool.submit(ingest)
        left = AFTER
        while left and time.monotonic() - started < LIMIT:
            window = _window(server, paths, script, time.monotonic() - started)
            if len(windows) % 5 == 0 or window["version"] != windows[-1]["version"]:
                say(f"  t={window['t']:6.1f} s  {window['rps']:8.1f} req/s  p99 {window['p99_ms']:7.1f} ms  "
                    f"errors {window['errors']}  version {window['version']}")
            windows.append(window)
            if running.done() and window["version"] != first:
                left -= 1
            elif running.done() and running.result().returncode:
                break
        timed = running.result()
    return {"ingest": {"seconds": round(timed.seconds, 1), "max_rss_mb": round(timed.max_rss_mb),
                       "returncode": timed.returncode},
            "tiles": len(paths), "inferred_misses": len(paths) * workers, "version_before": first,
            "summary": _summary(windows, first), "windows": windows}


def served_version(server: Server) -> str | None:
    """The version id the server reports on /health (None when it cannot say)."""
    try:
        with urllib.request.urlopen(server.url + "/health", timeout=10) as response:
            return json.loads(response.read()).get("version")
    except (OSError, ValueError):
        return None


def _window(server: Server, paths: Sequence[str], script: Path, t: float) -> dict:
    """One wrk window, with the version served at its end."""
    load = wrk(server.url, paths, seconds=WINDOW, script=script)
    return {"t": round(t, 1), "rps": round(load.rps, 1), "p50_ms": round(load.p50_ms, 1),
            "p99_ms": round(load.p99_ms, 1), "errors": load.errors, "version": served_version(server)}


def _summary(windows: list[dict], first: str | None) -> dict:
    """Mean throughput and worst p99 before, during the ingest, in the first window on the new version, and after."""
    before = [w for w in windows if w["t"] < 0]
    during = [w for w in windows if w["t"] >= 0 and w["version"] == first]
    landed = [w for w in windows if w["version"] not in (first, None)]

    def part(ws: list[dict]) -> dict | None:
        if not ws:
            return None
        return {"windows": len(ws), "rps": round(statistics.mean(w["rps"] for w in ws), 1),
                "p99_ms": max(w["p99_ms"] for w in ws), "errors": sum(w["errors"] for w in ws)}

    return {"before": part(before), "during_ingest": part(during), "first_after_landing": part(landed[:1]),
            "settled": part(landed[1:])}
