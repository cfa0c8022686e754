"""The map and embed pages, and MapLibre served from the package's vendored copy (never from a CDN)."""

from __future__ import annotations

import re

from tests.conftest import REPO
from tileserver.web.maps import MAPLIBRE_DIST, VENDOR_FILES


def test_the_map_page_loads_maplibre_from_this_server(themed_app):
    html = themed_app.test_client().get("/map").get_data(as_text=True)
    assert '<script type="module" src="/static/map.js">' in html
    assert 'href="/static/vendor/maplibre-gl/maplibre-gl.css"' in html
    assert not re.search(r"(src|href)=\"https?://(?!localhost)", html)  # nothing from another host
    assert 'id="panel"' in html and 'data-default-style="connectivite"' in html
    for level in ("regions", "academies", "departements", "epci", "communes"):
        assert f'<option value="{level}">' in html


def test_the_embedded_map_has_no_controls(themed_app):
    html = themed_app.test_client().get("/map?embed=1").get_data(as_text=True)
    assert 'id="panel"' not in html and 'class="embed"' in html and 'id="legend"' in html


def test_maplibre_module_and_worker_are_served_from_the_package(themed_app):
    client = themed_app.test_client()
    with client.get("/static/vendor/maplibre-gl/maplibre-gl.mjs") as module:
        assert module.status_code == 200 and module.mimetype == "text/javascript"
        assert b"maplibre-gl-worker.mjs" in module.data  # the worker is found beside the module
    with client.get("/static/vendor/maplibre-gl/maplibre-gl-worker.mjs") as worker:
        assert worker.status_code == 200
    with client.get("/static/vendor/maplibre-gl/maplibre-gl.css") as css:
        assert css.mimetype == "text/css"
    with client.get("/static/vendor/maplibre-gl/LICENSE.txt") as licence:  # BSD-3-Clause: shipped with its files
        assert b"MapLibre contributors" in licence.data
    assert client.get("/static/vendor/maplibre-gl/package.json").status_code == 404
    assert client.get("/static/vendor/maplibre-gl/..%2F..%2Fpackage.json").status_code == 404


def test_the_map_script_imports_maplibre_relatively(themed_app):
    with themed_app.test_client().get("/static/map.js") as response:
        assert "from './vendor/maplibre-gl/maplibre-gl.mjs'" in response.get_data(as_text=True)


def test_the_embed_page_gives_snippets_with_absolute_urls(themed_app):
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "carto.example.org"}
    html = themed_app.test_client().get("/embed", headers=headers).get_data(as_text=True)
    assert "style: 'https://carto.example.org/styles/connectivite'," in html
    assert '&lt;iframe src="https://carto.example.org/map?embed=1#style=connectivite' in html
    assert "https://carto.example.org/tiles/communes.json" in html
    assert "OpenLayers" in html and "Leaflet" in html
    assert 'href="https://carto.example.org/qgis/connectivite.qlr"' in html


def test_the_vendored_maplibre_is_the_one_package_json_installs():
    """After upgrading maplibre-gl with npm, `make vendor` copies the new files into the package."""
    npm = REPO / "node_modules" / "maplibre-gl"
    assert npm.is_dir(), "run `npm install` (make test does)"
    for name in VENDOR_FILES:
        source = npm / ("LICENSE.txt" if name == "LICENSE.txt" else f"dist/{name}")
        assert (MAPLIBRE_DIST / name).read_bytes() == source.read_bytes(), f"{name} differs: run `make vendor`"
