"""Media types and OGC conformance URIs, named once."""

from __future__ import annotations

from enum import StrEnum


class MediaType(StrEnum):
    """Every content type the server produces."""

    JSON = "application/json"
    GEOJSON = "application/geo+json"
    HTML = "text/html; charset=utf-8"
    CSV = "text/csv; charset=utf-8"
    MVT = "application/vnd.mapbox-vector-tile"
    PNG = "image/png"
    WEBP = "image/webp"
    OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
    SCHEMA = "application/schema+json"
    PROBLEM = "application/json"
    XML = "application/xml"
    QLR = "application/x-qgis-layer-definition"
    QGS = "application/x-qgis-project"
