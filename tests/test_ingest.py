"""The ingest job end to end: real data into both stores, reports that reconcile, failures that lose nothing."""

from __future__ import annotations

import csv
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.national import DATA, REPO, Ingested, ingest_into, small_manifest
from tileserver.cli import main
from tileserver.core.settings import Settings
from tileserver.core.stores import open_store

SAMPLE_35 = DATA / "annuaire-education-samples/annuaire-education-35-ille-et-vilaine-2023.csv"
SAMPLE_94 = DATA / "annuaire-education-samples/annuaire-education-94-val-de-marne-2026.csv"


@contextmanager
def snapshot_of(url: str):
    """The current snapshot of a store, which is closed afterwards."""
    store = open_store(url, Settings(database=url, version_check_seconds=0))
    try:
        yield store.current()
    finally:
        store.close()


def data_rows(path: Path) -> int:
    """Rows of a CSV file, counted without our reader."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        return sum(1 for _ in csv.reader(handle, delimiter=";")) - 1


def features_in(path: Path) -> int:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return len(json.load(handle)["features"])


def test_every_dataset_reconciles(national_gpkg):
    datasets = national_gpkg.report.to_dict()["datasets"]
    assert len(datasets) >= 8
    for d in datasets:
        assert d["read"] == d["loaded"] + d["rejected"], d["name"]
    by_name = {d["name"]: d for d in datasets}
    assert by_name["etablissements"]["read"] == data_rows(DATA / "synthetic/annuaire-education-synthetique.csv.gz")
    assert by_name["communes"]["read"] == features_in(DATA / "boundaries-2018/communes-avec-outre-mer.geojson.gz")
    assert by_name["academies"]["read"] == features_in(DATA / "academies/fr-en-contour-academies-2020.geojson")


def test_published_counts_match_the_report_and_both_stores_agree(national_gpkg, national_postgis):
    counts = {}
    for ingested in (national_gpkg, national_postgis):
        with snapshot_of(ingested.url) as snap:
            counts[ingested.url] = {c.id: c.count for c in snap.collections()}
        loaded = {d["name"]: d["loaded"] for d in ingested.report.to_dict()["datasets"]}
        for collection, count in counts[ingested.url].items():
            assert count == loaded[collection], collection
    gpkg, pg = counts.values()
    assert gpkg == pg
    assert gpkg["etablissements"] > 69_000 and gpkg["communes"] > 35_000 and gpkg["regions"] == 18


def test_schools_get_every_territory_code_and_indicators(national_gpkg):
    with snapshot_of(national_gpkg.url) as snap:
        features = list(snap.query(_query("etablissements", limit=2000, offset=30_000)).features)
    for key in ("code_commune", "code_departement", "code_academie", "code_region", "code_epci"):
        assert sum(f.properties[key] is None for f in features) <= 2, key
    assert any(f.properties["debit_descendant_mbps"] is not None for f in features)
    assert {type(f.properties["fibre"]) for f in features} <= {bool, type(None)}


def test_territory_aggregates_add_up(national_gpkg):
    with snapshot_of(national_gpkg.url) as snap:
        regions = list(snap.query(_query("regions", limit=100)).features)
        schools = next(c.count for c in snap.collections() if c.id == "etablissements")
    placed = sum(r.properties["etablissements"] for r in regions)
    assert schools - 50 <= placed <= schools  # a few schools lie outside every 2018 polygon
    for r in regions:
        p = r.properties
        assert p["etablissements"] == p["n_ecole"] + p["n_college"] + p["n_lycee"] + p["n_autre"]
        if p["fibre"] is not None:
            assert 0 <= p["fibre"] <= 100


def test_report_is_kept_with_the_version(national_gpkg):
    store = open_store(national_gpkg.url, Settings(database=national_gpkg.url))
    newest = store.versions()[0]
    store.close()
    assert newest.id == national_gpkg.version.id
    assert newest.report == national_gpkg.report.to_dict()


@pytest.mark.national
def test_an_older_layout_with_public_and_private_schools(tmp_path):
    """The 2023 Ille-et-Vilaine export: 69 columns, X/Y in Lambert-93, schools of every type."""
    manifest = small_manifest(tmp_path, SAMPLE_35, departement="35")
    result = ingest_into(str(tmp_path / "35.gpkg"), tmp_path / "cache", manifest)
    schools = result.report.datasets["etablissements"]
    assert schools.read == data_rows(SAMPLE_35)
    with snapshot_of(str(tmp_path / "35.gpkg")) as snap:
        features = list(snap.query(_query("etablissements", limit=2000)).features)
    assert len(features) == schools.loaded
    assert {"public", "prive"} <= {f.properties["statut"] for f in features}
    assert {f.properties["code_departement"] for f in features} == {"35"}
    assert all(f.properties["code_commune"].startswith("35") for f in features)


@pytest.mark.national
def test_a_missing_source_fails_clearly_and_keeps_the_previous_version(tmp_path, capsys):
    database = tmp_path / "keep.gpkg"
    manifest = small_manifest(tmp_path, SAMPLE_94, departement="94")
    first = ingest_into(str(database), tmp_path / "cache", manifest)
    broken = tmp_path / "broken.toml"
    broken.write_text(manifest.read_text().replace("val-de-marne-2026.csv", "nowhere.csv"))
    code = main(
        [
            "-q",
            "ingest",
            "--sources",
            str(broken),
            "--database",
            str(database),
            "--no-progress",
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "nowhere.csv" in err and "Traceback" not in err
    with snapshot_of(str(database)) as snap:
        assert snap.version.id == first.version.id


@pytest.mark.national
def test_a_killed_ingest_leaves_the_previous_version_serving(tmp_path):
    database = tmp_path / "killed.gpkg"
    manifest = small_manifest(tmp_path, SAMPLE_94, departement="94")
    first = ingest_into(str(database), tmp_path / "cache", manifest)
    command = [
        sys.executable,
        "-m",
        "tileserver.cli",
        "-q",
        "ingest",
        "--sources",
        str(REPO / "sources/local.toml"),
        "--database",
        str(database),
        "--no-progress",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    env = {**os.environ, "ECARTO_DATA": str(DATA)}
    process = subprocess.Popen(command, env=env)
    time.sleep(6.0)  # mid-run: reading and generalising the national boundaries
    process.send_signal(signal.SIGKILL)
    process.wait()
    with snapshot_of(str(database)) as snap:
        assert snap.version.id == first.version.id
    second = ingest_into(str(database), tmp_path / "cache", manifest)
    with snapshot_of(str(database)) as snap:
        assert snap.version.id == second.version.id != first.version.id
    assert not list(tmp_path.glob("killed.gpkg.*.tmp"))


def _query(collection: str, **kwargs):
    from tileserver.core.store import FeatureQuery

    return FeatureQuery(collection, **kwargs)


def sample_rows() -> list[list[str]]:
    """The Val-de-Marne sample as rows of values, the header first."""
    with open(SAMPLE_94, encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle, delimiter=";"))


def test_a_comma_file_whose_rows_fit_no_delimiter_fails_in_one_line_naming_it(tmp_path, capsys):
    """Written without quotes, the "lat, lon" `position` column gives every row one column too many."""
    naive = tmp_path / "annuaire-virgules.csv"
    naive.write_text("\n".join(",".join(row) for row in sample_rows()) + "\n", encoding="utf-8")
    code = main(["-q", "ingest", "--sources", str(small_manifest(tmp_path, naive, departement="94")),
                 "--database", str(tmp_path / "e.gpkg"), "--no-progress", "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "annuaire-virgules.csv" in err and "delimiter" in err


def test_comma_and_tab_files_read_like_the_semicolon_one(tmp_path):
    rows = sample_rows()
    for name, delimiter in (("virgules.csv", ","), ("tabulations.tsv", "\t")):
        with open(tmp_path / name, "w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, delimiter=delimiter).writerows(rows)
    schools = {}
    for name in ("virgules.csv", "tabulations.tsv"):
        folder = tmp_path / name.split(".")[0]
        folder.mkdir()
        result = ingest_into(str(folder / "e.gpkg"), folder / "cache",
                             small_manifest(folder, tmp_path / name, departement="94"))
        schools[name] = result.report.datasets["etablissements"]
    assert schools["virgules.csv"].loaded == schools["tabulations.tsv"].loaded == len(rows) - 1


@dataclass
class OddIngest:
    """The Val-de-Marne sample ingested with one odd row or feature per hole, and where to look."""

    result: Ingested
    folder: Path
    rows: int
    commune: str
    killed: Path
    system_tmp: Path


@pytest.fixture(scope="module")
def odd(tmp_path_factory) -> OddIngest:
    """Rows 3 (lat/lon swapped), 4 (in Rennes) and 5 (a NUL in its name); a commune with an open ring and a
    NUL in its name; a killed run's scratch folder beside the store; the system temp directory watched."""
    folder = tmp_path_factory.mktemp("odd")
    rows = sample_rows()
    head = {name: i for i, name in enumerate(rows[0])}
    lat, lon, nom = head["latitude"], head["longitude"], head["Nom_etablissement"]
    rows[2][lat], rows[2][lon] = rows[2][lon], rows[2][lat]
    rows[3][lat], rows[3][lon] = "48.11", "-1.68"  # Rennes, 300 km from Val-de-Marne
    rows[4][nom] = "Ecole\x00 du Parc"
    source = folder / "annuaire-94.csv"
    source.write_text("\n".join(";".join(row) for row in rows) + "\n", encoding="utf-8")
    manifest = small_manifest(folder, source, departement="94")
    communes = json.loads((folder / "communes.geojson").read_text(encoding="utf-8"))
    opened = communes["features"][0]
    coordinates = opened["geometry"]["coordinates"]
    (coordinates[0] if opened["geometry"]["type"] == "Polygon" else coordinates[0][0]).pop()  # last != first
    opened["properties"]["nom"] += "\x00"
    (folder / "communes.geojson").write_text(json.dumps(communes), encoding="utf-8")
    ended = subprocess.Popen(["true"])  # its pid is free once it ended
    ended.wait()
    killed = folder / f"ecarto-rasters-{ended.pid}-k1ll"
    killed.mkdir()
    system_tmp = folder / "system-tmp"
    system_tmp.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("tempfile.tempdir", str(system_tmp))
        result = ingest_into(str(folder / "e.gpkg"), folder / "cache", manifest)
    return OddIngest(result, folder, len(rows) - 1, opened["properties"]["code"], killed, system_tmp)


def test_swapped_coordinates_are_rejected_naming_the_swap(odd):
    schools = odd.result.report.datasets["etablissements"]
    reasons = {r.line: r.reason for r in schools.rejections}
    assert reasons[3].endswith("outside its département 94: latitude and longitude swapped")
    assert "outside its département 94" in reasons[4] and "swapped" not in reasons[4]
    assert schools.loaded == odd.rows - 2 and schools.file == "annuaire-94.csv"


def test_nul_characters_are_removed_with_a_note(odd):
    assert "NUL characters removed from 1 line(s): 5" in odd.result.report.datasets["etablissements"].notes
    assert f"NUL characters removed from 1 names: {odd.commune}" in odd.result.report.datasets["communes"].notes
    with snapshot_of(odd.result.url) as snap:
        names = [f.properties["nom"] for f in snap.query(_query("etablissements", limit=1000)).features]
        names += [f.properties["nom"] for f in snap.query(_query("communes", limit=1000)).features]
    assert "Ecole du Parc" in names and not any("\x00" in n for n in names)


def test_an_open_ring_is_closed_with_a_note(odd):
    notes = " ".join(odd.result.report.datasets["communes"].notes)
    assert f"1 outlines had a ring left open (last point not the first), closed: {odd.commune}" in notes


def test_scratch_files_stay_beside_the_store_and_a_killed_runs_are_removed(odd):
    assert not odd.killed.exists() and not list(odd.folder.glob("ecarto-rasters-*"))
    assert not list(odd.system_tmp.iterdir())


def test_a_wrong_database_url_fails_before_any_source_is_read(tmp_path, capsys):
    manifest = small_manifest(tmp_path, tmp_path / "not-read-yet.csv", departement="94")
    code = main(["-q", "ingest", "--sources", str(manifest), "--database",
                 "postgresql://ecarto:secret@127.0.0.1:1/ecarto_nowhere", "--no-progress",
                 "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "secret" not in err
    assert "host 127.0.0.1, port 1, database ecarto_nowhere" in err
    assert "not-read-yet" not in err  # the first source read would have failed naming it
