"""`/search`: what the map's search box asks at each keystroke, answered from the folded-name indexes.

    GET /search?q=ren&limit=8
    {"query": "ren", "results": [{"collection": "communes", "id": "35238", "name": "Rennes",
      "label": "Rennes (35)", "bbox": [west, south, east, north], "href": ".../collections/communes/items/35238"}]}

Results come best first (see `tileserver.core.search`); `q` is 2 to 100 characters.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, jsonify, request

from tileserver.core import search as places
from tileserver.core.errors import BadRequest
from tileserver.web import context, params

blueprint = Blueprint("search", __name__)

MIN_LENGTH, MAX_LENGTH = 2, 100  # characters of `q`, spaces around it aside


@blueprint.get("/search")
def search() -> Response:
    """Schools and territories whose name matches `q`, best first."""
    params.check_known(request.args, ("q", "limit"))
    text = (params.one(request.args, "q") or "").strip()
    if not MIN_LENGTH <= len(text) <= MAX_LENGTH:
        raise BadRequest(f"q must be {MIN_LENGTH} to {MAX_LENGTH} characters long (got {len(text)})")
    limit = params.search_limit(params.one(request.args, "limit"))
    base = context.base_url()
    results = [
        {"collection": hit.collection, "id": hit.id, "name": hit.name, "label": hit.label, "bbox": hit.bbox,
         "href": f"{base}/collections/{hit.collection}/items/{quote(hit.id, safe='')}"}
        for hit in places.search(context.snapshot(), text, limit=limit)
    ]
    return jsonify({"query": text, "results": results})
