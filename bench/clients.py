"""Clients a wrk window is not: one streamed download of every school, and slow clients holding connections.

A download of all schools (GeoJSON or CSV, one request) is timed to its last byte; the server's
memory while it runs says whether it streamed. Slow clients are a bounded slowloris: `count`
connections that send a request's headers a line at a time, never finishing them, while wrk
measures everybody else. A server that gives a thread to each connection until its headers are
complete (gunicorn's gthread workers) has none left for the others.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import time
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

from bench.load import HEADERS, Load
from bench.processes import repeating

SLOW_CLIENTS = 300
SLOW_LINE_SECONDS = 2.0  # one header line every this often: below every server's header timeout
STREAM_LIMIT = 200_000  # more than every school: `limit` asks for all of them in one response


def stream(url: str, *, timeout: float = 300) -> Load:
    """One GET read to its end, as a single-request Load (its latency is the time to the last byte)."""
    started = time.perf_counter()
    errors = 0
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=HEADERS), timeout=timeout) as response:
            while response.read(1 << 20):
                pass
    except OSError:
        errors = 1
    seconds = time.perf_counter() - started
    ms = seconds * 1000
    return Load(1 - errors, seconds, errors, ms, ms, ms, "stream")


@contextlib.contextmanager
def slow_clients(url: str, count: int = SLOW_CLIENTS) -> Iterator[list[socket.socket]]:
    """`count` connections to `url` trickling headers of a request they never end, for the block."""
    host, port = urlsplit(url).hostname, urlsplit(url).port
    sockets: list[socket.socket] = []
    for _ in range(count):
        with contextlib.suppress(OSError):
            sock = socket.create_connection((host, port), timeout=5)
            sock.sendall(f"GET /health HTTP/1.1\r\nHost: {host}\r\n".encode())
            sockets.append(sock)

    lines = itertools.count(1)

    def trickle() -> None:
        line = next(lines)
        for sock in list(sockets):
            try:
                sock.sendall(f"X-Slow-{line}: 1\r\n".encode())
            except OSError:  # the server gave up on it: it counts no more
                sockets.remove(sock)

    try:
        with repeating(SLOW_LINE_SECONDS, trickle):
            yield sockets
    finally:
        for sock in sockets:
            sock.close()
