"""Text search (`q`, OGC API - Features - Part 9): terms, the rows they match, and how well.

`q` holds comma-separated terms, any of which may match (OR); the words of one term must appear in
that order, one after the other. A row matches when the search key (`textfold.search_key`: no case,
accent or punctuation) of one of its searchable properties (`CollectionInfo.searchable`) contains a
term's key. Rows are ranked by how their first searchable property (`nom`) matches: the whole name (0),
its start (1), the start of one of its words (2), anywhere (3); a row found only through another
property (a school's `nom_commune`) comes last (4). The stores order by `rank_sql`, then by size
(largest first) and name, and `rank` gives the same number in Python, so the results of several
collections can be merged. `condition` with a rank selects the rows of that rank only: the map's
search asks rank by rank and stops when it has enough, so a short prefix never sorts every row that
merely contains it.
"""

from __future__ import annotations

from collections.abc import Callable

from tileserver.core.cql import Dialect, Fragment, Ident
from tileserver.core.dataset import folded_column
from tileserver.core.errors import BadRequest
from tileserver.core.store import CollectionInfo, FeatureQuery
from tileserver.core.textfold import search_key

OTHER_PROPERTY = 4  # the rank of a row matched only through a searchable property other than the first
MAX_TERMS = 10


def terms(text: str) -> tuple[str, ...]:
    """The search keys of the comma-separated terms of `q`, without blanks or repeats; a 400 when none is left.

    >>> terms("Saint-Malo, ST  MALO,,lycée")
    ('saint malo', 'st malo', 'lycee')
    """
    found = tuple(dict.fromkeys(key for key in map(search_key, text.split(",")) if key))
    if not found:
        raise BadRequest("q: no search term (letters or digits, terms separated by commas)")
    if len(found) > MAX_TERMS:
        raise BadRequest(f"q: {len(found)} search terms; at most {MAX_TERMS}")
    return found


def searched(info: CollectionInfo) -> tuple[str, ...]:
    """The searchable properties of a collection, or a 400 when it has none."""
    if not info.searchable:
        raise BadRequest(f"q: collection {info.id!r} has no text to search in this data version")
    return info.searchable


def condition(info: CollectionInfo, keys: tuple[str, ...], dialect: Dialect, rank_: int | None = None) -> Fragment:
    """Rows where a searchable property contains a term (of rank `rank_` only, when given), through the indexes."""
    first, *others = (folded_column(name) for name in searched(info))
    if rank_ is None:
        return _any(dialect, [first, *others], keys, _TIERS[-1])
    if not 0 <= rank_ <= OTHER_PROPERTY:
        raise BadRequest(f"no text search rank {rank_}")
    if rank_ < OTHER_PROPERTY:
        found, better = _any(dialect, [first], keys, _TIERS[rank_]), _TIERS[:rank_]
    elif others:
        found, better = _any(dialect, others, keys, _TIERS[-1]), _TIERS[-1:]
    else:
        return ["(1 = 0)"]
    if not better:
        return found
    ranked_better = [dialect.like([Ident(first)], tier(key)) for tier in better for key in keys]
    return ["(", *found, " AND NOT (", *_joined(ranked_better, " OR "), "))"]


def order(info: CollectionInfo, q: FeatureQuery, dialect: Dialect) -> Fragment:
    """The ORDER BY terms of a text search: rank (unless `q.q_rank` asks for one), size (largest first), name."""
    size = info.size_property()
    terms = [
        *([rank_sql(info, q.q, dialect)] if q.q_rank is None else []),
        *([[Ident(size), " DESC NULLS LAST"]] if size else []),
        [Ident(folded_column(searched(info)[0]))],
    ]
    return [part for i, term in enumerate(terms) for part in ([", "] if i else []) + term]


def rank_sql(info: CollectionInfo, keys: tuple[str, ...], dialect: Dialect) -> Fragment:
    """The rank of a row (see the module), as a CASE expression."""
    column = [Ident(folded_column(searched(info)[0]))]
    fragment: Fragment = ["CASE"]
    for rank_, pattern in enumerate(_TIERS):
        tests = [dialect.like(column, pattern(key)) for key in keys]
        fragment += [" WHEN ", *_joined(tests, " OR "), f" THEN {rank_}"]
    return [*fragment, f" ELSE {OTHER_PROPERTY} END"]


def _any(dialect: Dialect, columns: list[str], keys: tuple[str, ...], tier: Callable) -> Fragment:
    """Rows where one of the columns matches a term's pattern, each test through the column's index."""
    return ["(", *_joined([dialect.text_match(column, tier(key)) for column in columns for key in keys], " OR "), ")"]


def rank(name: str | None, keys: tuple[str, ...]) -> int:
    """The rank `rank_sql` gives a row whose first searchable property is `name`.

    >>> [rank(name, ("ren",)) for name in ("Ren", "Rennes", "Saint-Rémy-en-Rennes", "Varennes", "Vitré")]
    [0, 1, 2, 3, 4]
    """
    key = search_key(name or "")
    tests = (key.__eq__, key.startswith, lambda k: f" {k}" in key, key.__contains__)
    return next((r for r, test in enumerate(tests) if any(map(test, keys))), OTHER_PROPERTY)


_TIERS = (  # LIKE patterns of the ranks 0 to 3, as `cql.like_pattern` spells them
    lambda key: [key],
    lambda key: [key, None],
    lambda key: [None, f" {key}", None],
    lambda key: [None, key, None],
)


def _joined(fragments: list[Fragment], separator: str) -> Fragment:
    """Parenthesised fragments with a separator between them."""
    joined: Fragment = []
    for i, fragment in enumerate(fragments):
        joined += [separator] if i else []
        joined += ["(", *fragment, ")"]
    return joined
