"""What a sheet compares: each indicator of a territory beside its parent's and France's, by school type.

The numbers come from `tileserver.core.summary` (France and the coarse levels from the ingest,
communes summarised on request); here they become the blocks a sheet shows: a table, a bar chart
of the three values, the schools spread over the legend's classes, and the schools that gave no
value. Every chart has its table, so a screen reader or a printout loses nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from styles import palettes
from styles.catalogue import source_parts, title
from styles.classes import for_schools, format_number
from tileserver.core.charts import Bar, bar_chart
from tileserver.core.dataset import SCHOOLS
from tileserver.core.summary import SPLIT_TYPES, IndicatorSummary

TYPE_ROWS = {"ecole": "Écoles", "college": "Collèges", "lycee": "Lycées"}
COMPARED_COLOURS = ("#6b6b6b", "#a3a3a3")  # the parent's and France's bars, after the territory's own colour
AGGREGATE_WORDS = {"mean": "moyenne des établissements", "sum": "total des établissements",
                   "min": "minimum des établissements", "max": "maximum des établissements",
                   "count": "nombre d'établissements", "share": "part des établissements"}
Summaries = Mapping[str, IndicatorSummary]  # indicator id -> its summary over one territory


@dataclass
class Block:
    """One indicator as a sheet shows it, every value already written in French."""

    id: str
    label: str  # with its unit when the label does not say it: "Débit descendant (Mbit/s)"
    measure: str  # how a territory's value is made from its schools': "moyenne des établissements"
    about: list[Markup]  # definition, source, licence, vintage (those the catalogue gives)
    headers: list[str]  # the territories compared, this one first
    rows: list[tuple[str, list[str]]]  # "Ensemble", then each school type, with one value per territory
    chart: Markup | None = None
    classes: list[tuple[str, str]] = field(default_factory=list)  # (class, "n établissements (p %)")
    distribution: Markup | None = None
    nc: str = ""


def france(catalogue: Sequence[Mapping]) -> dict[str, IndicatorSummary]:
    """France's summary of each school indicator, as the ingest kept it in the catalogue."""
    return {e["id"]: IndicatorSummary.from_dict(e["france"]) for e in catalogue if e.get("france")}


def territory_themes(catalogue: Sequence[Mapping], compared: Sequence[tuple[str, Summaries]],
                     own_nc: Mapping[str, Any]) -> list[tuple[str, list[Block]]]:
    """Every school indicator compared across `compared` (this territory first), grouped by theme.

    `own_nc` holds the territory's `<id>_nc` properties when the layer has them; they win over the
    count from the schools (the catalogue may say to which schools an indicator applies).
    """
    groups: dict[str, list[Block]] = {}
    for entry in catalogue:
        own = compared[0][1].get(entry["id"])
        if entry.get("level", SCHOOLS) != SCHOOLS or own is None:
            continue
        groups.setdefault(title(entry["theme"]), []).append(_block(entry, compared, own_nc.get(f"{entry['id']}_nc")))
    return list(groups.items())


def _block(entry: Mapping, compared: Sequence[tuple[str, Summaries]], nc: Any) -> Block:
    """One indicator: the table, the comparison chart and the spread of the territory's schools."""
    unit = _unit(entry)
    cells = [(name, summaries.get(entry["id"])) for name, summaries in compared]
    rows = [("Ensemble", [value_text(s.value if s else None, unit) for _, s in cells])]
    rows += [(TYPE_ROWS[t], [value_text(s.by_type.get(t) if s else None, unit) for _, s in cells]) for t in SPLIT_TYPES]
    own = cells[0][1]
    colour = for_schools(entry).colours[-1]
    bars = [Bar(name, s.value if s else None, value_text(s.value if s else None, unit), c, i == 0)
            for i, ((name, s), c) in enumerate(zip(cells, (colour, *COMPARED_COLOURS), strict=False))]
    block = Block(entry["id"], labelled(entry), measure(entry), about(entry), [name for name, _ in cells], rows,
                  Markup(bar_chart(f"cmp-{entry['id']}", f"{entry['label']} : comparaison", bars)))
    nc_count = int(nc) if isinstance(nc, int | float) else own.nc
    plural = "s" if nc_count > 1 else ""
    block.nc = f"{format_number(nc_count)} établissement{plural} non communiqué{plural}"
    if own.classes:
        block.classes, block.distribution = _distribution(entry, own.classes, nc_count)
    return block


def _distribution(entry: Mapping, counts: Sequence[int], nc: int) -> tuple[list[tuple[str, str]], Markup]:
    """The territory's schools per class of the schools' legend, and "non communiqué" last, as a chart."""
    classes = for_schools(entry)
    total = sum(counts) + nc
    labels = [*classes.labels, "Non communiqué"]
    colours = [*classes.colours, palettes.NO_DATA]
    texts = [f"{format_number(n)} ({format_number(100 * n / total if total else 0, 1)} %)" for n in [*counts, nc]]
    bars = [Bar(label, float(n), text, colour) for label, n, text, colour in
            zip(labels, [*counts, nc], texts, colours, strict=True)]
    chart = bar_chart(f"dist-{entry['id']}", f"{entry['label']} : établissements par classe", bars)
    return list(zip(labels, texts, strict=True)), Markup(chart)


def measure(entry: Mapping) -> str:
    """How a territory's value is made from its schools' values.

    >>> measure({"aggregate": "mean", "kind": "number"}), measure({"kind": "boolean"})
    ('moyenne des établissements', 'part des établissements')
    """
    aggregate = entry.get("aggregate") or ("share" if entry["kind"] == "boolean" else "mean")
    return AGGREGATE_WORDS.get(aggregate, aggregate)


def labelled(entry: Mapping) -> str:
    """An indicator's label with its unit, unless the unit is % (written with each value) or the label says it.

    >>> labelled({"label": "Débit descendant", "unit": "Mbit/s", "kind": "number"})
    'Débit descendant (Mbit/s)'
    >>> labelled({"label": "Terminaux pour 100 élèves", "unit": "terminaux", "kind": "number"})
    'Terminaux pour 100 élèves'
    """
    unit = entry.get("unit") or ""
    if entry["kind"] != "number" or unit in ("", "%") or unit.lower()[:6] in entry["label"].lower():
        return entry["label"]
    return f"{entry['label']} ({unit})"


def _unit(entry: Mapping) -> str:
    """The unit a territory's value is in: % for shares, the catalogue's unit otherwise."""
    if (entry.get("aggregate") or "") == "share" or (entry["kind"] == "boolean" and not entry.get("aggregate")):
        return "%"
    return "" if entry.get("aggregate") == "count" else entry.get("unit", "")


def value_text(value: float | None, unit: str = "") -> str:
    """A compared value: a French number, with % for a share (other units are in the label); "—" when unknown.

    >>> value_text(63.17, "%"), value_text(230.4, "Mbit/s"), value_text(None), value_text(3.0)
    ('63,2 %', '230,4', '—', '3')
    """
    if value is None:
        return "—"
    text = format_number(float(value), 1)
    return f"{text} %" if unit == "%" else text


def about(entry: Mapping) -> list[Markup]:
    """The indicator's definition and where it comes from, in the words the catalogue gives.

    >>> about({"description": "Débit mesuré", "producer": "DNE", "vintage": "2024", "source_url": "https://x"})[1]
    Markup('Source : DNE, millésime 2024, <a href="https://x">jeu de données</a>')
    >>> about({"vintage": "2024"})
    [Markup('Millésime 2024')]
    """
    lines = [Markup("{}").format(entry["description"])] if entry.get("description") else []
    source = [Markup("{}").format(part) for part in source_parts(entry)]
    if entry.get("source_url"):
        source.append(Markup('<a href="{}">jeu de données</a>').format(entry["source_url"]))
    if entry.get("producer") or entry.get("source_url"):
        lines.append(Markup("Source : ") + Markup(", ").join(source))
    elif source:  # no producer to name: the vintage or licence alone
        text = Markup(", ").join(source)
        lines.append(Markup(text[:1].upper()) + text[1:])
    return lines


def school_rows(entry: Mapping, own: Any, compared: Sequence[tuple[str, Mapping[str, Any]]],
                national: IndicatorSummary | None) -> tuple[str, list[str]]:
    """One indicator of a school sheet: the school's value, then its commune's, département's and France's."""
    unit = _unit(entry)
    if entry["kind"] == "boolean":
        mine = "non communiqué" if own is None else ("Oui" if own in (True, 1, "1", "true") else "Non")
    elif own is None:
        mine = "non communiqué"
    elif isinstance(own, int | float):
        mine = value_text(own)
    else:
        mine = str(own)
    values = [value_text(props.get(entry["id"]) if isinstance(props.get(entry["id"]), int | float) else None, unit)
              for _, props in compared]
    return labelled(entry), [mine, *values, value_text(national.value if national else None, unit)]

