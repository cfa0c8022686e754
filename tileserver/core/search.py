"""The map's search box: one ranked list of schools and territories of every level for what was typed.

Rank by rank (`textsearch`: whole name, start, start of a word, anywhere, another property), each
collection with searchable text gives its best `limit` rows of that rank, in its order (larger first,
then by name); the lists are merged, on an equal rank the most local territory level first (the commune
"Rennes" before the académie of that name), schools last, and within a level the larger first
(`CollectionInfo.size_property`: a territory's school count, a commune's population when the data has
it). Once `limit` results are found, worse ranks are not asked for, so a short prefix costs an index
range rather than a sort of every name containing it; collections of a few thousand features at most
are asked for every rank at once. What looks like a code (a UAI, an INSEE or
SIREN code, a département number) finds that feature first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tileserver.core import textsearch
from tileserver.core.dataset import SCHOOLS
from tileserver.core.store import CollectionInfo, Feature, FeatureQuery, Snapshot
from tileserver.core.textfold import search_key

# How a territory's label names its level when its name alone could be another level's ("Rennes").
LEVEL_WORDS = {"epci": "EPCI", "academies": "académie", "regions": "région"}
_CODE = re.compile(r"^[0-9][0-9A-Za-z]{1,8}$")  # 35, 2A0..., 35238, 200000172, 0350001L
# On an equal rank, the most local level first: "Rennes" is the commune before the académie that bears its name.
_ORDER = ("communes", "epci", "departements", "academies", "regions", SCHOOLS)
SMALL = 5000  # features: a collection this small is asked for every rank at once (a sort of a few rows)


@dataclass(frozen=True)
class Hit:
    """One search result: a feature, what to show for it, and where it is."""

    collection: str
    id: str
    name: str
    label: str
    bbox: list[float] | None  # west, south, east, north (lon/lat); None without a geometry
    rank: int
    size: float | None

    def order(self) -> tuple:
        """The merge order: rank, level (territories before schools), larger first, then name and key.

        >>> commune = Hit("communes", "35238", "Rennes", "Rennes (35)", None, 0, 120)
        >>> academie = Hit("academies", "14", "Rennes", "Rennes (académie)", None, 0, 3900)
        >>> [h.collection for h in sorted([academie, commune], key=Hit.order)]
        ['communes', 'academies']
        """
        level = _ORDER.index(self.collection) if self.collection in _ORDER else len(_ORDER)
        return (self.rank, level, self.size is None, -(self.size or 0), search_key(self.name), self.id)


def search(snap: Snapshot, text: str, *, limit: int) -> list[Hit]:
    """The best `limit` matches of `text` across every searchable collection of the snapshot."""
    keys = textsearch.terms(text)
    found = {(hit.collection, hit.id): hit for hit in _by_code(snap, text.strip())}
    searchable = [info for info in snap.collections() if info.searchable]
    small = [info for info in searchable if info.count <= SMALL]
    big = [info for info in searchable if info.count > SMALL]
    for rank in range(textsearch.OTHER_PROPERTY + 1):
        asked = [(info, None) for info in small if rank == 0] + [(info, rank) for info in big]
        queries = [FeatureQuery(info.id, q=keys, q_rank=r, properties=_shown(info), limit=limit, count=False)
                   for info, r in asked]
        for (info, _), page in zip(asked, snap.query_many(queries), strict=True):
            for feature in page.features:
                found.setdefault((info.id, feature.id), _hit(info, feature, textsearch.rank(_name(feature), keys)))
        if sum(hit.rank <= rank for hit in found.values()) >= limit:  # nothing worse can come before them
            break
    return sorted(found.values(), key=Hit.order)[:limit]


def _by_code(snap: Snapshot, text: str) -> list[Hit]:
    """The features whose key is `text` (upper-cased), ranked before every name."""
    if not _CODE.match(text):
        return []
    infos = snap.collections()
    queries = [FeatureQuery(info.id, equals=((info.key, (text.upper(),)),), properties=_shown(info), limit=1,
                            count=False) for info in infos]
    return [_hit(info, feature, -1) for info, page in zip(infos, snap.query_many(queries), strict=True)
            for feature in page.features]


def _shown(info: CollectionInfo) -> tuple[str, ...]:
    """The properties a hit reads: names, the département of a commune, the size."""
    wanted = ("nom", "nom_commune", "code_departement" if info.id == "communes" else "", info.size_property())
    return tuple(name for name in wanted if name and info.field(name))


def _hit(info: CollectionInfo, feature: Feature, rank: int) -> Hit:
    """A feature as a search result."""
    size = feature.properties.get(info.size_property() or "")
    return Hit(info.id, feature.id, _name(feature), label(info.id, feature), _bbox(feature), rank,
               None if size is None else float(size))


def _bbox(feature: Feature) -> list[float] | None:
    """A feature's bounds, rounded to about a metre.

    >>> from shapely import Point
    >>> _bbox(Feature("a", Point(-1.6777926, 48.117266), {}))
    [-1.67779, 48.11727, -1.67779, 48.11727]
    """
    if feature.geometry is None or feature.geometry.is_empty:
        return None
    return [round(v, 5) for v in feature.geometry.bounds]


def _name(feature: Feature) -> str:
    """A feature's name, its key when it has none."""
    return feature.properties.get("nom") or feature.id


def label(collection: str, feature: Feature) -> str:
    """What the map shows for a result, in French: the name, and what tells it from its namesakes.

    >>> label("communes", Feature("35238", None, {"nom": "Rennes", "code_departement": "35"}))
    'Rennes (35)'
    >>> label("academies", Feature("14", None, {"nom": "Rennes"}))
    'Rennes (académie)'
    """
    name, properties = _name(feature), feature.properties
    detail = {
        SCHOOLS: properties.get("nom_commune"),
        "communes": properties.get("code_departement"),
        "departements": feature.id,
    }.get(collection) or LEVEL_WORDS.get(collection)
    return f"{name} ({detail})" if detail else name

