"""``appdb_createdb``: create what is missing, leave what exists, say what SQLite needs."""

from __future__ import annotations

import json
import os
import uuid
from io import StringIO
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pytest
from django.core.management import call_command
from django.db import connections

from django_appdb.operations.creating import create_databases, quote_identifier

from .conftest import project_env, run_manage

ALL = ["default", "inventory", "orders"]


def test_quote_identifier_doubles_quotes():
    assert quote_identifier('we"ird db') == '"we""ird db"'
    assert quote_identifier("a`b", "`") == "`a``b`"


@pytest.mark.django_db(databases=ALL)
def test_unsupported_vendor_is_reported_not_failed(monkeypatch):
    monkeypatch.setitem(
        connections.settings, "orders", {**connections.settings["orders"], "ENGINE": "django.db.backends.oracle"}
    )
    (result,) = create_databases(["orders"], dry_run=True)
    assert (result.alias, result.vendor, result.action) == ("orders", "oracle", "unsupported")
    assert "create it by hand" not in result.detail
    assert "is not supported" in result.detail


def test_in_memory_sqlite_needs_nothing(monkeypatch):
    memory = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
    monkeypatch.setitem(connections.settings, "orders", {**connections.settings["orders"], **memory})
    (result,) = create_databases(["orders"])
    assert result.action == "nothing-to-do"
    assert "in-memory" in result.detail


@pytest.mark.subprocess
def test_sqlite_says_there_is_nothing_to_do_and_prepares_the_directory(sqlite_project, tmp_path):
    nested = tmp_path / "data" / "orders" / "orders.sqlite3"
    env = sqlite_project(ORDERS_DATABASE_URL=f"sqlite:///{nested}")
    (tmp_path / "default.sqlite3").touch()

    dry = run_manage(env, "appdb_createdb", "--dry-run")
    lines = dry.stdout.splitlines()
    assert lines[0].split() == ["ALIAS", "VENDOR", "RESULT"]
    assert f"nothing to do: SQLite file {tmp_path / 'default.sqlite3'} exists" in lines[1]
    assert f"nothing to do: SQLite creates {tmp_path / 'inventory.sqlite3'} on first connection" in lines[2]
    assert f"would create directory {nested.parent}" in lines[3]
    assert not nested.parent.exists()

    run_manage(env, "appdb_createdb")
    assert nested.parent.is_dir()
    assert not nested.exists()
    again = json.loads(run_manage(env, "appdb_createdb", "--json").stdout)
    assert [row["action"] for row in again] == ["nothing-to-do"] * 3
    assert "directory" not in again[2]["detail"]
    # The directory is all the migration needed.
    run_manage(env, "appdb_migrate", "orders", "--noinput", "-v", "0")
    assert nested.exists()


@pytest.mark.postgres
@pytest.mark.subprocess
def test_postgresql_creates_missing_databases_once(pg_databases, tmp_path):
    default, orders = pg_databases.name("default"), pg_databases.name("orders")
    env = project_env(
        DATABASE_URL=pg_databases.url_for(default),
        ORDERS_DATABASE_URL=pg_databases.url_for(orders, password="not-Shown-1"),
        INVENTORY_DATABASE_URL=f"sqlite:///{tmp_path / 'inventory.sqlite3'}",
    )
    dry = json.loads(run_manage(env, "appdb_createdb", "--dry-run", "--json").stdout)
    assert [(row["alias"], row["action"]) for row in dry] == [
        ("default", "would-create"),
        ("inventory", "nothing-to-do"),
        ("orders", "would-create"),
    ]
    assert not pg_databases.exists(default) and not pg_databases.exists(orders)

    created = run_manage(env, "appdb_createdb")
    assert f"created database '{default}'" in created.stdout
    assert f"created database '{orders}'" in created.stdout
    assert "not-Shown-1" not in created.stdout + created.stderr
    assert pg_databases.exists(default) and pg_databases.exists(orders)

    again = json.loads(run_manage(env, "appdb_createdb", "--json").stdout)
    assert [row["action"] for row in again] == ["exists", "nothing-to-do", "exists"]
    assert again[2]["detail"] == f"database '{orders}' already exists"


@pytest.mark.postgres
@pytest.mark.django_db(databases=ALL)
def test_postgresql_quotes_the_name(pg_databases, monkeypatch):
    import dj_database_url

    name = pg_databases.name('we"ird db')
    settings = dj_database_url.parse(pg_databases.url_for(name))
    monkeypatch.setitem(connections.settings, "orders", {**connections.settings["orders"], **settings})
    out = StringIO()
    call_command("appdb_createdb", "orders", stdout=out)
    assert f"created database '{name}'" in out.getvalue()
    assert pg_databases.exists(name)
    (result,) = create_databases(["orders"])
    assert result.action == "exists"


@pytest.mark.postgres
@pytest.mark.django_db(databases=ALL)
def test_postgresql_name_too_long_is_refused(pg_databases, monkeypatch):
    import dj_database_url

    settings = dj_database_url.parse(pg_databases.url_for("x" * 64))
    monkeypatch.setitem(connections.settings, "orders", {**connections.settings["orders"], **settings})
    (result,) = create_databases(["orders"])
    assert result.failed
    assert "longer than PostgreSQL's 63 bytes" in result.detail


@pytest.mark.subprocess
@pytest.mark.psycopg
def test_unreachable_server_fails_naming_the_database(sqlite_project, closed_port, tmp_path):
    env = sqlite_project(ORDERS_DATABASE_URL=f"postgresql://shop:Hidden-9@127.0.0.1:{closed_port}/shop")
    result = run_manage(env, "appdb_createdb", "--timeout", "2", returncode=1)
    assert "CommandError: Could not create 1 of 3 databases: 'orders': OperationalError: " in result.stderr
    assert "Hidden-9" not in result.stdout + result.stderr
    # The other databases were still handled.
    assert "inventory" in result.stdout


MYSQL_URL = os.environ.get("APPDB_TEST_MYSQL_URL", "").strip()


@pytest.mark.subprocess
@pytest.mark.mysql
@pytest.mark.skipif(not MYSQL_URL, reason="APPDB_TEST_MYSQL_URL is not set (MySQL or MariaDB is optional)")
def test_mysql_creates_missing_databases_once(sqlite_project, tmp_path):
    pymysql = pytest.importorskip("pymysql")
    parts = urlsplit(MYSQL_URL)
    name = f"{parts.path.lstrip('/')}_{uuid.uuid4().hex[:6]}_sh`op"
    url = urlunsplit((parts.scheme, parts.netloc, "/" + quote(name), "", ""))
    # Without mysqlclient, let Django's MySQL backend run on PyMySQL.
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "sitecustomize.py").write_text(
        "try:\n    import MySQLdb  # noqa: F401\nexcept ImportError:\n"
        "    import pymysql\n    pymysql.install_as_MySQLdb()\n"
    )
    env = sqlite_project(tmp_path / "extra", ORDERS_DATABASE_URL=url)
    admin = pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        autocommit=True,
    )
    try:
        assert "would create database" in run_manage(env, "appdb_createdb", "orders", "--dry-run").stdout
        assert f"created database '{name}'" in run_manage(env, "appdb_createdb", "orders").stdout
        assert "already exists" in run_manage(env, "appdb_createdb", "orders").stdout
        run_manage(env, "appdb_migrate", "orders", "--noinput")
        with admin.cursor() as cursor:
            cursor.execute(f"SHOW TABLES FROM {quote_identifier(name, '`')}")
            assert {row[0] for row in cursor.fetchall()} == {"django_migrations", "orders_order", "orders_orderline"}
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name, '`')}")
        admin.close()
