"""The school directory: every known layout read into one table of valid, open, located schools.

Three families of files describe schools, each in a labelled (portal export) and an API spelling:
the directory `fr-en-annuaire-education` (2023: 69 columns with `coordonnee_X`, `coordonnee_Y`,
`epsg`; 2026: 71 columns with `coordX_origine`, `coordY_origine`, `epsg_origine`), and the
geolocation files `fr-en-adresse-et-geolocalisation-etablissements-...` (`numero_uai`,
`appellation_officielle`, `coordonnee_x`, `EPSG`, `nature_uai_libe`...). Header names are compared
folded (lower case, no accents, `_` for any other character), so `Code établissement`,
`code_etablissement` and `CODE_ETABLISSEMENT` are one column; `FIELDS` lists what each normalised
field is looked for under, first found wins, and the `fields` argument overrides it.

Every data row is counted in the report, loaded or rejected with its physical line (the header is
line 1): wrong column count, invalid UAI (check letter), closed school, no usable position, or a
UAI already loaded from an earlier line.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path

import numpy as np

from ingest import codes
from ingest.fetch import Text, open_text
from ingest.positions import Positions, departement_problems, positions
from ingest.report import DatasetReport
from ingest.table import header_key, read_table
from ingest.territories import Territories
from tileserver.core.errors import ConfigError, IngestError

FIELDS: dict[str, tuple[str, ...]] = {
    "uai": ("identifiant_de_l_etablissement", "numero_uai", "code_etablissement", "uai", "code_uai", "code_rne"),
    "nom": ("nom_etablissement", "appellation_officielle", "nom"),
    "type": ("type_etablissement",),
    "nature": ("libelle_nature", "nature_uai_libe", "nature"),
    "statut": ("statut_public_prive", "secteur_public_prive_libe", "secteur_public_prive", "secteur"),
    "code_commune": ("code_commune",),
    "nom_commune": ("nom_commune", "libelle_commune", "commune"),
    "code_departement": ("code_departement",),
    "code_academie": ("code_academie",),
    "code_region": ("code_region",),
    "education_prioritaire": ("appartenance_education_prioritaire", "education_prioritaire"),
    "etat": ("etat", "etat_etablissement_libe", "etat_etablissement"),  # the label, not the code
    "latitude": ("latitude",),
    "longitude": ("longitude",),
    "x": ("coordx_origine", "coordonnee_x", "coord_x", "x"),
    "y": ("coordy_origine", "coordonnee_y", "coord_y", "y"),
    "epsg": ("epsg_origine", "epsg"),
}
COLUMNS = ("nom", "type", "statut", "code_commune", "nom_commune", "code_departement", "code_academie",
           "code_region", "education_prioritaire")
_AT = {name: i for i, name in enumerate(FIELDS)}
_CLOSED = {"FERME", "FERMÉ"}  # the `etat` of a closed school; `A FERMER` is still open


@dataclass
class Schools:
    """The schools of one file, in file order: one entry per school in every list and array."""

    uai: list[str]
    columns: dict[str, list]  # COLUMNS; None where the source says nothing usable
    lon: np.ndarray  # float64, EPSG:4326
    lat: np.ndarray
    lines: list[int]  # the physical line of each school in its file, for later reports

    def __len__(self) -> int:
        return len(self.uai)

    def subset(self, keep: Sequence[int]) -> Schools:
        """The schools at the positions `keep`, in that order."""
        return Schools(
            uai=[self.uai[i] for i in keep],
            columns={name: [values[i] for i in keep] for name, values in self.columns.items()},
            lon=self.lon[list(keep)],
            lat=self.lat[list(keep)],
            lines=[self.lines[i] for i in keep],
        )


@dataclass
class _Rows:
    """What survives the row by row checks, before positions and duplicates are looked at."""

    values: list[tuple[str, ...]] = field(default_factory=list)  # the FIELDS of each row, "" if absent
    uai: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    rejections: list[tuple[int, str]] = field(default_factory=list)
    blank: int = 0
    found: dict[str, int] = field(default_factory=dict)  # the column index of each field present
    notes: list[str] = field(default_factory=list)  # what reading the table cleaned

    def column(self, name: str) -> Sequence[str]:
        """One field of every row (valid once all rows are read)."""
        return self._transposed[_AT[name]]

    @functools.cached_property
    def _transposed(self) -> list[tuple[str, ...]]:
        return list(zip(*self.values, strict=True)) if self.values else [()] * len(FIELDS)


def read_schools(path: Path, *, report: DatasetReport, fields: Mapping[str, str] | None = None) -> Schools:
    """The open schools of a directory file with a valid UAI and a position, the rest in the report."""
    with open_text(path) as text:
        rows = _read_rows(text, path, fields)
        notes = text.notes() + rows.notes
    located = positions(rows.column("latitude"), rows.column("longitude"),
                        rows.column("x"), rows.column("y"), rows.column("epsg"))
    keep = _keep(rows, located.problems)
    for line, reason in sorted(rows.rejections):
        report.reject(line, reason)
    report.load(len(keep))
    notes += _position_notes(located, keep) + _layout_notes(rows)
    for note in notes:
        report.note(note)
    columns = _columns(rows)
    return Schools(
        uai=[rows.uai[i] for i in keep],
        columns={name: [columns[name][i] for i in keep] for name in COLUMNS},
        lon=located.lon[keep],
        lat=located.lat[keep],
        lines=[rows.lines[i] for i in keep],
    )


def check_departements(schools: Schools, departements: Territories, report: DatasetReport) -> Schools:
    """The schools placed in (or near) their own département; the others rejected with their line and why.

    A school whose département has no outline here (an overseas collectivity) keeps its position.
    """
    outlines = dict(zip(departements.codes, departements.geometries, strict=True))
    codes = schools.columns["code_departement"]
    areas = np.array([outlines.get(code) for code in codes], dtype=object)
    problems = departement_problems(schools.lon, schools.lat, areas, codes)
    for line, problem in zip(schools.lines, problems, strict=True):
        if problem:
            report.unload(line, problem)
    return schools.subset([i for i, problem in enumerate(problems) if problem is None])


def check_loaded(schools: Schools, report: DatasetReport) -> Schools:
    """The schools, or an `IngestError` naming the file and its first rejection when none is left.

    An empty school layer cannot be published (it has no extent), and is never what was meant.
    """
    if not len(schools):
        first = min(report.rejections, key=lambda r: r.line, default=None)
        why = f"; line {first.line}: {first.reason}" if first else ""
        raise IngestError(f"{report.file}: no school could be loaded ({report.rejected} rows rejected{why})")
    return schools


def _read_rows(text: Text, path: Path, fields: Mapping[str, str] | None) -> _Rows:
    """Rows with a valid UAI, not closed; the others kept as rejections with their line."""
    table = read_table(text, path)
    found = _layout(table.header, fields, path)
    pick = itemgetter(*(found.get(name, -1) for name in FIELDS))  # -1: the "" appended to each row
    rows = _Rows(found=found)
    for line, values, problem in table.records:
        if values is None:
            rows.rejections.append((line, problem))
            continue
        if not values:
            rows.blank += 1
            continue
        values.append("")
        picked = pick(values)
        uai = codes.uai(picked[0])
        if uai is None:
            rows.rejections.append((line, f"invalid UAI {picked[0][:20]!r}"))
        elif picked[_AT["etat"]].strip().upper() in _CLOSED:
            rows.rejections.append((line, "closed"))
        else:
            rows.values.append(picked)
            rows.uai.append(uai)
            rows.lines.append(line)
    rows.notes = table.notes()
    return rows


def _keep(rows: _Rows, problems: list[str | None]) -> list[int]:
    """Rows to load, in line order: located, and the first of their UAI; the others rejected."""
    first: dict[str, int] = {}
    keep = []
    for i, (uai, line, problem) in enumerate(zip(rows.uai, rows.lines, problems, strict=True)):
        if problem:
            rows.rejections.append((line, problem))
        elif uai in first:
            rows.rejections.append((line, f"duplicate UAI {uai}, first at line {first[uai]}"))
        else:
            first[uai] = line
            keep.append(i)
    return keep


def _columns(rows: _Rows) -> dict[str, list]:
    """The output columns, each value normalised once per distinct spelling."""
    commune = _mapped(codes.commune, rows.column("code_commune"))
    departement = _mapped(codes.departement, rows.column("code_departement"))
    by_nature = _mapped(type_of_nature, rows.column("nature"))
    kind = _mapped(type_slug, rows.column("type"))
    return {
        "nom": _mapped(_text, rows.column("nom")),
        "type": [k or n for k, n in zip(kind, by_nature, strict=True)],
        "statut": _mapped(statut, rows.column("statut")),
        "code_commune": commune,
        "nom_commune": _mapped(_text, rows.column("nom_commune")),
        "code_departement": [d or codes.departement_of_commune(c) for d, c in zip(departement, commune, strict=True)],
        "code_academie": _mapped(codes.academie, rows.column("code_academie")),
        "code_region": _mapped(codes.region, rows.column("code_region")),
        "education_prioritaire": _mapped(education_prioritaire, rows.column("education_prioritaire")),
    }


def _layout_notes(rows: _Rows) -> list[str]:
    """What the file lacks (columns left empty) and skipped (blank lines)."""
    sources = {"type": ("type", "nature"), "code_departement": ("code_departement", "code_commune")}
    missing = [name for name in COLUMNS if not any(s in rows.found for s in sources.get(name, (name,)))]
    notes = [f"no column for {', '.join(missing)}: left empty"] if missing else []
    if rows.blank:
        notes.append(f"{rows.blank} blank line(s) skipped")
    return notes


def _mapped(normalise: Callable[[str], object], values: Sequence[str]) -> list:
    """`normalise` applied once per distinct value: codes and labels repeat a lot."""
    done = {value: normalise(value) for value in set(values)}
    return [done[value] for value in values]


def _layout(header: list[str], fields: Mapping[str, str] | None, path: Path) -> dict[str, int]:
    """The column index of each field found in the header; `fields` overrides the detection."""
    keys: dict[str, int] = {}
    for i, name in enumerate(header):
        keys.setdefault(header_key(name), i)
    found = {}
    for name, candidates in FIELDS.items():
        index = next((keys[c] for c in candidates if c in keys), None)
        if index is not None:
            found[name] = index
    for name, column in (fields or {}).items():
        if name not in FIELDS:
            raise ConfigError(f"unknown school field {name!r} (known: {', '.join(FIELDS)})")
        index = header.index(column) if column in header else keys.get(header_key(column))
        if index is None:
            raise IngestError(f"{path}: no column {column!r} for {name}; columns found: {', '.join(header)}")
        found[name] = index
    if "uai" not in found:
        raise IngestError(f"{path}: no UAI column (looked for {', '.join(FIELDS['uai'])}); "
                          f"columns found: {', '.join(header)}")
    if not ({"latitude", "longitude"} <= found.keys() or {"x", "y", "epsg"} <= found.keys()):
        raise IngestError(f"{path}: no position columns (latitude and longitude, or x, y and epsg); "
                          f"columns found: {', '.join(header)}")
    return found


def _position_notes(located: Positions, keep: list[int]) -> list[str]:
    """How many loaded positions came from x/y, per CRS: they are worth a look on the map."""
    counts = Counter(located.crs[i] for i in keep if located.crs[i])
    if not counts:
        return []
    detail = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
    return [f"{counts.total()} position(s) computed from x/y ({detail})"]


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _fold(text: str) -> str:
    """Upper-case ASCII, for comparing labels: `Privé` and `PRIVE` are one sector."""
    return _ascii(text).strip().upper()


def _text(value: str) -> str | None:
    return value.strip() or None


def type_slug(label: str) -> str | None:
    """The school type as an ASCII slug of the directory's `Type_etablissement`.

    >>> [type_slug(t) for t in ('Ecole', 'Collège', 'Lycée', 'EREA', 'Médico-social', '')]
    ['ecole', 'college', 'lycee', 'erea', 'medico-social', None]
    >>> type_slug('Information et orientation'), type_slug('Service Administratif')
    ('information-et-orientation', 'service-administratif')
    """
    return re.sub(r"[^a-z0-9]+", "-", _ascii(label).lower()).strip("-") or None


def type_of_nature(label: str) -> str | None:
    """The school type a nature label implies, for layouts (and rows) without `Type_etablissement`.

    >>> [type_of_nature(n) for n in ('COLLEGE', 'COLLEGE SPECIALISE', 'LYCEE POLYVALENT', 'ECOLE MATERNELLE')]
    ['college', 'college', 'lycee', 'ecole']
    >>> [type_of_nature(n) for n in ('SECTION D ENSEIGNEMENT PROFESSIONNEL', 'ETAB REGIONAL/LYCEE ENSEIGNEMENT ADAPTE')]
    ['lycee', 'erea']
    >>> type_of_nature('ECOLES COMPOSEES UNIQT DE STS ET OU CPGE'), type_of_nature('')
    ('autre', None)
    """
    nature = _fold(label)
    if not nature:
        return None
    if nature.startswith(("EREA", "ETAB REGIONAL")):
        return "erea"
    if nature.startswith("COLLEGE"):
        return "college"
    if nature.startswith(("LYCEE", "SECTION")):
        return "lycee"
    if nature.startswith("ECOLE") and any(w in nature for w in ("MATERNELLE", "ELEMENTAIRE", "PRIMAIRE")):
        return "ecole"
    return "autre"


def statut(label: str) -> str | None:
    """`public` or `prive`, from `Public`/`Privé`, `PU`/`PR` and the like.

    >>> statut('Public'), statut('Privé'), statut('PU'), statut('pr'), statut(''), statut('?')
    ('public', 'prive', 'public', 'prive', None, None)
    """
    folded = _fold(label)
    if folded.startswith("PU"):
        return "public"
    return "prive" if folded.startswith("PR") else None


def education_prioritaire(label: str) -> str | None:
    """`REP`, `REP+` or None (outside priority education, or unknown).

    >>> education_prioritaire('REP'), education_prioritaire('rep +'), education_prioritaire('')
    ('REP', 'REP+', None)
    >>> education_prioritaire('HORS REP')
    """
    return {"REP": "REP", "REP+": "REP+", "REPPLUS": "REP+"}.get(_fold(label).replace(" ", ""))
