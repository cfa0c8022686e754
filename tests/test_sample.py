"""The repository's sample (sources/sample.toml): real data that ingests clean, once."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ingest.manifest import fingerprint, load_manifest
from tests.support.national import REPO, ingest_into
from tileserver.cli import main
from tileserver.core.sharedcache import SharedCache
from tileserver.web.warm import ready_flag

SAMPLE = REPO / "sources" / "sample.toml"


def without_surfaces(folder: Path) -> Path:
    """The sample's manifest with `surfaces = false` (the rasters are most of its ingest time), in `folder`."""
    (folder / "sample").symlink_to(SAMPLE.parent / "sample")
    manifest = folder / "sample.toml"
    manifest.write_text("surfaces = false\n" + SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    return manifest


def test_the_sample_ingests_with_only_the_rejections_the_readme_explains(tmp_path, capsys):
    manifest = without_surfaces(tmp_path)
    ingested = ingest_into(str(tmp_path / "ecarto.gpkg"), tmp_path / "cache", manifest)
    datasets = {d["name"]: d for d in ingested.report.to_dict()["datasets"]}
    assert datasets["etablissements"]["loaded"] == 993
    for name in ("etablissements", "indicateurs: eleves"):
        reasons = {r["reason"].split(" ")[1] for r in datasets[name]["rejections"]}
        assert datasets[name]["rejected"] == 3 and reasons == {"UAI" if name == "etablissements" else "key"}
    rejected = {name: d["rejected"] for name, d in datasets.items() if name not in ("etablissements",
                                                                                   "indicateurs: eleves")}
    assert set(rejected.values()) == {0}, rejected
    assert datasets["indicateurs: ips_colleges"]["loaded"] == 109
    assert main(["-q", "ingest", "--sources", str(manifest), "--database", ingested.url, "--if-changed"]) == 0
    assert f"already holds version {ingested.version.id}" in capsys.readouterr().out


def test_the_fingerprint_changes_with_a_source_file_and_the_manifest(tmp_path):
    shutil.copytree(SAMPLE.parent / "sample", tmp_path / "sample")
    manifest = tmp_path / "sample.toml"
    manifest.write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    first = fingerprint(load_manifest(manifest))
    assert fingerprint(load_manifest(manifest)) == first
    (tmp_path / "sample" / "ips-colleges-2023.csv").write_text("Rentrée scolaire;UAI;IPS\n", encoding="utf-8")
    second = fingerprint(load_manifest(manifest))
    manifest.write_text("surfaces = false\n" + SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    assert len({first, second, fingerprint(load_manifest(manifest))}) == 3


def test_postgis_keeps_the_fingerprint_too(tmp_path, postgis_url, capsys):
    manifest = without_surfaces(tmp_path)
    ingested = ingest_into(postgis_url, tmp_path / "cache", manifest)
    assert main(["-q", "ingest", "--sources", str(manifest), "--database", postgis_url, "--if-changed"]) == 0
    assert f"already holds version {ingested.version.id}" in capsys.readouterr().out


def test_an_ingest_with_a_shared_cache_warms_the_version_it_published(tmp_path, capsys, monkeypatch, redis_url,
                                                                      redis_prefix):
    monkeypatch.setenv("ECARTO_REDIS_URL", redis_url)
    monkeypatch.setenv("ECARTO_REDIS_PREFIX", redis_prefix)
    assert main(["-q", "ingest", "--sources", str(without_surfaces(tmp_path)), "--database",
                 str(tmp_path / "e.gpkg"), "--no-progress", "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    version = re.search(r"published version (\d{8}T\d{12})", out).group(1)
    assert re.search(rf"warmed {version}: [1-9]\d* tiles in the shared cache", out)  # before any server looks
    shared = SharedCache(redis_url, prefix=redis_prefix, timeout=2)
    assert shared.flagged(ready_flag(version))
    shared.close()


def test_an_ingest_whose_redis_is_away_publishes_and_warns(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ECARTO_REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    assert main(["-q", "ingest", "--sources", str(without_surfaces(tmp_path)), "--database",
                 str(tmp_path / "e.gpkg"), "--no-progress", "--cache-dir", str(tmp_path / "cache")]) == 0
    captured = capsys.readouterr()
    assert "published version" in captured.out
    assert "warning: no warm-up: Redis at redis://127.0.0.1:1/0 does not answer" in captured.err
