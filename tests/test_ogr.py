"""A real GIS client against a live server: GDAL/OGR's OAPIF driver lists, pages and counts, on both stores.

GDAL's command-line tools come from `scripts/system-packages.sh`; without them these tests fail.
"""

from __future__ import annotations

import json
import subprocess
import threading
from urllib.parse import parse_qs

import pytest
from werkzeug.serving import make_server

from tileserver.core.settings import Settings
from tileserver.web.app import create_app


class Recorder:
    """WSGI middleware keeping the path and query of every request, to see how the client paged."""

    def __init__(self, app):
        self.app = app
        self.requests: list[tuple[str, dict]] = []

    def __call__(self, environ, start_response):
        self.requests.append((environ["PATH_INFO"], parse_qs(environ.get("QUERY_STRING", ""))))
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def live(feature_store):
    """The app over each store, served on a free port of 127.0.0.1 from a thread."""
    recorder = Recorder(create_app(Settings(database=feature_store.url), store=feature_store))
    server = make_server("127.0.0.1", 0, recorder, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", recorder
    server.shutdown()
    thread.join()


def run(*args: str) -> str:
    """A GDAL command's standard output (a failure shows its standard error)."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_ogrinfo_lists_every_collection(live, features_dataset):
    url, _ = live
    listing = run("ogrinfo", "-ro", "-q", f"OAPIF:{url}")
    names = [line.split(":", 1)[1].split("(")[0].strip() for line in listing.splitlines() if ":" in line]
    assert names == list(features_dataset.layers)


def test_ogr2ogr_pages_through_a_departement_and_counts_match(live, features_dataset, tmp_path):
    url, recorder = live
    layer = features_dataset.layers["etablissements"]
    wanted = sorted(k for k, d in zip(layer.ids, layer.columns["code_departement"], strict=True) if d == "35")
    out = tmp_path / "ille-et-vilaine.geojson"
    recorder.requests.clear()
    run("ogr2ogr", "-f", "GeoJSON", str(out), f"OAPIF:{url}", "etablissements",
        "-where", "code_departement = '35'", "-oo", "PAGE_SIZE=40")
    features = json.loads(out.read_text())["features"]
    assert sorted(f["properties"]["uai"] for f in features) == wanted
    pages = [q for path, q in recorder.requests if path == "/collections/etablissements/items"]
    filtered = [q for q in pages if q.get("code_departement") == ["35"]]  # GDAL handed the filter to the server
    assert len(pages) - len(filtered) <= 2  # the unfiltered first page GDAL reads to learn the schema
    assert all(q["limit"] == ["40"] for q in pages)
    assert sorted(int(q.get("offset", ["0"])[0]) for q in filtered) == list(range(0, len(wanted), 40))


def test_ogrinfo_feature_counts_match(live, features_dataset):
    url, _ = live
    for name, layer in features_dataset.layers.items():
        summary = run("ogrinfo", "-ro", "-so", f"OAPIF:{url}", name)
        assert f"Feature Count: {len(layer)}" in summary


def test_ogr2ogr_reads_every_school_and_every_property(live, features_dataset, tmp_path):
    url, _ = live
    out = tmp_path / "all.csv"
    run("ogr2ogr", "-f", "CSV", str(out), f"OAPIF:{url}", "etablissements", "-oo", "PAGE_SIZE=250",
        "-lco", "GEOMETRY=AS_XY")
    lines = out.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    layer = features_dataset.layers["etablissements"]
    assert len(lines) - 1 == len(layer)
    assert {"X", "Y", *(f.name for f in layer.fields)} <= set(header)
