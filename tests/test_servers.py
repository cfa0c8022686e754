"""What clients see of the app on each HTTP server the Procfile names: granian (its `web:` line) and gunicorn.

The app is the same; the server in front of it decides how bodies stream, how headers are written,
how a stop or a reload treats requests in flight, and how `ecarto serve` logs. Each test runs on
both servers, each started as the Procfile starts it (`tests.support.servers`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from flask.testing import FlaskClient

from bench.processes import free_port, listening_processes
from tests.support.served import ServedClient, ServerPool
from tests.support.servers import SERVERS, TcpProxy, command_line, serve
from tileserver.cli import SERVERS as SERVE_COMMANDS

ITEMS = "/collections/etablissements/items"
TILE = "/tiles/etablissements/9/253/177.mvt"  # Rennes: a hundred schools, worth gzipping
HANG = 30.0
REPO = Path(__file__).resolve().parents[1]
STOPPING = (b"Shutting down granian", b"Handling signal: term")  # what each logs when SIGTERM arrives


@pytest.fixture(scope="module", params=SERVERS)
def live(request, geopackage_store, tmp_path_factory):
    """The GeoPackage of `features_dataset` served by one server, as the Procfile runs it."""
    with serve(geopackage_store.url, tmp_path_factory.mktemp("live") / "server.log", server=request.param) as server:
        yield server


def test_a_big_page_streams_in_chunks(live):
    response = live.get(f"{ITEMS}?limit=1000", headers={"Accept-Encoding": "identity"}, stream=True)
    assert response.status_code == 200
    assert response.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.headers
    body = json.loads(response.content)
    assert body["numberReturned"] == len(body["features"]) > 100


def test_a_csv_streams_every_row(live):
    response = live.get(f"{ITEMS}?f=csv&limit=1000")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert len(response.text.splitlines()) == live.get(f"{ITEMS}?limit=1").json()["numberMatched"] + 1


def test_a_tile_from_the_shortcut_is_gzipped_cached_and_shared(live):
    first = live.get(TILE, headers={"Accept-Encoding": "gzip", "Origin": "https://example.org"})
    assert first.status_code == 200
    assert first.headers["Content-Encoding"] == "gzip"
    assert first.headers["Access-Control-Allow-Origin"] == "*"
    assert first.headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    again = live.get(TILE, headers={"If-None-Match": first.headers["ETag"]})
    assert (again.status_code, again.content, again.headers["ETag"]) == (304, b"", first.headers["ETag"])


def test_errors_keep_their_status_and_ogc_body(live):
    unknown = live.get("/collections/nowhere/items")
    bad = live.get(f"{ITEMS}?bbox=1,2,three,4")
    tile = live.get("/tiles/nowhere/3/2/1.mvt")
    assert (unknown.status_code, bad.status_code, tile.status_code) == (404, 400, 404)
    assert {unknown.json()["code"], bad.json()["code"], tile.json()["code"]} <= {"NotFound", "InvalidParameterValue"}


def test_a_reload_on_sighup_replaces_the_workers_and_refuses_no_connection(live):
    """New connections are answered throughout a reload (an idle keep-alive one may be closed, as always).

    A worker the reload stops may drop the odd connection it had accepted but not yet read (both
    servers do, rarely); neither may refuse connections, as granian did for seconds when its new
    worker booted slower than its default respawn interval.
    """
    before = set(live.worker_pids())
    failures: list[str] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                status = live.get(TILE, headers={"Connection": "close"}, timeout=HANG).status_code
            except requests.RequestException as error:
                failures.append(str(error))
                continue
            if status != 200:
                failures.append(str(status))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    live.process.send_signal(signal.SIGHUP)
    try:
        _wait_for(lambda: len(set(live.worker_pids()) - before) == len(before) and live.listening(), "a reload")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not [failure for failure in failures if "refused" in failure], failures[:5]
    assert all("Connection aborted" in failure for failure in failures), failures[:5]


@pytest.mark.parametrize("http", SERVERS)
def test_sigterm_lets_a_request_in_flight_finish(http, postgis_store, tmp_path):
    upstream = urlsplit(postgis_store.url)
    netloc = f"{upstream.username + '@' if upstream.username else ''}127.0.0.1"
    with TcpProxy((upstream.hostname, upstream.port or 5432)) as proxy:
        database = upstream._replace(netloc=f"{netloc}:{proxy.port}").geturl()
        with serve(database, tmp_path / "server.log", server=http, version_check_seconds=3600,
                   db_timeout_seconds=2 * HANG) as server:
            assert server.get(f"{ITEMS}?limit=5").status_code == 200
            proxy.hold()
            answers: list[requests.Response] = []
            asking = threading.Thread(target=lambda: answers.append(server.get(f"{ITEMS}?limit=100&offset=7")))
            asking.start()
            assert proxy.stalled.wait(HANG), "the request never reached the database"
            server.process.send_signal(signal.SIGTERM)
            _wait_for(lambda: any(line in server.log.read_bytes() for line in STOPPING), "the server to stop")
            proxy.release()
            asking.join(HANG)
            assert server.process.wait(HANG) == 0
    assert answers and answers[0].status_code == 200
    assert answers[0].json()["numberReturned"] == 100


@pytest.mark.parametrize("http", SERVERS)
def test_ecarto_serve_logs_its_address_and_every_request(http, geopackage_store, tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "tileserver.cli", "serve", "--server", http, "--database",
               geopackage_store.url, "--bind", f"127.0.0.1:{port}"]
    with open(log, "wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        _wait_for(lambda: _answers(f"http://127.0.0.1:{port}/collections/etablissements") or process.poll() is not None,
                  "ecarto serve to answer")
        _wait_for(lambda: b"GET /collections/etablissements " in log.read_bytes(), "the access log line")
        # a worker still booting would hold SIGTERM until granian's --workers-kill-timeout
        _wait_for(lambda: listening_processes(process.pid, port) >= 2, "every worker to listen")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(2 * HANG)  # granian kills a worker deaf to SIGTERM after its 30 s
        finally:
            process.kill()
            process.wait()
    text = log.read_text()
    assert f"with {http} on http://127.0.0.1:{port}/" in text
    assert "GET /collections/etablissements " in text


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _wait_for(condition, what: str, seconds: float = HANG) -> None:
    """Poll `condition` until it holds (it reads an event the test cannot be told of directly)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds:.0f} s for {what}")
        time.sleep(0.05)


@pytest.mark.parametrize("http", SERVERS)
def test_ecarto_serve_runs_the_procfile_command_with_an_access_log(http):
    port = free_port()
    procfile = command_line(port, 3, http)
    ours = SERVE_COMMANDS[http]("127.0.0.1", port, 3, 4)
    access_log = {"granian": {"--access-log"}, "gunicorn": {"--access-logfile", "-"}}
    assert set(ours) - set(procfile) == access_log[http]
    assert set(procfile) <= set(ours)


def test_served_clients_answer_as_the_in_process_client_over_the_procfile_server(feature_app, tmp_path):
    """`pytest --served` (tests/support/served.py): the same request, answered by granian, as the app answers it."""
    pool = ServerPool(tmp_path)
    try:
        served_client = ServedClient(feature_app, pool)
        in_process = FlaskClient(feature_app, feature_app.response_class)
        for path, query in ((TILE, None), (ITEMS, {"limit": "3", "filter": "nom LIKE 'É%'"}), ("/nowhere", None)):
            over_http = served_client.get(path, query_string=query, headers={"Accept-Encoding": "gzip"})
            direct = in_process.get(path, query_string=query, headers={"Accept-Encoding": "gzip"})
            assert (over_http.status_code, over_http.data) == (direct.status_code, direct.data), path
            assert over_http.headers["Server"] == "granian" and "Server" not in direct.headers
        assert served_client.get(ITEMS, query_string={"limit": "1000", "f": "csv"}).is_streamed
    finally:
        pool.close()
