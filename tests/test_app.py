"""The app factory, settings and the error contract shared by every route."""

import pytest

from tileserver.core.errors import ConfigError
from tileserver.core.settings import Settings
from tileserver.web.app import create_app


@pytest.fixture
def empty_app(tmp_path):
    """An app over a store where nothing has been published yet."""
    return create_app(Settings(database=str(tmp_path / "none.gpkg")))


def test_settings_read_the_environment_once_and_validate():
    s = Settings.from_env({"ECARTO_DATABASE": "x.gpkg", "ECARTO_MAX_LIMIT": "50", "ECARTO_DEFAULT_LIMIT": "5"})
    assert (s.database, s.max_limit, s.default_limit) == ("x.gpkg", 50, 5)
    with pytest.raises(ConfigError, match="ECARTO_DEFAULT_LIMIT"):
        Settings.from_env({"ECARTO_DEFAULT_LIMIT": "500", "ECARTO_MAX_LIMIT": "100"})
    with pytest.raises(ConfigError, match="ECARTO_CACHE_BYTES='lots'"):
        Settings.from_env({"ECARTO_CACHE_BYTES": "lots"})


def test_unknown_store_url_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"expected a path ending in \.gpkg"):
        create_app(Settings(database=str(tmp_path / "data.sqlite")))


def test_nothing_published_answers_503_with_retry_after(empty_app):
    response = empty_app.test_client().get("/health")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert response.get_json()["code"] == "ServiceUnavailable"
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_unknown_route_is_an_ogc_json_404_with_cors(empty_app):
    response = empty_app.test_client().get("/no/such/thing")
    assert response.status_code == 404
    body = response.get_json()
    assert body["code"] == "NotFound" and body["description"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.in_process("it adds a failing route to the app object")
def test_unexpected_errors_hide_the_stack_trace(empty_app):
    @empty_app.get("/boom")
    def boom():
        raise RuntimeError("secret detail")

    response = empty_app.test_client().get("/boom")
    assert response.status_code == 500
    assert "secret" not in response.get_data(as_text=True)
    assert response.get_json()["code"] == "ServerError"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
