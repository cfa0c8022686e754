"""The abstract test suites of OGC API - Features Parts 1, 2 and 3 (and CQL2), as checks on both stores.

Each test names the ATS test it follows (`/conf/<class>/<test>`, OGC 17-069r4 annex A, 18-058r1
annex A, 19-079r2 annex A, 21-065r2 annex A); what an ATS leaves to a client's judgement is
checked against the dataset the stores serve.
"""

from __future__ import annotations

import json
from urllib.parse import quote, urlsplit

import pytest
import shapely
from shapely.geometry import box, shape

from tileserver.core import crs

PART1 = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"
PART2 = "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/"
PART3 = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/"
CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf/"
JSON_TYPES = {"application/json", "application/geo+json", "application/schema+json",
              "application/vnd.oai.openapi+json;version=3.0"}


@pytest.fixture
def client(feature_app):
    return feature_app.test_client()


def fetch(client, href: str, headers: dict | None = None):
    """GET a link's href (absolute, as the server writes them) on the test client."""
    parts = urlsplit(href)
    return client.get(parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {})


def body(response) -> dict:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return json.loads(response.get_data(as_text=True))


def rels(links: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for link in links:
        assert {"href", "rel"} <= set(link)
        grouped.setdefault(link["rel"], []).append(link)
    return grouped


# --- Part 1: core --------------------------------------------------------------------------------


def test_core_root_op_and_success(client):
    """/conf/core/root-op, /conf/core/root-success."""
    response = client.get("/")
    assert response.content_type == "application/json"
    links = rels(body(response)["links"])
    for rel in ("self", "service-desc", "service-doc", "conformance", "data"):
        assert rel in links, rel
    for link in links["service-desc"] + links["conformance"] + links["data"]:
        assert fetch(client, link["href"]).status_code == 200


def test_core_api_definition(client):
    """/conf/core/api-definition-op, /conf/core/api-definition-success."""
    service_desc = rels(body(client.get("/"))["links"])["service-desc"][0]
    response = fetch(client, service_desc["href"])
    assert response.content_type == service_desc["type"] == "application/vnd.oai.openapi+json;version=3.0"
    doc = json.loads(response.get_data(as_text=True))
    assert doc["openapi"].startswith("3.0")
    service_doc = rels(body(client.get("/"))["links"])["service-doc"][0]
    assert fetch(client, service_doc["href"]).content_type.startswith("text/html")


def test_core_conformance(client):
    """/conf/core/conformance-op, /conf/core/conformance-success: every class this server honours."""
    declared = set(body(client.get("/conformance"))["conformsTo"])
    for uri in ("core", "geojson", "html", "oas30"):
        assert PART1 + uri in declared
    assert PART2 + "crs" in declared
    for uri in ("filter", "features-filter", "queryables", "queryables-query-parameters"):
        assert PART3 + uri in declared
    for uri in ("cql2-text", "cql2-json", "basic-cql2", "advanced-comparison-operators",
                "basic-spatial-functions", "spatial-functions"):
        assert CQL2 + uri in declared


def test_core_collections(client, features_dataset):
    """/conf/core/fc-md-op, fc-md-success, fc-md-links, fc-md-items, fc-md-extent."""
    doc = body(client.get("/collections"))
    assert "self" in rels(doc["links"])
    assert {c["id"] for c in doc["collections"]} == set(features_dataset.layers)
    for collection in doc["collections"]:
        links = rels(collection["links"])
        assert any(link["type"] == "application/geo+json" for link in links["items"])
        west, south, east, north = collection["extent"]["spatial"]["bbox"][0]
        assert -180 <= west <= east <= 180 and -90 <= south <= north <= 90
        assert collection["extent"]["spatial"].get("crs", crs.CRS84_URI) == crs.CRS84_URI
        single = body(client.get(f"/collections/{collection['id']}"))
        assert single["id"] == collection["id"] and single["extent"] == collection["extent"]  # sfc-md-success


def test_core_items(client, features_dataset):
    """/conf/core/fc-op, fc-response, fc-links, fc-limit-response, fc-rel-type."""
    response = client.get("/collections/etablissements/items?limit=7")
    assert response.content_type == "application/geo+json"
    doc = body(response)
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 7
    assert doc["numberReturned"] == 7 <= doc["numberMatched"] == len(features_dataset.layers["etablissements"])
    assert doc["timeStamp"].endswith("Z")
    links = rels(doc["links"])
    assert links["self"][0]["type"] == "application/geo+json"
    assert {link["type"] for link in links["alternate"]} >= {"text/html; charset=utf-8"}
    assert body(fetch(client, links["next"][0]["href"]))["features"][0]["id"] != doc["features"][0]["id"]
    for feature in doc["features"]:
        assert feature["type"] == "Feature" and {"geometry", "properties", "id"} <= set(feature)


def test_core_items_limit_and_bbox_definitions(client):
    """/conf/core/fc-limit-definition, fc-bbox-definition, fc-time-definition: the API declares them."""
    items = body(client.get("/api"))["paths"]["/collections/{collectionId}/items"]["get"]
    parameters = {p["name"]: p for p in items["parameters"]}
    limit = parameters["limit"]["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 1000, 10)
    assert parameters["bbox"]["schema"]["minItems"] == 4 and parameters["bbox"]["explode"] is False
    assert parameters["datetime"]["in"] == "query"


def test_core_bbox_response(client):
    """/conf/core/fc-bbox-response: every returned feature intersects the box, and none is missed."""
    area = box(55.2, -21.4, 55.5, -21.0)
    doc = body(client.get("/collections/etablissements/items?limit=1000&bbox=55.2,-21.4,55.5,-21.0"))
    assert doc["features"] and all(shape(f["geometry"]).intersects(area) for f in doc["features"])
    everything = body(client.get("/collections/etablissements/items?limit=1000&bbox=-180,-90,180,90"))
    inside = [f["id"] for f in everything["features"] if shape(f["geometry"]).intersects(area)]
    assert inside == [f["id"] for f in doc["features"]]


def test_core_time_response(client):
    """/conf/core/fc-time-response: collections without temporal properties ignore a valid datetime."""
    plain = body(client.get("/collections/etablissements/items"))["numberMatched"]
    dated = body(client.get("/collections/etablissements/items?datetime=2018-02-12T23:20:52Z"))["numberMatched"]
    assert dated == plain


def test_core_feature(client):
    """/conf/core/f-op, f-success, f-links."""
    first = body(client.get("/collections/departements/items?limit=1"))["features"][0]
    response = client.get(f"/collections/departements/items/{first['id']}")
    assert response.content_type == "application/geo+json"
    feature = body(response)
    assert feature["id"] == first["id"] and feature["geometry"]["type"] == "MultiPolygon"
    links = rels(feature["links"])
    assert "self" in links and "alternate" in links and "collection" in links
    assert body(fetch(client, links["collection"][0]["href"]))["id"] == "departements"


def test_core_unknown_parameter_and_values(client):
    """/conf/core/query-param-unknown, /conf/core/query-param-invalid."""
    assert client.get("/collections/etablissements/items?unknown=1").status_code == 400
    assert client.get("/collections/etablissements/items?limit=-1").status_code == 400
    assert client.get("/collections/etablissements/items?bbox=1,2,3").status_code == 400


def test_geojson_and_json_content(client):
    """/conf/geojson/content, /conf/json/definition: JSON resources say so, features are GeoJSON."""
    for url in ("/", "/conformance", "/collections", "/collections/etablissements", "/api",
                "/collections/etablissements/queryables", "/collections/etablissements/items"):
        response = client.get(url)
        assert response.content_type in JSON_TYPES, url
        json.loads(response.get_data(as_text=True))


def test_html_content(client):
    """/conf/html/definition, /conf/html/content: every resource as HTML, by f or by Accept."""
    for url in ("/", "/conformance", "/collections", "/collections/etablissements", "/api",
                "/collections/etablissements/items", "/collections/departements/items/35"):
        response = client.get(url, headers={"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"})
        assert response.content_type == "text/html; charset=utf-8", url
        assert response.get_data(as_text=True).lstrip().startswith("<!doctype html>")


def test_oas30_document_is_complete(client):
    """/conf/oas30/completeness, /conf/oas30/exceptions-codes: every resource and every $ref is there."""
    doc = body(client.get("/api"))
    for path in ("/", "/conformance", "/api", "/collections", "/collections/{collectionId}",
                 "/collections/{collectionId}/items", "/collections/{collectionId}/items/{featureId}",
                 "/collections/{collectionId}/queryables"):
        operation = doc["paths"][path]["get"]
        assert {"200", "400"} <= set(operation["responses"])
    refs = {r for r in _strings(doc, "$ref")}
    for ref in refs:
        node = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
    ids = [op["get"]["operationId"] for op in doc["paths"].values()]
    assert len(ids) == len(set(ids))


def _strings(node, key: str):
    """Every value of `key` in a JSON tree."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from _strings(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item, key)


# --- Part 2: CRS by reference --------------------------------------------------------------------


def test_crs_collections_declare_crs_and_storage_crs(client):
    """/conf/crs/crs-uri, /conf/crs/fc-md-crs-list, /conf/crs/fc-md-storageCrs."""
    doc = body(client.get("/collections"))
    assert crs.CRS84_URI in doc["crs"]
    for collection in doc["collections"]:
        assert collection["storageCrs"] in collection["crs"]
        assert all(value.startswith("http://www.opengis.net/def/crs/") for value in collection["crs"])


@pytest.mark.parametrize("uri", crs.SUPPORTED)
def test_crs_every_listed_crs_is_served_with_its_header(client, uri):
    """/conf/crs/fc-crs-valid-value, /conf/crs/ogc-crs-header: each listed CRS works; the header says which."""
    response = client.get(f"/collections/etablissements/items?limit=2&crs={quote(uri)}")
    assert response.status_code == 200
    assert response.headers["Content-Crs"] == f"<{uri}>"
    single = client.get(f"/collections/departements/items/974?crs={quote(uri)}")
    assert single.headers["Content-Crs"] == f"<{uri}>"


def test_crs_default_is_crs84(client):
    """/conf/crs/fc-crs-default-value."""
    response = client.get("/collections/etablissements/items?limit=1")
    assert response.headers["Content-Crs"] == f"<{crs.CRS84_URI}>"


def test_crs_invalid_value(client):
    """/conf/crs/fc-crs-invalid-value, /conf/crs/fc-bbox-crs-invalid-value."""
    assert client.get("/collections/etablissements/items?crs=EPSG:27700").status_code == 400
    assert client.get("/collections/etablissements/items?bbox=1,2,3,4&bbox-crs=EPSG:27700").status_code == 400


def test_crs_bbox_crs_equivalence(client):
    """/conf/crs/fc-bbox-crs-action: the same area in CRS84 and EPSG:4326 selects the same features."""
    lon_lat = body(client.get("/collections/etablissements/items?limit=1000&bbox=2.3,48.7,2.5,48.8"))
    lat_lon = body(client.get("/collections/etablissements/items?limit=1000&bbox=48.7,2.3,48.8,2.5"
                              f"&bbox-crs={quote(crs.EPSG_URI.format(4326))}"))
    assert lon_lat["features"] and lon_lat["features"] == lat_lon["features"]


# --- Part 3: filtering and queryables ------------------------------------------------------------


def test_queryables_link_and_schema(client):
    """/conf/queryables/get-queryables-uris, /conf/queryables/get-queryables."""
    collection = body(client.get("/collections/etablissements"))
    link = rels(collection["links"])["http://www.opengis.net/def/rel/ogc/1.0/queryables"][0]
    response = fetch(client, link["href"])
    assert response.content_type == "application/schema+json"
    schema = body(response)
    assert schema["$schema"].startswith("https://json-schema.org/") and schema["type"] == "object"
    assert schema["$id"] == link["href"]
    assert all(("type" in p) != ("format" in p) for p in schema["properties"].values())


def test_queryables_as_query_parameters(client):
    """/conf/queryables-query-parameters/parameters: each queryable filters as a parameter."""
    schema = body(client.get("/collections/etablissements/queryables"))
    for name, prop in schema["properties"].items():
        if prop.get("type") == "string":
            first = body(client.get(f"/collections/etablissements/items?limit=1&sortby={name}"))["features"][0]
            value = first["properties"][name]
            found = body(client.get(f"/collections/etablissements/items?limit=1000&{name}={quote(value)}"))
            assert found["features"] and all(f["properties"][name] == value for f in found["features"])


def test_filter_parameters_are_declared(client):
    """/conf/filter/filter-param, filter-lang-param, filter-crs-param (in the API definition)."""
    items = body(client.get("/api"))["paths"]["/collections/{collectionId}/items"]["get"]
    names = {p["name"]: p for p in items["parameters"]}
    assert names["filter-lang"]["schema"]["enum"] == ["cql2-text", "cql2-json"]
    assert "filter" in names and "filter-crs" in names


def test_filter_response(client):
    """/conf/features-filter/response: the filter selects, and the count follows."""
    doc = body(client.get("/collections/etablissements/items?limit=1000&filter=" + quote("type = 'lycee'")))
    assert doc["features"] and all(f["properties"]["type"] == "lycee" for f in doc["features"])
    assert doc["numberMatched"] == doc["numberReturned"] == len(doc["features"])


def test_filter_invalid(client):
    """/conf/filter/filter-lang-default, invalid filter, unknown queryable: 400s."""
    assert client.get("/collections/etablissements/items?filter=type%3D").status_code == 400
    assert client.get("/collections/etablissements/items?filter=nope%3D1").status_code == 400
    assert client.get("/collections/etablissements/items?filter-lang=cql-text&filter=ips>1").status_code == 400


def test_cql2_text_and_json_agree(client):
    """/conf/cql2-text and /conf/cql2-json: the same predicate in both encodings selects the same features."""
    text = "S_INTERSECTS(geometry, BBOX(2.3, 48.7, 2.5, 48.8)) AND effectif BETWEEN 100 AND 900"
    tree = {"op": "and", "args": [
        {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [2.3, 48.7, 2.5, 48.8]}]},
        {"op": "between", "args": [{"property": "effectif"}, 100, 900]},
    ]}
    as_text = body(client.get(f"/collections/etablissements/items?limit=1000&filter={quote(text)}"))
    as_json = body(client.get("/collections/etablissements/items?limit=1000&filter-lang=cql2-json"
                              f"&filter={quote(json.dumps(tree))}"))
    assert as_text["features"] and as_text["features"] == as_json["features"]
    for feature in as_text["features"]:
        assert 100 <= feature["properties"]["effectif"] <= 900
        assert shapely.intersects(shape(feature["geometry"]), box(2.3, 48.7, 2.5, 48.8))
