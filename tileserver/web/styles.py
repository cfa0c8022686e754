"""MapLibre styles: `/styles` lists them, `/styles/{id}` serves one, built from the served version."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from styles.catalogue import StyleSource, style_ids, title
from styles.maplibre import AUTO, build_style
from tileserver.core.errors import BadRequest, NotFound
from tileserver.web import context

blueprint = Blueprint("styles", __name__)
STYLE_MEDIA = "application/vnd.mapbox.style+json"


CLASSES = ("donnees", "catalogue")  # `?classes=`: limits computed from the data per level, or the catalogue's


def style_source(classes: str = CLASSES[0]) -> StyleSource:
    """What this request's styles are built from: the version's catalogue and zooms, our public URL.

    `classes="catalogue"` drops the limits computed per level, so the catalogue's fixed `breaks`
    colour every level (an override for maps that must keep the same classes from year to year).
    """
    if classes not in CLASSES:
        raise BadRequest(f"classes={classes!r}; expected one of {', '.join(CLASSES)}")
    snap = context.snapshot()
    catalogue = snap.catalogue()
    if classes == "catalogue":
        catalogue = [{**entry, "breaks_by_level": {}} for entry in catalogue]
    return StyleSource(
        catalogue=catalogue,
        zooms={c.id: (c.minzoom, c.maxzoom) for c in snap.collections()},
        base_url=context.base_url(),
        cluster_maxzoom=snap.meta()["cluster_maxzoom"],
        basemap_url=context.settings().basemap_url,
    )


def resolve(source: StyleSource, style_id: str, indicator: str | None = None, level: str = AUTO) -> dict:
    """The style, or the 404/400 that says which part of the request is wrong."""
    if style_id not in style_ids(source.catalogue):
        raise NotFound(f"no style {style_id!r}; see /styles")
    try:
        return build_style(source, style_id, indicator=indicator, level=level)
    except KeyError:
        raise BadRequest(f"indicator={indicator!r} is not an indicator of theme {style_id!r}") from None
    except ValueError as exc:
        raise BadRequest(f"level: {exc}") from None


@blueprint.get("/styles")
def styles_list() -> Response:
    """Every style, with links to the style, the map showing it and its QGIS layer definition."""
    source = style_source()
    base = source.base_url
    return jsonify({"styles": [
        {"id": sid, "title": title(sid), "links": [
            {"rel": "stylesheet", "type": STYLE_MEDIA, "href": f"{base}/styles/{sid}"},
            {"rel": "describedby", "type": "text/html", "href": f"{base}/map#style={sid}"},
            {"rel": "alternate", "type": "application/x-qgis-layer-definition", "href": f"{base}/qgis/{sid}.qlr"},
        ]} for sid in style_ids(source.catalogue)
    ]})


@blueprint.get("/styles/<style_id>")
def style(style_id: str) -> Response:
    """One style; `?indicator=` another indicator of the theme, `?level=` one level, `?classes=catalogue`."""
    source = style_source(request.args.get("classes") or CLASSES[0])
    body = resolve(source, style_id, request.args.get("indicator") or None, request.args.get("level") or AUTO)
    response = jsonify(body)
    response.headers["Cache-Control"] = context.settings().cache_control
    return response
