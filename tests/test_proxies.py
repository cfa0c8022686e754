"""Links and proxies: `X-Forwarded-*` believed only from trusted proxies, answers that vary say so."""

from __future__ import annotations

import doctest

import pytest

from tileserver.core.errors import ConfigError
from tileserver.core.settings import Settings
from tileserver.web import proxies
from tileserver.web.app import create_app

POISON = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example", "X-Forwarded-Prefix": "/x"}
LINKED = ("/styles/connectivite", "/styles", "/", "/collections", "/tiles/communes.json", "/embed")


def test_doctests():
    assert doctest.testmod(proxies).failed == 0


def client(store, peer: str = "127.0.0.1", **settings):
    test_client = create_app(Settings(database=store.url, **settings), store=store).test_client()
    test_client.environ_base["REMOTE_ADDR"] = peer
    return test_client


@pytest.mark.parametrize("url", LINKED)
def test_forwarded_headers_from_an_untrusted_peer_change_no_link(themed_store, url):
    body = client(themed_store).get(url, headers=POISON).get_data(as_text=True)
    assert "evil.example" not in body and "https://" not in body.replace("https://www.opengis.net", "")


@pytest.mark.in_process("its requests come from peers of other networks")
def test_forwarded_headers_from_a_trusted_proxy_set_the_links(themed_store):
    trusted = client(themed_store, peer="10.1.2.3", trusted_proxies="10.0.0.0/8, ::1")
    style = trusted.get("/styles/connectivite", headers=POISON).get_json()
    assert style["sources"]["communes"]["url"] == "https://evil.example/x/tiles/communes.json"
    outside = client(themed_store, peer="192.168.0.9", trusted_proxies="10.0.0.0/8")
    style = outside.get("/styles/connectivite", headers=POISON).get_json()
    assert style["sources"]["communes"]["url"] == "http://localhost/tiles/communes.json"


@pytest.mark.in_process("its requests come from a peer of another network")
def test_the_base_url_setting_ignores_forwarded_headers_even_from_a_trusted_proxy(themed_store):
    fixed = client(themed_store, peer="10.1.2.3", trusted_proxies="10.0.0.0/8", base_url="https://ecarto.fr/")
    response = fixed.get("/styles/connectivite", headers={**POISON, "X-Forwarded-Proto": "javascript"})
    assert response.status_code == 200
    assert response.get_json()["sources"]["communes"]["url"] == "https://ecarto.fr/tiles/communes.json"
    assert "Host" not in response.headers.get("Vary", "")  # the body depends on no request header


@pytest.mark.parametrize("scheme", ["javascript", "data", "file", "http, javascript"])
def test_a_trusted_proxy_forwarding_another_scheme_is_a_400(themed_store, scheme):
    trusted = client(themed_store, trusted_proxies="127.0.0.1")
    response = trusted.get("/styles/connectivite", headers={"X-Forwarded-Proto": scheme})
    assert response.status_code == 400 and response.get_json()["code"] == "InvalidParameterValue"
    assert "javascript:" not in response.get_data(as_text=True)


def test_an_untrusted_scheme_header_is_ignored(themed_store):
    response = client(themed_store).get("/styles/connectivite", headers={"X-Forwarded-Proto": "javascript"})
    assert response.status_code == 200 and "javascript" not in response.get_data(as_text=True)


@pytest.mark.parametrize("url", LINKED)
def test_answers_holding_links_vary_on_what_the_links_came_from(themed_store, url):
    plain = client(themed_store).get(url)
    assert plain.status_code == 200 and "Host" in plain.vary
    behind = client(themed_store, trusted_proxies="127.0.0.1").get(url)
    assert {"Host", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Prefix"} <= set(behind.vary)


def test_the_public_cached_style_varies_on_host(themed_store):
    response = client(themed_store).get("/styles/connectivite", headers={"Host": "evil.example"})
    assert response.headers["Cache-Control"].startswith("public")
    assert "Host" in response.vary


def test_a_tile_does_not_vary_on_host(themed_store):
    response = client(themed_store).get("/tiles/communes/8/129/88.mvt")
    assert "Host" not in response.vary


@pytest.mark.parametrize("settings", [{"trusted_proxies": "10.0.0.0/33"}, {"trusted_proxies": "proxy.local"},
                                      {"base_url": "javascript://x/"}, {"base_url": "ecarto.fr"}])
def test_bad_proxy_settings_fail_at_start_up(settings):
    with pytest.raises(ConfigError):
        Settings(**settings)
