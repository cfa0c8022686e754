"""What a CQL2 filter will cost the database, estimated before it runs, and the budget it must fit.

The unit is one plain test of one row (a comparison of a column with a value, about 0.1 µs in
SQLite): a filter costs the collection's feature count times the sum of what each predicate costs
per row. A folded comparison (`CASEI`, `ACCENTI`) folds every row's text first, in Python on SQLite
and with a long `translate()` on PostgreSQL, about a hundred plain tests per fold; a spatial test is
an index lookup and a test in C, except for the features near the edge of its literal, which
SQLite decodes and tests in Python (see `cql.SQLite.spatial`): about four hundred.

Properties with a text index on their folded values (`indexed`: `CollectionInfo.searchable`) cost
what a plain test costs in the comparisons that index narrows (`=` and `LIKE`); the caller passes them
to `check`.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import shapely
from pygeofilter import ast
from shapely.geometry.base import BaseGeometry

from tileserver.core.cql import FOLDS, chain, inner_box
from tileserver.core.errors import BadRequest
from tileserver.core.store import CollectionInfo

FOLD = 100  # one CASEI or ACCENTI applied to a property, per row
SPATIAL = 2  # an index lookup and a GEOS test in C, per row
EDGE = 400  # a feature decoded and tested in Python, per row near a literal's edge


@dataclass
class Cost:
    """A filter's estimated cost per row, and what it is made of (for the message of a refusal)."""

    per_row: float = 0.0
    predicates: int = 0
    folds: int = 0  # CASEI/ACCENTI applied to properties without a folded text index
    edge_share: float = 0.0  # the share of the collection tested in Python near a literal's edge, summed

    def describe(self, rows: int) -> str:
        """What the cost is made of, in words."""
        return (f"{self.predicates} predicates, {self.folds} CASEI/ACCENTI on properties without a text index,"
                f" {self.edge_share * rows:,.0f} features tested near a geometry's edge, over {rows:,} features")


def estimate(node: Any, info: CollectionInfo, *, indexed: Collection[str] = ()) -> Cost:
    """The cost per row of a checked filter AST on a collection.

    >>> from tileserver.core.dataset import Field
    >>> from tileserver.core.grid import BBox
    >>> info = CollectionInfo("c", "", "", "Point", "id", (Field("nom", "string"),), 100, BBox(0, 0, 1, 1), 0, 14)
    >>> folded = ast.Equal(ast.Function("accenti", [ast.Function("casei", [ast.Attribute("nom")])]), "x")
    >>> estimate(ast.Or(folded, ast.Equal(ast.Attribute("nom"), "y")), info).per_row
    202.0
    >>> estimate(folded, info, indexed={"nom"}).per_row
    1.0
    >>> estimate(ast.NotEqual(folded.lhs, "x"), info, indexed={"nom"}).per_row
    201.0
    """
    cost = Cost()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.And | ast.Or):
            stack.extend(chain(item))
        elif isinstance(item, ast.Not):
            stack.append(item.sub_node)
        elif isinstance(item, ast.SpatialComparisonPredicate):
            _spatial(cost, item, info)
        elif isinstance(item, ast.Node):
            folds = _folds(item, indexed if _narrowed(item) else ())
            cost.predicates += 1
            cost.folds += folds
            cost.per_row += 1 + FOLD * folds
    return cost


def check(node: Any, info: CollectionInfo, budget: int, *, indexed: Collection[str] = ()) -> None:
    """A 400 saying why when a filter's estimated cost on the collection exceeds `budget` row tests."""
    if node is None:
        return
    cost = estimate(node, info, indexed=indexed)
    total = cost.per_row * max(info.count, 1)
    if total > budget:
        raise BadRequest(
            f"filter is too expensive: about {total:,.0f} row tests ({cost.describe(info.count)}), over the"
            f" budget of {budget:,} (ECARTO_MAX_FILTER_COST); use fewer predicates, fewer CASEI/ACCENTI on"
            " properties without a text index, or smaller geometries"
        )


def _narrowed(node: Any) -> bool:
    """Whether a text index can narrow a predicate: `=` and `LIKE` can, `<>`, `NOT LIKE` or `<` cannot."""
    return isinstance(node, ast.Equal) or (isinstance(node, ast.Like) and not node.not_)


def _folds(node: Any, indexed: Collection[str]) -> int:
    """How many CASEI/ACCENTI a predicate applies to properties without a folded text index."""
    count = 0
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Function) and item.name.lower() in FOLDS:
            subject = _attribute(item)
            count += subject is not None and subject not in indexed
            stack.extend(item.arguments)
        elif isinstance(item, ast.Node):
            stack.extend(item.get_sub_nodes())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def _attribute(function: ast.Function) -> str | None:
    """The property a chain of folds applies to (`nom` in ACCENTI(CASEI(nom))), or None for a literal."""
    argument = function.arguments[0] if len(function.arguments) == 1 else None
    while isinstance(argument, ast.Function) and len(argument.arguments) == 1:
        argument = argument.arguments[0]
    return argument.name if isinstance(argument, ast.Attribute) else None


def _spatial(cost: Cost, node: ast.SpatialComparisonPredicate, info: CollectionInfo) -> None:
    """Add a spatial predicate: an index test per row, and Python tests for the rows near its literal's edge."""
    literal = next((side for side in (node.lhs, node.rhs) if isinstance(side, BaseGeometry)), None)
    share = 0.0 if literal is None else edge_share(literal, info)
    cost.predicates += 1
    cost.edge_share += share
    cost.per_row += SPATIAL + EDGE * share


def edge_share(literal: BaseGeometry, info: CollectionInfo) -> float:
    """The share of a collection's extent that lies in the literal's envelope but not in its inner box.

    Features there are tested one by one; those inside the inner box are answered by the index.

    >>> from tileserver.core.grid import BBox
    >>> info = CollectionInfo("c", "", "", "Point", "id", (), 100, BBox(0, 0, 10, 10), 0, 14)
    >>> edge_share(shapely.box(-180, -90, 180, 90), info)
    0.0
    >>> round(edge_share(shapely.Polygon([(0, 0), (10, 0), (0, 10)]), info), 2)
    0.96
    """
    extent = shapely.box(*info.extent)
    envelope = shapely.box(*literal.bounds)
    inner = inner_box(literal)
    edge = envelope if inner is None else envelope.difference(shapely.box(*inner))
    if extent.area == 0:  # every feature at one point (or on one line): all of them or none
        return float(edge.intersects(extent))
    share = edge.intersection(extent).area / extent.area
    return min(1.0, share) if math.isfinite(share) else 1.0
