"""Bounded work on the national data: the attacks of issue 13 end quickly, and the server keeps answering.

The live tests run gunicorn as the Procfile does (`tests.support.servers.serve`) on both stores. Their only
clocks are the server's own deadline (`ECARTO_REQUEST_TIMEOUT`) and the clients' timeouts: an
attack request that the server does not end within the deadline makes its client give up, which
fails the test; `/health` is asked with a one-second timeout throughout.
"""

from __future__ import annotations

import json
import threading
from urllib.parse import quote

import psycopg
import pytest
import requests

from tests.support.servers import serve
from tileserver.core.settings import Settings
from tileserver.core.stores import open_store
from tileserver.web.app import create_app

pytestmark = pytest.mark.slow

DEADLINE = 5  # ECARTO_REQUEST_TIMEOUT of the live servers, in seconds
MARGIN = 1.5  # what a loaded machine may add to an answer the server gives at its deadline
ITEMS = "/collections/etablissements/items"
ATTACKERS = 8
ROUNDS = 2  # requests each attacker sends, one after the other
ATTACK_TERM = "ACCENTI(CASEI(nom)) = ACCENTI(CASEI('xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'))"
ATTACK = " OR ".join([ATTACK_TERM] * 40)  # `nom` has a search index: cheap now, 60 s on GeoPackage before it
UNINDEXED = " OR ".join([ATTACK_TERM.replace("(nom)", "(statut)")] * 40)  # `statut` has none
WORLD = "S_INTERSECTS(geometry, POLYGON((-180 -90, 180 -90, 180 90, -180 90, -180 -90)))"
FRANCE = {  # a bbox covering metropolitan France in each CRS
    "2154": "100000,6000000,1300000,7200000",
    "3857": "-700000,5000000,1100000,6700000",
}
MAINLAND_SCHOOLS = 60_000  # at least this many schools lie in such a box


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def live(request, tmp_path_factory):
    """gunicorn (Procfile command, 2 workers) serving the national data of one store, with a short deadline."""
    ingested = request.getfixturevalue(f"national_{request.param}")
    log = tmp_path_factory.mktemp(f"bounded-{request.param}") / "gunicorn.log"
    with serve(ingested.url, log, workers=2, request_timeout=DEADLINE) as server:
        yield server


def _filter(text: str, lang: str = "cql2-text") -> str:
    return f"{ITEMS}?limit=3&filter-lang={lang}&filter={quote(text)}"


def _ogc_exception(response: requests.Response) -> dict:
    body = response.json()
    assert set(body) == {"code", "description"}, body
    return body


@pytest.mark.parametrize("attack", [ATTACK, UNINDEXED], ids=["indexed", "unindexed"])
def test_eight_attackers_are_answered_within_the_deadline_while_health_answers(live, attack):
    """Issue 13's attack: 8 clients send a 40-term ACCENTI filter and give up after the deadline.

    Each gets an answer before: the rows (the search index makes it cheap), a 400 (over the cost
    budget), or a 503 (busy, or cut at the deadline).
    """
    statuses: list[int | str] = []
    health: list[int | str] = []
    done = threading.Event()

    def attacker() -> None:
        for _ in range(ROUNDS):
            try:
                statuses.append(live.get(_filter(attack), timeout=DEADLINE + MARGIN).status_code)
            except requests.RequestException as error:
                statuses.append(f"gave up: {type(error).__name__}")

    def watcher() -> None:
        while not done.is_set():
            try:
                answer = live.get("/health", timeout=1)
                health.append(200 if answer.status_code == 200 else f"{answer.status_code}: {answer.text[:200]}")
            except requests.RequestException as error:
                health.append(f"no answer within 1 s: {type(error).__name__}")

    for _ in range(4):  # every worker opens its store before the attack (a cold start is not what is tested)
        assert live.get("/health", timeout=DEADLINE * 2).status_code == 200
    watching = threading.Thread(target=watcher)
    watching.start()
    attackers = [threading.Thread(target=attacker) for _ in range(ATTACKERS)]
    for thread in attackers:
        thread.start()
    for thread in attackers:
        thread.join()
    done.set()
    watching.join()
    assert len(statuses) == ATTACKERS * ROUNDS
    assert all(isinstance(s, int) and (s == 200 or 400 <= s < 500 or s == 503) for s in statuses), statuses
    assert health and all(s == 200 for s in health), health
    assert live.get(f"{ITEMS}?limit=5", timeout=DEADLINE).status_code == 200
    assert live.get(_filter("type = 'college'"), timeout=DEADLINE).status_code == 200


def test_forty_folded_terms_without_an_index_are_refused_before_reaching_the_database(live):
    response = live.get(_filter(UNINDEXED), timeout=DEADLINE + MARGIN)
    assert response.status_code == 400
    assert "too expensive" in _ogc_exception(response)["description"]


def test_three_world_sized_polygons_ored_are_answered_by_the_index(live):
    response = live.get(_filter(" OR ".join([WORLD] * 3)), timeout=DEADLINE + MARGIN)
    assert response.status_code == 200, response.text
    assert response.json()["numberMatched"] == live.get(f"{ITEMS}?limit=1").json()["numberMatched"]


@pytest.mark.parametrize("code", sorted(FRANCE))
def test_a_projected_bbox_covering_france_is_answered_by_the_index(live, code):
    crs = quote(f"http://www.opengis.net/def/crs/EPSG/0/{code}")
    response = live.get(f"{ITEMS}?limit=3&bbox={FRANCE[code]}&bbox-crs={crs}", timeout=DEADLINE + MARGIN)
    assert response.status_code == 200, response.text
    assert response.json()["numberMatched"] > MAINLAND_SCHOOLS


@pytest.mark.parametrize("lang, text", [
    ("cql2-json", json.dumps({"op": "=", "args": [{"property": "nom"}, {"timestamp": "not a time"}]})),
    ("cql2-json", json.dumps({"op": "t_after", "args": [{"property": "nom"}, {"interval": ["x", ".."]}]})),
    ("cql2-text", "nom = TIMESTAMP('2020-19-39T29:59:59Z')"),
])
def test_an_invalid_timestamp_is_a_quick_400(live, lang, text):
    response = live.get(_filter(text, lang), timeout=MARGIN)
    assert response.status_code == 400
    assert "RFC 3339" in _ogc_exception(response)["description"]


# --- in process: the deadline, a stream longer than it, and admission --------------------------


@pytest.fixture(params=["gpkg", "postgis"])
def national(request):
    """The URL of the national data in one store."""
    return request.getfixturevalue(f"national_{request.param}").url


def _client(url: str, **settings):
    settings = Settings(database=url, version_check_seconds=60, **settings)
    store = open_store(url, settings)
    return create_app(settings, store=store).test_client(), store


def test_a_query_past_the_deadline_is_a_503_with_retry_after(national):
    client, store = _client(national, request_timeout=0.2)
    folded = " OR ".join(ATTACK_TERM.replace("(nom)", f"({name})") for name in ("statut", "type"))
    try:
        response = client.get(_filter(folded))  # folds the text of every row, four times: 2 to 10 s
        assert response.status_code == 503
        assert response.get_json()["code"] == "Timeout" and int(response.headers["Retry-After"]) > 0
        assert client.get(f"{ITEMS}?limit=2").status_code == 200  # the connection serves on
    finally:
        store.close()


def test_a_stream_of_every_school_outlasts_the_deadline_of_each_page(national):
    client, store = _client(national, request_timeout=0.5, max_limit=100_000)
    try:
        response = client.get(f"{ITEMS}?f=csv&limit=100000&properties=uai")
        lines = response.get_data(as_text=True).splitlines()
        matched = client.get(f"{ITEMS}?limit=1").get_json()["numberMatched"]
    finally:
        store.close()
    assert response.status_code == 200 and len(lines) == matched + 1


@pytest.mark.in_process("it holds a slot with a streamed answer left unread, which a served client reads whole")
def test_expensive_requests_beyond_the_bound_wait_then_get_a_503_while_health_answers(national_gpkg):
    client, store = _client(national_gpkg.url, max_expensive=1)
    try:
        running = client.get(_filter("type = 'college'").replace("limit=3", "limit=5000"))  # streamed, not read
        busy = client.get(_filter("type = 'lycee'"))
        assert busy.status_code == 503 and busy.get_json()["code"] == "Busy" and busy.headers["Retry-After"]
        assert client.get("/health").status_code == 200
        assert client.get(f"{ITEMS}?limit=3").status_code == 200  # unfiltered pages are not bounded
        assert running.status_code == 200 and len(running.get_json()["features"]) > 0  # read: the slot is free
        assert client.get(_filter("type = 'lycee'")).status_code == 200
    finally:
        store.close()


def test_a_client_leaving_a_stream_ends_its_cursor(national_postgis, tmp_path):
    """The server notices a client gone when it writes: the cursor closes and the connection is idle again.

    Under gunicorn, whose worker writes each chunk to the client's socket itself, so the stream is
    surely still being written when the check runs. granian takes chunks from the app into buffers of
    its own, so the whole answer may be made before the client's first read: the race is the test's,
    and an abandoned stream there ends with its last page, each page under the request deadline.
    """
    with serve(national_postgis.url, tmp_path / "gunicorn.log", workers=1, server="gunicorn",
               max_limit=100_000) as server:
        # every school as CSV, some 20 MB: more than the sockets' buffers hold, so the server is still writing
        with requests.get(f"{server.url}{ITEMS}?f=csv&limit=100000", stream=True, timeout=DEADLINE) as response:
            assert response.status_code == 200
            next(response.iter_content(4096))
            assert _open_cursors(national_postgis.url) == 1
        cursors = _open_cursors(national_postgis.url, until=0)
    assert cursors == 0


def _open_cursors(url: str, until: int | None = None) -> int:
    """How many sessions of the database hold an open transaction; with `until`, wait (bounded) for that many."""
    query = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
             " AND pid <> pg_backend_pid() AND xact_start IS NOT NULL")
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(100):
            count = conn.execute(query).fetchone()[0]
            if until is None or count == until:
                return count
            conn.execute("SELECT pg_sleep(0.1)")
    return count
