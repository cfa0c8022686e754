"""What people look at: the map page (`/map`, `?embed=1` for iframes), `/embed`, and MapLibre itself.

MapLibre GL JS is an npm dependency installed by `make setup`; it is served from `node_modules`
by this app, never from a CDN, so the map works on a network without the internet.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, current_app, render_template, request, send_from_directory

from styles.catalogue import LEVEL_TITLES, style_ids, title
from styles.maplibre import TYPE_TITLES
from tileserver.core.errors import NotFound
from tileserver.web import context
from tileserver.web.styles import style_source

blueprint = Blueprint("maps", __name__)
MAPLIBRE_DIST = Path(__file__).resolve().parents[2] / "node_modules" / "maplibre-gl" / "dist"
VENDOR_FILES = ("maplibre-gl.mjs", "maplibre-gl-worker.mjs", "maplibre-gl.css",
                "maplibre-gl.mjs.map", "maplibre-gl-worker.mjs.map")


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
    """MapLibre GL JS from the npm package (the worker is found beside the module)."""
    if name not in VENDOR_FILES:
        raise NotFound(f"no vendor file {name!r}")
    if not (MAPLIBRE_DIST / name).is_file():
        raise NotFound("MapLibre GL JS is not installed: run `make setup` (npm install)")
    response = send_from_directory(MAPLIBRE_DIST, name, max_age=86400)
    if name.endswith(".mjs"):
        response.mimetype = "text/javascript"
    return response



def _serves(path: str) -> bool:
    """Whether this app has a route at `path` (the raster API is optional)."""
    return any(rule.rule == path for rule in current_app.url_map.iter_rules())
