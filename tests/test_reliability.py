"""The server under load and when things break: many clients, a lost database, a killed ingest, a full disk.

Every test here runs the real thing: our server started with the Procfile's command (`tests.support.servers`;
granian, and gunicorn from its commented line where the two could differ),
a PostgreSQL connection cut by a TCP proxy, an ingest process killed with SIGKILL, a GeoPackage
published onto a tmpfs that is full or read-only.
"""

from __future__ import annotations

import http.client
import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import requests

from tests.support.datasets import FEATURE_DEPARTEMENTS, uai
from tests.support.national import DATA, ingest_into, small_manifest
from tests.support.servers import SERVERS, TcpProxy, serve
from tileserver.cli import main
from tileserver.core.errors import IngestError
from tileserver.core.grid import BBox, bbox_to_bounds, tiles_covering
from tileserver.core.settings import Settings
from tileserver.core.store import FeatureQuery
from tileserver.core.stores import open_store
from tileserver.core.stores.geopackage import GeoPackageStore
from tileserver.core.stores.postgis.versions import SCHEMA_PREFIX

CLIENTS = 32
WARM_UP_SECONDS = 1.0
LOAD_SECONDS = 3.0
MAX_RSS_GROWTH = 64 * 1024 * 1024  # per worker, over the measured run, with a 16 MB tile cache
POOL_TIMEOUT = 1.0  # ECARTO_DB_TIMEOUT_SECONDS of the servers that lose their database
HANG = 10.0  # a request that takes longer than this hangs
# Long enough that psycopg_pool's doubling reconnection delays (1, 2, 4, 8, 16 s...) would leave the
# pool idle for many seconds after the database returns, unless the store bounds them.
OUTAGE_SECONDS = 20.0
RECOVERY_SECONDS = 5 * POOL_TIMEOUT
OK = {200, 204}
SAMPLES = DATA / "annuaire-education-samples"


def load_paths(seed: int = 7) -> list[str]:
    """Tiles, pages of items, filtered items and documents over the features dataset, shuffled."""
    tiles = []
    for _, _, box, _ in FEATURE_DEPARTEMENTS:
        for z in (0, 4, 7, 9, 11, 13):
            tiles += tiles_covering(bbox_to_bounds(BBox(*box)), z)[:6]
    layers = ("etablissements", "departements", "etablissements,departements")
    paths = [f"/tiles/{layer}/{t.z}/{t.x}/{t.y}.mvt" for t in tiles for layer in layers]
    items = "/collections/etablissements/items"
    paths += [f"{items}?limit=50&offset={offset}" for offset in range(0, 700, 50)]
    paths += [f"{items}?bbox={w},{s},{e},{n}&limit=100" for _, _, (w, s, e, n), _ in FEATURE_DEPARTEMENTS]
    paths += [f"{items}?filter=type%3D%27college%27%20AND%20effectif%3E500&sortby=-ips",
              f"{items}?f=csv&limit=200", f"{items}?type=lycee&statut=public",
              "/collections/departements/items", "/collections", "/versions", "/health"]
    random.Random(seed).shuffle(paths)
    return paths


def hammer(base: str, paths: list[str], seconds: float) -> tuple[Counter, list[str]]:
    """`CLIENTS` threads requesting `paths` in turn for `seconds`: status counts and every failure."""
    statuses: Counter = Counter()
    failures: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(start: int) -> None:
        with requests.Session() as session:
            for path in itertools.islice(itertools.cycle(paths), start, None):
                if time.monotonic() >= deadline:
                    return
                try:
                    status = session.get(base + path, timeout=HANG).status_code
                except requests.RequestException as error:
                    status, path = 0, f"{path}: {error}"
                with lock:
                    statuses[status] += 1
                    if status not in OK:
                        failures.append(f"{status} {path}")

    threads = [threading.Thread(target=client, args=(i * 7,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses, failures


@pytest.mark.parametrize("web", SERVERS)
def test_32_clients_get_no_error_and_workers_keep_their_memory(web, feature_store, tmp_path):
    paths = load_paths()
    with serve(feature_store.url, tmp_path / "server.log", server=web, cache_bytes=16 * 1024 * 1024) as server:
        hammer(server.url, paths, WARM_UP_SECONDS)
        before = server.rss()
        statuses, failures = hammer(server.url, paths, LOAD_SECONDS)
        after = server.rss()
    assert not failures, f"{len(failures)} failures, first: {failures[:10]}"
    assert statuses[200] > CLIENTS
    assert after.keys() == before.keys(), "a worker died and was replaced during the run"
    growth = {pid: after[pid] - before[pid] for pid in before}
    assert max(growth.values()) < MAX_RSS_GROWTH, growth


@pytest.mark.parametrize("web", SERVERS)
def test_persistent_connections_are_spread_over_the_workers(web, feature_store, tmp_path):
    """A proxy's or a CDN's connections, opened in a burst, must not all land on one worker.

    gunicorn's workers take turns on the master's socket (`--reuse-port`); each granian worker
    listens on a socket of its own (SO_REUSEPORT) and the kernel spreads connections by their ports.
    """
    with serve(feature_store.url, tmp_path / "server.log", server=web) as server:
        sessions = [http.client.HTTPConnection(urlsplit(server.url).netloc, timeout=HANG) for _ in range(CLIENTS)]
        try:
            for session in sessions:
                session.request("GET", "/health")
            assert all(session.getresponse().read() for session in sessions)
            held = server.connections()
        finally:
            for session in sessions:
                session.close()
    assert sum(held.values()) == CLIENTS
    assert min(held.values()) >= CLIENTS // 4, held  # even shares are 16 and 16; 8 happens once in 1,000 runs


@pytest.mark.parametrize("web", SERVERS)
def test_a_second_server_on_the_same_port_fails_rather_than_sharing_it(web, feature_store, tmp_path, monkeypatch,
                                                                     capsys):
    """SO_REUSEPORT (granian's, gunicorn's --reuse-port) would let a second server share the port: we refuse first."""
    monkeypatch.setattr(os, "execv", _refuse_exec)
    with serve(feature_store.url, tmp_path / "server.log", server=web) as server:
        code = main(["serve", "--database", feature_store.url, "--bind", urlsplit(server.url).netloc])
    assert code == 1
    assert "cannot listen on 127.0.0.1:" in capsys.readouterr().err


def _refuse_exec(*args):
    raise AssertionError(f"ecarto serve started a second server: {args}")


def via_proxy(url: str, port: int) -> str:
    """A PostgreSQL URL rewritten to reach its server through a proxy on 127.0.0.1:`port`."""
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return parts._replace(netloc=f"{user}127.0.0.1:{port}").geturl()


def uai_of(index: int) -> str:
    """The key of a school of `features_dataset` (Ille-et-Vilaine's numbering)."""
    return uai(350 * 10_000 + index)


def recovers(server, path: str, streak: int = 10) -> bool:
    """Whether `streak` requests in a row succeed within `RECOVERY_SECONDS` (so every worker is back)."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    successes = 0
    while successes < streak and time.monotonic() < deadline:
        successes = successes + 1 if server.get(path, timeout=HANG).status_code == 200 else 0
    return successes == streak


def test_losing_the_database_answers_503_quickly_and_the_server_recovers_by_itself(postgis_store, tmp_path):
    upstream = urlsplit(postgis_store.url)
    items = "/collections/etablissements/items"
    with (
        TcpProxy((upstream.hostname, upstream.port or 5432)) as proxy,
        serve(via_proxy(postgis_store.url, proxy.port), tmp_path / "server.log",
              db_timeout_seconds=POOL_TIMEOUT, version_check_seconds=0) as server,
    ):
        for offset in range(8):  # both workers hold pooled connections when the link goes
            assert server.get(f"{items}?offset={offset}").status_code == 200
        proxy.cut()
        down_since = time.monotonic()
        outage = [f"{items}?offset=3", f"{items}/{uai_of(0)}", "/tiles/etablissements/12/2020/1400.mvt",
                  "/tiles/departements/5/15/11.mvt", "/collections", "/versions", "/health", "/api"]
        while time.monotonic() - down_since < OUTAGE_SECONDS:
            for path in outage:
                response = server.get(path, timeout=HANG)
                assert response.status_code == 503, path
                assert int(response.headers["Retry-After"]) > 0
                assert response.json()["code"] == "ServiceUnavailable"
        proxy.restore()
        assert recovers(server, items), f"still failing {RECOVERY_SECONDS} s after the database came back"
        assert server.get("/tiles/etablissements/12/2020/1400.mvt").status_code in OK


@pytest.mark.national
def test_a_killed_postgis_ingest_leaves_the_previous_version_serving(postgis_url, tmp_path):
    manifest = small_manifest(tmp_path, SAMPLES / "annuaire-education-94-val-de-marne-2026.csv", departement="94")
    first = ingest_into(postgis_url, tmp_path / "cache", manifest)
    schools = first.report.datasets["etablissements"].loaded
    assets = str(tmp_path / "assets")  # where `ingest_into` puts the files of a version
    env = {**os.environ, "PGAPPNAME": KILLED_APP, "ECARTO_ASSETS_DIR": assets}
    command = [sys.executable, "-m", "tileserver.cli", "-q", "ingest", "--sources", str(manifest),
               "--database", postgis_url, "--no-progress", "--cache-dir", str(tmp_path / "cache")]
    for moment in (WRITING, SWITCHING):
        # The test holds the current row, so however fast the ingest is, it cannot switch versions
        # before it is killed; the kill comes while it writes, or once it waits to switch.
        with psycopg.connect(postgis_url) as holder:
            holder.execute("SELECT id FROM ecarto.versions WHERE current FOR UPDATE")
            process = subprocess.Popen(command, env=env)
            try:
                assert reaches(postgis_url, process, moment), "the ingest ended before it published"
            finally:
                process.send_signal(signal.SIGKILL)
                process.wait()
        wait_until_gone(postgis_url, KILLED_APP)
        assert_serves(postgis_url, first.version.id, schools)
    second = ingest_into(postgis_url, tmp_path / "cache", manifest)
    assert_serves(postgis_url, second.version.id, schools)
    assert version_schemas(postgis_url) == {SCHEMA_PREFIX + first.version.id, SCHEMA_PREFIX + second.version.id}
    assert {p.name for p in Path(assets).glob("*")} <= {first.version.id, second.version.id}


KILLED_APP = "ecarto-killed-ingest"
# Moments of a publish, each a query true once the killed ingest's session has reached it.
WRITING = (
    "SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = %(app)s AND query LIKE 'COPY %%'"
)
SWITCHING = (
    "SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = %(app)s"
    " AND wait_event_type = 'Lock' AND query LIKE 'UPDATE ecarto.versions%%'"
)


def reaches(url: str, process: subprocess.Popen, moment: str, seconds: float = 300.0) -> bool:
    """Wait until `moment` is true for the ingest `process` (False if it exits first)."""
    deadline = time.monotonic() + seconds
    with psycopg.connect(url, autocommit=True) as conn:
        while process.poll() is None and time.monotonic() < deadline:
            if conn.execute(moment, {"app": KILLED_APP}).fetchone()[0]:
                return True
            time.sleep(0.05)
    return False


def wait_until_gone(url: str, app: str, seconds: float = 60.0) -> None:
    """Wait until PostgreSQL has ended the sessions of a killed client (each ends at its next read)."""
    deadline = time.monotonic() + seconds
    with psycopg.connect(url, autocommit=True) as conn:
        while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [app]).fetchone()[0]:
            assert time.monotonic() < deadline, f"the sessions of {app} outlived it by {seconds} s"
            time.sleep(0.05)


def assert_serves(url: str, version_id: str, schools: int) -> None:
    """A fresh reader of `url` serves `version_id`, and its schools can be read."""
    store = open_store(url, Settings(database=url, version_check_seconds=0))
    try:
        snapshot = store.current()
        assert snapshot.version.id == version_id
        page = snapshot.query(FeatureQuery("etablissements", limit=schools + 1))
        assert len(list(page.features)) == schools
    finally:
        store.close()


def version_schemas(url: str) -> set[str]:
    """The version schemas in the database of `url`, whether marked or left by a killed run."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", [SCHEMA_PREFIX])
        return {row[0] for row in rows}


@pytest.fixture
def tmpfs(tmp_path):
    """A 4 MB tmpfs mounted for this test (root only), unmounted afterwards."""
    folder = tmp_path / "tmpfs"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", "--lazy", str(folder)], check=True)


def publish_twice_with_a_fault(tmpfs: Path, dataset, fault, repair) -> IngestError:
    """Publish, break the disk, publish again (which must fail and change nothing), repair; the error."""
    path = str(tmpfs / "ecarto.gpkg")
    store = GeoPackageStore(path, Settings(database=path, version_check_seconds=0))
    try:
        first = store.publish(dataset).id
        files = files_in(tmpfs)
        fault()
        with pytest.raises(IngestError) as failed:
            store.publish(dataset)
        assert files_in(tmpfs) == files  # nothing left behind
        assert_serves(path, first, len(dataset.layers["etablissements"].ids))
        repair()
        assert store.publish(dataset).id != first
    finally:
        store.close()
    return failed.value


def files_in(folder: Path) -> set[str]:
    """Every file and folder under `folder` but the test's filler."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.name != "filler"}


def test_a_full_disk_fails_the_publish_clearly_and_keeps_the_served_version(tmpfs, small_dataset):
    filler = tmpfs / "filler"

    def fill() -> None:
        stat = os.statvfs(tmpfs)
        filler.write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - 16 * 1024))

    error = publish_twice_with_a_fault(tmpfs, small_dataset, fill, filler.unlink)
    assert str(tmpfs / "ecarto.gpkg") in error.description
    assert "full" in error.description or "No space left" in error.description


def test_a_read_only_disk_fails_the_publish_clearly_and_keeps_the_served_version(tmpfs, small_dataset):
    def remount(mode: str):
        return lambda: subprocess.run(["mount", "-o", f"remount,{mode}", str(tmpfs)], check=True)

    error = publish_twice_with_a_fault(tmpfs, small_dataset, remount("ro"), remount("rw"))
    assert "Read-only file system" in error.description
