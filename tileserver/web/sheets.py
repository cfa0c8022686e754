"""Sheets (`/fiche/{collection}/{id}`): one school or territory as a person reads it.

A sheet shows the name, the codes (each a link to its own sheet), the school counts of a
territory and every indicator of the catalogue with its unit. `?partial=1` gives the fragment the
map page puts in its side panel, so the map and the page show the same sheet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, render_template, request

from styles.catalogue import title
from styles.classes import format_number
from tileserver.core.dataset import COUNTED_TYPES, SCHOOLS
from tileserver.core.errors import NotFound
from tileserver.core.store import CollectionInfo, Feature
from tileserver.web import context

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


@blueprint.get("/fiche/<collection>/<fid>")
def sheet_page(collection: str, fid: str) -> str:
    """A school's or a territory's sheet; `?partial=1` for the map's side panel."""
    snap = context.snapshot()
    info = snap.collection(collection)
    feature = snap.get(collection, fid)
    if feature is None:
        raise NotFound(f"no {collection} {fid!r}")
    sheet = build_sheet(info, feature, snap.catalogue(), context.base_url())
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
    kind = TYPE_NAMES.get(props.get("type") or "", (props.get("type") or "Établissement").capitalize())
    statut = {"public": "public", "prive": "privé"}.get(props.get("statut") or "", "")
    return f"{kind} {statut}".strip()


def _identity(props: Mapping[str, Any], school: bool, base: str) -> list[Row]:
    """The feature's own code, then each code of a territory it belongs to, linked to that sheet."""
    rows = [Row("UAI", props["uai"])] if school else [Row("Code", str(props.get("code", "")))]
    for key, level in CODE_LEVELS.items():
        code = props.get(key)
        if code:
            label = LEVEL_SINGULAR[level]
            name = props.get("nom_commune") if level == "communes" else None
            rows.append(Row(label, f"{name} ({code})" if name else str(code), f"{base}/fiche/{level}/{code}"))
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
        if level not in (SCHOOLS, collection):
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

