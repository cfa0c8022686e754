"""Issue 13's attack, timed: eight clients send a 40-term ACCENTI filter, giving up after 2 s, while one asks `/health`.

    .venv/bin/python -m bench.attack --gpkg var/ecarto.gpkg --postgis postgresql://user@host/db

Each store is served as the Procfile serves it; the line printed per store gives how the attack
requests ended and how long `/health` took meanwhile (before the fix: 671 s on PostGIS).
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import requests

from bench.features import stores_and_seconds
from bench.servers import start_ours

ATTACKERS = 8
GIVE_UP = 2.0  # seconds an attacker waits for an answer
TERM = "ACCENTI(CASEI(nom)) = ACCENTI(CASEI('xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'))"
ATTACK = "/collections/etablissements/items?limit=3&filter=" + quote(" OR ".join([TERM] * 40))


def attack(url: str, seconds: float) -> tuple[Counter, list[float]]:
    """Attack `url` for `seconds`: how the attack requests ended, and each `/health` time in seconds."""
    ended: Counter = Counter()
    health: list[float] = []
    stop = time.monotonic() + seconds

    def attacker() -> None:
        while time.monotonic() < stop:
            try:
                ended[requests.get(url + ATTACK, timeout=GIVE_UP).status_code] += 1
            except requests.RequestException:
                ended["gave up"] += 1

    threads = [threading.Thread(target=attacker) for _ in range(ATTACKERS)]
    for thread in threads:
        thread.start()
    while time.monotonic() < stop:
        started = time.monotonic()
        try:
            requests.get(url + "/health", timeout=60).raise_for_status()
        except requests.RequestException:
            ended["health failed"] += 1
        health.append(time.monotonic() - started)
    for thread in threads:
        thread.join()
    return ended, health


def measure(name: str, database: str, seconds: float) -> str:
    """One store served as the Procfile does, attacked; its line of results."""
    with tempfile.TemporaryDirectory(prefix="ecarto-attack-") as logs:
        server = start_ours(name, database, workers=2, logs=Path(logs))
        try:
            ended, health = attack(server.url, seconds)
        finally:
            server.stop()
    health.sort()
    p50, worst = health[len(health) // 2], health[-1]
    answers = ", ".join(f"{k}: {v}" for k, v in sorted(ended.items(), key=str))
    timing = f"p50 {p50 * 1000:.0f} ms, max {worst * 1000:.0f} ms"
    return f"{name:11} attack answers {{{answers}}}; /health x{len(health)}: {timing}"


def main(argv: list[str] | None = None, say: Callable[[str], None] = print) -> int:
    """Attack each store given on the command line (holding the national data) and print one line per store."""
    stores, seconds = stores_and_seconds(argv, "python -m bench.attack", __doc__)
    for name, url in stores.items():
        say(measure(name, url, seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
