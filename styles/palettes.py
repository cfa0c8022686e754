"""Colour ramps that stay readable for colour-blind readers, and the colour that means "no data".

Every ramp is sequential (one hue or a monotonic lightness ramp: ColorBrewer's single- and
multi-hue sequential schemes, viridis and cividis), so classes are told apart by lightness alone,
which protanopes, deuteranopes and tritanopes all see. "No data" is a neutral grey outside every
ramp's hues, and the legend names it, so a missing value is never read as a low one.
"""

from __future__ import annotations

NO_DATA = "#bdbdbd"
OUTLINE = "#4d4d4d"
EDGE = "#333333"  # around points and clusters: they share the choropleth's colours, so they need an edge
BACKGROUND = "#f2f1ed"  # land
SEA = "#d4e3ec"  # behind the land: the sea and everything beyond the territories served
NEUTRAL = "#5b6b7a"  # schools and clusters of the neutral style
NEUTRAL_FILL = "#dcd9cf"  # territories of the neutral style

# Nine steps each, light to dark (ColorBrewer 2.0 by Cynthia Brewer; viridis and cividis from matplotlib).
RAMPS: dict[str, tuple[str, ...]] = {
    "blues": ("#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"),
    "greens": ("#f7fcf5", "#e5f5e0", "#c7e9c0", "#a1d99b", "#74c476", "#41ab5d", "#238b45", "#006d2c", "#00441b"),
    "purples": ("#fcfbfd", "#efedf5", "#dadaeb", "#bcbddc", "#9e9ac8", "#807dba", "#6a51a3", "#54278f", "#3f007d"),
    "oranges": ("#fff5eb", "#fee6ce", "#fdd0a2", "#fdae6b", "#fd8d3c", "#f16913", "#d94801", "#a63603", "#7f2704"),
    "ylgnbu": ("#ffffd9", "#edf8b1", "#c7e9b4", "#7fcdbb", "#41b6c4", "#1d91c0", "#225ea8", "#253494", "#081d58"),
    "ylorbr": ("#ffffe5", "#fff7bc", "#fee391", "#fec44f", "#fe9929", "#ec7014", "#cc4c02", "#993404", "#662506"),
    "viridis": ("#fde725", "#addc30", "#5ec962", "#28ae80", "#21918c", "#2c728e", "#3b528b", "#472d7b", "#440154"),
    "cividis": ("#fee838", "#e1cc55", "#c3b369", "#a59c74", "#8a8678", "#707173", "#575d6d", "#3b496c", "#00224e"),
}

# The ramp a theme uses when its catalogue entry names none: a distinct hue per theme.
THEME_RAMPS = {
    "connectivite": "blues",
    "equipement": "greens",
    "services": "purples",
    "experimentations": "oranges",
    "contexte": "cividis",
}
DEFAULT_RAMP = "ylgnbu"
MAX_CLASSES = 8


def ramp_name(palette: str, theme: str) -> str:
    """The ramp to use: the catalogue's `palette` when we know it, else the theme's.

    >>> ramp_name("", "services"), ramp_name("Viridis", "services"), ramp_name("rainbow", "x")
    ('purples', 'viridis', 'ylgnbu')
    """
    name = palette.strip().lower()
    if name in RAMPS:
        return name
    return THEME_RAMPS.get(theme, DEFAULT_RAMP)


def colours(name: str, n: int) -> list[str]:
    """`n` colours of a ramp, spread from light to dark (the palest step is skipped: it vanishes on white).

    >>> colours("blues", 2)
    ['#deebf7', '#08306b']
    >>> len(colours("greens", 5)), colours("greens", 1)
    (5, ['#41ab5d'])
    """
    if not 1 <= n <= MAX_CLASSES:
        raise ValueError(f"a ramp gives 1 to {MAX_CLASSES} classes, not {n}")
    steps = RAMPS[name][1:]
    if n == 1:
        return [steps[len(steps) // 2]]
    return [steps[round(i * (len(steps) - 1) / (n - 1))] for i in range(n)]

# School types, in `COUNTED_TYPES` order (ecole, college, lycee, autre): Okabe & Ito's palette,
# made to be told apart with every kind of colour blindness.
CATEGORIES = ("#e69f00", "#0072b2", "#009e73", "#cc79a7")
