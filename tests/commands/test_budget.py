"""``appdb_check --connections``: the worst case per server against its limit, in text and JSON."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import override_settings

from django_appdb.operations.budget import connection_budget
from django_appdb.state import state

from .conftest import run_manage

PASSWORD = "budg3t-S3cret"
ALL = ["default", "inventory", "orders"]
pytestmark = pytest.mark.django_db(databases=ALL)


def _postgres(monkeypatch: pytest.MonkeyPatch, alias: str, url: str | None = None, **extra: Any) -> None:
    """Point ``alias`` at PostgreSQL: the given URL's server, else a port nothing listens on."""
    import dj_database_url

    settings = {**connections.settings[alias], "OPTIONS": {}, "CONN_MAX_AGE": 0}
    settings.update(
        dj_database_url.parse(url)
        if url
        else {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "nowhere",
            "USER": "budget",
            "PASSWORD": PASSWORD,
            "HOST": "127.0.0.1",
            "PORT": "1",
        }
    )
    settings.update(extra)
    monkeypatch.setitem(connections.settings, alias, settings)


def _server(budget, alias):
    return next(server for server in budget.servers if alias in [usage.alias for usage in server.aliases])


def _usage(budget, alias):
    return next(usage for server in budget.servers for usage in server.aliases if usage.alias == alias)


# The project's side: counted without any server.


def test_threads_and_processes_arithmetic(monkeypatch):
    _postgres(monkeypatch, "orders")
    budget = connection_budget(["orders"], processes=3, threads=4, timeout=1)
    usage = _usage(budget, "orders")
    # One Django connection per thread, one sync engine of 5 + 10 per process.
    assert (usage.django_kind, usage.django, usage.sqlalchemy_sync, usage.sqlalchemy_async) == ("per thread", 4, 15, 0)
    server = _server(budget, "orders")
    assert (server.per_process, server.worst_case) == (19, 57)
    assert server.status == "unreachable" and server.max_connections is None


def test_native_pool_counts_its_max_size_per_process(monkeypatch):
    _postgres(monkeypatch, "orders", OPTIONS={"pool": {"min_size": 2, "max_size": 7}})
    usage = _usage(connection_budget(["orders"], processes=2, threads=16, sqlalchemy="none", timeout=1), "orders")
    assert (usage.django_kind, usage.django, usage.per_process) == ("pool", 7, 7)
    _postgres(monkeypatch, "orders", OPTIONS={"pool": True})
    assert _usage(connection_budget(["orders"], threads=16, sqlalchemy="none", timeout=1), "orders").django == 4


def test_sqlalchemy_pool_options_and_event_loops(monkeypatch):
    _postgres(monkeypatch, "orders")
    with override_settings(APPDB_SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 2, "max_overflow": 1}):
        usage = _usage(connection_budget(["orders"], threads=4, sqlalchemy="both", timeout=1), "orders")
        # Sync: one engine per process; async: one engine per event loop, one loop per thread.
        assert (usage.sqlalchemy_sync, usage.sqlalchemy_async, usage.per_process) == (3, 12, 4 + 3 + 12)
        usage = _usage(connection_budget(["orders"], threads=4, sqlalchemy="async", timeout=1), "orders")
        assert (usage.sqlalchemy_sync, usage.sqlalchemy_async) == (0, 12)
    from sqlalchemy.pool import NullPool, StaticPool

    with override_settings(APPDB_SQLALCHEMY_ENGINE_OPTIONS={"poolclass": NullPool}):
        assert _usage(connection_budget(["orders"], threads=6, timeout=1), "orders").sqlalchemy_sync == 6
    with override_settings(APPDB_SQLALCHEMY_ENGINE_OPTIONS={"poolclass": StaticPool}):
        assert _usage(connection_budget(["orders"], threads=6, timeout=1), "orders").sqlalchemy_sync == 1
    with override_settings(APPDB_SQLALCHEMY_ENGINE_OPTIONS={"max_overflow": -1}):
        usage = _usage(connection_budget(["orders"], threads=9, timeout=1), "orders")
        assert usage.sqlalchemy_sync == 9 and "without a limit" in usage.notes[0]


def test_replicas_are_servers_of_their_own(monkeypatch):
    _postgres(monkeypatch, "orders", OPTIONS={"pool": {"min_size": 1, "max_size": 3}})
    replica = {**connections.settings["orders"], "HOST": "127.0.0.2"}
    monkeypatch.setitem(connections.settings, "orders_replica_1", replica)
    monkeypatch.setitem(state.replicas, "orders", ("orders_replica_1",))
    budget = connection_budget(["orders"], processes=2, threads=2, sqlalchemy="none", timeout=1)
    assert [server.server for server in budget.servers] == ["127.0.0.1:1", "127.0.0.2:1"]
    usage = _usage(budget, "orders_replica_1")
    assert (usage.replica_of, usage.django_kind, usage.django) == ("orders", "pool", 3)
    assert _server(budget, "orders_replica_1").worst_case == 6


def test_aliases_on_one_server_add_up(monkeypatch):
    _postgres(monkeypatch, "orders")
    _postgres(monkeypatch, "inventory", HOST="localhost", NAME="other")
    budget = connection_budget(["orders", "inventory"], threads=2, sqlalchemy="none", timeout=1)
    # 127.0.0.1 and localhost are one server.
    assert len(budget.servers) == 1 and budget.servers[0].per_process == 4


def test_a_pooler_fronted_alias_counts_against_the_pooler(monkeypatch):
    _postgres(monkeypatch, "orders")
    monkeypatch.setitem(state.poolers, "orders", "pgbouncer-transaction")
    server = _server(connection_budget(["orders"], timeout=1), "orders")
    assert (server.kind, server.server, server.status) == ("pooler", "127.0.0.1:1 (pgbouncer-transaction)", "unknown")
    assert server.error is None  # not asked: a pooler has no max_connections


def test_sqlite_is_not_applicable():
    budget = connection_budget(["inventory"], processes=50, threads=50)
    server = budget.servers[0]
    assert (server.kind, server.status, server.worst_case) == ("file", "not applicable", None)
    assert not budget.over_budget


def test_bad_arguments(monkeypatch):
    for kwargs, message in [
        ({"processes": 0}, "--processes must be a whole number of at least 1"),
        ({"threads": -2}, "--threads must be a whole number of at least 1"),
        ({"sqlalchemy": "maybe"}, "--sqlalchemy must be one of none, sync, async, both"),
    ]:
        with pytest.raises(ValueError, match=message):
            connection_budget(**kwargs)
    with pytest.raises(CommandError, match="--processes must be"):
        call_command("appdb_check", "--connections", "--processes", "0")
    with pytest.raises(CommandError, match="nosuchapp"):
        call_command("appdb_check", "nosuchapp", "--connections")


@pytest.mark.psycopg
def test_an_unreachable_server_is_reported_masked_with_the_project_side(monkeypatch):
    _postgres(monkeypatch, "orders")
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("appdb_check", "orders", "--connections", "--threads", "3", "--timeout", "2", stdout=out)
    assert caught.value.returncode == 2
    text = out.getvalue() + str(caught.value)
    assert "127.0.0.1:1" in text and "unreachable" in text and "3 (per thread)" in text
    assert PASSWORD not in text


# The server's side: the real PostgreSQL.


def _show(url: str, name: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(f"SHOW {name}").fetchone()
    assert row is not None
    return int(row[0])


def _orders_url(postgres_url: str) -> str:
    """Return the URL of the orders alias's database: under the test run, its test database on the server."""
    from django_appdb.dburls import settings_to_url

    assert connections.settings["orders"]["ENGINE"] == "django.db.backends.postgresql"
    return settings_to_url(connections.settings["orders"])


@pytest.mark.psycopg
def test_numbers_come_from_the_server(postgres_url):
    import psycopg

    postgres_url = _orders_url(postgres_url)
    held = [psycopg.connect(postgres_url) for _ in range(5)]
    try:
        server = _server(connection_budget(["orders"]), "orders")
    finally:
        for conn in held:
            conn.close()
    assert server.status == "ok", server.error
    assert server.max_connections == _show(postgres_url, "max_connections")
    reserved = _show(postgres_url, "superuser_reserved_connections")
    if _show(postgres_url, "server_version_num") >= 160000:
        reserved += _show(postgres_url, "reserved_connections")
    assert server.reserved == reserved
    assert server.available == server.max_connections - server.reserved
    # The five held here, and the budget's own.
    assert server.in_use is not None and server.in_use >= 6


@pytest.mark.psycopg
def test_over_budget_warns_and_exits_1(postgres_url):
    postgres_url = _orders_url(postgres_url)
    limit = _show(postgres_url, "max_connections")
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("appdb_check", "orders", "--connections", "--processes", str(limit), stdout=out)
    assert caught.value.returncode == 1
    assert "over the connection budget on 127.0.0.1:" in str(caught.value)
    assert f"WARNING: 127.0.0.1:{connections.settings['orders']['PORT'] or 5432}: the worst case" in out.getvalue()
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("appdb_check", "orders", "--connections", "--json", "--processes", str(limit), stdout=out)
    data = json.loads(out.getvalue())
    assert data["over_budget"] is True and data["servers"][0]["status"] == "over"
    # Within the limit: exit 0.
    call_command("appdb_check", "orders", "--connections", "--sqlalchemy", "none", stdout=StringIO())


SERVER_KEYS = [
    "server",
    "vendor",
    "kind",
    "aliases",
    "per_process",
    "worst_case",
    "max_connections",
    "reserved",
    "available",
    "in_use",
    "status",
    "error",
]
ALIAS_KEYS = [
    "alias",
    "server",
    "apps",
    "replica_of",
    "django",
    "sqlalchemy_sync",
    "sqlalchemy_async",
    "per_process",
    "worst_case",
    "notes",
]


@pytest.mark.psycopg
def test_test_project_in_text_and_json(sqlite_project, postgres_url):
    orders = f"{postgres_url}_orders?pool=true&pool_max_size=6&pool_min_size=1"
    env = sqlite_project(DATABASE_URL=postgres_url, ORDERS_DATABASE_URL=orders)
    result = run_manage(env, "appdb_check", "--connections", "--json", "--processes", "2", "--threads", "4")
    data = json.loads(result.stdout)
    assert list(data) == ["processes", "threads", "sqlalchemy", "over_budget", "servers", "aliases"]
    assert (data["processes"], data["threads"], data["sqlalchemy"], data["over_budget"]) == (2, 4, "sync", False)
    assert all(list(server) == SERVER_KEYS for server in data["servers"])
    assert all(list(alias) == ALIAS_KEYS for alias in data["aliases"])
    by_alias = {alias["alias"]: alias for alias in data["aliases"]}
    assert by_alias["orders"]["django"] == {"kind": "pool", "per_process": 6}
    assert by_alias["default"]["django"] == {"kind": "per thread", "per_process": 4}
    postgres = data["servers"][0]
    assert postgres["aliases"] == ["default", "orders"]
    assert (postgres["per_process"], postgres["worst_case"]) == (4 + 15 + 6 + 15, 80)
    assert postgres["max_connections"] == _show(postgres_url, "max_connections")
    assert data["servers"][1]["status"] == "not applicable"

    text = run_manage(env, "appdb_check", "--connections", "--processes", "2", "--threads", "4").stdout
    lines = text.splitlines()
    assert lines[0] == "Connection budget for 2 process(es) x 4 thread(s), SQLAlchemy engines counted: sync"
    assert lines[1].split() == [
        "SERVER",
        "VENDOR",
        "PER",
        "PROCESS",
        "WORST",
        "CASE",
        "AVAILABLE",
        "IN",
        "USE",
        "STATUS",
    ]
    assert lines[2].split()[1:4] == ["postgresql", "40", "80"] and lines[2].endswith("ok")
    assert "6 (pool)" in text and "4 (per thread)" in text


def test_test_project_on_sqlite_alone(sqlite_project):
    result = run_manage(sqlite_project(), "appdb_check", "--connections", "--json")
    data = json.loads(result.stdout)
    assert {server["status"] for server in data["servers"]} == {"not applicable"}
    assert data["over_budget"] is False


def test_mysql_limit_and_threads_connected(monkeypatch):
    from contextlib import contextmanager

    from django_appdb.operations import budget as budget_module

    answers = {
        budget_module._MYSQL_SQL: (151, 0, 0),
        budget_module._MYSQL_IN_USE: ("Threads_connected", "7"),
    }

    class Cursor:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def execute(self, sql):
            self.row = answers[sql]

        def fetchone(self):
            return self.row

    @contextmanager
    def fake_connection(alias, connect_timeout=None):
        yield type("Wrapper", (), {"cursor": lambda self: Cursor()})()

    monkeypatch.setattr(budget_module, "standalone_connection", fake_connection)
    mysql = {"ENGINE": "django.db.backends.mysql", "NAME": "shop", "HOST": "127.0.0.1", "PORT": "3306"}
    monkeypatch.setitem(connections.settings, "orders", {**connections.settings["orders"], **mysql, "OPTIONS": {}})
    server = _server(connection_budget(["orders"], threads=2, sqlalchemy="none"), "orders")
    assert (server.vendor, server.max_connections, server.available, server.in_use) == ("mysql", 151, 151, 7)
    assert (server.worst_case, server.status) == (2, "ok")
