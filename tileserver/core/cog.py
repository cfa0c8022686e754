"""Reading published rasters: a web-map tile through a WarpedVRT on the right overview, or one pixel.

Everything a read has to decide before opening the file (which overview, whether the tile touches
the raster at all) comes from metadata computed once at ingest by `describe`, so a tile costs one
open, one warp of at most a tile's worth of overview pixels, and no full-resolution read at low
zooms. GDAL runs inside `rasterio.Env` with the options below, set once here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import rowcol
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform, transform_bounds
from rasterio.windows import Window

from tileserver.core.grid import MAX_ZOOM, BBox, Bounds, Tile, bbox_to_bounds, tile_bounds, tile_size
from tileserver.core.mercator import ORIGIN

TILE_PIXELS = 256
MERCATOR = CRS.from_epsg(3857)
LONLAT = CRS.from_epsg(4326)
GDAL_OPTIONS = {
    "GDAL_PAM_ENABLED": "NO",  # never write .aux.xml beside a published file or an in-memory image
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",  # a COG has no sidecar files to look for
}


def gdal_env() -> rasterio.Env:
    """The GDAL configuration every raster read and write of the server runs under."""
    return rasterio.Env(**GDAL_OPTIONS)


@dataclass(frozen=True)
class RasterFile:
    """What reading one published raster needs, taken from its metadata."""

    path: str
    band: int
    bounds: Bounds  # EPSG:3857
    resolution: float  # EPSG:3857 metres per full-resolution pixel
    overviews: tuple[int, ...]  # decimation factors of the internal overviews
    resampling: Resampling

    @classmethod
    def from_meta(cls, meta: dict) -> RasterFile:
        """The reading plan of a raster published with metadata from `describe` (plus `path`, `band`)."""
        return cls(
            path=meta["path"],
            band=int(meta.get("band", 1)),
            bounds=bbox_to_bounds(BBox(*meta["bounds"])),
            resolution=float(meta["resolution"]),
            overviews=tuple(meta.get("overviews", ())),
            resampling=Resampling[meta.get("resampling", "bilinear")],
        )


def describe(path: str, band: int) -> dict:
    """The metadata a raster is published with: extent, resolution, overviews and zooms, all JSON values."""
    with gdal_env(), rasterio.open(path) as src:
        bounds = transform_bounds(src.crs, LONLAT, *src.bounds, densify_pts=21)
        left, bottom, right, top = transform_bounds(src.crs, MERCATOR, *src.bounds, densify_pts=21)
        resolution = min((right - left) / src.width, (top - bottom) / src.height)
        dtype = src.dtypes[band - 1]
        return {
            "crs": src.crs.to_string(),
            "width": src.width,
            "height": src.height,
            "dtype": dtype,
            "bounds": [round(v, 7) for v in bounds],
            "resolution": resolution,
            "overviews": list(src.overviews(band)),
            "minzoom": 0,
            "maxzoom": native_zoom(resolution),
            "resampling": "nearest" if np.issubdtype(np.dtype(dtype), np.integer) else "bilinear",
        }


def native_zoom(resolution: float) -> int:
    """The zoom whose tile pixels are closest in size to the raster's pixels.

    >>> native_zoom(tile_size(7) / 256), native_zoom(1000.0), native_zoom(1e9)
    (7, 7, 0)
    """
    zoom = round(math.log2(2 * ORIGIN / (TILE_PIXELS * resolution)))
    return max(0, min(MAX_ZOOM, zoom))


def overview_level(overviews: tuple[int, ...], resolution: float, z: int) -> int | None:
    """The coarsest overview still at least as fine as the tile's pixels (None: full resolution).

    >>> res = tile_size(7) / 256
    >>> [overview_level((2, 4, 8), res, z) for z in (9, 7, 6, 5, 3, 0)]
    [None, None, 0, 1, 2, 2]
    """
    wanted = tile_size(z) / TILE_PIXELS * (1 + 1e-9)
    level = None
    for i, factor in enumerate(overviews):
        if resolution * factor <= wanted:
            level = i
    return level


def read_tile(raster: RasterFile, tile: Tile, size: int = TILE_PIXELS) -> np.ma.MaskedArray | None:
    """The raster's band warped onto a tile, masked where there is no data; None when nothing is there."""
    bounds = tile_bounds(tile)
    if not _overlaps(bounds, raster.bounds):
        return None
    level = overview_level(raster.overviews, raster.resolution, tile.z)
    options = {} if level is None else {"overview_level": level}
    pixel = (bounds.right - bounds.left) / size
    target = Affine(pixel, 0.0, bounds.left, 0.0, -pixel, bounds.top)
    with gdal_env(), rasterio.open(raster.path, **options) as src:
        nodata = src.nodata
        with WarpedVRT(src, crs=MERCATOR, transform=target, width=size, height=size,
                       resampling=raster.resampling, add_alpha=nodata is None) as vrt:
            if nodata is None:
                data, alpha = vrt.read([raster.band, vrt.count])
                invalid = alpha == 0
            else:
                data = vrt.read(raster.band)
                invalid = _is_nodata(data, nodata)
    if invalid.all():
        return None
    return np.ma.masked_array(data, invalid)


def read_point(raster: RasterFile, lon: float, lat: float) -> float | None:
    """The full-resolution value of the pixel under a lon/lat point; None outside or on nodata."""
    with gdal_env(), rasterio.open(raster.path) as src:
        xs, ys = transform(LONLAT, src.crs, [lon], [lat])
        row, col = rowcol(src.transform, xs[0], ys[0])
        if not (0 <= row < src.height and 0 <= col < src.width):
            return None
        value = src.read(raster.band, window=Window(col, row, 1, 1))[0]
        nodata = math.nan if src.nodata is None else src.nodata
    return None if _is_nodata(value, nodata)[0] else value[0].item()


def _is_nodata(data: np.ndarray, nodata: float) -> np.ndarray:
    """Where the array holds the nodata value (NaN is never a value, whatever the nodata)."""
    if np.issubdtype(data.dtype, np.floating):
        return np.isnan(data) if math.isnan(nodata) else (data == nodata) | np.isnan(data)
    return data == nodata


def _overlaps(a: Bounds, b: Bounds) -> bool:
    """Whether two boxes share more than an edge.

    >>> _overlaps(Bounds(0, 0, 1, 1), Bounds(1, 0, 2, 1)), _overlaps(Bounds(0, 0, 2, 2), Bounds(1, 1, 3, 3))
    (False, True)
    """
    return a.left < b.right and b.left < a.right and a.bottom < b.top and b.bottom < a.top
