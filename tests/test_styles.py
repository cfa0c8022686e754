"""Styles: valid for MapLibre's own validator, consistent with our TileJSON, built from the catalogue."""

from __future__ import annotations

import json
import subprocess
from itertools import pairwise
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from styles import palettes
from styles.catalogue import StyleSource, style_ids, theme_indicators
from styles.classes import for_aggregates, for_schools, format_number
from styles.maplibre import build_style
from tests.support.themed import ZOOMS, catalogue
from tileserver.core.settings import Settings
from tileserver.web.app import create_app

REPO = Path(__file__).resolve().parents[1]
VALIDATOR = REPO / "node_modules" / ".bin" / "gl-style-validate"
BASE = "http://localhost"


def variants(client) -> list[tuple[str, str]]:
    """Every style URL the map can ask for: each style at each level, each theme with each indicator."""
    listing = client.get("/styles").get_json()["styles"]
    urls = []
    for entry in listing:
        style = client.get(f"/styles/{entry['id']}").get_json()
        levels = ["auto", *(level["id"] for level in style["metadata"]["ecarto:levels"])]
        urls += [f"/styles/{entry['id']}?level={level}" for level in levels]
        urls += [f"/styles/{entry['id']}?indicator={i['id']}" for i in style["metadata"]["ecarto:indicators"]]
    return urls


def test_every_style_passes_the_maplibre_validator(themed_app, tmp_path):
    assert VALIDATOR.exists(), "the style-spec validator is an npm dependency: run `make setup`"
    client = themed_app.test_client()
    files = []
    for i, url in enumerate(variants(client)):
        response = client.get(url)
        assert response.status_code == 200, url
        path = tmp_path / f"{i}.json"
        path.write_text(json.dumps(response.get_json()))
        files.append(str(path))
    assert len(files) > 40
    result = subprocess.run([str(VALIDATOR), *files], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and not result.stdout, result.stdout + result.stderr


def test_every_source_and_source_layer_exists_in_its_tilejson(themed_app):
    client = themed_app.test_client()
    for url in variants(client):
        style = client.get(url).get_json()
        tilejsons = {}
        for name, source in style["sources"].items():
            assert source["url"].startswith(f"{BASE}/tiles/") or source["url"] == f"{BASE}/map/labels.json", source
            response = client.get(urlsplit(source["url"]).path)
            assert response.status_code == 200, source["url"]
            tilejsons[name] = response.get_json()
            assert all(t.startswith((f"{BASE}/tiles/", f"{BASE}/map/labels/")) for t in tilejsons[name]["tiles"])
        for layer in style["layers"]:
            if "source" in layer:
                ids = {v["id"] for v in tilejsons[layer["source"]]["vector_layers"]}
                assert layer["source-layer"] in ids, (url, layer["id"])


def test_style_zooms_and_levels_follow_the_tilejson(themed_app):
    client = themed_app.test_client()
    style = client.get("/styles/connectivite").get_json()
    for level in style["metadata"]["ecarto:levels"]:
        tilejson = client.get(f"/tiles/{level['id']}.json").get_json()
        assert (level["minzoom"], level["maxzoom"]) == (tilejson["minzoom"], tilejson["maxzoom"])
    layers = {layer["id"]: layer for layer in style["layers"]}
    bands = [(layers[f"{n}-fill"]["minzoom"], layers[f"{n}-fill"]["maxzoom"]) for n in ("regions", "departements",
                                                                                    "communes")]
    assert bands[0][0] == 0 and bands[-1][1] == 24
    assert all(a[1] == b[0] for a, b in pairwise(bands)), bands  # no gap, no overlap
    assert bands[-1][0] >= ZOOMS["communes"][0]
    assert layers["academies-fill"]["layout"]["visibility"] == "none"


def test_a_chosen_level_shows_alone_at_every_zoom(themed_app):
    layers = themed_app.test_client().get("/styles/services?level=epci").get_json()["layers"]
    fills = {layer["id"]: layer for layer in layers if layer["id"].endswith("-fill")}
    assert [i for i, layer in fills.items() if layer["layout"]["visibility"] == "visible"] == ["epci-fill"]
    assert (fills["epci-fill"]["minzoom"], fills["epci-fill"]["maxzoom"]) == (0, 24)
    shown = [layer["id"] for layer in layers if layer.get("layout", {}).get("visibility") == "visible"]
    outlines = [layer_id for layer_id in shown if layer_id.endswith("-outline")]
    assert sorted(outlines) == ["departements-outline", "epci-outline", "regions-outline"]


def published_entry(app, indicator: str) -> dict:
    """An indicator's catalogue entry as the app's version published it."""
    return next(e for e in app.extensions["ecarto.store"].current().catalogue() if e["id"] == indicator)


def test_territories_are_coloured_by_the_classes_computed_for_their_level(themed_app):
    style = themed_app.test_client().get("/styles/connectivite").get_json()
    layers = {layer["id"]: layer for layer in style["layers"]}
    fill = layers["departements-fill"]["paint"]["fill-color"]
    assert fill[0] == "case" and fill[-1] == palettes.NO_DATA
    step = fill[2]
    assert step[:2] == ["step", ["get", "debit_descendant_mbps"]]
    speed = published_entry(themed_app, "debit_descendant_mbps")
    assert step[3::2] == speed["breaks_by_level"]["departements"] != [8, 30, 100, 300]
    assert layers["communes-fill"]["paint"]["fill-color"][2][3::2] == speed["breaks_by_level"]["communes"]
    # single schools keep the catalogue's limits, set for them
    assert layers["etablissements-points"]["paint"]["circle-color"][2][3::2] == [8, 30, 100, 300]
    assert style["metadata"]["ecarto:indicator"] == "debit_descendant_mbps"
    legend = style["metadata"]["ecarto:legend"]
    labels = [c["label"] for c in legend["levels"]["departements"]["classes"]]
    assert labels[0] == f"< {format_number(speed['breaks_by_level']['departements'][0])}" and len(labels) == 5
    assert legend["territories"] == legend["levels"]["regions"]  # the first level of the automatic mode
    assert legend["auto"][0] == ["regions", 0, 6]
    assert legend["levels"]["departements"]["no_data"]["colour"] == palettes.NO_DATA


def test_the_catalogue_classes_stay_available_as_an_override(themed_app):
    style = themed_app.test_client().get("/styles/connectivite?classes=catalogue&level=departements").get_json()
    fill = next(layer for layer in style["layers"] if layer["id"] == "departements-fill")["paint"]["fill-color"]
    assert fill[2][3::2] == [8, 30, 100, 300]
    legend = style["metadata"]["ecarto:legend"]["territories"]
    assert [c["label"] for c in legend["classes"]] == ["< 8", "8 – 30", "30 – 100", "100 – 300", "≥ 300"]
    assert themed_app.test_client().get("/styles/connectivite?classes=autres").status_code == 400


def test_yes_no_indicators_are_shares_on_territories_and_clusters(themed_app):
    style = themed_app.test_client().get("/styles/services").get_json()
    layers = {layer["id"]: layer for layer in style["layers"]}
    assert style["metadata"]["ecarto:indicator"] == "ent"
    territory = layers["communes-fill"]["paint"]["fill-color"]
    ent = published_entry(themed_app, "ent")
    assert territory[2][3::2] == ent["breaks_by_level"]["communes"]
    cluster = json.dumps(layers["etablissements-clusters"]["paint"]["circle-color"])
    assert '"ent_sum"' in cluster and '"ent_n"' in cluster and '["*", 100' in cluster
    point = layers["etablissements-points"]["paint"]["circle-color"]
    assert point[0] == "match" and point[-1] == palettes.NO_DATA
    assert layers["etablissements-clusters"]["paint"]["circle-radius"][2] == ["sqrt", ["to-number",
                                                                                      ["get", "point_count"], 1]]


def test_another_indicator_of_the_theme_can_be_asked_for(themed_app):
    client = themed_app.test_client()
    style = client.get("/styles/equipement?indicator=tni_vpi").get_json()
    assert style["metadata"]["ecarto:indicator"] == "tni_vpi"
    assert "tni_vpi" in json.dumps(style["layers"])
    assert client.get("/styles/equipement?indicator=fibre").status_code == 400  # fibre is connectivite's
    assert client.get("/styles/equipement?level=cantons").status_code == 400
    response = client.get("/styles/meteo")
    assert response.status_code == 404 and response.get_json()["code"] == "NotFound"


def test_the_neutral_style_colours_schools_by_type_and_has_no_indicator(themed_app):
    style = themed_app.test_client().get("/styles/etablissements").get_json()
    points = next(layer for layer in style["layers"] if layer["id"] == "etablissements-points")
    assert points["paint"]["circle-color"][:2] == ["match", ["get", "type"]]
    assert style["metadata"]["ecarto:indicators"] == [] and style["metadata"]["ecarto:indicator"] is None
    assert [c["label"] for c in style["metadata"]["ecarto:legend"]["schools"]["classes"]] == [
        "École", "Collège", "Lycée", "Autre"]


def test_source_urls_follow_trusted_proxy_headers_and_the_base_url_setting(themed_store):
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "carto.example.org", "X-Forwarded-Prefix": "/ecarto"}
    behind = create_app(Settings(database=themed_store.url, trusted_proxies="127.0.0.1"), store=themed_store)
    style = behind.test_client().get("/styles/connectivite", headers=headers).get_json()
    assert style["sources"]["communes"]["url"] == "https://carto.example.org/ecarto/tiles/communes.json"
    configured = create_app(Settings(database=themed_store.url, base_url="https://ecarto.fr/"), store=themed_store)
    style = configured.test_client().get("/styles/connectivite", headers=headers).get_json()
    assert style["sources"]["communes"]["url"] == "https://ecarto.fr/tiles/communes.json"


def test_no_glyphs_and_no_internet_url_unless_a_basemap_is_set(themed_app, themed_store):
    style = themed_app.test_client().get("/styles/connectivite").get_json()
    assert "glyphs" not in style and "sprite" not in style  # labels use the browser's fonts
    assert all(s["url"].startswith(BASE) for s in style["sources"].values())
    basemap = "https://tiles.example.org/{z}/{x}/{y}.png"
    app = create_app(Settings(database=themed_store.url, basemap_url=basemap), store=themed_store)
    style = app.test_client().get("/styles/connectivite").get_json()
    assert style["sources"]["basemap"] == {"type": "raster", "tiles": [basemap], "tileSize": 256}
    assert [layer["id"] for layer in style["layers"][:2]] == ["background", "basemap"]


def test_styles_list_links_each_style_its_map_and_its_qgis_file(themed_app):
    styles = themed_app.test_client().get("/styles").get_json()["styles"]
    assert [s["id"] for s in styles] == ["etablissements", "connectivite", "equipement", "services",
                                         "experimentations", "contexte"]
    rels = {link["rel"]: link["href"] for link in styles[1]["links"]}
    assert rels == {"stylesheet": f"{BASE}/styles/connectivite", "describedby": f"{BASE}/map#style=connectivite",
                    "alternate": f"{BASE}/qgis/connectivite.qlr"}


def test_only_present_collections_become_sources():
    source = StyleSource(catalogue(), {"etablissements": (0, 14), "departements": (0, 12)}, BASE, 12)
    style = build_style(source, "connectivite")
    assert set(style["sources"]) == {"etablissements", "departements", "labels"}
    assert {layer.get("source") for layer in style["layers"]} == {None, "etablissements", "departements", "labels"}


def test_style_ids_come_from_the_catalogue():
    entries = catalogue()
    assert style_ids(entries)[0] == "etablissements"
    assert style_ids([e for e in entries if e["theme"] != "services"]).count("services") == 0
    assert theme_indicators(entries, "connectivite")[0]["main"] is True


def luminance(colour: str) -> float:
    """Relative luminance (WCAG 2)."""
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


@pytest.mark.parametrize("ramp", sorted(palettes.RAMPS))
def test_every_ramp_orders_its_classes_by_lightness(ramp):
    """Lightness alone tells the classes apart, which every form of colour blindness keeps."""
    for n in range(2, palettes.MAX_CLASSES + 1):
        values = [luminance(c) for c in palettes.colours(ramp, n)]
        assert all(a > b for a, b in pairwise(values)), (ramp, n, values)
        assert values[0] - values[-1] > 0.5


def test_no_data_is_neither_the_lightest_nor_the_darkest_class():
    grey = luminance(palettes.NO_DATA)
    for ramp in palettes.RAMPS:
        ends = palettes.colours(ramp, 2)
        assert luminance(ends[1]) < grey < luminance(ends[0]), ramp


def test_classes_fall_back_to_one_colour_without_breaks():
    entry = {"id": "x", "theme": "services", "label": "X", "unit": "u", "kind": "number", "aggregate": "sum",
             "breaks": [], "palette": ""}
    assert for_aggregates(entry).kind == "single" and for_schools(entry).kind == "single"
    assert for_aggregates({**entry, "aggregate": "mean", "breaks": [5, 1]}).breaks == (1.0, 5.0)


def test_styles_of_a_catalogue_with_one_theme(tmp_path, small_dataset):
    """A catalogue covering one theme still gives a style list and valid styles, never a 500."""
    from tileserver.core.settings import Settings
    from tileserver.web.app import create_app

    settings = Settings(database=str(tmp_path / "one.gpkg"), version_check_seconds=0)
    app = create_app(settings)
    app.extensions["ecarto.store"].publish(small_dataset)
    client = app.test_client()
    listed = client.get("/styles")
    assert listed.status_code == 200
    ids = [s["id"] for s in listed.get_json()["styles"]]
    assert "contexte" in ids
    assert client.get("/styles/contexte").get_json()["version"] == 8
