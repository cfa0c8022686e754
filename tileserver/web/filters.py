"""CQL2 filters (Part 3): text or JSON in, a checked pygeofilter AST with lon/lat geometries out.

pygeofilter does the parsing; this module bounds what it is given (length, nesting), smooths over
where pygeofilter 0.4 departs from CQL2 1.0 (see `_text_parser` and `_cql2_json`), and replaces
every geometry literal by a valid shapely geometry in CRS84, so stores translate a tree whose only
geometries are ready to compare with theirs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import shapely
from lark import Lark, v_args
from lark.exceptions import LarkError
from pygeofilter import ast, values
from pygeofilter.parsers.cql2_json import parse as parse_json
from pygeofilter.parsers.cql2_text import parser as cql2_text
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from tileserver.core import crs as crs_
from tileserver.core.cql import chain
from tileserver.core.errors import BadRequest

LANGUAGES = ("cql2-text", "cql2-json")
_PARSE_ERRORS = (LarkError, ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError)

# pygeofilter 0.4's CQL2 text grammar, corrected where it rejects valid CQL2.
_GRAMMAR_FIXES = {
    # NOT applies to any parenthesised condition: NOT (a = 1 AND b = 2)
    '"NOT"i "(" predicate ")"': '"NOT"i "(" condition ")"',
    # one-letter property names
    "attribute: /[a-zA-Z][a-zA-Z_:0-9.]+/": "attribute: /[a-zA-Z_][a-zA-Z_:0-9.]*/",
    # a quote inside a string is doubled: 'O''Brien'
    "SINGLE_QUOTED: \"'\" /.*?/ \"'\"": "SINGLE_QUOTED: /'(?:[^']|'')*'/",
}


@v_args(meta=False, inline=True)
class _Transformer(cql2_text.CQLTransformer):
    """pygeofilter's transformer, with doubled quotes read and without its debugging prints."""

    def SINGLE_QUOTED(self, token: str) -> str:
        return token[1:-1].replace("''", "'")

    def wkt__geometry_with_srid(self, srid: Any, geometry: dict) -> dict:
        geometry["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{srid}"}}
        return geometry

    def wkt__multipoint_2(self, *coordinates: Any) -> dict:
        return {"type": "MultiPoint", "coordinates": list(coordinates)}

    def DATETIME(self, token: str) -> datetime:
        return instant(token)

    def DATE(self, token: str) -> date:
        return day(token)


@lru_cache(maxsize=1)
def _text_parser() -> Lark:
    """An LALR parser of pygeofilter's CQL2 text grammar with `_GRAMMAR_FIXES` applied (built once)."""
    grammar = Path(cql2_text.__file__).with_name("grammar.lark").read_text()
    for wrong, right in _GRAMMAR_FIXES.items():
        if wrong not in grammar:
            raise RuntimeError(f"pygeofilter's CQL2 grammar changed: {wrong!r} not found")
        grammar = grammar.replace(wrong, right)
    packages = os.path.dirname(os.path.dirname(cql2_text.__file__))
    return Lark(grammar, parser="lalr", maybe_placeholders=False, transformer=_Transformer(), import_paths=[packages])


def parse(text: str, lang: str, filter_crs: crs_.Crs, *, max_length: int, max_depth: int) -> ast.Node:
    """The AST of a CQL2 filter, nested at most `max_depth` levels, geometries in lon/lat.

    >>> node = parse("S_INTERSECTS(geometry, POINT(48 2)) AND type = 'college'", "cql2-text",
    ...              crs_.parse("EPSG:4326"), max_length=1000, max_depth=5)
    >>> node.lhs.rhs.wkt, node.rhs
    ('POINT (2 48)', Equal(lhs=ATTRIBUTE type, rhs='college'))
    """
    if len(text) > max_length:
        raise BadRequest(f"filter is {len(text)} characters long; at most {max_length} are accepted")
    language(lang)
    try:
        if lang == "cql2-text":
            tree = _text_parser().parse(text)
        else:
            tree = parse_json(_cql2_json(json.loads(text), max_depth * 4 + 8))
    except _PARSE_ERRORS as e:
        raise BadRequest(f"filter is not valid {lang}: {_first_line(e)}") from None
    if not isinstance(tree, ast.Node):
        raise BadRequest("filter must be a condition (a predicate, or predicates combined)")
    return _Checker(filter_crs, max_depth).node(tree, 1)


def language(value: str | None) -> str:
    """A `filter-lang`: cql2-text when absent, else one of `LANGUAGES`.

    >>> language(None), language("cql2-json")
    ('cql2-text', 'cql2-json')
    """
    if value is None:
        return LANGUAGES[0]
    if value not in LANGUAGES:
        raise BadRequest(f"filter-lang={value[:50]!r} is not supported; use one of {', '.join(LANGUAGES)}")
    return value


def intersecting(node: ast.Node | None, geometry: BaseGeometry) -> ast.Node:
    """A filter (or none) narrowed to features intersecting a lon/lat geometry.

    >>> intersecting(None, shapely.Point(1, 2))
    GeometryIntersects(lhs=ATTRIBUTE geometry, rhs=<POINT (1 2)>)
    """
    condition = ast.GeometryIntersects(ast.Attribute("geometry"), geometry)
    return condition if node is None else ast.And(node, condition)


def _first_line(error: Exception) -> str:
    """The first line of a parser's message (lark adds the input and a caret below it)."""
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


def _cql2_json(node: Any, budget: int) -> Any:
    """CQL2-JSON 1.0 rewritten where pygeofilter 0.4 expects an older form; too deep is a 400."""
    if budget <= 0:
        raise BadRequest("filter is nested too deeply")
    if isinstance(node, list):
        return [_cql2_json(item, budget - 1) for item in node]
    if not isinstance(node, dict):
        return node
    if "bbox" in node and isinstance(node["bbox"], list):
        return _bbox_polygon(node["bbox"])
    if isinstance(node.get("timestamp"), str):
        return instant(node["timestamp"])
    if isinstance(node.get("date"), str):
        return day(node["date"])
    if isinstance(node.get("interval"), list):
        return values.Interval(*(None if v == ".." else _temporal(v) for v in node["interval"]))
    node = {key: _cql2_json(value, budget - 1) for key, value in node.items()}
    args = node.get("args")
    if node.get("op") == "between" and isinstance(args, list) and len(args) == 3:
        node["args"] = [args[0], args[1:]]
    if node.get("op") == "accenti" and isinstance(args, list):  # pygeofilter knows casei, not accenti
        return {"function": {"name": "accenti", "arguments": args}}
    return node


def instant(text: str) -> datetime:
    """A CQL2 timestamp (RFC 3339), parsed strictly and at once.

    pygeofilter hands timestamps to `dateparser`, which tries every language it knows on a string it
    cannot read: seconds of CPU for one invalid value.

    >>> instant("2024-01-31T12:00:00Z")
    datetime.datetime(2024, 1, 31, 12, 0, tzinfo=datetime.timezone.utc)
    """
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"filter: {text[:50]!r} is not an RFC 3339 timestamp") from None


def day(text: str) -> date:
    """A CQL2 date (RFC 3339 full-date).

    >>> day("2024-02-29")
    datetime.date(2024, 2, 29)
    """
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"filter: {text[:50]!r} is not an RFC 3339 date") from None


def _temporal(value: Any) -> date | datetime:
    """One end of a CQL2-JSON interval: a date or a timestamp."""
    if not isinstance(value, str):
        raise BadRequest("filter: an interval holds dates, timestamps or '..'")
    return day(value) if len(value) == 10 else instant(value)


def _bbox_polygon(numbers: list) -> dict:
    """A CQL2 bbox literal (4 numbers, or 6 with heights) as a GeoJSON polygon.

    >>> _bbox_polygon([0, 1, 2, 3])["coordinates"][0][2]
    [2.0, 3.0]
    """
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4 or not all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers):
        raise BadRequest("a bbox literal needs 4 or 6 numbers")
    w, s, e, n = (float(v) for v in numbers)
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


class _Checker:
    """One walk over a parsed filter: nesting counted, geometry literals made shapely and lon/lat.

    A chain of the same AND or OR counts as one level (`a OR b OR c` is as deep as `a OR b`), and is
    walked in a loop, so long chains never recurse; any other nesting recurses at most `max_depth`.
    """

    def __init__(self, filter_crs: crs_.Crs, max_depth: int):
        self.crs = filter_crs
        self.max_depth = max_depth

    def node(self, node: Any, depth: int) -> Any:
        """The node with its literals converted, or a 400 when it nests too deeply."""
        if isinstance(node, ast.Node) and not isinstance(node, ast.Attribute) and depth > self.max_depth:
            raise BadRequest(f"filter nests more than {self.max_depth} levels (ECARTO_MAX_FILTER_DEPTH)")
        if isinstance(node, ast.And | ast.Or):
            operands = [self.node(item, depth + 1) for item in chain(node)]
            return type(node).from_items(*operands)
        if isinstance(node, ast.Not):
            return ast.Not(self.node(node.sub_node, depth + 1))
        if isinstance(node, values.Geometry | values.Envelope):
            return self.geometry(node.geometry, node.geometry.get("crs"))
        if isinstance(node, ast.Function) and node.name.lower() == "bbox":
            return self.geometry(_bbox_polygon(node.arguments), None)
        if isinstance(node, list):
            return [self.node(item, depth) for item in node]
        if isinstance(node, float) and not math.isfinite(node):
            raise BadRequest("filter holds a number that is not finite")
        if isinstance(node, int) and not isinstance(node, bool) and not -(2**63) <= node < 2**63:
            raise BadRequest("filter holds an integer beyond the 64-bit range of every integer property")
        if isinstance(node, str) and "\x00" in node:
            raise BadRequest("filter holds a NUL character, which no text property can contain")
        if isinstance(node, ast.Node) and dataclasses.is_dataclass(node):
            changes = {f.name: self.node(getattr(node, f.name), depth + 1) for f in dataclasses.fields(node)}
            return dataclasses.replace(node, **changes)
        return node

    def geometry(self, literal: dict, crs_member: dict | None) -> BaseGeometry:
        """A GeoJSON-like literal as a lon/lat geometry: valid, 2D, from its CRS (EWKT SRID) or `filter-crs`."""
        source = crs_.parse(crs_member["properties"]["name"]) if crs_member else self.crs
        try:
            geometry = shapely.force_2d(shape(literal))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, shapely.errors.ShapelyError) as e:
            raise BadRequest(f"filter geometry cannot be read: {e}") from None
        if geometry.is_empty or not shapely.is_valid(geometry):
            reason = "it is empty" if geometry.is_empty else shapely.is_valid_reason(geometry)
            raise BadRequest(f"filter geometry {geometry.wkt[:100]} cannot be used: {reason}")
        result = crs_.to_crs84(geometry, source)
        if not all(map(math.isfinite, result.bounds)):
            raise BadRequest(f"filter geometry {geometry.wkt[:100]} lies outside the area of {source.uri}")
        return result

