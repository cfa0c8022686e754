"""Live servers for the reliability tests: our app started as the Procfile does, and a TCP proxy to cut.

`serve` runs the Procfile's `web` command (granian), or its commented gunicorn line when asked, on
a free port of 127.0.0.1 and stops it afterwards; `TcpProxy` stands between that server and
PostgreSQL, so a test can take the database away (existing connections reset, new ones refused)
and give it back without touching the shared PostgreSQL server.
"""

from __future__ import annotations

import os
import select
import shlex
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import requests
from werkzeug.serving import make_server

from bench.processes import LISTEN, established_sockets, free_port
from bench.servers import procfile_command, procfile_commands

STARTUP_SECONDS = 30.0
SERVERS = tuple(procfile_commands())  # the Procfile's web server first, then the one it keeps commented


@dataclass
class LiveServer:
    """A running server: its base URL, its main process, its log and which server it is (granian, gunicorn)."""

    url: str
    process: subprocess.Popen
    log: Path
    server: str

    def get(self, path: str, **kwargs) -> requests.Response:
        """GET `path` on the server (a fresh connection, so each call may reach another worker)."""
        kwargs.setdefault("timeout", 30)
        return requests.get(self.url + path, **kwargs)

    def worker_pids(self) -> list[int]:
        """The workers: the children of the main process (gunicorn's and granian's alike)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        return [int(pid) for pid in children.split()]

    def connections(self) -> dict[int, int]:
        """How many client connections each worker holds."""
        port = int(self.url.rsplit(":", 1)[1])
        return {pid: established_sockets(pid, port) for pid in self.worker_pids()}

    def listening(self) -> bool:
        """Whether every worker holds a listening socket: granian's workers each open their own, once booted."""
        port = int(self.url.rsplit(":", 1)[1])
        try:
            return all(established_sockets(pid, port, state=LISTEN) for pid in self.worker_pids())
        except OSError:  # a worker ended while we looked (a reload): not yet
            return False

    def rss(self) -> dict[int, int]:
        """Resident memory of each worker, in bytes."""
        return {pid: resident_bytes(pid) for pid in self.worker_pids()}


def resident_bytes(pid: int) -> int:
    """A process's resident set size (VmRSS), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"process {pid} has no VmRSS")


@contextmanager
def serve(database: str, log: Path, *, workers: int = 2, server: str | None = None,
          **settings: object) -> Iterator[LiveServer]:
    """`database` served with the Procfile's command (running `server`); `settings` become `ECARTO_<NAME>`s."""
    port = free_port()
    env = {**os.environ, "ECARTO_DATABASE": database,
           **{f"ECARTO_{name.upper()}": str(value) for name, value in settings.items()}}
    with open(log, "wb") as output:
        process = subprocess.Popen(command_line(port, workers, server), env=env, cwd=log.parent, stdout=output,
                                   stderr=subprocess.STDOUT)
    server = LiveServer(f"http://127.0.0.1:{port}", process, log, server or SERVERS[0])
    try:
        _wait_until_up(server, workers)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def command_line(port: int, workers: int, server: str | None = None) -> list[str]:
    """The Procfile's command running `server`, bound to 127.0.0.1:`port`, run by this interpreter's module."""
    words = shlex.split(procfile_command(server=server))
    values = {"$PORT": str(port), "${WEB_CONCURRENCY:-2}": str(workers)}
    for name, value in values.items():
        words = [word.replace(name, value) for word in words]
    return [sys.executable, "-m", *words]


def _wait_until_up(server: LiveServer, workers: int) -> None:
    """Wait until the server answers and every worker has booted; its log is in the error otherwise."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            server.get("/conformance", timeout=10)
            if len(server.worker_pids()) == workers and server.listening():
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not start; its log:\n{server.log.read_text()[-4000:]}")


class TcpProxy:
    """A TCP proxy on 127.0.0.1 to `upstream`, whose link can be cut and restored.

    `cut()` is what losing the database looks like from the client side: every open connection is
    reset (RST) and the port refuses new ones. `restore()` listens again on the same port. `hold()`
    is a database that stalls: nothing is relayed until `release()`, and `stalled` is set once a
    query waits.
    """

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.port = 0
        self._lock = threading.Lock()
        self._generation = 0  # bumped by each cut; links of an older generation reset themselves
        self._threads: list[threading.Thread] = []
        self._released = threading.Event()
        self._released.set()
        self.stalled = threading.Event()

    def __enter__(self) -> TcpProxy:
        self.restore()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()

    def restore(self) -> None:
        """Listen (again) and relay every new connection."""
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._start(self._accept, listener, self._generation)

    def cut(self) -> None:
        """Reset every relayed connection and stop listening; returns once all is closed."""
        with self._lock:
            self._generation += 1
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(timeout=5)

    def hold(self) -> None:
        """Relay nothing more until `release()`; the bytes sent meanwhile wait in the sockets."""
        self.stalled.clear()
        self._released.clear()

    def release(self) -> None:
        """Relay again what waited and whatever comes next."""
        self._released.set()

    def _start(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket, generation: int) -> None:
        """Accept connections until the next cut, then close the port (queued clients are refused)."""
        with listener:
            while self._generation == generation:
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                try:
                    server = socket.create_connection(self.upstream, timeout=5)
                except OSError:
                    _reset(client)
                    continue
                with self._lock:
                    if self._generation != generation:
                        _reset(client, server)
                        return
                    self._start(self._relay, client, server, generation)

    def _relay(self, client: socket.socket, server: socket.socket, generation: int) -> None:
        """Copy bytes both ways until one side closes (close the other) or a cut (reset both)."""
        peers = {client: server, server: client}
        try:
            while self._generation == generation:
                ready, _, _ = select.select(list(peers), [], [], 0.05)
                if not self._released.is_set():
                    if client in ready:  # the server's client (our app) sent a query that now waits
                        self.stalled.set()
                    self._released.wait(0.05)
                    continue
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        client.close()
                        server.close()
                        return
                    peers[source].sendall(data)
        except OSError:
            pass
        _reset(client, server)


def _reset(*sockets: socket.socket) -> None:
    """Close sockets with an RST rather than a FIN: the peer sees 'connection reset'."""
    for sock in sockets:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


@contextmanager
def serving_in_thread(app) -> Iterator[str]:
    """`app` served by werkzeug in a thread on a free port of 127.0.0.1 (for clients that need a real URL)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
