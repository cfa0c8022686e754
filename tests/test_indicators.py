"""Indicator tables: parsing, broken rows, latest-row selection, join and aggregation."""

import math

import numpy as np
import pytest

from ingest.indicators import aggregate, join_to_schools, read_table
from ingest.manifest import Indicator
from ingest.report import Report

SPEED = Indicator("debit", "connectivite", "Débit", "t.csv", "debit_mbps", kind="number")
FIBRE = Indicator("fibre", "connectivite", "Fibre", "t.csv", "fibre", kind="boolean", aggregate="share")
WIFI = Indicator("wifi", "connectivite", "Wi-Fi", "t.csv", "wifi", kind="boolean", aggregate="count")


def table(tmp_path, text, indicators=(SPEED, FIBRE)):
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode("utf-8-sig"))
    report = Report().dataset("t", str(path))
    return read_table(path, list(indicators), report), report


def test_reads_values_and_rejects_broken_rows_with_their_line(tmp_path):
    values, report = table(
        tmp_path,
        "UAI;Débit Mbps;Fibre\n"
        "0010001W;12,5;oui\n"
        "0010002X;;nr\n"
        "0010003Y;abc;oui\n"
        "0010004Z;3;peut-être\n"
        ";4;non\n"
        "0010005A;4\n"
        "0010001W;99;non\n",
    )
    assert values.by_key["0010001W"] == {"debit": 12.5, "fibre": 1.0}
    assert values.by_key["0010002X"] == {"debit": None, "fibre": None}
    assert report.loaded == 2 and report.rejected == 5 and report.read == 7
    reasons = {r.line: r.reason for r in report.rejections}
    assert "not a number" in reasons[4]
    assert "yes/no" in reasons[5]
    assert "'' is not a valid etablissements key" in reasons[6]
    assert "2 columns instead of 3" in reasons[7]
    assert "duplicate key 0010001W (kept line 2)" in reasons[8]


def test_latest_keeps_the_most_recent_row_per_key(tmp_path):
    ips = Indicator("ips", "contexte", "IPS", "t.csv", "ips", latest="Rentrée scolaire")
    values, report = table(
        tmp_path,
        "Rentrée scolaire;UAI;IPS\n2021;0010001W;90\n2023;0010001W;110\n2022;0010001W;100\n",
        [ips],
    )
    assert values.by_key["0010001W"]["ips"] == 110
    assert values.lines["0010001W"] == 3
    assert (report.loaded, report.rejected, report.read) == (1, 2, 3)


def test_missing_column_is_an_ingest_error(tmp_path):
    from tileserver.core.errors import IngestError

    with pytest.raises(IngestError, match="missing column 'fibre'"):
        table(tmp_path, "UAI;Débit Mbps\n0010001W;3\n")


def test_join_rejects_rows_of_unknown_schools(tmp_path):
    values, report = table(tmp_path, "UAI;Débit Mbps;Fibre\n0010001W;10;oui\n0010003Y;20;non\n9999999Z;1;oui\n")
    joined = join_to_schools(lambda _: ["0010001W", "0010002X"], ["ecole", "ecole"], [(values, report, [SPEED, FIBRE])],
                             {})
    assert joined["debit"][0] == 10 and math.isnan(joined["debit"][1])
    assert report.loaded == 1 and report.rejected == 2 and report.read == 3
    assert "'9999999Z' is not a valid etablissements key" in report.rejections[0].reason
    assert report.rejections[1].line == 3 and "not among the loaded schools" in report.rejections[1].reason


def test_aggregate_by_territory_matches_a_hand_count():
    codes = ["A", "A", "B", None, "A"]
    types = ["ecole", "college", "ecole", "ecole", "erea"]
    speeds = np.array([10.0, np.nan, 30.0, 50.0, 20.0])
    fibre = np.array([1.0, 0.0, np.nan, 1.0, 1.0])
    known = {"debit": ~np.isnan(speeds), "fibre": ~np.isnan(fibre), "wifi": ~np.isnan(fibre)}
    out = aggregate(codes, {"A": 0, "B": 1, "C": 2}, types, {"debit": speeds, "fibre": fibre, "wifi": fibre},
                    [SPEED, FIBRE, WIFI], known)
    assert out["etablissements"] == [3, 1, 0]
    assert out["n_ecole"] == [1, 1, 0] and out["n_college"] == [1, 0, 0] and out["n_autre"] == [1, 0, 0]
    assert out["debit"] == [15.0, 30.0, None]  # the mean of known values only
    assert out["fibre"] == [66.67, None, None]  # a share, in %, of the known values
    assert out["wifi"] == [2, 0, 0]
    assert out["debit_nc"] == [1, 0, 0] and out["fibre_nc"] == [0, 1, 0]  # schools with no value


def test_periods_sum_the_latest_complete_school_year(tmp_path):
    visits = Indicator("visites", "services", "Visites", "t.csv", "visites", aggregate="sum",
                       period="debutsemaine", combine="sum")
    values, report = table(
        tmp_path,
        "debutsemaine;uai;visites\n2023-09-04;0010001W;10\n2024-08-26;0010001W;5\n2023-10-02;0010002X;7\n"
        "2024-09-02;0010001W;100\n2025-03-10;0010002X;100\n",
        [visits],
    )
    assert {k: v["visites"] for k, v in values.by_key.items()} == {"0010001W": 15.0, "0010002X": 7.0}
    assert values.vintage == "2023-2024" and report.loaded == 5
    assert "2 rows of other periods left aside" in report.notes[0]


def test_ratio_and_where_give_pairs_summed_upward(tmp_path):
    from ingest.indicators import value_of
    from ingest.rollup import roll_up

    ftth = Indicator("ftth", "connectivite", "FttH", "t.csv", kind="ratio", numerator="elig_ftth",
                     denominator="nbr", level="communes", key="code_insee", where={"type": "all"})
    values, report = table(
        tmp_path,
        "code_insee;type;nbr;elig_ftth\n01001;all;100;50\n01001;pro;10;0\n1002;all;300;300\n01003;all;0;0\n",
        [ftth],
    )
    cells = [values.by_key[c]["ftth"] for c in ("01001", "01002", "01003")]
    assert cells == [(50.0, 100.0), (300.0, 300.0), (0.0, 0.0)] and "1 rows left aside" in report.notes[0]
    assert [value_of(ftth, c) for c in cells] == [50.0, 100.0, None]
    assert roll_up(ftth, cells, ["A", "A", "B"], {"A": 0, "B": 1}) == [87.5, None]  # 350 / 400, weighted by nbr


def test_a_weighted_number_rolls_up_as_a_weighted_mean(tmp_path):
    from ingest.rollup import roll_up

    speed = Indicator("debit", "connectivite", "Débit", "t.csv", "debit", level="communes", key="code",
                      weight="locaux")
    values, _ = table(tmp_path, "code;debit;locaux\n01001;100;1\n01002;10;9\n01003;;5\n", [speed])
    cells = [values.by_key[c]["debit"] for c in ("01001", "01002", "01003")]
    assert roll_up(speed, cells, ["A", "A", "A"], {"A": 0}) == [19.0]  # (100 * 1 + 10 * 9) / 10


def test_presence_is_no_for_the_concerned_schools_absent_from_the_list(tmp_path):
    socle = Indicator("socle", "equipement", "Socle", "t.csv", kind="presence", applies_to=("ecole",))
    values, report = table(tmp_path, "uai;nom\n0010001W;a\n0010001W;a again\n", [socle])
    assert report.rejected == 0  # a presence list may name a school twice
    joined = join_to_schools(lambda _: ["0010001W", "0010002X", "0010003Y"], ["ecole", "ecole", "college"],
                             [(values, report, [socle])], {})
    assert joined["socle"][:2].tolist() == [1.0, 0.0] and math.isnan(joined["socle"][2])


def test_via_and_aliases_join_schools_by_their_departement(tmp_path):
    tne = Indicator("tne", "experimentations", "TNE", "t.csv", kind="presence", via="departements",
                    key="numero_du_departement", aliases={"20": "2A"})
    values, report = table(tmp_path, "numero_du_departement\n20\n2\n971\n", [tne])
    assert set(values.by_key) == {"2A", "02", "971"}
    joined = join_to_schools(lambda level: ["2A", "2B", "02"] if level == "departements" else ["x"] * 3,
                             ["ecole", "lycee", "college"], [(values, report, [tne])], {})
    assert joined["tne"].tolist() == [1.0, 0.0, 1.0]
    assert "1 keys are not the departements of a loaded school" in report.notes
