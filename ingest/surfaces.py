"""Continuous surfaces from school positions: density per km² and kernel-smoothed indicator values.

The grid is the pixel grid of the WebMercatorQuad tiles at `BASE_ZOOM` (1,223 m of EPSG:3857 a
pixel: about 850 m on the ground in metropolitan France, 1,150 m in La Réunion), so a surface's
pixels fall exactly on that zoom's tile pixels and serving warps nothing but a resampling. The
kernels are several kilometres wide, so a finer grid would only repeat the same smooth values.

France is not one rectangle: metropolitan France and each overseas group is a `Zone`, computed on
its own window of the grid; `ingest.rasters` writes the windows into one sparse raster per surface.

The kernel is a Gaussian whose bandwidth is given in ground metres and converted to pixels at the
middle latitude of each window (EPSG:3857 stretches the ground by 1/cos(latitude); across the
metropolitan window that stretch varies by +-9 %, a bandwidth error of the same size). Density
spreads each school's unit mass with the kernel and divides by each row's exact ground pixel area,
so it integrates to the school count. A smoothed value is the kernel-weighted mean of the schools
that have one (Nadaraya-Watson); it is left empty where the nearest such school is farther than
about two bandwidths, rather than extrapolated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio.features import geometry_mask

from tileserver.core.grid import BBox, Bounds, bbox_to_bounds, tile_size
from tileserver.core.mercator import ORIGIN, geometries_to_mercator, latitudes, to_lnglat

BASE_ZOOM = 7
BLOCK = 256  # pixels of a tile, and of a block of the written rasters
MARGIN_M = 60_000  # room around a zone for the kernel's tails: three of the widest bandwidth
MIN_BANDWIDTH_M = 2_000
MAX_BANDWIDTH_M = 20_000
MIN_WEIGHT = math.exp(-2)  # a lone school at two bandwidths: beyond, a smoothed value is not shown


@dataclass(frozen=True)
class Zone:
    """A part of France computed on its own window of the grid."""

    code: str
    name: str
    bbox: BBox


ZONES = (
    Zone("metropole", "France métropolitaine", BBox(-5.3, 41.3, 9.6, 51.15)),
    Zone("antilles", "Guadeloupe, Martinique, Saint-Martin, Saint-Barthélemy", BBox(-63.2, 14.35, -60.8, 18.15)),
    Zone("guyane", "Guyane", BBox(-54.65, 2.1, -51.6, 5.8)),
    Zone("reunion", "La Réunion", BBox(55.2, -21.4, 55.85, -20.85)),
    Zone("mayotte", "Mayotte", BBox(45.0, -13.05, 45.32, -12.6)),
    Zone("saint_pierre", "Saint-Pierre-et-Miquelon", BBox(-56.45, 46.74, -56.1, 47.15)),
)


@dataclass(frozen=True)
class Grid:
    """A window of the WebMercatorQuad pixel grid at one zoom; `col`, `row` count from the world's top-left."""

    zoom: int
    col: int
    row: int
    width: int
    height: int

    @property
    def res(self) -> float:
        """Pixel size in EPSG:3857 metres."""
        return tile_size(self.zoom) / BLOCK

    @property
    def transform(self) -> Affine:
        return Affine(self.res, 0.0, -ORIGIN + self.col * self.res, 0.0, -self.res, ORIGIN - self.row * self.res)

    @property
    def bounds(self) -> Bounds:
        left, top = -ORIGIN + self.col * self.res, ORIGIN - self.row * self.res
        return Bounds(left, top - self.height * self.res, left + self.width * self.res, top)

    def latitudes(self) -> np.ndarray:
        """The latitude of each row's centre."""
        y = ORIGIN - (self.row + np.arange(self.height) + 0.5) * self.res
        return latitudes(y)

    def pixel_km2(self) -> np.ndarray:
        """The ground area of a pixel of each row, in km², as a column to divide a whole array by."""
        side = self.res * np.cos(np.radians(self.latitudes()))
        return (side**2 / 1e6)[:, np.newaxis]

    def pixels(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Column, row and inside-flag of points given in EPSG:3857 metres."""
        left, _, _, top = self.bounds
        cols = np.floor((x - left) / self.res).astype(np.int64)
        rows = np.floor((top - y) / self.res).astype(np.int64)
        inside = (cols >= 0) & (cols < self.width) & (rows >= 0) & (rows < self.height)
        return cols, rows, inside


def covering(bounds: Bounds, zoom: int, block: int = 1) -> Grid:
    """The smallest window of the grid holding a box, its edges on multiples of `block` pixels.

    >>> covering(Bounds(0.0, -1.0, 1.0, 0.0), 0, 256)
    Grid(zoom=0, col=0, row=0, width=256, height=256)
    """
    res = tile_size(zoom) / BLOCK
    col0 = math.floor((bounds.left + ORIGIN) / res / block) * block
    row0 = math.floor((ORIGIN - bounds.top) / res / block) * block
    col1 = math.ceil((bounds.right + ORIGIN) / res / block) * block
    row1 = math.ceil((ORIGIN - bounds.bottom) / res / block) * block
    return Grid(zoom, col0, row0, col1 - col0, row1 - row0)


def zone_grid(zone: Zone, zoom: int = BASE_ZOOM) -> Grid:
    """A zone's window: its box plus the kernel margin."""
    b = bbox_to_bounds(zone.bbox)
    stretch = 1 / math.cos(math.radians((zone.bbox.south + zone.bbox.north) / 2))
    margin = MARGIN_M * stretch
    return covering(Bounds(b.left - margin, b.bottom - margin, b.right + margin, b.top + margin), zoom)


def union(grids: list[Grid]) -> Grid:
    """One window holding every given window, on whole blocks (tiles of the grid's zoom)."""
    left = min(g.bounds.left for g in grids)
    bottom = min(g.bounds.bottom for g in grids)
    right = max(g.bounds.right for g in grids)
    top = max(g.bounds.top for g in grids)
    return covering(Bounds(left, bottom, right, top), grids[0].zoom, BLOCK)


def land_mask(geometries_4326: np.ndarray, grid: Grid) -> np.ndarray:
    """True on the pixels any given polygon touches (coastal pixels count as land)."""
    shapes = [g for g in geometries_to_mercator(geometries_4326) if g is not None and not g.is_empty]
    if not shapes:
        return np.zeros((grid.height, grid.width), dtype=bool)
    return geometry_mask(shapes, out_shape=(grid.height, grid.width), transform=grid.transform,
                         all_touched=True, invert=True)


def bandwidth(count: int, area_km2: float, factor: float = 1.0) -> float:
    """A kernel bandwidth in metres: `factor` times the mean spacing of `count` points over an area.

    >>> bandwidth(55_000, 550_000), bandwidth(4, 550_000), bandwidth(10**7, 550_000)
    (3162.0, 20000.0, 2000.0)
    """
    spacing = 1000 * math.sqrt(area_km2 / max(count, 1))
    return float(round(min(MAX_BANDWIDTH_M, max(MIN_BANDWIDTH_M, factor * spacing))))


def density(x: np.ndarray, y: np.ndarray, grid: Grid, sigma_m: float) -> np.ndarray:
    """Points per km² on the grid: each point's unit mass spread by the Gaussian kernel."""
    mass = np.maximum(gaussian_blur(_counts(x, y, grid), _sigma_pixels(grid, sigma_m)), 0.0)  # no FFT noise below 0
    return (mass / grid.pixel_km2()).astype(np.float32)


def smoothed(x: np.ndarray, y: np.ndarray, values: np.ndarray, grid: Grid, sigma_m: float) -> np.ndarray:
    """The kernel-weighted mean of the points' values (NaN values ignored); NaN where no point is near."""
    known = ~np.isnan(values)
    sigma = _sigma_pixels(grid, sigma_m)
    weights = gaussian_blur(_counts(x[known], y[known], grid), sigma)
    sums = gaussian_blur(_counts(x[known], y[known], grid, values[known]), sigma)
    near = weights * (2 * math.pi * sigma**2) >= MIN_WEIGHT  # the kernel's weight scaled to a peak of 1
    out = np.full(weights.shape, np.nan, dtype=np.float32)
    out[near] = sums[near] / weights[near]
    return out


def gaussian_blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian filter (mass-preserving, zero beyond the edges), applied along rows then columns.

    >>> a = np.zeros((9, 9)); a[4, 4] = 1.0
    >>> b = gaussian_blur(a, 1.0)
    >>> round(float(b.sum()), 6), bool(b[4, 4] == b.max()), bool(np.allclose(b, b.T))
    (1.0, True, True)
    """
    radius = max(1, math.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    return _convolve(_convolve(a, taps, axis=1), taps, axis=0)


def _convolve(a: np.ndarray, taps: np.ndarray, axis: int) -> np.ndarray:
    """A 1-D convolution along one axis with zero padding, by FFT so that wide kernels cost no more.

    The transform is at least as long as the padded signal, so nothing wraps around.
    """
    radius = len(taps) // 2
    n = a.shape[axis]
    size = _fast_length(n + 2 * radius)
    shape = [1, 1]
    shape[axis] = -1
    spectrum = np.fft.rfft(a, size, axis=axis) * np.fft.rfft(taps, size).reshape(shape)
    full = np.fft.irfft(spectrum, size, axis=axis)
    return full[:, radius : radius + n] if axis == 1 else full[radius : radius + n, :]


def _fast_length(n: int) -> int:
    """The smallest length >= n with no prime factor above 5, which the FFT handles fastest.

    >>> _fast_length(1499), _fast_length(1024), _fast_length(1031)
    (1500, 1024, 1080)
    """
    best = 2 ** math.ceil(math.log2(n))
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            length = p35 * 2 ** max(0, math.ceil(math.log2(n / p35)))
            best = min(best, length)
            p35 *= 3
        p5 *= 5
    return best


def _counts(x: np.ndarray, y: np.ndarray, grid: Grid, weights: np.ndarray | None = None) -> np.ndarray:
    """How many points (or the sum of their weights) fall in each pixel."""
    cols, rows, inside = grid.pixels(x, y)
    flat = rows[inside] * grid.width + cols[inside]
    w = None if weights is None else weights[inside]
    return np.bincount(flat, weights=w, minlength=grid.width * grid.height).reshape(grid.height, grid.width)


def _sigma_pixels(grid: Grid, sigma_m: float) -> float:
    """A ground bandwidth in pixels at the window's middle latitude."""
    lat = to_lnglat(0.0, (grid.bounds.top + grid.bounds.bottom) / 2)[1]
    return sigma_m / (grid.res * math.cos(math.radians(lat)))
