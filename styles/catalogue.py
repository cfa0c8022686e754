"""The indicator catalogue as the styles read it: which styles exist, and what each one colours by.

The catalogue is the list of `Indicator.to_dict()` a version was published with; nothing here
knows the sources, so a catalogue edited in the manifest changes the styles at the next ingest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tileserver.core.dataset import SCHOOLS

NEUTRAL_STYLE = SCHOOLS
THEME_ORDER = ("connectivite", "equipement", "services", "experimentations", "contexte")
THEME_TITLES = {
    "connectivite": "Connectivité",
    "equipement": "Équipement",
    "services": "Services numériques",
    "experimentations": "Expérimentations",
    "contexte": "Contexte",
    NEUTRAL_STYLE: "Établissements",
}
LEVEL_TITLES = {
    "regions": "Régions",
    "academies": "Académies",
    "departements": "Départements",
    "epci": "EPCI",
    "communes": "Communes",
}
# Coarse to fine; `epci` after `departements` because most EPCI lie within one.
LEVEL_ORDER = ("regions", "academies", "departements", "epci", "communes")

ZoomRanges = Mapping[str, tuple[int, int]]  # collection id -> (minzoom, maxzoom) of its tiles


@dataclass(frozen=True)
class StyleSource:
    """Everything a style is built from: the catalogue, the collections served, and where."""

    catalogue: Sequence[Mapping]
    zooms: ZoomRanges
    base_url: str
    cluster_maxzoom: int
    basemap_url: str = ""

    @property
    def levels(self) -> list[str]:
        """The territory levels this version serves, coarse to fine."""
        return [level for level in LEVEL_ORDER if level in self.zooms]

    @property
    def tile_minzoom(self) -> int:
        """The first zoom any collection is tiled at."""
        return min(minzoom for minzoom, _ in self.zooms.values())

    @property
    def tile_maxzoom(self) -> int:
        """The deepest zoom any collection is tiled at (clients overzoom past it)."""
        return max(maxzoom for _, maxzoom in self.zooms.values())


def style_ids(catalogue: Sequence[Mapping]) -> list[str]:
    """The neutral style, then one style per theme of the catalogue, in a fixed order.

    >>> style_ids([{"id": "a", "theme": "services", "level": "etablissements"},
    ...            {"id": "b", "theme": "connectivite", "level": "etablissements"}])
    ['etablissements', 'connectivite', 'services']
    """
    present = {entry["theme"] for entry in catalogue}
    return [NEUTRAL_STYLE, *[t for t in THEME_ORDER if t in present], *sorted(present - set(THEME_ORDER))]


def theme_indicators(catalogue: Sequence[Mapping], theme: str) -> list[Mapping]:
    """The indicators of a theme: the main one first, then school indicators before territory-only ones.

    A territory-only indicator (Arcep's per commune) colours the territories; its schools have no value.
    """
    entries = [e for e in catalogue if e["theme"] == theme]
    return sorted(entries, key=lambda e: (not e.get("main"), e.get("level", SCHOOLS) != SCHOOLS))


def pick_indicator(catalogue: Sequence[Mapping], theme: str, indicator: str | None) -> Mapping | None:
    """The indicator a theme's style colours by: the one asked for, else the theme's main one.

    Returns None when the theme has no such indicator.
    """
    entries = theme_indicators(catalogue, theme)
    if indicator is None:
        return entries[0] if entries else None
    return next((e for e in entries if e["id"] == indicator), None)


def title(style_id: str) -> str:
    """A person's name for a style."""
    return THEME_TITLES.get(style_id, style_id.replace("_", " ").capitalize())


def source_parts(entry: Mapping) -> list[str]:
    """Where an indicator comes from, in the words the catalogue gives (producer, vintage, licence).

    >>> source_parts({"producer": "DNE", "vintage": "2024", "licence": "Licence Ouverte 2.0"})
    ['DNE', 'millésime 2024', 'licence Licence Ouverte 2.0']
    """
    parts = [str(entry["producer"])] if entry.get("producer") else []
    if entry.get("vintage"):
        parts.append(f"millésime {entry['vintage']}")
    if entry.get("licence"):
        parts.append(f"licence {entry['licence']}")
    return parts
