"""OGC API - Features (Parts 1, 2 and 3): collections, their items, one item, and queryables.

Views parse (with `params` and `filters`), ask the request's snapshot, and answer in GeoJSON,
HTML or CSV; a page of items streams from the store's cursor to the client.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain, islice
from typing import Any
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, jsonify, request

from tileserver.core import crs, filtercost, geojson
from tileserver.core.dataset import Field
from tileserver.core.errors import NotFound
from tileserver.core.links import link
from tileserver.core.media import MediaType
from tileserver.core.store import CollectionInfo, Feature, FeatureQuery, Snapshot
from tileserver.web import admission, context, filters, pages, params

blueprint = Blueprint("features", __name__)

CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/accent-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    # Part 9 (Text Search) is a draft (OGC 24-031): `q` on items
    "http://www.opengis.net/spec/ogcapi-features-9/1.0/conf/text-search",
    "http://www.opengis.net/spec/ogcapi-features-9/1.0/conf/features-text-search",
)
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
ITEMS_PARAMETERS = (
    "f", "bbox", "bbox-crs", "crs", "limit", "offset", "datetime", "filter", "filter-lang", "filter-crs",
    "sortby", "properties", "q",
)  # fmt: skip
ITEMS_FORMATS = {"json": MediaType.GEOJSON, "html": MediaType.HTML, "csv": MediaType.CSV}
JSON_OR_HTML = {"json": MediaType.JSON, "html": MediaType.HTML}
GEOJSON_OR_HTML = {"json": MediaType.GEOJSON, "html": MediaType.HTML}
SCHEMA_OR_HTML = {"json": MediaType.SCHEMA, "html": MediaType.HTML}


@dataclass(frozen=True)
class ItemsRequest:
    """A parsed items request: what to read, in which CRS and format."""

    query: FeatureQuery
    crs: crs.Crs
    format: str


@blueprint.get("/collections")
def collections() -> Response:
    """Every collection, with its extent, CRSs and links."""
    fmt = _format(("f",), JSON_OR_HTML)
    infos = context.snapshot().collections()
    body = {
        "links": _self_links("/collections", fmt, "Collections", JSON_OR_HTML),
        "collections": [collection_document(info) for info in infos],
        "crs": list(crs.SUPPORTED),
    }
    if fmt == "html":
        return pages.page("collections.html", body, title="Collections", crumbs=[("", "Collections")])
    return jsonify(body)


@blueprint.get("/collections/<cid>")
def collection(cid: str) -> Response:
    """One collection's description."""
    fmt = _format(("f",), JSON_OR_HTML)
    info = context.snapshot().collection(cid)
    body = collection_document(info, fmt)
    if fmt == "html":
        return pages.page("collection.html", body, title=info.title, crumbs=pages.collection_crumbs(info))
    return jsonify(body)


@blueprint.get("/collections/<cid>/queryables")
def queryables(cid: str) -> Response:
    """The properties a filter may use, as a JSON Schema."""
    fmt = _format(("f",), SCHEMA_OR_HTML)
    snap = context.snapshot()
    info = snap.collection(cid)
    body = queryables_document(info, snap.catalogue())
    if fmt == "html":
        crumbs = [*pages.collection_crumbs(info), ("", "Queryables")]
        return pages.page("queryables.html", body, title=f"{info.title}: queryables", crumbs=crumbs, collection=info.id)
    return _json(body, MediaType.SCHEMA)


@blueprint.get("/collections/<cid>/items")
def items(cid: str) -> Response:
    """A page of features, filtered, sorted and reprojected as asked; streamed."""
    snap = context.snapshot()
    info = snap.collection(cid)
    expensive = "filter" in request.args or "bbox-crs" in request.args  # parsing a long filter costs too
    return admission.admitted(lambda: items_page(snap, info), expensive=expensive)


def items_page(snap: Snapshot, info: CollectionInfo) -> Response:
    """The response to an items request: parsed, the query run, its page streamed."""
    parsed = parse_items(info)
    page = snap.query(parsed.query)
    return items_response(info, parsed, page.features, page.matched)


@blueprint.get("/collections/<cid>/items/<fid>")
def item(cid: str, fid: str) -> Response:
    """One feature, by its key."""
    params.check_known(request.args, ("f", "crs"))
    fmt = params.output_format(params.one(request.args, "f"), request.accept_mimetypes, GEOJSON_OR_HTML)
    target = params.crs(params.one(request.args, "crs"))
    snap = context.snapshot()
    info = snap.collection(cid)
    feature = snap.get(info.id, fid)
    if feature is None:
        raise NotFound(f"collection {info.id!r} has no feature {fid[:100]!r}")
    return item_response(info, feature, target, fmt)


def parse_items(info: CollectionInfo) -> ItemsRequest:
    """Every parameter of an items request, checked; unknown names that are not properties are a 400."""
    args, settings = request.args, context.settings()
    one = lambda name: params.one(args, name)  # noqa: E731
    equals = params.equals(args, info, ITEMS_PARAMETERS)
    fmt = params.output_format(one("f"), request.accept_mimetypes, ITEMS_FORMATS)
    params.datetime_(one("datetime"))
    text, box = one("filter"), params.bbox(one("bbox"), params.crs(one("bbox-crs")))
    lang, filter_crs = filters.language(one("filter-lang")), params.crs(one("filter-crs"))
    condition = None if text is None else filters.parse(
        text, lang, filter_crs, max_length=settings.max_filter_length, max_depth=settings.max_filter_depth
    )
    if box is not None and box.outline is not None:
        condition = filters.intersecting(condition, box.outline)
    filtercost.check(condition, info, settings.max_filter_cost, indexed=info.searchable)
    query = FeatureQuery(
        collection=info.id,
        bbox=box.envelope if box and box.outline is None else None,  # an outline filter is tested already
        equals=equals,
        filter=condition,
        properties=params.properties(one("properties"), info),
        sortby=params.sortby(one("sortby"), info),
        q=params.text_search(one("q")),
        limit=params.limit(one("limit"), settings),
        offset=params.offset(one("offset")),
    )
    return ItemsRequest(query, params.crs(one("crs")), fmt)


def items_response(
    info: CollectionInfo, parsed: ItemsRequest, features: Iterator[Feature], matched: int | None
) -> Response:
    """The page in the asked format; the first feature is read now, so a failing query gets an error status."""
    first = list(islice(features, 1))
    stream = chain(first, features)
    q = parsed.query
    pager = Pager(
        f"{context.base_url()}/collections/{info.id}/items",
        [(k, v) for k, v in request.args.items(multi=True) if k not in ("f", "offset")],
        q.offset, q.limit, matched,
    )
    if parsed.format == "html":
        page = list(stream)
        return pages.items_page(info, page, matched, pager.links(len(page), "html"), q.offset)
    headers = {"Content-Crs": parsed.crs.header}
    fields = returned_fields(info, q.properties)
    if parsed.format == "csv":
        headers["Content-Disposition"] = f'inline; filename="{info.id}.csv"'
        rows = geojson.csv_rows(stream, parsed.crs, [f.name for f in fields])
        return Response(rows, content_type=MediaType.CSV, headers=headers)
    head: dict[str, Any] = {"numberMatched": matched} if matched is not None else {}
    head["timeStamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    up = _collection_link(info)  # the tail runs after the view returned: nothing in it may touch the request

    def tail(count: int) -> dict[str, Any]:
        return {"numberReturned": count, "links": [*pager.links(count, "json"), up]}

    body = geojson.feature_collection(stream, parsed.crs, fields, head, tail)
    return Response(body, content_type=MediaType.GEOJSON, headers=headers)


def returned_fields(info: CollectionInfo, names: tuple[str, ...] | None) -> list[Field]:
    """The fields a page carries: all, or the requested ones in the requested order (the key included)."""
    if names is None:
        return list(info.fields)
    return [info.field(name) or Field(name, "string") for name in names]


@dataclass(frozen=True)
class Pager:
    """The links of a page of items: itself in each format, and its neighbours."""

    path: str
    args: list[tuple[str, str]]  # the request's query, less `f` and `offset`
    offset: int
    limit: int
    matched: int | None

    def href(self, offset: int, fmt: str) -> str:
        """The URL of the page starting at `offset`, in format `fmt`."""
        query = [*self.args, *([("offset", str(offset))] if offset else []), ("f", fmt)]
        return f"{self.path}?{urlencode(query)}"

    def links(self, count: int, fmt: str) -> list[dict[str, str]]:
        """Self and alternates, `next` unless this is the last page, `prev` unless the first.

        >>> p = Pager("/items", [("limit", "2")], 2, 2, 5)
        >>> [(link["rel"], link["href"]) for link in p.links(2, "json") if "json" in link["type"]]
        [('self', '/items?limit=2&offset=2&f=json'), ('next', '/items?limit=2&offset=4&f=json'), \
('prev', '/items?limit=2&f=json')]
        """
        links = [
            link(self.href(self.offset, name), "self" if name == fmt else "alternate", media, f"This page as {name}")
            for name, media in (("json", MediaType.GEOJSON), ("html", MediaType.HTML), ("csv", MediaType.CSV))
        ]
        media = ITEMS_FORMATS[fmt]
        more = count == self.limit if self.matched is None else self.offset + count < self.matched
        if more:
            links.append(link(self.href(self.offset + self.limit, fmt), "next", media, "Next page"))
        if self.offset > 0:
            links.append(link(self.href(max(0, self.offset - self.limit), fmt), "prev", media, "Previous page"))
        return links


def item_response(info: CollectionInfo, feature: Feature, target: crs.Crs, fmt: str) -> Response:
    """One feature as GeoJSON (with its links) or HTML."""
    href = f"{context.base_url()}/collections/{info.id}/items/{quote(feature.id, safe='')}"
    links = [
        link(f"{href}?f=json", "self" if fmt == "json" else "alternate", MediaType.GEOJSON, "This feature"),
        link(f"{href}?f=html", "self" if fmt == "html" else "alternate", MediaType.HTML, "This feature as HTML"),
        _collection_link(info),
    ]
    if fmt == "html":
        return pages.item_page(info, feature, links)
    text = geojson.feature_document(feature, target, links)
    return Response(text, content_type=MediaType.GEOJSON, headers={"Content-Crs": target.header})


def collection_document(info: CollectionInfo, fmt: str = "json") -> dict[str, Any]:
    """A collection as `/collections` and `/collections/{id}` describe it."""
    path = f"/collections/{info.id}"
    base = context.base_url()
    return {
        "id": info.id,
        "title": info.title,
        "description": info.description,
        "itemType": "feature",
        "links": [
            *_self_links(path, fmt, info.title, JSON_OR_HTML),
            link(f"{base}{path}/items?f=json", "items", MediaType.GEOJSON, "Features as GeoJSON"),
            link(f"{base}{path}/items?f=html", "items", MediaType.HTML, "Features as HTML"),
            link(f"{base}{path}/items?f=csv", "items", MediaType.CSV, "Features as CSV"),
            link(f"{base}{path}/queryables", QUERYABLES_REL, MediaType.SCHEMA, "Queryables"),
        ],
        "extent": {"spatial": {"bbox": [list(info.extent)], "crs": crs.CRS84_URI}},
        "crs": list(crs.SUPPORTED),
        "storageCrs": crs.CRS84_URI,
        "geometryType": info.geometry_type,
        "featureCount": info.count,
    }


def queryables_document(info: CollectionInfo, catalogue: Sequence[Mapping] = ()) -> dict[str, Any]:
    """The collection's queryables as a JSON Schema: the geometry, then each property.

    An indicator's property also says where it comes from (`x-ecarto-producer`, `-source-url`,
    `-licence`, `-vintage`, ...), as `/indicators` does.
    """
    indicators = {entry["id"]: entry for entry in catalogue}
    types = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}
    properties: dict[str, Any] = {
        "geometry": {"title": "Geometry", "format": f"geometry-{info.geometry_type.lower()}"},
    }
    fields = info.fields if info.field(info.key) else (Field(info.key, "string"), *info.fields)
    for field in fields:
        schema: dict[str, Any] = {"type": types[field.type], "title": field.title or field.name}
        if field.description:
            schema["description"] = field.description
        if field.unit:
            schema["x-ogc-unit"] = field.unit
        if field.name in indicators:
            schema.update(indicator_annotations(indicators[field.name]))
        properties[field.name] = schema
    return {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": f"{context.base_url()}/collections/{info.id}/queryables",
        "type": "object",
        "title": info.title,
        "properties": properties,
        "additionalProperties": False,
    }


def indicator_annotations(entry: Mapping) -> dict[str, Any]:
    """The catalogue metadata of an indicator, as `x-ecarto-*` keywords of its property schema.

    >>> indicator_annotations({"id": "ftth", "producer": "Arcep", "vintage": "2025-09-30"})
    {'x-ecarto-indicator': 'ftth', 'x-ecarto-producer': 'Arcep', 'x-ecarto-vintage': '2025-09-30'}
    """
    keys = ("theme", "producer", "source_url", "licence", "vintage", "main")
    found = {f"x-ecarto-{key.replace('_', '-')}": entry[key] for key in keys if entry.get(key) not in (None, "")}
    return {"x-ecarto-indicator": entry["id"], **found}


def _format(allowed: tuple[str, ...], offered: dict[str, str]) -> str:
    """The output format of a resource whose only parameters are `allowed`."""
    params.check_known(request.args, allowed)
    return params.output_format(params.one(request.args, "f"), request.accept_mimetypes, offered)


def _self_links(path: str, fmt: str, title: str, offered: dict[str, str]) -> list[dict[str, str]]:
    """A resource's `self` link and an `alternate` per other format."""
    base = context.base_url()
    return [
        link(f"{base}{path}?f={name}", "self" if name == fmt else "alternate", media, f"{title} as {name}")
        for name, media in offered.items()
    ]


def _collection_link(info: CollectionInfo) -> dict[str, str]:
    return link(f"{context.base_url()}/collections/{info.id}", "collection", MediaType.JSON, info.title)


def _json(body: dict[str, Any], media: str) -> Response:
    """A JSON body with a media type of its own (JSON Schema, OpenAPI)."""
    response = jsonify(body)
    response.content_type = media
    return response
