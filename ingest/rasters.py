"""The rasters of a data version: school surfaces computed here, and the manifest's GeoTIFFs, all as COGs.

Every raster is a Cloud-Optimised GeoTIFF (256-pixel tiles, internal overviews averaged, nodata
set) in a scratch folder, and `build_rasters` returns its metadata, which the store copies with the
files at publish. The school surfaces are in EPSG:3857 on the tile grid of `surfaces.BASE_ZOOM`:
one raster per surface spans metropolitan France and the overseas zones, but only the zones'
windows hold blocks; the ocean between them is sparse (SPARSE_OK), costing no disk and no read. One
file per surface keeps one layer per surface for the map, one open per tile, and the stores'
one-file-per-raster copy. External rasters keep their CRS and are warped per tile; one that is not
a COG yet is converted. A source that cannot be read is a rejection in the ingest report, and the
other rasters go on.

Metadata of each raster (JSON values; `tileserver.web.raster` and `tileserver.core.cog` read it): `path`,
`label`, `unit`, `description`, `kind` (`density`, `surface` or `external`), `band`, `colormap`,
`rescale` [min, max], `stats` {min, max, p2, p98}, `source`, then what `tileserver.core.cog.describe`
finds: `crs`, `width`, `height`, `dtype`, `bounds` (lon/lat), `resolution` (EPSG:3857 metres),
`overviews`, `minzoom`, `maxzoom`, `resampling`.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio._err import CPLE_BaseError  # how rasterio raises GDAL's own errors (a corrupt block...)
from rasterio.errors import RasterioError
from rasterio.windows import Window

from ingest import surfaces
from ingest.manifest import Indicator, Manifest, RasterSource
from ingest.report import DatasetReport, Report
from ingest.schools import Schools
from tileserver.core import colormap
from tileserver.core.cog import describe, gdal_env
from tileserver.core.dataset import SCHOOLS, Layer
from tileserver.core.errors import IngestError
from tileserver.core.mercator import array_to_mercator

COG_OPTIONS = {"COMPRESS": "DEFLATE", "BLOCKSIZE": "256", "OVERVIEW_RESAMPLING": "AVERAGE", "SPARSE_OK": "TRUE",
               "NUM_THREADS": "ALL_CPUS"}
# school type (None: all) -> the plural and the label of its density
DENSITY_TYPES = {
    None: ("établissements", "Densité d'établissements"),
    "ecole": ("écoles", "Densité d'écoles"),
    "college": ("collèges", "Densité de collèges"),
    "lycee": ("lycées", "Densité de lycées"),
}
MIN_KNOWN = 20  # fewer schools with a value than this make no surface
STATS_PIXELS = 1024  # external rasters: statistics from an overview about this wide
SMOOTHING = 2.0  # indicator bandwidth, in mean spacings of the schools that have a value


SCRATCH_PREFIX = "ecarto-rasters-"


class RasterFiles(dict):
    """Raster id -> metadata, whose files sit in a scratch folder removed when this mapping is dropped.

    The dataset holds the mapping until the store has copied the files at publish, so the folder
    lives exactly as long as something can still need it, even if a run stops half-way. The folder
    is made in `scratch`, beside the store (the system's temporary directory may be small, and
    nobody cleans it), named after this process: a killed run's folder is removed by the next run.
    """

    def __init__(self, scratch: Path) -> None:
        super().__init__()
        scratch.mkdir(parents=True, exist_ok=True)
        remove_leftovers(scratch)
        self.folder = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=scratch))
        weakref.finalize(self, shutil.rmtree, self.folder, True)


def remove_leftovers(scratch: Path) -> list[Path]:
    """Remove the scratch folders of runs whose process is gone (killed), keeping those of live runs."""
    removed = []
    for folder in scratch.glob(f"{SCRATCH_PREFIX}*"):
        pid = folder.name[len(SCRATCH_PREFIX):].split("-")[0]
        if folder.is_dir() and not (pid.isdigit() and _alive(int(pid))):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    """Whether a process `pid` runs on this machine (one of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Surface:
    """One grid of values per zone, ready to write, and how to present it."""

    id: str
    label: str
    unit: str
    description: str
    kind: str
    colormap: str
    parts: list[tuple[surfaces.Grid, np.ndarray]]
    floor: float | None = None  # the rescale minimum when fixed (0 for densities), else the 2nd percentile
    ceiling: float | None = None


def build_rasters(schools: Schools, values: Mapping[str, np.ndarray | list], manifest: Manifest,
                  layers: Mapping[str, Layer], fetch: Callable[[str], Path], report: Report,
                  scratch: Path) -> RasterFiles:
    """Every raster of the version: school densities, smoothed indicators, then the manifest's rasters."""
    files = RasterFiles(scratch)
    if manifest.surfaces:
        entry = report.dataset("rasters", "school surfaces")
        land = layers["departements"].geometries if "departements" in layers else None
        for surface in school_surfaces(schools, values, manifest.indicators, land, entry):
            files[surface.id] = write_surface(surface, files.folder)
            entry.load()
    for source in manifest.rasters:
        source_entry = report.dataset(f"raster {source.id}", source.url)
        if source.id in files:
            source_entry.reject(0, f"raster id {source.id!r} is already a school surface; choose another id")
            continue
        try:
            files[source.id] = external_raster(source, fetch(source.url), files.folder)
        except (IngestError, RasterioError, CPLE_BaseError) as error:
            message = error.description if isinstance(error, IngestError) else str(error)
            source_entry.reject(0, f"not used: {message}")
            continue
        source_entry.load()
    return files


def school_surfaces(schools: Schools, values: Mapping[str, np.ndarray | list], indicators: Sequence[Indicator],
                    land: np.ndarray | None, entry: DatasetReport) -> Iterator[Surface]:
    """Density per type, then a smoothed surface per numeric or yes/no school indicator, one at a time."""
    x, y = array_to_mercator(np.column_stack([schools.lon, schools.lat]).astype(float)).T
    grids = [surfaces.zone_grid(zone) for zone in surfaces.ZONES]
    masks = [surfaces.land_mask(land, grid) if land is not None else None for grid in grids]
    area = _land_km2(grids, masks)
    placed = np.zeros(len(x), dtype=bool)
    for grid in grids:
        placed |= grid.pixels(x, y)[2]
    if (~placed).any():
        entry.note(f"{int((~placed).sum())} schools lie outside every zone and are left out of the surfaces")
    types = np.array([t or "autre" for t in schools.columns["type"]], dtype=object)
    for kind in DENSITY_TYPES:
        yield _density(kind, x, y, placed & (types == kind if kind else placed), grids, masks, area, entry)
    for indicator in indicators:
        if indicator.level == SCHOOLS and indicator.kind in ("number", "boolean"):
            v = np.where(placed, np.asarray(values[indicator.id], dtype=float), np.nan)
            surface = _smoothed(indicator, x, y, v, grids, masks, area, entry)
            if surface is not None:
                yield surface


def _density(kind: str | None, x: np.ndarray, y: np.ndarray, chosen: np.ndarray, grids: list[surfaces.Grid],
             masks: list, area: float, entry: DatasetReport) -> Surface:
    sigma = surfaces.bandwidth(int(chosen.sum()), area)
    name, label = DENSITY_TYPES[kind]
    parts = [(grid, _masked(surfaces.density(x[chosen], y[chosen], grid, sigma), mask))
             for grid, mask in zip(grids, masks, strict=True)]
    raster_id = f"densite_{kind or 'etablissements'}"
    entry.note(f"{raster_id}: {int(chosen.sum())} {name}, bandwidth {sigma / 1000:.1f} km")
    description = f"{name.capitalize()} per km², Gaussian kernel of {sigma / 1000:.1f} km"
    return Surface(raster_id, label, f"{name}/km²", description, "density", "magma", parts, floor=0.0)


def _smoothed(indicator: Indicator, x: np.ndarray, y: np.ndarray, v: np.ndarray, grids: list[surfaces.Grid],
              masks: list, area: float, entry: DatasetReport) -> Surface | None:
    raster_id = f"lissage_{indicator.id}"
    known = int((~np.isnan(v)).sum())
    if known < MIN_KNOWN:
        entry.note(f"{raster_id}: not made, only {known} schools have a value")
        return None
    share = indicator.kind == "boolean"
    v = v * 100 if share else v
    sigma = surfaces.bandwidth(known, area, SMOOTHING)
    parts = [(grid, _masked(surfaces.smoothed(x, y, v, grid, sigma), mask))
             for grid, mask in zip(grids, masks, strict=True)]
    entry.note(f"{raster_id}: {known} schools with a value, bandwidth {sigma / 1000:.1f} km")
    kind = "share" if share else "mean"
    return Surface(raster_id, f"{indicator.label} (lissé)", "%" if share else indicator.unit,
                   f"Schools' {kind} of {indicator.id}, Gaussian-weighted over {sigma / 1000:.1f} km",
                   "surface", indicator.palette if colormap.is_known(indicator.palette) else "viridis", parts,
                   floor=0.0 if share else None, ceiling=100.0 if share else None)


def _masked(values: np.ndarray, land: np.ndarray | None) -> np.ndarray:
    """The values on land only (all of them when no land polygons were given)."""
    if land is not None:
        values[~land] = np.nan
    return values


def _land_km2(grids: list[surfaces.Grid], masks: list) -> float:
    """The ground area the schools spread over: land pixels, or the zones' boxes without land polygons."""
    total = 0.0
    for grid, mask in zip(grids, masks, strict=True):
        pixel_km2 = np.broadcast_to(grid.pixel_km2(), (grid.height, grid.width))
        total += float(pixel_km2[mask].sum() if mask is not None else pixel_km2.sum())
    return total


def write_surface(surface: Surface, folder: Path) -> dict:
    """Write the zones into one sparse EPSG:3857 COG spanning them all; its metadata."""
    national = surfaces.union([grid for grid, _ in surface.parts])
    path = folder / f"{surface.id}.tif"
    scratch = folder / f"{surface.id}.sparse.tif"
    profile = {"driver": "GTiff", "width": national.width, "height": national.height, "count": 1,
               "dtype": "float32", "crs": "EPSG:3857", "transform": national.transform, "nodata": math.nan,
               "tiled": True, "blockxsize": surfaces.BLOCK, "blockysize": surfaces.BLOCK, "SPARSE_OK": "TRUE"}
    with gdal_env():
        with rasterio.open(scratch, "w", **profile) as dst:
            for grid, values in surface.parts:
                window = Window(grid.col - national.col, grid.row - national.row, grid.width, grid.height)
                dst.write(values, 1, window=window)
        with rasterio.open(scratch) as src:
            rasterio.shutil.copy(src, path, driver="COG", PREDICTOR="3", **COG_OPTIONS)
    os.remove(scratch)
    stats = statistics(np.concatenate([values[np.isfinite(values)] for _, values in surface.parts]))
    low = surface.floor if surface.floor is not None else stats["p2"]
    high = surface.ceiling if surface.ceiling is not None else stats["p98"]
    return {
        "path": str(path), "label": surface.label, "unit": surface.unit, "description": surface.description,
        "kind": surface.kind, "band": 1, "colormap": surface.colormap, "rescale": _range(low, high),
        "stats": stats, "source": "schools", **describe(str(path), 1),
    }


def external_raster(source: RasterSource, path: Path, folder: Path) -> dict:
    """A manifest's raster, checked and copied (a COG) or converted (anything else GDAL reads) to a COG."""
    if not colormap.is_known(source.colormap):
        raise IngestError(f"unknown colormap {source.colormap!r}; use one of {', '.join(colormap.names())}")
    target = folder / f"{source.id}.tif"
    with gdal_env(), rasterio.open(path) as src:
        if src.crs is None:
            raise IngestError(f"{path.name} has no coordinate reference system")
        if not 1 <= source.band <= src.count:
            raise IngestError(f"band {source.band} asked, {path.name} has {src.count}")
        if src.driver == "GTiff" and src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG":
            shutil.copyfile(path, target)
        else:
            predictor = "3" if np.issubdtype(np.dtype(src.dtypes[source.band - 1]), np.floating) else "2"
            rasterio.shutil.copy(src, target, driver="COG", PREDICTOR=predictor, **COG_OPTIONS)
    stats = statistics(_sample(target, source.band))
    rescale = list(source.rescale) if source.rescale else _range(stats["p2"], stats["p98"])
    return {
        "path": str(target), "label": source.label, "unit": source.unit, "description": "",
        "kind": "external", "band": source.band, "colormap": source.colormap, "rescale": rescale,
        "stats": stats, "source": source.url, **describe(str(target), source.band),
    }


def _sample(path: Path, band: int) -> np.ndarray:
    """The valid values of a band read at most STATS_PIXELS wide (from an overview where there is one)."""
    with gdal_env(), rasterio.open(path) as src:
        scale = max(1.0, max(src.width, src.height) / STATS_PIXELS)
        shape = (max(1, round(src.height / scale)), max(1, round(src.width / scale)))
        data = src.read(band, out_shape=shape, masked=True)
    values = data.compressed().astype(np.float64)
    return values[np.isfinite(values)]


def statistics(values: np.ndarray) -> dict:
    """Minimum, maximum and the 2nd and 98th percentiles (the default colour range); an error when empty.

    >>> statistics(np.arange(101.0))
    {'min': 0.0, 'max': 100.0, 'p2': 2.0, 'p98': 98.0}
    """
    if values.size == 0:
        raise IngestError("the raster holds no valid value")
    p2, p98 = np.percentile(values, [2, 98])
    return {"min": float(values.min()), "max": float(values.max()), "p2": float(p2), "p98": float(p98)}


def _range(low: float, high: float) -> list[float]:
    """A colour range rounded for a legend, widened when flat so that min < max.

    >>> _range(0.0, 1.23456), _range(5.0, 5.0)
    ([0.0, 1.23], [5.0, 6.0])
    """
    low, high = float(f"{low:.3g}"), float(f"{high:.3g}")
    return [low, high if high > low else low + 1.0]
