"""Hostile requests against both stores: injections in every parameter, path traversal, oversized input.

Each answer must be a client error or a harmless success, carry no stack trace, SQL, driver name
or file path, and leave the data as it was. The server's PostGIS role can read everything and
write nothing.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import socket
import threading
from contextlib import suppress
from urllib.parse import quote, urlsplit

import numpy as np
import psycopg
import pytest
from psycopg import sql

from tests.support.datasets import uai
from tests.support.national import REPO
from tests.support.rasterdata import tile_transform, write_raster
from tests.support.servers import SERVERS, serve
from tests.support.themed import themed_dataset
from tileserver.core.cog import describe
from tileserver.core.dataset import Dataset
from tileserver.core.errors import IngestError
from tileserver.core.grid import Tile, tile_at
from tileserver.core.mercator import to_mercator
from tileserver.core.settings import Settings
from tileserver.core.store import FeatureQuery
from tileserver.core.stores import open_store
from tileserver.core.stores.postgis import PostGISStore
from tileserver.core.stores.postgis.roles import grant_read_only
from tileserver.web.app import create_app

ITEMS = "/collections/etablissements/items"
SCHOOL = uai(350 * 10_000)  # the first school of `features_dataset`
# Text a response must never hold: traces, driver and SQL words, where the code and data live.
# (The payloads below are lower case, so an answer quoting one back cannot trip the SQL markers.)
LEAKS = ("Traceback", 'File "', "psycopg", "sqlite3", "SELECT", " FROM ", "WHERE ", "ecarto_v", "gpkg",
         str(REPO), "site-packages", "/tmp/")
INJECTIONS = [
    "' or '1'='1",
    "x'; drop table etablissements; --",
    "1; delete from ecarto.versions",
    '" or ""="',
    "nom) or (1=1",
    "x' union select null, version() --",
    "%' or 1=1 --",
    "1/**/or/**/1=1",
    "$$; drop schema ecarto cascade; $$",
    "\x00",
    "x\x00y",
    "\\",
    "<script>alert(1)</script>",
    "../../../../etc/passwd",
    "${jndi:ldap://example.org/a}",
    "é\u202e\ufeff",
    "a" * 5000,
]


def requests_for(payload: str) -> list[str]:
    """One URL per parameter, each carrying `payload` where that parameter goes."""
    q = quote(payload, safe="")
    quoted = quote(payload.replace("'", "''"), safe="")
    return [
        f"{ITEMS}?filter={q}",
        f"{ITEMS}?filter=nom%3D%27{q}%27",
        f"{ITEMS}?filter={q}%3D1",
        f"{ITEMS}?filter=nom%20like%20%27{quoted}%27",
        f"{ITEMS}?filter-lang=cql2-json&filter=" + quote(json.dumps({"op": "=", "args": [{"property": payload}, 1]})),
        f"{ITEMS}?filter-lang=cql2-json&filter=" + quote(json.dumps({"op": payload, "args": [{"property": "nom"}]})),
        f"{ITEMS}?filter-lang=cql2-json&filter=" + quote(json.dumps({"op": "in", "args": [{"property": "uai"},
                                                                                           [payload]]})),
        f"{ITEMS}?filter-lang={q}&filter=nom%3D%27a%27",
        f"{ITEMS}?sortby={q}",
        f"{ITEMS}?sortby=-{q}",
        f"{ITEMS}?properties={q}",
        f"{ITEMS}?properties=nom,{q}",
        f"{ITEMS}?bbox={q}",
        f"{ITEMS}?bbox=-2,47,{q},48",
        f"{ITEMS}?bbox-crs={q}&bbox=0,0,1,1",
        f"{ITEMS}?crs={q}",
        f"{ITEMS}?filter-crs={q}&filter=nom%3D%27a%27",
        f"{ITEMS}?datetime={q}",
        f"{ITEMS}?limit={q}",
        f"{ITEMS}?offset={q}",
        f"{ITEMS}?f={q}",
        f"{ITEMS}?{q}=1",
        f"{ITEMS}?f=html&nom={q}",
        f"{ITEMS}?f=html&filter=nom%3D%27{quoted}%27",
        f"/collections/{q}",
        f"/collections/{q}/items",
        f"/collections/{q}/queryables",
        f"{ITEMS}/{q}",
        f"{ITEMS}/{q}?f=html",
        f"/fiche/etablissements/{q}",
        f"/fiche/{q}/{SCHOOL}",
        f"/tiles/{q}/5/15/11.mvt",
        f"/tiles/etablissements,{q}/5/15/11.mvt",
        f"/tiles/{q}.json",
        f"/tiles/etablissements/{q}/15/11.mvt",
        f"/tiles/etablissements/5/{q}/11.mvt",
        f"/tiles/etablissements/5/15/{q}.mvt",
        f"/tiles/etablissements/5/15/11.mvt?type={q}",
        f"/tiles/etablissements/5/15/11.mvt?statut={q}",
        f"/tiles/etablissements/5/15/11.mvt?v={q}",
        f"/collections/{q}/tiles/WebMercatorQuad/5/11/15",
        f"/collections/etablissements/tiles/{q}/5/11/15",
        f"/collections/etablissements/tiles/WebMercatorQuad/{q}/11/15",
        f"/tileMatrixSets/{q}",
        f"/styles/{q}",
        f"/styles/etablissements?indicator={q}",
        f"/styles/etablissements?level={q}",
        f"/qgis/{q}.qlr",
        f"/raster/{q}.json",
        f"/raster/{q}/10/518/352.png",
    ]


def raster_requests_for(payload: str) -> list[str]:
    """The raster parameters, on a raster that exists."""
    q = quote(payload, safe="")
    return [
        f"/raster/grille/10/518/352.png?colormap={q}",
        f"/raster/grille/10/518/352.png?rescale={q}",
        f"/raster/grille/10/518/352.png?rescale=0,{q}",
        f"/raster/grille.json?colormap={q}",
        f"/raster/grille/legend.png?rescale={q}",
        f"/raster/grille/point?lon={q}&lat=48",
        f"/raster/grille/tiles/WebMercatorQuad/{q}/352/518",
        f"/raster/grille/tiles/WebMercatorQuad/10/352/518?f={q}",
    ]


def assert_safe(response, url: str) -> None:
    """A 2xx/3xx/4xx without leaks; an error is an OGC exception in JSON; HTML escapes what it echoes."""
    assert response.status_code < 500, f"{url} -> {response.status_code}: {response.get_data(as_text=True)[:300]}"
    body = response.get_data(as_text=True) if not response.content_type.startswith("image/") else ""
    leaked = [marker for marker in LEAKS if marker in body]
    assert not leaked, f"{url} leaks {leaked}: {body[:300]}"
    if response.status_code >= 400:
        assert response.is_json and response.get_json()["code"], url
    if response.content_type.startswith("text/html"):
        assert "<script>alert(1)" not in body, f"{url} echoes a script unescaped"


@pytest.fixture(scope="module")
def client(feature_app):
    """A test client of the app over each store serving `features_dataset`."""
    return feature_app.test_client()


def stored_schools(client) -> int:
    """The schools the store reads back (rows, not the published count)."""
    return client.get(f"{ITEMS}?limit=1000").get_json()["numberReturned"]


@pytest.mark.parametrize("payload", INJECTIONS, ids=[f"payload{i}" for i in range(len(INJECTIONS))])
def test_injections_in_every_parameter_are_refused_or_harmless(client, payload):
    before = stored_schools(client)
    for url in requests_for(payload):
        assert_safe(client.get(url), url)
    assert stored_schools(client) == before


@pytest.mark.parametrize("payload", INJECTIONS, ids=[f"payload{i}" for i in range(len(INJECTIONS))])
def test_injected_values_match_nothing(client, payload):
    """A hostile value compared with a property is a value: no feature has it, the query does not widen."""
    q, quoted = quote(payload, safe=""), quote(payload.replace("'", "''"), safe="")
    for url in (f"{ITEMS}?nom={q}", f"{ITEMS}?uai={q}", f"{ITEMS}?type=ecole&nom={q}",
                f"{ITEMS}?filter=nom%3D%27{quoted}%27", f"{ITEMS}?filter=uai%3D%27{quoted}%27%20or%20false"):
        response = client.get(url)
        assert_safe(response, url)
        if response.status_code == 200:
            assert response.get_json()["numberMatched"] == 0, url


@pytest.fixture(params=["geopackage", "postgis"])
def raster_client(request, tmp_path, small_dataset):
    """An app whose version holds the raster `grille`, in each store."""
    tile = Tile(10, 518, 352)
    data = np.tile(np.arange(256, dtype=np.float32), (256, 1))
    path = write_raster(tmp_path / "grille.tif", data, crs="EPSG:3857", transform=tile_transform(tile))
    small_dataset.rasters = {"grille": {**describe(str(path), 1), "path": str(path), "band": 1, "label": "Grille",
                                        "unit": "u", "kind": "external", "colormap": "viridis", "rescale": [0, 255]}}
    url = str(tmp_path / "e.gpkg") if request.param == "geopackage" else request.getfixturevalue("postgis_url")
    settings = Settings(database=url, assets_dir=str(tmp_path / "assets"), version_check_seconds=0)
    store = open_store(url, settings)
    store.publish(small_dataset)
    yield create_app(settings, store=store).test_client()
    store.close()


def test_injections_in_raster_parameters_are_refused(raster_client):
    assert raster_client.get("/raster/grille/10/518/352.png").status_code == 200
    for payload in INJECTIONS:
        for url in raster_requests_for(payload):
            assert_safe(raster_client.get(url), url)


TRAVERSALS = [
    "/static/../../etc/passwd",
    "/static/../app.py",
    "/static/%2e%2e/%2e%2e/etc/passwd",
    "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/static/..%2f..%2f..%2fpyproject.toml",
    "/static/..%252f..%252fetc%252fpasswd",
    "/static/%252e%252e/app.py",
    "/static/..\\..\\app.py",
    "/static/..%5c..%5capp.py",
    "/static/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
    "/static//etc/passwd",
    "/static/map.js%00.png",
    "/static/vendor/maplibre-gl/..%2f..%2f..%2f..%2fpyproject.toml",
    "/static/vendor/maplibre-gl/%2e%2e",
    "/styles/..%2f..%2fetc%2fpasswd",
    "/styles/%2e%2e%2fcatalogue.py",
    "/qgis/..%2f..%2fetc%2fpasswd.qlr",
    "/raster/..%2f..%2fetc%2fpasswd.json",
    "/tiles/..%2f..%2fetc%2fpasswd.json",
    "/fiche/..%2f..%2fetc/passwd",
]
SECRETS = ("root:x:0:0", "[project]", "def create_app", "import ")


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_reaches_no_file(client, path):
    response = client.get(path, follow_redirects=True)
    assert response.status_code in (400, 404), path
    assert_safe(response, path)
    assert not any(secret in response.get_data(as_text=True) for secret in SECRETS)


@pytest.fixture(scope="module", params=SERVERS)
def live(request, geopackage_store, tmp_path_factory):
    """Each server (granian, gunicorn), as the Procfile runs it, serving the GeoPackage of `features_dataset`."""
    with serve(geopackage_store.url, tmp_path_factory.mktemp("live") / "server.log", server=request.param) as server:
        yield server


def raw_request(server, path: str, method: str = "GET", body: bytes = b"") -> tuple[int, str, str]:
    """Send a request line exactly as given (no client normalises the path): status, media type, body.

    The body is sent while the answer is read, as browsers do: a server may answer before it has
    read (or without reading) a body it refuses.
    """
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        head = f"{method} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {len(body)}\r\n\r\n"
        sock.sendall(head.encode("latin-1"))
        sender = threading.Thread(target=_send_quietly, args=(sock, body))
        sender.start()
        response = http.client.HTTPResponse(sock)
        response.begin()
        text = response.read().decode("utf-8", "replace")
        sender.join()
        return response.status, response.getheader("Content-Type", ""), text


def _send_quietly(sock: socket.socket, body: bytes) -> None:
    """Send a body until the server stops reading it."""
    with suppress(OSError):
        sock.sendall(body)


def test_path_traversal_through_gunicorn_reaches_no_file(live):
    status, _, text = raw_request(live, "/static/map.js")
    assert status == 200 and "maplibre" in text
    for path in TRAVERSALS:
        status, _, text = raw_request(live, path)
        if status == 308:  # `//` merged into `/`, then asked again
            status, _, text = raw_request(live, path.replace("//", "/"))
        assert status in (400, 404), path
        assert not any(secret in text for secret in SECRETS), path
        assert not any(marker in text for marker in LEAKS), path


def long_filter(characters: int) -> str:
    return "nom%3D%27" + "a" * characters + "%27"


URI_LIMIT = {"granian": 65_534}  # bytes of request target granian's HTTP layer takes; beyond, a bare 414


def test_oversized_parameters_and_bodies_get_a_json_4xx_from_gunicorn(live):
    cases = [
        (f"{ITEMS}?filter={long_filter(300_000)}", "GET", b"", 414),
        (f"{ITEMS}?filter={long_filter(100_000)}", "GET", b"", 400),
        (f"{ITEMS}?filter={long_filter(25_000)}", "GET", b"", 400),
        (f"{ITEMS}?filter={long_filter(10_000)}", "GET", b"", 200),
        (ITEMS, "POST", b"x" * 10_000_000, 405),
        ("/collections", "PUT", json.dumps({"a": "b" * 1_000_000}).encode(), 405),
    ]
    for path, method, body, expected in cases:
        status, media, text = raw_request(live, path, method, body)
        if len(path) > URI_LIMIT.get(live.server, len(path)):  # refused by the server, before the app
            assert status == 414, (path[:80], status)
            continue
        assert status == expected, (path[:80], method, status)
        assert media.startswith(("application/json", "application/geo+json")), (path[:80], media)
        assert not any(marker in text for marker in LEAKS)
    assert raw_request(live, "/health")[0] == 200


@pytest.mark.in_process("it checks the app's own limit on a request target; granian refuses a request line"
                        " over 64 KiB first, as test_hostile_requests_on_a_live_server checks")
def test_oversized_input_is_a_json_4xx(client):
    for response in (client.get(f"{ITEMS}?filter={long_filter(300_000)}"),
                     client.get(f"{ITEMS}?filter={long_filter(100_000)}"),
                     client.post(ITEMS, data=b"x" * 10_000_000)):
        assert 400 <= response.status_code < 500
        assert_safe(response, "oversized")
    assert client.get(f"{ITEMS}?filter={long_filter(300_000)}").status_code == 414
    assert client.get(ITEMS, data=b"x" * 10_000_000).status_code == 200  # a body nobody reads is ignored


def nested_filters(depth: int) -> list[tuple[str, str]]:
    """CQL2 nested `depth` levels deep, in text and JSON, each short enough to pass the length check."""
    leaf = {"op": "=", "args": [{"property": "nom"}, "a"]}
    negated, chained = leaf, leaf
    for _ in range(depth):
        negated = {"op": "not", "args": [negated]}
        chained = {"op": "and", "args": [leaf, chained]}
    compact = lambda node: json.dumps(node, separators=(",", ":"))  # noqa: E731
    return [
        ("cql2-text", "not (" * depth + "nom = 'a'" + ")" * depth),
        ("cql2-text", "nom = 'a' or (nom = 'b' and (" * (depth // 2) + "nom = 'c'" + "))" * (depth // 2)),
        ("cql2-json", compact(negated)),
        ("cql2-json", compact(chained)),
        ("cql2-json", "[" * 9000 + "]" * 9000),
        ("cql2-json", '{"op":"not","args":' * 900 + "1" + "}" * 900),
    ]


def test_deeply_nested_cql2_is_a_400(client):
    for lang, text in nested_filters(300):
        assert len(text) < 20_000
        response = client.get(ITEMS, query_string={"filter": text, "filter-lang": lang})
        assert response.status_code == 400, (lang, text[:60])
        assert_safe(response, text[:60])


def test_redundant_parentheses_and_long_chains_do_not_nest(client):
    """Grouping adds no level to the tree, nor does a chain of one operator: each is still served."""
    for text in ("(" * 9000 + "nom = 'a'" + ")" * 9000, " and ".join(["nom = 'a'"] * 1200),
                 " or ".join(["ips=1"] * 2000)):
        response = client.get(ITEMS, query_string={"filter": text})
        assert response.status_code == 200 and response.get_json()["numberMatched"] == 0


@pytest.mark.parametrize("query", [
    "limit=1000000000", "limit=99999999999999999999999999", "limit=-1", "limit=0", "limit=1e3", "limit=",
    "limit=10%2C20", "offset=99999999999999999999999999", "offset=-5", "offset=1.5",
])
def test_out_of_range_limits_are_a_400(client, query):
    response = client.get(f"{ITEMS}?{query}")
    assert response.status_code == 400
    assert_safe(response, query)


@pytest.mark.parametrize("query", [
    "effectif=99999999999999999999999", "effectif=-99999999999999999999", "effectif=1e300",
    "filter=effectif%3E99999999999999999999999", "filter=effectif%20between%201%20and%209223372036854775808",
    "filter=effectif%20in%20(1,-99999999999999999999)", "filter=ips%3E1e400",
    "filter-lang=cql2-json&filter=%7B%22op%22:%22%3D%22,%22args%22:[%7B%22property%22:%22effectif%22%7D,1e999]%7D",
])
def test_numbers_beyond_every_column_are_a_400(client, query):
    response = client.get(f"{ITEMS}?{query}")
    assert response.status_code == 400
    assert_safe(response, query)


def test_the_largest_limit_is_served(client):
    response = client.get(f"{ITEMS}?limit=1000&offset=999999999")
    assert response.status_code == 200 and response.get_json()["features"] == []


_roles = itertools.count()


@pytest.fixture
def reader(postgis_url, tmp_path):
    """A PostGIS store publishing `themed_dataset`, and the URL of a read-only role on it (dropped afterwards)."""
    role = f"ecarto_reader_{os.getpid()}_{next(_roles)}"
    owner = PostGISStore(postgis_url, Settings(database=postgis_url, assets_dir=str(tmp_path / "assets"),
                                               version_check_seconds=0))
    owner.publish(themed_dataset(n_schools=300))
    grant_read_only(postgis_url, role)
    yield owner, as_role(postgis_url, role)
    owner.close()
    with psycopg.connect(postgis_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def as_role(url: str, role: str) -> str:
    """`url` with `role` as its user (trust authentication: no password)."""
    parts = urlsplit(url)
    return parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port or 5432}").geturl()


def reader_paths(dataset: Dataset) -> list[str]:
    """A request to every resource, on features of `dataset` and tiles where it has data."""
    school, commune = dataset.layers["etablissements"].ids[0], dataset.layers["communes"].ids[0]
    low, high = (tile_at(*to_mercator(-2.8, 48.0), z) for z in (3, 9))
    return [
        "/", "/conformance", "/api", "/collections", "/collections/communes", "/collections/etablissements/queryables",
        "/collections/etablissements/items?filter=type%3D%27ecole%27&sortby=-nom&bbox=-5,47,0,49",
        f"/collections/etablissements/items/{school}", "/collections/communes/items?f=csv",
        "/collections/communes/items?f=html", f"/tiles/etablissements,communes/{high.z}/{high.x}/{high.y}.mvt",
        f"/tiles/etablissements/{low.z}/{low.x}/{low.y}.mvt", "/tiles/communes.json",
        f"/collections/communes/tiles/WebMercatorQuad/{high.z}/{high.y}/{high.x}", "/styles",
        "/styles/etablissements", "/styles/connectivite", "/map", "/embed", "/qgis/project.qgs",
        "/qgis/connectivite.qlr", "/raster", "/versions", "/health", f"/fiche/etablissements/{school}",
        f"/fiche/communes/{commune}",
    ]


def test_a_server_with_the_read_only_role_serves_everything(reader):
    owner, url = reader
    settings = Settings(database=url, version_check_seconds=0)
    store = open_store(url, settings)
    try:
        client = create_app(settings, store=store).test_client()
        for path in reader_paths(themed_dataset(n_schools=300)):
            response = client.get(path)
            assert response.status_code == 200, (path, response.get_data(as_text=True)[:300])
        newer = owner.publish(themed_dataset(n_schools=200))  # default privileges: no new grant needed
        assert client.get("/health").get_json()["version"] == newer.id
        assert client.get("/collections/etablissements/items").get_json()["numberMatched"] == 200
    finally:
        store.close()


WRITES = [
    "INSERT INTO ecarto.versions (id, created, report, meta) VALUES ('x', now(), '{{}}', '{{}}')",
    "UPDATE ecarto.versions SET current = false",
    "DELETE FROM ecarto.versions",
    "UPDATE {schema}.etablissements SET nom = 'x'",
    "DELETE FROM {schema}.communes",
    "TRUNCATE {schema}.clusters",
    "DROP TABLE {schema}.communes",
    "CREATE TABLE {schema}.intruder (a int)",
    "ALTER TABLE ecarto.versions ADD COLUMN intruder int",
    "DROP SCHEMA ecarto CASCADE",
    "CREATE SCHEMA intruder",
    "CREATE TABLE public.intruder (a int)",
]


def test_the_read_only_role_can_change_nothing(reader):
    owner, url = reader
    schema = f'"{owner.current().schema}"'
    for read_write in (False, True):
        for statement in WRITES:
            with psycopg.connect(url, autocommit=True) as conn:
                if read_write:  # the role's read-only default can be lifted; its privileges cannot
                    conn.execute("SET default_transaction_read_only = off")
                expected = psycopg.errors.InsufficientPrivilege if read_write else psycopg.errors.ReadOnlySqlTransaction
                with pytest.raises(expected):
                    conn.execute(statement.format(schema=schema))
    assert_published_intact(owner)


SCRATCH = [
    "CREATE TEMP TABLE scratch AS SELECT g FROM generate_series(1, 10) g",
    "CREATE TEMP SEQUENCE scratch",
    "SELECT lo_from_bytea(0, 'scratch')",
    "SELECT lo_create(0)",
]


@pytest.mark.parametrize("statement", SCRATCH)
def test_the_read_only_role_cannot_write_scratch_data(reader, statement):
    """Temporary tables and large objects fill the disk as well as tables do (a 69 MB one was built)."""
    _, url = reader
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def test_the_read_only_role_spills_at_most_its_temp_file_limit(reader, postgis_url):
    _, url = reader
    role = urlsplit(url).username
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SHOW temp_file_limit").fetchone()[0] == "256MB"
    grant_read_only(postgis_url, role, temp_file_limit="1MB")  # run again: the limit is updated
    big_sort = "SELECT count(*) FROM (SELECT md5(g::text) FROM generate_series(1, 300000) g ORDER BY 1) s"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET work_mem = '64kB'")  # what the role may set, to spill sooner
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SET temp_file_limit = -1")
        with pytest.raises(psycopg.errors.ConfigurationLimitExceeded, match="temp_file_limit"):
            conn.execute(big_sort)
        assert conn.execute(big_sort.replace("300000", "3000")).fetchone()[0] == 3000


def assert_published_intact(owner: PostGISStore) -> None:
    """The owner's single version is served, whole."""
    snapshot = owner.current()
    assert [v.id for v in owner.versions()] == [snapshot.version.id]
    assert {c.id: c.count for c in snapshot.collections()}["etablissements"] == 300
    assert len(list(snapshot.query(FeatureQuery("etablissements", limit=1000)).features)) == 300


def test_an_ingest_as_the_read_only_role_stops_before_reading_any_source(reader, tmp_path):
    _, url = reader
    store = PostGISStore(url, Settings(database=url, assets_dir=str(tmp_path / "assets")))
    try:
        with pytest.raises(IngestError, match=r"port \d+, database \w+: user ecarto_reader_\w+ may not create schemas"):
            store.check_publish()
    finally:
        store.close()


def test_publishing_with_the_read_only_role_fails_clearly_and_loses_nothing(reader, small_dataset, tmp_path):
    owner, url = reader
    store = PostGISStore(url, Settings(database=url, assets_dir=str(tmp_path / "assets")))
    try:
        with pytest.raises(IngestError, match="read-only transaction"):
            store.publish(small_dataset)
    finally:
        store.close()
    assert_published_intact(owner)
