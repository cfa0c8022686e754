"""The raster API over a published GeoPackage version: tiles, colour, nodata, points, TileJSON, OGC tilesets."""

import numpy as np
import pytest

from tests.support.rasterdata import decode, tile_transform, write_raster
from tileserver.core.cog import describe
from tileserver.core.colormap import lookup_table
from tileserver.core.grid import Tile, tile_bbox
from tileserver.core.settings import Settings
from tileserver.core.stores.geopackage import GeoPackageStore
from tileserver.web.app import create_app

TILE = Tile(10, 518, 352)  # over Paris
XYZ = f"/raster/grille/{TILE.z}/{TILE.x}/{TILE.y}"


@pytest.fixture
def client(tmp_path, small_dataset):
    """An app whose current version holds `grille`: value = column, nodata in the top-left 32 x 32 corner."""
    data = np.tile(np.arange(256, dtype=np.float32), (256, 1))
    data[:32, :32] = -1.0
    path = write_raster(tmp_path / "grille.tif", data, crs="EPSG:3857", transform=tile_transform(TILE), nodata=-1.0)
    small_dataset.rasters = {"grille": {
        **describe(str(path), 1), "path": str(path), "band": 1, "label": "Grille", "unit": "u",
        "kind": "external", "colormap": "viridis", "rescale": [0.0, 255.0],
    }}
    store = GeoPackageStore(str(tmp_path / "var" / "e.gpkg"), Settings(version_check_seconds=0))
    store.publish(small_dataset)
    path.unlink()  # the version serves its own copy
    yield create_app(Settings(database=store.url), store=store).test_client()
    store.close()


def test_values_get_the_colormap_colour_and_nodata_is_transparent(client):
    response = client.get(f"{XYZ}.png")
    assert response.status_code == 200 and response.content_type == "image/png"
    rgba = decode(response.data)
    assert rgba.shape == (4, 256, 256)
    assert rgba[:, 100, 200].tolist() == lookup_table("viridis")[200].tolist()
    assert rgba[:, 100, 40].tolist() == lookup_table("viridis")[40].tolist()
    assert (rgba[3, :31, :31] == 0).all() and (rgba[3, 40:, :] == 255).all()


def test_colormap_and_rescale_can_be_overridden(client):
    magma = decode(client.get(f"{XYZ}.png?colormap=magma").data)
    assert magma[:, 100, 200].tolist() == lookup_table("magma")[200].tolist()
    reversed_ = decode(client.get(f"{XYZ}.png?colormap=viridis_r").data)
    assert reversed_[:, 100, 200].tolist() == lookup_table("viridis")[55].tolist()
    clamped = decode(client.get(f"{XYZ}.png?rescale=0,100").data)
    assert clamped[:, 100, 200].tolist() == lookup_table("viridis")[255].tolist()
    assert clamped[:, 100, 40].tolist() == lookup_table("viridis")[102].tolist()


def test_webp_tiles(client):
    response = client.get(f"{XYZ}.webp")
    assert response.content_type == "image/webp" and response.data[:4] == b"RIFF"
    rgba = decode(response.data)
    assert rgba.shape == (4, 256, 256) and rgba[3, 5, 5] == 0 and rgba[3, 100, 100] == 255


def test_tiles_are_cached_with_an_etag(client):
    first = client.get(f"{XYZ}.png")
    assert first.headers["ETag"] and "max-age" in first.headers["Cache-Control"]
    again = client.get(f"{XYZ}.png", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.data
    other = client.get(f"{XYZ}.png?colormap=magma")
    assert other.headers["ETag"] != first.headers["ETag"]


def test_a_tile_where_the_raster_has_nothing_is_204(client):
    assert client.get("/raster/grille/10/0/0.png").status_code == 204


@pytest.mark.parametrize(("url", "status", "fragment"), [
    ("/raster/nope/10/518/352.png", 404, "no raster 'nope'"),
    ("/raster/grille/10/5000/352.png", 404, "outside"),
    ("/raster/grille/30/0/0.png", 404, "outside"),
    (f"{XYZ}.gif", 404, ""),
    (f"{XYZ}.png?colormap=jet", 400, "unknown colormap"),
    (f"{XYZ}.png?rescale=5,1", 400, "min < max"),
    (f"{XYZ}.png?rescale=a,b", 400, "not a number"),
    (f"{XYZ}.png?rescale=1", 400, "two numbers"),
    (f"{XYZ}.png?rescale=0,inf", 400, "not a number"),
    (f"{XYZ}.png?rescale=0,1_00", 400, "not a number"),
    (f"{XYZ}.png?color=red", 400, "unknown query parameter"),
    ("/raster/grille/legend.png?colormap=nope", 400, "unknown colormap"),
    ("/raster/grille/point?lon=2.3", 400, "'lat' is required"),
    ("/raster/grille/point?lon=2.3&lat=95", 400, "outside"),
    ("/raster/grille/point?lon=east&lat=48", 400, "not a number"),
    ("/raster/grille/point?lon=2_3&lat=48", 400, "not a number"),
    ("/raster/grille/point?lon=2.3&lat=\uff14\uff18", 400, "not a number"),
    (f"/raster/grille/{TILE.z}/\uff15\uff11\uff18/{TILE.y}.png", 404, ""),
    (f"/raster/grille/tiles/WebMercatorQuad/{TILE.z}/{TILE.y}/\uff15\uff11\uff18", 404, ""),
    ("/raster/grille/tiles/WorldCRS84Quad", 404, "WebMercatorQuad"),
    ("/raster/grille/tiles/WebMercatorQuad/x/352/518", 404, "tile matrix"),
    ("/raster/grille/tiles/WebMercatorQuad/10/352/518?f=gif", 400, "f='gif'"),
])
def test_bad_requests_are_json_4xx(client, url, status, fragment):
    response = client.get(url)
    assert response.status_code == status
    body = response.get_json()
    assert body["code"] and fragment in body["description"]


def test_point_values(client):
    box = tile_bbox(TILE)
    lon = box.west + (box.east - box.west) * 200.5 / 256
    lat = (box.south + box.north) / 2
    body = client.get(f"/raster/grille/point?lon={lon}&lat={lat}").get_json()
    assert body == {"id": "grille", "lon": lon, "lat": lat, "value": 200.0, "unit": "u"}
    assert client.get(f"/raster/grille/point?lon={box.west + 1e-5}&lat={box.north - 1e-5}").get_json()["value"] is None
    assert client.get("/raster/grille/point?lon=-60&lat=10").get_json()["value"] is None


def test_the_list_gives_what_a_map_needs(client):
    body = client.get("/raster").get_json()
    assert "viridis" in body["colormaps"] and "cividis" in body["colormaps"]
    (layer,) = body["rasters"]
    assert (layer["id"], layer["label"], layer["unit"], layer["rescale"]) == ("grille", "Grille", "u", [0.0, 255.0])
    assert layer["tiles"] == ["http://localhost/raster/grille/{z}/{x}/{y}.png"]
    assert layer["legend"] == "http://localhost/raster/grille/legend.png"
    rels = {link["rel"] for link in layer["links"]}
    assert {"describedby", "item", "legend", "http://www.opengis.net/def/rel/ogc/1.0/tilesets-map"} <= rels


def test_tilejson(client):
    body = client.get("/raster/grille.json").get_json()
    assert body["tilejson"] == "3.0.0" and body["name"] == "Grille"
    assert body["maxzoom"] == 10 and body["bounds"] == pytest.approx(list(tile_bbox(TILE)))
    styled = client.get("/raster/grille.json?colormap=magma&rescale=0,10").get_json()
    assert styled["tiles"] == ["http://localhost/raster/grille/{z}/{x}/{y}.png?colormap=magma&rescale=0%2C10"]


def test_ogc_map_tilesets(client):
    tilesets = client.get("/raster/grille/tiles").get_json()["tilesets"]
    assert tilesets[0]["dataType"] == "map" and tilesets[0]["tileMatrixSetURI"].endswith("WebMercatorQuad")
    tileset = client.get("/raster/grille/tiles/WebMercatorQuad").get_json()
    templates = {link["type"]: link["href"] for link in tileset["links"] if link["rel"] == "item"}
    template = "/raster/grille/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}"
    assert templates["image/png"].endswith(f"{template}?f=png")
    assert templates["image/webp"].endswith(f"{template}?f=webp")
    ogc = client.get(f"/raster/grille/tiles/WebMercatorQuad/{TILE.z}/{TILE.y}/{TILE.x}?f=png")
    assert ogc.status_code == 200 and ogc.data == client.get(f"{XYZ}.png").data
    negotiated = client.get(f"/raster/grille/tiles/WebMercatorQuad/{TILE.z}/{TILE.y}/{TILE.x}",
                            headers={"Accept": "image/webp"})
    assert negotiated.content_type == "image/webp" and "Accept" in negotiated.headers["Vary"]


def test_legend_shows_the_ramp(client):
    response = client.get("/raster/grille/legend.png?colormap=cividis")
    assert response.status_code == 200 and response.content_type == "image/png"
    rgba = decode(response.data)
    ramp = rgba[:, 10, 4:260]
    assert ramp[:, 0].tolist() == lookup_table("cividis")[0].tolist()
    assert ramp[:, -1].tolist() == lookup_table("cividis")[255].tolist()
    assert (rgba[:3, 24:] < 100).any()  # the numbers are drawn under the ramp


def test_the_national_ingest_serves_its_school_surfaces(national_gpkg):
    store = GeoPackageStore(national_gpkg.url, Settings(version_check_seconds=0))
    client = create_app(Settings(database=national_gpkg.url), store=store).test_client()
    layers = {r["id"]: r for r in client.get("/raster").get_json()["rasters"]}
    assert {"densite_etablissements", "densite_ecole", "densite_college", "densite_lycee",
            "lissage_fibre", "lissage_debit_descendant_mbps"} <= set(layers)
    assert layers["lissage_fibre"]["unit"] == "%" and layers["densite_ecole"]["unit"] == "écoles/km²"
    paris = client.get("/raster/densite_etablissements/point?lon=2.35&lat=48.86").get_json()["value"]
    lozere = client.get("/raster/densite_etablissements/point?lon=3.5&lat=44.5").get_json()["value"]
    assert paris > 20 * lozere > 0
    reunion = client.get("/raster/densite_etablissements/8/167/143.png")  # La Réunion, in the same raster
    assert reunion.status_code == 200 and (decode(reunion.data)[3] == 255).any()
    atlantic = client.get("/raster/densite_etablissements/point?lon=-20&lat=40").get_json()["value"]
    assert atlantic is None
    store.close()
