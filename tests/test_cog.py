"""Reading rasters for tiles and points: georeferencing, nodata, overviews, any CRS."""

import numpy as np
import pytest
from affine import Affine

from tests.support.rasterdata import tile_pixel, tile_transform, write_raster
from tileserver.core.cog import RasterFile, describe, read_point, read_tile
from tileserver.core.grid import Tile, tile_bbox

TILE = Tile(10, 518, 352)  # over Paris


def raster(path, band=1):
    """The reading plan of a file, as the published metadata gives it."""
    return RasterFile.from_meta({**describe(str(path), band), "path": str(path), "band": band})


def test_a_pixel_lands_on_the_same_tile_pixel(tmp_path):
    data = np.zeros((256, 256), dtype=np.uint8)
    data[100, 50] = 200
    path = write_raster(tmp_path / "r.tif", data, crs="EPSG:3857", transform=tile_transform(TILE), nodata=255)
    tile = read_tile(raster(path), TILE)
    assert tile[100, 50] == 200
    assert tile.sum() == 200  # nothing else lit, nothing shifted


def test_a_lonlat_raster_is_warped_to_the_right_place(tmp_path):
    # 0.01 degree pixels; one is lit, around (2.345, 48.855)
    data = np.zeros((100, 100), dtype=np.uint8)
    data[50, 50] = 9
    transform = Affine(0.01, 0.0, 1.84, 0.0, -0.01, 49.36)
    path = write_raster(tmp_path / "ll.tif", data, crs="EPSG:4326", transform=transform, nodata=255)
    lon, lat = 1.84 + 50.5 * 0.01, 49.36 - 50.5 * 0.01
    tile = Tile(12, 2074, 1409)
    row, col = tile_pixel(tile, lon, lat)
    assert 0 <= row < 256 and 0 <= col < 256
    read = read_tile(raster(path), tile)
    assert read[row, col] == 9
    far_row, far_col = tile_pixel(tile, lon + 0.02, lat)
    assert read[far_row, far_col] == 0


def test_nodata_is_masked_and_a_tile_outside_is_none(tmp_path):
    data = np.full((256, 256), 5.0, dtype=np.float32)
    data[:, :128] = -1.0
    path = write_raster(tmp_path / "n.tif", data, crs="EPSG:3857", transform=tile_transform(TILE), nodata=-1.0)
    tile = read_tile(raster(path), TILE)
    assert tile.mask[:, :127].all() and not tile.mask[:, 130:].any()
    assert read_tile(raster(path), Tile(10, 0, 0)) is None


def test_a_raster_without_nodata_is_transparent_outside_its_extent(tmp_path):
    data = np.full((128, 128), 7, dtype=np.uint8)
    half = tile_transform(TILE)
    path = write_raster(tmp_path / "a.tif", data, crs="EPSG:3857", transform=half)  # the tile's top-left quarter
    tile = read_tile(raster(path), TILE)
    assert not tile.mask[:128, :128].any() and tile.mask[128:, :].all() and tile.mask[:, 128:].all()


def test_low_zooms_read_the_overviews(tmp_path):
    # a one-pixel checkerboard of 0 and 100: only its averaged overviews hold 50
    fine = Tile(12, 4 * TILE.x, 4 * TILE.y)
    data = (np.indices((1024, 1024)).sum(axis=0) % 2 * 100).astype(np.uint8)
    path = write_raster(tmp_path / "c.tif", data, crs="EPSG:3857", transform=tile_transform(fine, 1024),
                        nodata=255, overviews=(2, 4))
    plan = raster(path)
    assert plan.overviews == (2, 4)
    assert set(read_tile(plan, Tile(14, 4 * fine.x, 4 * fine.y)).compressed()) == {0, 100}
    assert set(read_tile(plan, Tile(13, 2 * fine.x, 2 * fine.y)).compressed()) == {50}
    assert set(read_tile(plan, fine).compressed()) == {50}


def test_point_values(tmp_path):
    data = np.arange(256 * 256, dtype=np.float32).reshape(256, 256)
    data[0, 0] = -9999
    path = write_raster(tmp_path / "p.tif", data, crs="EPSG:3857", transform=tile_transform(TILE), nodata=-9999)
    plan = raster(path)
    box = tile_bbox(TILE)
    lon, lat = box.west + (box.east - box.west) * 10.5 / 256, box.north - (box.north - box.south) * 3.2 / 256
    row, col = tile_pixel(TILE, lon, lat)
    assert read_point(plan, lon, lat) == pytest.approx(row * 256 + col)
    assert read_point(plan, box.west + 1e-6, box.north - 1e-6) is None  # the nodata corner
    assert read_point(plan, 100.0, 0.0) is None  # far outside


def test_describe_gives_zooms_bounds_and_resampling(tmp_path):
    path = write_raster(tmp_path / "d.tif", np.zeros((256, 256), dtype=np.float32), crs="EPSG:3857",
                        transform=tile_transform(TILE), nodata=-1.0)
    meta = describe(str(path), 1)
    assert meta["maxzoom"] == 10 and meta["resampling"] == "bilinear" and meta["crs"] == "EPSG:3857"
    assert meta["bounds"] == pytest.approx(list(tile_bbox(TILE)))
