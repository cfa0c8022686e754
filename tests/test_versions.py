"""`/versions` and `/health`: what operators check, shown to everyone, so without server paths."""

from __future__ import annotations

import os

import pytest

from tests.support.national import ingest_into, small_manifest
from tests.test_ingest import SAMPLE_94
from tileserver.core.settings import Settings
from tileserver.core.stores.geopackage import GeoPackageStore
from tileserver.web.app import create_app

ROUTES = ("/health", "/versions", "/collections", "/collections/etablissements/items?limit=2",
          "/tiles/etablissements/5/15/11.mvt", "/tiles/communes.json", "/styles", "/map", "/api", "/raster")


def test_reports_stored_with_paths_are_shown_with_file_names(tmp_path, small_dataset):
    secret = "/srv/ecarto-secret/cache"
    small_dataset.report = {"datasets": [{
        "name": "etablissements", "file": f"{secret}/annuaire.csv", "read": 2, "loaded": 1, "rejected": 1,
        "rejections": [{"file": f"{secret}/annuaire.csv", "line": 3, "reason": "closed"}], "notes": [],
    }, {"name": "ips", "file": "https://user:pw@data.example.fr/ips.csv", "rejections": [],
         "notes": [f"{secret}/ips.csv: 2 lines skipped"]}],
        "missing": [{"id": "fibre", "main": False, "reason": f"{secret}/fibre.csv: no such file ({secret}/fibre.csv)"}]}
    store = GeoPackageStore(str(tmp_path / "e.gpkg"), Settings())
    store.publish(small_dataset)
    body = create_app(Settings(database=store.url), store=store).test_client().get("/versions")
    store.close()
    assert body.status_code == 200
    text = body.get_data(as_text=True)
    assert secret not in text and str(tmp_path) not in text and "pw@" not in text
    schools, ips = body.get_json()["versions"][0]["report"]["datasets"]
    assert schools["file"] == schools["rejections"][0]["file"] == "annuaire.csv"
    assert ips["file"] == "https://data.example.fr/ips.csv" and ips["notes"] == ["ips.csv: 2 lines skipped"]
    assert body.get_json()["versions"][0]["report"]["missing"][0]["reason"] == "fibre.csv: no such file (fibre.csv)"


def test_an_ingest_stores_source_names_not_paths(tmp_path):
    result = ingest_into(str(tmp_path / "e.gpkg"), tmp_path / "cache", small_manifest(tmp_path, SAMPLE_94,
                                                                                        departement="94"))
    files = {d.file for d in result.report.datasets.values()}
    assert SAMPLE_94.name in files and "communes.geojson" in files
    assert not any(os.sep in f for f in files if not f.startswith("http"))
    store = GeoPackageStore(str(tmp_path / "e.gpkg"), Settings())
    text = create_app(Settings(database=store.url), store=store).test_client().get("/versions").get_data(as_text=True)
    store.close()
    assert str(tmp_path) not in text and str(SAMPLE_94.parent) not in text


@pytest.mark.parametrize("keep", [1000, 0.3])
def test_a_damaged_store_is_a_503_on_every_route_without_its_path(tmp_path, small_dataset, keep):
    path = tmp_path / "ecarto.gpkg"
    GeoPackageStore(str(path), Settings()).publish(small_dataset)
    size = path.stat().st_size
    os.truncate(path, keep if keep > 1 else int(size * keep))
    client = create_app(Settings(database=str(path))).test_client()  # the default check interval: 1 s
    for route in ROUTES * 2:  # the second round comes within the interval: the answer stays the same
        response = client.get(route)
        body = response.get_data(as_text=True)
        assert response.status_code == 503, (route, body)
        assert response.get_json()["code"] == "ServiceUnavailable" and response.headers["Retry-After"]
        assert "damaged" in body and "no data has been published" not in body
        assert str(tmp_path) not in body and "ecarto.gpkg" not in body
