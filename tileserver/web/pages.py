"""The HTML face of the OGC APIs: pages rendered from `templates/`, each with a small inline SVG map.

The map is drawn here, in Web Mercator, with nothing loaded from elsewhere: a page works offline
and behind any content security policy. Every page links to its parent and to its JSON form.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import numpy as np
import shapely
from flask import Response, render_template
from markupsafe import Markup, escape
from shapely.geometry.base import BaseGeometry

from tileserver.core.media import MediaType
from tileserver.core.mercator import geometries_to_mercator
from tileserver.core.store import CollectionInfo, Feature
from tileserver.web import context

WIDTH, HEIGHT = 640, 400
LABELS = ("nom", "name", "title")  # properties that name a feature, in order of preference


def page(template: str, body: dict[str, Any], *, title: str, crumbs: Sequence[tuple[str, str]] = (), **extra: Any):
    """A page: `body` is the JSON document of the resource, which the template lays out."""
    base = context.base_url()
    trail = [(f"{base}/", "Accueil"), *crumbs]
    text = render_template(template, body=body, title=title, crumbs=trail, base=base, **extra)
    return Response(text, content_type=MediaType.HTML)


def collection_crumbs(info: CollectionInfo) -> list[tuple[str, str]]:
    """The trail down to a collection."""
    base = context.base_url()
    return [(f"{base}/collections", "Collections"), (f"{base}/collections/{info.id}", info.title)]


def items_page(
    info: CollectionInfo, features: list[Feature], matched: int | None, links: list[dict], offset: int
) -> Response:
    """A page of features: a map, then a table of their properties, then the paging links."""
    base = context.base_url()
    href = lambda f: f"{base}/collections/{info.id}/items/{quote(f.id, safe='')}"  # noqa: E731
    names = [f.name for f in info.fields]
    crumbs = [*collection_crumbs(info), (f"{base}/collections/{info.id}/items", "Items")]
    return page(
        "items.html", {"links": links}, title=f"{info.title}: items", crumbs=crumbs, info=info,
        features=[(f, href(f)) for f in features], names=names, matched=matched, offset=offset,
        map=svg_map([(f.geometry, href(f), label(f)) for f in features]),
    )


def item_page(info: CollectionInfo, feature: Feature, links: list[dict]) -> Response:
    """One feature: its map and its properties."""
    crumbs = [*collection_crumbs(info), (f"{context.base_url()}/collections/{info.id}/items", "Items")]
    return page(
        "item.html", {"links": links}, title=f"{info.title}: {label(feature)}", crumbs=[*crumbs, ("", feature.id)],
        info=info, feature=feature, map=svg_map([(feature.geometry, "", label(feature))]),
    )


def label(feature: Feature) -> str:
    """What a person calls a feature: its name when it has one, else its id.

    >>> label(Feature("0350001A", None, {"nom": "École du Parc"})), label(Feature("35", None, {}))
    ('École du Parc', '35')
    """
    for name in LABELS:
        value = feature.properties.get(name)
        if value:
            return str(value)
    return feature.id


def svg_map(items: Sequence[tuple[BaseGeometry | None, str, str]]) -> Markup:
    """An SVG map of (geometry, link, title) items; polygons simplified to what the map can show.

    >>> "<circle" in svg_map([(shapely.Point(2, 48), "/a", "A")])
    True
    """
    kept = [(g, href, title) for g, href, title in items if g is not None and not g.is_empty]
    if not kept:
        return Markup("")
    shapes = geometries_to_mercator(np.array([g for g, _, _ in kept], dtype=object))
    west, south, east, north = shapely.total_bounds(shapes)
    pad = max(east - west, north - south) * 0.05 or 1000.0
    west, south, east, north = west - pad, south - pad, east + pad, north + pad
    scale = min(WIDTH / (east - west), HEIGHT / (north - south))
    shapes = shapely.simplify(shapes, 0.5 / scale, preserve_topology=True)
    parts = [
        f'<svg class="map" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg" role="img">',
        f'<g transform="translate({-west * scale:.2f},{north * scale:.2f}) scale({scale!r},{-scale!r})">',
    ]
    for shape, (_, href, title) in zip(shapes, kept, strict=True):
        drawing = shape.svg(scale_factor=1.5 / scale)
        inner = f"<title>{escape(title)}</title>{drawing}"
        parts.append(f'<a href="{escape(href)}">{inner}</a>' if href else f"<g>{inner}</g>")
    parts.append("</g></svg>")
    return Markup("".join(parts))
