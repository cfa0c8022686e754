"""The documents describing vector tiles: TileJSON 3.0, OGC tilesets, and the WebMercatorQuad definition.

Pure functions of the published collections and of URLs handed in, so they are tested without a
request. Zoom ranges are the collections' own (QGIS and MapLibre trust `minzoom`/`maxzoom` and
never ask beyond them), and every tile URL carries the data version (`?v=`), so a client holding
one TileJSON never mixes tiles of two versions in its cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tileserver.core.crs import CRS84_URI
from tileserver.core.dataset import Field
from tileserver.core.grid import MAX_ZOOM, BBox, bbox_to_bounds, tile_at, tile_size
from tileserver.core.links import link
from tileserver.core.media import MediaType
from tileserver.core.mercator import ORIGIN
from tileserver.core.store import CollectionInfo
from tileserver.core.tilecontent import cluster_fields

TMS_ID = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
CRS_3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
REL_TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
REL_TILESETS_VECTOR = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
REL_GEODATA = "http://www.opengis.net/def/rel/ogc/1.0/geodata"
TILE_PIXELS = 256  # the tile size WebMercatorQuad's scales are defined with
PIXEL_METRES = 0.00028  # the OGC standardised rendering pixel
TILEJSON_TYPES = {"string": "String", "integer": "Number", "number": "Number", "boolean": "Boolean"}
JSON_SCHEMA_TYPES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}


def layer_fields(info: CollectionInfo, sums: Sequence[str]) -> tuple[Field, ...]:
    """Every property a collection's layer may carry: its fields, and for points the cluster counts."""
    return (*info.fields, *cluster_fields(sums)) if info.geometry_type == "Point" else info.fields


def zoom_range(infos: Sequence[CollectionInfo]) -> tuple[int, int]:
    """The zooms where at least one of the layers has features.

    >>> a = CollectionInfo("a", "", "", "Point", "k", (), 0, BBox(0, 0, 1, 1), 3, 14)
    >>> zoom_range([a, CollectionInfo("b", "", "", "Point", "k", (), 0, BBox(0, 0, 1, 1), 0, 8)])
    (0, 14)
    """
    return min(i.minzoom for i in infos), max(i.maxzoom for i in infos)


def extent(infos: Sequence[CollectionInfo]) -> BBox:
    """The box around every layer's extent."""
    return BBox(
        min(i.extent.west for i in infos),
        min(i.extent.south for i in infos),
        max(i.extent.east for i in infos),
        max(i.extent.north for i in infos),
    )


METROPOLE = (2.5, 46.6)  # lon, lat: the middle of metropolitan France
FRANCE_ZOOM = 5  # the zoom a TileJSON centre suggests: metropolitan France fills a screen


def center(box: BBox, z: int) -> list[float]:
    """A [lon, lat, zoom] centre of a box (TileJSON order): metropolitan France when the box holds it.

    The overseas départements stretch the box of French data from the Caribbean to the Indian
    Ocean, and its middle falls in the Atlantic.
    >>> center(BBox(-63.2, -21.4, 55.8, 51.1), 5), center(BBox(55.2, -21.4, 55.9, -20.8), 8)
    ([2.5, 46.6, 5], [55.55, -21.1, 8])
    """
    lon, lat = METROPOLE
    if box.west <= lon <= box.east and box.south <= lat <= box.north:
        return [lon, lat, z]
    return [round((box.west + box.east) / 2, 6), round((box.south + box.north) / 2, 6), z]


def tilejson(infos: Sequence[CollectionInfo], *, tiles_url: str, sums: Sequence[str], name: str) -> dict[str, Any]:
    """The TileJSON 3.0.0 document of a set of layers served at `tiles_url` (a {z}/{x}/{y} template)."""
    minzoom, maxzoom = zoom_range(infos)
    box = extent(infos)
    return {
        "tilejson": "3.0.0",
        "name": name,
        "description": "; ".join(i.title for i in infos),
        "scheme": "xyz",
        "tiles": [tiles_url],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": list(box),
        "center": center(box, min(max(minzoom, FRANCE_ZOOM), maxzoom)),
        "vector_layers": [
            {
                "id": info.id,
                "description": info.description,
                "minzoom": info.minzoom,
                "maxzoom": info.maxzoom,
                "fields": {f.name: TILEJSON_TYPES[f.type] for f in layer_fields(info, sums)},
            }
            for info in infos
        ],
    }


def tile_matrix_set() -> dict[str, Any]:
    """The WebMercatorQuad definition (OGC 2D Tile Matrix Set 2.0, JSON encoding)."""
    return {
        "id": TMS_ID,
        "title": "Google Maps Compatible for the World",
        "uri": TMS_URI,
        "crs": CRS_3857,
        "orderedAxes": ["X", "Y"],
        "wellKnownScaleSet": "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
        "tileMatrices": [_tile_matrix(z) for z in range(MAX_ZOOM + 1)],
    }


def _tile_matrix(z: int) -> dict[str, Any]:
    """One zoom level of WebMercatorQuad."""
    cell = tile_size(z) / TILE_PIXELS
    return {
        "id": str(z),
        "scaleDenominator": cell / PIXEL_METRES,
        "cellSize": cell,
        "cornerOfOrigin": "topLeft",
        "pointOfOrigin": [-ORIGIN, ORIGIN],
        "tileWidth": TILE_PIXELS,
        "tileHeight": TILE_PIXELS,
        "matrixWidth": 1 << z,
        "matrixHeight": 1 << z,
    }


def tile_matrix_sets(base: str) -> dict[str, Any]:
    """The list of tile matrix sets offered (only WebMercatorQuad)."""
    return {
        "tileMatrixSets": [
            {
                "id": TMS_ID,
                "title": "Google Maps Compatible for the World",
                "uri": TMS_URI,
                "crs": CRS_3857,
                "links": [link(f"{base}/tileMatrixSets/{TMS_ID}", "self", MediaType.JSON, TMS_ID)],
            }
        ],
        "links": [link(f"{base}/tileMatrixSets", "self", MediaType.JSON, "Tile matrix sets")],
    }


def limits(box: BBox, minzoom: int, maxzoom: int) -> list[dict[str, Any]]:
    """The rows and columns of each zoom that intersect a lon/lat box (`tileMatrixSetLimits`).

    >>> limits(BBox(-5.0, 41.0, 10.0, 51.0), 0, 1)
    [{'tileMatrix': '0', 'minTileRow': 0, 'maxTileRow': 0, 'minTileCol': 0, 'maxTileCol': 0}, \
{'tileMatrix': '1', 'minTileRow': 0, 'maxTileRow': 0, 'minTileCol': 0, 'maxTileCol': 1}]
    """
    bounds = bbox_to_bounds(box)
    out = []
    for z in range(minzoom, maxzoom + 1):
        first = tile_at(bounds.left, bounds.top, z)
        last = tile_at(bounds.right, bounds.bottom, z)
        out.append({"tileMatrix": str(z), "minTileRow": first.y, "maxTileRow": last.y,
                    "minTileCol": first.x, "maxTileCol": last.x})
    return out


def tileset(info: CollectionInfo, *, base: str, query: str, sums: Sequence[str]) -> dict[str, Any]:
    """The OGC tileset metadata of one collection's vector tiles in WebMercatorQuad."""
    path = f"{base}/collections/{info.id}/tiles/{TMS_ID}"
    box = info.extent
    lon, lat, _ = center(box, info.minzoom)
    return {
        "title": info.title,
        "description": info.description,
        "dataType": "vector",
        "crs": CRS_3857,
        "tileMatrixSetURI": TMS_URI,
        "tileMatrixSetLimits": limits(box, info.minzoom, info.maxzoom),
        "boundingBox": _bounding_box(box),
        "centerPoint": {"coordinates": [lon, lat], "tileMatrix": str(info.minzoom), "crs": CRS84_URI},
        "layers": [_layer(info, sums)],
        "links": [
            link(path, "self", MediaType.JSON, f"{info.title}: tileset"),
            link(f"{base}/tileMatrixSets/{TMS_ID}", REL_TILING_SCHEME, MediaType.JSON, TMS_ID),
            link(f"{base}/collections/{info.id}", REL_GEODATA, MediaType.JSON, info.title),
            link(f"{base}/tiles/{info.id}.json{query}", "alternate", MediaType.JSON, "TileJSON"),
            {**link(f"{path}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}{query}", "item", MediaType.MVT,
                    f"{info.title}: vector tiles"), "templated": True},
        ],
    }


def tilesets(info: CollectionInfo, *, base: str) -> dict[str, Any]:
    """The list of a collection's tilesets (one: WebMercatorQuad vector tiles)."""
    path = f"{base}/collections/{info.id}/tiles"
    return {
        "links": [link(path, "self", MediaType.JSON, f"{info.title}: tilesets")],
        "tilesets": [
            {
                "title": info.title,
                "dataType": "vector",
                "crs": CRS_3857,
                "tileMatrixSetURI": TMS_URI,
                "links": [
                    link(f"{path}/{TMS_ID}", "self", MediaType.JSON, f"{info.title}: tileset"),
                    link(f"{base}/tileMatrixSets/{TMS_ID}", REL_TILING_SCHEME, MediaType.JSON, TMS_ID),
                ],
            }
        ],
    }


def _layer(info: CollectionInfo, sums: Sequence[str]) -> dict[str, Any]:
    """The tileset's description of its one layer, with the JSON Schema of its properties."""
    return {
        "id": info.id,
        "title": info.title,
        "description": info.description,
        "dataType": "vector",
        "geometryDimension": 0 if info.geometry_type == "Point" else 2,
        "minTileMatrix": str(info.minzoom),
        "maxTileMatrix": str(info.maxzoom),
        "boundingBox": _bounding_box(info.extent),
        "propertiesSchema": {
            "type": "object",
            "properties": {
                f.name: {"type": JSON_SCHEMA_TYPES[f.type], "title": f.title or f.name}
                for f in layer_fields(info, sums)
            },
        },
    }


def _bounding_box(box: BBox) -> dict[str, Any]:
    """An OGC 2D bounding box in CRS84."""
    return {"lowerLeft": [box.west, box.south], "upperRight": [box.east, box.north], "crs": CRS84_URI}
