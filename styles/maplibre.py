"""MapLibre GL styles built from the catalogue: one per theme, and a neutral one for schools.

Pure: a `StyleSource` (catalogue, collections and their zooms, base URL) in, a style dict out. Each
collection is its own source, pointing to its TileJSON, so a map only loads the tiles of the levels
it shows. Every territory level has its layers in every style (hidden when not shown), so switching
level or theme changes layer properties, never the set of layers, and `setStyle(diff)` stays cheap.

Text has no `glyphs` URL: MapLibre GL JS (5.11+) then draws labels with the browser's own fonts, so
nothing is fetched from the internet; QGIS maps `text-font` to a local font the same way. Territory
names come from the label tiles (one point per territory, so a name shows once per view). With no
base map, the territories themselves are the base: land over a sea-coloured background, borders
and names, the choropleth fading as one zooms in so single schools stand out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from styles import palettes
from styles.catalogue import (
    LEVEL_ORDER,
    LEVEL_TITLES,
    NEUTRAL_STYLE,
    StyleSource,
    pick_indicator,
    theme_indicators,
    title,
)
from styles.classes import for_aggregates, for_schools
from tileserver.core.dataset import COUNTED_TYPES, SCHOOLS

AUTO = "auto"
# Where each level takes over in the automatic mode (clipped to the zooms the level is tiled at).
AUTO_STARTS = {"regions": 0, "departements": 6, "communes": 9}
OUTLINE_WIDTHS = {"regions": 1.6, "academies": 1.3, "departements": 1.0, "epci": 0.7, "communes": 0.4}
LABELLED_LEVELS = ("regions", "academies", "departements", "epci", "communes")
LABELS = "labels"  # the label tiles' source: one layer per territory level
TYPE_COLOURS = dict(zip(COUNTED_TYPES, palettes.CATEGORIES, strict=True))
TYPE_TITLES = {"ecole": "École", "college": "Collège", "lycee": "Lycée", "autre": "Autre"}
FONT = ["Noto Sans Regular"]
BOLD = ["Noto Sans Bold"]
POINT_COUNT = ["to-number", ["get", "point_count"], 1]
IS_CLUSTER = ["has", "point_count"]
MAXZOOM = 24


def build_style(source: StyleSource, style_id: str, *, indicator: str | None = None, level: str = AUTO) -> dict:
    """The style `style_id` ("etablissements" or a theme) coloured by `indicator`, showing `level`.

    Raises KeyError for a theme or indicator the catalogue lacks and ValueError for an unknown level.
    """
    if level != AUTO and level not in source.levels:
        raise ValueError(f"no territory level {level!r}; expected auto or one of {', '.join(source.levels)}")
    entry = None
    if style_id != NEUTRAL_STYLE:
        entry = pick_indicator(source.catalogue, style_id, indicator)
        if entry is None:
            raise KeyError(f"no indicator {indicator!r} in theme {style_id!r}" if indicator else style_id)
    layers = [{"id": "background", "type": "background", "paint": {"background-color": palettes.SEA}}]
    if is_raster_template(source.basemap_url):
        layers.append({"id": "basemap", "type": "raster", "source": "basemap"})
    elif "regions" in source.zooms:
        layers.append(_land())
    bands = _bands(source, level)
    layers += [_fill(lvl, bands[lvl], entry) for lvl in source.levels]
    layers += [_outline(lvl, _outline_band(lvl, level, bands)) for lvl in reversed(source.levels)]
    if SCHOOLS in source.zooms:
        layers += _school_layers(source, entry)
    layers += [_label(lvl, bands[lvl]) for lvl in source.levels if lvl in LABELLED_LEVELS]
    return {
        "version": 8,
        "name": f"eCarto — {title(style_id)}" + (f" — {entry['label']}" if entry else ""),
        "metadata": _metadata(source, style_id, entry, level),
        "center": [2.5, 46.6],
        "zoom": 5,
        "sources": _sources(source),
        "layers": layers,
    }


def _sources(source: StyleSource) -> dict:
    """One vector source per collection, each pointing to its TileJSON (absolute URLs)."""
    sources: dict[str, Any] = {
        name: {"type": "vector", "url": f"{source.base_url}/tiles/{name}.json"} for name in source.zooms
    }
    sources[LABELS] = {"type": "vector", "url": f"{source.base_url}/map/labels.json"}
    if is_raster_template(source.basemap_url):
        sources["basemap"] = {"type": "raster", "tiles": [source.basemap_url], "tileSize": 256}
    return sources


def is_raster_template(url: str) -> bool:
    """Whether ECARTO_BASEMAP_URL is a raster tile template (`{z}`) rather than a MapLibre style URL.

    >>> is_raster_template("https://tile.example.org/{z}/{x}/{y}.png"), is_raster_template("https://x/style.json")
    (True, False)
    """
    return "{z}" in url


def _land() -> dict:
    """Land: every région in one neutral colour under the choropleth, so the sea and coasts show."""
    return {"id": "land", "type": "fill", "source": "regions", "source-layer": "regions",
            "paint": {"fill-color": palettes.BACKGROUND}}


def auto_bands(source: StyleSource) -> dict[str, tuple[int, int]]:
    """The level each zoom shows in the automatic mode, as [start, end) bands: régions, départements, communes."""
    shown = [lvl for lvl in AUTO_STARTS if lvl in source.levels]
    starts = [max(AUTO_STARTS[lvl], source.zooms[lvl][0]) if i else 0 for i, lvl in enumerate(shown)]
    return {lvl: (start, end) for lvl, start, end in zip(shown, starts, [*starts[1:], MAXZOOM], strict=True)}


def _bands(source: StyleSource, level: str) -> dict[str, tuple[int, int] | None]:
    """The zoom band each level's fill and label show at (None: hidden)."""
    if level != AUTO:
        return {lvl: (0, MAXZOOM) if lvl == level else None for lvl in source.levels}
    return {**dict.fromkeys(source.levels), **auto_bands(source)}


def _outline_band(lvl: str, level: str, bands: Mapping) -> tuple[int, int] | None:
    """Borders of the shown level, kept when zooming in, with the régions and départements around it."""
    if level == AUTO:
        return (bands[lvl][0], MAXZOOM) if bands[lvl] else None
    around = lvl in ("regions", "departements") and LEVEL_ORDER.index(lvl) < LEVEL_ORDER.index(level)
    return (0, MAXZOOM) if lvl == level or around else None


def _zoomed(layer: dict, band: tuple[int, int] | None) -> dict:
    """The layer limited to its band, or hidden (kept in the style so every style has the same ids)."""
    layer.setdefault("layout", {})
    if band is None:
        layer["layout"]["visibility"] = "none"
        return layer
    # Both limits always written: `setStyle(diff)` cannot remove a limit, only set one.
    layer["layout"]["visibility"] = "visible"
    layer["minzoom"], layer["maxzoom"] = band
    return layer


def _role(level: str, role: str) -> dict:
    return {"ecarto:level": level, "ecarto:role": role}


def _fill(level: str, band: tuple[int, int] | None, entry: Mapping | None) -> dict:
    """A territory choropleth (a faint neutral fill in the neutral style, so territories stay clickable)."""
    if entry is None:
        paint = {"fill-color": palettes.NEUTRAL_FILL, "fill-opacity": 0.35}
    else:
        # Fainter where single schools show, so their own colours read against their commune's.
        opacity = ["interpolate", ["linear"], ["zoom"], 9, 0.78, 13, 0.3]
        paint = {"fill-color": for_aggregates(entry, level).paint(["get", entry["id"]]), "fill-opacity": opacity}
    layer = {"id": f"{level}-fill", "type": "fill", "source": level, "source-layer": level,
             "metadata": _role(level, "fill"), "paint": paint}
    return _zoomed(layer, band)


def _outline(level: str, band: tuple[int, int] | None) -> dict:
    """Territory borders, wider for coarser levels."""
    width = OUTLINE_WIDTHS[level]
    layer = {
        "id": f"{level}-outline", "type": "line", "source": level, "source-layer": level,
        "metadata": _role(level, "outline"),
        "paint": {"line-color": palettes.OUTLINE, "line-opacity": 0.7,
                  "line-width": ["interpolate", ["linear"], ["zoom"], 4, width * 0.6, 12, width * 2]},
    }
    return _zoomed(layer, band)


def _label(level: str, band: tuple[int, int] | None) -> dict:
    """Territory names from the label tiles, drawn with local fonts."""
    layer = {
        "id": f"{level}-label", "type": "symbol", "source": LABELS, "source-layer": level,
        "metadata": _role(level, "label"),
        "layout": {"text-field": ["get", "nom"], "text-font": BOLD if level == "regions" else FONT,
                   "text-size": 14 if level == "regions" else 12, "text-max-width": 8,
                   "symbol-placement": "point", "text-padding": 4},
        "paint": {"text-color": "#2b2b2b", "text-halo-color": "#ffffff", "text-halo-width": 1.4},
    }
    return _zoomed(layer, band)


def _school_layers(source: StyleSource, entry: Mapping | None) -> list[dict]:
    """Clusters sized by their school count, then single schools, coloured by the indicator or by type."""
    minzoom = source.zooms[SCHOOLS][0]
    clusters = {
        "id": "etablissements-clusters", "type": "circle", "source": SCHOOLS, "source-layer": SCHOOLS,
        "metadata": _role(SCHOOLS, "clusters"), "filter": IS_CLUSTER, "maxzoom": source.cluster_maxzoom,
        "paint": {"circle-color": _cluster_colour(entry), "circle-opacity": 0.9,
                  "circle-radius": ["interpolate", ["linear"], ["sqrt", POINT_COUNT], 1, 5, 10, 12, 100, 34],
                  "circle-stroke-color": palettes.EDGE, "circle-stroke-width": 1},
    }
    points = {
        "id": "etablissements-points", "type": "circle", "source": SCHOOLS, "source-layer": SCHOOLS,
        "metadata": _role(SCHOOLS, "points"), "filter": ["!", IS_CLUSTER],
        "paint": {"circle-color": _school_colour(entry),
                  "circle-radius": ["interpolate", ["linear"], ["zoom"], 10, 3, 16, 8],
                  "circle-stroke-color": palettes.EDGE, "circle-stroke-width": 1},
    }
    counts = {
        "id": "etablissements-count", "type": "symbol", "source": SCHOOLS, "source-layer": SCHOOLS,
        "metadata": _role(SCHOOLS, "count"), "filter": IS_CLUSTER, "maxzoom": source.cluster_maxzoom,
        "layout": {"text-field": _abbreviated(POINT_COUNT), "text-font": BOLD, "text-size": 11,
                   "text-allow-overlap": True},
        "paint": {"text-color": "#1a1a1a", "text-halo-color": "#ffffff", "text-halo-width": 1.2},
    }
    names = {
        "id": "etablissements-label", "type": "symbol", "source": SCHOOLS, "source-layer": SCHOOLS,
        "metadata": _role(SCHOOLS, "label"), "filter": ["!", IS_CLUSTER], "minzoom": max(14, minzoom),
        "layout": {"text-field": ["get", "nom"], "text-font": FONT, "text-size": 11, "text-offset": [0, 1.1],
                   "text-anchor": "top", "text-max-width": 10, "text-optional": True},
        "paint": {"text-color": "#333333", "text-halo-color": "#ffffff", "text-halo-width": 1.2},
    }
    for layer in (clusters, points, counts):
        if minzoom > 0:
            layer["minzoom"] = minzoom
    return [clusters, points, counts, names]


def _cluster_colour(entry: Mapping | None) -> Any:
    """A cluster's colour: the mean of its schools' values (`<id>_sum / <id>_n`), as a % for yes/no."""
    if entry is None or entry["kind"] == "category":
        return palettes.NEUTRAL
    n = ["to-number", ["get", f"{entry['id']}_n"], 0]
    mean = ["/", ["to-number", ["get", f"{entry['id']}_sum"], 0], ["max", n, 1]]
    if entry["kind"] == "boolean":
        mean = ["*", 100, mean]
    return for_aggregates(entry).paint(mean, present=[">", n, 0])


def _school_colour(entry: Mapping | None) -> Any:
    """A school's colour: its value of the indicator, or its type in the neutral style."""
    if entry is None:
        pairs = [x for t, colour in TYPE_COLOURS.items() if t != "autre" for x in (t, colour)]
        return ["match", ["get", "type"], *pairs, TYPE_COLOURS["autre"]]
    return for_schools(entry).paint(["get", entry["id"]])


def _abbreviated(count: list) -> list:
    """A count as a short label: 950, 1,2k, 12k."""
    thousands = ["/", ["round", ["/", count, 100]], 10]
    return ["case", [">=", count, 10000], ["concat", ["to-string", ["round", ["/", count, 1000]]], "k"],
            [">=", count, 1000], ["concat", ["to-string", thousands], "k"], ["to-string", count]]


def _legend(source: StyleSource, entry: Mapping, level: str) -> dict:
    """The schools' legend, and the territories' legend of each level (limits differ from level to level).

    `territories` is the shown level's (the coarsest in the automatic mode); `auto` gives the zoom
    band of each level in the automatic mode, so a map can show the legend of the level it draws.
    """
    levels = {lvl: for_aggregates(entry, lvl).legend() for lvl in source.levels}
    shown = level if level != AUTO else next(iter(auto_bands(source)), None)
    return {
        "schools": for_schools(entry).legend(),
        "territories": levels[shown] if shown else for_aggregates(entry).legend(),
        "levels": levels,
        "auto": [[lvl, start, end] for lvl, (start, end) in auto_bands(source).items()],
    }


def _metadata(source: StyleSource, style_id: str, entry: Mapping | None, level: str) -> dict:
    """What the map page needs beside the layers: levels, indicators, legend (all from the catalogue)."""
    indicators = theme_indicators(source.catalogue, style_id) if entry else []
    legend = _legend(source, entry, level) if entry else {
        "schools": {"title": "Type d'établissement", "unit": "", "no_data": None,
                    "classes": [{"colour": c, "label": TYPE_TITLES[t]} for t, c in TYPE_COLOURS.items()]},
    }
    return {
        "ecarto:style": style_id,
        "ecarto:title": title(style_id),
        "ecarto:indicator": entry["id"] if entry else None,
        "ecarto:indicators": [{k: e.get(k) for k in ("id", "label", "unit", "kind", "main")} for e in indicators],
        "ecarto:level": level,
        "ecarto:levels": [{"id": lvl, "title": LEVEL_TITLES[lvl], "minzoom": source.zooms[lvl][0],
                           "maxzoom": source.zooms[lvl][1]} for lvl in source.levels],
        "ecarto:cluster_maxzoom": source.cluster_maxzoom,
        "ecarto:legend": legend,
    }

