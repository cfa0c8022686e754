"""OGC API - Features over HTTP, against both stores (`feature_app` runs each test on each store).

Expected answers are computed here from `features_dataset` with shapely and plain Python, so
both stores are held to the same oracle; `test_both_stores_answer_alike` also compares them directly.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from urllib.parse import quote

import numpy as np
import psycopg
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import box, shape

from tileserver.core import crs
from tileserver.core.settings import Settings
from tileserver.web.app import create_app

ITEMS = "/collections/etablissements/items"
EPSG_4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
LAMBERT_93 = "http://www.opengis.net/def/crs/EPSG/0/2154"


@pytest.fixture
def client(feature_app):
    return feature_app.test_client()


@pytest.fixture(scope="module")
def schools(features_dataset) -> list[dict]:
    """Each school as a dict of its properties, with `geometry` and `id`."""
    layer = features_dataset.layers["etablissements"]
    return [
        {**{name: layer.columns[name][i] for name in layer.columns}, "id": key, "geometry": layer.geometries[i]}
        for i, key in enumerate(layer.ids)
    ]


def get_json(client, url: str, status: int = 200) -> dict:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return json.loads(response.get_data(as_text=True))


def ids_of(client, url: str) -> list[str]:
    """Every feature id the URL gives, following `next` links."""
    found: list[str] = []
    while url:
        page = get_json(client, url)
        found += [f["id"] for f in page["features"]]
        url = next((link["href"].split("localhost", 1)[1] for link in page["links"] if link["rel"] == "next"), "")
    return found


def expected(schools: list[dict], keep) -> list[str]:
    return sorted(s["id"] for s in schools if keep(s))


def assert_exception(client, url: str, status: int, code: str | None = None) -> dict:
    body = get_json(client, url, status)
    assert set(body) == {"code", "description"} and body["description"]
    if code:
        assert body["code"] == code
    return body


# --- collections ---------------------------------------------------------------------------------


def test_collections_describe_extent_crs_and_links(client, features_dataset):
    body = get_json(client, "/collections")
    assert [c["id"] for c in body["collections"]] == list(features_dataset.layers)
    for c in body["collections"]:
        layer = features_dataset.layers[c["id"]]
        assert c["extent"]["spatial"]["bbox"][0] == pytest.approx(list(shapely.total_bounds(layer.geometries)))
        assert c["storageCrs"] == crs.CRS84_URI
        assert c["crs"][0] == crs.CRS84_URI and EPSG_4326 in c["crs"] and LAMBERT_93 in c["crs"]
        items = [link for link in c["links"] if link["rel"] == "items"]
        assert {link["type"] for link in items} >= {"application/geo+json", "text/html; charset=utf-8"}
    one = get_json(client, "/collections/departements")
    assert one["id"] == "departements" and one["itemType"] == "feature"


def test_unknown_collection_is_a_404_exception(client):
    assert_exception(client, "/collections/ecoles", 404, "NotFound")
    assert_exception(client, "/collections/ecoles/items", 404, "NotFound")
    assert_exception(client, "/collections/ecoles/queryables", 404, "NotFound")


def test_queryables_are_a_json_schema_of_the_properties(client):
    response = client.get("/collections/etablissements/queryables")
    assert response.content_type == "application/schema+json"
    body = response.get_json()
    assert body["type"] == "object" and body["$id"].endswith("/collections/etablissements/queryables")
    types = {name: p.get("type") for name, p in body["properties"].items()}
    assert types == {"geometry": None, "uai": "string", "nom": "string", "type": "string", "statut": "string",
                     "code_departement": "string", "education_prioritaire": "boolean", "effectif": "integer",
                     "ips": "number"}
    assert body["properties"]["geometry"]["format"] == "geometry-point"


# --- paging --------------------------------------------------------------------------------------


def test_default_page_has_ten_features_exact_counts_and_a_next_link(client, schools):
    page = get_json(client, ITEMS)
    assert page["type"] == "FeatureCollection"
    assert (page["numberReturned"], page["numberMatched"]) == (10, len(schools))
    assert [f["id"] for f in page["features"]] == sorted(s["id"] for s in schools)[:10]
    rels = {link["rel"] for link in page["links"]}
    assert "next" in rels and "prev" not in rels


def test_next_links_walk_every_feature_once_in_key_order(client, schools):
    assert ids_of(client, f"{ITEMS}?limit=97") == sorted(s["id"] for s in schools)


def test_offset_and_prev_link(client, schools):
    keys = sorted(s["id"] for s in schools)
    page = get_json(client, f"{ITEMS}?limit=5&offset=12")
    assert [f["id"] for f in page["features"]] == keys[12:17]
    prev = next(link for link in page["links"] if link["rel"] == "prev")
    assert "offset=7" in prev["href"] and "limit=5" in prev["href"]
    last = get_json(client, f"{ITEMS}?limit=5&offset={len(keys) - 2}")
    assert last["numberReturned"] == 2 and "next" not in {link["rel"] for link in last["links"]}
    beyond = get_json(client, f"{ITEMS}?offset={len(keys) + 10}")
    assert (beyond["features"], beyond["numberReturned"]) == ([], 0)


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=1001", "limit=ten", "limit=-1", "limit=1.5", "offset=-3", "offset=x", "limit=5&limit=6",
              "limit=1_0", "limit=\uff15", "offset=\u0661"]
)
def test_bad_limit_or_offset_is_a_400(client, query):
    assert_exception(client, f"{ITEMS}?{query}", 400, "InvalidParameterValue")


def test_the_maximum_limit_is_a_setting(features_dataset, geopackage_store):
    app = create_app(Settings(database=geopackage_store.url, default_limit=3, max_limit=4), store=geopackage_store)
    client = app.test_client()
    assert get_json(client, ITEMS)["numberReturned"] == 3
    assert get_json(client, f"{ITEMS}?limit=4")["numberReturned"] == 4
    assert_exception(client, f"{ITEMS}?limit=5", 400)


def test_a_big_page_streams(client, schools):
    response = client.get(f"{ITEMS}?limit=1000")
    assert response.is_streamed
    body = json.loads(response.get_data(as_text=True))
    assert body["numberReturned"] == len(body["features"]) == len(schools)


# --- bbox and CRSs -------------------------------------------------------------------------------

RENNES = (-1.9, 47.9, -1.5, 48.3)


def test_bbox_keeps_the_features_it_intersects(client, schools):
    want = expected(schools, lambda s: s["geometry"].intersects(box(*RENNES)))
    assert 0 < len(want) < len(schools)
    assert ids_of(client, f"{ITEMS}?limit=1000&bbox={','.join(map(str, RENNES))}") == want
    w, s, e, n = RENNES
    assert ids_of(client, f"{ITEMS}?limit=1000&bbox={w},{s},-10,{e},{n},10") == want


def test_bbox_crs_epsg_4326_is_latitude_first(client, schools):
    w, s, e, n = RENNES
    url = f"{ITEMS}?limit=1000&bbox={s},{w},{n},{e}&bbox-crs={quote(EPSG_4326)}"
    assert ids_of(client, url) == expected(schools, lambda x: x["geometry"].intersects(box(*RENNES)))


def test_bbox_in_lambert_93_follows_the_projected_box(client, schools):
    to_l93 = Transformer.from_crs("OGC:CRS84", "EPSG:2154", always_xy=True)
    area = (330000.0, 6770000.0, 360000.0, 6800000.0)
    want = expected(schools, lambda s: box(*area).intersects(shapely.Point(to_l93.transform(s["geometry"].x,
                                                                                           s["geometry"].y))))
    assert want
    url = f"{ITEMS}?limit=1000&bbox={','.join(map(str, area))}&bbox-crs={quote(LAMBERT_93)}"
    assert ids_of(client, url) == want


@pytest.mark.parametrize(
    "bbox", ["1,2,3", "1,2,3,4,5", "a,b,c,d", "0,10,1,5", "0,-91,1,5", "-200,0,0,1", "nan,0,1,1", "1,2,3,inf", "",
             "1_0,2,30,40", "\uff11,2,30,40", "\u0661,2,30,40", "0x1,2,30,40", "1,2,30,40\u00a0"]
)
def test_malformed_bbox_is_a_400(client, bbox):
    assert_exception(client, f"{ITEMS}?bbox={bbox}", 400, "InvalidParameterValue")


@pytest.mark.parametrize("value", ["EPSG:9999", "http://www.opengis.net/def/crs/EPSG/0/27700", "lambert", "'; DROP"])
def test_unsupported_crs_is_a_400(client, value):
    for name in ("crs", "bbox-crs", "filter-crs"):
        assert_exception(client, f"{ITEMS}?{name}={quote(value)}&bbox=1,2,3,4&filter=ips>1", 400)


def test_content_crs_says_crs84_by_default(client):
    response = client.get(f"{ITEMS}?limit=1")
    assert response.headers["Content-Crs"] == f"<{crs.CRS84_URI}>"
    assert response.content_type == "application/geo+json"


@pytest.mark.parametrize("code", [4326, 2154, 3857, 5490, 2972, 2975, 4471, 32620, 32738])
def test_crs_reprojects_geometries_in_the_crs_axis_order(client, schools, code):
    uri = f"http://www.opengis.net/def/crs/EPSG/0/{code}"
    school = next(s for s in schools if s["code_departement"] == "971")
    response = client.get(f"{ITEMS}/{school['id']}?crs={quote(uri)}")
    assert response.headers["Content-Crs"] == f"<{uri}>"
    x, y = response.get_json()["geometry"]["coordinates"]
    want = Transformer.from_crs("OGC:CRS84", f"EPSG:{code}").transform(school["geometry"].x, school["geometry"].y)
    assert (x, y) == pytest.approx(want, abs=1e-6)
    page = get_json(client, f"{ITEMS}?limit=3&crs={quote(uri)}")
    assert all(len(f["geometry"]["coordinates"]) == 2 for f in page["features"])


def test_lambert_93_coordinates_match_pyproj(client, schools):
    page = get_json(client, f"{ITEMS}?limit=50&crs={quote(LAMBERT_93)}")
    to_l93 = Transformer.from_crs("OGC:CRS84", "EPSG:2154", always_xy=True)
    by_id = {s["id"]: s["geometry"] for s in schools}
    for feature in page["features"]:
        point = by_id[feature["id"]]
        assert feature["geometry"]["coordinates"] == pytest.approx(to_l93.transform(point.x, point.y), abs=1e-6)


# --- datetime, equality filters, unknown parameters ----------------------------------------------


@pytest.mark.parametrize("value", ["2024-01-01T00:00:00Z", "2024-01-01", "../2024-06-01T12:00:00+02:00",
                                   "2023-09-01T00:00:00Z/..", "2023-09-01/2024-07-05"])
def test_datetime_is_accepted_and_filters_nothing(client, schools, value):
    assert get_json(client, f"{ITEMS}?datetime={quote(value)}")["numberMatched"] == len(schools)


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01", "2024-06-01/2024-01-01", "a/b/c", "/", "2024-01-01//"])
def test_malformed_datetime_is_a_400(client, value):
    assert_exception(client, f"{ITEMS}?datetime={quote(value)}", 400)


def test_property_equality_filters(client, schools):
    assert ids_of(client, f"{ITEMS}?type=college&limit=1000") == expected(schools, lambda s: s["type"] == "college")
    both = expected(schools, lambda s: s["type"] in ("college", "lycee") and s["statut"] == "prive")
    assert ids_of(client, f"{ITEMS}?type=college&type=lycee&statut=prive&limit=1000") == both
    flagged = expected(schools, lambda s: s["education_prioritaire"] is True)
    assert ids_of(client, f"{ITEMS}?education_prioritaire=true&limit=1000") == flagged
    some = next(s for s in schools if s["effectif"] is not None)
    assert some["id"] in ids_of(client, f"{ITEMS}?effectif={some['effectif']}&limit=1000")


def test_unknown_query_parameter_is_an_invalid_parameter_400(client):
    body = assert_exception(client, f"{ITEMS}?colour=blue", 400, "InvalidParameter")
    assert "colour" in body["description"]
    assert_exception(client, "/collections?limit=3", 400, "InvalidParameter")
    assert_exception(client, "/?x=1", 400, "InvalidParameter")
    assert_exception(client, f"{ITEMS}/0350000A?limit=1", 400, "InvalidParameter")


@pytest.mark.parametrize("query", ["effectif=many", "education_prioritaire=maybe", "ips=high"])
def test_equality_value_of_the_wrong_type_is_a_400(client, query):
    assert_exception(client, f"{ITEMS}?{query}", 400)


# --- CQL2 filters --------------------------------------------------------------------------------

DEPT_35 = box(-2.0, 47.6, -1.0, 48.6)
FILTERS = [
    ("type = 'college'", lambda s: s["type"] == "college"),
    ("type <> 'ecole'", lambda s: s["type"] != "ecole"),
    ("ips > 100", lambda s: s["ips"] is not None and s["ips"] > 100),
    ("ips >= 100.5 AND ips < 120", lambda s: s["ips"] is not None and 100.5 <= s["ips"] < 120),
    ("effectif <= 200 OR type = 'lycee'", lambda s: (s["effectif"] is not None and s["effectif"] <= 200)
     or s["type"] == "lycee"),
    ("NOT (type = 'ecole' OR statut = 'prive')", lambda s: s["type"] != "ecole" and s["statut"] != "prive"),
    ("education_prioritaire = true", lambda s: s["education_prioritaire"] is True),
    ("education_prioritaire = false AND code_departement = '94'",
     lambda s: s["education_prioritaire"] is False and s["code_departement"] == "94"),
    ("nom LIKE 'Coll%'", lambda s: s["nom"].startswith("Coll")),
    ("nom LIKE 'coll%'", lambda s: s["nom"].startswith("coll")),
    ("nom LIKE '%Parc 1_'", lambda s: re.fullmatch(".*Parc 1.", s["nom"]) is not None),
    ("nom LIKE '%100\\% r%'", lambda s: "100% r" in s["nom"]),
    ("nom LIKE '%réussite\\_1%'", lambda s: "réussite_1" in s["nom"]),
    ("nom NOT LIKE 'L''École%'", lambda s: not s["nom"].startswith("L'École")),
    ("type IN ('lycee', 'erea')", lambda s: s["type"] in ("lycee", "erea")),
    ("code_departement NOT IN ('35', '94')", lambda s: s["code_departement"] not in ("35", "94")),
    ("effectif IN (100, 200, 300)", lambda s: s["effectif"] in (100, 200, 300)),
    ("ips BETWEEN 90 AND 110", lambda s: s["ips"] is not None and 90 <= s["ips"] <= 110),
    ("ips NOT BETWEEN 90 AND 110", lambda s: s["ips"] is not None and not 90 <= s["ips"] <= 110),
    ("ips IS NULL", lambda s: s["ips"] is None),
    ("effectif IS NOT NULL AND ips IS NULL", lambda s: s["effectif"] is not None and s["ips"] is None),
    ("S_INTERSECTS(geometry, BBOX(-1.9, 47.9, -1.5, 48.3))", lambda s: s["geometry"].intersects(box(*RENNES))),
    ("S_WITHIN(geometry, POLYGON((-2 47.6, -1 47.6, -1.5 48.6, -2 47.6)))",
     lambda s: s["geometry"].within(shapely.Polygon([(-2, 47.6), (-1, 47.6), (-1.5, 48.6)]))),
    ("S_DISJOINT(geometry, POLYGON((-2 47.6, -1 47.6, -1 48.6, -2 48.6, -2 47.6)))",
     lambda s: s["geometry"].disjoint(DEPT_35)),
    ("S_INTERSECTS(geometry, BBOX(-1.9, 47.9, -1.5, 48.3)) AND type = 'ecole' AND NOT ips < 100",
     lambda s: s["geometry"].intersects(box(*RENNES)) and s["type"] == "ecole" and s["ips"] is not None
     and not s["ips"] < 100),
    ("S_INTERSECTS(geometry, MULTIPOINT((2.35 48.7), (55.5 -21.1))) OR uai = '3500003B'",
     lambda s: s["id"] == "3500003B"),
    ("CASEI(nom) LIKE CASEI('%ÉCOLE%')", lambda s: "école" in s["nom"].lower()),
    ("CASEI(nom) = CASEI('LYCÉE CHATEAUBRIAND 8')", lambda s: s["nom"] == "Lycée Chateaubriand 8"),
    ("CASEI(type) IN (CASEI('LYCEE'), 'erea')", lambda s: s["type"] in ("lycee", "erea")),
    ("ACCENTI(nom) LIKE 'College%'", lambda s: unaccented(s["nom"]).startswith("College")),
    ("ACCENTI(nom) LIKE 'Ecole%'", lambda s: unaccented(s["nom"]).startswith("Ecole")),
    ("ACCENTI(CASEI(nom)) LIKE ACCENTI(CASEI('%l''ecole DU PARC 1_'))",
     lambda s: re.fullmatch(".*l'ecole du parc 1.", unaccented(s["nom"]).lower()) is not None),
    ("NOT CASEI(ACCENTI(nom)) LIKE '%ecole%'", lambda s: "ecole" not in unaccented(s["nom"]).lower()),
]


def unaccented(text: str) -> str:
    """Text without its combining marks, as CQL2's ACCENTI compares it."""
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


@pytest.mark.parametrize(("text", "keep"), FILTERS, ids=[f[0] for f in FILTERS])
def test_cql2_text_filters(client, schools, text, keep):
    want = expected(schools, keep)
    page = get_json(client, f"{ITEMS}?limit=1000&filter={quote(text)}")
    assert [f["id"] for f in page["features"]] == want
    assert page["numberMatched"] == len(want)


JSON_FILTERS = [
    ({"op": "=", "args": [{"property": "type"}, "college"]}, lambda s: s["type"] == "college"),
    ({"op": "and", "args": [{"op": ">", "args": [{"property": "ips"}, 100]},
                            {"op": "like", "args": [{"property": "nom"}, "Lyc%"]}]},
     lambda s: s["ips"] is not None and s["ips"] > 100 and s["nom"].startswith("Lyc")),
    ({"op": "between", "args": [{"property": "effectif"}, 300, 600]},
     lambda s: s["effectif"] is not None and 300 <= s["effectif"] <= 600),
    ({"op": "in", "args": [{"property": "type"}, ["lycee", "erea"]]}, lambda s: s["type"] in ("lycee", "erea")),
    ({"op": "isNull", "args": [{"property": "ips"}]}, lambda s: s["ips"] is None),
    ({"op": "not", "args": [{"op": "isNull", "args": [{"property": "ips"}]}]}, lambda s: s["ips"] is not None),
    ({"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": list(RENNES)}]},
     lambda s: s["geometry"].intersects(box(*RENNES))),
    ({"op": "s_within", "args": [{"property": "geometry"}, shapely.geometry.mapping(DEPT_35)]},
     lambda s: s["geometry"].within(DEPT_35)),
    ({"op": "like", "args": [{"op": "casei", "args": [{"property": "nom"}]}, {"op": "casei", "args": ["%PARC%"]}]},
     lambda s: "parc" in s["nom"].lower()),
    ({"op": "=", "args": [{"op": "accenti", "args": [{"op": "casei", "args": [{"property": "type"}]}]}, "ecole"]},
     lambda s: s["type"] == "ecole"),
    ({"op": "like", "args": [{"op": "accenti", "args": [{"property": "nom"}]}, "%reussite%"]},
     lambda s: "réussite" in s["nom"]),
]


@pytest.mark.parametrize(("tree", "keep"), JSON_FILTERS, ids=[json.dumps(f[0])[:60] for f in JSON_FILTERS])
def test_cql2_json_filters(client, schools, tree, keep):
    url = f"{ITEMS}?limit=1000&filter-lang=cql2-json&filter={quote(json.dumps(tree))}"
    assert [f["id"] for f in get_json(client, url)["features"]] == expected(schools, keep)


def test_spatial_filters_on_polygons(client):
    def codes(text):
        return [f["id"] for f in get_json(client, f"/collections/departements/items?filter={quote(text)}")["features"]]

    assert codes("S_CONTAINS(geometry, POINT(-1.6 48.1))") == ["35"]
    assert codes("S_CONTAINS(geometry, BBOX(2.4, 48.7, 2.5, 48.8))") == ["94"]
    assert codes("S_WITHIN(geometry, BBOX(-62, 15, 56, 49))") == ["35", "94", "971"]
    assert codes("S_INTERSECTS(geometry, LINESTRING(-1.5 48, 2.4 48.8))") == ["35", "94"]
    assert codes("S_CROSSES(geometry, LINESTRING(-1.5 48, -0.5 48))") == ["35"]
    assert codes("S_TOUCHES(geometry, POINT(-1 48))") == ["35"]
    assert codes("S_EQUALS(geometry, POLYGON((2.3 48.68, 2.6 48.68, 2.6 48.86, 2.3 48.86, 2.3 48.68)))") == ["94"]
    assert codes("S_OVERLAPS(geometry, BBOX(55, -21, 55.5, -20))") == ["974"]
    assert codes("NOT S_INTERSECTS(geometry, BBOX(-5, 40, 10, 52))") == ["971", "974"]


def test_filter_crs_reprojects_literals(client, schools):
    to_l93 = Transformer.from_crs("OGC:CRS84", "EPSG:2154", always_xy=True)
    lon_lat = box(-1.9, 47.9, -1.5, 48.3)
    l93 = shapely.transform(shapely.segmentize(lon_lat, 0.01), lambda xy: np.column_stack(to_l93.transform(*xy.T)))
    text = f"S_INTERSECTS(geometry, {l93.wkt})"
    found = ids_of(client, f"{ITEMS}?limit=1000&filter-crs={quote(LAMBERT_93)}&filter={quote(text)}")
    assert found == expected(schools, lambda s: s["geometry"].intersects(lon_lat))
    lat_first = "S_INTERSECTS(geometry, POLYGON((47.9 -1.9, 47.9 -1.5, 48.3 -1.5, 48.3 -1.9, 47.9 -1.9)))"
    assert ids_of(client, f"{ITEMS}?limit=1000&filter-crs={quote(EPSG_4326)}&filter={quote(lat_first)}") == found


def test_filter_combines_with_bbox_and_equality(client, schools):
    url = f"{ITEMS}?limit=1000&bbox={','.join(map(str, RENNES))}&type=ecole&filter={quote('ips > 100')}"
    want = expected(schools, lambda s: s["geometry"].intersects(box(*RENNES)) and s["type"] == "ecole"
                    and s["ips"] is not None and s["ips"] > 100)
    assert ids_of(client, url) == want


@pytest.mark.parametrize(
    "text",
    [
        "colour = 'blue'",  # unknown property
        "geometry = 'x'",  # the geometry in a comparison
        "ips = 'high'",  # type mismatch
        "type = 3",
        "education_prioritaire = 1",
        "nom LIKE 3",
        "ips LIKE '1%'",
        "type = ",  # malformed
        "type = 'college",
        "S_INTERSECTS(type, POINT(1 2))",
        "S_INTERSECTS(geometry, POLYGON((0 0, 1 1, 1 0, 0 1, 0 0)))",  # invalid polygon
        "S_INTERSECTS(geometry, BBOX(1, 2, 3))",
        "T_AFTER(built, TIMESTAMP('2020-01-01T00:00:00Z'))",
        "ips + 1 > 3",
        "CASEI(ips) = 'x'",
        "UPPER(nom) = 'X'",
        "CASEI(nom) LIKE CASEI(nom)",
        "ACCENTI('a') = 'a'",
        "1 = 1",
        "ips > 1e400",
        "type = 'a'; DROP TABLE etablissements; --",
        "\"nom\"\"; DROP TABLE etablissements; --\" = 'x'",
    ],
)
def test_bad_filters_are_a_400(client, text):
    assert_exception(client, f"{ITEMS}?filter={quote(text)}", 400, "InvalidParameterValue")


@pytest.mark.parametrize(
    "text",
    ["[1", "1", "{\"op\": \"=\"}", "{\"op\": \"between\", \"args\": [{\"property\": \"ips\"}, 1]}",
     "{\"op\": \"s_intersects\", \"args\": [{\"property\": \"geometry\"}, {\"bbox\": [1, 2]}]}",
     "{\"op\": \"=\", \"args\": [{\"property\": \"nom'; --\"}, 1]}"],
)
def test_bad_cql2_json_is_a_400(client, text):
    assert_exception(client, f"{ITEMS}?filter-lang=cql2-json&filter={quote(text)}", 400)


def test_filter_language_depth_and_length_are_bounded(client, feature_store):
    assert_exception(client, f"{ITEMS}?filter-lang=ecql&filter=ips>1", 400)
    deep = "ips > 1"
    for i in range(25):
        deep = f"NOT ({deep} {'AND' if i % 2 else 'OR'} ips < {i})"
    body = assert_exception(client, f"{ITEMS}?filter={quote(deep)}", 400)
    assert "nests" in body["description"]
    nested_json = {"op": "=", "args": [{"property": "ips"}, 1]}
    for _ in range(400):
        nested_json = {"op": "not", "args": [nested_json]}
    assert_exception(client, f"{ITEMS}?filter-lang=cql2-json&filter={quote(json.dumps(nested_json))}", 400)
    parens = "(" * 3000 + "ips > 1" + ")" * 3000  # parentheses alone nest nothing
    assert get_json(client, f"{ITEMS}?filter={quote(parens)}")["numberMatched"] == get_json(
        client, f"{ITEMS}?filter={quote('ips > 1')}")["numberMatched"]
    long_chain = " OR ".join(f"uai = '{i:07d}A'" for i in range(1500))  # 25,000 characters
    body = assert_exception(client, f"{ITEMS}?filter={quote(long_chain)}", 400)
    assert "characters" in body["description"]


def test_a_long_flat_chain_is_not_too_deep(client, schools):
    wanted = sorted(s["id"] for s in schools)[:300]
    text = " OR ".join(f"uai = '{key}'" for key in wanted)
    assert ids_of(client, f"{ITEMS}?limit=1000&filter={quote(text)}") == wanted


# --- sortby, properties, formats -----------------------------------------------------------------


def test_sortby_orders_with_unknown_values_last(client, schools):
    known = [s for s in schools if s["ips"] is not None]
    unknown = sorted(s["id"] for s in schools if s["ips"] is None)
    descending = [s["id"] for s in sorted(known, key=lambda s: (-s["ips"], s["id"]))] + unknown
    assert ids_of(client, f"{ITEMS}?limit=1000&sortby=-ips") == descending
    ascending = [s["id"] for s in sorted(known, key=lambda s: (s["ips"], s["id"]))] + unknown
    assert ids_of(client, f"{ITEMS}?limit=1000&sortby=%2Bips") == ascending
    by_two = sorted(schools, key=lambda s: (s["type"], -s["effectif"] if s["effectif"] is not None else 0, s["id"]))
    page = get_json(client, f"{ITEMS}?limit=1000&sortby=type,-effectif")
    assert [f["properties"]["type"] for f in page["features"]] == [s["type"] for s in by_two]


@pytest.mark.parametrize("value", ["colour", "-", "+-ips", "nom;DROP TABLE x", "ips desc"])
def test_bad_sortby_is_a_400(client, value):
    assert_exception(client, f"{ITEMS}?sortby={quote(value)}", 400)


def test_properties_selects_and_orders_the_properties(client):
    page = get_json(client, f"{ITEMS}?limit=2&properties=nom,ips")
    assert [list(f["properties"]) for f in page["features"]] == [["nom", "ips"], ["nom", "ips"]]
    assert all(f["geometry"] for f in page["features"])
    assert get_json(client, f"{ITEMS}?limit=1&properties=")["features"][0]["properties"] == {}
    assert_exception(client, f"{ITEMS}?properties=nom,password", 400)


def test_csv_export(client, schools):
    response = client.get(f"{ITEMS}?f=csv&limit=1000&type=lycee&properties=nom,effectif,ips")
    assert response.content_type == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    lycees = [s for s in schools if s["type"] == "lycee"]
    assert [r["id"] for r in rows] == sorted(s["id"] for s in lycees)
    assert list(rows[0]) == ["id", "nom", "effectif", "ips", "WKT"]
    by_id = {s["id"]: s for s in lycees}
    for row in rows:
        school = by_id[row["id"]]
        assert row["nom"] == school["nom"]
        assert row["ips"] == ("" if school["ips"] is None else repr(school["ips"]))
        assert shapely.from_wkt(row["WKT"]).equals_exact(school["geometry"], 1e-12)


def test_accept_header_negotiates_the_format(client):
    assert client.get(ITEMS, headers={"Accept": "text/html"}).content_type.startswith("text/html")
    assert client.get(ITEMS, headers={"Accept": "text/csv"}).content_type.startswith("text/csv")
    assert client.get(ITEMS, headers={"Accept": "*/*"}).content_type == "application/geo+json"
    assert client.get(ITEMS).content_type == "application/geo+json"
    assert client.get(ITEMS, headers={"Accept": "image/png"}).status_code == 406
    assert_exception(client, f"{ITEMS}?f=xml", 400)


def test_html_pages_link_together_and_draw_a_map(client):
    items_page = client.get(f"{ITEMS}?f=html&limit=5").get_data(as_text=True)
    assert "<svg" in items_page and items_page.count("<circle") == 5
    assert '/collections/etablissements/items/' in items_page and 'rel="next"' in items_page
    assert "http://localhost/collections/etablissements" in items_page
    first = get_json(client, f"{ITEMS}?limit=1")["features"][0]
    item_page = client.get(f"{ITEMS}/{first['id']}?f=html").get_data(as_text=True)
    assert first["properties"]["nom"].replace("'", "&#39;") in item_page and "<svg" in item_page
    departements = client.get("/collections/departements/items?f=html").get_data(as_text=True)
    assert departements.count("<path") == 4
    for url in ("/?f=html", "/collections?f=html", "/collections/etablissements?f=html",
                "/collections/etablissements/queryables?f=html", "/conformance?f=html", "/api?f=html"):
        page = client.get(url)
        assert page.status_code == 200 and page.content_type.startswith("text/html"), url
        assert "http://localhost/" in page.get_data(as_text=True)


def test_html_escapes_what_the_data_says(client):
    body = client.get(f"{ITEMS}?f=html&filter={quote('nom LIKE ' + chr(39) + 'L' + chr(39) * 2 + '%' + chr(39))}")
    text = body.get_data(as_text=True)
    assert "L&#39;École" in text and "L'École" not in text


# --- one feature ---------------------------------------------------------------------------------


def test_one_feature_with_its_links(client, schools):
    school = schools[5]
    response = client.get(f"{ITEMS}/{school['id']}")
    assert response.content_type == "application/geo+json"
    body = response.get_json()
    assert body["id"] == school["id"] and body["type"] == "Feature"
    assert shape(body["geometry"]).equals_exact(school["geometry"], 1e-12)
    assert body["properties"]["nom"] == school["nom"]
    rels = {link["rel"]: link["href"] for link in body["links"]}
    assert rels["self"].endswith(f"/items/{school['id']}?f=json")
    assert rels["collection"].endswith("/collections/etablissements")


def test_unknown_feature_is_a_404(client):
    assert_exception(client, f"{ITEMS}/0000000A", 404, "NotFound")
    assert_exception(client, f"{ITEMS}/{quote(chr(39) + ' OR 1=1 --')}", 404, "NotFound")
    assert get_json(client, "/collections/departements/items/971")["properties"]["nom"] == "Guadeloupe"


# --- injection and robustness --------------------------------------------------------------------

INJECTIONS = ["'", "\"", "' OR '1'='1", "1; DROP TABLE etablissements; --", "%00", "\\", "${jndi:x}", "é" * 300]


@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_attempts_in_any_parameter_are_client_errors(client, value, schools):
    v = quote(value)
    for query in (f"bbox={v}", f"limit={v}", f"offset={v}", f"crs={v}", f"bbox-crs={v}", f"filter={v}",
                  f"filter-lang={v}", f"filter-crs={v}&filter=ips>1", f"sortby={v}", f"properties={v}",
                  f"datetime={v}", f"f={v}", f"{v}=1"):
        status = client.get(f"{ITEMS}?{query}").status_code
        assert status == 400, (query, status)
    assert client.get(f"{ITEMS}?type={v}").status_code == 200
    assert client.get(f"/collections/{v}/items").status_code == 404
    assert get_json(client, ITEMS)["numberMatched"] == len(schools)


# --- the two stores ------------------------------------------------------------------------------

SAME_ANSWERS = [
    f"{ITEMS}?limit=40&offset=17",
    f"{ITEMS}?limit=1000&bbox=-1.9,47.9,-1.5,48.3&sortby=-ips,nom",
    f"{ITEMS}?limit=1000&filter={quote(FILTERS[24][0])}&properties=nom,type,ips",
    f"{ITEMS}?limit=100&crs={quote(LAMBERT_93)}&filter={quote('nom LIKE ' + chr(39) + '%Parc%' + chr(39))}",
    f"{ITEMS}?limit=1000&type=college&statut=prive",
    "/collections/departements/items?filter=S_INTERSECTS(geometry,POINT(2.45 48.8))",
    "/collections",
    f"{ITEMS}/3500003B?crs={quote(EPSG_4326)}",
]


def test_both_stores_answer_alike(geopackage_store, postgis_store):
    clients = [create_app(Settings(database=s.url), store=s).test_client() for s in (geopackage_store, postgis_store)]
    for url in SAME_ANSWERS:
        answers = [get_json(c, url) for c in clients]
        for answer in answers:
            answer.pop("timeStamp", None)
        assert answers[0] == answers[1], url


def test_postgis_filter_values_travel_as_parameters(postgis_store):
    """An injection in a filter value is data: the table is still there and the value was compared."""
    client = create_app(Settings(database=postgis_store.url), store=postgis_store).test_client()
    text = "nom = 'x''; DROP TABLE etablissements; --'"
    assert get_json(client, f"{ITEMS}?filter={quote(text)}")["numberMatched"] == 0
    with psycopg.connect(postgis_store.url) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'etablissements'").fetchone()
    assert tables == (1,)
