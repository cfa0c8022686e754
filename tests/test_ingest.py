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
from pathlib import Path

from tests.conftest import DATA, REPO, ingest_into, small_manifest
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
