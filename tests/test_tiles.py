"""The vector tile endpoints on both stores: HTTP caching, versions, errors, TileJSON and OGC API - Tiles."""

from __future__ import annotations

import gzip
import re

import pytest
from werkzeug.test import Client, TestResponse

from tests.support.tiletools import decode, gdal_decode, synthetic_dataset
from tileserver.core.errors import Unavailable
from tileserver.core.grid import Tile
from tileserver.core.settings import Settings
from tileserver.web.app import create_app
from tileserver.web.tiles import CONFORMANCE

TILE = Tile(10, 508, 358)  # Rennes: schools, communes and a département
URL = f"/tiles/etablissements,communes,departements/{TILE.z}/{TILE.x}/{TILE.y}.mvt"


@pytest.fixture(scope="module")
def dataset():
    return synthetic_dataset(800)


@pytest.fixture(params=["geopackage", "postgis"])
def settings(request, tmp_path) -> Settings:
    url = request.getfixturevalue("postgis_url") if request.param == "postgis" else str(tmp_path / "e.gpkg")
    return Settings(database=url, assets_dir=str(tmp_path / "assets"), version_check_seconds=0,
                    cache_control="public, max-age=60", trusted_proxies="127.0.0.1")  # the test client's address


@pytest.fixture
def app(settings, dataset):
    app = create_app(settings)
    app.extensions["ecarto.store"].publish(dataset)
    yield app
    app.extensions["ecarto.store"].close()


@pytest.fixture
def client(app):
    return app.test_client()


def test_a_tile_is_an_mvt_with_an_etag_and_the_configured_cache_control(client):
    response = client.get(URL)
    assert response.status_code == 200
    assert response.content_type == "application/vnd.mapbox-vector-tile"
    assert response.headers["Cache-Control"] == "public, max-age=60"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert re.fullmatch(r'"[0-9a-f]{32}"', response.headers["ETag"])
    assert set(decode(response.data)) == {"etablissements", "communes", "departements"}


def test_a_matching_etag_gets_a_304_and_gzip_is_sent_when_accepted(client):
    first = client.get(URL)
    again = client.get(URL, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    zipped = client.get(URL, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == first.data


def test_a_tile_names_its_version_and_layers_for_cdn_purges(app, client):
    version = app.extensions["ecarto.store"].current().version.id
    for url in (URL, URL + "?type=ecole", "/tiles/etablissements/10/0/0.mvt"):  # shortcut, Flask, empty
        headers = client.get(url).headers
        tags = ["ecarto-tiles", f"ecarto-v{version}", *(f"ecarto-layer-{n}" for n in url.split("/")[2].split(","))]
        assert headers["Surrogate-Key"] == " ".join(tags) and headers["Cache-Tag"] == ",".join(tags)


def test_an_empty_tile_is_a_204(client):
    response = client.get("/tiles/etablissements/10/0/0.mvt")
    assert response.status_code == 204 and response.data == b""
    assert "ETag" in response.headers


@pytest.mark.in_process("it counts the store's calls")
def test_tiles_are_made_once_then_served_from_the_cache(app, client):
    cache = app.extensions["ecarto.cache"]
    client.get(URL)
    client.get(URL)
    client.get(URL + "?type=ecole")
    assert (cache.misses, cache.hits) == (2, 1)


def test_the_shortcut_below_flask_answers_as_flask_does_on_a_miss_and_on_a_hit(app, settings):
    store = app.extensions["ecarto.store"]
    version = store.current().version.id
    shortcut = app.wsgi_app
    shortcut.app = _refuse  # so only the shortcut can answer
    ours = Client(shortcut, TestResponse)
    flask_only = Client(create_app(settings, store=store).wsgi_app.app, TestResponse)  # its own, empty cache
    empty = "/tiles/etablissements/10/0/0.mvt"
    etag = None
    for url, headers in [(URL, {}), (empty, {})]:  # misses on both sides, then the variants hit
        mine, theirs = ours.get(url, headers=headers), flask_only.get(url, headers=headers)
        _assert_same(mine, theirs)
        etag = etag or mine.headers["ETag"]
    assert ours.get(empty).status_code == 204
    variants = [("", {}), ("", {"Accept-Encoding": "gzip"}), (f"?v={version}", {"Accept-Encoding": "gzip, br"}),
                ("?v=20000101T000000000000", {}), ("", {"If-None-Match": etag}),
                ("", {"If-None-Match": f'W/"other", {etag}', "Accept-Encoding": "gzip"})]
    requests = [(URL + query, headers) for query, headers in variants] + [(empty, {"If-None-Match": "x"})]
    for url, headers in requests:
        _assert_same(ours.get(url, headers=headers), flask_only.get(url, headers=headers))
    assert app.extensions["ecarto.cache"].misses == 2


def _assert_same(mine: TestResponse, theirs: TestResponse) -> None:
    assert (mine.status, mine.data) == (theirs.status, theirs.data)
    assert sorted(mine.headers.items()) == sorted(theirs.headers.items())


def _refuse(environ, start_response):
    raise AssertionError(f"{environ['PATH_INFO']} reached the app")


def test_a_new_version_changes_the_tile_and_its_etag(app, client, dataset):
    old = client.get(URL)
    version = app.extensions["ecarto.store"].publish(synthetic_dataset(800, label=" (v2)"))
    new = client.get(URL, headers={"If-None-Match": old.headers["ETag"]})
    assert new.status_code == 200
    assert new.headers["ETag"] != old.headers["ETag"]
    names = {f["properties"]["nom"] for f in decode(new.data)["etablissements"]}
    assert names and all(name.endswith(" (v2)") for name in names)
    assert client.get("/tiles/etablissements.json").json["tiles"][0].endswith(f"?v={version.id}")


def test_a_tile_asked_for_another_version_is_not_kept_by_caches(app, client):
    current = app.extensions["ecarto.store"].current().version.id
    assert client.get(f"{URL}?v={current}").headers["Cache-Control"] == "public, max-age=60"
    assert client.get(f"{URL}?v=20000101T000000000000").headers["Cache-Control"] == "no-cache"


@pytest.mark.in_process("it makes the store fail and counts its calls")
def test_errors_are_not_cached_and_the_store_is_asked_once(app, client):
    snapshot = app.extensions["ecarto.store"].current()
    real = snapshot.tile
    calls = []

    def failing(*args, **kwargs):
        calls.append(args)
        raise Unavailable("the database does not answer", retry_after=5)

    snapshot.tile = failing
    try:
        failed = client.get(URL)
    finally:
        del snapshot.tile
    assert failed.status_code == 503 and failed.json["code"] == "ServiceUnavailable"
    assert failed.headers["Retry-After"] == "5" and failed.headers["Access-Control-Allow-Origin"] == "*"
    assert len(calls) == 1  # a second try would double the wait of every client while the database is away
    assert snapshot.tile == real
    assert client.get(URL).status_code == 200


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        ("/tiles/ecoles/1/0/0.mvt", 404, "NotFound"),
        ("/tiles/communes,communes/1/0/0.mvt", 400, "InvalidParameterValue"),
        ("/tiles/communes,/1/0/0.mvt", 404, "NotFound"),
        ("/tiles/communes/x/0/0.mvt", 400, "InvalidParameterValue"),
        ("/tiles/communes/1/-1/0.mvt", 400, "InvalidParameterValue"),
        ("/tiles/communes/1/2/0.mvt", 404, "NotFound"),
        ("/tiles/communes/25/0/0.mvt", 404, "NotFound"),
        ("/tiles/communes/99999999999/0/0.mvt", 400, "InvalidParameterValue"),
        ("/tiles/etablissements/1/0/0.mvt?type=Coll%C3%A8ge", 400, "InvalidParameterValue"),
        ("/tiles/etablissements/1/0/0.mvt?type=", 400, "InvalidParameterValue"),
        ("/tiles/etablissements/1/0/0.mvt?statut=publique", 400, "InvalidParameterValue"),
        ("/tiles/etablissements/1/0/0.mvt?type=ecole&type=lycee", 400, "InvalidParameterValue"),
        ("/tiles/etablissements/1/0/0.mvt?zoom=3", 400, "InvalidParameter"),
        ("/tiles/nowhere.json", 404, "NotFound"),
        ("/tiles/communes.json?v=1", 400, "InvalidParameter"),
        ("/tileMatrixSets/WorldCRS84Quad", 404, "NotFound"),
        ("/collections/communes/tiles/WorldCRS84Quad", 404, "NotFound"),
        ("/collections/communes/tiles/WebMercatorQuad/5/11/15", 404, "NotFound"),  # below minzoom 6
        ("/collections/communes/tiles/WebMercatorQuad/10/0/0", 404, "NotFound"),  # outside the limits
        ("/collections/communes/tiles/WebMercatorQuad/10/a/0", 400, "InvalidParameterValue"),
        ("/collections/communes/tiles?f=html", 400, "InvalidParameterValue"),
        ("/collections/communes,epci/tiles", 404, "NotFound"),
    ],
)
def test_bad_requests_get_an_ogc_error(client, url, status, code):
    response = client.get(url)
    assert response.status_code == status, response.json
    assert response.json["code"] == code and response.json["description"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_tilejson_describes_the_layers_with_absolute_versioned_urls(app, client, dataset):
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "carto.example.fr", "X-Forwarded-Prefix": "/api"}
    doc = client.get("/tiles/etablissements,communes.json?statut=public&type=lycee,college", headers=headers).json
    version = app.extensions["ecarto.store"].current().version.id
    assert doc["tilejson"] == "3.0.0"
    assert doc["tiles"] == [
        f"https://carto.example.fr/api/tiles/etablissements,communes/{{z}}/{{x}}/{{y}}.mvt"
        f"?v={version}&type=college,lycee&statut=public"
    ]
    assert (doc["minzoom"], doc["maxzoom"]) == (0, 14)
    layers = {layer["id"]: layer for layer in doc["vector_layers"]}
    assert (layers["communes"]["minzoom"], layers["communes"]["maxzoom"]) == (6, 14)
    assert layers["etablissements"]["fields"]["point_count"] == "Number"
    assert layers["etablissements"]["fields"]["debit_sum"] == "Number"
    assert layers["etablissements"]["fields"]["fibre"] == "Boolean"
    assert layers["communes"]["fields"]["code"] == "String"
    west, south, east, north = doc["bounds"]
    assert west <= -5 and east >= 55.7 and south <= -21.3 and north >= 50
    assert len(doc["center"]) == 3


def test_the_base_url_setting_wins_over_proxy_headers(app, settings):
    behind = create_app(settings.replace(base_url="https://ecarto.example.org/"))  # the data `app` published
    try:
        doc = behind.test_client().get("/tiles/communes.json", headers={"X-Forwarded-Host": "other"}).json
    finally:
        behind.extensions["ecarto.store"].close()
    assert doc["tiles"][0].startswith("https://ecarto.example.org/tiles/communes/{z}/{x}/{y}.mvt?v=")


def test_the_tilejson_template_gives_the_tile(client):
    template = client.get("/tiles/etablissements,communes,departements.json").json["tiles"][0]
    path = template.removeprefix("http://localhost").format(z=TILE.z, x=TILE.x, y=TILE.y)
    assert client.get(path).data == client.get(URL).data


def test_ogc_tilesets_lead_to_the_same_tiles(client):
    tilesets = client.get("/collections/etablissements/tiles").json["tilesets"]
    assert [t["dataType"] for t in tilesets] == ["vector"]
    (self_link,) = [link["href"] for link in tilesets[0]["links"] if link["rel"] == "self"]
    tileset = client.get(self_link.removeprefix("http://localhost")).json
    assert tileset["tileMatrixSetURI"] == "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
    limits = {limit["tileMatrix"]: limit for limit in tileset["tileMatrixSetLimits"]}
    assert sorted(limits, key=int) == [str(z) for z in range(15)]
    limit = limits[str(TILE.z)]
    assert limit["minTileCol"] <= TILE.x <= limit["maxTileCol"] and limit["minTileRow"] <= TILE.y <= limit["maxTileRow"]
    (item,) = [link for link in tileset["links"] if link["rel"] == "item"]
    assert item["templated"] and item["type"] == "application/vnd.mapbox-vector-tile"
    href = item["href"].removeprefix("http://localhost")
    tile = client.get(href.format(tileMatrix=TILE.z, tileRow=TILE.y, tileCol=TILE.x))
    assert tile.status_code == 200
    assert tile.data == client.get(f"/tiles/etablissements/{TILE.z}/{TILE.x}/{TILE.y}.mvt").data
    fields = tileset["layers"][0]["propertiesSchema"]["properties"]
    assert fields["effectif"]["type"] == "integer" and fields["n_college"]["type"] == "integer"


def test_the_tile_matrix_set_is_webmercatorquad(client):
    listed = client.get("/tileMatrixSets").json["tileMatrixSets"]
    assert [t["id"] for t in listed] == ["WebMercatorQuad"]
    tms = client.get("/tileMatrixSets/WebMercatorQuad").json
    assert tms["crs"] == "http://www.opengis.net/def/crs/EPSG/0/3857"
    matrices = tms["tileMatrices"]
    assert len(matrices) == 25 and matrices[0]["matrixWidth"] == 1 and matrices[24]["matrixHeight"] == 2**24
    assert matrices[0]["scaleDenominator"] == pytest.approx(559082264.0287178)
    assert matrices[0]["pointOfOrigin"] == pytest.approx([-20037508.3427892, 20037508.3427892])


def test_conformance_classes_are_named_once():
    assert len(set(CONFORMANCE)) == len(CONFORMANCE)
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core" in CONFORMANCE
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt" in CONFORMANCE


def test_gdal_decodes_a_served_tile_like_mapbox_vector_tile(client, tmp_path):
    data = client.get(URL).data
    ours = decode(data)
    gdal = gdal_decode(data, TILE, tmp_path)
    assert {name: len(f) for name, f in gdal.items()} == {name: len(f) for name, f in ours.items()}
    for name in ours:
        assert sorted(f["properties"]["mvt_id"] for f in gdal[name]) == sorted(f["id"] for f in ours[name])
    by_id = {f["properties"]["mvt_id"]: f["properties"] for f in gdal["communes"]}
    for feature in ours["communes"]:
        assert by_id[feature["id"]]["code"] == feature["properties"]["code"]
