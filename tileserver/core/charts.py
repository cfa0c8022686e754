"""Small bar charts drawn as SVG text: values in, an accessible `<svg>` string out.

Drawn by the server, so a chart is the same in a sheet page, in print and in the map's side panel,
with no script. Each chart is an image with a `<title>` and a `<desc>` that says every value in
words; the sheet also gives each chart a table, so nothing is only in the picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

WIDTH = 360
LABEL_WIDTH = 122
CHAR_WIDTH = 7.2  # a generous width of one character at 12 px, to keep room for the value texts
ROW_HEIGHT = 22
BAR_HEIGHT = 14
TEXT = "#222222"
MUTED = "#6b6b6b"


@dataclass(frozen=True)
class Bar:
    """One bar: what it is, its value (None: unknown, drawn as a dash), the value as read, its colour."""

    label: str
    value: float | None
    text: str
    colour: str
    strong: bool = False  # the row the chart is about, in bold


def bar_chart(chart_id: str, title: str, bars: list[Bar], *, scale_max: float | None = None) -> str:
    """Horizontal bars, one per row, with the label on the left and the value on the right.

    Bars start at zero and share one scale (`scale_max`, else the largest value), so lengths compare.
    >>> svg = bar_chart("c1", "Débit", [Bar("Rennes", 30.0, "30 Mbit/s", "#08519c", True),
    ...                                Bar("France", None, "—", "#999999")])
    >>> svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="c1-t c1-d"')
    True
    >>> '<desc id="c1-d">Rennes : 30 Mbit/s ; France : —.</desc>' in svg, svg.count("<rect")
    (True, 1)
    """
    top = max([b.value for b in bars if b.value is not None] + [scale_max or 0.0])
    height = ROW_HEIGHT * len(bars) + 4
    description = " ; ".join(f"{b.label} : {b.text}" for b in bars) + "."
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="{chart_id}-t {chart_id}-d" '
        f'class="chart" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'font-family="system-ui, sans-serif" font-size="12">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">{escape(description)}</desc>',
    ]
    room = max(len(b.text) for b in bars) * CHAR_WIDTH + 8 if bars else 0
    for i, bar in enumerate(bars):
        parts.append(_row(i, bar, top, WIDTH - LABEL_WIDTH - room))
    parts.append("</svg>")
    return "".join(parts)


def _row(i: int, bar: Bar, top: float, span: float) -> str:
    """One bar's label, rectangle (none for an unknown or zero value) and value text; bars `span` at most."""
    y = 2 + i * ROW_HEIGHT
    middle = y + ROW_HEIGHT / 2 + 4
    weight = ' font-weight="bold"' if bar.strong else ""
    length = span * bar.value / top if bar.value is not None and top > 0 else 0.0
    out = [f'<text x="{LABEL_WIDTH - 6}" y="{middle:.0f}" text-anchor="end" fill="{TEXT}"{weight}>'
           f"{escape(_clip(bar.label))}</text>"]
    if length > 0:
        out.append(f'<rect x="{LABEL_WIDTH}" y="{y + (ROW_HEIGHT - BAR_HEIGHT) / 2:.0f}" width="{max(length, 1):.1f}" '
                   f'height="{BAR_HEIGHT}" fill="{bar.colour}" stroke="#333333" stroke-width="0.5"/>')
    colour = TEXT if bar.value is not None else MUTED
    out.append(f'<text x="{LABEL_WIDTH + length + 4:.1f}" y="{middle:.0f}" fill="{colour}"{weight}>'
               f"{escape(bar.text)}</text>")
    return "".join(out)


def _clip(label: str, size: int = 18) -> str:
    """A label short enough for the label column (the full one is in the `<desc>` and the table).

    >>> _clip("Provence-Alpes-Côte d'Azur")
    'Provence-Alpes-Cô…'
    """
    return label if len(label) <= size else label[: size - 1] + "…"
