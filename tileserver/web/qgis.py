"""QGIS: `/qgis/{style}.qlr` adds one style's layers in one click, `/qgis/project.qgs` holds them all,
`/qgis/{style}.qml` styles a tile layer added by hand."""

from __future__ import annotations

from flask import Blueprint, Response

from styles import qgis
from styles.catalogue import style_ids
from tileserver.core.errors import NotFound
from tileserver.core.media import MediaType
from tileserver.web.styles import style_source

blueprint = Blueprint("qgis", __name__)


@blueprint.get("/qgis/project.qgs")
def project() -> Response:
    """A QGIS project with every style and the OGC API Features layers."""
    return _download(qgis.project(style_source()), MediaType.QGS, "ecarto.qgs")


@blueprint.get("/qgis/<style_id>.qlr")
def layer_definition(style_id: str) -> Response:
    """A QGIS layer definition: the style's vector tiles, and the Features layers (unticked)."""
    source = style_source()
    if style_id not in style_ids(source.catalogue):
        raise NotFound(f"no style {style_id!r}; see /styles")
    return _download(qgis.layer_definition(source, style_id), MediaType.QLR, f"ecarto-{style_id}.qlr")


@blueprint.get("/qgis/<style_id>.qml")
def style_file(style_id: str) -> Response:
    """A QGIS style for a vector tile layer added by hand (see docs/qgis.md): symbology and labels."""
    source = style_source()
    if style_id not in style_ids(source.catalogue):
        raise NotFound(f"no style {style_id!r}; see /styles")
    return _download(qgis.style_file(source, style_id), "application/x-qgis-style", f"ecarto-{style_id}.qml")


def _download(body: bytes, media_type: str, filename: str) -> Response:
    """An XML file QGIS opens (by drag and drop, or from the browser's downloads)."""
    return Response(body, content_type=f"{media_type}; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
