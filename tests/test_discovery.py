"""Discovery priority: env var, then database.py, then the default."""

from pathlib import Path

import pytest
from django.apps import apps
from django.db import connections

from django_appdb import discover_all_app_databases, discover_app_database
from django_appdb.discovery import declare, env_var_name

TESTPROJECT = Path(__file__).resolve().parent.parent / "testproject"


def default_name() -> str:
    return str(connections.settings["default"]["NAME"])


# The three manual tests of the design log, automated.


def test_env_var_wins_over_database_py(monkeypatch):
    monkeypatch.setenv("INVENTORY_DATABASE_URL", "postgresql://localhost:5432/auth_db")
    assert discover_app_database("inventory") == "postgresql://localhost:5432/auth_db"


def test_database_py_wins_over_default(monkeypatch):
    monkeypatch.delenv("INVENTORY_DATABASE_URL", raising=False)
    url = discover_app_database("inventory")
    assert url == f"sqlite:///{TESTPROJECT / 'inventory.sqlite3'}"


def test_unknown_label_gets_default():
    from django_appdb.dburls import parse_url

    url = discover_app_database("nonexistent_app")
    assert url.startswith("sqlite:///")
    assert parse_url(url)["NAME"] == default_name()


def test_env_var_for_a_contrib_app(monkeypatch):
    monkeypatch.setenv("AUTH_DATABASE_URL", "postgres://u@db.example/auth")
    assert env_var_name("auth") == "AUTH_DATABASE_URL"
    assert discover_app_database("auth") == "postgres://u@db.example/auth"


@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
def test_empty_env_var_counts_as_unset(monkeypatch, value):
    monkeypatch.setenv("INVENTORY_DATABASE_URL", value)
    assert discover_app_database("inventory").endswith("inventory.sqlite3")


def test_env_var_value_is_stripped(monkeypatch):
    monkeypatch.setenv("CATALOG_DATABASE_URL", "  sqlite:////tmp/x.db \n")
    assert discover_app_database("catalog") == "sqlite:////tmp/x.db"


def test_app_without_database_py_gets_default(monkeypatch):
    monkeypatch.delenv("CATALOG_DATABASE_URL", raising=False)
    assert discover_app_database("catalog") == discover_app_database("nonexistent_app")


def test_discover_all_covers_every_installed_app(monkeypatch):
    monkeypatch.setenv("CATALOG_DATABASE_URL", "postgres://u@h/catalog")
    found = discover_all_app_databases()
    assert set(found) == {config.label for config in apps.get_app_configs()}
    assert found["catalog"] == "postgres://u@h/catalog"
    assert found["inventory"].endswith("inventory.sqlite3")
    assert found["auth"] == found["sessions"] == discover_app_database("nonexistent_app")


def test_settings_to_url_round_trips_special_characters():
    from django_appdb.dburls import parse_url, settings_to_url

    url = settings_to_url(
        {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "db",
            "USER": "u",
            "PASSWORD": "p@ss:/#%",
            "HOST": "h",
            "PORT": "5433",
        }
    )
    assert url == "postgres://u:p%40ss%3A%2F%23%25@h:5433/db"
    assert parse_url(url)["PASSWORD"] == "p@ss:/#%"


def test_declaration_records_source_kinds(make_app):
    plain = make_app("plain")
    moduled = make_app("moduled", 'DATABASE_URL = "sqlite:////tmp/m.db"\n')
    assert declare(plain, {}).source_kind == "default"
    declaration = declare(moduled, {})
    assert (declaration.source_kind, declaration.source) == ("module", f"{moduled.name}.database")
    declaration = declare(moduled, {"MODULED_DATABASE_URL": "sqlite:////tmp/e.db"})
    assert (declaration.source_kind, declaration.source, declaration.url) == (
        "env",
        "MODULED_DATABASE_URL",
        "sqlite:////tmp/e.db",
    )


def test_env_var_replaces_the_whole_module_declaration(make_app):
    body = 'DATABASE_URL = "sqlite:////tmp/a.db"\nDATABASE_ALIAS = "a"\nDATABASE_OPTIONS = {"timeout": 5}\n'
    declaration = declare(make_app("opts", body), {"OPTS_DATABASE_URL": "postgres://u@h/b?sslmode=require"})
    assert declaration.url == "postgres://u@h/b?sslmode=require"
    assert declaration.alias is None
    assert declaration.options == {}
