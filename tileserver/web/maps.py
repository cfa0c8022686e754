"""What people look at: the map page (`/map`, `?embed=1` for iframes), `/embed`, and MapLibre itself.

MapLibre GL JS is served by this app, never from a CDN, so the map works on a network without the
internet. Its files are vendored in `static/vendor/maplibre-gl/` (package data, BSD-3-Clause with its
LICENSE.txt), copied from the npm package by `make vendor`; a test checks they match `node_modules`.
Territory names come from label tiles (`/map/labels/{z}/{x}/{y}.mvt`): one point per territory, so a
name shows once per view.
"""

from __future__ import annotations

import threading
from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify, render_template, request, send_from_directory

from styles.catalogue import LEVEL_TITLES, style_ids, title
from styles.maplibre import TYPE_TITLES, is_raster_template
from tileserver.core import labels
from tileserver.core.errors import NotFound
from tileserver.core.media import MediaType
from tileserver.core.store import FeatureQuery, Snapshot
from tileserver.web import context
from tileserver.web.cache import prepare, tile_response
from tileserver.web.styles import style_source
from tileserver.web.tiles import parse_tile

blueprint = Blueprint("maps", __name__)
MAPLIBRE_DIST = Path(__file__).resolve().parent / "static" / "vendor" / "maplibre-gl"
VENDOR_FILES = ("maplibre-gl.mjs", "maplibre-gl-worker.mjs", "maplibre-gl.css", "LICENSE.txt")


@blueprint.get("/map")
def map_page() -> str:
    """The interactive map; `?embed=1` drops the controls for an iframe."""
    source = style_source()
    return render_template(
        "map.html",
        embed=request.args.get("embed") == "1",
        styles=[(sid, title(sid)) for sid in style_ids(source.catalogue)],
        levels=source.levels,
        level_titles=LEVEL_TITLES,
        types=list(TYPE_TITLES.items()),
        base_url=source.base_url,
        rasters_url=f"{source.base_url}/raster" if _serves("/raster") else "",
        missing=context.snapshot().version.report.get("missing", []),
        basemap_style="" if is_raster_template(source.basemap_url) else source.basemap_url,
        search_url=f"{source.base_url}/search" if _serves("/search") else "",
        indicators_url=f"{source.base_url}/indicators" if _serves("/indicators") else "",
        max_limit=context.settings().max_limit,
    )


@blueprint.get("/embed")
def embed_page() -> str:
    """How to put our layers in another site: MapLibre, OpenLayers, Leaflet and an iframe."""
    source = style_source()
    return render_template(
        "embed.html",
        base_url=source.base_url,
        styles=[(sid, title(sid)) for sid in style_ids(source.catalogue)],
        zooms=source.zooms,
    )


@blueprint.get("/static/vendor/maplibre-gl/<name>")
def maplibre(name: str) -> Response:
    """MapLibre GL JS, as vendored (the worker is found beside the module)."""
    if name not in VENDOR_FILES:
        raise NotFound(f"no vendor file {name!r}")
    response = send_from_directory(MAPLIBRE_DIST, name, max_age=86400)
    if name.endswith(".mjs"):
        response.mimetype = "text/javascript"
    return response


@blueprint.get("/map/labels.json")
def label_tilejson() -> Response:
    """The TileJSON of the label tiles: one point layer per territory level, with `code` and `nom`."""
    infos = [info for info in context.snapshot().collections() if info.geometry_type != "Point"]
    fields = {"code": "String", "nom": "String"}
    response = jsonify({
        "tilejson": "3.0.0", "name": "eCarto: noms des territoires", "scheme": "xyz",
        "tiles": [f"{context.base_url()}/map/labels/{{z}}/{{x}}/{{y}}.mvt"],
        "minzoom": 0, "maxzoom": labels.LABEL_MAXZOOM,
        "vector_layers": [{"id": info.id, "fields": fields, "minzoom": info.minzoom, "maxzoom": labels.LABEL_MAXZOOM}
                          for info in infos],
    })
    response.headers["Cache-Control"] = "no-cache"
    return response


@blueprint.get("/map/labels/<z>/<x>/<y>.mvt")
def label_tile(z: str, x: str, y: str) -> Response:
    """Territory names: one point per territory, in a layer per level (`code`, `nom`)."""
    tile = parse_tile(z, x, y)
    snap = context.snapshot()
    made = context.cache().get_or_make(
        ("labels", snap.version.id, tile.z, tile.x, tile.y),
        lambda: prepare(labels.labels_tile(_label_points(snap, tile.z), tile), MediaType.MVT),
    )
    return tile_response(made, context.settings().cache_control)


_labels_lock = threading.Lock()


def _label_points(snap: Snapshot, z: int) -> list[labels.LabelPoints]:
    """The label points of every territory level shown at zoom z, computed once per version and level."""
    held: dict = current_app.extensions.setdefault("ecarto.labels", {})
    wanted = [info for info in snap.collections() if info.geometry_type != "Point" and info.minzoom <= z]
    with _labels_lock:  # one computation per level, even when a first view asks for 12 tiles at once
        if held.get("version") != snap.version.id:
            held.clear()
            held["version"] = snap.version.id
        for info in wanted:
            if info.id not in held:
                page = snap.query(FeatureQuery(collection=info.id, properties=("nom",), limit=info.count or 1))
                held[info.id] = labels.level_points(info.id, info.minzoom, page.features)
        return [held[info.id] for info in wanted]


def _serves(path: str) -> bool:
    """Whether this app has a route at `path` (the raster API is optional; search and indicators are new)."""
    return any(rule.rule == path for rule in current_app.url_map.iter_rules())
