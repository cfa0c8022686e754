"""The landing page, the conformance declaration and the OpenAPI document (tileserver.web.common, openapi)."""

from __future__ import annotations

import doctest
import re
from urllib.parse import urlsplit

import pytest

from tileserver.core.settings import Settings
from tileserver.web import common, openapi
from tileserver.web.app import create_app


@pytest.fixture
def empty_client(tmp_path):
    """A server with nothing published yet."""
    return create_app(Settings(database=str(tmp_path / "none.gpkg"))).test_client()


def test_landing_conformance_and_api_answer_before_any_ingest(empty_client):
    assert empty_client.get("/").status_code == 200
    assert empty_client.get("/conformance").status_code == 200
    doc = empty_client.get("/api").get_json()
    assert "enum" not in doc["paths"]["/collections/{collectionId}"]["get"]["parameters"][0]["schema"]
    assert empty_client.get("/collections").status_code == 503


def test_conformance_gathers_every_blueprint_declaration(feature_app):
    from tileserver.web import features, tiles

    declared = feature_app.test_client().get("/conformance").get_json()["conformsTo"]
    assert set(common.CONFORMANCE) | set(features.CONFORMANCE) | set(tiles.CONFORMANCE) <= set(declared)
    assert len(declared) == len(set(declared))


def test_links_honour_the_base_url_setting(geopackage_store):
    app = create_app(Settings(database=geopackage_store.url, base_url="https://ecarto.example.org/api/"),
                     store=geopackage_store)
    client = app.test_client()
    links = client.get("/").get_json()["links"]
    assert all(link["href"].startswith("https://ecarto.example.org/api/") for link in links)
    assert client.get("/api").get_json()["servers"] == [{"url": "https://ecarto.example.org/api"}]
    page = client.get("/collections/etablissements/items?limit=1").get_json()
    assert all(link["href"].startswith("https://ecarto.example.org/api/") for link in page["links"])


def _normalised(path: str) -> str:
    """A route with every variable part written `{}`."""
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)


def test_the_api_describes_every_route_of_the_app(feature_app):
    doc = feature_app.test_client().get("/api").get_json()
    described = {_normalised(path) for path in doc["paths"]}
    for rule in feature_app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule.startswith("/static/"):
            continue
        routes = [rule.rule.replace("<any(png, webp):fmt>", ext) for ext in ("png", "webp")] \
            if "<any(" in rule.rule else [rule.rule]
        for route in routes:
            assert _normalised(route) in described, route


def test_every_operation_is_well_formed(feature_app):
    doc = feature_app.test_client().get("/api").get_json()
    assert doc["openapi"] == "3.0.3" and doc["info"]["title"]
    for path, item in doc["paths"].items():
        operation = item["get"]
        names = re.findall(r"\{(\w+)\}", path)
        in_path = [p["name"] for p in operation["parameters"] if p["in"] == "path"]
        assert sorted(names) == sorted(in_path), path
        assert all(p["required"] for p in operation["parameters"] if p["in"] == "path")
        for response in operation["responses"].values():
            assert response["description"]
        assert "200" in operation["responses"]


def test_items_limit_follows_the_settings(geopackage_store):
    settings = Settings(database=geopackage_store.url, default_limit=25, max_limit=500)
    doc = openapi.document("http://x", settings, geopackage_store.current().collections(), "t")
    limit = next(p for p in doc["paths"]["/collections/{collectionId}/items"]["get"]["parameters"]
                 if p["name"] == "limit")
    assert (limit["schema"]["default"], limit["schema"]["maximum"]) == (25, 500)
    collection = doc["paths"]["/collections/{collectionId}"]["get"]["parameters"][0]
    assert collection["schema"]["enum"] == ["etablissements", "departements"]


@pytest.mark.parametrize("module", ["common", "features", "pages", "openapi"])
def test_doctests(module):
    import importlib

    assert doctest.testmod(importlib.import_module(f"tileserver.web.{module}")).failed == 0


def test_the_openapi_media_type_with_its_version_is_served(empty_client):
    """QGIS asks for the OpenAPI document with the `version` parameter; a 406 made its OAPIF layers invalid."""
    response = empty_client.get("/api", headers={"Accept": "application/vnd.oai.openapi+json;version=3.0"})
    assert response.status_code == 200
    assert response.get_json()["openapi"].startswith("3.0")


def test_the_landing_page_links_every_resource_and_each_link_answers(themed_app):
    client = themed_app.test_client()
    html = client.get("/?f=html").get_data(as_text=True)
    hrefs = {urlsplit(href) for href in re.findall(r'href="([^"]+)"', html)}
    paths = {href.path for href in hrefs}
    fixed = {r.rule for r in themed_app.url_map.iter_rules() if "<" not in r.rule and "GET" in r.methods}
    assert fixed <= paths, fixed - paths
    tilejson = [p for p in paths if p.startswith("/tiles/") and p.endswith(".json")]
    assert tilejson and "etablissements" in tilejson[0]
    for href in hrefs:
        assert client.get(f"{href.path}?{href.query}").status_code == 200, href
