"""Reading the school directory: the real layouts, positions, and every kind of broken row."""

from __future__ import annotations

import csv
import functools
import gzip
import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
from pyproj import Geod

from ingest.codes import uai
from ingest.report import DatasetReport
from ingest.schools import Schools, check_loaded, read_schools
from tileserver.core.errors import ConfigError, IngestError

DATA = Path(os.environ.get("ECARTO_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
ANNUAIRE_94 = "annuaire-education-samples/annuaire-education-94-val-de-marne-2026.csv"
ANNUAIRE_35 = "annuaire-education-samples/annuaire-education-35-ille-et-vilaine-2023.csv"
COLLEGES = "geoloc-etablissements/colleges-france-geolocalisation.csv"
COLLEGES_35 = "geoloc-etablissements/geolocalisation-colleges-35-ille-et-vilaine-2023.csv"
SYNTHETIC = "synthetic/annuaire-education-synthetique.csv.gz"
# per file: the columns of UAI, latitude, longitude, x, y, CRS, state, as its header spells them
LAYOUTS = {
    ANNUAIRE_94: ("Identifiant_de_l_etablissement", "latitude", "longitude", "coordX_origine",
                  "coordY_origine", "epsg_origine", "etat"),
    ANNUAIRE_35: ("Identifiant_de_l_etablissement", "latitude", "longitude", "coordonnee_X", "coordonnee_Y",
                  "epsg", "etat"),
    COLLEGES: ("numero_uai", "latitude", "longitude", "coordonnee_x", "coordonnee_y", "EPSG",
               "etat_etablissement_libe"),
    COLLEGES_35: ("Code établissement", "Latitude", "Longitude", "Coordonnee X", "Coordonnee Y", "EPSG",
                  "Etat établissement"),
    SYNTHETIC: ("Identifiant_de_l_etablissement", "latitude", "longitude", "coordX_origine", "coordY_origine",
                "epsg_origine", "etat"),
}
GEOD = Geod(ellps="WGS84")


def data(name: str) -> Path:
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"test data not found: {path} (set ECARTO_DATA)")
    return path


@functools.cache
def rows_of(path: Path) -> list[dict[str, str]]:
    """The rows as the csv module reads them, for counts made without the code under test."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f, delimiter=";"))


def read(path: Path, **options: object) -> tuple[Schools, DatasetReport]:
    report = DatasetReport("etablissements", str(path))
    return read_schools(path, report=report, **options), report


@functools.cache
def loaded(name: str) -> tuple[Schools, DatasetReport]:
    """A real file read once for all the tests that only look at the result."""
    return read(data(name))


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_real_files_load_what_an_independent_count_expects(name: str) -> None:
    path = data(name)
    uai_column, lat, lon, x, y, epsg, state = LAYOUTS[name]
    rows = rows_of(path)
    located = [
        r for r in rows
        if r[state] != "FERME" and ((r[lat] and r[lon]) or (r[x] and r[y] and r[epsg]))
    ]
    distinct = {r[uai_column] for r in located}
    schools, report = loaded(name)
    assert report.read == len(rows)
    assert report.loaded == len(distinct) == len(schools)
    assert report.rejected == len(rows) - len(distinct)
    assert set(schools.uai) == distinct
    assert all(uai(code) == code for code in schools.uai)
    assert schools.lines[0] == 2
    assert len(schools.lon) == len(schools.lat) == len(schools.lines) == len(schools)
    assert all(len(values) == len(schools) for values in schools.columns.values())


def test_duplicates_keep_the_first_row_and_name_its_line() -> None:
    path = data(ANNUAIRE_35)
    rows = rows_of(path)
    first_line: dict[str, int] = {}
    expected = []
    for line, row in enumerate(rows, start=2):
        code = row["Identifiant_de_l_etablissement"]
        if code in first_line:
            expected.append((line, f"duplicate UAI {code}, first at line {first_line[code]}"))
        first_line.setdefault(code, line)
    assert expected  # the 2023 export lists some schools on several lines
    schools, report = loaded(ANNUAIRE_35)
    assert [(r.line, r.reason) for r in report.rejections] == expected
    at = dict(zip(schools.uai, schools.lines, strict=True))
    assert all(at[code] == line for code, line in first_line.items())


def test_columns_are_normalised() -> None:
    schools, _ = loaded(ANNUAIRE_35)
    rows = {r["Identifiant_de_l_etablissement"]: r for r in rows_of(data(ANNUAIRE_35))}
    first = schools.uai.index("0350122T")
    assert {name: values[first] for name, values in schools.columns.items()} == {
        "nom": "Ecole primaire publique les Lucioles", "type": "ecole", "statut": "public",
        "code_commune": "35016", "nom_commune": "Baulon", "code_departement": "35", "code_academie": "14",
        "code_region": "53", "education_prioritaire": None,
    }
    expected_types = {"Ecole": "ecole", "Collège": "college", "Lycée": "lycee", "EREA": "erea",
                      "Médico-social": "medico-social", "Service Administratif": "service-administratif",
                      "Information et orientation": "information-et-orientation", "Autre": "autre"}
    for code, kind, status, priority in zip(schools.uai, schools.columns["type"], schools.columns["statut"],
                                            schools.columns["education_prioritaire"], strict=True):
        row = rows[code]
        assert kind == expected_types.get(row["Type_etablissement"], "autre")  # no type: STS/CPGE schools
        assert status == {"Public": "public", "Privé": "prive", "": None}[row["Statut_public_prive"]]
        assert priority == (row["Appartenance_Education_Prioritaire"] or None)


def test_geolocation_layouts_give_colleges_with_their_sector() -> None:
    schools, _ = loaded(COLLEGES)
    rows = {r["numero_uai"]: r for r in rows_of(data(COLLEGES))}
    assert set(schools.columns["type"]) == {"college"}
    sectors = {"Public": "public", "Privé": "prive"}
    assert [sectors[rows[c]["secteur_public_prive_libe"]] for c in schools.uai] == schools.columns["statut"]
    assert schools.columns["nom"][schools.uai.index("0241357V")] == 'Collège privé "Maison Jacques Sevin"'
    labelled, report = loaded(COLLEGES_35)
    assert set(labelled.columns["type"]) == {"college"}
    assert set(labelled.columns["education_prioritaire"]) == {None}
    assert "no column for education_prioritaire: left empty" in report.notes
    assert set(labelled.columns["code_departement"]) == {"35"}
    assert set(labelled.columns["nom_commune"]) > {"Combourg"}


def test_codes_are_spelled_as_in_the_cog() -> None:
    schools, _ = loaded(SYNTHETIC)
    assert set(schools.columns["code_departement"]) >= {"01", "2A", "2B", "94", "971", "976"}
    assert all(len(c) == 2 for c in schools.columns["code_academie"])  # the export writes `7`, not `07`
    assert all(c[:2] == d[:2] for c, d in zip(schools.columns["code_commune"], schools.columns["code_departement"],
                                              strict=True))


@pytest.mark.parametrize("name", [ANNUAIRE_35, ANNUAIRE_94, COLLEGES])
def test_positions_from_x_y_match_latitude_longitude(name: str, tmp_path: Path) -> None:
    path = data(name)
    _, lat, lon, *_ = LAYOUTS[name]
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, delimiter=";")
        rows, header = list(reader), reader.fieldnames
    for row in rows:
        row[lat] = row[lon] = ""
    blinded = tmp_path / "xy-only.csv"
    with open(blinded, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, header, delimiter=";")
        writer.writeheader()
        writer.writerows(rows)
    given, _ = loaded(name)
    computed, report = read(blinded)
    assert computed.uai == given.uai
    _, _, metres = GEOD.inv(given.lon, given.lat, computed.lon, computed.lat)
    assert np.max(metres) < 2.0
    assert any("computed from x/y" in note for note in report.notes)


def test_overseas_crs_are_all_used() -> None:
    schools, _ = loaded(COLLEGES)
    rows = {r["numero_uai"]: r for r in rows_of(data(COLLEGES))}
    crs = {rows[c]["EPSG"] for c in schools.uai}
    assert crs >= {"EPSG:2154", "EPSG:32620", "EPSG:2972", "EPSG:2975", "EPSG:32738"}
    reunion = [i for i, c in enumerate(schools.uai) if rows[c]["EPSG"] == "EPSG:2975"]
    assert all(55.2 < schools.lon[i] < 55.9 and -21.4 < schools.lat[i] < -20.8 for i in reunion)


def test_national_synthetic_file_reads_fast() -> None:
    path = data(SYNTHETIC)
    start = time.process_time()  # CPU time: other processes on the machine do not count
    schools, report = read(path)
    seconds = time.process_time() - start
    assert report.loaded == len(schools) == 69_473
    assert seconds < 3, f"{seconds:.1f} s of CPU for 69,473 rows"


# Broken input, written from real rows of the 2026 export.


def sample(n: int) -> tuple[str, list[list[str]]]:
    lines = data(ANNUAIRE_94).read_text(encoding="utf-8-sig").splitlines()
    return lines[0], [line.split(";") for line in lines[1 : n + 1]]


def test_broken_rows_are_rejected_with_their_line_and_the_rest_loads(tmp_path: Path) -> None:
    header, rows = sample(12)
    columns = header.split(";")
    at = {name: columns.index(name) for name in
          ("Identifiant_de_l_etablissement", "Nom_etablissement", "latitude", "longitude", "coordX_origine",
           "coordY_origine", "etat")}
    g = [";".join(row) for row in rows]

    def edited(row: list[str], **changes: str) -> str:
        row = list(row)
        for name, value in changes.items():
            row[at[name]] = value
        return ";".join(row)

    uai_0 = rows[0][at["Identifiant_de_l_etablissement"]]
    wrong_letter = uai_0[:7] + ("A" if uai_0[7] != "A" else "B")
    lines = [
        header.encode(),                                                               # 1
        g[0].encode(),                                                                 # 2 loaded
        edited(rows[1], Identifiant_de_l_etablissement=wrong_letter).encode(),         # 3 invalid UAI
        g[0].encode(),                                                                 # 4 duplicate of 2
        g[2][: len(g[2]) // 2].encode(),                                               # 5 truncated
        edited(rows[3], Nom_etablissement="École Gréville").encode("cp1252"),          # 6 loaded, cp1252
        edited(rows[4], latitude="", longitude="", coordX_origine="", coordY_origine="").encode(),  # 7
        edited(rows[5], Nom_etablissement="Ecole A; annexe").encode(),                 # 8 extra separator
        edited(rows[6], etat="FERME").encode(),                                        # 9 closed
        edited(rows[7], Nom_etablissement='"Ecole sans fin').encode(),                 # 10 open quote
        g[8].encode(),                                                                 # 11 loaded
        b"",                                                                           # 12 blank
        edited(rows[9], latitude="0", longitude="0").encode(),                         # 13 loaded from x/y
        edited(rows[10], Nom_etablissement='"Ecole\r\nsur deux lignes"').encode(),     # 14-15 loaded
        g[11].encode(),                                                                # 16 loaded
    ]
    path = tmp_path / "broken.csv"
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n")
    schools, report = read(path)

    reasons = {r.line: r.reason for r in report.rejections}
    assert reasons == {
        3: f"invalid UAI '{wrong_letter}'",
        4: f"duplicate UAI {uai_0}, first at line 2",
        5: reasons[5],
        7: "no usable position",
        8: "72 columns instead of 71",
        9: "closed",
        10: reasons[10],
    }
    assert reasons[5].endswith("columns instead of 71")
    assert "quote" in reasons[10]
    assert schools.lines == [2, 6, 11, 13, 14, 16]
    assert report.read == 13 and report.loaded == 6 and report.rejected == 7
    named = dict(zip(schools.lines, schools.columns["nom"], strict=True))
    assert named[6] == "École Gréville"
    assert named[14] == "Ecole\r\nsur deux lignes"
    assert 2.0 < schools.lon[3] < 2.7 and 48.6 < schools.lat[3] < 49.0  # line 13, from Lambert-93
    assert any("cp1252 (line 6)" in note for note in report.notes)
    assert any("1 blank line" in note for note in report.notes)


def test_an_open_quote_does_not_swallow_the_file(tmp_path: Path) -> None:
    header, rows = sample(600)
    lines = [header, ";".join(rows[0]).replace(";", ';"', 1)] + [";".join(r) for r in rows[1:]]
    path = tmp_path / "quote.csv"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")  # 200 kB: past csv's field limit
    schools, report = read(path)
    assert [r.line for r in report.rejections] == [2]
    assert report.loaded == len(schools) == 599


def test_api_layout_with_commas(tmp_path: Path) -> None:
    source = data(ANNUAIRE_94)
    with open(source, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    rows[0] = [name.lower() for name in rows[0]]
    text = io.StringIO()
    csv.writer(text).writerows(rows)  # quotes the `position` field, "lat, lon"
    path = tmp_path / "api.csv"
    path.write_text(text.getvalue(), encoding="utf-8")
    labelled, _ = read(source)
    api, report = read(path)
    assert report.rejected == 0
    assert api.uai == labelled.uai
    assert api.columns == labelled.columns
    assert np.array_equal(api.lon, labelled.lon) and np.array_equal(api.lat, labelled.lat)


def test_fields_override_the_detection(tmp_path: Path) -> None:
    path = tmp_path / "custom.csv"
    path.write_text("Code RNE bis;Nom;LAT;LON\n0350122T;Ecole;47.98;-1.93\n0350165P;Cardroc;48.28;-1.89\n")
    with pytest.raises(IngestError, match=r"no UAI column.*columns found: Code RNE bis, Nom, LAT, LON"):
        read(path)
    schools, _ = read(path, fields={"uai": "Code RNE bis", "nom": "Nom", "latitude": "LAT", "longitude": "LON"})
    assert schools.uai == ["0350122T", "0350165P"]
    assert schools.columns["nom"] == ["Ecole", "Cardroc"]
    assert schools.lat.tolist() == [47.98, 48.28]
    with pytest.raises(ConfigError, match="unknown school field 'colour'"):
        read(path, fields={"colour": "Nom"})
    with pytest.raises(IngestError, match="no column 'Latitude WGS84' for latitude"):
        read(path, fields={"uai": "Code RNE bis", "latitude": "Latitude WGS84"})


def test_a_file_without_positions_is_unusable(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.csv"
    path.write_text("numero_uai,appellation_officielle\n0350122T,Ecole\n")
    with pytest.raises(IngestError, match="no position columns"):
        read(path)


def test_an_empty_file_is_unusable(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(IngestError, match="empty file"):
        read(path)


def test_x_y_with_an_unknown_crs_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "crs.csv"
    path.write_text(
        "numero_uai;coordonnee_x;coordonnee_y;EPSG\n"
        "0350122T;332503.4;6776558.9;2154\n"
        "0350165P;337508.6;6809607.2;EPSG:999999\n"
        "0350017D;327366.8;6766352.2;\n"
        "0350707D;3.5e12;6823304.9;EPSG:2154\n"
    )
    schools, report = read(path)
    assert schools.uai == ["0350122T"]
    assert abs(schools.lon[0] - -1.92949) < 1e-4 and abs(schools.lat[0] - 47.98614) < 1e-4
    assert [str(r).split(": ", 1)[1] for r in report.rejections] == [
        "no usable position (unknown CRS 'EPSG:999999')",
        "no usable position (x/y without a CRS)",
        "no usable position (x/y outside the area of EPSG:2154)",
    ]


def test_a_header_alone_gives_no_schools(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("numero_uai;latitude;longitude\n")
    schools, report = read(path)
    assert len(schools) == 0 and schools.lon.dtype == np.float64
    assert report.read == 0


def test_an_ingest_refuses_a_file_where_no_school_is_left(tmp_path: Path) -> None:
    """An empty school layer has no extent: publishing it ended in a traceback inside the store."""
    path = tmp_path / "fermes.csv"
    path.write_text("numero_uai;latitude;longitude;etat\n0350001L;48.1;-1.7;FERME\n0350002M;48.1;-1.6;FERME\n")
    schools, report = read(path)
    with pytest.raises(IngestError, match=r"fermes\.csv: no school could be loaded \(2 rows rejected; line 2: closed"):
        check_loaded(schools, report)
    assert check_loaded(*loaded(ANNUAIRE_35)) is loaded(ANNUAIRE_35)[0]
