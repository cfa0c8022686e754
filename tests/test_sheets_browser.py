"""Sheets in headless Chromium over the national data: charts with their text, readable on a phone.

`tests/browser/sheets.mjs` opens a département's and a school's sheet at 1280 and 390 px wide and
reports what it saw; the screenshots are left in tests/screenshots/ (look at them).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.servers import serving_in_thread
from tileserver.core.settings import Settings
from tileserver.web.app import create_app

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "browser" / "sheets.mjs"
SCREENSHOTS = REPO / "tests" / "screenshots"
SCHOOL = "0350551J"  # a school of Rennes in the synthetic national directory

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def seen(national_gpkg) -> dict:
    """What the browser saw on each sheet, at each width."""
    assert (REPO / "node_modules" / "playwright-core").exists(), "run `make setup` (npm install)"
    app = create_app(Settings(database=national_gpkg.url))
    try:
        with serving_in_thread(app) as url:
            result = subprocess.run(["node", str(SCRIPT), url, str(SCREENSHOTS), "/fiche/departements/35",
                                     f"/fiche/etablissements/{SCHOOL}"], capture_output=True, text=True, timeout=300)
    finally:
        app.extensions["ecarto.store"].close()
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_the_sheets_load_without_errors(seen):
    assert seen["console"] == []
    assert all(Path(page["shot"]).stat().st_size > 10_000 for page in seen["pages"])


def test_a_departement_sheet_compares_with_its_region_and_france_in_charts_with_text(seen):
    for page in (p for p in seen["pages"] if p["path"] == "/fiche/departements/35"):
        assert page["title"] == "Ille-et-Vilaine"
        assert page["charts"] >= 20 and page["chartsWithText"] == page["charts"]
        assert "Bretagne" in page["text"] and "France" in page["text"] and "Non communiqué" in page["text"]


def test_sheets_fit_a_phone_screen(seen):
    for page in seen["pages"]:
        assert page["overflow"] <= 0 and not page["wide"], (page["path"], page["width"], page["wide"])
