"""The tile cache shared on Redis: what one app made, another serves; a Redis away or slow costs no error.

The shared Redis (`redis_url`, started if it is not running) is used under a key prefix of this
test's own; the Redis stopped mid-test is one this test starts on a free port, never the shared one.
"""

from __future__ import annotations

import gzip
import socket
import subprocess
import time

import pytest
import redis

from bench.processes import free_port
from tests.support.tiletools import decode, synthetic_dataset
from tileserver.core import sharedcache
from tileserver.core.errors import ConfigError
from tileserver.core.settings import Settings
from tileserver.core.sharedcache import SharedCache
from tileserver.core.stores import open_store
from tileserver.web.app import create_app

TILES = ["/tiles/etablissements,communes,departements/10/508/358.mvt", "/tiles/etablissements/5/15/11.mvt",
         "/tiles/etablissements/10/0/0.mvt"]  # the last one is empty
FILTERED = "/tiles/etablissements/7/63/44.mvt?type=ecole"  # answered by Flask, not by the shortcut


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("shared") / "e.gpkg")
    store = open_store(path, Settings(database=path))
    store.publish(synthetic_dataset(600))
    store.close()
    return path


def redis_server(port: int) -> subprocess.Popen:
    """A redis-server of our own on `port`, without persistence, once it says it accepts connections."""
    server = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                               "--appendonly", "no"], stdout=subprocess.PIPE, text=True)
    for line in server.stdout:
        if "Ready to accept connections" in line:
            return server
    server.wait()
    raise RuntimeError(f"redis-server on port {port} exited with {server.returncode}")


def app_on(database: str, redis_url: str, prefix: str, timeout: float = 2.0):
    """An app of its own (own store, own in-process cache) sharing the Redis cache.

    The timeout is the production one only where Redis is meant to time out: on a machine busy with
    other tests, a Redis meant to answer may take longer than 50 ms.
    """
    return create_app(Settings(database=database, redis_url=redis_url, redis_prefix=prefix,
                               redis_timeout_seconds=timeout))


def refuse_tiles(app) -> None:
    """Make the app's store fail any tile it is asked for, so a tile it serves can only come from a cache."""
    snapshot = app.extensions["ecarto.store"].current()

    def refuse(*args, **kwargs):
        raise AssertionError("the store was asked for a tile")

    snapshot.tile = refuse


@pytest.mark.in_process("it makes the store refuse tiles and reads the cache's counters"
                        " (test_servers checks the shared cache between live servers)")
def test_a_tile_made_by_one_app_is_served_by_another_from_the_shared_cache(database, redis_url, redis_prefix):
    first, second = app_on(database, redis_url, redis_prefix), app_on(database, redis_url, redis_prefix)
    made = {url: first.test_client().get(url, headers={"Accept-Encoding": "gzip"}) for url in [*TILES, FILTERED]}
    refuse_tiles(second)
    client = second.test_client()
    for url, original in made.items():
        again = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert (again.status_code, again.data, again.headers["ETag"]) == (
            original.status_code, original.data, original.headers["ETag"]), url
        assert again.headers.get("Content-Encoding") == original.headers.get("Content-Encoding")
    assert [made[url].status_code for url in [*TILES, FILTERED]] == [200, 200, 204, 200]
    assert "communes" in decode(gzip.decompress(made[TILES[0]].data))
    assert second.extensions["ecarto.cache"].misses == len(made)  # each missed its own cache, then hit Redis
    for app in (first, second):
        app.extensions["ecarto.store"].close()


@pytest.mark.in_process("it reads whether the app backs off from Redis")
def test_a_redis_stopped_mid_test_costs_no_error(database, redis_prefix):
    port = free_port()
    server = redis_server(port)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        first = app_on(database, url, redis_prefix)
        assert first.test_client().get(TILES[0]).status_code == 200
        assert len(redis.Redis(port=port).keys(f"{redis_prefix}:tile:*")) == 1
    finally:
        server.kill()
        server.wait()
        server.stdout.close()
    second = app_on(database, url, redis_prefix)  # a fresh in-process cache: every tile goes to Redis, then the store
    client = second.test_client()
    for tile_url in [*TILES, FILTERED]:
        served, direct = client.get(tile_url), first.test_client().get(tile_url)
        assert served.status_code == direct.status_code and served.data == direct.data
    assert not second.extensions["ecarto.cache"].shared.available  # backing off: the next tiles skip Redis
    for app in (first, second):
        app.extensions["ecarto.store"].close()


@pytest.mark.in_process("it reads whether the app backs off from Redis")
def test_a_redis_that_does_not_answer_is_skipped_after_its_timeout(database, redis_prefix):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never answers
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        app = app_on(database, url, redis_prefix, timeout=0.05)
        for tile_url in TILES:
            assert app.test_client().get(tile_url).status_code in (200, 204)
        shared: SharedCache = app.extensions["ecarto.cache"].shared
        assert not shared.available
        assert shared.get("anything") is None and not shared.lock("warm", 1)
    app.extensions["ecarto.store"].close()


def test_a_redis_timeout_must_be_positive():
    with pytest.raises(ConfigError, match="ECARTO_REDIS_TIMEOUT_SECONDS"):
        Settings.from_env({"ECARTO_REDIS_URL": "redis://127.0.0.1:6379/0", "ECARTO_REDIS_TIMEOUT_SECONDS": "0"})


def test_hit_counts_wait_in_memory_and_go_to_redis_in_one_round_trip(redis_url, redis_prefix, monkeypatch):
    monkeypatch.setattr(sharedcache, "FLUSH_SECONDS", 3600.0)  # only the explicit flush below sends them
    shared = SharedCache(redis_url, prefix=redis_prefix, timeout=2, sample=1)
    for member in ("regions/3/2/5", "epci/4/1/1", "regions/3/2/5"):
        shared.count("v1", member)
    assert shared.most_requested("v1", 10) == []  # no request waited for Redis
    shared.flush()
    assert shared.most_requested("v1", 10) == ["regions/3/2/5", "epci/4/1/1"]
    shared.close()


def test_the_flusher_thread_sends_the_counts_on_its_own(redis_url, redis_prefix, monkeypatch):
    monkeypatch.setattr(sharedcache, "FLUSH_SECONDS", 0.01)
    shared = SharedCache(redis_url, prefix=redis_prefix, timeout=2, sample=1)
    shared.count("v1", "regions/3/2/5")
    deadline = time.monotonic() + 60
    while not shared.most_requested("v1", 10) and time.monotonic() < deadline:
        time.sleep(0.01)  # polls for the flush, which may be late on a busy machine
    assert shared.most_requested("v1", 10) == ["regions/3/2/5"]
    shared.close()
