"""Warm, then switch: a new version is served once its hot set is in the shared cache, or at its deadline."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from pathlib import Path

import pytest

from tests.support.tiletools import decode, synthetic_dataset
from tileserver.cli import main
from tileserver.core.priority import lower_priority
from tileserver.core.settings import Settings
from tileserver.core.stores import open_store
from tileserver.web.app import create_app

POINTS = "/tiles/etablissements/10/507/359.mvt"  # three schools at one place, whose names say the version
LOW = "/tiles/etablissements/3/3/2.mvt"  # in the hot set (zoom 3)


@pytest.fixture
def database(tmp_path) -> str:
    path = str(tmp_path / "e.gpkg")
    store = open_store(path, Settings(database=path))
    store.publish(synthetic_dataset(600))
    store.close()
    return path


def app_on(database: str, redis_url: str, prefix: str, **settings):
    """An app of its own sharing the Redis cache, that looks for new versions at every request."""
    return create_app(Settings(database=database, redis_url=redis_url, redis_prefix=prefix, redis_timeout_seconds=2,
                               version_check_seconds=0, hot_sample=1, **settings))


def labels(app, url: str) -> set[str]:
    """The endings of the school names of a tile: which version served it."""
    names = [f["properties"]["nom"] for f in decode(app.test_client().get(url).data)["etablissements"]]
    return {name.endswith(" (v2)") for name in names}


def publish_v2(database: str) -> str:
    store = open_store(database, Settings(database=database))
    version = store.publish(synthetic_dataset(600, label=" (v2)"))
    store.close()
    return version.id


@pytest.mark.in_process("it waits for the warm-up's thread and makes the store refuse tiles")
def test_readers_keep_the_old_version_until_the_hot_set_is_warm(database, redis_url, redis_prefix):
    first, second = app_on(database, redis_url, redis_prefix), app_on(database, redis_url, redis_prefix)
    for app in (first, second):
        assert labels(app, POINTS) == {False}
    new = publish_v2(database)
    assert labels(first, POINTS) == {False}  # it took the warm-up and goes on serving the old version
    warming = next(t for t in threading.enumerate() if t.name == f"warm {new}")
    warming.join()
    snapshot = second.extensions["ecarto.store"].current()
    assert snapshot.version.id == new
    snapshot.tile = _refuse
    assert second.test_client().get(LOW).status_code == 200  # from the shared cache: the store refuses
    assert second.test_client().get(POINTS).status_code == 200  # the previous version's most requested
    assert labels(first, POINTS) == {True}
    for app in (first, second):
        app.extensions["ecarto.store"].close()


def test_a_new_version_is_served_at_its_deadline_without_a_warm_up(database, redis_url, redis_prefix):
    app = app_on(database, redis_url, redis_prefix, warm_deadline_seconds=0)
    assert labels(app, POINTS) == {False}
    publish_v2(database)
    assert labels(app, POINTS) == {True}
    app.extensions["ecarto.store"].close()


def test_without_redis_a_new_version_is_served_at_once(database, redis_prefix):
    app = app_on(database, "redis://127.0.0.1:1/0", redis_prefix)  # nothing listens on port 1
    assert labels(app, POINTS) == {False}
    publish_v2(database)
    assert labels(app, POINTS) == {True}
    app.extensions["ecarto.store"].close()


def _refuse(*args, **kwargs):
    raise AssertionError("the store was asked for a tile")


def test_ecarto_warm_makes_the_hot_set_an_operator_asks_for(database, redis_url, redis_prefix, monkeypatch, capsys):
    monkeypatch.setenv("ECARTO_REDIS_URL", redis_url)
    monkeypatch.setenv("ECARTO_REDIS_PREFIX", redis_prefix)
    assert main(["warm", "--database", database, "--version", "20000101T000000000000"]) == 0
    assert "nothing to warm" in capsys.readouterr().out
    assert main(["warm", "--database", database]) == 0
    assert re.fullmatch(r"warmed \d{8}T\d{12}: [1-9]\d* tiles in the shared cache\n", capsys.readouterr().out)
    assert main(["warm", "--database", database]) == 0  # the first one's lock holds until the warm-up deadline
    assert "holds the lock; nothing to do" in capsys.readouterr().out
    app = app_on(database, redis_url, redis_prefix)
    app.extensions["ecarto.store"].current().tile = _refuse
    assert app.test_client().get(LOW).status_code == 200  # made by `ecarto warm`, read from Redis
    app.extensions["ecarto.store"].close()


def test_ecarto_warm_without_a_shared_cache_says_so(database, monkeypatch, capsys):
    monkeypatch.delenv("ECARTO_REDIS_URL", raising=False)
    assert main(["warm", "--database", database]) == 1
    assert "ECARTO_REDIS_URL is not set" in capsys.readouterr().err


def test_a_warm_up_process_runs_niced_against_every_session(tmp_path):
    leader = subprocess.Popen(["sleep", "60"], start_new_session=True)
    follower = subprocess.Popen(["sleep", "60"])  # in this session, as `ecarto warm` typed in a terminal
    try:
        lower_priority(7, leader.pid)
        lower_priority(7, follower.pid)
        assert os.getpriority(os.PRIO_PROCESS, leader.pid) == os.getpriority(os.PRIO_PROCESS, follower.pid) == 7
        autogroup = Path(f"/proc/{leader.pid}/autogroup")
        if autogroup.exists():  # Linux with autogroups: the leader's session is niced, this one is not
            assert autogroup.read_text().split()[-1] == "7"
            assert Path(f"/proc/{follower.pid}/autogroup").read_text() == Path("/proc/self/autogroup").read_text()
    finally:
        for process in (leader, follower):
            process.kill()
            process.wait()
