"""What vector tiles hold, on both stores: clusters that count every school once, single schools,
territories by zoom range and band, filters, and the same features whichever store made the tile."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import shapely
from shapely.geometry import shape

from ingest.clusters import cell_of
from tests.support.tiletools import CELLS, CLUSTER_MAXZOOM, decode, synthetic_dataset
from tileserver.core.coverage import ZoomTiles, touched
from tileserver.core.dataset import COUNTED_TYPES
from tileserver.core.grid import Tile, tile_at, tile_bounds
from tileserver.core.mercator import to_mercator
from tileserver.core.mvt import EXTENT
from tileserver.core.settings import Settings
from tileserver.core.store import TileFilter
from tileserver.core.stores import open_store
from tileserver.web.app import create_app

LAYERS = "etablissements,communes,departements"


@pytest.fixture(scope="module")
def dataset():
    return synthetic_dataset()


@pytest.fixture(params=["geopackage", "postgis"])
def settings(request, tmp_path) -> Settings:
    url = request.getfixturevalue("postgis_url") if request.param == "postgis" else str(tmp_path / "e.gpkg")
    return Settings(database=url, assets_dir=str(tmp_path / "assets"), version_check_seconds=0)


@pytest.fixture
def client(settings, dataset):
    app = create_app(settings)
    app.extensions["ecarto.store"].publish(dataset)
    yield app.test_client()
    app.extensions["ecarto.store"].close()


def school_positions(dataset) -> np.ndarray:
    """Each school's position in EPSG:3857."""
    layer = dataset.layers["etablissements"]
    return np.array([to_mercator(p.x, p.y) for p in layer.geometries])


def school_tiles(dataset, z: int) -> list[Tile]:
    """Every tile of zoom z holding a school."""
    xy = school_positions(dataset)
    x, y = touched(np.hstack([xy, xy]), z)
    return list(ZoomTiles.of_cells(z, np.unique(x << z | y)).tiles())


def features(client, layers: str, tile: Tile, query: str = "") -> dict[str, list[dict]]:
    """The decoded features of one tile ({} for an empty tile)."""
    response = client.get(f"/tiles/{layers}/{tile.z}/{tile.x}/{tile.y}.mvt{query}")
    assert response.status_code in (200, 204), response.json
    return decode(response.data) if response.status_code == 200 else {}


def column(dataset, name: str) -> list:
    return dataset.layers["etablissements"].columns[name]


@pytest.mark.parametrize("z", [0, 4, 7, 9])
def test_the_clusters_of_a_zoom_count_every_school_once(client, dataset, z):
    totals: Counter = Counter()
    debit_sum = 0.0
    for tile in school_tiles(dataset, z):
        for f in features(client, "etablissements", tile).get("etablissements", []):
            totals.update({k: v for k, v in f["properties"].items() if k in ("point_count", "n_ecole", "n_college",
                                                                             "n_lycee", "n_autre", "debit_n")})
            debit_sum += f["properties"]["debit_sum"]
    kinds = Counter(t if t in COUNTED_TYPES[:-1] else "autre" for t in column(dataset, "type"))
    debits = [d for d in column(dataset, "debit") if d is not None]
    assert totals["point_count"] == len(dataset.layers["etablissements"])
    assert {t: totals[f"n_{t}"] for t in COUNTED_TYPES} == {t: kinds[t] for t in COUNTED_TYPES}
    assert totals["debit_n"] == len(debits)
    assert math.isclose(debit_sum, sum(debits), rel_tol=1e-9)


def test_filters_apply_before_clustering(client, dataset):
    wanted = {i for i, (t, s) in enumerate(zip(column(dataset, "type"), column(dataset, "statut"), strict=True))
              if t in ("college", "lycee") and s == "public"}
    total, lycees = 0, 0
    for tile in school_tiles(dataset, 6):
        for f in features(client, "etablissements", tile, "?type=lycee,college&statut=public").get(
                "etablissements", []):
            total += f["properties"]["point_count"]
            lycees += f["properties"]["n_lycee"]
            assert f["properties"]["n_ecole"] == f["properties"]["n_autre"] == 0
    assert total == len(wanted)
    assert lycees == sum(column(dataset, "type")[i] == "lycee" for i in wanted)
    single = [f["id"] for tile in school_tiles(dataset, CLUSTER_MAXZOOM)
              for f in features(client, "etablissements", tile, "?type=lycee,college&statut=public").get(
                  "etablissements", [])]
    assert sorted(single) == sorted(i + 1 for i in wanted)  # single schools are filtered too


@pytest.mark.parametrize("z", [3, 8, CLUSTER_MAXZOOM])
def test_a_territory_filter_keeps_its_schools_and_clusters_them_alike(client, dataset, z):
    codes = Counter(column(dataset, "code_commune"))
    commune = codes.most_common(2)[1][0]
    wanted = [i for i, c in enumerate(column(dataset, "code_commune")) if c == commune]
    found, debit_sum, ids = 0, 0.0, set()
    for tile in school_tiles(dataset, z):
        for f in features(client, "etablissements", tile, f"?code_commune={commune}").get("etablissements", []):
            found += f["properties"].get("point_count", 1)
            debit_sum += f["properties"].get("debit_sum", f["properties"].get("debit") or 0.0)
            ids.add(f["id"])
    assert found == len(wanted)
    assert math.isclose(debit_sum, sum(column(dataset, "debit")[i] or 0.0 for i in wanted), rel_tol=1e-9)
    if z >= CLUSTER_MAXZOOM:
        assert ids == {i + 1 for i in wanted}
    else:  # the same cells, so the same cluster ids, as the unfiltered tiles
        xy = school_positions(dataset)[wanted]
        cx, cy = cell_of(xy[:, 0], xy[:, 1], z, CELLS)
        assert ids == set((cx * ((1 << z) * CELLS) + cy).tolist())


def test_territory_filters_are_checked_and_kept_in_tilejson(client, dataset):
    commune = column(dataset, "code_commune")[0]
    doc = client.get(f"/tiles/etablissements.json?code_commune={commune}").get_json()
    assert doc["tiles"][0].endswith(f".mvt?v={doc['tiles'][0].split('?v=')[1].split('&')[0]}&code_commune={commune}")
    west, south, east, north = doc["bounds"]
    lon, lat, zoom = doc["center"]
    assert west <= lon <= east and south <= lat <= north and doc["minzoom"] <= zoom <= doc["maxzoom"]
    assert client.get("/tiles/etablissements/3/4/2.mvt?code_commune=35;DROP").status_code == 400
    assert client.get("/tiles/etablissements/3/4/2.mvt?code_region=53").status_code == 400  # schools carry no region
    assert client.get("/tiles/etablissements/3/4/2.mvt?code_canton=1").status_code == 400


def test_a_cluster_sits_at_the_mean_of_its_schools(client, dataset):
    z = 8
    xy = school_positions(dataset)
    cx, cy = cell_of(xy[:, 0], xy[:, 1], z, CELLS)
    side = (1 << z) * CELLS
    tile = Tile(z, int(cx[100]) // CELLS, int(cy[100]) // CELLS)
    b = tile_bounds(tile)
    for f in features(client, "etablissements", tile)["etablissements"]:
        members = (cx * side + cy) == f["id"]
        assert f["properties"]["point_count"] == members.sum()
        mean_x, mean_y = xy[members].mean(axis=0)
        x, y = f["geometry"]["coordinates"]  # tile units, y up
        assert abs(x - (mean_x - b.left) / (b.right - b.left) * EXTENT) <= 0.5 + 1e-6
        assert abs(y - (mean_y - b.bottom) / (b.top - b.bottom) * EXTENT) <= 0.5 + 1e-6


def test_from_the_cluster_zoom_on_each_school_is_one_feature_with_its_properties(client, dataset):
    layer = dataset.layers["etablissements"]
    seen: dict[int, dict] = {}
    for tile in school_tiles(dataset, CLUSTER_MAXZOOM):
        for f in features(client, "etablissements", tile).get("etablissements", []):
            assert f["id"] not in seen, f"school {f['id']} is in two tiles"
            seen[f["id"]] = f["properties"]
    assert sorted(seen) == list(range(1, len(layer) + 1))
    for fid in (1, 6, 7, 13, 14, 2999):
        expected = {name: values[fid - 1] for name, values in layer.columns.items()
                    if values[fid - 1] is not None and name in {f.name for f in layer.fields}}
        assert seen[fid] == expected


def test_territories_follow_their_zoom_range_and_band(client, dataset):
    tile6 = Tile(6, 31, 22)  # western France
    assert "communes" not in features(client, LAYERS, Tile(5, 15, 11))
    low = features(client, LAYERS, tile6)["communes"]
    assert all(len(shape(f["geometry"]).exterior.coords) == 5 for f in low)  # band 6-9: envelopes
    assert "00000" not in {f["properties"]["code"] for f in low}  # vanished at this band
    code = "05010"
    high_tile = _tile_of(dataset, "communes", code, 10)
    (high,) = [f for f in features(client, LAYERS, high_tile)["communes"] if f["properties"]["code"] == code]
    assert len(shape(high["geometry"]).exterior.coords) == 6  # band 10-14: the real pentagon
    assert high["properties"]["etablissements"] == sum(c == code for c in column(dataset, "code_commune"))
    assert "departements" in features(client, LAYERS, Tile(3, 3, 2))  # no band: full geometry
    assert "departements" not in features(client, LAYERS, Tile(11, 1020, 720))


def _tile_of(dataset, level: str, code: str, z: int) -> Tile:
    """The tile holding the representative point of a territory."""
    layer = dataset.layers[level]
    point = layer.geometries[layer.ids.index(code)].representative_point()
    return tile_at(*to_mercator(point.x, point.y), z)


def test_the_same_tile_from_both_stores_decodes_to_the_same_features(tmp_path, postgis_url, dataset):
    stores = [open_store(str(tmp_path / "e.gpkg"), Settings()),
              open_store(postgis_url, Settings(database=postgis_url, assets_dir=str(tmp_path / "assets")))]
    for store in stores:
        store.publish(dataset)
    snapshots = [s.current() for s in stores]
    tiles = [Tile(0, 0, 0), Tile(5, 15, 11), *school_tiles(dataset, 7)[:12], *school_tiles(dataset, 10)[:12],
             Tile(6, 31, 22), _tile_of(dataset, "communes", "05010", 12), Tile(14, 8174, 5773)]
    names = ["etablissements", "communes", "departements"]
    try:
        for tile in tiles:
            commune = (("code_commune", column(dataset, "code_commune")[0]),)
            for filters in (TileFilter(), TileFilter(types=("college",), statuts=("prive",)),
                            TileFilter(statuts=("public",), territories=commune)):
                embedded, postgis = (decode(s.tile(tile, layers=names, filters=filters)) for s in snapshots)
                assert embedded.keys() == postgis.keys(), tile
                for name in embedded:
                    _assert_same_features(embedded[name], postgis[name], tile)
    finally:
        for store in stores:
            store.close()


def _assert_same_features(ours: list[dict], theirs: list[dict], tile: Tile) -> None:
    """Same ids and properties; points within one unit; polygons differing by a sliver at most."""
    ours, theirs = sorted(ours, key=lambda f: f["id"]), sorted(theirs, key=lambda f: f["id"])
    assert [f["id"] for f in ours] == [f["id"] for f in theirs], tile
    for a, b in zip(ours, theirs, strict=True):
        assert a["properties"].keys() == b["properties"].keys()
        for key, value in a["properties"].items():
            if isinstance(value, float):
                assert value == pytest.approx(b["properties"][key], rel=1e-12), (tile, key)
            else:
                assert value == b["properties"][key] and type(value) is type(b["properties"][key]), (tile, key)
        ga, gb = shape(a["geometry"]), shape(b["geometry"])
        if ga.geom_type == "Point":
            assert ga.distance(gb) <= 1.5, (tile, a["id"])
        else:
            assert shapely.symmetric_difference(ga, gb).area <= max(ga.length, 1) * 1.0, (tile, a["id"])


def test_the_small_dataset_gives_its_clusters_schools_and_communes(settings, small_dataset):
    app = create_app(settings)
    app.extensions["ecarto.store"].publish(small_dataset)
    client = app.test_client()
    try:
        layer = small_dataset.layers["etablissements"]
        positions = [to_mercator(p.x, p.y) for p in layer.geometries]
        by_tile = Counter(tile_at(x, y, 6) for x, y in positions)
        for tile, count in by_tile.items():
            clusters = features(client, "etablissements", tile)["etablissements"]
            assert sum(f["properties"]["point_count"] for f in clusters) == count
        rennes = tile_at(*to_mercator(-1.6, 48.1), 8)
        schools = {f["properties"]["uai"]: f["properties"] for f in
                   features(client, "etablissements,communes", rennes)["etablissements"]}
        assert schools["0350001L"] == {"uai": "0350001L", "nom": "École Jules Ferry", "type": "ecole",
                                       "statut": "public", "code_commune": "35001", "education_prioritaire": True,
                                       "effectif": 210, "ips": 105.2}
        acigne = tile_at(*to_mercator(-1.1, 48.05), 7)
        assert "35003" not in {f["properties"]["code"] for f in features(client, "communes", acigne)["communes"]}
        acigne = tile_at(*to_mercator(-1.1, 48.05), 8)
        assert "35003" in {f["properties"]["code"] for f in features(client, "communes", acigne)["communes"]}
    finally:
        app.extensions["ecarto.store"].close()
