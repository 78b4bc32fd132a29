"""``appdb_check``: a trivial query per alias, bounded by a timeout, naming what is down."""

from __future__ import annotations

import json
from contextlib import contextmanager
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connections

from django_appdb.operations import probing
from django_appdb.operations.probing import check_databases

from .conftest import run_manage

ALL = ["default", "inventory", "orders"]
PASSWORD = "pr0be-S3cret"


def _unreachable(monkeypatch: pytest.MonkeyPatch, alias: str, port: int) -> None:
    """Point ``alias`` at a PostgreSQL server on a local port that does not answer."""
    settings = {
        **connections.settings[alias],
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "nowhere",
        "USER": "probe",
        "PASSWORD": PASSWORD,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "OPTIONS": {},
    }
    monkeypatch.setitem(connections.settings, alias, settings)


@pytest.mark.django_db(databases=ALL)
def test_every_alias_answers_with_a_latency():
    statuses = check_databases()
    assert [status.alias for status in statuses] == ALL
    assert all(status.ok and status.latency_ms is not None and status.latency_ms >= 0 for status in statuses)
    assert statuses[0].labels[:2] == ("admin", "auth")
    assert statuses[2].labels == ("orders",)


@pytest.mark.django_db(databases=ALL)
def test_command_prints_a_row_per_alias():
    out = StringIO()
    call_command("appdb_check", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["ALIAS", "VENDOR", "STATUS", "LATENCY", "APPS"]
    assert [line.split()[0] for line in lines[1:]] == ALL
    assert all(line.split()[2] == "ok" and " ms " in line for line in lines[1:])


@pytest.mark.django_db(databases=ALL)
def test_json_and_labels():
    out = StringIO()
    call_command("appdb_check", "orders", "inventory", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert [row["alias"] for row in data] == ["inventory", "orders"]
    assert list(data[0]) == [
        "alias",
        "vendor",
        "apps",
        "url",
        "status",
        "latency_ms",
        "error",
        "replica_of",
        "lag_seconds",
    ]
    assert all(row["status"] == "ok" and row["error"] is None for row in data)


@pytest.mark.django_db(databases=ALL)
@pytest.mark.psycopg
def test_refused_connection_fails_naming_the_database(monkeypatch, closed_port):
    _unreachable(monkeypatch, "orders", closed_port)
    out = StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("appdb_check", "--json", stdout=out)
    message = str(raised.value)
    assert message.startswith("1 database unreachable: 'orders'")
    assert str(closed_port) in message
    data = {row["alias"]: row for row in json.loads(out.getvalue())}
    assert data["orders"]["status"] == "error"
    assert data["orders"]["latency_ms"] is None
    assert data["default"]["status"] == data["inventory"]["status"] == "ok"
    assert PASSWORD not in message + out.getvalue()


@pytest.mark.django_db(databases=ALL)
@pytest.mark.psycopg
def test_a_silent_server_cannot_hang_it(monkeypatch, silent_port):
    _unreachable(monkeypatch, "orders", silent_port)
    statuses = {status.alias: status for status in check_databases(timeout=0.5)}
    assert statuses["orders"].status == "timeout"
    assert statuses["orders"].error == "no answer within 0.5 s"
    assert statuses["default"].ok


@pytest.mark.django_db(databases=ALL)
def test_closes_every_connection_it_opens(monkeypatch):
    opened = []
    real = probing.standalone_connection

    @contextmanager
    def spy(alias, **kwargs):
        with real(alias, **kwargs) as wrapper:
            opened.append(wrapper)
            yield wrapper
        assert wrapper.connection is None

    monkeypatch.setattr(probing, "standalone_connection", spy)
    before = {alias: connections[alias].connection for alias in ALL}
    statuses = check_databases()
    assert [status.error for status in statuses] == [None, None, None]
    assert len(opened) == 3
    assert all(wrapper.connection is None for wrapper in opened)
    # The process' own connections are neither used nor replaced.
    assert {alias: connections[alias].connection for alias in ALL} == before


def test_bad_arguments():
    with pytest.raises(CommandError, match="timeout must be a positive number"):
        call_command("appdb_check", "--timeout", "0")
    with pytest.raises(CommandError, match="No installed app with label 'nope'"):
        call_command("appdb_check", "nope")


@pytest.mark.subprocess
@pytest.mark.psycopg
def test_exit_status_names_each_unreachable_database(sqlite_project, closed_port, silent_port, tmp_path):
    env = sqlite_project(
        DATABASE_URL=f"postgresql://main:{PASSWORD}@127.0.0.1:{closed_port}/main",
        ORDERS_DATABASE_URL=f"postgresql://shop:{PASSWORD}@127.0.0.1:{silent_port}/shop",
    )
    (tmp_path / "inventory.sqlite3").touch()
    result = run_manage(env, "appdb_check", "--timeout", "1", returncode=1)
    assert result.stderr.startswith("CommandError: 2 databases unreachable: 'default' (postgres")
    assert f"://main:********@127.0.0.1:{closed_port}/main): OperationalError: " in result.stderr
    assert f"'orders' (postgresql://shop:********@127.0.0.1:{silent_port}/shop): no answer within 1 s" in result.stderr
    rows = {line.split()[0]: line.split()[2] for line in result.stdout.splitlines()[1:]}
    assert rows == {"default": "error", "inventory": "ok", "orders": "timeout"}
    assert PASSWORD not in result.stdout + result.stderr


@pytest.mark.subprocess
def test_a_missing_sqlite_file_is_reported_not_created(sqlite_project, tmp_path):
    result = run_manage(sqlite_project(), "appdb_check", "--json", returncode=1)
    data = json.loads(result.stdout)
    assert [row["status"] for row in data] == ["error"] * 3
    assert "does not exist" in data[0]["error"]
    assert not list(tmp_path.glob("*.sqlite3"))
