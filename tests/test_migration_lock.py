"""The migration lock and the direct connection, with real processes.

The PostgreSQL tests run ``appdb_migrate`` and the test runners in
subprocesses of the lock project (``tests/lockproject``), whose ``lockapp``
reaches a fresh database through the PgBouncer of ``.ci/pgbouncer.sh`` (in
transaction mode) and migrates it over the server's own URL. They need
``APPDB_TEST_PGBOUNCER_URL`` and ``APPDB_TEST_PGBOUNCER_DIRECT_URL``
(``eval "$(bash .ci/pgbouncer.sh env)"``), and fail when those are set but the
pooler or the server cannot be reached.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.management import CommandError, call_command
from django.db import connections

from django_appdb.operations.locking import MigrationLockError, advisory_key, lock_name, migration_lock

ROOT = Path(__file__).resolve().parents[1]
POOLED_BASE = os.environ.get("APPDB_TEST_PGBOUNCER_URL", "")
DIRECT_BASE = os.environ.get("APPDB_TEST_PGBOUNCER_DIRECT_URL", "")
SERVER_PORT = 5432


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, "", ""))


class LockProject:
    """A fresh database for ``lockapp``, reached through PgBouncer, and how to run the project's commands."""

    def __init__(self, tmp_path: Path, name: str) -> None:
        self.name = name
        self.tmp_path = tmp_path
        self.pooled = with_database(POOLED_BASE, name)
        self.direct = with_database(DIRECT_BASE, name)

    def env(self, *, direct: bool = True) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("LOCKAPP_", "DJANGO_"))}
        env.update(
            PYTHONPATH=str(ROOT),
            DJANGO_SETTINGS_MODULE="tests.lockproject.settings",
            LOCKPROJECT_DEFAULT=str(self.tmp_path / "default.sqlite3"),
            LOCKAPP_POOLED_URL=self.pooled,
        )
        if direct:
            env["LOCKAPP_DIRECT_URL"] = self.direct
        return env

    def start(self, *args: str, direct: bool = True) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "django", *args],
            env=self.env(direct=direct),
            cwd=self.tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *args: str, returncode: int = 0, direct: bool = True) -> tuple[str, str]:
        process = self.start(*args, direct=direct)
        out, err = process.communicate(timeout=300)
        assert process.returncode == returncode, f"{args} exited with {process.returncode}\n{out}\n{err}"
        return out, err

    def connect(self, **kwargs: Any) -> Any:
        import psycopg

        return psycopg.connect(self.direct, autocommit=True, **kwargs)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with self.connect() as conn:
            return conn.execute(sql).fetchall()


@pytest.fixture
def lock_project(postgres_url: str, tmp_path: Path) -> Iterator[LockProject]:
    if not (POOLED_BASE and DIRECT_BASE):
        pytest.skip('APPDB_TEST_PGBOUNCER_URL is not set (eval "$(bash .ci/pgbouncer.sh env)")')
    from .conftest import postgres_databases

    with postgres_databases(DIRECT_BASE) as create:
        name = urlsplit(create("lock")).path.lstrip("/")
        yield LockProject(tmp_path, name)


def section(output: str, alias: str) -> str:
    """Return the part of ``appdb_migrate``'s output written for ``alias``."""
    return output.split(f"Database '{alias}'", 1)[1].split("\nDatabase '", 1)[0]


@pytest.mark.subprocess
def test_two_processes_started_together_migrate_each_database_once(lock_project):
    first = lock_project.start("appdb_migrate", "--noinput")
    second = lock_project.start("appdb_migrate", "--noinput")
    outputs = []
    for process in (first, second):
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, f"{out}\n{err}"
        outputs.append(out)
    # Each migration ran once, over the server's own port, not PgBouncer's.
    assert lock_project.rows("SELECT migration, port FROM lockapp_runs ORDER BY id") == [
        ("0002_slow", SERVER_PORT),
        ("0003_session", SERVER_PORT),
    ]
    recorded = lock_project.rows("SELECT app, name, count(*) FROM django_migrations GROUP BY app, name ORDER BY 1, 2")
    assert [count for *_, count in recorded] == [1] * len(recorded)
    assert ("lockapp", "0003_session", 1) in recorded
    import sqlite3

    with sqlite3.connect(lock_project.tmp_path / "default.sqlite3") as conn:
        counts = conn.execute("SELECT count(*) FROM django_migrations GROUP BY app, name").fetchall()
    conn.close()
    assert counts and {count for (count,) in counts} == {1}
    # The one that waited found nothing to do.
    waited = [out for out in outputs if "waiting up to 300 s for its migration lock" in section(out, "lockapp")]
    assert len(waited) == 1, outputs
    lockapp = section(waited[0], "lockapp")
    assert "held by server process" in lockapp and "application 'appdb_migrate pid" in lockapp
    assert "No migrations to apply." in lockapp
    assert "Waited" in lockapp
    other = section(next(out for out in outputs if out is not waited[0]), "lockapp")
    assert "Applying lockapp.0002_slow... OK" in other


@pytest.mark.subprocess
def test_a_lock_held_by_another_session_times_out_naming_it(lock_project):
    with lock_project.connect(application_name="deploy-holding-it") as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [advisory_key(lock_project.name)])
        (pid,) = holder.execute("SELECT pg_backend_pid()").fetchone()
        out, err = lock_project.run("appdb_migrate", "lockapp", "--noinput", "--lock-timeout", "1", returncode=1)
    assert "waiting up to 1 s" in out
    assert (
        f"CommandError: migrating database 'lockapp' failed: could not take the migration lock of database "
        f"'lockapp' within 1 s: another process is migrating it, held by server process {pid}, application "
        "'deploy-holding-it'"
    ) in err
    assert "Nothing was migrated on it" in err and "--lock-timeout" in err
    assert lock_project.rows("SELECT count(*) FROM pg_tables WHERE tablename = 'lockapp_runs'") == [(0,)]
    # Released by its holder, the lock is free again.
    lock_project.run("appdb_migrate", "lockapp", "--noinput", "--lock-timeout", "0")
    assert len(lock_project.rows("SELECT * FROM lockapp_runs")) == 2


@pytest.mark.subprocess
def test_without_the_direct_url_migrations_go_through_pgbouncer(lock_project):
    # The control for the port the other tests check: PgBouncer's, when no direct URL is declared.
    lock_project.run("appdb_migrate", "lockapp", "--noinput", direct=False)
    ports = {port for (port,) in lock_project.rows("SELECT port FROM lockapp_runs")}
    assert ports == {urlsplit(POOLED_BASE).port}


@pytest.mark.subprocess
def test_appdb_createdb_creates_over_the_direct_url(lock_project):
    missing = f"{lock_project.name}_new"
    lock_project.pooled = with_database(POOLED_BASE, missing)
    lock_project.direct = with_database(DIRECT_BASE, missing)
    try:
        out, _ = lock_project.run("appdb_createdb", "lockapp")
        assert f"created database '{missing}'" in out
        lock_project.run("appdb_migrate", "lockapp", "--noinput")
        assert lock_project.rows("SELECT DISTINCT port FROM lockapp_runs") == [(SERVER_PORT,)]
    finally:
        import psycopg

        with psycopg.connect(with_database(DIRECT_BASE, "postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{missing}" WITH (FORCE)')


@pytest.mark.subprocess
@pytest.mark.parametrize("runner", ["manage.py test", "pytest"])
def test_test_databases_are_set_up_directly_and_tested_through_pgbouncer(lock_project, runner):
    checks = "tests/lockproject/lockapp/direct_checks.py"
    if runner == "pytest":
        ini = lock_project.tmp_path / "pytest.ini"
        ini.write_text(f"[pytest]\npythonpath = {ROOT}\n")
        args = ["-m", "pytest", "-c", str(ini), "--rootdir", str(ROOT), "--noconftest", "-p", "no:cacheprovider"]
        args += ["--ds=tests.lockproject.settings", "-q", str(ROOT / checks)]
    else:
        args = ["-m", "django", "test", "tests.lockproject.lockapp.direct_checks", "--noinput"]
    process = subprocess.run(
        [sys.executable, *args],
        env=lock_project.env(),
        cwd=lock_project.tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert process.returncode == 0, f"{process.stdout}\n{process.stderr}"
    # Torn down over the direct connection too, PgBouncer's sessions on it ended first.
    assert lock_project.rows(f"SELECT datname FROM pg_database WHERE datname = 'test_{lock_project.name}'") == []


# -- without a server -------------------------------------------------------------------------------


def test_the_advisory_key_is_stable_and_per_database():
    assert advisory_key("orders") == advisory_key("orders")
    assert advisory_key("orders") != advisory_key("billing")
    assert -(2**63) <= advisory_key("orders") < 2**63
    # Fixed forever: two versions of the project migrating at once must agree on it.
    assert advisory_key("orders") == -1701977456985158229


def test_mysql_lock_names_fit_its_64_characters():
    assert lock_name("orders") == "django_appdb.migrate:orders"
    assert len(lock_name("x" * 100)) <= 64
    assert lock_name("x" * 100) != lock_name("y" * 100)


@pytest.fixture
def sqlite_alias(tmp_path, monkeypatch):
    """Return the file of a SQLite database under the alias ``lockdb`` (in ``connections.settings`` only)."""
    path = tmp_path / "lock.sqlite3"
    monkeypatch.setitem(connections.settings, "lockdb", {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path)})
    return path


def hold_file_lock(path: Path) -> subprocess.Popen[str]:
    """Start a process that holds ``path``'s migration lock until its stdin closes."""
    code = (
        "import fcntl, sys\n"
        f"f = open({str(path) + '.appdb-migrate.lock'!r}, 'a+')\n"
        "fcntl.flock(f, fcntl.LOCK_EX)\n"
        "f.write('the holding process'); f.flush()\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


@pytest.mark.subprocess
def test_a_sqlite_file_lock_held_by_another_process_times_out_naming_it(sqlite_alias):
    pytest.importorskip("fcntl")
    holder = hold_file_lock(sqlite_alias)
    waits = []
    try:
        with pytest.raises(MigrationLockError) as caught:
            with migration_lock("lockdb", 0.3, waits.append):
                pytest.fail("the lock was taken while another process held it")
    finally:
        holder.communicate("")
    assert "within 0.3 s" in str(caught.value) and "held by the holding process" in str(caught.value)
    assert [wait.holder for wait in waits] == ["the holding process"]
    with migration_lock("lockdb", 0) as result:
        assert result.waited == 0.0 and "file lock" in result.kind
        # Held: a second taker in this process waits too (flock is per open file).
        with pytest.raises(MigrationLockError):
            with migration_lock("lockdb", 0):
                pass


def test_an_in_memory_sqlite_database_takes_no_lock(monkeypatch):
    monkeypatch.setitem(connections.settings, "lockdb", {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"})
    with migration_lock("lockdb") as result:
        assert result.kind.startswith("none")


@pytest.mark.parametrize("value", ["-1", "soon", "nan", "inf"])
def test_lock_timeout_must_be_seconds(value):
    with pytest.raises(CommandError, match="--lock-timeout: must be a number of seconds, 0 or more"):
        call_command("appdb_migrate", "--lock-timeout", value, skip_checks=True)


def test_a_postgresql_alias_behind_a_transaction_pooler_needs_a_direct_url(monkeypatch):
    from django_appdb import state as state_module

    monkeypatch.setitem(connections.settings, "pooled", {"ENGINE": "django.db.backends.postgresql", "NAME": "x"})
    monkeypatch.setattr(state_module, "pooler_of", lambda alias: "pgbouncer-transaction", raising=False)
    with pytest.raises(MigrationLockError, match="behind PgBouncer in transaction mode") as caught:
        with migration_lock("pooled"):
            pytest.fail("locked through the pooler")
    assert "DATABASE_DIRECT_URL" in str(caught.value)


def test_the_direct_connection_is_seen_in_this_thread_only_and_for_the_block(monkeypatch, tmp_path):
    import threading

    from django_appdb.direct import direct_connection
    from django_appdb.state import state

    usual = connections["inventory"]
    monkeypatch.setitem(state.direct, "inventory", {**connections.settings["inventory"], "OPTIONS": {"timeout": 7}})
    seen = {}
    with direct_connection("inventory") as wrapper:
        assert wrapper is not None and connections["inventory"] is wrapper
        assert wrapper.settings_dict["OPTIONS"] == {"timeout": 7}
        assert wrapper.settings_dict["NAME"] == connections.settings["inventory"]["NAME"]
        thread = threading.Thread(target=lambda: seen.update(options=connections["inventory"].settings_dict["OPTIONS"]))
        thread.start()
        thread.join()
    assert connections["inventory"] is usual
    assert seen["options"] != {"timeout": 7}
    assert wrapper.connection is None
    with direct_connection("orders") as none:
        assert none is None
