"""Replicas in the system checks (E008) and in ``appdb_list`` / ``appdb_check``, run as ``manage.py`` would be."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from django_appdb import checks
from django_appdb.conf import DEFAULTS, SECONDS_SETTINGS, conf

from .conftest import run_manage

SECRET = "Vx3replicaPw"
REPLICA_SETTINGS = {
    "APPDB_REPLICA_PIN_SECONDS": "REPLICA_PIN_SECONDS",
    "APPDB_REPLICA_RETRY_SECONDS": "REPLICA_RETRY_SECONDS",
    "APPDB_REPLICA_MAX_LAG": "REPLICA_MAX_LAG",
    "APPDB_REPLICA_LAG_CHECK_SECONDS": "REPLICA_LAG_CHECK_SECONDS",
}


def e008(**settings: Any) -> list[str]:
    with override_settings(**settings):
        return [message.msg for message in checks.check_settings() if message.id == "django_appdb.E008"]


def test_every_replica_setting_is_checked():
    assert set(REPLICA_SETTINGS) <= set(SECONDS_SETTINGS)


@pytest.mark.parametrize("name", sorted(REPLICA_SETTINGS))
@pytest.mark.parametrize("value", [True, False, "5", -1, -0.5, [5], {"s": 5}])
def test_a_replica_setting_of_the_wrong_type_is_e008_and_the_default_applies(name, value):
    messages = e008(**{name: value})
    assert len(messages) == 1
    assert messages[0].startswith(f"{name} must be a number of seconds (0 or more)")
    assert repr(value) in messages[0]
    with override_settings(**{name: value}):
        # Meanwhile nothing breaks: the default is used.
        assert getattr(conf, REPLICA_SETTINGS[name]) == DEFAULTS[name]


@pytest.mark.parametrize("name", sorted(REPLICA_SETTINGS))
def test_none_is_allowed_only_for_the_lag_limit(name):
    messages = e008(**{name: None})
    if name == "APPDB_REPLICA_MAX_LAG":
        assert messages == []
    else:
        assert len(messages) == 1 and "None" in messages[0]


@pytest.mark.parametrize("name", sorted(REPLICA_SETTINGS))
@pytest.mark.parametrize("value", [0, 0.25, 3, 10**6])
def test_good_values_pass(name, value):
    assert e008(**{name: value}) == []
    with override_settings(**{name: value}):
        assert getattr(conf, REPLICA_SETTINGS[name]) == float(value)


@pytest.mark.parametrize("value", [["postgresql://x"], "postgresql://x", None, ("default",), 1])
def test_appdb_replicas_not_a_dict_is_e008(value):
    messages = e008(APPDB_REPLICAS=value)
    assert messages == [f"APPDB_REPLICAS must be a dict of alias -> replica URLs, got {type(value).__name__}."]


def test_the_defaults_pass():
    assert e008() == []


# -- the commands -----------------------------------------------------------------------------------


def sqlite_files(tmp_path: Path) -> None:
    for name in ("default", "inventory", "orders"):
        with closing(sqlite3.connect(tmp_path / f"{name}.sqlite3")):
            pass


def test_appdb_list_and_check_show_sqlite_replicas(sqlite_project, tmp_path):
    sqlite_files(tmp_path)
    orders = f"sqlite:///{tmp_path / 'orders.sqlite3'}"
    env = sqlite_project(ORDERS_DATABASE_REPLICA_URLS=f"{orders},{orders}")
    rows = {row["label"]: row for row in json.loads(run_manage(env, "appdb_list", "--json").stdout)}
    assert rows["orders"]["replicas"] == [
        {"alias": "orders_replica_1", "url": orders},
        {"alias": "orders_replica_2", "url": orders},
    ]
    assert rows["inventory"]["replicas"] == [] and rows["catalog"]["replicas"] == []
    text = run_manage(env, "appdb_list").stdout.splitlines()
    at = next(i for i, line in enumerate(text) if line.startswith("orders "))
    assert text[at + 1].split() == ["replica", "orders_replica_1:", orders]
    assert text[at + 2].split() == ["replica", "orders_replica_2:", orders]

    statuses = json.loads(run_manage(env, "appdb_check", "--json").stdout)
    assert [row["alias"] for row in statuses] == [
        "default",
        "inventory",
        "orders",
        "orders_replica_1",
        "orders_replica_2",
    ]
    by_alias = {row["alias"]: row for row in statuses}
    assert by_alias["orders_replica_1"]["replica_of"] == by_alias["orders_replica_2"]["replica_of"] == "orders"
    assert by_alias["orders"]["replica_of"] is None
    assert all(row["status"] == "ok" for row in statuses)
    assert by_alias["orders_replica_1"]["lag_seconds"] is None  # SQLite has no replay lag
    # Narrowed to one app: its primary and replicas.
    narrowed = json.loads(run_manage(env, "appdb_check", "orders", "--json").stdout)
    assert [row["alias"] for row in narrowed] == ["orders", "orders_replica_1", "orders_replica_2"]


def test_a_replica_that_is_down_fails_appdb_check_by_name(sqlite_project, tmp_path):
    sqlite_files(tmp_path)
    missing = f"sqlite:///{tmp_path / 'gone.sqlite3'}"
    env = sqlite_project(ORDERS_DATABASE_REPLICA_URLS=missing)
    result = run_manage(env, "appdb_check", "--json", returncode=1)
    by_alias = {row["alias"]: row for row in json.loads(result.stdout)}
    assert by_alias["orders_replica_1"]["status"] == "error"
    assert by_alias["orders_replica_1"]["replica_of"] == "orders"
    assert by_alias["orders"]["status"] == "ok"
    assert "orders_replica_1" in result.stderr
    assert not (tmp_path / "gone.sqlite3").exists()


@pytest.mark.psycopg
def test_postgresql_replica_urls_are_masked_in_list_and_check(sqlite_project, tmp_path, closed_port):
    sqlite_files(tmp_path)
    primary = f"postgresql://app:{SECRET}@127.0.0.1:{closed_port}/orders"
    replicas = [f"postgresql://ro:{SECRET}{n}@127.0.0.1:{closed_port}/orders" for n in (1, 2)]
    env = sqlite_project(ORDERS_DATABASE_URL=primary, ORDERS_DATABASE_REPLICA_URLS=",".join(replicas))
    listing = run_manage(env, "appdb_list", "--json")
    assert SECRET not in listing.stdout + listing.stderr
    rows = {row["label"]: row for row in json.loads(listing.stdout)}
    assert [replica["alias"] for replica in rows["orders"]["replicas"]] == ["orders_replica_1", "orders_replica_2"]
    assert rows["orders"]["replicas"][0]["url"] == f"postgres://ro:********@127.0.0.1:{closed_port}/orders"
    check = run_manage(env, "appdb_check", "--json", "--timeout", "5", returncode=1)
    assert SECRET not in check.stdout + check.stderr
    statuses = {row["alias"]: row for row in json.loads(check.stdout)}
    assert {statuses[alias]["status"] for alias in ("orders", "orders_replica_1", "orders_replica_2")} == {"error"}
    assert statuses["orders_replica_2"]["replica_of"] == "orders"
    assert "3 databases unreachable" in check.stderr


def test_postgresql_replica_reports_its_lag(sqlite_project, tmp_path, pg_databases):
    sqlite_files(tmp_path)
    name = pg_databases.name("replica_lag")
    with pg_databases.connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_databases.url_for(name)
    env = sqlite_project(ORDERS_DATABASE_URL=url, ORDERS_DATABASE_REPLICA_URLS=url)
    statuses = {row["alias"]: row for row in json.loads(run_manage(env, "appdb_check", "--json").stdout)}
    # A primary answers the lag query with 0 (it is not in recovery).
    assert statuses["orders_replica_1"]["status"] == "ok"
    assert statuses["orders_replica_1"]["lag_seconds"] == 0
    assert statuses["orders"]["lag_seconds"] is None
