"""Code normalisation, checked against the official 2026 code lists and the school files' spellings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ingest.codes import UAI_LETTERS, academie, commune, departement, departement_of_commune, region, uai

DATA = Path(os.environ.get("ECARTO_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
COG = DATA / "decoupage-administratif-2026"


def load(path: Path) -> list[dict]:
    if not path.is_file():
        pytest.skip(f"test data not found: {path} (set ECARTO_DATA)")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("written", "expected"),
    [("094", "94"), ("02A", "2A"), ("2B", "2B"), ("971", "971"), ("1", "01"), ("01", "01"), ("976", "976"),
     ("", None), (None, None), ("2C", None), ("abc", None), ("500", None), ("0", None), ("9 4", None)],
)
def test_departement(written: str | None, expected: str | None) -> None:
    assert departement(written) == expected


@pytest.mark.parametrize(
    ("written", "expected"),
    [("1001", "01001"), ("01001", "01001"), ("2A004", "2A004"), ("97105", "97105"), (" 94034 ", "94034"),
     ("", None), ("1", None), ("123456", None), ("2Z004", None), ("9403A", None)],
)
def test_commune(written: str | None, expected: str | None) -> None:
    assert commune(written) == expected


def test_academie_and_region() -> None:
    assert [academie(c) for c in ("7", "07", "10", "70", "", "7a")] == ["07", "07", "10", "70", None, None]
    assert [region(c) for c in ("01", "1", "84", "00", "", "970")] == ["01", "01", "84", None, None, None]


def test_every_official_commune_is_kept_and_placed_in_its_departement() -> None:
    communes = load(COG / "communes.json")
    assert len(communes) > 37_000
    wrong = [c["code"] for c in communes if commune(c["code"]) != c["code"]]
    misplaced = {c["type"] for c in communes if departement_of_commune(c["code"]) != c["departement"]}
    assert wrong == []
    # only a few communes associées, attached across a border (02285 Escaufourt, now in 59), disagree
    assert misplaced == {"commune-associee"}


def test_every_official_departement_and_region_is_kept() -> None:
    departements = [d["code"] for d in load(COG / "departements.json")]
    regions = [r["code"] for r in load(COG / "regions.json")]
    assert [departement(c) for c in departements] == departements
    assert [region(c) for c in regions] == regions
    # the school directory pads départements to three characters
    assert [departement(c.rjust(3, "0")) for c in departements] == departements


def test_every_academie_of_the_boundaries_is_kept() -> None:
    boundaries = load(DATA / "academies" / "fr-en-contour-academies-2020.geojson")
    found = [f["properties"]["code_academie"] for f in boundaries["features"]]
    assert [academie(c) for c in found] == found
    assert {academie(c.lstrip("0")) for c in found} == set(found)


def test_uai_check_letter() -> None:
    # 0350122T: 350122 = 23 * 15222 + 16, and the 17th letter of the alphabet without I, O, Q is T
    assert UAI_LETTERS[16] == "T"
    assert uai("0350122T") == "0350122T"
    assert uai("0350122t") == "0350122T"
    wrong_letters = [letter for letter in UAI_LETTERS if letter != "T"]
    assert all(uai(f"0350122{letter}") is None for letter in wrong_letters)
    assert uai("0350123T") is None  # one digit changed
    assert uai("") is None
    assert uai("035O122T") is None
