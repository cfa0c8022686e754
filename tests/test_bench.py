"""The bench's own parts: request spelling per server, the load generators, the table and the targets."""

from __future__ import annotations

import shutil
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench import peers, report, servers
from bench.load import Load, one_pass, wrk
from bench.processes import run_timed
from bench.suite import POSTGIS, Results, Row, _window_for
from tileserver.core.grid import BBox, Tile


class _Handler(BaseHTTPRequestHandler):
    """200 with a small body on /ok..., 404 elsewhere; keep-alive like the servers under test."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"x" * 100
        self.send_response(200 if self.path.startswith("/ok") else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        """Silent."""


@pytest.fixture
def loopback():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_each_server_spells_the_same_requests_its_own_way():
    tile, box, school = Tile(8, 130, 88), BBox(-2.0, 47.5, -1.0, 48.5), ("0350001L", 17)
    tipg = peers.tipg_api("ecarto_v20250101T000000000000")
    assert servers.OURS.tile_paths([tile]) == ["/tiles/etablissements/8/130/88.mvt"]
    assert tipg.tile_paths([tile]) == [
        "/collections/ecarto_v20250101T000000000000.etablissements/tiles/WebMercatorQuad/8/130/88"]
    assert servers.OURS.bbox_paths([box]) == ["/collections/etablissements/items?bbox=-2.0,47.5,-1.0,48.5&limit=1000"]
    assert servers.OURS.item_paths([school]) == ["/collections/etablissements/items/0350001L"]
    assert tipg.item_paths([school])[0].endswith("/items/17")
    assert peers.PYGEOAPI_API.filter_paths(["type='college'"]) == [
        "/collections/etablissements/items?filter=type%3D%27college%27&filter-lang=cql-text&limit=1000"]
    assert peers.PYGEOAPI_API.tile_paths([tile]) == []
    assert servers.STATIC.bbox_paths([box]) == []
    assert servers.OURS.search_paths(["jean moul"]) == ["/search?q=jean%20moul&limit=8"]
    assert tipg.search_paths(["ren"]) == peers.PYGEOAPI_API.search_paths(["ren"]) == []


def test_the_procfile_is_served_on_loopback_only(tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text("web: gunicorn 'tileserver.web.app:create_app()' --bind 0.0.0.0:$PORT --workers 2\n")
    expected = "gunicorn 'tileserver.web.app:create_app()' --bind 127.0.0.1:$PORT --workers 2"
    assert servers.procfile_command(procfile) == expected


def test_pygeoapi_config_names_the_version_schema():
    config = peers.pygeoapi_config("postgresql://postgres@127.0.0.1:5432/bench", "ecarto_v1", 8080, ["uai", "nom"])
    provider = config["resources"]["etablissements"]["providers"][0]
    assert provider["data"]["search_path"] == ["ecarto_v1", "public"]
    assert provider["data"]["dbname"] == "bench"
    assert (provider["id_field"], provider["properties"]) == ("uai", ["uai", "nom"])


def test_one_pass_asks_each_path_once_and_counts_errors(loopback):
    load = one_pass(loopback, [f"/ok/{i}" for i in range(50)] + ["/missing"], connections=4)
    assert (load.requests, load.errors, load.kind) == (51, 1, "pass")
    assert 0 < load.p50_ms <= load.p95_ms <= load.p99_ms


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_wrk_window_reports_throughput_latency_and_errors(loopback, tmp_path):
    load = wrk(loopback, ["/ok/a", "/ok/b", "/missing"], seconds=1, script=tmp_path / "s.lua", connections=2)
    assert load.requests > 10 and load.kind == "wrk"
    assert 0 < load.errors < load.requests  # one path in three is a 404
    assert load.p99_ms >= load.p50_ms > 0


def test_a_timed_run_reports_the_child_s_own_peak_memory(tmp_path):
    timed = run_timed([sys.executable, "-c", "b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096])"],
                      env={}, log=tmp_path / "log", timeout=60)
    assert timed.returncode == 0
    assert timed.max_rss_mb > 200


def test_slow_servers_get_a_longer_window():
    assert _window_for(Load(3000, 2.0, 0, 1, 2, 3, "wrk"), 6, 32) == 6
    assert _window_for(Load(10, 2.0, 0, 1, 2, 3, "wrk"), 6, 32) == 20
    assert _window_for(Load(0, 2.0, 0, 0, 0, 0, "wrk"), 6, 32) == 30


def test_table_gives_our_ratios_to_each_peer_and_the_targets():
    def row(server: str, scenario: str, rps: float) -> Row:
        return Row(server, scenario, Load(int(rps * 10), 10.0, 0, 1.0, 2.0, 3.0, "wrk"), 100.0)

    results = Results(rows=[row(POSTGIS, "bbox 1000", 90), row("tipg", "bbox 1000", 60),
                            row("pygeoapi", "bbox 1000", 30), row(POSTGIS, "tiles mid warm", 2000),
                            row("tipg", "tiles mid warm", 100), row("nginx-static", "tiles mid warm", 20000),
                            Row("pygeoapi", "item", note="n/a: HTTP 500")])
    table = report.table(results)
    assert "1.50x" in table and "3.00x" in table and "20.0x" in table and "10%" in table
    assert "n/a: HTTP 500" in table
    found = report.targets(results)
    assert "bbox 1000 >= 2.0x pygeoapi: 3.00x met" in found
    assert "tiles mid warm >= 10.0x tipg: 20.0x met" in found
    assert "tiles high cold >= 2.0x tipg: n/a n/a" in found
    searched = Results(rows=[Row(POSTGIS, "search", Load(100, 1.0, 0, 10.0, 40.0, 60.0, "wrk"), 100.0)])
    assert "search p95 < 50 ms, ecarto-postgis: 40.0 ms met" in report.targets(searched)


def test_results_are_written_as_json(tmp_path: Path):
    from datetime import datetime

    path = report.write_json(Results(missing=["tipg: did not start"]), directory=tmp_path, quick=True,
                             started=datetime(2026, 1, 2, 3, 4, 5).astimezone(), seconds=1.0)
    assert path.name.startswith("20260102T030405-") and path.suffix == ".json"
    assert '"not_measured": [\n  "tipg: did not start"' in path.read_text()
