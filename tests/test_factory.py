"""Configuration precedence, the generated secret key, the production switch and the SQLite pragmas."""

import sqlalchemy as sa

from registry import create_app
from registry.kernel.config import normalise_database_url
from registry.kernel.extensions import db


def _app(tmp_path, monkeypatch, test_config=None, config_py=None, env=None):
    instance = tmp_path / "instance"
    instance.mkdir(exist_ok=True)
    if config_py is not None:
        (instance / "config.py").write_text(config_py, encoding="utf-8")
    for key in [k for k in __import__("os").environ if k.startswith("REGISTRY_") or k == "DATABASE_URL"]:
        monkeypatch.delenv(key)
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr("flask.Flask.auto_find_instance_path", lambda self: str(instance))
    return create_app(test_config)


def test_precedence_defaults_then_instance_file_then_environment(tmp_path, monkeypatch):
    app = _app(tmp_path, monkeypatch)
    assert app.config["ITEMS_PER_PAGE"] == 25
    app = _app(tmp_path, monkeypatch, config_py="ITEMS_PER_PAGE = 40\nORG_NAME = '凉山州协作办'\n")
    assert app.config["ITEMS_PER_PAGE"] == 40 and app.config["ORG_NAME"] == "凉山州协作办"
    app = _app(tmp_path, monkeypatch, config_py="ITEMS_PER_PAGE = 40\n", env={"REGISTRY_ITEMS_PER_PAGE": "60"})
    assert app.config["ITEMS_PER_PAGE"] == 60


def test_default_database_is_sqlite_in_the_instance_folder(tmp_path, monkeypatch):
    app = _app(tmp_path, monkeypatch)
    with app.app_context():
        assert db.engine.url.database == str(tmp_path / "instance" / "registry.sqlite3")


def test_database_url_selects_postgresql_with_psycopg(tmp_path, monkeypatch):
    app = _app(tmp_path, monkeypatch, env={"DATABASE_URL": "postgres://u:p@db.example:5432/registry"})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@db.example:5432/registry"
    assert normalise_database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_secret_key_is_generated_once_into_the_instance_folder(tmp_path, monkeypatch):
    first = _app(tmp_path, monkeypatch).config["SECRET_KEY"]
    key_file = tmp_path / "instance" / "secret_key"
    assert len(first) == 64 and key_file.read_text() == first
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert _app(tmp_path, monkeypatch).config["SECRET_KEY"] == first


def test_production_switch_secures_cookies_and_trusts_the_proxy(tmp_path, monkeypatch):
    key = "Y3CMx8f3nJeOSkU0qYbfHBP9xVh0jY5v1YQ3b8CqfUk="  # production refuses to start without one
    app = _app(tmp_path, monkeypatch, env={"REGISTRY_PRODUCTION": "true", "REGISTRY_ID_NUMBER_KEY": key})
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]
    assert app.config["SESSION_COOKIE_NAME"] == "__Host-session"
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax" and app.config["SESSION_COOKIE_HTTPONLY"]
    assert app.wsgi_app.__class__.__name__ == "ProxyFix"
    with app.test_request_context("/", base_url="https://registry.example"):
        from flask import session

        session["x"] = 1
        response = app.make_response("")
        app.session_interface.save_session(app, session, response)
        cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_sqlite_connections_enforce_foreign_keys_wal_and_busy_timeout(tmp_path, monkeypatch):
    app = _app(tmp_path, monkeypatch)
    with app.app_context(), db.engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(sa.text("PRAGMA busy_timeout")).scalar() == 5000


def test_error_pages_are_friendly_and_chinese(client, world):
    from tests.conftest import login

    login(client, "county")
    response = client.get("/no/such/page")
    assert response.status_code == 404 and "页面不存在" in response.get_data(as_text=True)
    response = client.get("/pairings/not-a-number")
    assert response.status_code == 404
    response = client.get("/admin/users/")
    assert response.status_code == 403 and "没有权限" in response.get_data(as_text=True)
    response = client.get("/logout")
    assert response.status_code == 405 and "操作方式不正确" in response.get_data(as_text=True)


def test_an_unexpected_error_rolls_back_and_shows_a_chinese_page(tmp_path, monkeypatch):
    app = _app(tmp_path, monkeypatch, test_config={"TESTING": False, "PROPAGATE_EXCEPTIONS": False})

    @app.route("/boom")
    def boom():
        raise RuntimeError("boom")

    boom.is_public = True
    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert "系统错误" in response.get_data(as_text=True) and "操作未生效" in response.get_data(as_text=True)
