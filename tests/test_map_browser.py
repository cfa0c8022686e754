"""The map page in headless Chromium, on a live server over the real ingest of sources/local.toml.

`tests/browser/map.mjs` (playwright-core with Debian's chromium) walks the page once, at 1280x800,
on a 390x844 phone and embedded, and reports what it saw; each test below checks one part of it.
Screenshots are left in tests/screenshots/ (the path is printed). Where the app has no `/search`
yet, the test app gets one that answers the endpoint's contract from the store, so the map's search
is driven the same way.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, jsonify, request

from tests.support.servers import serving_in_thread
from tileserver.core.settings import Settings
from tileserver.core.store import FeatureQuery
from tileserver.core.textfold import accenti, casei
from tileserver.web import context
from tileserver.web.app import create_app

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "browser" / "map.mjs"
SCREENSHOTS = REPO / "tests" / "screenshots"

pytestmark = [pytest.mark.slow, pytest.mark.browser]


BASEMAP_PATH = "/test-basemap/style.json"
BASEMAP = {  # a base map style of our own: a background and one polygon over Brittany
    "version": 8, "name": "test base map",
    "sources": {"land": {"type": "geojson", "data": {"type": "Polygon", "coordinates": [
        [[-5.0, 47.3], [-1.0, 47.3], [-1.0, 48.9], [-5.0, 48.9], [-5.0, 47.3]]]}}},
    "layers": [{"id": "background", "type": "background", "paint": {"background-color": "#e8e4da"}},
               {"id": "land", "type": "fill", "source": "land", "paint": {"fill-color": "#c9d8b6"}}],
}


@pytest.fixture(scope="module")
def live_url(national_gpkg):
    """The app over the national GeoPackage, served on a free port of 127.0.0.1."""
    app = _app(Settings(database=national_gpkg.url))
    with serving_in_thread(app) as url:
        yield url
    app.extensions["ecarto.store"].close()


@pytest.fixture(scope="module")
def basemap_url(national_gpkg):
    """The same app with ECARTO_BASEMAP_URL naming a MapLibre style (served by this test app)."""
    app = _app(Settings(database=national_gpkg.url, basemap_url=BASEMAP_PATH))
    app.add_url_rule(BASEMAP_PATH, "test_basemap", lambda: jsonify(BASEMAP))
    with serving_in_thread(app) as url:
        yield url
    app.extensions["ecarto.store"].close()


def _app(settings: Settings) -> Flask:
    """The app, with the search and indicator endpoints' contracts where main has no such endpoint yet."""
    app = create_app(settings)
    served = {rule.rule for rule in app.url_map.iter_rules()}
    if "/search" not in served:
        _add_contract_search(app)
    if "/indicators" not in served:
        app.add_url_rule("/indicators", "contract_indicators", _contract_indicators)
    return app


def _contract_indicators():
    """`GET /indicators` as its contract says, with only what the version's catalogue holds (test only).

    The catalogue has no producer, dataset link, licence or vintage yet: the legend must say so.
    """
    entries = context.snapshot().catalogue()
    return jsonify([{"id": e["id"], "theme": e["theme"], "title": e["label"], "description": e.get("description", ""),
                     "unit": e.get("unit", "")} for e in entries])


def _add_contract_search(app: Flask) -> None:
    """`GET /search?q=&limit=` as the search endpoint's contract says, over communes and schools (test only)."""
    names: list[tuple[str, dict]] = []

    def load() -> None:
        snap = context.snapshot()
        wanted = {"communes": ("nom", "code_departement"), "etablissements": ("nom", "nom_commune")}
        for collection, properties in wanted.items():
            query = FeatureQuery(collection=collection, properties=properties, limit=200_000)
            for feature in snap.query(query).features:
                names.append((_folded(feature.properties["nom"] or ""), _result(collection, feature)))

    def search():
        if not names:
            load()
        text, limit = _folded(request.args.get("q", "")), int(request.args.get("limit", 8))
        ranked = sorted((rank, i) for i, (name, _) in enumerate(names)
                        if (rank := _rank(name, text)) is not None)
        return jsonify({"query": request.args.get("q", ""), "results": [names[i][1] for _, i in ranked[:limit]]})

    app.add_url_rule("/search", "contract_search", search)


def _folded(text: str) -> str:
    return casei(accenti(text))


def _rank(name: str, text: str) -> int | None:
    """0 for the exact name, 1 for a prefix, 2 for any other match, None for none."""
    if not text or text not in name:
        return None
    return 0 if name == text else 1 if name.startswith(text) else 2


def _result(collection: str, feature) -> dict:
    props, (west, south, east, north) = feature.properties, feature.geometry.bounds
    label = (f"{props['nom']} ({props['code_departement']})" if collection == "communes"
             else f"{props['nom']} — {props.get('nom_commune') or ''}")
    return {"collection": collection, "id": feature.id, "name": props["nom"], "label": label,
            "bbox": [west, south, east, north], "href": f"/collections/{collection}/items/{feature.id}"}


@pytest.fixture(scope="module")
def walk(live_url, basemap_url) -> dict:
    """What the browser saw on its walk through the map (and on the map over a base map)."""
    assert (REPO / "node_modules" / "playwright-core").exists(), "run `make setup` (npm install)"
    assert (REPO / "node_modules" / "axe-core" / "axe.min.js").exists(), "run `make setup` (npm install)"
    result = subprocess.run(["node", str(SCRIPT), live_url, str(SCREENSHOTS), basemap_url], capture_output=True,
                            text=True, timeout=900, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    print(f"screenshots in {SCREENSHOTS}")
    return json.loads(result.stdout)


def test_the_console_has_no_errors(walk):
    assert walk["console"] == []


def test_schools_and_territories_are_rendered(walk):
    counts = walk["steps"]["start"]["counts"]
    assert counts.get("etablissements-clusters", 0) > 20
    assert counts.get("departements-fill", 0) > 5 and counts.get("regions-outline", 0) > 0


def test_each_territory_is_named_once(walk):
    start = walk["steps"]["start"]["labels"]
    names = start["departements-label"]
    assert "Ille-et-Vilaine" in names and len(names) == len(set(names))
    rennes = walk["steps"]["zoom13"]["labels"]["communes-label"]
    assert rennes.count("Rennes") == 1


def test_switching_theme_changes_the_rendering(walk):
    start, theme = walk["steps"]["start"], walk["steps"]["theme"]
    assert "debit_descendant_mbps" in start["fills"]["departements-fill"]["colour"]
    assert "terminaux_pour_100_eleves" in theme["fills"]["departements-fill"]["colour"]
    assert Path(start["screenshot"]).read_bytes() != Path(theme["screenshot"]).read_bytes()
    assert "style=equipement" in theme["hash"]


def test_units_are_not_doubled(walk):
    options = walk["steps"]["theme"]["options"]
    assert "Terminaux pour 100 élèves" in options and not any("(terminaux)" in o for o in options)
    assert walk["steps"]["legend"]["title"].startswith("Terminaux pour 100 élèves")
    assert "(terminaux)" not in walk["steps"]["legend"]["title"]


def test_the_legend_gives_each_indicator_its_source(walk):
    legend = walk["steps"]["legend"]
    assert legend["line"].startswith("Source")
    assert legend["expanded"] == "true"
    for term in ("Définition", "Unité", "Producteur", "Jeu de données", "Licence", "Millésime"):
        assert term in legend["about"]
    assert "Ordinateurs et tablettes à disposition des élèves" in legend["about"]  # the catalogue's definition
    assert "source non renseignée" in legend["about"] or "http" in legend["about"]


def test_switching_level_changes_the_rendering(walk):
    theme, level = walk["steps"]["theme"], walk["steps"]["level"]
    assert level["counts"].get("communes-fill", 0) > 100
    assert "departements-fill" not in level["counts"]
    assert not level["fills"]["departements-fill"]["visible"] and level["fills"]["communes-fill"]["visible"]
    assert Path(theme["screenshot"]).read_bytes() != Path(level["screenshot"]).read_bytes()
    assert "level=communes" in level["hash"]


def test_clicking_a_school_opens_its_sheet_and_escape_closes_it(walk):
    click = walk["steps"]["click"]
    assert click["target"], "no single school rendered at zoom 13 over Rennes"
    assert click["target"]["nom"] in click["sheet"] and click["target"]["uai"] in click["sheet"]
    assert "Terminaux pour 100 élèves" in click["sheet"]
    assert f"fiche=etablissements/{click['target']['uai']}" in click["hash"]
    assert click["focused"] and click["closedByEscape"]


def test_type_filter_reaches_the_tiles(walk):
    shown = walk["steps"]["filter"]
    assert shown["n"] > 0 and "ecole" not in shown["types"]
    assert "type=college,lycee,autre" in shown["hash"]


def test_downloads_are_the_schools_of_the_view_with_the_filters(walk):
    download = walk["steps"]["download"]
    for href, format_ in ((download["csv"], "csv"), (download["geojson"], "json")):
        query = parse_qs(urlsplit(href).query)
        assert urlsplit(href).path == "/collections/etablissements/items" and query["f"] == [format_]
        west, south, east, north = map(float, query["bbox"][0].split(","))
        assert west < -1.68 < east and south < 48.11 < north
        assert "ecole" in query["filter"][0] and query["filter-lang"] == ["cql2-text"]
    assert download["features"] > 0 and "ecole" not in download["types"]
    assert download["csvRows"] == download["features"]


def test_search_asks_once_per_pause_and_is_driven_by_keyboard(walk):
    search = walk["steps"]["search"]
    assert 1 <= search["requests"] <= search["typed"]
    assert search["detail"]["count"] == len(search["results"]) > 0
    assert search["results"][0].startswith("Rennes (35)")
    assert search["expanded"] == "true" and search["active"] == "result-0"
    assert search["opened"] == {"collection": "communes", "id": "35238"}
    assert "fiche=communes/35238" in search["hash"]
    assert "Rennes" in search["sheet"] and "Établissements" in search["sheet"]


def test_a_territory_sheet_offers_its_schools(walk):
    links = walk["steps"]["search"]["sheetDownloads"]
    assert len(links) == 2 and all("code_commune=35238" in link for link in links)


def test_axe_finds_no_serious_violation(walk):
    assert walk["steps"]["start"]["axe"] == []
    assert walk["steps"]["search"]["axe"] == []
    assert walk["steps"]["phone"]["axe"] == [] and walk["steps"]["phone"]["sheetAxe"] == []


def test_keyboard_reaches_the_search_first(walk):
    order = walk["steps"]["keyboard"]["order"]
    assert order[0] == "skip" and order.index("q") < order.index("style")


def test_the_url_restores_the_view(walk):
    assert walk["steps"]["reload"] == {"style": "eCarto — Équipement — Terminaux pour 100 élèves",
                                       "level": "communes", "ecole": False, "sheet": True}


def test_raster_layers_are_offered_and_drawn(walk):
    raster = walk["steps"]["raster"]
    assert raster["offered"]
    assert raster["layers"] and all(layer["loaded"] for layer in raster["layers"])


def test_on_a_phone_the_map_keeps_the_screen(walk):
    phone = walk["steps"]["phone"]
    assert phone["map"] == phone["viewport"] and phone["panel"] < phone["viewport"] * 0.2
    assert phone["expanded"] == "true" and phone["levelVisible"]
    assert phone["results"] > 0 and phone["sheetVisible"]


def test_the_embedded_map_has_no_controls_but_draws(walk):
    embed = walk["steps"]["embed"]
    assert embed["panel"] is False
    assert embed["counts"].get("regions-fill", 0) > 5 and embed["counts"].get("etablissements-clusters", 0) > 0


def test_a_basemap_style_goes_under_our_layers(walk):
    basemap = walk["steps"]["basemap"]
    ids = basemap["layers"]
    assert ids[:2] == ["basemap-background", "basemap-land"]
    assert "background" not in ids and "land" not in ids  # ours give way to the base map
    assert ids.index("basemap-land") < ids.index("regions-fill") < ids.index("etablissements-clusters")
    assert basemap["counts"].get("basemap-land", 0) > 0 and basemap["counts"].get("departements-fill", 0) > 0
