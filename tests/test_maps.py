"""The map and embed pages, MapLibre served from the package's vendored copy (never from a CDN), and the label tiles."""

from __future__ import annotations

import re

import mapbox_vector_tile

from tests.support.national import REPO
from tileserver.core.settings import Settings
from tileserver.web.app import create_app
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


def test_the_embed_page_gives_snippets_with_absolute_urls(themed_store):
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "carto.example.org"}
    behind = create_app(Settings(database=themed_store.url, trusted_proxies="127.0.0.1"), store=themed_store)
    html = behind.test_client().get("/embed", headers=headers).get_data(as_text=True)
    assert "style: 'https://carto.example.org/styles/connectivite'," in html
    assert '&lt;iframe src="https://carto.example.org/map?embed=1#style=connectivite' in html
    assert "https://carto.example.org/tiles/communes.json" in html
    assert "OpenLayers" in html and "Leaflet" in html
    assert 'href="https://carto.example.org/qgis/connectivite.qlr"' in html


def _label_names(client, z: int) -> dict[str, list[str]]:
    """Every territory name in every label tile of zoom z, per level."""
    names: dict[str, list[str]] = {}
    for x in range(1 << z):
        for y in range(1 << z):
            response = client.get(f"/map/labels/{z}/{x}/{y}.mvt")
            assert response.status_code in (200, 204)
            for level, layer in mapbox_vector_tile.decode(response.data).items():
                names.setdefault(level, []).extend(f["properties"]["nom"] for f in layer["features"])
    return names


def test_each_territory_has_one_label_point_in_one_tile(themed_app):
    client = themed_app.test_client()
    collections = client.get("/collections?f=json").get_json()["collections"]
    territories = {c["id"] for c in collections if c["id"] != "etablissements"}
    tilejson = client.get("/map/labels.json").get_json()
    assert {layer["id"] for layer in tilejson["vector_layers"]} == territories
    names = _label_names(client, 3)
    for level in ("regions", "departements"):
        listed = client.get(f"/collections/{level}/items?f=json&limit=1000").get_json()["features"]
        assert sorted(names[level]) == sorted(f["properties"]["nom"] for f in listed)  # each once
    assert "communes" not in names  # not before the communes' own first zoom


def test_a_label_tile_outside_the_grid_is_a_client_error(themed_app):
    client = themed_app.test_client()
    assert client.get("/map/labels/2/9/0.mvt").status_code == 404
    assert client.get("/map/labels/x/0/0.mvt").status_code == 400


def test_the_map_page_offers_a_style_url_basemap_but_not_a_raster_template(themed_store):
    style_url = "https://data.example.org/styles/plan.json"
    app = create_app(Settings(database=themed_store.url, basemap_url=style_url), store=themed_store)
    assert f'data-basemap="{style_url}"' in app.test_client().get("/map").get_data(as_text=True)
    raster = create_app(Settings(database=themed_store.url, basemap_url="https://t.example.org/{z}/{x}/{y}.png"),
                        store=themed_store)
    assert 'data-basemap=""' in raster.test_client().get("/map").get_data(as_text=True)


def test_label_tiles_name_each_territory_once_on_both_stores(feature_app):
    client = feature_app.test_client()
    names = _label_names(client, 2)
    listed = client.get("/collections/departements/items?f=json&limit=100").get_json()["features"]
    assert sorted(names["departements"]) == sorted(f["properties"]["nom"] for f in listed)


def test_the_vendored_maplibre_is_the_one_package_json_installs():
    """After upgrading maplibre-gl with npm, `make vendor` copies the new files into the package."""
    npm = REPO / "node_modules" / "maplibre-gl"
    assert npm.is_dir(), "run `npm install` (make test does)"
    for name in VENDOR_FILES:
        source = npm / ("LICENSE.txt" if name == "LICENSE.txt" else f"dist/{name}")
        assert (MAPLIBRE_DIST / name).read_bytes() == source.read_bytes(), f"{name} differs: run `make vendor`"
