"""Small rasters written on the fly for the raster tests, and the decoding of the images served."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile

from tileserver.core.grid import Tile, tile_bounds
from tileserver.core.mercator import to_mercator


def write_raster(path: Path, data: np.ndarray, *, crs: str | None, transform: Affine, nodata: float | None = None,
                 overviews: tuple[int, ...] = (), driver: str = "GTiff") -> Path:
    """A tiled single-band GeoTIFF (or COG) of `data`, with averaged overviews when asked."""
    profile = {"driver": "GTiff", "width": data.shape[1], "height": data.shape[0], "count": 1,
               "dtype": str(data.dtype), "crs": crs, "transform": transform, "nodata": nodata,
               "tiled": True, "blockxsize": 256, "blockysize": 256}
    target = path if driver == "GTiff" else path.with_suffix(".src.tif")
    with rasterio.open(target, "w", **profile) as dst:
        dst.write(data, 1)
        if overviews:
            dst.build_overviews(list(overviews), Resampling.average)
    if driver != "GTiff":
        with rasterio.open(target) as src:
            rasterio.shutil.copy(src, path, driver=driver)
    return path


def tile_transform(tile: Tile, size: int = 256) -> Affine:
    """The transform that puts a size x size raster exactly on a tile, in EPSG:3857."""
    b = tile_bounds(tile)
    pixel = (b.right - b.left) / size
    return Affine(pixel, 0.0, b.left, 0.0, -pixel, b.top)


def decode(body: bytes) -> np.ndarray:
    """The (bands, height, width) pixels of a PNG or WebP image (which has no georeferencing, as expected)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile(body) as memory, memory.open() as image:
            return image.read()


def tile_pixel(tile: Tile, lon: float, lat: float, size: int = 256) -> tuple[int, int]:
    """Row and column of the tile pixel holding a lon/lat point."""
    b = tile_bounds(tile)
    x, y = to_mercator(lon, lat)
    pixel = (b.right - b.left) / size
    return math.floor((b.top - y) / pixel), math.floor((x - b.left) / pixel)
