"""The suite against a server started the way the Procfile starts it: `pytest --served`.

With the option, every `app.test_client()` speaks HTTP to the Procfile's `web` command (granian,
two workers: `servers.serve`), run on the app's own settings (`Settings.environ()`) and database,
instead of calling the app in the test's process. A request is built by werkzeug exactly as the
test client builds it (same headers, `Host: localhost`, same body), sent over a socket with
nothing added, and the answer comes back as the test client's response class, its bytes untouched
(gzip stays gzip). One server runs per distinct set of settings, kept for the tests that follow.

Tests that look inside the app (its caches and counters, a store patched to fail, a clock
moved) cannot be seen from outside; they are marked `in_process`, with the reason, and keep the
in-process client. `--served` does not skip them.
"""

from __future__ import annotations

import http.client
import importlib.metadata
import threading
from collections import OrderedDict
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Flask
from flask.testing import EnvironBuilder, FlaskClient
from werkzeug.test import TestResponse
from werkzeug.wrappers import Request

from tests.support.servers import LiveServer, serve

LIVE_SERVERS = 3  # servers kept running at once; the least recently used one stops first
REAL_STORES = ("tileserver.core.stores.geopackage", "tileserver.core.stores.postgis")
IN_PROCESS = threading.Event()  # set by conftest while a test marked `in_process` runs (in any of its threads)
ENVIRON_BASE = {"REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": f"Werkzeug/{importlib.metadata.version('werkzeug')}"}


class ServerPool:
    """Procfile servers by the settings they run with, started on first use and stopped at the end."""

    def __init__(self, logs: Path):
        self.logs = logs
        self._running: OrderedDict[tuple, tuple[ExitStack, LiveServer]] = OrderedDict()

    def server_for(self, app: Flask) -> LiveServer:
        """The server running `app`'s settings on its database (started now if none does)."""
        settings = app.extensions["ecarto.settings"]
        store = app.extensions["ecarto.store"]
        if not type(store).__module__.startswith(REAL_STORES):
            raise TypeError(f"an app over {type(store).__name__} cannot be served from its database: "
                            "mark the test `in_process` with the reason")
        environ = {**settings.environ(), "ECARTO_DATABASE": store.url}
        key = tuple(sorted(environ.items()))
        if key in self._running:
            self._running.move_to_end(key)
            return self._running[key][1]
        while len(self._running) >= LIVE_SERVERS:
            self._running.popitem(last=False)[1][0].close()
        stack = ExitStack()
        log = self.logs / f"served-{len(list(self.logs.iterdir()))}.log"
        fields = {name.removeprefix("ECARTO_").lower(): value for name, value in environ.items()}
        server = stack.enter_context(serve(fields.pop("database"), log, **fields))
        self._running[key] = (stack, server)
        return server

    def close(self) -> None:
        """Stop every server."""
        while self._running:
            self._running.popitem()[1][0].close()


class ServedClient:
    """What `app.test_client()` returns under `--served`: the same calls, answered over HTTP by a Procfile server."""

    def __init__(self, app: Flask, pool: ServerPool):
        self.application = app
        self.pool = pool
        self.response_class = type("ServedResponse", (TestResponse, app.response_class), {})  # as Flask's client
        self.environ_base = dict(ENVIRON_BASE)
        self.in_process = FlaskClient(app, app.response_class, use_cookies=True)  # for tests marked `in_process`
        self.in_process.environ_base = self.environ_base

    def open(self, path: str = "/", *args: Any, follow_redirects: bool = False, buffered: bool = False,
             **kwargs: Any) -> TestResponse:
        """Build the request as Flask's test client would, send it, and wrap the answer as it would."""
        if IN_PROCESS.is_set():
            return self.in_process.open(path, *args, follow_redirects=follow_redirects, buffered=buffered, **kwargs)
        kwargs["environ_base"] = {**self.environ_base, **kwargs.get("environ_base", {})}
        if kwargs["environ_base"]["REMOTE_ADDR"] != ENVIRON_BASE["REMOTE_ADDR"]:
            raise ValueError(f"a request from {kwargs['environ_base']['REMOTE_ADDR']} cannot be sent from this "
                             "machine: mark the test `in_process`")
        builder = EnvironBuilder(self.application, path, *args, **kwargs)
        try:
            environ = builder.get_environ()
        finally:
            builder.close()
        response = send(self.pool.server_for(self.application), environ, self.response_class)
        if follow_redirects and response.status_code in (301, 302, 303, 307, 308):
            return self.open(response.headers["Location"], headers=kwargs.get("headers"),
                             follow_redirects=True)
        return response

    def get(self, *args: Any, **kwargs: Any) -> TestResponse:
        return self.open(*args, method="GET", **kwargs)

    def post(self, *args: Any, **kwargs: Any) -> TestResponse:
        return self.open(*args, method="POST", **kwargs)


def send(server: LiveServer, environ: dict[str, Any], response_class: type[TestResponse]) -> TestResponse:
    """Send the request an environ describes over a fresh connection; the answer as a test response."""
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        connection.putrequest(environ["REQUEST_METHOD"], request_target(environ), skip_host=True,
                              skip_accept_encoding=True)
        for name, value in request_headers(environ):
            connection.putheader(name, value)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        connection.endheaders(environ["wsgi.input"].read(length) if length else None)
        answer = connection.getresponse()
        body = answer.read()
        status = f"{answer.status} {answer.reason}"
        headers = [(name, value) for name, value in answer.getheaders() if name.lower() not in HOP_BY_HOP]
    finally:
        connection.close()
    streamed = answer.chunked or answer.getheader("Content-Length") is None  # as the app answered it
    return response_class(iter([body]) if streamed else [body], status, headers, request=Request(environ))


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding"}  # the socket's business, not the app's answer


def request_target(environ: dict[str, Any]) -> str:
    """The path and query as a client sends them: werkzeug's raw path and query string (UTF-8 bytes as
    WSGI's latin-1 text), with what may not stand on a request line (spaces, non-ASCII) percent-encoded.

    >>> request_target({"REQUEST_URI": "/a%20b?x", "QUERY_STRING": "q=\u00c3\u00a9 x&c=EPSG:4326"})
    '/a%20b?q=%C3%A9%20x&c=EPSG:4326'
    """
    path = environ["REQUEST_URI"].partition("?")[0]  # werkzeug leaves a query given apart out of it
    query = environ.get("QUERY_STRING", "")
    target = f"{path}?{query}" if query else path
    return quote(target.encode("latin-1"), safe=REQUEST_LINE_SAFE)


REQUEST_LINE_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"<>\\^`{|}#')


def request_headers(environ: dict[str, Any]) -> list[tuple[str, str]]:
    """The headers an environ holds, named as on the wire (`HTTP_ACCEPT_ENCODING` is `Accept-Encoding`).

    >>> request_headers({"HTTP_HOST": "localhost", "CONTENT_TYPE": "application/json", "PATH_INFO": "/"})
    [('Host', 'localhost'), ('Content-Type', 'application/json')]
    """
    found = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            found.append(("-".join(part.capitalize() for part in key[5:].split("_")), value))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            found.append(("-".join(part.capitalize() for part in key.split("_")), value))
    return found
