"""CQL2 filters as SQL: one translator from the pygeofilter AST, two dialects (PostGIS and SQLite).

The translator emits parts, not text: raw SQL written here, identifiers taken only from the
collection's fields, and parameters for every value a client sent. A dialect renders them
(`psycopg.sql` composition with `%s`, or quoted names with `?`) and spells the few things the two
databases say differently: booleans, case-sensitive LIKE, `CASEI`/`ACCENTI` (see `textfold`), and
spatial predicates, which SQLite evaluates with shapely through `ecarto_relate` (see `register_sqlite`).

A text property with a hidden search key column (`CollectionInfo.searchable`) lets `=` and `LIKE`,
folded or not, first narrow the rows through that column's index with a pattern that matches at least
as much (`search_pattern`); the exact comparison then decides on the rows that remain, reading the
property's precomputed fold (`textfold.STORED_FOLDS`) rather than folding it row by row.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import shapely
from psycopg import sql
from pygeofilter import ast
from shapely.geometry.base import BaseGeometry

from tileserver.core import textfold
from tileserver.core.dataset import Field, folded_column, stored_column
from tileserver.core.errors import BadRequest
from tileserver.core.store import CollectionInfo

GEOMETRY = "geometry"  # the queryable naming a feature's geometry
GEOMETRY_COLUMN = "geom"  # its column in both stores

# The GEOS predicate of (literal, feature) for a CQL2 function whose first argument is the feature.
_CONVERSE = {
    "intersects": "intersects", "disjoint": "disjoint", "equals": "equals", "touches": "touches",
    "crosses": "crosses", "overlaps": "overlaps", "within": "contains", "contains": "within",
}
_KINDS = {"string": "string", "integer": "number", "number": "number", "boolean": "boolean"}
# pygeofilter's names of the CQL2 text functions (it reads CASEI as `lower`).
FOLDS = {"lower": textfold.CASEI, "casei": textfold.CASEI, "accenti": textfold.ACCENTI}


class Ident(NamedTuple):
    """A column name, already checked against the collection."""

    name: str


class Param(NamedTuple):
    """A value that travels as a query parameter."""

    value: Any


Part = str | Ident | Param
Fragment = list[Part]


class Dialect:
    """How one database spells what the translator cannot write once for both."""

    def boolean(self, value: bool) -> Any:
        """A boolean as the database stores it."""
        raise NotImplementedError

    def like(self, column: Fragment, pattern: list[str | None]) -> Fragment:
        """A case-sensitive match of `pattern` (literal text, None for `%`, '' for `_`)."""
        raise NotImplementedError

    def spatial(self, op: str, geometry: BaseGeometry, literal_first: bool) -> Fragment:
        """The feature's geometry in relation `op` (a CQL2 name without `s_`) with a literal."""
        raise NotImplementedError

    def fold(self, fold: textfold.Fold, text: Fragment) -> Fragment:
        """A text column's value folded (CASEI or ACCENTI) exactly as `fold.apply` folds a literal."""
        raise NotImplementedError

    def text_match(self, column: str, pattern: list[str | None]) -> Fragment:
        """Rows whose search key column matches a pattern of search keys, found through its index."""
        raise NotImplementedError


class PostGIS(Dialect):
    """PostgreSQL with PostGIS: booleans are booleans, LIKE is case-sensitive, ST_* do the geometry."""

    def boolean(self, value: bool) -> Any:
        return value

    def like(self, column: Fragment, pattern: list[str | None]) -> Fragment:
        text = "".join("%" if p is None else "_" if p == "" else _escape(p, "\\%_", "\\") for p in pattern)
        return [*column, " LIKE ", Param(text)]

    def spatial(self, op: str, geometry: BaseGeometry, literal_first: bool) -> Fragment:
        literal = ["ST_GeomFromWKB(", Param(shapely.to_wkb(geometry)), ", 4326)"]
        column = [Ident(GEOMETRY_COLUMN)]
        first, second = (literal, column) if literal_first else (column, literal)
        return [f"ST_{op.capitalize()}(", *first, ", ", *second, ")"]

    def fold(self, fold: textfold.Fold, text: Fragment) -> Fragment:
        return ["translate(", *text, ", ", Param(fold.source), ", ", Param(fold.target), ")"]

    def text_match(self, column: str, pattern: list[str | None]) -> Fragment:
        return self.like([Ident(column)], pattern)  # a pg_trgm GIN index serves LIKE, prefix or infix


class SQLite(Dialect):
    """The GeoPackage's SQLite: booleans are 0/1, GLOB is a case-sensitive LIKE, shapely tests geometries."""

    def __init__(self, rtree: str, search: str = "", extent: BaseGeometry | None = None):
        self.rtree = rtree
        self.search = search  # the FTS5 trigram table over the collection's search key columns
        self.extent = extent  # the collection's, to tell a literal covering most of it

    def boolean(self, value: bool) -> Any:
        return int(value)

    def like(self, column: Fragment, pattern: list[str | None]) -> Fragment:
        glob = {"*": "[*]", "?": "[?]", "[": "[[]"}
        text = "".join(
            "*" if p is None else "?" if p == "" else "".join(glob.get(c, c) for c in p) for p in pattern
        )
        return [*column, " GLOB ", Param(text)]

    def spatial(self, op: str, geometry: BaseGeometry, literal_first: bool) -> Fragment:
        relation = op if literal_first else _CONVERSE[op]
        west, south, east, north = geometry.bounds
        near = [
            f"{self._key(geometry)} IN (SELECT id FROM ", Ident(self.rtree), " WHERE minx <= ", Param(east),
            " AND maxx >= ", Param(west), " AND miny <= ", Param(north), " AND maxy >= ", Param(south), ")",
        ]
        wkb = Param(shapely.to_wkb(geometry))
        if op == "disjoint":
            intersects = self._surely(geometry, "intersects", ["ecarto_relate(geom, 'intersects', ", wkb, ")"])
            return ["(geom IS NOT NULL AND NOT (", *near, " AND ", *intersects, "))"]
        tested = self._surely(geometry, relation, ["ecarto_relate(geom, ", Param(relation), ", ", wkb, ")"])
        return ["(", *near, " AND ", *tested, ")"]

    def _key(self, geometry: BaseGeometry) -> str:
        """The feature key an R-tree subquery tests: see `rtree_key`."""
        return "fid" if self.extent is None else rtree_key(geometry.bounds, self.extent)

    def _surely(self, geometry: BaseGeometry, relation: str, tested: Fragment) -> Fragment:
        """The test `tested`, skipped for the features whose R-tree box lies inside the literal: they surely relate.

        A feature inside a box the literal covers intersects it; inside its interior, it is contained
        by it too. For those the R-tree alone answers (its float32 boxes are rounded outward), and only
        the features near the literal's edge are decoded and tested in Python: a world-sized or a
        projected box then costs about what a plain bbox costs.
        """
        if relation not in ("intersects", "contains"):
            return tested
        inner = inner_box(geometry, interior=relation == "contains")
        if inner is None:
            return tested
        west, south, east, north = inner
        inside = [
            "fid IN (SELECT id FROM ", Ident(self.rtree), " WHERE minx >= ", Param(west), " AND maxx <= ",
            Param(east), " AND miny >= ", Param(south), " AND maxy <= ", Param(north), ")",
        ]
        return ["(", *inside, " OR ", *tested, ")"]

    def fold(self, fold: textfold.Fold, text: Fragment) -> Fragment:
        return [f"ecarto_{fold.name}(", *text, ")"]

    def text_match(self, column: str, pattern: list[str | None]) -> Fragment:
        """A prefix on the column's B-tree; else the rows holding every run of 3+ characters, from the trigram table.

        A trigram phrase query finds exactly the rows containing the run, and reads only the index,
        where `GLOB` on the trigram table (or a scan of the column) tests each candidate row.
        """
        runs = [p for p in pattern if p and len(p) >= 3]
        match = self.like([Ident(column)], pattern)
        if not runs or pattern[0] is not None:  # anchored at the start: a B-tree range
            return match
        phrases = " AND ".join(f'"{run}"' for run in runs)  # search keys hold no quote
        fts = ["fid IN (SELECT rowid FROM ", Ident(self.search), " WHERE ", Ident(self.search), " MATCH ",
               Param(f"{column} : ({phrases})"), ")"]
        return fts if pattern == [None, runs[0], None] else [*fts, " AND ", *match]


def rtree_key(bounds: Sequence[float], extent: BaseGeometry) -> str:
    """`fid`, or `+fid` (no index) when a box covers most of a collection's extent.

    SQLite turns an OR of indexed terms into one index lookup per row and term; when most rows
    match anyway, one scan of the table testing each term is several times cheaper.

    >>> rtree_key((-180, -90, 180, 90), shapely.box(0, 0, 1, 1)), rtree_key((0, 0, 0.1, 0.1), shapely.box(0, 0, 1, 1))
    ('+fid', 'fid')
    """
    if extent.area == 0:
        return "fid"
    return "+fid" if shapely.box(*bounds).intersection(extent).area / extent.area > 0.5 else "fid"


SHRINK = (0.0, 0.01, 0.03, 0.1, 0.2, 0.35, 0.5, 0.65, 0.8)  # fractions of the way to the centre tried


def inner_box(geometry: BaseGeometry, *, interior: bool = False) -> tuple[float, float, float, float] | None:
    """A box the geometry covers (with `interior`, inside its interior): its envelope shrunk toward its centre.

    Not the largest such box, a cheap one: a rectangle or a reprojected box keeps most of its
    envelope; None when the geometry has no area or nothing tried fits.

    >>> inner_box(shapely.box(-180, -90, 180, 90))
    (-180.0, -90.0, 180.0, 90.0)
    >>> [round(v, 2) for v in inner_box(shapely.Polygon([(0, 0), (4, 0), (0, 4)]))]
    [1.07, 1.07, 1.87, 1.87]
    >>> inner_box(shapely.box(0, 0, 1, 1), interior=True)
    (0.005, 0.005, 0.995, 0.995)
    >>> inner_box(shapely.Point(1, 2)) is None
    True
    """
    if geometry.area == 0:
        return None
    west, south, east, north = geometry.bounds
    centre = geometry.centroid
    if not geometry.contains(centre):
        centre = geometry.point_on_surface()
    test = shapely.contains_properly if interior else shapely.covers
    shapely.prepare(geometry)
    for f in SHRINK:
        box = (west + (centre.x - west) * f, south + (centre.y - south) * f,
               east - (east - centre.x) * f, north - (north - centre.y) * f)
        if test(geometry, shapely.box(*box)):
            return box
    return None


def _escape(text: str, special: str, escape: str) -> str:
    """Text with each special character preceded by the escape character.

    >>> _escape("50%_off", "\\\\%_", "\\\\")
    '50\\\\%\\\\_off'
    """
    return "".join(escape + c if c in special else c for c in text)


def like_pattern(pattern: str) -> list[str | None]:
    """A CQL2 LIKE pattern as runs of literal text, None for `%` and '' for `_` (`\\` escapes).

    >>> like_pattern("COL%_\\\\%")
    ['COL', None, '', '%']
    """
    parts: list[str | None] = []
    literal: list[str] = []
    chars = iter(pattern)
    for c in chars:
        if c == "\\":
            literal.append(next(chars, "\\"))
            continue
        if c in "%_":
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(None if c == "%" else "")
        else:
            literal.append(c)
    if literal:
        parts.append("".join(literal))
    return parts


def search_pattern(pattern: list[str | None]) -> list[str | None]:
    """A LIKE pattern on a text (as `like_pattern` splits it) made one on its search key that matches at least as much.

    Each literal run becomes its key (`textfold.search_key`) and `_` becomes `%`, since a character of
    the text may be none of its key's (a mark, a space merged with its neighbour) or two (œ).

    >>> search_pattern(["Saint-É", None, "", " - ", "", "tienne"])
    ['saint e', None, 'tienne']
    """
    parts: list[str | None] = []
    for part in pattern:
        key = textfold.search_key(part) if part else ""
        if key:
            parts.append(key)
        elif (part is None or part == "") and (not parts or parts[-1] is not None):
            parts.append(None)
    return parts


class Operand(NamedTuple):
    """A scalar side of a predicate: its SQL, its kind, and for a searchable property its name and folds so far."""

    sql: Fragment
    kind: str
    is_property: bool
    searchable: str | None = None
    folds: tuple[str, ...] = ()


class Translator:
    """Turns a checked filter AST into a SQL condition on one collection's columns."""

    def __init__(self, info: CollectionInfo, dialect: Dialect):
        self.info = info
        self.dialect = dialect
        self.fields: dict[str, Field] = {f.name: f for f in info.fields}
        self.fields.setdefault(info.key, Field(info.key, "string"))

    def condition(self, node: Any) -> Fragment:
        """The SQL of a condition (AND/OR chains are flattened, not recursed into)."""
        if isinstance(node, ast.And | ast.Or):
            joiner = " AND " if isinstance(node, ast.And) else " OR "
            return _balanced([self.condition(item) for item in chain(node)], joiner)
        if isinstance(node, ast.Not):
            return ["NOT (", *self.condition(node.sub_node), ")"]
        if isinstance(node, ast.Include):
            return ["(1 = 0)" if node.not_ else "(1 = 1)"]
        for kind, translate in self._predicates():
            if isinstance(node, kind):
                return translate(node)
        raise BadRequest(f"filter: {_name(node)} is not supported")

    def _predicates(self) -> Sequence[tuple[type, Callable[[Any], Fragment]]]:
        return (
            (ast.Comparison, self.comparison),
            (ast.Like, self.like),
            (ast.In, self.in_),
            (ast.Between, self.between),
            (ast.IsNull, self.is_null),
            (ast.SpatialComparisonPredicate, self.spatial),
        )

    def comparison(self, node: ast.Comparison) -> Fragment:
        lhs, rhs = self.operand(node.lhs), self.operand(node.rhs)
        if not (lhs.is_property or rhs.is_property):
            raise BadRequest("filter: a comparison needs a property on one side")
        _same_kind(lhs, rhs)
        compared = ["(", *lhs.sql, f" {node.op.value} ", *rhs.sql, ")"]
        column, literal = (lhs, rhs) if lhs.is_property else (rhs, lhs)
        if node.op.value != "=" or not column.searchable or literal.is_property:
            return compared
        return self._narrowed(column.searchable, [literal.sql[0].value], compared)

    def like(self, node: ast.Like) -> Fragment:
        column = self.subject(node.lhs)
        pattern = node.pattern
        if isinstance(pattern, ast.Function):  # CASEI('%Rennes%'): folded here, as the column is
            folded = self.operand(pattern)
            pattern = None if folded.is_property else folded.sql[0].value
        if column.kind != "string" or not isinstance(pattern, str):
            raise BadRequest("filter: LIKE compares a text property with a text pattern")
        parts = like_pattern(pattern)
        match = self.dialect.like(column.sql, parts)
        if node.not_:
            return ["NOT (", *match, ")"]
        if column.searchable:
            return self._narrowed(column.searchable, parts, match)
        return ["(", *match, ")"]

    def _narrowed(self, name: str, pattern: list[str | None], exact: Fragment) -> Fragment:
        """An exact text comparison tested only on the rows the search key index of property `name` lets through."""
        return ["(", *self.dialect.text_match(folded_column(name), search_pattern(pattern)), " AND ", *exact, ")"]

    def in_(self, node: ast.In) -> Fragment:
        column = self.subject(node.lhs)
        items = [self.literal_operand(v) for v in node.sub_nodes]
        for item in items:
            _same_kind(column, item)
        keyword = " NOT IN (" if node.not_ else " IN ("
        return ["(", *column.sql, keyword, *_join([i.sql for i in items], ", "), "))"]

    def between(self, node: ast.Between) -> Fragment:
        column, low, high = self.subject(node.lhs), self.literal_operand(node.low), self.literal_operand(node.high)
        _same_kind(column, low)
        _same_kind(column, high)
        keyword = " NOT BETWEEN " if node.not_ else " BETWEEN "
        return ["(", *column.sql, keyword, *low.sql, " AND ", *high.sql, ")"]

    def is_null(self, node: ast.IsNull) -> Fragment:
        if isinstance(node.lhs, ast.Attribute) and node.lhs.name == GEOMETRY:
            column: Fragment = [Ident(GEOMETRY_COLUMN)]
        else:
            column = self.property(node.lhs).sql
        return ["(", *column, " IS NOT NULL)" if node.not_ else " IS NULL)"]

    def spatial(self, node: ast.SpatialComparisonPredicate) -> Fragment:
        sides = (node.lhs, node.rhs)
        literal_first = isinstance(node.lhs, BaseGeometry)
        geometry, attribute = sides if literal_first else sides[::-1]
        if not isinstance(attribute, ast.Attribute) or attribute.name != GEOMETRY:
            raise BadRequest(f"filter: {node.op.name} compares the property {GEOMETRY!r} with a geometry literal")
        if not isinstance(geometry, BaseGeometry):
            raise BadRequest(f"filter: {node.op.name} needs a geometry literal (WKT, GeoJSON or BBOX)")
        return self.dialect.spatial(node.op.name.lower(), geometry, literal_first)

    def operand(self, node: Any) -> Operand:
        """A property or a literal, either maybe folded by CASEI or ACCENTI."""
        if isinstance(node, ast.Attribute):
            return self.property(node)
        if isinstance(node, ast.Function):
            return self.folded(node)
        return self.literal(node)

    def subject(self, node: Any) -> Operand:
        """What LIKE, IN and BETWEEN test: a property, maybe folded."""
        operand = self.operand(node)
        if not operand.is_property:
            raise BadRequest(f"filter: expected a property, got {_name(node)}")
        return operand

    def literal_operand(self, node: Any) -> Operand:
        """What IN and BETWEEN compare with: a literal, maybe folded."""
        operand = self.operand(node)
        if operand.is_property:
            raise BadRequest("filter: IN and BETWEEN compare a property with literals")
        return operand

    def folded(self, node: ast.Function) -> Operand:
        """CASEI(text) or ACCENTI(text): a property folded by the database, a literal folded here alike."""
        fold = FOLDS.get(node.name.lower())
        if fold is None:
            raise BadRequest(f"filter: function {node.name[:50]!r} is not supported; CASEI and ACCENTI are")
        if len(node.arguments) != 1:
            raise BadRequest(f"filter: {fold.name.upper()} takes one argument")
        text = self.operand(node.arguments[0])
        if text.kind != "string":
            raise BadRequest(f"filter: {fold.name.upper()} takes a text, not a {text.kind}")
        if text.is_property:
            folds = text.folds if text.folds[-1:] == (fold.name,) else (*text.folds, fold.name)  # folds are idempotent
            if text.searchable and folds in textfold.STORED_FOLDS:
                return Operand([Ident(stored_column(text.searchable, folds))], "string", True, text.searchable, folds)
            return Operand(self.dialect.fold(fold, text.sql), "string", True, text.searchable, folds)
        return Operand([Param(fold.apply(text.sql[0].value))], "string", False)

    def property(self, node: Any) -> Operand:
        """A property of the collection (never the geometry), or a 400."""
        if not isinstance(node, ast.Attribute):
            raise BadRequest(f"filter: expected a property, got {_name(node)}")
        field = self.fields.get(node.name)
        if field is None:
            known = ", ".join([*self.fields, GEOMETRY])
            raise BadRequest(
                f"filter: collection {self.info.id!r} has no queryable {node.name[:100]!r}; known: {known}"
            )
        searchable = field.name if field.name in self.info.searchable else None
        return Operand([Ident(field.name)], _KINDS[field.type], True, searchable)

    def literal(self, value: Any) -> Operand:
        """A text, number or boolean literal, as a parameter."""
        if isinstance(value, bool):
            return Operand([Param(self.dialect.boolean(value))], "boolean", False)
        if isinstance(value, int | float):
            return Operand([Param(value)], "number", False)
        if isinstance(value, str):
            return Operand([Param(value)], "string", False)
        raise BadRequest(f"filter: {_name(value)} cannot be used here (no temporal or array properties exist)")


def _same_kind(a: Operand, b: Operand) -> None:
    """A 400 when two operands cannot be compared (CQL2 compares like with like)."""
    if a.kind != b.kind:
        raise BadRequest(f"filter: cannot compare a {a.kind} with a {b.kind}")


def _balanced(operands: list[Fragment], joiner: str) -> Fragment:
    """A chain of operands as a balanced tree of parenthesised halves, `log2(n)` levels deep.

    SQLite parses `a AND b AND c ...` as one nested expression per operand and refuses more than
    1000 levels, while a filter may chain thousands of conditions.

    >>> "".join(_balanced([["a"], ["b"], ["c"], ["d"]], " OR "))
    '((a OR b) OR (c OR d))'
    """
    if len(operands) == 1:
        return operands[0]
    middle = len(operands) // 2
    return ["(", *_balanced(operands[:middle], joiner), joiner, *_balanced(operands[middle:], joiner), ")"]


def _join(fragments: list[Fragment], separator: str) -> Fragment:
    """Fragments one after the other, with a separator between them."""
    joined: Fragment = []
    for i, fragment in enumerate(fragments):
        if i:
            joined.append(separator)
        joined.extend(fragment)
    return joined


def chain(node: ast.Combination) -> list[Any]:
    """The operands of a chain of one combination (AND or OR), left to right, without recursion."""
    kind = type(node)
    operands: list[Any] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if type(item) is kind:
            stack.extend((item.rhs, item.lhs))
        else:
            operands.append(item)
    return operands


def _name(node: Any) -> str:
    """How a message names a node: its CQL2 construct or its literal type."""
    if isinstance(node, ast.Node):
        return type(node).__name__
    return f"a {type(node).__name__} literal"


def to_postgis(info: CollectionInfo, node: Any) -> tuple[sql.Composed, list[Any]]:
    """A filter as a psycopg condition with `%s` placeholders, and its parameters."""
    return render_postgis(Translator(info, PostGIS()).condition(node))


def render_postgis(fragment: Fragment) -> tuple[sql.Composed, list[Any]]:
    """Parts as psycopg SQL with `%s` placeholders, and their parameters."""
    composed = [
        sql.SQL(p) if isinstance(p, str) else sql.Identifier(p.name) if isinstance(p, Ident) else sql.Placeholder()
        for p in fragment
    ]
    return sql.Composed(composed), [p.value for p in fragment if isinstance(p, Param)]


def to_sqlite(info: CollectionInfo, node: Any, *, rtree: str, search: str = "") -> tuple[str, list[Any]]:
    """A filter as SQLite text with `?` placeholders and its parameters; `rtree`, `search`: the table's indexes."""
    return render_sqlite(Translator(info, SQLite(rtree, search, shapely.box(*info.extent))).condition(node))


def render_sqlite(fragment: Fragment) -> tuple[str, list[Any]]:
    """Parts as SQLite text with `?` placeholders, and their parameters."""
    text = "".join(p if isinstance(p, str) else _quote(p.name) if isinstance(p, Ident) else "?" for p in fragment)
    return text, [p.value for p in fragment if isinstance(p, Param)]


def _quote(name: str) -> str:
    """An SQLite identifier.

    >>> _quote('a"b')
    '"a""b"'
    """
    return '"' + name.replace('"', '""') + '"'


_RELATIONS: dict[str, Callable[[BaseGeometry, BaseGeometry], bool]] = {
    name: getattr(shapely, name) for name in set(_CONVERSE.values())
}
_literals = threading.local()


def _literal(wkb: bytes) -> BaseGeometry:
    """A literal geometry, decoded and prepared once per thread and kept for the next rows."""
    cache = getattr(_literals, "cache", None)
    if cache is None or len(cache) > 16:
        cache = _literals.cache = {}
    literal = cache.get(wkb)
    if literal is None:
        literal = cache[wkb] = shapely.from_wkb(wkb)
        shapely.prepare(literal)
    return literal


def register_sqlite(conn: Any, decode: Callable[[bytes], BaseGeometry | None]) -> None:
    """Give an SQLite connection the functions its dialect calls: `ecarto_relate`, `ecarto_casei`, `ecarto_accenti`.

    `ecarto_relate` tells whether the literal (WKB) stands in `relation` to the row's geometry, which `decode`
    reads from the column's blob; a row without a geometry gives SQL NULL.
    """

    def relate(blob: bytes | None, relation: str, wkb: bytes) -> int | None:
        if blob is None:
            return None
        return int(_RELATIONS[relation](_literal(wkb), decode(blob)))

    conn.create_function("ecarto_relate", 3, relate, deterministic=True)
    for fold in (textfold.CASEI, textfold.ACCENTI):
        conn.create_function(f"ecarto_{fold.name}", 1, _nullable(fold.apply), deterministic=True)


def _nullable(function: Callable[[str], str]) -> Callable[[str | None], str | None]:
    """A text function that, like SQL's, gives NULL for NULL."""
    return lambda text: None if text is None else function(text)
