"""Sheets (`/fiche/{collection}/{id}`): one school or territory as a person reads it.

A territory's sheet names and links the territories it lies in and those it holds, counts its
schools, and compares each indicator with its parent's and France's, by school type, with charts
(`comparison`). A school's sheet sets its values beside its commune's, département's and France's.
`?partial=1` gives the fragment the map page puts in its side panel, so the map and the page show
the same sheet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, current_app, render_template, request

from styles.catalogue import title
from styles.classes import format_number
from tileserver.core.dataset import COUNTED_TYPES, SCHOOLS
from tileserver.core.errors import NotFound
from tileserver.core.store import CollectionInfo, Feature, Snapshot
from tileserver.core.summary import LEVEL_CODES, LEVELS_UP, TerritorySummary, summarise_territory
from tileserver.web import context
from tileserver.web.comparison import Block, france, school_rows, territory_themes

blueprint = Blueprint("sheets", __name__)

# The school and territory properties holding a code of each level.
CODE_LEVELS = {
    "code_commune": "communes", "code_epci": "epci", "code_departement": "departements",
    "code_academie": "academies", "code_region": "regions",
}
LEVEL_SINGULAR = {"regions": "Région", "academies": "Académie", "departements": "Département", "epci": "EPCI",
                  "communes": "Commune"}
TYPE_NAMES = {"ecole": "École", "college": "Collège", "lycee": "Lycée", "erea": "EREA"}
COUNT_NAMES = {"ecole": "Écoles", "college": "Collèges", "lycee": "Lycées", "autre": "Autres"}
MAP_ZOOM = {SCHOOLS: 15, "communes": 11, "epci": 9, "departements": 8, "academies": 7, "regions": 6}
# The territory a level is compared with (France comes after it), and the levels listed inside one.
PARENT = {"communes": "departements", "epci": "departements", "departements": "regions", "academies": "regions"}
CHILDREN = {"regions": ("departements", "academies"), "academies": ("departements",), "departements": ("epci",)}
LEVEL_PLURAL = {"departements": "Départements", "academies": "Académies", "epci": "EPCI", "communes": "Communes"}


@dataclass
class Row:
    """One line of a sheet: a label, a value, and where the value links to."""

    label: str
    value: str
    href: str = ""


@dataclass
class Sheet:
    """Everything a sheet page shows, already formatted."""

    collection: str
    collection_title: str
    id: str
    name: str
    kind: str
    identity: list[Row]
    counts: list[Row]
    themes: list[tuple[str, list[Row]]]
    links: dict[str, str] = field(default_factory=dict)
    blocks: list[tuple[str, list[Block]]] = field(default_factory=list)  # a territory's indicators compared
    compared: list[str] = field(default_factory=list)  # a school sheet's columns: the school, then its territories
    school_themes: list[tuple[str, list[tuple[str, list[str]]]]] = field(default_factory=list)
    children: list[tuple[str, list[Row]]] = field(default_factory=list)  # territories inside, by level


@blueprint.get("/fiche/<collection>/<fid>")
def sheet_page(collection: str, fid: str) -> str:
    """A school's or a territory's sheet; `?partial=1` for the map's side panel."""
    snap = context.snapshot()
    info = snap.collection(collection)
    feature = snap.get(collection, fid)
    if feature is None:
        raise NotFound(f"no {collection} {fid!r}")
    catalogue, base = snap.catalogue(), context.base_url()
    sheet = build_sheet(info, feature, catalogue, base)
    if info.id == SCHOOLS:
        add_school_comparison(sheet, snap, feature.properties, catalogue)
    else:
        add_territory_comparison(sheet, snap, info.id, feature.properties, catalogue, base)
    return render_template("fiche_partial.html" if request.args.get("partial") == "1" else "fiche.html",
                           sheet=sheet)


def build_sheet(info: CollectionInfo, feature: Feature, catalogue: Sequence[Mapping], base: str) -> Sheet:
    """The sheet of one feature: identity, school counts, indicators by theme, links."""
    props = feature.properties
    school = info.id == SCHOOLS
    point = feature.geometry.representative_point() if feature.geometry is not None else None
    view = f"&map={MAP_ZOOM.get(info.id, 10)}/{point.y:.5f}/{point.x:.5f}" if point is not None else ""
    return Sheet(
        collection=info.id,
        collection_title=info.title,
        id=feature.id,
        name=str(props.get("nom") or feature.id),
        kind=_school_kind(props) if school else LEVEL_SINGULAR.get(info.id, info.title),
        identity=_identity(props, school, base),
        counts=[] if school else _counts(props),
        themes=_themes(props, catalogue, info.id),
        links={
            "page": f"{base}/fiche/{info.id}/{feature.id}",
            "map": f"{base}/map#fiche={info.id}/{feature.id}{view}",
            "json": f"{base}/collections/{info.id}/items/{feature.id}?f=json",
            "collection": f"{base}/collections/{info.id}/items",
        },
    )


def _school_kind(props: Mapping[str, Any]) -> str:
    """The school's type and statut, the adjective agreeing with the noun.

    >>> _school_kind({"type": "ecole", "statut": "prive"}), _school_kind({"type": "lycee", "statut": "public"})
    ('École privée', 'Lycée public')
    """
    kind = TYPE_NAMES.get(props.get("type") or "", (props.get("type") or "Établissement").capitalize())
    statut = {"public": "public", "prive": "privé"}.get(props.get("statut") or "", "")
    if statut and kind == TYPE_NAMES["ecole"]:
        statut += "e"
    return f"{kind} {statut}".strip()


def _identity(props: Mapping[str, Any], school: bool, base: str) -> list[Row]:
    """The feature's own code, then (schools) each territory it belongs to, linked to that sheet.

    Territories list theirs in `add_territory_comparison`, where their names are known.
    """
    rows = [Row("UAI", props["uai"])] if school else [Row("Code", str(props.get("code", "")))]
    for key, level in CODE_LEVELS.items():
        code = props.get(key)
        if code and school:
            name = props.get("nom_commune") if level == "communes" else None
            rows.append(Row(LEVEL_SINGULAR[level], f"{name} ({code})" if name else str(code),
                            f"{base}/fiche/{level}/{code}"))
    if school and props.get("education_prioritaire"):
        rows.append(Row("Éducation prioritaire", _value(props["education_prioritaire"], "")))
    return rows


def _counts(props: Mapping[str, Any]) -> list[Row]:
    """A territory's school counts: all of them, then by type."""
    rows = [Row("Établissements", _value(props.get("etablissements"), ""))]
    return rows + [Row(COUNT_NAMES[t], _value(props.get(f"n_{t}"), "")) for t in COUNTED_TYPES]


def _themes(props: Mapping[str, Any], catalogue: Sequence[Mapping], collection: str) -> list[tuple[str, list[Row]]]:
    """Every indicator that applies to this collection, grouped by theme, in catalogue order."""
    groups: dict[str, list[Row]] = {}
    for entry in catalogue:
        level = entry.get("level", SCHOOLS)
        if level not in (SCHOOLS, collection) and entry["id"] not in props:  # rolled up from a finer level
            continue
        aggregated = collection != SCHOOLS and level == SCHOOLS
        label, unit = entry["label"], entry.get("unit", "")
        if aggregated:
            label, unit = _aggregate_label(entry)
        value = props.get(entry["id"])
        text = _value(value, unit) if aggregated or entry["kind"] != "boolean" else _yes_no(value)
        groups.setdefault(title(entry["theme"]), []).append(Row(label, text))
    return list(groups.items())


def _aggregate_label(entry: Mapping) -> tuple[str, str]:
    """How a school indicator reads once aggregated on a territory, and its unit."""
    aggregate = entry.get("aggregate") or "mean"
    if aggregate == "share":
        return f"{entry['label']} (part des établissements)", "%"
    words = {"mean": "moyenne", "sum": "total", "min": "minimum", "max": "maximum", "count": "nombre"}
    return f"{entry['label']} ({words.get(aggregate, aggregate)})", entry.get("unit", "")


def _value(value: Any, unit: str) -> str:
    """A value with its unit; "non renseigné" when unknown."""
    if value is None or value == "":
        return "non renseigné"
    if isinstance(value, bool):
        return _yes_no(value)
    if isinstance(value, int | float):
        text = format_number(float(value), 1)
        return f"{text} {unit}".strip() if unit else text
    return str(value)


def _yes_no(value: Any) -> str:
    if value is None:
        return "non renseigné"
    return "Oui" if value in (True, 1, "1", "true", "oui") else "Non"


def add_territory_comparison(sheet: Sheet, snap: Snapshot, level: str, props: Mapping[str, Any],
                             catalogue: Sequence[Mapping], base: str) -> None:
    """Parents and children by name, and each indicator beside the parent's and France's."""
    own = territory_summary(snap, level, str(props["code"]), catalogue)
    parents = {up: props.get(LEVEL_CODES[up]) or own.parents.get(up) for up in LEVELS_UP[LEVELS_UP.index(level) + 1:]}
    names = {up: territory_name(snap, up, code) for up, code in parents.items() if code}
    sheet.identity += [Row(LEVEL_SINGULAR[up], names[up] or str(parents[up]), f"{base}/fiche/{up}/{parents[up]}")
                       for up in names]
    sheet.children = _children(snap, level, str(props["code"]), base)
    compared = [(sheet.name, own.indicators)]
    parent = PARENT.get(level)
    if parent in names:
        compared.append((names[parent] or parents[parent], territory_summary(snap, parent, parents[parent],
                                                                             catalogue).indicators))
    compared.append(("France", france(catalogue)))
    sheet.blocks = territory_themes(catalogue, compared, props)
    # territory indicators (published for this level, or rolled up from a finer one) are shown as they are
    sheet.themes = _themes(props, [e for e in catalogue if e.get("level", SCHOOLS) != SCHOOLS], level)


def add_school_comparison(sheet: Sheet, snap: Snapshot, props: Mapping[str, Any], catalogue: Sequence[Mapping]) -> None:
    """Each indicator of the school beside its commune's, its département's and France's."""
    territories = []
    for level in ("communes", "departements"):
        code = props.get(LEVEL_CODES[level])
        found = snap.get(level, code) if code else None
        if found is not None:
            territories.append((str(found.properties.get("nom") or code), found.properties))
    national = france(catalogue)
    sheet.compared = ["Établissement", *(name for name, _ in territories), "France"]
    sheet.identity = [_named(row, snap) for row in sheet.identity]
    groups: dict[str, list[tuple[str, list[str]]]] = {}
    for entry in catalogue:
        if entry.get("level", SCHOOLS) == SCHOOLS:
            row = school_rows(entry, props.get(entry["id"]), territories, national.get(entry["id"]))
            groups.setdefault(title(entry["theme"]), []).append(row)
    sheet.school_themes = list(groups.items())
    sheet.themes = []


def _named(row: Row, snap: Snapshot) -> Row:
    """A school's territory row with the territory's name instead of its bare code."""
    level = next((lvl for lvl, label in LEVEL_SINGULAR.items() if label == row.label), None)
    if level is None or level == "communes" or not row.href:
        return row
    name = territory_name(snap, level, row.value)
    return Row(row.label, name or row.value, row.href)


def territory_summary(snap: Snapshot, level: str, code: str, catalogue: Sequence[Mapping]) -> TerritorySummary:
    """The ingest's summary of a territory, else its schools summarised now and kept for this version."""
    stored = snap.summaries(level).get(code)
    if stored is not None:
        return TerritorySummary.from_dict(stored)
    return current_app.extensions["ecarto.summaries"].get_or_make(
        (snap.version.id, level, code), lambda: summarise_territory(snap, level, code, catalogue))


def territory_name(snap: Snapshot, level: str, code: str) -> str | None:
    """A territory's name: from the ingest's summaries when it made some, else from the feature."""
    stored = snap.summaries(level).get(code)
    if stored is not None and stored.get("nom"):
        return stored["nom"]
    found = snap.get(level, code)
    name = found.properties.get("nom") if found is not None else None
    return str(name) if name else None


def _children(snap: Snapshot, level: str, code: str, base: str) -> list[tuple[str, list[Row]]]:
    """The territories inside this one, by level and name, each linked to its sheet; then its communes or schools."""
    out = []
    for child in CHILDREN.get(level, ()):
        inside = [(c, s.get("nom") or c) for c, s in snap.summaries(child).items() if s["parents"].get(level) == code]
        rows = [Row(name, c, f"{base}/fiche/{child}/{c}") for c, name in sorted(inside, key=lambda x: x[1])]
        if rows:
            out.append((LEVEL_PLURAL[child], rows))
    if level == "departements":
        out.append(("Communes", [Row("Toutes les communes du département", "",
                                     f"{base}/collections/communes/items?code_departement={code}&f=html")]))
    if level == "communes":
        out.append(("Établissements", [Row("Tous les établissements de la commune", "",
                                           f"{base}/collections/{SCHOOLS}/items?code_commune={code}&f=html")]))
    return out

