"""Small parsers of query parameters: each turns one request string into a typed value, or a 400.

Views call these and nothing else touches request strings, so every malformed input fails here
with a message naming the parameter, long before a store sees it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from shapely.geometry.base import BaseGeometry
from werkzeug.datastructures import MIMEAccept, MultiDict
from werkzeug.routing import IntegerConverter

from tileserver.core import crs as crs_
from tileserver.core import textsearch
from tileserver.core.dataset import Field
from tileserver.core.errors import BadRequest, NotAcceptable, NotFound, UnknownParameter
from tileserver.core.grid import BBox
from tileserver.core.media import MediaType
from tileserver.core.settings import Settings
from tileserver.core.store import CollectionInfo
from tileserver.core.tilesets import TMS_ID

_INTEGER = re.compile(r"^\+?[0-9]{1,9}$")
# What `float` reads minus what it reads too: `1_0`, full-width or Arabic-Indic digits, inf and nan.
_DECIMAL = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?$")
MAX_Q_LENGTH = 200  # characters of `q` on items: ten terms of twenty
SEARCH_LIMIT, MAX_SEARCH_LIMIT = 8, 50  # results of `/search`
_NAME = re.compile(r"^[+-]?[A-Za-z_][A-Za-z0-9_]*$")


class AsciiInteger(IntegerConverter):
    """The `<int:...>` of routes in ASCII digits only: werkzeug's own matches any Unicode digit (`１`)."""

    regex = r"[0-9]+"


def check_known(args: MultiDict, allowed: Collection[str]) -> None:
    """A 400 (InvalidParameter) naming the first query parameter the resource does not know."""
    for name in args:
        if name not in allowed:
            raise UnknownParameter(f"unknown query parameter {name[:100]!r}; known: {', '.join(sorted(allowed))}")


def one(args: MultiDict, name: str) -> str | None:
    """The single value of a parameter (None when absent); given twice is a 400.

    >>> one(MultiDict([("limit", "5")]), "limit"), one(MultiDict(), "limit")
    ('5', None)
    """
    values = args.getlist(name)
    if len(values) > 1:
        raise BadRequest(f"parameter {name!r} is given {len(values)} times")
    return values[0] if values else None


def json_only(args: MultiDict, accept: MIMEAccept) -> None:
    """The checks of a JSON-only resource whose only parameter is `f` (absent or `json`)."""
    check_known(args, ("f",))
    output_format(one(args, "f"), accept, {"json": MediaType.JSON})


def tile_matrix_set(tms: str) -> None:
    """A 404 for any tile matrix set but the one every tile here is cut on."""
    if tms != TMS_ID:
        raise NotFound(f"no tile matrix set {tms[:50]!r}; offered: {TMS_ID}")


def output_format(f: str | None, accept: MIMEAccept, offered: Mapping[str, str]) -> str:
    """The format to answer in: `f` when given, else the best Accept match (the first offered by default).

    `offered` maps each format name to its media type; a JSON format may be named twice (`json`,
    `geojson`) for the media types that mean it.

    >>> output_format("html", MIMEAccept(), {"json": "application/json", "html": "text/html"})
    'html'
    >>> output_format(None, MIMEAccept([("text/html", 1)]), {"json": "application/json", "html": "text/html"})
    'html'
    >>> oas = "application/vnd.oai.openapi+json;version=3.0"
    >>> output_format(None, MIMEAccept([(oas, 1)]), {"json": oas, "html": "text/html"})
    'json'
    """
    if f is not None:
        if f not in offered:
            raise BadRequest(f"f={f[:50]!r} is not offered here; use one of {', '.join(offered)}")
        return f
    if not accept:
        return next(iter(offered))
    media: dict[str, str] = {}
    for name, media_type in offered.items():
        media.setdefault(media_type.split(";")[0], name)
        media.setdefault(media_type.replace(" ", ""), name)  # a client may ask with the parameters (QGIS)
        if media_type.split(";")[0].endswith("+json"):  # GeoJSON, OpenAPI...: JSON to a client asking for JSON
            media.setdefault(MediaType.JSON, name)
    best = accept.best_match(list(media), default=None)
    if best is None:
        raise NotAcceptable(f"cannot produce any of {accept}; available: {', '.join(media)}")
    return media[best]


def limit(raw: str | None, settings: Settings) -> int:
    """The page size: default when absent, between 1 and the configured maximum.

    >>> limit(None, Settings()), limit("250", Settings())
    (10, 250)
    """
    if raw is None:
        return settings.default_limit
    value = _integer("limit", raw)
    if not 1 <= value <= settings.max_limit:
        raise BadRequest(f"limit={value} is out of range: 1 to {settings.max_limit}")
    return value


def offset(raw: str | None) -> int:
    """How many matching features to skip (0 when absent).

    >>> offset("20"), offset(None)
    (20, 0)
    """
    return 0 if raw is None else _integer("offset", raw)


def text_search(raw: str | None) -> tuple[str, ...]:
    """The search keys of `q` (OGC API - Features - Part 9: comma-separated terms, any may match); () when absent.

    >>> text_search("Jean  Moulin,Évry"), text_search(None)
    (('jean moulin', 'evry'), ())
    """
    if raw is None:
        return ()
    if len(raw) > MAX_Q_LENGTH:
        raise BadRequest(f"q is {len(raw)} characters long; at most {MAX_Q_LENGTH}")
    return textsearch.terms(raw)


def search_limit(raw: str | None) -> int:
    """How many results `/search` gives: `SEARCH_LIMIT` when absent, 1 to `MAX_SEARCH_LIMIT`.

    >>> search_limit(None), search_limit("20")
    (8, 20)
    """
    if raw is None:
        return SEARCH_LIMIT
    value = _integer("limit", raw)
    if not 1 <= value <= MAX_SEARCH_LIMIT:
        raise BadRequest(f"limit={value} is out of range: 1 to {MAX_SEARCH_LIMIT}")
    return value


def _integer(name: str, raw: str) -> int:
    """A non-negative integer in ASCII digits, or a 400 naming the parameter."""
    if not _INTEGER.match(raw.strip(" ")):
        raise BadRequest(f"{name}={raw[:50]!r} is not a non-negative integer")
    return int(raw)


def number(name: str, raw: str) -> float:
    """One finite number written in ASCII decimal (sign, point and exponent allowed), or a 400.

    Python's `float` alone would read `1_0` as 10, a full-width `１` as 1, and `inf` or `nan`.

    >>> number("lon", "-1.5"), number("x", " 2e3 "), number("x", ".5")
    (-1.5, 2000.0, 0.5)
    >>> number("lon", "1_0")
    Traceback (most recent call last):
    tileserver.core.errors.BadRequest: lon='1_0' is not a number (ASCII decimal digits only)
    """
    if not _DECIMAL.match(raw.strip(" ")):
        raise BadRequest(f"{name}={raw[:50]!r} is not a number (ASCII decimal digits only)")
    return float(raw)


def coordinate(name: str, raw: str | None, limit: float) -> float:
    """A required longitude or latitude within +-limit, or a 400.

    >>> coordinate("lat", "48.1", 90.0)
    48.1
    """
    if raw is None:
        raise BadRequest(f"parameter {name!r} is required")
    value = number(name, raw)
    if not -limit <= value <= limit:
        raise BadRequest(f"{name}={raw[:50]!r} is outside [-{limit:g}, {limit:g}]")
    return value


def rescale(raw: str) -> tuple[float, float]:
    """A raster's `rescale=min,max`: two numbers with min < max, or a 400.

    >>> rescale("0, 12.5")
    (0.0, 12.5)
    """
    parts = raw.split(",")
    if len(parts) != 2:
        raise BadRequest(f"rescale={raw[:50]!r} must be two numbers: min,max")
    low, high = (number("rescale", part) for part in parts)
    if not low < high:
        raise BadRequest(f"rescale={raw[:50]!r} needs min < max")
    return low, high


class Box(NamedTuple):
    """A `bbox` in lon/lat: its envelope, and its outline when that is not the envelope (projected boxes)."""

    envelope: BBox
    outline: BaseGeometry | None


def bbox(raw: str | None, bbox_crs: crs_.Crs) -> Box | None:
    """A `bbox` (4 numbers, or 6 with heights that are ignored) given in `bbox_crs`, in lon/lat.

    >>> bbox("-2,47,-1,48", crs_.CRS84)
    Box(envelope=BBox(west=-2.0, south=47.0, east=-1.0, north=48.0), outline=None)
    >>> bbox("-2,47,0,-1,48,100", crs_.CRS84).envelope.north
    48.0
    >>> bbox("300000,6700000,400000,6800000", crs_.parse("EPSG:2154")).outline.geom_type
    'Polygon'
    """
    if raw is None:
        return None
    numbers = _numbers("bbox", raw)
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    elif len(numbers) != 4:
        raise BadRequest(f"bbox needs 4 or 6 numbers, got {len(numbers)}")
    a1, a2, b1, b2 = numbers
    if bbox_crs.is_crs84:
        if not (-180 <= a1 <= 180 and -180 <= b1 <= 180 and -90 <= a2 <= b2 <= 90):
            raise BadRequest(
                f"bbox={raw[:100]!r}: longitudes must be in [-180, 180], latitudes in [-90, 90], south <= north"
            )
    elif a1 > b1 or a2 > b2:
        raise BadRequest(f"bbox={raw[:100]!r}: each minimum must be below its maximum")
    envelope, outline = crs_.bbox_to_crs84((a1, a2, b1, b2), bbox_crs)
    return Box(envelope, outline if bbox_crs.is_projected else None)


def _numbers(name: str, raw: str) -> list[float]:
    """Comma-separated finite numbers."""
    return [number(name, part) for part in raw.split(",")]


def crs(raw: str | None) -> crs_.Crs:
    """A CRS parameter (`crs`, `bbox-crs`, `filter-crs`); CRS84 when absent."""
    return crs_.CRS84 if raw is None else crs_.parse(raw)


def properties(raw: str | None, info: CollectionInfo) -> tuple[str, ...] | None:
    """The properties to return (None = all), each checked against the collection.

    >>> from tileserver.core.dataset import Field
    >>> info = CollectionInfo("c", "", "", "Point", "uai", (Field("uai", "string"), Field("nom", "string")), 0,
    ...                       BBox(0, 0, 1, 1), 0, 14)
    >>> properties("nom,uai", info), properties(None, info), properties("", info)
    (('nom', 'uai'), None, ())
    """
    if raw is None:
        return None
    names = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    for name in names:
        _property(name, info)
    return names


def sortby(raw: str | None, info: CollectionInfo) -> tuple[tuple[str, bool], ...]:
    """`sortby` terms as (property, ascending): `nom`, `+nom` and `-ips`, comma-separated.

    >>> from tileserver.core.dataset import Field
    >>> info = CollectionInfo("c", "", "", "Point", "uai", (Field("nom", "string"), Field("ips", "number")), 0,
    ...                       BBox(0, 0, 1, 1), 0, 14)
    >>> sortby("-ips,+nom", info)
    (('ips', False), ('nom', True))
    """
    if raw is None:
        return ()
    terms = []
    for term in raw.split(","):
        term = term.strip()
        if not _NAME.match(term):
            raise BadRequest(f"sortby term {term[:100]!r} is not [+|-]property")
        name = term.lstrip("+-")
        _property(name, info)
        terms.append((name, not term.startswith("-")))
    return tuple(terms)


def _property(name: str, info: CollectionInfo) -> str:
    """A property of the collection (its fields and its key), or a 400 naming the known ones."""
    if info.field(name) is None and name != info.key:
        known = ", ".join(f.name for f in info.fields)
        raise BadRequest(f"collection {info.id!r} has no property {name[:100]!r}; known: {known}")
    return name


def datetime_(raw: str | None) -> tuple[datetime | None, datetime | None] | None:
    """A `datetime` instant or interval (RFC 3339, `..` or empty for an open end), checked.

    No collection has a temporal property yet, so the value only has to be valid.

    >>> datetime_("2024-01-01T00:00:00Z/..")[1] is None
    True
    """
    if raw is None:
        return None
    parts = raw.split("/")
    if len(parts) > 2:
        raise BadRequest(f"datetime={raw[:100]!r} is neither an instant nor an interval")
    ends = [_instant(p) for p in parts]
    if len(ends) == 1:
        if ends[0] is None:
            raise BadRequest("datetime needs an instant or an interval")
        return ends[0], ends[0]
    start, end = ends
    if start is None and end is None:
        raise BadRequest("datetime needs at least one end of its interval")
    if start is not None and end is not None and _utc(start) > _utc(end):
        raise BadRequest(f"datetime={raw[:100]!r} ends before it starts")
    return start, end


def _instant(raw: str) -> datetime | None:
    """One RFC 3339 date or date-time; None for an open end."""
    if raw in ("", ".."):
        return None
    try:
        return datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise BadRequest(f"datetime {raw[:100]!r} is not an RFC 3339 date or date-time") from None


def _utc(moment: datetime) -> float:
    """A comparable number for an aware or naive date-time (naive ones taken as UTC)."""
    return moment.timestamp() if moment.tzinfo else moment.replace(tzinfo=UTC).timestamp()


def equals(args: MultiDict, info: CollectionInfo, reserved: Collection[str]) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """Property equality filters typed as their columns hold them (`?type=college&type=lycee` is an OR).

    Any other unknown name, or a value its property's type cannot hold, is a 400.
    """
    filters = []
    for name in args:
        if name in reserved:
            continue
        if info.field(name) is None and name != info.key:
            known = sorted({*reserved, *(f.name for f in info.fields)})
            raise UnknownParameter(f"unknown query parameter {name[:100]!r}; known: {', '.join(known)}")
        field = info.field(name) or Field(name, "string")
        filters.append((name, tuple(typed(field, value) for value in args.getlist(name))))
    return tuple(filters)


_BOOLEAN_WORDS = {"true": True, "1": True, "false": False, "0": False}


def typed(field: Field, raw: str) -> Any:
    """A property filter's request string as the property's column holds it, or a 400 saying why not.

    >>> typed(Field("n", "integer"), "12"), typed(Field("ok", "boolean"), "true"), typed(Field("t", "number"), "2")
    (12, True, 2.0)
    >>> typed(Field("n", "integer"), "1e3"), typed(Field("nom", "string"), " x")
    (1000, ' x')
    """
    if field.type == "string":
        return raw
    if field.type == "boolean":
        word = raw.strip().lower()
        if word not in _BOOLEAN_WORDS:
            raise BadRequest(f"{field.name}={raw[:50]!r} is not a valid boolean (true, false, 1 or 0)")
        return _BOOLEAN_WORDS[word]
    value = number(field.name, raw)
    if field.type == "number":
        return value
    if not value.is_integer() or not -(2**63) <= value < 2**63:  # beyond every integer column's range
        raise BadRequest(f"{field.name}={raw[:50]!r} is not a valid integer")
    return int(value)

