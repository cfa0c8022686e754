"""School surfaces and external rasters at ingest: COGs that are right, and bad sources that stop nothing."""

import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely.geometry import box

from ingest import surfaces
from ingest.manifest import Indicator, Manifest, RasterSource
from ingest.rasters import RasterFiles, build_rasters
from ingest.report import Report
from ingest.schools import Schools
from tests.support.rasterdata import write_raster
from tileserver.core.cog import RasterFile, read_point
from tileserver.core.dataset import Layer
from tileserver.core.errors import IngestError
from tileserver.core.mercator import EARTH_RADIUS

SPEED = Indicator("debit", "connectivite", "Débit", "t.csv", "debit", kind="number", unit="Mbit/s")
FIBRE = Indicator("fibre", "connectivite", "Fibre", "t.csv", "fibre", kind="boolean", aggregate="share")
RENNES = (-1.68, 48.11)
SAINT_DENIS = (55.45, -20.88)  # La Réunion


def schools_around(rng: np.random.Generator) -> Schools:
    """60 schools around Rennes (40 écoles, 20 collèges) and 25 écoles in La Réunion."""
    lon = np.concatenate([RENNES[0] + rng.normal(0, 0.05, 60), SAINT_DENIS[0] + rng.normal(0, 0.02, 25)])
    lat = np.concatenate([RENNES[1] + rng.normal(0, 0.03, 60), SAINT_DENIS[1] + rng.normal(0, 0.01, 25)])
    types = ["ecole"] * 40 + ["college"] * 20 + ["ecole"] * 25
    uai = [f"{i:07d}A" for i in range(85)]
    return Schools(uai, {"type": types}, lon, lat, list(range(2, 87)))


def manifest(rasters=()) -> Manifest:
    return Manifest({}, [SPEED, FIBRE], list(rasters), "test.toml")


def land_layer() -> dict[str, Layer]:
    """A 'département' polygon around each group of schools, standing in for the coast."""
    shapes = np.array([box(-4.0, 46.0, 1.0, 50.0), box(55.2, -21.4, 55.85, -20.85)], dtype=object)
    return {"departements": Layer("departements", "", "", "MultiPolygon", "code", [], ["35", "974"], {}, shapes)}


def fetch(url: str) -> Path:
    if not Path(url).exists():
        raise IngestError(f"{url}: no such file")
    return Path(url)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One ingest's rasters: the school surfaces, and external sources of which only the first is usable."""
    paths = external(tmp_path_factory.mktemp("sources"))
    sources = [
        RasterSource("altitude", str(paths["plain"]), "Altitude", unit="m", colormap="cividis"),
        RasterSource("fixe", str(paths["plain"]), "Fixe", rescale=(0.5, 123.456)),
        RasterSource("notes", str(paths["text"]), "Notes"),
        RasterSource("coupe", str(paths["truncated"]), "Coupé"),
        RasterSource("sans_crs", str(paths["nocrs"]), "Sans CRS"),
        RasterSource("bande", str(paths["plain"]), "Bande 2", band=2),
        RasterSource("couleur", str(paths["plain"]), "Couleur", colormap="jet"),
        RasterSource("absent", str(paths["plain"].parent / "absent.tif"), "Absent"),
        RasterSource("densite_ecole", str(paths["plain"]), "Doublon"),
    ]
    speed = np.where(np.arange(85) < 60, 100.0, 10.0)  # fast around Rennes, slow in La Réunion
    speed[::4] = np.nan
    values = {"debit": speed, "fibre": (np.arange(85) % 2).astype(float)}
    report = Report()
    files = build_rasters(schools_around(np.random.default_rng(7)), values, manifest(sources), land_layer(), fetch,
                          report, tmp_path_factory.mktemp("scratch"))
    return files, report


def test_one_sparse_mercator_cog_per_surface(built):
    files, _ = built
    assert set(files) == {"densite_etablissements", "densite_ecole", "densite_college", "densite_lycee",
                          "lissage_debit", "lissage_fibre", "altitude", "fixe"}
    with rasterio.open(files["densite_ecole"]["path"]) as src:
        assert src.crs.to_epsg() == 3857 and math.isnan(src.nodata)
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.block_shapes == [(256, 256)] and len(src.overviews(1)) >= 4
        assert src.res[0] == pytest.approx(surfaces.Grid(surfaces.BASE_ZOOM, 0, 0, 1, 1).res)
        # spans La Réunion to the Antilles, yet only the zones' blocks exist on disk
        assert src.width * src.height * 4 > 50 * Path(files["densite_ecole"]["path"]).stat().st_size
    west, south, east, north = files["densite_ecole"]["bounds"]
    assert west < -60 and east > 55 and south < -21 and north > 51


def test_density_integrates_to_the_school_count(built):
    files, _ = built
    with rasterio.open(files["densite_college"]["path"]) as src:
        density = src.read(1)
        rows = np.arange(src.height)
        y = src.transform.f + (rows + 0.5) * src.transform.e
        lat = np.degrees(2 * np.arctan(np.exp(y / EARTH_RADIUS)) - np.pi / 2)
        pixel_km2 = (src.res[0] * np.cos(np.radians(lat)) / 1000) ** 2
    total = np.nansum(density * pixel_km2[:, np.newaxis])
    assert total == pytest.approx(20, rel=0.01)  # the 20 collèges
    assert files["densite_college"]["unit"] == "collèges/km²" and files["densite_college"]["rescale"][0] == 0.0


def test_surfaces_have_values_where_schools_are_and_nodata_at_sea(built):
    files, _ = built
    ecoles = RasterFile.from_meta(files["densite_ecole"])
    assert read_point(ecoles, *RENNES) > 10 * read_point(ecoles, -3.5, 46.5)
    assert read_point(ecoles, *SAINT_DENIS) > 0.001  # the overseas window is there
    assert read_point(ecoles, -5.0, 46.5) is None  # the Atlantic, outside the land polygons
    assert read_point(ecoles, 20.0, 30.0) is None  # between zones: a sparse block
    speed = RasterFile.from_meta(files["lissage_debit"])
    assert read_point(speed, *RENNES) == pytest.approx(100.0)
    assert read_point(speed, *SAINT_DENIS) == pytest.approx(10.0)
    assert read_point(speed, -3.5, 46.5) is None  # on land, but too far from any school with a value
    assert files["lissage_fibre"]["unit"] == "%" and files["lissage_fibre"]["rescale"] == [0.0, 100.0]
    assert 40 < read_point(RasterFile.from_meta(files["lissage_fibre"]), *RENNES) < 60


def test_the_report_tells_what_was_made(built):
    _, report = built
    entry = report.datasets["rasters"]
    assert entry.loaded == 6 and entry.rejected == 0 and report.datasets["raster altitude"].loaded == 1
    assert any(n.startswith("densite_college: 20 collèges, bandwidth") for n in entry.notes)


def test_the_folder_lives_as_long_as_the_mapping(tmp_path):
    files = RasterFiles(tmp_path)
    folder = files.folder
    assert folder.parent == tmp_path
    (folder / "r.tif").write_bytes(b"")
    del files
    assert not folder.exists()


def test_the_folders_of_killed_runs_are_removed_by_the_next_one(tmp_path):
    ended = subprocess.Popen(["true"])  # its pid is free once it ended
    ended.wait()
    leftover = tmp_path / f"ecarto-rasters-{ended.pid}-x1y2"
    (leftover / "densite.tif").parent.mkdir()
    (leftover / "densite.tif").write_bytes(b"0" * 1000)
    running = tmp_path / f"ecarto-rasters-{os.getppid()}-a1b2"  # a live process: another run going on
    running.mkdir()
    files = RasterFiles(tmp_path)
    assert not leftover.exists() and running.exists() and files.folder.exists()


def external(tmp_path: Path) -> dict[str, Path]:
    """A plain (striped, no overviews) GeoTIFF in Lambert-93, a text file, a truncated TIFF, one without CRS."""
    data = np.arange(300 * 400, dtype=np.float32).reshape(300, 400)
    plain = tmp_path / "plain.tif"
    with rasterio.open(plain, "w", driver="GTiff", width=400, height=300, count=1, dtype="float32",
                       crs="EPSG:2154", transform=Affine(100.0, 0, 630_000, 0, -100.0, 6_880_000),  # Paris
                       nodata=-1.0) as dst:
        dst.write(data, 1)
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(plain.read_bytes()[:2000])
    no_crs = write_raster(tmp_path / "nocrs.tif", np.zeros((10, 10), np.uint8), crs=None,
                          transform=Affine(1.0, 0, 0, 0, -1.0, 10.0))
    return {"plain": plain, "text": text, "truncated": truncated, "nocrs": no_crs}


def test_external_rasters_are_converted_and_bad_ones_reported(built):
    files, report = built
    meta = files["altitude"]
    with rasterio.open(meta["path"]) as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and src.crs.to_epsg() == 2154
    assert meta["rescale"] == pytest.approx([2400.0, 118000.0], rel=0.02) and meta["colormap"] == "cividis"
    assert meta["kind"] == "external" and meta["unit"] == "m"
    assert files["fixe"]["rescale"] == [0.5, 123.456]  # the manifest's range, as written
    assert read_point(RasterFile.from_meta(meta), 2.3, 48.85) is not None
    reasons = {name.removeprefix("raster "): d.rejections[0].reason for name, d in report.datasets.items()
               if d.rejected}
    assert set(reasons) == {"notes", "coupe", "sans_crs", "bande", "couleur", "absent", "densite_ecole"}
    assert "not recognized" in reasons["notes"]
    assert "TIFFReadEncodedStrip() failed" in reasons["coupe"]
    assert "no coordinate reference system" in reasons["sans_crs"]
    assert "band 2 asked" in reasons["bande"] and "unknown colormap 'jet'" in reasons["couleur"]
    assert "no such file" in reasons["absent"] and "already a school surface" in reasons["densite_ecole"]
