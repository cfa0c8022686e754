"""`ecarto seed`: a PMTiles archive (or a folder) holding exactly the tiles the server sends, and all of them."""

from __future__ import annotations

import gzip
from functools import partial

import pytest
from pmtiles.reader import MmapSource, Reader, all_tiles
from pmtiles.tile import Compression, TileType

from tests.support.national import DATA, ingest_into, small_manifest
from tests.support.tiletools import decode, synthetic_dataset
from tileserver.cli import main
from tileserver.core.errors import BadRequest
from tileserver.core.grid import Tile, bbox_to_bounds, tiles_covering
from tileserver.core.seed import Format, seed
from tileserver.core.settings import Settings
from tileserver.core.stores import open_store
from tileserver.web.app import create_app


@pytest.fixture(scope="module")
def dataset():
    return synthetic_dataset(500)


@pytest.fixture
def database(tmp_path, dataset) -> str:
    path = str(tmp_path / "e.gpkg")
    store = open_store(path, Settings())
    store.publish(dataset)
    store.close()
    return path


@pytest.fixture(scope="module")
def departement(tmp_path_factory) -> str:
    """The real ingest of the Ille-et-Vilaine sample: its schools, communes, and every other level."""
    folder = tmp_path_factory.mktemp("seed-35")
    sample = DATA / "annuaire-education-samples/annuaire-education-35-ille-et-vilaine-2023.csv"
    manifest = small_manifest(folder, sample, departement="35")
    return ingest_into(str(folder / "35.gpkg"), folder / "cache", manifest).url


def opener(database: str) -> partial:
    """What `seed` opens the store with, in each of its processes."""
    return partial(open_store, database, Settings(database=database))


def read_archive(path) -> tuple[dict, dict, dict[Tile, bytes]]:
    """Header, metadata and every tile (decompressed) of a PMTiles file."""
    with open(path, "rb") as f:
        get = MmapSource(f)
        reader = Reader(get)
        tiles = {Tile(*zxy): gzip.decompress(data) for zxy, data in all_tiles(get)}
        return reader.header(), reader.metadata(), tiles


def test_the_archive_holds_the_servers_tiles(tmp_path, database):
    output = tmp_path / "out" / "ecarto.pmtiles"
    assert main(["-q", "seed", "--database", database, "--output", str(output), "--maxzoom", "9",
                 "--layers", "etablissements,communes", "--jobs", "1"]) == 0
    header, metadata, tiles = read_archive(output)
    assert header["tile_type"] == TileType.MVT and header["tile_compression"] == Compression.GZIP
    assert (header["min_zoom"], header["max_zoom"]) == (0, 9)
    assert [layer["id"] for layer in metadata["vector_layers"]] == ["etablissements", "communes"]
    app = create_app(Settings(database=database))
    client = app.test_client()
    assert metadata["version"] == client.get("/versions").json["versions"][0]["id"]
    assert {t.z for t in tiles} == set(range(10))
    for tile, data in tiles.items():
        served = client.get(f"/tiles/etablissements,communes/{tile.z}/{tile.x}/{tile.y}.mvt")
        assert served.status_code == 200 and served.data == data, tile
    app.extensions["ecarto.store"].close()
    schools = sum(f["properties"]["point_count"] for t, data in tiles.items() if t.z == 5
                  for f in decode(data)["etablissements"])
    assert schools == 500


def test_no_tile_is_missing_from_a_zoom(tmp_path, database):
    report = seed(opener(database), tmp_path / "schools.pmtiles", layers=["etablissements"], minzoom=10,
                  maxzoom=10, jobs=1)
    _, _, tiles = read_archive(tmp_path / "schools.pmtiles")
    ids = [f["id"] for data in tiles.values() for f in decode(data)["etablissements"]]
    assert sorted(ids) == list(range(1, 501))
    assert report.tiles == {10: len(tiles)}


def test_bad_arguments_write_nothing(tmp_path, database):
    with pytest.raises(BadRequest, match="no collection"):
        seed(opener(database), tmp_path / "a.pmtiles", layers=["ecoles"])
    with pytest.raises(BadRequest, match="zooms"):
        seed(opener(database), tmp_path / "a.pmtiles", minzoom=8, maxzoom=3)
    with pytest.raises(BadRequest, match="no tile"):
        seed(opener(database), tmp_path / "a.pmtiles", layers=["communes"], minzoom=0, maxzoom=3, jobs=1)
    assert list(tmp_path.glob("a.pmtiles*")) == []
    assert main(["-q", "seed", "--database", database, "--output", str(tmp_path / "b"), "--jobs", "0"]) == 1


def test_a_departement_every_layer_zooms_0_to_12(tmp_path, departement):
    """The real ingest of a département: each tile of the archive is the server's, and no other tile holds anything."""
    output = tmp_path / "35.pmtiles"
    assert main(["-q", "seed", "--database", departement, "--output", str(output), "--maxzoom", "12",
                 "--jobs", "2"]) == 0
    _, metadata, tiles = read_archive(output)
    app = create_app(Settings(database=departement))
    client = app.test_client()
    layers = ",".join(layer["id"] for layer in metadata["vector_layers"])
    for tile, data in tiles.items():
        served = client.get(f"/tiles/{layers}/{tile.z}/{tile.x}/{tile.y}.mvt")
        assert served.status_code == 200 and served.data == data, tile
    schools = next(i for i in app.extensions["ecarto.store"].current().collections() if i.id == "etablissements")
    for z in (7, 10):
        for tile in tiles_covering(bbox_to_bounds(schools.extent), z):
            served = client.get(f"/tiles/{layers}/{tile.z}/{tile.x}/{tile.y}.mvt")
            assert (served.status_code == 200) == (tile in tiles), tile
    app.extensions["ecarto.store"].close()


def test_a_folder_of_plain_tiles(tmp_path, database):
    output = tmp_path / "tiles"
    report = seed(opener(database), output, layers=["communes"], maxzoom=9, jobs=2,
                  output_format=Format.DIR)
    files = sorted(output.rglob("*.mvt"))
    assert len(files) == sum(report.tiles.values()) > 0
    app = create_app(Settings(database=database))
    for path in files[:: max(1, len(files) // 40)]:
        z, x, y = int(path.parent.parent.name), int(path.parent.name), int(path.stem)
        assert app.test_client().get(f"/tiles/communes/{z}/{x}/{y}.mvt").data == path.read_bytes()
    app.extensions["ecarto.store"].close()
    assert not (tmp_path / "tiles.tmp").exists()
