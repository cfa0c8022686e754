"""`ecarto seed`: a PMTiles archive holding exactly the tiles the server sends."""

from __future__ import annotations

import gzip

import pytest
from pmtiles.reader import MmapSource, Reader, all_tiles
from pmtiles.tile import Compression, TileType

from tests.tiletools import decode, synthetic_dataset
from tileserver.cli import main
from tileserver.core.errors import BadRequest
from tileserver.core.grid import Tile
from tileserver.core.seed import seed
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


@pytest.fixture
def snapshot(database):
    store = open_store(database, Settings())
    yield store.current()
    store.close()


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
                 "--layers", "etablissements,communes"]) == 0
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


def test_no_tile_is_missing_from_a_zoom(tmp_path, snapshot):
    report = seed(snapshot, tmp_path / "schools.pmtiles", layers=["etablissements"], minzoom=10, maxzoom=10)
    _, _, tiles = read_archive(tmp_path / "schools.pmtiles")
    ids = [f["id"] for data in tiles.values() for f in decode(data)["etablissements"]]
    assert sorted(ids) == list(range(1, 501))
    assert report.tiles == {10: len(tiles)}


def test_bad_arguments_write_nothing(tmp_path, snapshot):
    with pytest.raises(BadRequest, match="no collection"):
        seed(snapshot, tmp_path / "a.pmtiles", layers=["ecoles"])
    with pytest.raises(BadRequest, match="zooms"):
        seed(snapshot, tmp_path / "a.pmtiles", minzoom=8, maxzoom=3)
    with pytest.raises(BadRequest, match="no tile"):
        seed(snapshot, tmp_path / "a.pmtiles", layers=["communes"], minzoom=0, maxzoom=3)
    assert list(tmp_path.glob("a.pmtiles*")) == []
