"""What every store must do, tested on both: publish versions and serve the current one (lifecycle),
read back what was published (against the dataset), and answer the same queries alike (against each
other): features, order, counts, errors."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import shapely
from shapely.geometry import box

from tileserver.core.dataset import Layer
from tileserver.core.errors import BadRequest, EcartoError, NotFound
from tileserver.core.grid import BBox
from tileserver.core.settings import Settings
from tileserver.core.store import FeatureQuery, Snapshot, Store
from tileserver.core.stores.geopackage import GeoPackageStore
from tileserver.core.stores.postgis import PostGISStore

QUERIES = [
    FeatureQuery("etablissements", limit=100),
    FeatureQuery("etablissements", limit=2, offset=1),
    FeatureQuery("etablissements", limit=3, offset=5),
    FeatureQuery("etablissements", bbox=BBox(-1.7, 48.0, -1.5, 48.2)),
    FeatureQuery("etablissements", bbox=BBox(2.0, 40.0, -1.5, 50.0), limit=100),
    FeatureQuery("etablissements", equals=(("type", ("college", "lycee")),)),
    FeatureQuery("etablissements", equals=(("effectif", (420, 95)),)),
    FeatureQuery("etablissements", equals=(("education_prioritaire", (True,)),)),
    FeatureQuery("etablissements", equals=(("uai", ("0350004P", "nope")),)),
    FeatureQuery("etablissements", sortby=(("ips", False),), limit=100),
    FeatureQuery("etablissements", sortby=(("ips", True),), limit=100),
    FeatureQuery("etablissements", sortby=(("statut", True), ("nom", False)), limit=4, offset=1),
    FeatureQuery("etablissements", properties=("nom", "uai"), limit=100),
    FeatureQuery("etablissements", properties=(), bbox=BBox(-2.0, 47.0, 3.0, 49.0), limit=100),
    FeatureQuery(
        "etablissements",
        bbox=BBox(-1.8, 48.0, -1.0, 48.2),
        equals=(("statut", ("public",)),),
        sortby=(("effectif", False),),
        properties=("effectif", "type"),
    ),
    FeatureQuery("communes", limit=100),
    FeatureQuery("communes", bbox=BBox(-1.19, 48.11, -1.11, 48.19)),  # in 35003's envelope, not its shape
    FeatureQuery("communes", bbox=BBox(-1.6, 48.0, -1.15, 48.06), sortby=(("ips", True),)),
    FeatureQuery("communes", sortby=(("etablissements", False), ("nom", True)), limit=2),
]

BAD_QUERIES = [  # each with the error both stores must raise
    (FeatureQuery("ecoles"), NotFound),
    (FeatureQuery("etablissements", properties=("password",)), BadRequest),
    (FeatureQuery("etablissements", properties=("nom", "password")), BadRequest),
    (FeatureQuery("etablissements", sortby=(("password", True),)), BadRequest),
    (FeatureQuery("etablissements", sortby=(('nom"; DROP TABLE x; --', True),)), BadRequest),
    (FeatureQuery("etablissements", equals=(("nope", ("x",)),)), BadRequest),
    (FeatureQuery("etablissements", filter=object()), BadRequest),
    (FeatureQuery("etablissements", limit=-1), BadRequest),
    (FeatureQuery("etablissements", offset=-5), BadRequest),
]


PYTHON_TYPES = {"string": str, "integer": int, "number": float, "boolean": bool}


def open_one(kind: str, request, tmp_path: Path, **settings) -> Store:
    """An empty store of `kind` (`geopackage` or `postgis`), of this test's own."""
    settings = Settings(assets_dir=str(tmp_path / "assets"), **{"version_check_seconds": 0, **settings})
    if kind == "postgis":
        return PostGISStore(request.getfixturevalue("postgis_url"), settings)
    return GeoPackageStore(str(tmp_path / "var" / "ecarto.gpkg"), settings)


@pytest.fixture(params=["geopackage", "postgis"])
def store(request, tmp_path) -> Store:
    """An empty store, each kind in turn."""
    store = open_one(request.param, request, tmp_path)
    yield store
    store.close()


# --- lifecycle: publish, versions, readers ----------------------------------------------------------


def test_nothing_is_served_before_the_first_publish(store):
    assert store.current() is None
    assert store.versions() == []


def test_publish_makes_the_version_current_with_its_report(store, small_dataset):
    version = store.publish(small_dataset)
    snap = store.current()
    assert re.fullmatch(r"\d{8}T\d{12}", version.id)
    assert snap.version.id == version.id
    assert snap.version.report == version.report == small_dataset.report
    assert [v.id for v in store.versions()] == [version.id]


def test_versions_list_every_publish_newest_first_with_reports(store, small_dataset):
    published = []
    for run in range(3):
        small_dataset.report = {"run": run}
        published.append(store.publish(small_dataset).id)
    assert [v.id for v in store.versions()] == published[::-1]
    assert [v.report for v in store.versions()] == [{"run": 2}, {"run": 1}, {"run": 0}]


def test_a_snapshot_keeps_reading_its_version_after_the_next_publish(store, small_dataset):
    store.publish(small_dataset)
    before = store.current()
    small_dataset.layers["etablissements"].columns["nom"][0] = "École renommée"
    second = store.publish(small_dataset)
    after = store.current()
    assert before.version.id != second.id == after.version.id

    def name(snap):
        return snap.get("etablissements", "0350001L").properties["nom"]

    with ThreadPoolExecutor(4) as pool:  # threads that never read before open their own connections
        assert list(pool.map(name, [before, after] * 4)) == ["École Jules Ferry", "École renommée"] * 4
    assert (name(before), name(after)) == ("École Jules Ferry", "École renommée")


@pytest.mark.parametrize("kind", ["geopackage", "postgis"])
def test_readers_look_for_a_new_version_only_every_version_check_seconds(kind, request, tmp_path, small_dataset):
    writer = open_one(kind, request, tmp_path)
    reader = open_one(kind, request, tmp_path, version_check_seconds=0.5)
    try:
        first = writer.publish(small_dataset)
        assert reader.current().version.id == first.id
        second = writer.publish(small_dataset)
        assert reader.current().version.id == first.id
        deadline = time.monotonic() + 30  # the next look is due after 0.5 s: wait for it, not for a delay
        while reader.current().version.id != second.id and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reader.current().version.id == second.id
    finally:
        writer.close()
        reader.close()


def test_rasters_are_copied_into_the_version_folder(store, small_dataset, tmp_path):
    source = tmp_path / "ingest" / "density.tif"
    source.parent.mkdir()
    source.write_bytes(b"not really a tiff")
    small_dataset.rasters = {"density": {"path": str(source), "title": "Densité"}}
    version = store.publish(small_dataset)
    rasters = store.current().meta()["rasters"]
    target = Path(rasters["density"]["path"])
    assert rasters == {"density": {"path": str(target), "title": "Densité"}}
    assert (target.name, target.parent.name) == ("density.tif", version.id)
    assert target.read_bytes() == b"not really a tiff"


@pytest.fixture(params=["geopackage", "postgis"])
def snapshot(request, small_dataset, tmp_path) -> Snapshot:
    """The small dataset published to one store."""
    settings = Settings(version_check_seconds=0, assets_dir=str(tmp_path / "assets"))
    if request.param == "postgis":
        store = PostGISStore(request.getfixturevalue("postgis_url"), settings)
    else:
        store = GeoPackageStore(str(tmp_path / "ecarto.gpkg"), settings)
    try:
        store.publish(small_dataset)
        yield store.current()
    finally:
        store.close()


@pytest.fixture
def snapshots(small_dataset, postgis_url, tmp_path) -> tuple[Snapshot, Snapshot]:
    """The small dataset published to a GeoPackage and to PostGIS."""
    settings = Settings(version_check_seconds=0, assets_dir=str(tmp_path / "assets"))
    gpkg = GeoPackageStore(str(tmp_path / "ecarto.gpkg"), settings)
    postgis = PostGISStore(postgis_url, settings)
    try:
        gpkg.publish(small_dataset)
        postgis.publish(small_dataset)
        yield gpkg.current(), postgis.current()
    finally:
        gpkg.close()
        postgis.close()


def test_both_stores_describe_the_same_version(snapshots):
    gpkg, postgis = snapshots
    assert gpkg.collections() == postgis.collections()
    assert gpkg.catalogue() == postgis.catalogue()
    assert gpkg.meta() == postgis.meta()
    assert gpkg.version.report == postgis.version.report


@pytest.mark.parametrize("query", QUERIES)
def test_both_stores_answer_a_query_alike(snapshots, query):
    gpkg, postgis = (snap.query(query) for snap in snapshots)
    expected, got = list(gpkg.features), list(postgis.features)
    assert postgis.matched == gpkg.matched
    assert [f.id for f in got] == [f.id for f in expected]
    for a, b in zip(expected, got, strict=True):
        assert b.properties == a.properties
        assert [type(v) for v in b.properties.values()] == [type(v) for v in a.properties.values()]
        assert b.geometry.equals_exact(a.geometry, 1e-9)


def test_both_stores_get_every_feature_alike(snapshots, small_dataset):
    gpkg, postgis = snapshots
    for layer in small_dataset.layers.values():
        for key in [*layer.ids, "nope"]:
            a, b = gpkg.get(layer.id, key), postgis.get(layer.id, key)
            assert (a is None) == (b is None)
            if a is not None:
                assert (b.id, b.properties) == (a.id, a.properties)
                assert b.geometry.equals_exact(a.geometry, 1e-9)


@pytest.mark.parametrize(("query", "error"), BAD_QUERIES)
def test_both_stores_refuse_the_same_queries(snapshots, query, error):
    for snap in snapshots:
        with pytest.raises(EcartoError) as raised:
            list(snap.query(query).features)
        assert type(raised.value) is error


def ids(page) -> list[str]:
    return [f.id for f in page.features]


def school_ids(layer: Layer, keep) -> list[str]:
    """Sorted keys of the features whose row (as a dict of columns) passes `keep`."""
    rows = [{name: values[i] for name, values in layer.columns.items()} for i in range(len(layer))]
    return sorted(k for k, row in zip(layer.ids, rows, strict=True) if keep(row))


def test_collections_describe_the_layers(snapshot, small_dataset):
    infos = {c.id: c for c in snapshot.collections()}
    assert list(infos) == list(small_dataset.layers)
    for layer in small_dataset.layers.values():
        info = infos[layer.id]
        assert (info.key, info.geometry_type, info.count) == (layer.key, layer.geometry_type, len(layer))
        assert (info.title, info.minzoom, info.maxzoom) == (layer.title, layer.minzoom, layer.maxzoom)
        assert info.fields == tuple(layer.fields)
        assert info.extent == pytest.approx(BBox(*shapely.total_bounds(layer.geometries)))
        assert [(g.minzoom, g.maxzoom) for g in info.generalised] == [
            (g.minzoom, g.maxzoom) for g in layer.generalised
        ]
    assert snapshot.catalogue() == small_dataset.catalogue
    assert snapshot.meta() == {"cluster_maxzoom": 8, "cluster_cells": 4, "cluster_sums": ["ips"], "rasters": {}}


def test_get_returns_typed_properties_and_the_geometry(snapshot, small_dataset):
    layer = small_dataset.layers["etablissements"]
    for i, key in enumerate(layer.ids):
        feature = snapshot.get("etablissements", key)
        assert feature.id == key
        assert feature.geometry.equals_exact(layer.geometries[i], 1e-12)
        for f in layer.fields:
            expected = layer.ids[i] if f.name == layer.key else layer.columns[f.name][i]
            value = feature.properties[f.name]
            if expected is None or expected != expected:
                assert value is None
            else:
                assert value == expected
                assert type(value) is PYTHON_TYPES[f.type]


def test_an_unknown_feature_is_none_and_an_unknown_collection_not_found(snapshot):
    assert snapshot.get("etablissements", "nope") is None
    with pytest.raises(NotFound):
        snapshot.get("ecoles", "0350001L")
    with pytest.raises(NotFound):
        snapshot.query(FeatureQuery("ecoles"))


def test_query_pages_in_key_order_with_an_exact_match_count(snapshot, small_dataset):
    keys = sorted(small_dataset.layers["etablissements"].ids)
    pages = [snapshot.query(FeatureQuery("etablissements", limit=2, offset=o)) for o in range(0, len(keys) + 2, 2)]
    assert [p.matched for p in pages] == [len(keys)] * len(pages)
    assert [ids(p) for p in pages] == [keys[o:o + 2] for o in range(0, len(keys) + 2, 2)]
    assert ids(pages[-1]) == []


def test_query_features_stream_from_the_cursor(snapshot):
    page = snapshot.query(FeatureQuery("etablissements", limit=100))
    assert iter(page.features) is page.features
    assert next(page.features).id == "0350001L"
    assert len(list(page.features)) == 5


def test_query_bbox_keeps_the_intersecting_points(snapshot, small_dataset):
    layer = small_dataset.layers["etablissements"]
    bbox = BBox(-1.7, 48.0, -1.5, 48.2)
    expected = sorted(k for k, g in zip(layer.ids, layer.geometries, strict=True) if g.intersects(box(*bbox)))
    page = snapshot.query(FeatureQuery("etablissements", bbox=bbox, limit=100))
    assert 0 < page.matched < len(layer)
    assert (ids(page), page.matched) == (expected, len(expected))


def test_query_bbox_on_polygons_tests_the_shape_not_the_envelope(snapshot):
    # The L-shaped commune's envelope covers the first box, its shape does not.
    page = snapshot.query(FeatureQuery("communes", bbox=BBox(-1.19, 48.11, -1.11, 48.19)))
    assert (ids(page), page.matched) == ([], 0)
    page = snapshot.query(FeatureQuery("communes", bbox=BBox(-1.19, 48.01, -1.11, 48.09)))
    assert (ids(page), page.matched) == (["35003"], 1)


def test_query_bbox_across_the_antimeridian_goes_east_from_west(snapshot, small_dataset):
    layer = small_dataset.layers["etablissements"]
    expected = sorted(k for k, g in zip(layer.ids, layer.geometries, strict=True) if g.x >= 2.0 or g.x <= -1.5)
    page = snapshot.query(FeatureQuery("etablissements", bbox=BBox(2.0, 40.0, -1.5, 50.0), limit=100))
    assert 0 < len(expected) < len(layer)
    assert (ids(page), page.matched) == (expected, len(expected))
    page = snapshot.query(FeatureQuery("etablissements", bbox=BBox(170.0, 40.0, -1.5, 50.0), limit=100))
    assert ids(page) == ["0350001L", "0350002M", "0350005R"]


def test_query_equals_matches_any_of_its_typed_values(snapshot, small_dataset):
    layer = small_dataset.layers["etablissements"]

    def query(*equals, **more):
        return snapshot.query(FeatureQuery("etablissements", equals=equals, limit=100, **more))

    page = query(("type", ("college", "lycee")))
    assert (ids(page), page.matched) == (school_ids(layer, lambda r: r["type"] in {"college", "lycee"}), 3)
    assert ids(query(("effectif", (420,)))) == ["0350002M"]
    assert ids(query(("effectif", (420, 95)))) == ["0350002M", "0941001C"]
    expected = school_ids(layer, lambda r: r["education_prioritaire"] is True)
    assert ids(query(("education_prioritaire", (True,)))) == expected
    assert ids(query(("ips", (88.0,)))) == ["0941001C"]
    page = query(("statut", ("public",)), ("type", ("college",)), bbox=BBox(-1.6, 48.0, -1.5, 48.2))
    assert (ids(page), page.matched) == (["0350005R"], 1)


def test_query_sortby_puts_unknown_values_last_and_breaks_ties_by_key(snapshot, small_dataset):
    layer = small_dataset.layers["etablissements"]
    rows = list(zip(layer.ids, layer.columns["ips"], strict=True))
    known = [r for r in rows if r[1] is not None]
    unknown = sorted(k for k, v in rows if v is None)
    page = snapshot.query(FeatureQuery("etablissements", sortby=(("ips", False),), limit=100))
    assert ids(page) == [k for k, _ in sorted(known, key=lambda r: (-r[1], r[0]))] + unknown
    page = snapshot.query(FeatureQuery("etablissements", sortby=(("ips", True),), limit=100))
    assert ids(page) == [k for k, _ in sorted(known, key=lambda r: (r[1], r[0]))] + unknown
    page = snapshot.query(FeatureQuery("etablissements", sortby=(("statut", True), ("type", False)), limit=3))
    assert ids(page) == ["0350004P", "0350003N", "0941001C"]


def test_query_properties_selects_columns_in_requested_order_and_keeps_the_id(snapshot):
    page = snapshot.query(FeatureQuery("etablissements", properties=("effectif", "nom"), limit=1))
    feature = next(page.features)
    assert feature.id == "0350001L"
    assert list(feature.properties.items()) == [("effectif", 210), ("nom", "École Jules Ferry")]
    assert feature.geometry is not None
    feature = next(snapshot.query(FeatureQuery("etablissements", properties=("nom", "uai"), limit=1)).features)
    assert list(feature.properties) == ["nom", "uai"]
    feature = next(snapshot.query(FeatureQuery("communes", properties=())).features)
    assert (feature.id, feature.properties) == ("35001", {})
