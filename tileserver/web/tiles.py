"""Vector tiles: XYZ tiles and TileJSON under `/tiles`, OGC API - Tiles under `/collections` and `/tileMatrixSets`.

A tile is made once per (data version, layers, tile, filters) and kept in the app's tile cache;
answers carry an ETag (304 on revalidation), 204 when the tile is empty, gzip when accepted.
Malformed input is a 400, an unknown layer or a tile outside the grid a 404, before any store
read. Query strings: `v` (the data version the client expects; tile URLs of the documents carry
it), and the school filters `type` and `statut` (comma lists) and one territory code per level
(`code_departement=35`, `code_commune`, `code_epci`, `code_academie`, `code_region`), applied
before clustering.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, request
from werkzeug.datastructures import MultiDict

from tileserver.core import tilesets
from tileserver.core.dataset import COUNTED_TYPES, SCHOOLS
from tileserver.core.errors import BadRequest, NotFound
from tileserver.core.grid import MAX_ZOOM, Tile, is_valid
from tileserver.core.links import link
from tileserver.core.media import MediaType
from tileserver.core.store import TERRITORY_FILTERS, CollectionInfo, Snapshot, TileFilter
from tileserver.web import context, params
from tileserver.web.cache import cached_tile, tile_response

blueprint = Blueprint("tiles", __name__)

CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/tilesetmetadata",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilesetmetadata",
)
FILTERS = ("type", "statut", *TERRITORY_FILTERS)
TILE_PARAMETERS = ("v", *FILTERS)
STATUTS = ("public", "prive")
JSON = {"json": MediaType.JSON}
_WORD = re.compile(r"^[a-z0-9_-]{1,40}$")
_CODE = re.compile(r"^[0-9A-Za-z]{1,12}$")  # a territory code: 35, 2A, 971, 35238, 243500139
_INDEX = re.compile(r"^[0-9]{1,8}$")


@blueprint.get("/tiles/<layers>/<z>/<x>/<y>.mvt")
def xyz_tile(layers: str, z: str, x: str, y: str) -> Response:
    """One vector tile of one or more collections (XYZ, WebMercatorQuad)."""
    snap = context.snapshot()
    infos = parse_layers(snap, layers)
    tile = parse_tile(z, x, y)
    filters, version = parse_tile_args(request.args)
    return _tile(snap, infos, tile, filters, version)


@blueprint.get("/tiles/<layers>.json")
def tilejson(layers: str) -> Response:
    """The TileJSON of one or more collections, its tile URLs bound to the current data version."""
    snap = context.snapshot()
    infos = parse_layers(snap, layers)
    params.check_known(request.args, FILTERS)
    filters = parse_filters(request.args)
    names = ",".join(i.id for i in infos)
    url = f"{context.base_url()}/tiles/{names}/{{z}}/{{x}}/{{y}}.mvt{tile_query(snap.version.id, filters)}"
    document = tilesets.tilejson(infos, tiles_url=url, sums=snap.meta()["cluster_sums"], name=f"eCarto: {names}")
    return _document(document)


@blueprint.get("/tileMatrixSets")
def tile_matrix_sets() -> Response:
    """The tile matrix sets offered."""
    params.json_only(request.args, request.accept_mimetypes)
    return _document(tilesets.tile_matrix_sets(context.base_url()))


@blueprint.get("/tileMatrixSets/<tms>")
def tile_matrix_set(tms: str) -> Response:
    """The definition of WebMercatorQuad."""
    params.json_only(request.args, request.accept_mimetypes)
    params.tile_matrix_set(tms)
    return _document(tilesets.tile_matrix_set())


@blueprint.get("/collections/<cid>/tiles")
def collection_tilesets(cid: str) -> Response:
    """The vector tilesets of a collection."""
    params.json_only(request.args, request.accept_mimetypes)
    info = context.snapshot().collection(cid)
    return _document(tilesets.tilesets(info, base=context.base_url()))


@blueprint.get("/collections/<cid>/tiles/<tms>")
def collection_tileset(cid: str, tms: str) -> Response:
    """A collection's tileset metadata in WebMercatorQuad."""
    params.check_known(request.args, ("f", *FILTERS))
    params.output_format(params.one(request.args, "f"), request.accept_mimetypes, JSON)
    snap = context.snapshot()
    info = snap.collection(cid)
    params.tile_matrix_set(tms)
    query = tile_query(snap.version.id, parse_filters(request.args))
    sums = snap.meta()["cluster_sums"]
    return _document(tilesets.tileset(info, base=context.base_url(), query=query, sums=sums))


@blueprint.get("/collections/<cid>/tiles/<tms>/<tile_matrix>/<tile_row>/<tile_col>")
def collection_tile(cid: str, tms: str, tile_matrix: str, tile_row: str, tile_col: str) -> Response:
    """One vector tile of a collection (OGC API - Tiles); 404 outside the tileset's limits."""
    snap = context.snapshot()
    info = snap.collection(cid)
    params.tile_matrix_set(tms)
    tile = parse_tile(tile_matrix, tile_col, tile_row)
    check_limits(info, tile)
    filters, version = parse_tile_args(request.args)
    return _tile(snap, [info], tile, filters, version)


def _tile(snap: Snapshot, infos: Sequence[CollectionInfo], tile: Tile, filters: TileFilter,
          version: str | None) -> Response:
    """The cached tile (made on a miss); a request for another data version is not kept by caches."""
    check_territories(infos, filters)
    cached = cached_tile(context.cache(), snap, tuple(i.id for i in infos), tile, filters)
    current = version is None or version == snap.version.id
    return tile_response(cached, context.settings().cache_control if current else "no-cache")


def check_territories(infos: Sequence[CollectionInfo], filters: TileFilter) -> None:
    """A 400 for a territory filter on schools that do not carry that code in this version."""
    schools = next((i for i in infos if i.id == SCHOOLS), None)
    missing = [column for column, _ in filters.territories if schools is not None and schools.field(column) is None]
    if missing:
        raise BadRequest(f"{missing[0]}: the schools of this data version have no such code")


def _document(body: dict) -> Response:
    """A JSON description; revalidated by caches, since it names the current data version."""
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-cache"
    return response


def parse_layers(snap: Snapshot, raw: str) -> list[CollectionInfo]:
    """The collections named by a comma list, in the order given; unknown is a 404, repeated a 400."""
    names = raw.split(",")
    if len(set(names)) != len(names):
        raise BadRequest(f"layers {raw[:200]!r}: a collection is named twice")
    return [snap.collection(name) for name in names]


def parse_tile(z: str, x: str, y: str) -> Tile:
    """A tile of the grid from path strings: not integers is a 400, outside the grid a 404.

    >>> parse_tile("3", "2", "5")
    Tile(z=3, x=2, y=5)
    """
    for name, raw in (("zoom", z), ("column", x), ("row", y)):
        if not _INDEX.match(raw):
            raise BadRequest(f"tile {name} {raw[:20]!r} is not a non-negative integer")
    tile = Tile(int(z), int(x), int(y))
    if not is_valid(tile):
        raise NotFound(f"no tile {tile.z}/{tile.x}/{tile.y}: zoom 0 to {MAX_ZOOM}, column and row below 2^zoom")
    return tile


def check_limits(info: CollectionInfo, tile: Tile) -> None:
    """A 404 for a tile outside the tileset's `tileMatrixSetLimits`."""
    if not info.minzoom <= tile.z <= info.maxzoom:
        raise NotFound(f"{info.id} has tiles from zoom {info.minzoom} to {info.maxzoom}")
    limit = tilesets.limits(info.extent, tile.z, tile.z)[0]
    inside_columns = limit["minTileCol"] <= tile.x <= limit["maxTileCol"]
    if not (inside_columns and limit["minTileRow"] <= tile.y <= limit["maxTileRow"]):
        raise NotFound(f"tile {tile.z}/{tile.y}/{tile.x} is outside the limits of {info.id}")


def parse_tile_args(args: MultiDict) -> tuple[TileFilter, str | None]:
    """The school filters and the expected data version of a tile request."""
    params.check_known(args, TILE_PARAMETERS)
    return parse_filters(args), params.one(args, "v")


def parse_filters(args: MultiDict) -> TileFilter:
    """`type` and `statut` comma lists, and territory codes, checked and put in a canonical order.

    >>> parse_filters(MultiDict([("type", "lycee,college"), ("statut", "public")]))
    TileFilter(types=('college', 'lycee'), statuts=('public',), territories=())
    >>> parse_filters(MultiDict([("code_region", "53"), ("code_departement", "35")])).territories
    (('code_departement', '35'), ('code_region', '53'))
    """
    types = _words("type", params.one(args, "type"))
    statuts = _words("statut", params.one(args, "statut"))
    for name, given, allowed in (("type", types, COUNTED_TYPES), ("statut", statuts, STATUTS)):
        unknown = sorted(set(given) - set(allowed))
        if unknown:
            raise BadRequest(f"{name} {unknown[0]!r} is not one of {', '.join(allowed)}")
    return TileFilter(types, statuts, _territories(args))


def _territories(args: MultiDict) -> tuple[tuple[str, str], ...]:
    """The territory codes a tile's schools must have, in `TERRITORY_FILTERS` order."""
    out = []
    for name in TERRITORY_FILTERS:
        code = params.one(args, name)
        if code is None:
            continue
        if not _CODE.match(code):
            raise BadRequest(f"{name}={code[:40]!r}: a territory code is letters and digits, such as 35 or 2A")
        out.append((name, code))
    return tuple(out)


def _words(name: str, raw: str | None) -> tuple[str, ...]:
    """A comma list of lower-case words, sorted and without repeats (empty when absent)."""
    if raw is None:
        return ()
    words = raw.split(",")
    for word in words:
        if not _WORD.match(word):
            raise BadRequest(f"{name}={raw[:100]!r}: each value must be a lower-case word such as college")
    return tuple(sorted(set(words)))


def tile_query(version: str, filters: TileFilter) -> str:
    """The query string of the tile URLs of a document: the data version, then the filters.

    >>> tile_query("20260101T000000000000", TileFilter(("college", "lycee"), (), (("code_departement", "35"),)))
    '?v=20260101T000000000000&type=college,lycee&code_departement=35'
    """
    pairs = [("v", version), ("type", ",".join(filters.types)), ("statut", ",".join(filters.statuts)),
             *filters.territories]
    return "?" + urlencode([(k, v) for k, v in pairs if v], safe=",")


def collection_links(cid: str) -> list[dict[str, str]]:
    """The links a collection's description gives to its tiles (for `/collections/{id}`)."""
    base = context.base_url()
    return [link(f"{base}/collections/{cid}/tiles", tilesets.REL_TILESETS_VECTOR, MediaType.JSON,
                          "Vector tilesets")]
