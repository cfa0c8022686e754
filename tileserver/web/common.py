"""OGC API - Common: the landing page, the conformance declaration and the API description.

Conformance is gathered from the blueprints: each module that implements a standard lists the
classes it honours in its `CONFORMANCE` tuple, so a declaration never outlives its code.
"""

from __future__ import annotations

import sys

from flask import Blueprint, Response, current_app, jsonify, request

from tileserver.core.links import link
from tileserver.core.media import MediaType
from tileserver.web import context, openapi, pages, params

blueprint = Blueprint("common", __name__)

TITLE = "eCarto : la carte du numérique éducatif"
DESCRIPTION = (
    "Établissements scolaires et territoires (communes, EPCI, départements, académies, régions) "
    "avec leurs indicateurs du numérique éducatif : OGC API - Features et Tiles, cartes et styles."
)
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/landing-page",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
)
JSON_OR_HTML = {"json": MediaType.JSON, "html": MediaType.HTML}
API_FORMATS = {"json": MediaType.OPENAPI, "html": MediaType.HTML}


@blueprint.get("/")
def landing() -> Response:
    """Where a client starts: links to the API description, conformance and data."""
    fmt = _format(JSON_OR_HTML)
    snap = context.store().current()
    layers = [c.id for c in snap.collections()] if snap else []
    links = landing_links(context.base_url(), fmt) + resource_links(context.base_url(), layers)
    body = {"title": TITLE, "description": DESCRIPTION, "links": links}
    return pages.page("landing.html", body, title=TITLE) if fmt == "html" else jsonify(body)


@blueprint.get("/conformance")
def conformance() -> Response:
    """Every conformance class the running app's blueprints declare."""
    fmt = _format(JSON_OR_HTML)
    body = {"conformsTo": declared_conformance()}
    if fmt == "html":
        return pages.page("conformance.html", body, title="Conformité", crumbs=[("", "Conformance")])
    return jsonify(body)


@blueprint.get("/api")
def api() -> Response:
    """The OpenAPI 3.0 description of the whole service (HTML: a readable list of its paths)."""
    fmt = _format(API_FORMATS)
    snap = context.store().current()
    body = openapi.document(context.base_url(), context.settings(), snap.collections() if snap else [], TITLE)
    if fmt == "html":
        return pages.page("api.html", body, title="API", crumbs=[("", "API")])
    response = jsonify(body)
    response.content_type = MediaType.OPENAPI
    return response


def declared_conformance() -> list[str]:
    """The `CONFORMANCE` of every registered blueprint's module, without repeats, in blueprint order."""
    uris: dict[str, None] = {}
    for bp in current_app.blueprints.values():
        uris.update(dict.fromkeys(getattr(sys.modules.get(bp.import_name), "CONFORMANCE", ())))
    return list(uris)


def landing_links(base: str, fmt: str) -> list[dict[str, str]]:
    """The landing page's links, as Part 1 requires them (self, service-desc, service-doc, conformance, data)."""
    entries = [
        (f"{base}/?f=json", "self" if fmt == "json" else "alternate", MediaType.JSON, "This document"),
        (f"{base}/?f=html", "self" if fmt == "html" else "alternate", MediaType.HTML, "This document as HTML"),
        (f"{base}/api", "service-desc", MediaType.OPENAPI, "The API definition (OpenAPI 3.0)"),
        (f"{base}/api?f=html", "service-doc", MediaType.HTML, "The API documentation"),
        (f"{base}/conformance", "conformance", MediaType.JSON, "Conformance classes"),
        (f"{base}/conformance?f=html", "conformance", MediaType.HTML, "Conformance classes as HTML"),
        (f"{base}/collections", "data", MediaType.JSON, "Collections"),
        (f"{base}/collections?f=html", "data", MediaType.HTML, "Collections as HTML"),
        (f"{base}/indicators", "describedby", MediaType.JSON, "Indicator catalogue: sources, licences, vintages"),
        (f"{base}/indicators?f=html", "describedby", MediaType.HTML, "Les indicateurs, leurs sources et millésimes"),
    ]
    return [link(*entry) for entry in entries]


# Every other resource, by the endpoint that serves it: linked only when this app has it.
RESOURCES = (
    ("maps.map_page", "/map", MediaType.HTML, "La carte"),
    ("maps.embed_page", "/embed", MediaType.HTML, "Intégrer la carte dans un autre site"),
    ("maps.label_tilejson", "/map/labels.json", MediaType.JSON, "Tuiles des noms des territoires (TileJSON)"),
    ("styles.styles_list", "/styles", MediaType.JSON, "Styles MapLibre, un par thème"),
    ("tiles.tile_matrix_sets", "/tileMatrixSets", MediaType.JSON, "Grilles de tuiles (OGC API - Tiles)"),
    ("raster.rasters", "/raster", MediaType.JSON, "Couches raster : densités et indicateurs lissés"),
    ("qgis.project", "/qgis/project.qgs", MediaType.QGS, "Projet QGIS de toutes les couches"),
    ("search.search", "/search?q=Rennes", MediaType.JSON, "Recherche d'établissements et de lieux (q=Rennes)"),
    ("versions.versions", "/versions", MediaType.JSON, "Versions publiées et rapports d'ingestion"),
    ("versions.health", "/health", MediaType.JSON, "État du service"),
)


def resource_links(base: str, layers: list[str]) -> list[dict[str, str]]:
    """Links to the map, styles, rasters, QGIS, versions... and the TileJSON of every published layer."""
    served = {rule.endpoint for rule in current_app.url_map.iter_rules()}
    links = [link(f"{base}{path}", "related", media, title)
             for endpoint, path, media, title in RESOURCES if endpoint in served]
    if layers and "tiles.tilejson" in served:
        links.append(link(f"{base}/tiles/{','.join(layers)}.json", "related", MediaType.JSON,
                          "Tuiles vectorielles de toutes les couches (TileJSON)"))
    return links


def _format(offered: dict[str, str]) -> str:
    """The output format of a resource whose only parameter is `f`."""
    params.check_known(request.args, ("f",))
    return params.output_format(params.one(request.args, "f"), request.accept_mimetypes, offered)
