"""The real ingest run in tests: the national data of ../shared/data, or a manifest over one sample file."""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ingest.job import run
from ingest.manifest import load_manifest
from ingest.report import Report
from tileserver.core.settings import Settings
from tileserver.core.store import VersionInfo
from tileserver.core.stores import open_store

# The national-scale data of ../shared/data, ingested once per test session into each store.
REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("ECARTO_DATA", REPO.parent / "shared" / "data"))


@dataclass
class Ingested:
    """A store holding the national data, with what the ingest reported."""

    url: str
    version: VersionInfo
    report: Report
    cache_dir: Path


def ingest_into(url: str, cache_dir: Path, manifest_path: Path = REPO / "sources" / "local.toml") -> Ingested:
    """Run the real ingest of a manifest into the store at `url`."""
    settings = Settings(database=url, version_check_seconds=0, assets_dir=str(cache_dir.parent / "assets"))
    store = open_store(url, settings)
    try:
        version, report = run(load_manifest(manifest_path), store, cache_dir=cache_dir, progress=False)
    finally:
        store.close()
    return Ingested(url, version, report, cache_dir)
NO_DATA = f"needs ../shared/data, absent here ({DATA}; set ECARTO_DATA)"


def small_manifest(tmp_path: Path, schools: Path, *, departement: str) -> Path:
    """A manifest over one sample file, with the communes of its département only (fast)."""
    with gzip.open(DATA / "boundaries-2018/communes-avec-outre-mer.geojson.gz", "rt", encoding="utf-8") as handle:
        communes = json.load(handle)
    communes["features"] = [f for f in communes["features"] if f["properties"]["code"].startswith(departement)]
    (tmp_path / "communes.geojson").write_text(json.dumps(communes), encoding="utf-8")
    manifest = tmp_path / f"sources-{departement}.toml"
    manifest.write_text(
        f"""
surfaces = false
[schools]
url = "{schools}"
[communes]
url = "communes.geojson"
[departements]
url = "{DATA}/boundaries-2018/departements-avec-outre-mer.geojson"
[academies]
url = "{DATA}/academies/fr-en-contour-academies-2020.geojson"
[regions]
url = "{DATA}/boundaries-2018/regions-avec-outre-mer.geojson"
""",
        encoding="utf-8",
    )
    return manifest
