"""Boundaries: every known layout read, broken features repaired or rejected, EPCI and académies built."""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, box, mapping

from ingest.report import Report
from ingest.territories import (
    Territories,
    current_communes,
    derive_academies,
    epci_from_membership,
    members_by_location,
    read_epci,
    read_territories,
)
from tileserver.core.errors import IngestError

DATA = Path(os.environ.get("ECARTO_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
BOUNDARIES = DATA / "boundaries-2018"
DECOUPAGE = DATA / "decoupage-administratif-2026"
ACADEMIES = DATA / "academies" / "fr-en-contour-academies-2020.geojson"


def data(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"test data not found: {path} (set ECARTO_DATA)")
    return path


def read(level: str, path: Path, **options) -> tuple[Territories, Report]:
    report = Report()
    territories = read_territories(level, path, report=report.dataset(level, str(path)), **options)
    return territories, report


def all_multipolygons(geometries: np.ndarray) -> bool:
    return bool((shapely.get_type_id(geometries) == 6).all() and shapely.is_valid(geometries).all()
                and not shapely.is_empty(geometries).any())


@pytest.fixture(scope="module")
def communes() -> tuple[Territories, Report, float]:
    """The 35,357 communes of 2018, read once for the module, with the processor time it took."""
    start = time.process_time()
    territories, report = read("communes", data(BOUNDARIES / "communes-avec-outre-mer.geojson.gz"))
    return territories, report, time.process_time() - start


@pytest.fixture(scope="module")
def epci(communes) -> tuple[Territories, Report, float]:
    """The 2026 EPCI built from their member communes, old commune codes mapped through the history."""
    report = Report()
    start = time.process_time()
    built = read_epci(data(DECOUPAGE / "epci.json"), communes[0], report=report.dataset("epci", "epci.json"),
                      history=data(DECOUPAGE / "communes.json"))
    return built, report, time.process_time() - start


@pytest.fixture(scope="module")
def departements() -> Territories:
    return read("departements", data(BOUNDARIES / "departements-avec-outre-mer.geojson"))[0]


@pytest.fixture(scope="module")
def academies() -> Territories:
    return read("academies", data(ACADEMIES))[0]


# --- the real files -------------------------------------------------------------------------------

def test_regions_are_read_with_their_codes_and_names():
    regions, report = read("regions", data(BOUNDARIES / "regions-avec-outre-mer.geojson"))
    assert len(regions) == 18 and report.datasets["regions"].loaded == 18
    assert dict(zip(regions.codes, regions.names, strict=True))["11"] == "Île-de-France"
    assert {"01", "02", "03", "04", "06"} <= set(regions.codes)  # the five overseas régions
    assert all_multipolygons(regions.geometries)


def test_departements_keep_corsica_and_overseas_codes(departements):
    assert len(departements) == 101
    assert {"01", "2A", "2B", "971", "976"} <= set(departements.codes)
    assert all(len(c) in (2, 3) for c in departements.codes)
    assert all_multipolygons(departements.geometries)


def test_ministry_academies_layout_is_recognised(academies):
    assert len(academies) == 30
    names = dict(zip(academies.codes, academies.names, strict=True))
    assert names["70"] == "Normandie" and names["43"] == "Mayotte" and names["01"] == "Paris"
    regions = dict(zip(academies.codes, academies.parents["code_region"], strict=True))
    assert regions["10"] == "84" and regions["32"] == "01"


def test_fields_override_the_autodetected_properties():
    academies, _ = read("academies", data(ACADEMIES), fields={"code": "code_academie", "nom": "libelle_aca_majuscules"})
    assert dict(zip(academies.codes, academies.names, strict=True))["10"] == "LYON"


@pytest.mark.national
def test_communes_are_all_loaded_one_repaired_with_their_departement(communes):
    territories, report, _ = communes
    dataset = report.datasets["communes"]
    assert len(territories) == dataset.loaded == 35357 and dataset.rejected == 0
    assert any("1 invalid geometries repaired" in n for n in dataset.notes)
    assert all_multipolygons(territories.geometries)
    deps = dict(zip(territories.codes, territories.parents["code_departement"], strict=True))
    assert deps["2A004"] == "2A" and deps["97105"] == "971" and deps["01001"] == "01"


@pytest.mark.national
def test_epci_are_the_union_of_their_communes(communes, epci):
    built, report, _ = epci
    dataset = report.datasets["epci"]
    assert len(built) == dataset.loaded == 1255 and dataset.rejected == 0
    assert all_multipolygons(built.geometries)
    lyon = built.codes.index("200046977")
    assert built.names[lyon] == "Métropole de Lyon"
    members = [i for i, c in enumerate(communes[0].codes) if built.members.get(c) == "200046977"]
    assert len(members) == 59  # 58 communes of 2026, one of them a 2018 pair now merged
    assert built.geometries[lyon].area == pytest.approx(shapely.area(communes[0].geometries[members]).sum())


@pytest.mark.national
def test_former_commune_codes_lead_to_the_epci_of_their_commune_nouvelle(epci):
    built, report, _ = epci
    assert built.members["01015"] == built.members["01340"] == "200040350"  # Arboys en Bugey absorbed 01340
    notes = report.datasets["epci"].notes
    assert any(n.startswith("493 commune polygons under a former code") for n in notes)
    assert any(n.startswith("4 commune polygons belong to no EPCI") and "29155" in n for n in notes)


@pytest.mark.national
def test_without_history_merged_communes_find_no_epci(communes):
    report = Report()
    built = epci_from_membership(data(DECOUPAGE / "epci.json"), communes[0], report=report.dataset("epci", "e"))
    assert any(n.startswith("497 commune polygons belong to no EPCI") for n in report.datasets["epci"].notes)
    assert "01340" not in built.members


@pytest.mark.national
def test_communes_and_epci_are_read_well_under_twenty_seconds(communes, epci):
    # processor time, not wall time: other processes sharing the machine do not count
    assert communes[2] + epci[2] < 20, f"communes {communes[2]:.1f} s, EPCI {epci[2]:.1f} s"


def test_history_maps_merged_delegated_and_arrondissement_codes():
    former = current_communes(data(DECOUPAGE / "communes.json"), Report().dataset("h", "h"))
    assert former["01340"] == "01015" and former["13201"] == "13055"
    assert "01015" not in former  # a current commune maps to nothing: it is its own code


def test_academies_derived_from_departements_match_the_ministry_contours(departements, academies):
    mapping = members_by_location(departements, academies)
    derived = derive_academies(departements, mapping, {"70": "Académie de Normandie"})
    assert derived.codes == sorted(academies.codes)
    assert dict(zip(derived.codes, derived.names, strict=True))["70"] == "Académie de Normandie"
    assert dict(zip(derived.codes, derived.names, strict=True))["10"] == "Lyon"
    assert derived.members["69"] == "10" and derived.members["2A"] == "27"
    official = dict(zip(academies.codes, academies.geometries, strict=True))
    for code, geometry in zip(derived.codes, derived.geometries, strict=True):
        overlap = geometry.intersection(official[code]).area / geometry.union(official[code]).area
        assert overlap > 0.9, code  # 0.98-0.999, Mayotte 0.92: two sources draw its small coast apart
    assert all_multipolygons(derived.geometries)


def test_derived_academies_note_departements_left_out(departements):
    report = Report().dataset("academies", "derived")
    derived = derive_academies(departements, {"35": "14", "56": "14"}, {}, report=report)
    assert derived.codes == ["14"] and derived.names == ["Rennes"]
    assert derived.geometries[0].area == pytest.approx(
        sum(g.area for c, g in zip(departements.codes, departements.geometries, strict=True) if c in ("35", "56")))
    assert report.notes == ["99 départements in no académie: 971, 972, 973, 976, 01, ... (99)"]


# --- small broken inputs --------------------------------------------------------------------------

def feature(code, geometry, name="Nom", **props) -> dict:
    return {"type": "Feature", "properties": {"code": code, "nom": name, **props},
            "geometry": None if geometry is None else mapping(geometry) if not isinstance(geometry, dict) else geometry}


def write(tmp_path: Path, features: list, name: str = "layer.geojson") -> Path:
    path = tmp_path / name
    text = json.dumps({"type": "FeatureCollection", "features": features})
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


BOWTIE = {"type": "Polygon", "coordinates": [[[2, 46], [3, 47], [3, 46], [2, 47], [2, 46]]]}


def test_invalid_bowtie_is_repaired_into_a_multipolygon(tmp_path):
    territories, report = read("departements", write(tmp_path, [feature("35", BOWTIE)]))
    assert territories.codes == ["35"]
    geometry = territories.geometries[0]
    assert geometry.geom_type == "MultiPolygon" and geometry.is_valid and len(geometry.geoms) == 2
    assert geometry.area == pytest.approx(0.5)
    assert report.datasets["departements"].notes == [
        "1 invalid geometries repaired with make_valid (polygonal parts kept): 35"]


def test_missing_or_empty_geometry_and_missing_code_are_rejected_by_feature_number(tmp_path):
    features = [
        feature("35", box(-2, 47, -1, 48)),
        feature("56", {"type": "Polygon", "coordinates": []}),
        feature("22", None),
        feature(None, box(-3, 48, -2, 49)),
        feature("xyz", box(-3, 48, -2, 49)),
        feature("29", {"type": "Point", "coordinates": [-4, 48]}),
        feature("44", {"type": "Polygon", "coordinates": [[[0, 0], [1]]]}),
    ]
    territories, report = read("departements", write(tmp_path, features))
    dataset = report.datasets["departements"]
    assert territories.codes == ["35"]
    assert (dataset.read, dataset.loaded, dataset.rejected) == (7, 1, 6)
    lines = {r.line: r.reason for r in dataset.rejections}
    assert lines[2] == "feature 2 (56): empty geometry"
    assert lines[3] == "feature 3 (22): no geometry"
    assert lines[4] == "feature 4: no departements code in 'code' (None)"
    assert lines[5] == "feature 5: no departements code in 'code' ('xyz')"
    assert lines[6] == "feature 6 (29): a Point, not a polygon"
    assert lines[7].startswith("feature 7 (44): unreadable geometry")


def test_repeated_codes_are_merged_into_one_territory(tmp_path):
    features = [feature("56", box(-3, 47, -2, 48)), feature("35", box(-2, 47, -1, 48)),
                feature("56", box(-3.5, 47.2, -3.3, 47.4), name="Belle-Île")]
    territories, report = read("departements", write(tmp_path, features, "dup.geojson.gz"))
    assert territories.codes == ["56", "35"] and territories.names[0] == "Nom"
    assert territories.geometries[0].area == pytest.approx(1.04)
    assert len(territories.geometries[0].geoms) == 2
    dataset = report.datasets["departements"]
    assert dataset.loaded == 3 and dataset.notes == ["1 codes on several features, merged into one territory each: 56"]


def test_codes_are_normalised_and_polygons_become_multipolygons(tmp_path):
    features = [feature(1001, box(5, 46, 5.1, 46.1)), feature("2a004", box(8.7, 41.9, 8.8, 42.0))]
    territories, _ = read("communes", write(tmp_path, features))
    assert territories.codes == ["01001", "2A004"]
    assert territories.parents["code_departement"] == ["01", "2A"]
    assert set(shapely.get_type_id(territories.geometries)) == {6}


def test_malformed_json_names_the_file_and_the_position(tmp_path):
    path = tmp_path / "broken.geojson"
    path.write_text('{"type": "FeatureCollection",\n "features": [{"type": "Feature",, }]}')
    with pytest.raises(IngestError, match=r"broken\.geojson: malformed JSON at line 2, column 34"):
        read("regions", path)


def test_other_unusable_files_stop_the_ingest_with_a_reason(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[]")
    with pytest.raises(IngestError, match="not a GeoJSON FeatureCollection"):
        read("regions", path)
    with pytest.raises(IngestError, match="reproject to EPSG:4326"):
        read("regions", write(tmp_path, [feature("53", box(300000, 6700000, 310000, 6710000))]))
    with pytest.raises(IngestError, match="no regions code property"):
        nameless = {"type": "Feature", "properties": {"x": 1}, "geometry": mapping(box(0, 0, 1, 1))}
        read("regions", write(tmp_path, [nameless]))
    with pytest.raises(IngestError, match=r"absent properties \['insee'\]"):
        read("regions", write(tmp_path, [feature("53", box(0, 0, 1, 1))]), fields={"code": "insee"})


# --- EPCI on small inputs -------------------------------------------------------------------------

def small_communes() -> Territories:
    squares = [box(0, 0, 1, 1), box(1, 0, 2, 1), box(2, 0, 3, 1), box(3, 0, 4, 1)]
    return Territories("communes", ["01001", "01002", "01003", "01004"], ["A", "B", "C", "D"],
                       np.array([MultiPolygon([s]) for s in squares], dtype=object))


def test_membership_rejects_epci_without_usable_members(tmp_path):
    path = tmp_path / "epci.json"
    path.write_text(json.dumps([
        {"code": "200000001", "nom": "CC Un", "membres": [{"code": "01001"}, {"code": "01002"}]},
        {"code": "200000002", "nom": "CC Deux", "membres": ["01003"]},
        {"code": "200000003", "nom": "CC Fantôme", "membres": [{"code": "99999"}]},
        {"code": "200000004", "nom": "CC Vide", "membres": []},
        {"code": "NC", "nom": "Sans code", "membres": ["01004"]},
        {"code": "200000001", "nom": "CC Un bis", "membres": ["01004"]},
    ]))
    report = Report()
    built = epci_from_membership(path, small_communes(), report=report.dataset("epci", "epci.json"))
    dataset = report.datasets["epci"]
    assert built.codes == ["200000001", "200000002"]
    assert built.geometries[0].equals(box(0, 0, 2, 1))
    assert built.members == {"01001": "200000001", "01002": "200000001", "01003": "200000002",
                             "99999": "200000003"}
    assert (dataset.read, dataset.loaded, dataset.rejected) == (6, 2, 4)
    reasons = {r.line: r.reason for r in dataset.rejections}
    assert reasons[3] == "record 3: EPCI 200000003 (CC Fantôme): none of its 1 member communes has a polygon"
    assert reasons[4] == "record 4: EPCI 200000004 has no 'membres'"
    assert reasons[5] == "record 5: no SIREN code"
    assert reasons[6] == "record 6: EPCI 200000001 already listed at record 1"
    assert dataset.notes == ["1 commune polygons belong to no EPCI: 01004"]


def test_epci_polygons_are_read_as_such_with_members_by_location(tmp_path):
    path = write(tmp_path, [feature("200000001", box(0, 0, 2, 1), "CC Un"),
                            feature("200000002", box(2, 0, 4, 1), "CC Deux")], "epci.geojson")
    report = Report()
    built = read_epci(path, small_communes(), report=report.dataset("epci", "epci.geojson"))
    assert built.codes == ["200000001", "200000002"] and built.names == ["CC Un", "CC Deux"]
    assert built.members == {"01001": "200000001", "01002": "200000001",
                             "01003": "200000002", "01004": "200000002"}
