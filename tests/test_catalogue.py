"""The default catalogue over a mirror of the real datasets' layouts, on both stores.

`tests/fixtures/mirror` holds, under `HOST/PATH`, files with the documented headers of every
source of `ingest/sources.toml` (real UAIs, real commune codes, invented values: see its README),
served by a local HTTP server, so `ecarto ingest --mirror URL` reads them as it would the portals.
The expected figures below are counted by hand from those files.
"""

from __future__ import annotations

import shutil
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.national import REPO
from tileserver.cli import main
from tileserver.core.settings import Settings
from tileserver.core.store import FeatureQuery
from tileserver.core.stores import open_store

MIRROR = REPO / "tests" / "fixtures" / "mirror"
ARCEP_TECHNO = "data.arcep.fr/fixe/maconnexioninternet/statistiques/last/commune/commune_techno.csv"
LEVELS = ("communes", "epci", "departements", "academies", "regions")
# One indicator per theme, each expected to have values at every territory level.
THEME_INDICATORS = {"connectivite": "ftth", "equipement": "socle_numerique", "services": "ent_visites",
                    "experimentations": "territoire_numerique_educatif", "contexte": "ips_ecoles"}


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        """No access log on the test output."""


def serve_folder(folder: Path):
    """An HTTP server over `folder` on a free port (listening once built); its URL, and a stop function."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return f"http://127.0.0.1:{server.server_port}", stop


@pytest.fixture(scope="module")
def mirror():
    """The fixture mirror over HTTP."""
    url, stop = serve_folder(MIRROR)
    yield url
    stop()


@pytest.fixture(params=["geopackage", "postgis"])
def database(request, tmp_path) -> str:
    """An empty store of each kind."""
    if request.param == "postgis":
        return request.getfixturevalue("postgis_url")
    return str(tmp_path / "real.gpkg")


def ingest(database: str, mirror: str, cache: Path, *extra: str) -> int:
    """`ecarto ingest` of the default catalogue through the mirror."""
    return main(["-q", "ingest", "--database", database, "--mirror", mirror, "--no-progress",
                 "--cache-dir", str(cache), *extra])


def properties(database: str, collection: str) -> dict[str, dict]:
    """Every feature of a collection of the current version, by id."""
    store = open_store(database, Settings(database=database, version_check_seconds=0))
    try:
        features = store.current().query(FeatureQuery(collection, limit=10_000)).features
        return {f.id: f.properties for f in features}
    finally:
        store.close()


def current(database: str):
    store = open_store(database, Settings(database=database, version_check_seconds=0))
    try:
        snap = store.current()
        return snap.version, snap.catalogue()
    finally:
        store.close()


def test_the_default_catalogue_maps_every_theme_at_every_level(database, mirror, tmp_path):
    assert ingest(database, mirror, tmp_path / "cache") == 0
    layers = {level: properties(database, level) for level in LEVELS}
    for theme, indicator in THEME_INDICATORS.items():
        for level, features in layers.items():
            assert any(p[indicator] is not None for p in features.values()), (theme, level)
            assert all(isinstance(p[f"{indicator}_nc"], int) for p in features.values()), (theme, level)
    communes, deps = layers["communes"], layers["departements"]
    # ratio, sum/sum, `where type = all`, COG history: 35112 (Fleurigné) merged into 35062.
    assert communes["35062"]["ftth"] == 40.0  # (300 + 100) / (600 + 400)
    assert communes["35062"]["thd100"] == 60.0  # (450 + 150) / 1000
    assert deps["35"]["ftth"] == pytest.approx(100 * 24_400 / 31_000, abs=1e-3)  # rolled up, weighted by nbr
    assert layers["regions"]["11"]["ftth"] == 100.0
    # presence over the écoles: 10 of Saint-Malo's 27 écoles, 5 of Fresnes' 11.
    assert communes["35288"]["socle_numerique"] == 37.04 and communes["94034"]["socle_numerique"] == 45.45
    assert communes["35288"]["socle_numerique_nc"] == 0
    assert communes["35288"]["reseau_education_prioritaire"] == 24.24  # 8 of 27 écoles + 6 collèges
    assert communes["35288"]["robot_tedi"] == 2.08  # 1 of 48 schools (two robots, one school)
    # a period summed: 2023-2024 is the latest complete school year; 4 of 14 collèges and lycées.
    assert communes["35288"]["ent_visites"] == 775.0  # mean of 310, 620, 930, 1240
    assert communes["35288"]["ent_visites_nc"] == 10
    assert communes["35288"]["pix_certification"] == 70.0  # (80 + 25) / (100 + 50), year 2024
    # via the school's département, with `20` spelt 2A; a département indicator summed upward.
    assert communes["35288"]["territoire_numerique_educatif"] == 100.0
    assert communes["94034"]["territoire_numerique_educatif"] == 0.0
    assert deps["2A"]["tne_eleves"] == 4500 and layers["academies"]["14"]["tne_eleves"] == 20_000  # 29 + 35
    assert deps["94"]["tne_eleves"] is None and deps["94"]["tne_eleves_nc"] == 11
    schools = properties(database, "etablissements")
    assert schools["0352072M"]["ips_lycees"] == 105.0  # mean of its LEGT and LP rows
    assert schools["0350889B"]["pix_certification"] == 80.0 and schools["0350889B"]["ent_visites"] == 310.0
    assert schools["0350889B"]["socle_numerique"] is None  # a collège: not concerned
    assert schools["0351384P"]["socle_numerique"] is False  # an école absent from the list


def test_the_catalogue_says_source_and_vintage(tmp_path, mirror):
    database = str(tmp_path / "real.gpkg")
    assert ingest(database, mirror, tmp_path / "cache") == 0
    version, catalogue = current(database)
    entries = {e["id"]: e for e in catalogue}
    assert entries["ftth"]["producer"] == "Arcep" and entries["ftth"]["vintage"] == "2025-09-30"
    assert entries["ent_visites"]["vintage"] == "2023-2024" and entries["pix_certification"]["vintage"] == "2024"
    assert entries["ips_ecoles"]["vintage"] == "2024-2025"
    assert entries["socle_numerique"]["vintage"]  # no period column: the file's date
    assert entries["socle_numerique"]["source_url"].endswith("/fr-en-aap-snee-ecoles/")
    assert all(e["licence"] and e["producer"] and e["source_url"] for e in catalogue)
    assert version.report["partial"] is False
    from tileserver.web.app import create_app

    client = create_app(Settings(database=database, version_check_seconds=0)).test_client()
    listed = {e["id"]: e for e in client.get("/indicators").get_json()["indicators"]}
    assert listed.keys() == entries.keys()
    ftth = listed["ftth"]
    assert {k: ftth[k] for k in ("producer", "vintage", "unit", "theme", "main")} == {
        "producer": "Arcep", "vintage": "2025-09-30", "unit": "%", "theme": "connectivite", "main": True}
    assert set(ftth["levels"]) == set(LEVELS)  # a commune indicator, rolled up to every level above
    assert "etablissements" in listed["socle_numerique"]["levels"]
    assert ftth["source_url"] and ftth["licence"] == "Licence Ouverte 2.0" and ftth["description"]
    page = client.get("/indicators?f=html").get_data(as_text=True)
    assert "Arcep" in page and "2023-2024" in page
    assert "Données partielles" not in client.get("/map").get_data(as_text=True)
    schema = client.get("/collections/communes/queryables").get_json()["properties"]
    assert schema["ftth"]["x-ecarto-producer"] == "Arcep" and schema["ftth"]["x-ecarto-vintage"] == "2025-09-30"
    assert schema["ftth_nc"]["type"] == "integer" and "Non communiqué" in schema["ftth_nc"]["description"]
    assert "/indicators" in client.get("/api").get_json()["paths"]
    styles = {s["id"] for s in client.get("/styles").get_json()["styles"]}
    assert {"connectivite", "equipement", "services", "experimentations", "contexte"} <= styles
    fills = client.get("/styles/connectivite").get_json()["layers"]
    assert any("ftth" in str(layer.get("paint")) for layer in fills if layer["id"] == "communes-fill")
    assert any(link["href"].endswith("/indicators") for link in client.get("/?f=json").get_json()["links"])


def test_a_renamed_column_fails_the_check_and_the_ingest_keeps_the_previous_version(tmp_path, mirror, capsys):
    database = str(tmp_path / "keep.gpkg")
    assert ingest(database, mirror, tmp_path / "cache") == 0
    first, _ = current(database)
    broken = tmp_path / "mirror"
    shutil.copytree(MIRROR, broken)
    techno = broken / ARCEP_TECHNO
    techno.write_text(techno.read_text().replace(";elig_ftth;", ";elig_ftth_fixe;", 1))
    url, stop = serve_folder(broken)
    try:
        capsys.readouterr()
        assert main(["-q", "sources", "check", "--mirror", url]) == 1
        out = capsys.readouterr().out
        assert "missing column 'elig_ftth'; closest: elig_ftth_fixe" in out
        assert "[ok] indicators thd100" in out
        assert ingest(database, url, tmp_path / "cache-2") == 1
        assert "main indicators lost: ftth" in capsys.readouterr().err
        assert current(database)[0].id == first.id
        from tileserver.web.app import create_app

        client = create_app(Settings(database=database, version_check_seconds=0)).test_client()
        assert client.get("/versions").get_json()["current"] == first.id
        assert ingest(database, url, tmp_path / "cache-3", "--allow-partial") == 0
        listed = client.get("/versions").get_json()
        newest = listed["versions"][0]
        assert listed["current"] == newest["id"] != first.id
        assert newest["report"]["partial"] is True
        assert [m["id"] for m in newest["report"]["missing"]] == ["ftth"]
        assert "elig_ftth" in newest["report"]["missing"][0]["reason"]
        page = client.get("/map").get_data(as_text=True)
        assert "Données partielles" in page and "<code>ftth</code>" in page
    finally:
        stop()
