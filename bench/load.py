"""Load generators: wrk for timed windows, one pass of distinct requests for cold runs, ogr2ogr downloads.

wrk (one thread, 32 connections, `--latency`) cycles through a fixed list of paths given in a
generated Lua script; its `done` hook prints one JSON line we read back. A cold run must ask each
tile exactly once, which wrk cannot stop at, so it is a pool of keep-alive connections in threads
that walks the list once and times every request. Every request says `Accept-Encoding: gzip`, as
browsers and MapLibre do.
"""

from __future__ import annotations

import http.client
import json
import math
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

CONNECTIONS = 32
HEADERS = {"Accept-Encoding": "gzip", "Accept": "application/vnd.mapbox-vector-tile, application/geo+json, */*"}
TIMEOUT = 30  # seconds a single request may take before it counts as an error


@dataclass(frozen=True)
class Load:
    """What one measurement saw: throughput, latency percentiles (ms), errors."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    kind: str  # "wrk" (timed window) or "pass" (each path once)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        found = {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}
        return {**found, "rps": round(self.rps, 1)}


def wrk(url: str, paths: Sequence[str], *, seconds: float, script: Path,
        connections: int = CONNECTIONS) -> Load:
    """Drive `url` with wrk for `seconds`, cycling through `paths`."""
    script.write_text(_lua(paths))
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", f"--timeout={TIMEOUT}s",
               "-s", str(script), url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + TIMEOUT + 30, check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("BENCH "))
    raw = json.loads(line.removeprefix("BENCH "))
    errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
    return Load(raw["requests"], raw["duration_us"] / 1e6, errors,
                raw["p50"] / 1000, raw["p95"] / 1000, raw["p99"] / 1000, "wrk")


def one_pass(url: str, paths: Sequence[str], *, connections: int = CONNECTIONS, budget: float = 120) -> Load:
    """Ask each path once over `connections` keep-alive connections; stop starting new ones after `budget` s."""
    host = urlsplit(url)
    local = threading.local()
    opened: list[http.client.HTTPConnection] = []
    deadline = time.monotonic() + budget

    def ask(path: str) -> tuple[float, bool] | None:
        if time.monotonic() > deadline:
            return None
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection(host.hostname, host.port, timeout=TIMEOUT)
            opened.append(local.conn)
        start = time.perf_counter()
        try:
            local.conn.request("GET", path, headers=HEADERS)
            response = local.conn.getresponse()
            response.read()
            ok = response.status < 400
        except (OSError, http.client.HTTPException):
            local.conn.close()
            ok = False
        return time.perf_counter() - start, ok

    start = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        done = [r for r in pool.map(ask, paths) if r is not None]
    seconds = time.perf_counter() - start
    for conn in opened:
        conn.close()
    latencies = sorted(r[0] * 1000 for r in done)
    return Load(len(done), seconds, sum(not ok for _, ok in done),
                _percentile(latencies, 50), _percentile(latencies, 95), _percentile(latencies, 99), "pass")


@dataclass(frozen=True)
class Download:
    """One ogr2ogr download of a whole collection through OGC API - Features."""

    seconds: float
    features: int
    returncode: int


def ogr2ogr(url: str, layer: str, *, out: Path, page_size: int = 1000, timeout: float = 120) -> Download:
    """Time `ogr2ogr` copying every feature of `layer` (GeoJSONSeq, one feature a line) with pages of `page_size`."""
    out.unlink(missing_ok=True)
    command = ["ogr2ogr", "-f", "GeoJSONSeq", str(out), f"OAPIF:{url}", layer, "-oo", f"PAGE_SIZE={page_size}"]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout)
        code = done.returncode
    except subprocess.TimeoutExpired:
        code = -1
    seconds = time.perf_counter() - start
    features = sum(1 for _ in out.open("rb")) if out.exists() else 0
    out.unlink(missing_ok=True)
    return Download(seconds, features, code)


def have_wrk() -> bool:
    """True when wrk is on the PATH."""
    return shutil.which("wrk") is not None


def _percentile(ordered: Sequence[float], p: float) -> float:
    """The nearest-rank percentile of sorted values (NaN when empty).

    >>> _percentile([1.0, 2.0, 3.0, 4.0], 50), _percentile([1.0, 2.0, 3.0, 4.0], 99)
    (2.0, 4.0)
    """
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _lua(paths: Sequence[str]) -> str:
    """The wrk script: cycle through `paths`, then print the summary as one JSON line."""
    listed = ",\n".join(json.dumps(p) for p in paths)  # a JSON string of ASCII is a valid Lua string
    headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in HEADERS.items())
    return f"""
local paths = {{
{listed}
}}
local i = 0
{headers}
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50":%d,"p95":%d,"p99":%d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""
