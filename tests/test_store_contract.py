"""The same dataset published to both stores reads back the same: features, order, counts, errors."""

from __future__ import annotations

import pytest

from tileserver.errors import BadRequest, EcartoError, NotFound
from tileserver.grid import BBox
from tileserver.settings import Settings
from tileserver.stores.base import FeatureQuery, Snapshot
from tileserver.stores.geopackage import GeoPackageStore
from tileserver.stores.postgis import PostGISStore

QUERIES = [
    FeatureQuery("etablissements", limit=100),
    FeatureQuery("etablissements", limit=2, offset=1),
    FeatureQuery("etablissements", limit=3, offset=5),
    FeatureQuery("etablissements", bbox=BBox(-1.7, 48.0, -1.5, 48.2)),
    FeatureQuery("etablissements", bbox=BBox(2.0, 40.0, -1.5, 50.0), limit=100),
    FeatureQuery("etablissements", equals=(("type", ("college", "lycee")),)),
    FeatureQuery("etablissements", equals=(("effectif", ("420", 95)),)),
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
    (FeatureQuery("etablissements", equals=(("effectif", ("1.5",)),)), BadRequest),
    (FeatureQuery("etablissements", equals=(("effectif", ("many",)),)), BadRequest),
    (FeatureQuery("etablissements", equals=(("education_prioritaire", ("maybe",)),)), BadRequest),
    (FeatureQuery("etablissements", filter=object()), BadRequest),
    (FeatureQuery("etablissements", limit=-1), BadRequest),
    (FeatureQuery("etablissements", offset=-5), BadRequest),
]


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
