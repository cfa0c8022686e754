"""The OpenAPI 3.0 description of the whole service: features, tiles, raster, styles and maps.

Built per request from the settings and the served version (collection ids and their properties
become enums), so a client or a fuzzer reading it knows every value the server accepts.
"""

from __future__ import annotations

from typing import Any

from tileserver.core import crs
from tileserver.core.media import MediaType
from tileserver.core.settings import Settings
from tileserver.core.store import TERRITORY_FILTERS, CollectionInfo

Schema = dict[str, Any]

ERRORS = {"400": "Invalid parameter", "404": "Not found", "406": "Not acceptable", "414": "Query string too long",
          "503": "No data version served"}
_EXCEPTION = {"$ref": "#/components/schemas/exception"}


def document(base: str, settings: Settings, collections: list[CollectionInfo], title: str) -> Schema:
    """The OpenAPI document of the service at `base`."""
    ids = [c.id for c in collections] or None
    properties = sorted({f.name for c in collections for f in c.fields})
    paths: dict[str, Any] = {}
    parts = (_common_paths(), _feature_paths(ids, properties, settings),
             *(_collection_items(c, settings) for c in collections), _tile_paths(ids), _raster_paths(), _other_paths())
    for part in parts:
        paths.update(part)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": "1.0.0",
            "description": "OGC API - Features (Parts 1, 2, 3), OGC API - Tiles, vector and raster tiles, "
            "MapLibre styles and maps of digital education in French schools.",
            "license": {"name": "Licence Ouverte 2.0 (data), MIT (code)"},
        },
        "servers": [{"url": base or "/"}],
        "paths": paths,
        "components": {"schemas": _schemas()},
    }


def _op(summary: str, operation_id: str, parameters: list[Schema], responses: Schema, tag: str) -> Schema:
    """One GET operation, with the error responses every route can give."""
    errors = {code: _response(text, {MediaType.JSON: _EXCEPTION}) for code, text in ERRORS.items()}
    return {"get": {"summary": summary, "operationId": operation_id, "tags": [tag], "parameters": parameters,
                    "responses": {**responses, **errors}}}


def _response(description: str, content: dict[str, Schema], headers: Schema | None = None) -> Schema:
    """A response with its media types (and headers)."""
    body: Schema = {"description": description, "content": {str(m): {"schema": s} for m, s in content.items()}}
    if headers:
        body["headers"] = headers
    return body


def _query(name: str, schema: Schema, description: str, **extra: Any) -> Schema:
    """A query parameter (form style, not exploded, so lists are comma-separated)."""
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description,
            "style": "form", "explode": False, **extra}


def _path(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def _f(*formats: str) -> Schema:
    return _query("f", {"type": "string", "enum": list(formats)}, "Output format (else content negotiation)")


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_html(description: str, schema: Schema, media: str = MediaType.JSON) -> Schema:
    return {"200": _response(description, {media: schema, MediaType.HTML: {"type": "string"}})}


def _common_paths() -> Schema:
    return {
        "/": _op("Landing page", "getLandingPage", [_f("json", "html")],
                 _json_html("Links to the API, conformance and data", _ref("landingPage")), "Common"),
        "/conformance": _op("Conformance classes", "getConformance", [_f("json", "html")],
                            _json_html("The conformance classes implemented", _ref("confClasses")), "Common"),
        "/api": _op("This API description", "getApi", [_f("json", "html")],
                    _json_html("OpenAPI 3.0", {"type": "object"}, MediaType.OPENAPI), "Common"),
        "/versions": _op("Published data versions", "getVersions", [],
                         {"200": _response("Versions with ingest reports", {MediaType.JSON: {"type": "object"}})},
                         "Common"),
        "/indicators": _op("Indicator catalogue", "getIndicators", [_f("json", "html")],
                           _json_html("Each indicator's definition, unit, levels, producer, source, licence "
                                      "and vintage", {"type": "object"}), "Common"),
        "/health": _op("Health", "getHealth", [],
                       {"200": _response("A version is served", {MediaType.JSON: {"type": "object"}})}, "Common"),
        "/search": _op("Schools and territories by name, best first (the map's search box)", "search", [
            _query("q", {"type": "string", "minLength": 2, "maxLength": 100},
                   "What was typed: comma-separated terms, compared without case, accents or punctuation",
                   required=True),
            _query("limit", {"type": "integer", "minimum": 1, "maximum": 50, "default": 8}, "Results at most")],
            {"200": _response("Matches, best first: whole name, start, start of a word, anywhere; territories "
                              "before schools, larger first", {MediaType.JSON: _ref("searchResults")})}, "Common"),
    }


def _feature_parameters(properties: list[str], settings: Settings) -> list[Schema]:
    """The query parameters of `/collections/{collectionId}/items`."""
    crs_enum = {"type": "string", "format": "uri", "enum": list(crs.SUPPORTED)}
    return [
        _f("json", "html", "csv"),
        _query("limit", {"type": "integer", "minimum": 1, "maximum": settings.max_limit,
                         "default": settings.default_limit}, "Features per page"),
        _query("offset", {"type": "integer", "minimum": 0, "default": 0}, "Matching features to skip"),
        _query("bbox", {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
               "Only features that intersect the box: west,south,east,north (axis order of bbox-crs)"),
        _query("bbox-crs", crs_enum, "CRS of bbox (default CRS84)"),
        _query("crs", crs_enum, "CRS of the returned geometries (default CRS84)"),
        _query("datetime", {"type": "string"},
               "RFC 3339 instant or interval; validated, no collection has a temporal property yet"),
        _query("filter", {"type": "string", "maxLength": settings.max_filter_length}, "A CQL2 filter"),
        _query("filter-lang", {"type": "string", "enum": ["cql2-text", "cql2-json"], "default": "cql2-text"},
               "Language of filter"),
        _query("filter-crs", crs_enum, "CRS of the geometries in filter (default CRS84)"),
        _query("sortby", {"type": "array", "items": {"type": "string", "pattern": "^[+-]?[A-Za-z_][A-Za-z0-9_]*$"}},
               "Properties to sort by, prefixed by - for descending"),
        _query("properties", {"type": "array", "items": {"type": "string", "enum": properties} if properties
                              else {"type": "string"}}, "Properties to return"),
        _query("q", {"type": "array", "items": {"type": "string"}},
               "Text search (OGC API - Features - Part 9): comma-separated terms, any of which may match; the words "
               "of a term in that order. Names (and a school's commune) are compared without case, accents or "
               "punctuation. Without sortby, the best matches come first: whole name, start, start of a word, "
               "anywhere, then larger features first"),
    ]


def _feature_paths(ids: list[str] | None, properties: list[str], settings: Settings) -> Schema:
    collection = _path("collectionId", {"type": "string", **({"enum": ids} if ids else {})}, "A collection")
    feature = _path("featureId", {"type": "string"}, "A feature's key (UAI or official code)")
    geojson_headers = {"Content-Crs": {"schema": {"type": "string"}, "description": "CRS of the geometries"}}
    items = _op("Features of a collection", "getFeatures", [collection, *_feature_parameters(properties, settings)],
                {"200": _response("A page of features", {
                    MediaType.GEOJSON: _ref("featureCollectionGeoJSON"), MediaType.HTML: {"type": "string"},
                    MediaType.CSV: {"type": "string"}}, geojson_headers)}, "Features")
    items["get"]["description"] = "Any other query parameter named after a property filters on equality."
    return {
        "/collections": _op("Collections", "getCollections", [_f("json", "html")],
                            _json_html("Every collection", _ref("collections")), "Features"),
        "/collections/{collectionId}": _op("A collection", "describeCollection", [collection, _f("json", "html")],
                                           _json_html("The collection", _ref("collection")), "Features"),
        "/collections/{collectionId}/queryables": _op(
            "Queryables of a collection", "getQueryables", [collection, _f("json", "html")],
            _json_html("A JSON Schema of the queryables", {"type": "object"}, MediaType.SCHEMA), "Features"),
        "/collections/{collectionId}/items": items,
        "/collections/{collectionId}/items/{featureId}": _op(
            "One feature", "getFeature",
            [collection, feature, _f("json", "html"), _query("crs", {"type": "string", "enum": list(crs.SUPPORTED)},
                                                              "CRS of the returned geometry")],
            {"200": _response("The feature", {MediaType.GEOJSON: _ref("featureGeoJSON"),
                                              MediaType.HTML: {"type": "string"}}, geojson_headers)}, "Features"),
    }


def _collection_items(info: CollectionInfo, settings: Settings) -> Schema:
    """The items path of one collection, with a query parameter per property (equality filters).

    Clients such as GDAL read these to know which of their attribute filters the server can apply.
    """
    types = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}
    properties = [
        _query(f.name, {"type": types[f.type]}, f"Only features whose {f.name} equals this value (repeat for OR)",
               explode=True)
        for f in info.fields
    ]
    operation = _op(f"Features of {info.title}", f"getFeatures_{info.id}",
                    [*_feature_parameters([f.name for f in info.fields], settings), *properties],
                    {"200": _response("A page of features", {
                        MediaType.GEOJSON: _ref("featureCollectionGeoJSON"), MediaType.HTML: {"type": "string"},
                        MediaType.CSV: {"type": "string"}})}, "Features")
    return {f"/collections/{info.id}/items": operation}


def _tile_paths(ids: list[str] | None) -> Schema:
    z = _path("z", {"type": "integer", "minimum": 0, "maximum": 24}, "Zoom level")
    x = _path("x", {"type": "integer", "minimum": 0}, "Column")
    y = _path("y", {"type": "integer", "minimum": 0}, "Row")
    layers = _path("layers", {"type": "string", "pattern": "^[a-z_]+(,[a-z_]+)*$"},
                   "Comma-separated collections, e.g. etablissements,departements")
    collection = _path("collectionId", {"type": "string", **({"enum": ids} if ids else {})}, "A collection")
    matrix_set = _path("tileMatrixSetId", {"type": "string", "enum": ["WebMercatorQuad"]}, "Tile matrix set")
    row, col = (_path(n, {"type": "integer", "minimum": 0}, d) for n, d in (("tileRow", "Row"), ("tileCol", "Column")))
    matrix = _path("tileMatrix", {"type": "string", "pattern": "^[0-9]+$"}, "Zoom level")
    words = {"type": "string", "pattern": "^[a-z0-9_-]{1,40}(,[a-z0-9_-]{1,40})*$"}
    school_filters = [
        _query("type", words, "School types to keep, comma-separated (ecole, college, lycee...)"),
        _query("statut", {**words, "pattern": "^(public|prive)(,(public|prive))*$"}, "School status to keep"),
        *(_query(name, {"type": "string", "pattern": "^[0-9A-Za-z]{1,12}$"},
                 f"Keep the schools of one territory: its code ({name})") for name in TERRITORY_FILTERS),
    ]
    version = _query("v", {"type": "string"}, "Data version the client expects (cache busting)")
    mvt = {"200": _response("A Mapbox Vector Tile", {MediaType.MVT: {"type": "string", "format": "binary"}}),
           "204": {"description": "An empty tile"}, "304": {"description": "Not modified (ETag)"}}
    json_ok = _json_ok
    return {
        "/tiles/{layers}/{z}/{x}/{y}.mvt": _op("Vector tile of some layers", "getVectorTile",
                                               [layers, z, x, y, version, *school_filters], mvt, "Tiles"),
        "/tiles/{layers}.json": _op("TileJSON of some layers", "getTileJSON", [layers, *school_filters],
                                    json_ok("TileJSON 3.0"), "Tiles"),
        "/map/labels/{z}/{x}/{y}.mvt": _op("Territory names: one point per territory, a layer per level",
                                           "getLabelTile", [z, x, y], mvt, "Maps"),
        "/map/labels.json": _op("TileJSON of the territory names", "getLabelTileJSON", [], json_ok("TileJSON 3.0"),
                                "Maps"),
        "/tileMatrixSets": _op("Tile matrix sets", "getTileMatrixSets", [_f("json")], json_ok("Tile matrix sets"),
                               "Tiles"),
        "/tileMatrixSets/{tileMatrixSetId}": _op("A tile matrix set", "getTileMatrixSet", [matrix_set, _f("json")],
                                                 json_ok("The tile matrix set"), "Tiles"),
        "/collections/{collectionId}/tiles": _op("Tilesets of a collection", "getCollectionTileSets",
                                                 [collection, _f("json")], json_ok("Tileset list"), "Tiles"),
        "/collections/{collectionId}/tiles/{tileMatrixSetId}": _op(
            "A tileset of a collection", "getCollectionTileSet", [collection, matrix_set, _f("json"),
                                                                  *school_filters],
            json_ok("Tileset metadata"), "Tiles"),
        "/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": _op(
            "A vector tile of a collection", "getCollectionTile", [collection, matrix_set, matrix, row, col,
                                                                  version, *school_filters], mvt, "Tiles"),
    }


def _json_ok(text: str) -> Schema:
    return {"200": _response(text, {MediaType.JSON: {"type": "object"}})}


def _raster_paths() -> Schema:
    raster = _path("rasterId", {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9_.-]*$"}, "A raster layer")
    z, x, y = (_path(n, {"type": "integer", "minimum": 0}, n) for n in ("z", "x", "y"))
    matrix_set = _path("tileMatrixSetId", {"type": "string", "enum": ["WebMercatorQuad"]}, "Tile matrix set")
    matrix = _path("tileMatrix", {"type": "string", "pattern": "^[0-9]+$"}, "Zoom level")
    row, col = (_path(n, {"type": "integer", "minimum": 0}, n) for n in ("tileRow", "tileCol"))
    style = [_query("colormap", {"type": "string"}, "Colour map name (viridis, magma...)"),
             _query("rescale", {"type": "string", "pattern": "^-?[0-9.]+,-?[0-9.]+$"}, "min,max of the colour ramp")]
    image = lambda media, text: {"200": _response(text, {media: {"type": "string", "format": "binary"}}),  # noqa: E731
                                 "204": {"description": "An empty tile"}}
    lonlat = [_query("lon", {"type": "number", "minimum": -180, "maximum": 180}, "Longitude", required=True),
              _query("lat", {"type": "number", "minimum": -90, "maximum": 90}, "Latitude", required=True)]
    return {
        "/raster": _op("Raster layers", "getRasters", [], _json_ok("Raster layers"), "Raster"),
        "/raster/{rasterId}/{z}/{x}/{y}.png": _op("A raster tile (PNG)", "getRasterTilePng",
                                                  [raster, z, x, y, *style], image(MediaType.PNG, "A PNG tile"),
                                                  "Raster"),
        "/raster/{rasterId}/{z}/{x}/{y}.webp": _op("A raster tile (WebP)", "getRasterTileWebp",
                                                   [raster, z, x, y, *style], image(MediaType.WEBP, "A WebP tile"),
                                                   "Raster"),
        "/raster/{rasterId}.json": _op("TileJSON of a raster", "getRasterTileJSON", [raster, *style],
                                       _json_ok("TileJSON"), "Raster"),
        "/raster/{rasterId}/point": _op("Raster value at a point", "getRasterPoint", [raster, *lonlat],
                                        _json_ok("The value"), "Raster"),
        "/raster/{rasterId}/legend.png": _op("Legend of a raster", "getRasterLegend", [raster, *style],
                                             image(MediaType.PNG, "The legend"), "Raster"),
        "/raster/{rasterId}/tiles": _op("Tilesets of a raster", "getRasterTileSets", [raster, _f("json")],
                                        _json_ok("Tileset list"), "Raster"),
        "/raster/{rasterId}/tiles/{tileMatrixSetId}": _op("A tileset of a raster", "getRasterTileSet",
                                                          [raster, matrix_set, _f("json")],
                                                          _json_ok("Tileset metadata"), "Raster"),
        "/raster/{rasterId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": _op(
            "A raster tile (OGC API - Tiles)", "getRasterOgcTile",
            [raster, matrix_set, matrix, row, col, _f("png", "webp"), *style],
            {"200": _response("A tile", {MediaType.PNG: {"type": "string", "format": "binary"},
                                         MediaType.WEBP: {"type": "string", "format": "binary"}}),
             "204": {"description": "An empty tile"}}, "Raster"),
    }


def _other_paths() -> Schema:
    style = _path("styleId", {"type": "string"}, "A style")
    html_ok = lambda text: {"200": _response(text, {MediaType.HTML: {"type": "string"}})}  # noqa: E731
    return {
        "/styles": _op("Map styles", "getStyles", [], _json_ok("Style list"), "Styles"),
        "/styles/{styleId}": _op("A MapLibre style", "getStyle", [
            style, _query("indicator", {"type": "string"}, "Indicator to colour by"),
            _query("level", {"type": "string"}, "Territory level (default: by zoom)"),
            _query("classes", {"type": "string", "enum": ["donnees", "catalogue"]},
                   "Class limits: computed per level from the data (default), or the catalogue's fixed ones")],
            _json_ok("MapLibre style JSON"), "Styles"),
        "/map": _op("The interactive map", "getMap", [], html_ok("The map page"), "Maps"),
        "/embed": _op("The map, for embedding", "getEmbed", [], html_ok("The embeddable map"), "Maps"),
        "/fiche/{collectionId}/{featureId}": _op(
            "The sheet of a school or territory", "getSheet",
            [_path("collectionId", {"type": "string"}, "A collection"),
             _path("featureId", {"type": "string"}, "A feature's key"),
             _query("partial", {"type": "string", "enum": ["1"]}, "Only the sheet's body, for the map's panel")],
            html_ok("The sheet"), "Maps"),
        "/qgis/project.qgs": _op("QGIS project", "getQgisProject", [], {"200": _response(
            "A QGIS project", {"application/x-qgis-project": {"type": "string"}})}, "Maps"),
        "/qgis/{styleId}.qlr": _op("QGIS layer definition", "getQgisLayer", [style],
                                   {"200": _response("A QGIS layer file", {MediaType.QLR: {"type": "string"}})},
                                   "Maps"),
        "/qgis/{styleId}.qml": _op("QGIS style of a vector tile layer", "getQgisStyle", [style], {"200": _response(
            "A QGIS style file", {"application/x-qgis-style": {"type": "string"}})}, "Maps"),
    }


def _schemas() -> Schema:
    link = {"type": "object", "required": ["href"], "properties": {
        "href": {"type": "string"}, "rel": {"type": "string"}, "type": {"type": "string"},
        "title": {"type": "string"}}}
    links = {"type": "array", "items": _ref("link")}
    geometry = {"type": "object", "nullable": True, "required": ["type"], "properties": {"type": {"type": "string"}}}
    feature = {"type": "object", "required": ["type", "geometry", "properties"], "properties": {
        "type": {"type": "string", "enum": ["Feature"]}, "id": {"type": "string"}, "geometry": geometry,
        "properties": {"type": "object", "nullable": True}, "links": links}}
    extent = {"type": "object", "properties": {"spatial": {"type": "object", "properties": {
        "bbox": {"type": "array", "items": {"type": "array", "minItems": 4, "maxItems": 6,
                                            "items": {"type": "number"}}},
        "crs": {"type": "string"}}}}}
    collection = {"type": "object", "required": ["id", "links"], "properties": {
        "id": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"}, "links": links,
        "extent": extent, "itemType": {"type": "string"}, "crs": {"type": "array", "items": {"type": "string"}},
        "storageCrs": {"type": "string"}}}
    result = {"type": "object", "required": ["collection", "id", "name", "label", "bbox", "href"], "properties": {
        "collection": {"type": "string"}, "id": {"type": "string"}, "name": {"type": "string"},
        "label": {"type": "string"}, "href": {"type": "string"},
        "bbox": {"type": "array", "nullable": True, "minItems": 4, "maxItems": 4, "items": {"type": "number"}}}}
    return {
        "searchResults": {"type": "object", "required": ["query", "results"], "properties": {
            "query": {"type": "string"}, "results": {"type": "array", "items": result}}},
        "exception": {"type": "object", "required": ["code"], "properties": {
            "code": {"type": "string"}, "description": {"type": "string"}}},
        "link": link,
        "landingPage": {"type": "object", "required": ["links"], "properties": {
            "title": {"type": "string"}, "description": {"type": "string"}, "links": links}},
        "confClasses": {"type": "object", "required": ["conformsTo"], "properties": {
            "conformsTo": {"type": "array", "items": {"type": "string"}}}},
        "collection": collection,
        "collections": {"type": "object", "required": ["links", "collections"], "properties": {
            "links": links, "collections": {"type": "array", "items": _ref("collection")},
            "crs": {"type": "array", "items": {"type": "string"}}}},
        "featureGeoJSON": feature,
        "featureCollectionGeoJSON": {"type": "object", "required": ["type", "features"], "properties": {
            "type": {"type": "string", "enum": ["FeatureCollection"]},
            "features": {"type": "array", "items": _ref("featureGeoJSON")}, "links": links,
            "timeStamp": {"type": "string", "format": "date-time"},
            "numberMatched": {"type": "integer", "minimum": 0}, "numberReturned": {"type": "integer", "minimum": 0}}},
    }
