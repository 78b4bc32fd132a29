"""Test runs reach only test databases: the connect-time guard, the widened default, the set-up refusals.

The test project's own isolation tests (``orders/test_isolation.py``), run by
the real-database canary under all four runners, cover the guard end to end;
these cover each part in this process and in child test runs.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import django
import pytest
from django.core.checks import Error
from django.db import connections
from django.test.testcases import DatabaseOperationForbidden
from sqlalchemy import text

from django_appdb import checks
from django_appdb.exceptions import NotATestDatabaseError, SetupRefusedError
from django_appdb.sqlalchemy.engines import EngineHandler
from django_appdb.testing import guard
from tests.conftest import ROOT, child_env, postgres_databases

TESTPROJECT = ROOT / "testproject"
# Django 6.0 deprecated serialize; 5.2 serializes unless told not to.
NO_SERIALIZE = {} if django.VERSION >= (6, 0) else {"serialize": False}


@pytest.fixture
def real(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Return a function marking settings as a real database, for this test only."""
    identities = dict(guard._real_identities)
    settings_by_alias = dict(guard._real_settings)
    monkeypatch.setattr(guard, "_real_identities", identities)
    monkeypatch.setattr(guard, "_real_settings", settings_by_alias)

    def mark(alias: str, settings_dict: dict[str, Any]) -> None:
        settings_by_alias[alias] = settings_dict
        identities[guard.guard_identity(settings_dict)] = alias

    yield mark


def sqlite_file(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE kept (id INTEGER PRIMARY KEY)")


@pytest.mark.django_db(databases=["default", "inventory"])
def test_a_test_run_is_active_here_and_the_real_databases_were_recorded_before_it():
    assert guard.running_tests()
    # Recorded at start-up: the test databases Django switched to are not among them.
    assert guard.real_alias_of(connections["inventory"].settings_dict) is None
    assert guard.real_alias_of(guard._real_settings["inventory"]) == "inventory"


def test_an_engine_and_djangos_connection_are_refused_a_real_database(add_alias, real, tmp_path, unblocked):
    path = tmp_path / "real.sqlite3"
    sqlite_file(path)
    alias = add_alias("scratch", ENGINE="django.db.backends.sqlite3", NAME=str(path))
    real(alias, connections.settings[alias])
    engine = EngineHandler()[alias]
    with pytest.raises(NotATestDatabaseError) as caught, engine.begin() as conn:
        conn.execute(text("INSERT INTO kept DEFAULT VALUES"))
    message = str(caught.value)
    assert "'scratch'" in message and "No test database is set up for alias 'scratch'" in message
    assert "@pytest.mark.django_db(databases=[..., 'scratch'])" in message
    assert isinstance(caught.value, DatabaseOperationForbidden) and isinstance(caught.value, RuntimeError)
    # Django's own connection, which the widened default could reach, too.
    with pytest.raises(NotATestDatabaseError):
        connections[alias].ensure_connection()
    assert connections[alias].connection is None  # closed, so the next query is refused again
    with pytest.raises(NotATestDatabaseError):
        connections[alias].cursor()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (0,)


def test_the_guard_is_in_the_connect_event_so_a_kept_engine_is_covered(add_alias, real, tmp_path, unblocked):
    path = tmp_path / "real.sqlite3"
    alias = add_alias("scratch", ENGINE="django.db.backends.sqlite3", NAME=str(path))
    engine = EngineHandler()[alias]
    with engine.connect() as conn:  # not real (yet): allowed
        conn.execute(text("SELECT 1"))
    engine.dispose()
    real(alias, connections.settings[alias])
    with pytest.raises(NotATestDatabaseError):
        engine.connect()
    # A pooled connection handed out again never reaches the driver: the
    # check-out is checked for access, the connect for the database.
    assert engine.pool.checkedin() == 0


def test_an_alias_the_test_did_not_declare_is_refused(add_alias, tmp_path):
    # No django_db mark: pytest-django blocks the ORM, and django-appdb SQLAlchemy.
    alias = add_alias("scratch", ENGINE="django.db.backends.sqlite3", NAME=str(tmp_path / "s.sqlite3"))
    from django_appdb.exceptions import UndeclaredDatabaseError

    with pytest.raises(UndeclaredDatabaseError, match=r"may not use database alias 'scratch' in this test.*django_db"):
        EngineHandler()[alias].connect()
    assert not (tmp_path / "s.sqlite3").exists()


@pytest.mark.django_db(databases=["default"])
def test_a_declared_test_is_refused_the_aliases_it_did_not_declare():
    from django_appdb import get_sync_app_session

    with pytest.raises(DatabaseOperationForbidden, match=r"Database (queries|connections) to 'inventory' are not"):
        with get_sync_app_session("inventory") as session:
            session.execute(text("SELECT 1"))
    with get_sync_app_session("catalog") as session:
        assert session.execute(text("SELECT 1")).scalar() == 1


def test_outside_a_test_run_nothing_is_checked(monkeypatch, add_alias, real, tmp_path, unblocked):
    path = tmp_path / "real.sqlite3"
    alias = add_alias("scratch", ENGINE="django.db.backends.sqlite3", NAME=str(path))
    real(alias, connections.settings[alias])
    monkeypatch.setattr(guard, "running_tests", lambda: False)
    engine = EngineHandler()[alias]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()  # closes the pooled connection (Python 3.13 warns about one left to the collector)


# -- set-up ----------------------------------------------------------------------------------------


def test_a_test_database_named_after_a_real_one_is_refused_before_anything_is_deleted(
    add_alias, real, tmp_path, django_db_blocker
):
    path = tmp_path / "real.sqlite3"
    sqlite_file(path)
    alias = add_alias(
        "scratch",
        ENGINE="django.db.backends.sqlite3",
        NAME=str(tmp_path / "other.sqlite3"),
        TEST={"NAME": str(tmp_path / "." / "real.sqlite3")},
    )
    real("real", {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path)})
    with django_db_blocker.unblock(), pytest.raises(SetupRefusedError) as caught:
        connections[alias].creation.create_test_db(verbosity=0, autoclobber=True, **NO_SERIALIZE)
    assert "it is the real database of alias 'real'" in str(caught.value)
    assert "Nothing was created or dropped" in str(caught.value) and "(django_appdb.E007)" in str(caught.value)
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (0,)
    assert connections[alias].settings_dict["NAME"] == str(tmp_path / "other.sqlite3")


def test_failing_checks_stop_the_set_up_before_anything_is_created(add_alias, monkeypatch, tmp_path, django_db_blocker):
    alias = add_alias(
        "scratch",
        ENGINE="django.db.backends.sqlite3",
        NAME=str(tmp_path / "real.sqlite3"),
        TEST={"NAME": str(tmp_path / "test.sqlite3")},
    )
    found = [Error("a relation crosses databases", hint="move both", id="django_appdb.E003")]
    monkeypatch.setattr(guard, "serious_check_messages", lambda: found)
    # A set-up of its own, at its first database (this run's own test databases are not part of it).
    monkeypatch.setattr(guard, "_created", [])
    with django_db_blocker.unblock(), pytest.raises(SetupRefusedError) as caught:
        connections[alias].creation.create_test_db(verbosity=0, autoclobber=True, **NO_SERIALIZE)
    assert "(django_appdb.E003) a relation crosses databases" in str(caught.value)
    assert "HINT: move both" in str(caught.value)
    assert not (tmp_path / "test.sqlite3").exists()


def test_the_set_up_checks_run_once_per_set_up(add_alias, monkeypatch, tmp_path, django_db_blocker):
    aliases = [
        add_alias(
            f"scratch{n}",
            ENGINE="django.db.backends.sqlite3",
            NAME=str(tmp_path / f"real{n}.sqlite3"),
            TEST={"NAME": str(tmp_path / f"test{n}.sqlite3")},
        )
        for n in (1, 2)
    ]
    calls = []
    monkeypatch.setattr(guard, "serious_check_messages", lambda: calls.append(1) or [])
    monkeypatch.setattr(guard, "_created", [])
    with django_db_blocker.unblock():
        try:
            for alias in aliases:
                connections[alias].creation.create_test_db(verbosity=0, autoclobber=True, **NO_SERIALIZE)
        finally:
            for alias in aliases:
                creation = connections[alias].creation
                creation.destroy_test_db(str(tmp_path / f"real{alias[-1]}.sqlite3"), verbosity=0)
    assert calls == [1]


def test_a_set_up_that_fails_drops_the_test_databases_it_created(add_alias, monkeypatch, tmp_path, django_db_blocker):
    # This run's own test databases are not part of this set-up.
    monkeypatch.setattr(guard, "_created", [])
    first = add_alias(
        "scratch1",
        ENGINE="django.db.backends.sqlite3",
        NAME=str(tmp_path / "one.sqlite3"),
        TEST={"NAME": str(tmp_path / "test_one.sqlite3"), "MIGRATE": False},
    )
    second = add_alias(
        "scratch2",
        ENGINE="django.db.backends.sqlite3",
        NAME=str(tmp_path / "two.sqlite3"),
        TEST={"NAME": str(tmp_path / "test_two.sqlite3"), "MIGRATE": False},
    )
    with django_db_blocker.unblock():
        connections[first].creation.create_test_db(verbosity=0, autoclobber=True, **NO_SERIALIZE)
        assert (tmp_path / "test_one.sqlite3").exists()
        import django.core.management

        real_call_command = django.core.management.call_command

        def failing_migrate(name: str, *args: Any, **kwargs: Any) -> Any:
            if name == "migrate" and kwargs.get("database") == second:
                connections[second].ensure_connection()  # the test database file now exists
                raise RuntimeError("a migration failed")
            return real_call_command(name, *args, **kwargs)

        monkeypatch.setattr(django.core.management, "call_command", failing_migrate)
        with pytest.raises(RuntimeError, match="a migration failed"):
            connections[second].creation.create_test_db(verbosity=0, autoclobber=True, **NO_SERIALIZE)
    # Both dropped, and both aliases back on their real names: a rerun starts clean.
    assert not (tmp_path / "test_one.sqlite3").exists()
    assert not (tmp_path / "test_two.sqlite3").exists()
    assert connections[first].settings_dict["NAME"] == str(tmp_path / "one.sqlite3")
    assert connections[second].settings_dict["NAME"] == str(tmp_path / "two.sqlite3")


def test_a_real_database_is_never_destroyed_as_a_test_database(add_alias, real, tmp_path, django_db_blocker):
    path = tmp_path / "real.sqlite3"
    sqlite_file(path)
    alias = add_alias("scratch", ENGINE="django.db.backends.sqlite3", NAME=str(path))
    real(alias, connections.settings[alias])
    # As a second teardown would: the alias is back on its real NAME.
    with django_db_blocker.unblock(), pytest.raises(SetupRefusedError, match="Nothing was dropped"):
        connections[alias].creation.destroy_test_db(str(path), verbosity=0)
    assert path.exists()


def test_the_system_check_names_the_alias_and_the_fix(monkeypatch, tmp_path):
    databases = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "d.sqlite3"), "TEST": {}},
        "ledger": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(tmp_path / "l.sqlite3"),
            "TEST": {"NAME": str(tmp_path / "d.sqlite3")},
        },
    }
    monkeypatch.setattr(guard, "_real_settings", databases)
    messages = checks.check_test_database_names()
    assert [message.id for message in messages] == ["django_appdb.E007"]
    assert "database alias 'ledger'" in messages[0].msg and "the real database of alias 'default'" in messages[0].msg
    assert "TEST['NAME']" in messages[0].hint


# -- child test runs -------------------------------------------------------------------------------

NO_WIDENING = """
from testproject.settings import *  # noqa: F403
APPDB_WIDEN_TEST_DATABASES = False
"""


def run_tests(arguments: list[str], tmp_path: Path, **env: str) -> tuple[int, str]:
    """Run the test project's tests in a child, on databases of its own.

    Every database is named here (files under ``tmp_path`` unless given):
    inheriting this run's settings would give the child this run's test
    database names, and its set-up would drop them from under this run.
    """
    import subprocess

    own = {
        "DJANGO_SETTINGS_MODULE": "testproject.settings",
        "APPDB_TEST_POSTGRES_URL": "",
        **{
            f"{label.upper()}_DATABASE_URL"
            if label != "default"
            else "DATABASE_URL": f"sqlite:///{tmp_path / f'{label}.sqlite3'}"
            for label in ("default", "orders", "notes")
        },
    }
    command = [sys.executable, *arguments]
    if command[1] == "manage.py":
        command[1] = str(TESTPROJECT / "manage.py")
    result = subprocess.run(
        command, cwd=TESTPROJECT, env=child_env(**{**own, **env}), capture_output=True, text=True, timeout=600
    )
    return result.returncode, result.stdout + result.stderr


@pytest.mark.subprocess
@pytest.mark.parametrize("runner", ["manage.py test", "pytest"])
def test_the_setting_restores_djangos_default(runner, tmp_path):
    (tmp_path / "no_widening.py").write_text(NO_WIDENING)
    env = {
        "NOTES_DATABASE_URL": f"sqlite:///{tmp_path / 'notes.sqlite3'}",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT), str(TESTPROJECT)]),
    }
    arguments = ["manage.py", "test", "--noinput", "notes"] if runner == "manage.py test" else ["-m", "pytest", "notes"]
    widened, output = run_tests(arguments, tmp_path, **env)
    assert widened == 0, output
    narrowed, output = run_tests(arguments, tmp_path, **env, DJANGO_SETTINGS_MODULE="no_widening")
    assert narrowed != 0
    assert "Database queries to 'notes' are not allowed in this test" in output, output
    assert not (tmp_path / "notes.sqlite3").exists()


@pytest.mark.subprocess
@pytest.mark.postgres
@pytest.mark.parametrize("runner", ["manage.py test", "pytest", "pytest -n 2"])
def test_a_cross_database_relation_stops_the_run_before_any_test_database(runner, postgres_url, tmp_path):
    """Moving auth alone is django_appdb.E003: on PostgreSQL, migrating would fail half-way."""
    arguments = {
        "manage.py test": ["manage.py", "test", "--noinput"],
        "pytest": ["-m", "pytest", "-p", "no:randomly"],
        "pytest -n 2": ["-m", "pytest", "-n", "2"],
    }[runner]
    with postgres_databases(postgres_url) as create:
        urls = {name: create(name) for name in ("default", "auth", "orders")}
        returncode, output = run_tests(
            arguments,
            tmp_path,
            DATABASE_URL=urls["default"],
            AUTH_DATABASE_URL=urls["auth"],
            ORDERS_DATABASE_URL=urls["orders"],
        )
        assert returncode != 0
        assert "django_appdb: the test databases were not set up" in output, output
        assert "admin.LogEntry.user: (django_appdb.E003)" in output
        assert "Creating test database" not in output and "Applying" not in output
        if runner == "pytest":
            # One error shown, then the run stops: every other test would fail alike.
            assert output.count("ERROR at setup of") == 1, output
            assert "django_appdb refused to set up the test databases" in output
        import psycopg

        with psycopg.connect(urls["default"]) as conn:
            names = [row[0] for row in conn.execute("SELECT datname FROM pg_database")]
        assert not [
            name
            for name in names
            if name.startswith("test_") and any(url.rsplit("/", 1)[1] in name for url in urls.values())
        ], names


@pytest.mark.subprocess
@pytest.mark.postgres
@pytest.mark.parametrize("runner", ["manage.py test", "pytest"])
def test_keeping_the_test_databases_still_works(runner, postgres_url, tmp_path):
    arguments = {
        "manage.py test": ["manage.py", "test", "--noinput", "--keepdb", "notes"],
        "pytest": ["-m", "pytest", "--reuse-db", "notes"],
    }[runner]
    with postgres_databases(postgres_url) as create:
        env = {"NOTES_DATABASE_URL": create("notes")}
        first, output = run_tests(arguments, tmp_path, **env)
        assert first == 0, output
        second, output = run_tests(arguments, tmp_path, **env)
        assert second == 0, output
        if runner == "manage.py test":
            assert "Using existing test database for alias 'notes'" in output, output
        import psycopg

        name = env["NOTES_DATABASE_URL"].rsplit("/", 1)[1]
        with psycopg.connect(env["NOTES_DATABASE_URL"]) as conn:
            kept = [
                row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE datname = %s", [f"test_{name}"])
            ]
        assert kept == [f"test_{name}"]  # kept, as asked; postgres_databases drops it
