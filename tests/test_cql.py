"""CQL2 parsing (tileserver.web.filters) and its translation to SQL (tileserver.core.cql), without a database."""

from __future__ import annotations

import doctest
import json
import sqlite3

import pytest
import shapely
from psycopg import sql
from pygeofilter import ast

from tileserver.core import cql, crs
from tileserver.core.dataset import Field
from tileserver.core.errors import BadRequest
from tileserver.core.grid import BBox
from tileserver.core.store import CollectionInfo
from tileserver.web import filters

INFO = CollectionInfo(
    "etablissements", "", "", "Point", "uai",
    (Field("uai", "string"), Field("nom", "string"), Field("effectif", "integer"), Field("ips", "number"),
     Field("ep", "boolean"), Field('taux "net"', "number")),
    3, BBox(-1, 47, 1, 49), 0, 14,
)


FOLDED = "L'ÉCOLE Noël-Çà, Œuvre Ÿ ÅSTRÖM Δ"  # a text CASEI and ACCENTI both change


def parse(text: str, lang: str = "cql2-text", source: crs.Crs = crs.CRS84, depth: int = 20):
    return filters.parse(text, lang, source, max_length=20_000, max_depth=depth)


def sqlite(text: str) -> tuple[str, list]:
    return cql.to_sqlite(INFO, parse(text), rtree="rtree_etablissements_geom")


@pytest.mark.parametrize("module", [cql, filters])
def test_doctests(module):
    assert doctest.testmod(module).failed == 0


def test_values_travel_as_parameters_and_names_are_quoted():
    text, params = sqlite("nom = 'x'' OR 1=1 --' AND ips > 2")
    assert text == '(("nom" = ?) AND ("ips" > ?))'
    assert params == ["x' OR 1=1 --", 2]
    condition = ast.GreaterThan(ast.Attribute('taux "net"'), 2)
    assert cql.to_sqlite(INFO, condition, rtree="r") == ('("taux ""net""" > ?)', [2])


def test_postgis_dialect_composes_identifiers_and_placeholders():
    condition, params = cql.to_postgis(INFO, parse("ep = true AND effectif IN (1, 2)"))
    assert isinstance(condition, sql.Composed)
    parts = list(condition)  # the composed parts: names and placeholders, nothing spliced
    assert sql.Identifier("ep") in parts and sql.Identifier("effectif") in parts
    assert sum(isinstance(p, sql.Placeholder) for p in parts) == 3
    assert params == [True, 1, 2]


def test_sqlite_booleans_are_integers_and_like_is_a_case_sensitive_glob():
    assert sqlite("ep = false") == ('("ep" = ?)', [0])
    assert sqlite("nom LIKE 'a*b?[%_\\%'") == ('("nom" GLOB ?)', ["a[*]b[?][[]*?%"])
    assert sqlite("nom NOT LIKE 'x%'") == ('NOT ("nom" GLOB ?)', ["x*"])


def test_postgis_like_escapes_what_is_literal():
    _, params = cql.to_postgis(INFO, parse("nom LIKE '50\\%\\_%'"))
    assert params == ["50\\%\\_%"]


def test_like_patterns():
    assert cql.like_pattern("a%b_c") == ["a", None, "b", "", "c"]
    assert cql.like_pattern("\\%\\_\\\\") == ["%_\\"]
    assert cql.like_pattern("") == []


def test_spatial_predicates_prefilter_on_the_rtree_in_sqlite():
    text, params = sqlite("S_WITHIN(geometry, BBOX(0, 1, 2, 3))")
    assert '"rtree_etablissements_geom"' in text and "ecarto_relate(geom, ?, ?)" in text
    assert params[:4] == [2.0, 0.0, 3.0, 1.0]
    assert params[4:8] == [0.01, 2 - 0.01, 1.01, 3 - 0.01]  # inside the box's interior: no test in Python
    assert params[8] == "contains" and shapely.from_wkb(params[9]).equals(shapely.box(0, 1, 2, 3))
    _, params = sqlite("S_WITHIN(POINT(1 2), geometry)")
    assert params[4] == "within"


def test_spatial_predicates_in_postgis_keep_the_argument_order():
    condition, _ = cql.to_postgis(INFO, parse("S_CONTAINS(POINT(1 2), geometry)"))
    rendered = "".join(p.as_string() if isinstance(p, sql.SQL) else "?" for p in condition)
    assert rendered.startswith("ST_Contains(ST_GeomFromWKB(?, 4326), ?")


def test_casei_and_accenti_fold_the_column_in_the_database_and_literals_here():
    assert sqlite("CASEI(nom) LIKE CASEI('%ÉCOLE%')") == ('(ecarto_casei("nom") GLOB ?)', ["*école*"])
    assert sqlite("ACCENTI(CASEI(nom)) = ACCENTI('Lycée')") == ('(ecarto_accenti(ecarto_casei("nom")) = ?)', ["Lycee"])
    condition, params = cql.to_postgis(INFO, parse("CASEI(nom) IN ('a', CASEI('B'))"))
    rendered = "".join(p.as_string() if isinstance(p, sql.SQL | sql.Identifier) else "?" for p in condition)
    assert rendered == '(translate("nom", ?, ?) IN (?, ?))'
    assert params[2:] == ["a", "b"] and "É" in params[0] and "é" in params[1]


def test_casei_and_accenti_in_sqlite():
    conn = sqlite3.connect(":memory:")
    cql.register_sqlite(conn, lambda blob: None)
    fold = "SELECT ecarto_casei(?), ecarto_accenti(?), ecarto_casei(NULL)"
    assert conn.execute(fold, (FOLDED, FOLDED)).fetchone() == (
        "l'école noël-çà, œuvre ÿ åström δ", "L'ECOLE Noel-Ca, Œuvre Y ASTROM Δ", None)


def test_relate_on_a_geopackage_blob():
    from tileserver.core.stores.geopackage import geometry

    conn = sqlite3.connect(":memory:")
    cql.register_sqlite(conn, geometry.decode)
    import numpy as np

    blob = geometry.encode(np.array([shapely.Point(1, 1)], dtype=object), 4326)[0]
    square = shapely.to_wkb(shapely.box(0, 0, 2, 2))
    ask = lambda relation: conn.execute("SELECT ecarto_relate(?, ?, ?)", (blob, relation, square)).fetchone()[0]  # noqa: E731
    assert (ask("contains"), ask("intersects"), ask("disjoint"), ask("within")) == (1, 1, 0, 0)
    assert conn.execute("SELECT ecarto_relate(NULL, 'intersects', ?)", (square,)).fetchone()[0] is None


@pytest.mark.parametrize(
    "text",
    ["nope = 1", "geometry = 1", "nom = 1", "ips = 'x'", "ep = 1", "nom LIKE 1", "ips LIKE 'x'",
     "nom IN ('a', 1)", "ips BETWEEN 'a' AND 'b'", "S_INTERSECTS(nom, POINT(0 0))",
     "S_INTERSECTS(geometry, geometry)", "ips + 1 = 2", "CASEI(ips) = 'x'",
     "CASEI(nom, nom) = 'x'", "LOWER2(nom) = 'x'", "'a' = 'a'", "CASEI('a') = 'a'",
     "nom IN (CASEI(nom))", "nom LIKE CASEI(nom)"],
)
def test_translation_refuses_what_it_cannot_check(text):
    with pytest.raises(BadRequest):
        sqlite(text)


def test_filter_crs_and_ewkt_srid_move_literals_to_lon_lat():
    node = parse("S_INTERSECTS(geometry, POINT(700000 6600000))", source=crs.parse("EPSG:2154"))
    assert node.rhs.coords[0] == pytest.approx((3.0, 46.5))
    node = parse("S_INTERSECTS(geometry, SRID=2154;POINT(700000 6600000))")
    assert node.rhs.coords[0] == pytest.approx((3.0, 46.5))
    node = parse("S_INTERSECTS(geometry, POINT(46.5 3))", source=crs.parse("EPSG:4326"))
    assert node.rhs.coords[0] == pytest.approx((3.0, 46.5))


def test_cql2_json_bbox_and_between_follow_cql2_1_0():
    node = parse(json.dumps({"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [0, 1, 2, 3]}]}),
                 "cql2-json")
    assert node.rhs.bounds == (0, 1, 2, 3)
    node = parse(json.dumps({"op": "between", "args": [{"property": "ips"}, 1, 2]}), "cql2-json")
    assert (node.low, node.high) == (1, 2)


def test_cql2_text_where_pygeofilter_0_4_fell_short():
    assert parse("NOT (nom = 'a' AND ips > 1)") is not None
    assert parse("x IN ('a')").lhs.name == "x"
    assert parse("nom = 'O''Brien'").rhs == "O'Brien"
    assert len(parse("S_INTERSECTS(geometry, MULTIPOINT((1 2), (3 4)))").rhs.geoms) == 2


def test_depth_counts_nesting_not_chains():
    chain = " OR ".join(f"ips = {i}" for i in range(200))
    assert parse(chain, depth=2)
    with pytest.raises(BadRequest, match="nests more than 2"):
        parse("NOT (ips = 1 AND (nom = 'a' OR nom = 'b'))", depth=2)
    assert parse("NOT (ips = 1 AND (nom = 'a' OR nom = 'b'))", depth=4)


@pytest.mark.parametrize(
    "text", ["", "ips >", "((ips = 1)", "ips = 'a", "S_INTERSECTS(geometry, POINT(1))",
             "S_INTERSECTS(geometry, POLYGON((0 0, 1 0, 0 0)))", "S_INTERSECTS(geometry, LINESTRING(0 0))"],
)
def test_malformed_text_is_a_400(text):
    with pytest.raises(BadRequest):
        parse(text)


def test_long_filters_are_refused_before_parsing():
    with pytest.raises(BadRequest, match="characters"):
        filters.parse("ips > 1" + " " * 100, "cql2-text", crs.CRS84, max_length=100, max_depth=5)
