"""The embedded GeoPackage store: publish, read back, query, atomic swap, versions, GDAL compatibility."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon

from tileserver.core.dataset import Clusters, Dataset, Field, Generalised, Layer
from tileserver.core.errors import ConfigError, IngestError, Unavailable
from tileserver.core.grid import BBox, bbox_to_bounds
from tileserver.core.mercator import to_mercator
from tileserver.core.settings import Settings
from tileserver.core.store import FeatureQuery
from tileserver.core.stores import open_store
from tileserver.core.stores.geopackage import GeoPackageStore, publish

OGRINFO = shutil.which("ogrinfo") or "/usr/bin/ogrinfo"
VALIDATE_GPKG = "/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_gpkg.py"


@pytest.fixture
def path(tmp_path) -> Path:
    return tmp_path / "var" / "ecarto.gpkg"


@pytest.fixture
def store(path):
    store = GeoPackageStore(str(path), Settings(version_check_seconds=0))
    yield store
    store.close()


@pytest.fixture
def snapshot(store, small_dataset):
    store.publish(small_dataset)
    return store.current()






def test_polygons_come_back_as_multipolygons(store, small_dataset):
    communes = small_dataset.layers["communes"]
    communes.geometries[0] = Polygon(communes.geometries[0].geoms[0])
    store.publish(small_dataset)
    feature = store.current().get("communes", communes.ids[0])
    assert feature.geometry.geom_type == "MultiPolygon"
    assert feature.geometry.equals(communes.geometries[0])






def test_snapshots_cannot_write(snapshot):
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        snapshot.connection().execute("DELETE FROM etablissements")




def test_a_failed_publish_leaves_the_previous_version_served(path, store, small_dataset, monkeypatch):
    first = store.publish(small_dataset)
    served = os.stat(path)

    def broken(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(publish, "write_clusters", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        store.publish(small_dataset)
    assert (os.stat(path).st_ino, os.stat(path).st_mtime_ns) == (served.st_ino, served.st_mtime_ns)
    assert store.current().version.id == first.id
    assert store.versions() == [first]
    assert sorted(p.name for p in path.parent.iterdir()) == ["ecarto.gpkg", "ecarto.gpkg.assets", "ecarto.gpkg.lock"]
    assert [p.name for p in (path.parent / "ecarto.gpkg.assets").iterdir()] == [first.id]


def test_bad_data_fails_the_publish_before_anything_is_served(path, store, small_dataset):
    small_dataset.layers["communes"].columns["etablissements"][0] = "many"
    with pytest.raises(ValueError):
        store.publish(small_dataset)
    small_dataset.layers["communes"].columns["etablissements"][0] = 3
    small_dataset.layers["communes"].fields.append(Field("GEOM", "string"))
    small_dataset.layers["communes"].columns["GEOM"] = ["x"] * 3
    with pytest.raises(IngestError, match="clash: geom"):
        store.publish(small_dataset)
    assert store.current() is None
    assert not path.exists()
    assert list(path.parent.glob("*.tmp")) == []


def test_publish_removes_leftovers_of_killed_runs_and_keeps_the_previous_version(path, store, small_dataset):
    first = store.publish(small_dataset)
    killed = path.parent / "ecarto.gpkg.20000101T000000000000.tmp"
    killed.write_bytes(b"half a file")
    killed_assets = path.parent / "ecarto.gpkg.assets" / "20000101T000000000000"
    killed_assets.mkdir()
    second = store.publish(small_dataset)
    assert not killed.exists() and not killed_assets.exists()
    assets = path.parent / "ecarto.gpkg.assets"
    assert sorted(p.name for p in assets.iterdir()) == [first.id, second.id]
    third = store.publish(small_dataset)
    assert sorted(p.name for p in assets.iterdir()) == [second.id, third.id]


def test_rasters_sit_in_the_files_assets_folder_and_cannot_escape_it(path, store, small_dataset, tmp_path):
    source = tmp_path / "ingest" / "density.tif"
    source.parent.mkdir()
    source.write_bytes(b"not really a tiff")
    small_dataset.rasters = {"density": {"path": str(source), "title": "Densité"}}
    version = store.publish(small_dataset)
    target = path.parent / "ecarto.gpkg.assets" / version.id / "density.tif"
    assert store.current().meta()["rasters"] == {"density": {"path": str(target), "title": "Densité"}}
    assert target.read_bytes() == b"not really a tiff"
    small_dataset.rasters = {"../escape": {"path": str(source)}}
    with pytest.raises(IngestError):
        store.publish(small_dataset)


def test_a_file_that_is_not_ours_is_reported(path, store, small_dataset):
    path.parent.mkdir(parents=True)
    path.write_bytes(b"SQLite format 3\x00 but not really")
    with pytest.raises(Unavailable):
        store.current()
    with pytest.raises(IngestError, match="not an eCarto GeoPackage"):
        store.publish(small_dataset)


def test_gdal_opens_every_table_with_its_feature_count(path, store, small_dataset):
    store.publish(small_dataset)
    counts = {name: len(layer) for name, layer in small_dataset.layers.items()}
    counts |= {"clusters": len(small_dataset.clusters), "communes_generalised": 5, "ecarto_versions": 1}
    for name, count in counts.items():
        done = subprocess.run([OGRINFO, "-ro", "-so", str(path), name], capture_output=True, text=True)
        assert (done.returncode, done.stderr) == (0, "")
        assert f"Feature Count: {count}\n" in done.stdout
    assert "Geometry: Point" in subprocess.run([OGRINFO, "-ro", "-so", str(path), "etablissements"],
                                               capture_output=True, text=True).stdout


@pytest.mark.skipif(not os.path.exists(VALIDATE_GPKG), reason="GDAL's validate_gpkg.py is not installed")
def test_the_file_passes_gdal_validate_gpkg(path, store, small_dataset):
    store.publish(small_dataset)
    # The system interpreter, whose osgeo_utils ships the script.
    done = subprocess.run(["/usr/bin/python3", VALIDATE_GPKG, "-k", "--extra", str(path)],
                          capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_physical_schema_for_tiles(path, store, small_dataset):
    store.publish(small_dataset)
    schools, communes = small_dataset.layers["etablissements"], small_dataset.layers["communes"]
    tile = bbox_to_bounds(BBox(-1.9, 47.9, -0.9, 48.3))
    with sqlite3.connect(path) as conn:
        xy = conn.execute("SELECT x3857, y3857 FROM etablissements ORDER BY fid").fetchall()
        generalised = conn.execute("SELECT fid, minzoom, maxzoom, wkb FROM communes_generalised").fetchall()
        in_tile = conn.execute(
            "SELECT g.fid FROM communes_generalised_rtree r JOIN communes_generalised g ON g.id = r.id "
            "WHERE r.minzoom <= 5 AND r.maxzoom >= 5 AND r.minx <= ? AND r.maxx >= ? "
            "AND r.miny <= ? AND r.maxy >= ? ORDER BY g.fid",
            (tile.right, tile.left, tile.top, tile.bottom),
        ).fetchall()
        cluster_count, cluster_sum = conn.execute("SELECT count(*), sum(n) FROM clusters").fetchone()
        plan = conn.execute("EXPLAIN QUERY PLAN SELECT * FROM clusters WHERE z = 0 AND cx = 1").fetchall()
        header = [conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("application_id", "user_version")]
    assert header == [0x47504B47, 10300]
    assert xy == [to_mercator(g.x, g.y) for g in schools.geometries]
    expected = sorted(
        (fid, level.minzoom, level.maxzoom, geom)
        for level in communes.generalised
        for fid, geom in enumerate(level.geometries, start=1)
        if geom is not None
    )
    assert len(generalised) == len(expected) == 5
    for (fid, minzoom, maxzoom, wkb), want in zip(sorted(generalised), expected, strict=True):
        assert (fid, minzoom, maxzoom) == want[:3]
        assert shapely.from_wkb(wkb).equals_exact(want[3], 1e-6)
    assert in_tile == [(1,), (2,)]  # 35003 has no geometry below zoom 8
    assert (cluster_count, cluster_sum) == (len(small_dataset.clusters), small_dataset.clusters.columns["n"].sum())
    assert "clusters_z_cx_cy" in str(plan)


def test_open_store_picks_the_store_from_the_url(tmp_path, monkeypatch):
    settings = Settings()
    assert isinstance(open_store(str(tmp_path / "x.gpkg"), settings), GeoPackageStore)
    with pytest.raises(ConfigError, match="gpkg"):
        open_store(str(tmp_path / "x.sqlite"), settings)
    fake = types.ModuleType("tileserver.core.stores.postgis")
    fake.PostGISStore = lambda url, settings: ("postgis", url)
    monkeypatch.setitem(sys.modules, "tileserver.core.stores.postgis", fake)
    assert open_store("postgresql://db/ecarto", settings) == ("postgis", "postgresql://db/ecarto")
    assert open_store("postgres://db/ecarto", settings) == ("postgis", "postgres://db/ecarto")


def national_dataset() -> Dataset:
    """A synthetic France-sized dataset: 70k schools, 35k ~50-vertex communes at four levels, clusters."""
    rng = np.random.default_rng(7)
    n = 200_000
    columns = {"z": rng.integers(0, 12, n), **{name: rng.integers(0, 4096, n) for name in ("cx", "cy", "n")}}
    clusters = Clusters(columns | {"sx": rng.random(n), "sy": rng.random(n)}, [])
    layers = {"etablissements": national_schools(rng, 70_000), "communes": national_communes(35_000)}
    return Dataset(layers, clusters, cluster_maxzoom=12, cluster_cells=4, catalogue=[], report={})


def national_schools(rng: np.random.Generator, count: int) -> Layer:
    """Random points over mainland France with a dozen typed fields."""
    uai = [f"{i:07d}A" for i in range(count)]
    fields = [
        Field("uai", "string"),
        Field("nom", "string"),
        Field("education_prioritaire", "boolean"),
        Field("effectif", "integer"),
        *(Field(f"indicateur_{i}", "number") for i in range(8)),
    ]
    columns = {
        "uai": uai,
        "nom": [f"École {i}" for i in range(count)],
        "education_prioritaire": (rng.random(count) < 0.2).tolist(),
        "effectif": rng.integers(10, 2000, count).tolist(),
        **{f"indicateur_{i}": rng.random(count).tolist() for i in range(8)},
    }
    points = shapely.points(rng.uniform(-4.8, 8.2, count), rng.uniform(42.3, 51.1, count))
    return Layer("etablissements", "Établissements", "", "Point", "uai", fields, uai, columns, points)


def national_communes(count: int) -> Layer:
    """A grid of round communes, generalised at four zoom ranges."""
    side = int(np.ceil(np.sqrt(count)))
    x, y = (a.ravel()[:count] for a in np.meshgrid(np.linspace(-4.8, 8.2, side), np.linspace(42.3, 51.1, side)))
    shapes = np.array([MultiPolygon([s]) for s in shapely.buffer(shapely.points(x, y), 0.03, quad_segs=12)])
    mercator = Transformer.from_crs(4326, 3857, always_xy=True)
    projected = shapely.transform(shapes, lambda xy: np.column_stack(mercator.transform(xy[:, 0], xy[:, 1])))
    ranges = [(0, 5, 5000.0), (6, 8, 1000.0), (9, 10, 200.0), (11, 14, 0.0)]
    levels = [Generalised(a, b, shapely.simplify(projected, tolerance)) for a, b, tolerance in ranges]
    codes = [f"{i:05d}" for i in range(count)]
    fields = [Field("code", "string"), Field("etablissements", "integer")]
    columns = {"code": codes, "etablissements": [2] * count}
    return Layer("communes", "Communes", "", "MultiPolygon", "code", fields, codes, columns, shapes,
                 generalised=levels)


@pytest.mark.slow
def test_a_national_dataset_publishes_in_well_under_a_minute(store):
    dataset = national_dataset()
    started = time.perf_counter()
    store.publish(dataset)
    elapsed = time.perf_counter() - started
    assert elapsed < 30, f"publish took {elapsed:.1f} s"
    page = store.current().query(FeatureQuery("etablissements", limit=10_000, offset=60_000))
    assert (page.matched, sum(1 for _ in page.features)) == (70_000, 10_000)
