"""Raster layers: the list, TileJSON, PNG/WebP tiles, OGC API - Tiles map tilesets, point values, legends.

A tile is read (`cog.read_tile`), coloured (`colormap.colorize`) and encoded (`image.encode`) in
three steps, once per cache key; the key holds the data version, the raster, the tile, the format
and the colour style, so a new ingest or another `?colormap=` never gets a stale image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, request

from tileserver.core import colormap, image
from tileserver.core.cog import RasterFile, read_point, read_tile
from tileserver.core.errors import NotFound
from tileserver.core.grid import Tile, is_valid
from tileserver.core.links import link
from tileserver.core.media import MediaType
from tileserver.core.tilesets import TMS_ID, TMS_URI
from tileserver.web import context, params
from tileserver.web.cache import CachedTile, prepare, tile_response

blueprint = Blueprint("raster", __name__)

STYLE_PARAMS = ("colormap", "rescale")
TILE_FORMATS = {name: fmt.media_type.value for name, fmt in image.FORMATS.items()}
MERCATOR_URI = "http://www.opengis.net/def/crs/EPSG/0/3857"
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
REL = "http://www.opengis.net/def/rel/ogc/1.0/"
_TILE_MATRIX = re.compile(r"^[0-9]{1,2}$")


@dataclass(frozen=True)
class Style:
    """How values become colours: a colormap name and the value range spread over it."""

    colormap: str
    rescale: tuple[float, float]


@blueprint.get("/raster")
def rasters():
    """Every raster layer of the current version, with the links a map needs."""
    params.check_known(request.args, ())
    layers = context.snapshot().meta().get("rasters", {})
    return jsonify({
        "rasters": [_summary(raster_id, meta) for raster_id, meta in layers.items()],
        "colormaps": colormap.names(),
        "links": [link(f"{context.base_url()}/raster", "self", MediaType.JSON)],
    })


@blueprint.get("/raster/<raster_id>.json")
def tilejson(raster_id: str):
    """TileJSON 3.0 for one raster; `?colormap=` and `?rescale=` carry over into its tile URLs."""
    params.check_known(request.args, STYLE_PARAMS)
    meta = _meta(raster_id)
    _style(meta)  # a bad style is one 400 here rather than one per tile
    west, south, east, north = meta["bounds"]
    return jsonify({
        "tilejson": "3.0.0",
        "name": meta.get("label", raster_id),
        "description": meta.get("description", ""),
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [_tiles_url(raster_id, "png")],
        "minzoom": meta["minzoom"],
        "maxzoom": meta["maxzoom"],
        "bounds": meta["bounds"],
        "center": [(west + east) / 2, (south + north) / 2, meta["minzoom"]],
    })


@blueprint.get("/raster/<raster_id>/<int:z>/<int:x>/<int:y>.<any(png, webp):fmt>")
def tile(raster_id: str, z: int, x: int, y: int, fmt: str):
    """One tile of the WebMercatorQuad grid (XYZ scheme) as PNG or WebP."""
    params.check_known(request.args, STYLE_PARAMS)
    return _tile(raster_id, Tile(z, x, y), fmt)


@blueprint.get("/raster/<raster_id>/tiles")
def tilesets(raster_id: str):
    """The map tilesets of a raster (OGC API - Tiles): one, on WebMercatorQuad."""
    params.json_only(request.args, request.accept_mimetypes)
    meta = _meta(raster_id)
    here = f"{context.base_url()}/raster/{raster_id}/tiles"
    return jsonify({"tilesets": [_tileset_summary(raster_id, meta)], "links": [link(here, "self", MediaType.JSON)]})


@blueprint.get("/raster/<raster_id>/tiles/<tms>")
def tileset(raster_id: str, tms: str):
    """The WebMercatorQuad map tileset of a raster, with its tile URL templates."""
    params.json_only(request.args, request.accept_mimetypes)
    meta = _meta(raster_id)
    params.tile_matrix_set(tms)
    west, south, east, north = meta["bounds"]
    base = f"{context.base_url()}/raster/{raster_id}/tiles/{TMS_ID}"
    return jsonify({
        **_tileset_summary(raster_id, meta),
        "boundingBox": {"lowerLeft": [west, south], "upperRight": [east, north], "crs": CRS84_URI},
        "links": [
            link(base, "self", MediaType.JSON),
            link(f"{context.base_url()}/tileMatrixSets/{TMS_ID}", REL + "tiling-scheme", MediaType.JSON),
            *({**link(f"{base}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}?f={name}", "item", media), "templated": True}
              for name, media in TILE_FORMATS.items()),
        ],
    })


@blueprint.get("/raster/<raster_id>/tiles/<tms>/<tile_matrix>/<int:row>/<int:col>")
def ogc_tile(raster_id: str, tms: str, tile_matrix: str, row: int, col: int):
    """One map tile (OGC API - Tiles); the format from `?f=` or the Accept header, PNG by default."""
    params.check_known(request.args, ("f", *STYLE_PARAMS))
    params.tile_matrix_set(tms)
    if not _TILE_MATRIX.match(tile_matrix):
        raise NotFound(f"no tile matrix {tile_matrix[:20]!r} in {TMS_ID}")
    fmt = params.output_format(params.one(request.args, "f"), request.accept_mimetypes, TILE_FORMATS)
    response = _tile(raster_id, Tile(int(tile_matrix), col, row), fmt)
    response.headers["Vary"] = "Accept, Accept-Encoding"
    return response


@blueprint.get("/raster/<raster_id>/point")
def point(raster_id: str):
    """The raster's value at a lon/lat point (null outside the raster or where it has no data)."""
    params.check_known(request.args, ("lon", "lat"))
    meta = _meta(raster_id)
    lon = params.coordinate("lon", params.one(request.args, "lon"), 180.0)
    lat = params.coordinate("lat", params.one(request.args, "lat"), 90.0)
    value = read_point(RasterFile.from_meta(meta), lon, lat)
    return jsonify({"id": raster_id, "lon": lon, "lat": lat, "value": value, "unit": meta.get("unit", "")})


@blueprint.get("/raster/<raster_id>/legend.png")
def legend(raster_id: str):
    """The colour ramp with its minimum, middle and maximum values, in the tiles' colour style."""
    params.check_known(request.args, STYLE_PARAMS)
    meta = _meta(raster_id)
    style = _style(meta)
    key = ("raster-legend", context.snapshot().version.id, raster_id, style)

    def make() -> CachedTile:
        ramp = colormap.legend(colormap.lookup_table(style.colormap), style.rescale)
        return prepare(image.encode(ramp, "png"), MediaType.PNG)

    return tile_response(context.cache().get_or_make(key, make), context.settings().cache_control)


def render_tile(meta: dict, tile: Tile, fmt: str, style: Style) -> CachedTile:
    """Read, colour and encode one tile (an empty body where the raster has nothing)."""
    media_type = image.FORMATS[fmt].media_type
    data = read_tile(RasterFile.from_meta(meta), tile)
    if data is None:
        return prepare(b"", media_type)
    rgba = colormap.colorize(data, colormap.lookup_table(style.colormap), style.rescale)
    return prepare(image.encode(rgba, fmt), media_type)


def _tile(raster_id: str, tile: Tile, fmt: str) -> Response:
    """A tile through the cache, with ETag and 304; a tile outside the grid is a 404."""
    meta = _meta(raster_id)
    if not is_valid(tile):
        raise NotFound(f"tile {tile.z}/{tile.x}/{tile.y} is outside the {TMS_ID} grid")
    style = _style(meta)
    key = ("raster", context.snapshot().version.id, raster_id, tile, fmt, style)
    cached = context.cache().get_or_make(key, lambda: render_tile(meta, tile, fmt, style))
    return tile_response(cached, context.settings().cache_control)


def _meta(raster_id: str) -> dict:
    """The published metadata of a raster, or a 404 naming the known ones."""
    layers = context.snapshot().meta().get("rasters", {})
    if raster_id not in layers:
        known = ", ".join(sorted(layers)) or "none"
        raise NotFound(f"no raster {raster_id[:100]!r}; known: {known}")
    return layers[raster_id]


def _style(meta: dict) -> Style:
    """The raster's colormap and rescale from its metadata, overridden by `?colormap=` and `?rescale=`."""
    name = params.one(request.args, "colormap") or meta.get("colormap", "viridis")
    colormap.lookup_table(name)
    raw = params.one(request.args, "rescale")
    rescale = params.rescale(raw) if raw is not None else tuple(meta["rescale"])
    return Style(name, rescale)




def _summary(raster_id: str, meta: dict) -> dict:
    """One entry of `/raster`: what a map needs to offer the layer."""
    base = f"{context.base_url()}/raster/{raster_id}"
    return {
        "id": raster_id,
        "label": meta.get("label", raster_id),
        "unit": meta.get("unit", ""),
        "description": meta.get("description", ""),
        "kind": meta.get("kind", "external"),
        "colormap": meta.get("colormap", "viridis"),
        "rescale": list(meta["rescale"]),
        "bounds": meta["bounds"],
        "minzoom": meta["minzoom"],
        "maxzoom": meta["maxzoom"],
        "tiles": [_tiles_url(raster_id, "png")],
        "legend": f"{base}/legend.png",
        "links": [
            link(f"{base}.json", "describedby", MediaType.JSON, "TileJSON"),
            *({**link(f"{base}/{{z}}/{{x}}/{{y}}.{name}", "item", media), "templated": True}
              for name, media in TILE_FORMATS.items()),
            link(f"{base}/tiles", REL + "tilesets-map", MediaType.JSON),
            link(f"{base}/legend.png", "legend", MediaType.PNG),
            {**link(f"{base}/point?lon={{lon}}&lat={{lat}}", "value", MediaType.JSON), "templated": True},
        ],
    }


def _tileset_summary(raster_id: str, meta: dict) -> dict:
    return {
        "title": meta.get("label", raster_id),
        "dataType": "map",
        "crs": MERCATOR_URI,
        "tileMatrixSetURI": TMS_URI,
        "links": [link(f"{context.base_url()}/raster/{raster_id}/tiles/{TMS_ID}", "self", MediaType.JSON)],
    }


def _tiles_url(raster_id: str, fmt: str) -> str:
    """The XYZ template of a raster's tiles, keeping the request's colour style parameters."""
    style = {name: request.args[name] for name in STYLE_PARAMS if name in request.args}
    query = f"?{urlencode(style)}" if style else ""
    return f"{context.base_url()}/raster/{raster_id}/{{z}}/{{x}}/{{y}}.{fmt}{query}"
