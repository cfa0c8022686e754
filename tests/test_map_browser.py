"""The map page in headless Chromium, on a live server over the real ingest of sources/local.toml.

`tests/browser/map.mjs` (playwright-core with Debian's chromium) walks the page once and reports what
it saw; each test below checks one part of it. Screenshots are left in tests/screenshots/.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.servers import serving_in_thread
from tileserver.core.settings import Settings
from tileserver.web.app import create_app

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "browser" / "map.mjs"
SCREENSHOTS = REPO / "tests" / "screenshots"

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def live_url(national_gpkg):
    """The app over the national GeoPackage, served on a free port of 127.0.0.1."""
    app = create_app(Settings(database=national_gpkg.url))
    with serving_in_thread(app) as url:
        yield url
    app.extensions["ecarto.store"].close()


@pytest.fixture(scope="module")
def walk(live_url) -> dict:
    """What the browser saw on its walk through the map."""
    assert (REPO / "node_modules" / "playwright-core").exists(), "run `make setup` (npm install)"
    result = subprocess.run(["node", str(SCRIPT), live_url, str(SCREENSHOTS)], capture_output=True, text=True,
                            timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_the_console_has_no_errors(walk):
    assert walk["console"] == []


def test_schools_and_territories_are_rendered(walk):
    counts = walk["steps"]["start"]["counts"]
    assert counts.get("etablissements-clusters", 0) > 20
    assert counts.get("departements-fill", 0) > 5 and counts.get("regions-outline", 0) > 0


def test_switching_theme_changes_the_rendering(walk):
    start, theme = walk["steps"]["start"], walk["steps"]["theme"]
    assert "debit_descendant_mbps" in start["fills"]["departements-fill"]["colour"]
    assert "terminaux_pour_100_eleves" in theme["fills"]["departements-fill"]["colour"]
    assert Path(start["screenshot"]).read_bytes() != Path(theme["screenshot"]).read_bytes()
    assert "style=equipement" in theme["hash"]


def test_switching_level_changes_the_rendering(walk):
    theme, level = walk["steps"]["theme"], walk["steps"]["level"]
    assert level["counts"].get("communes-fill", 0) > 100
    assert "departements-fill" not in level["counts"]
    assert not level["fills"]["departements-fill"]["visible"] and level["fills"]["communes-fill"]["visible"]
    assert Path(theme["screenshot"]).read_bytes() != Path(level["screenshot"]).read_bytes()
    assert "level=communes" in level["hash"]


def test_clicking_a_school_opens_its_sheet(walk):
    click = walk["steps"]["click"]
    assert click["target"], "no single school rendered at zoom 13 over Rennes"
    assert click["target"]["nom"] in click["sheet"] and click["target"]["uai"] in click["sheet"]
    assert "Débit descendant" in click["sheet"] and "Mbit/s" in click["sheet"]
    assert f"fiche=etablissements/{click['target']['uai']}" in click["hash"]


def test_type_filter_reaches_the_tiles(walk):
    shown = walk["steps"]["filter"]
    assert shown["n"] > 0 and "ecole" not in shown["types"]
    assert "type=college,lycee,autre" in shown["hash"]


def test_search_finds_a_commune_and_opens_its_sheet(walk):
    search = walk["steps"]["search"]
    assert search["results"][0] == "Rennes (commune 35238)"
    first_school = next(result for result in search["results"] if " — " in result)
    assert "— Rennes (" in first_school  # its schools before those of Varennes...
    assert "fiche=communes/35238" in search["hash"]
    assert "Rennes" in search["sheet"] and "Établissements" in search["sheet"]


def test_search_ignores_case_and_accents(walk):
    results = walk["steps"]["folded"]["results"]
    assert results[0].startswith("Cesson-Sévigné (commune 35")
    assert any("— Cesson-Sévigné (" in result for result in results[1:])  # its schools, by their town


def test_the_url_restores_the_view(walk):
    assert walk["steps"]["reload"] == {"style": "eCarto — Équipement — Terminaux pour 100 élèves",
                                       "level": "communes", "ecole": False, "sheet": True}


def test_raster_layers_are_offered_and_drawn(walk):
    raster = walk["steps"]["raster"]
    assert raster["offered"]
    assert raster["layers"] and all(layer["loaded"] for layer in raster["layers"])


def test_the_embedded_map_has_no_controls_but_draws(walk):
    embed = walk["steps"]["embed"]
    assert embed["panel"] is False
    assert embed["counts"].get("regions-fill", 0) > 5 and embed["counts"].get("etablissements-clusters", 0) > 0
