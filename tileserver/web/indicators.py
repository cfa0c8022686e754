"""`/indicators`: the indicator catalogue of the served version, with source, licence and vintage.

The map, the sheets, legends and QGIS files credit each indicator's producer and say its date;
this is where a person or a client reads them. The entries are the version's catalogue
(`Indicator.to_dict()` of the ingest), with the collections that carry each indicator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask import Blueprint, Response, jsonify, request

from tileserver.core.media import MediaType
from tileserver.core.store import CollectionInfo
from tileserver.web import context, pages, params

blueprint = Blueprint("indicators", __name__)

JSON_OR_HTML = {"json": MediaType.JSON, "html": MediaType.HTML}
# The catalogue keys an entry of `/indicators` carries, in this order (other engineers read them).
KEYS = ("id", "theme", "label", "description", "unit", "kind", "aggregate", "level", "applies_to",
        "producer", "source_url", "licence", "vintage", "main", "breaks")


@blueprint.get("/indicators")
def indicators() -> Response:
    """Every indicator of the current version, with what it means and where it comes from."""
    params.check_known(request.args, ("f",))
    fmt = params.output_format(params.one(request.args, "f"), request.accept_mimetypes, JSON_OR_HTML)
    snap = context.snapshot()
    body = {"version": snap.version.id, "indicators": catalogue_entries(snap.catalogue(), snap.collections()),
            "links": _links(fmt)}
    if fmt == "html":
        return pages.page("indicators.html", body, title="Indicateurs", crumbs=[("", "Indicateurs")])
    return jsonify(body)


def catalogue_entries(catalogue: Sequence[Mapping], collections: Sequence[CollectionInfo]) -> list[dict[str, Any]]:
    """The catalogue's entries, each with `title` and the collections (`levels`) that carry it."""
    entries = []
    for entry in catalogue:
        out = {key: entry.get(key, "") for key in KEYS}
        out["title"] = entry.get("label", entry["id"])
        out["levels"] = [c.id for c in collections if c.field(entry["id"]) is not None]
        entries.append(out)
    return entries


def _links(fmt: str) -> list[dict[str, str]]:
    base = context.base_url()
    return [
        {"href": f"{base}/indicators?f=json", "rel": "self" if fmt == "json" else "alternate",
         "type": MediaType.JSON, "title": "Indicator catalogue"},
        {"href": f"{base}/indicators?f=html", "rel": "self" if fmt == "html" else "alternate",
         "type": MediaType.HTML, "title": "Indicator catalogue as HTML"},
    ]
