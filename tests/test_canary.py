"""The real-database canary: the test project's suite, under every runner, leaves the real databases untouched.

Real databases for ``default``, ``inventory``, ``orders`` and ``notes`` are created
(SQLite files, or PostgreSQL databases named after APPDB_TEST_POSTGRES_URL's),
migrated with ``appdb_migrate``, and given a canary row each, written directly
with sqlite3 or psycopg. A child process first proves that, outside tests, the
ORM and SQLAlchemy reach exactly these databases (they see the canaries). Then
the test project's suite -- the ORM, SQLAlchemy engines, sync and async
sessions, repositories, the session on Django's connection and the pytest
fixtures -- runs against them with ``manage.py test`` and pytest, serially and
in parallel. Afterwards every table of every real database must hold exactly
the rows it held before: the canary, the migration records, nothing else.

The suite holds every way a test could reach a real database: the notes app's
tests, written like a third-party app's, declare no databases; the orders
app's isolation tests write through an engine and a session factory made at
import time, and through SQLAlchemy to aliases their test did not declare.
Runs of only the tests that declare no database (so that no test database is
set up at all), and runs whose ``default`` test database is named after the
real one, must leave the real databases untouched as well.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import POSTGRES_URL, ROOT, child_env, postgres_databases, run_manage, run_python

pytestmark = pytest.mark.subprocess

TESTPROJECT = ROOT / "testproject"
ENV_VARS = {
    "default": "DATABASE_URL",
    "inventory": "INVENTORY_DATABASE_URL",
    "orders": "ORDERS_DATABASE_URL",
    "notes": "NOTES_DATABASE_URL",
}
CANARY_PLACED_AT = datetime(2001, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
# One row per real database: (table, columns and values).
CANARIES: dict[str, tuple[str, dict[str, Any]]] = {
    "default": ("catalog_category", {"name": "CANARY default"}),
    "inventory": ("inventory_warehouse", {"code": "CANARY", "name": "CANARY inventory"}),
    "orders": (
        "orders_order",
        {
            "number": "CANARY",
            "customer_email": "canary@example.com",
            "placed_at": CANARY_PLACED_AT,
            "paid": True,
            "total": Decimal("99.99"),
        },
    ),
    "notes": ("notes_notebook", {"title": "CANARY notes"}),
}
# The test project's tests that write through SQLAlchemy, and who runs them.
SQLALCHEMY_TESTS = {
    "test_the_repository_and_sessions_use_the_orders_test_database": "both",
    "test_async_sessions_and_repository_use_the_orders_test_database": "both",
    "test_sqlalchemy_and_the_orm_see_each_others_rows": "both",
    "test_the_view_sums_the_stock_of_the_inventory_test_database": "both",
    "test_a_session_on_the_default_database_writes_to_its_test_database": "both",
    "test_sqlalchemy_shares_the_transaction_django_rolls_back": "pytest",
    "test_sessions_on_the_app_engines": "pytest",
    "test_an_async_session_on_the_app_engine": "pytest",
    "test_the_import_time_factory_first_then_a_fresh_look_up": "both",
    "test_a_fresh_look_up_first_then_the_import_time_factory": "both",
    "test_an_engine_kept_from_import_time_is_refused": "both",
    "test_sqlalchemy_is_refused_an_undeclared_alias_as_the_orm_is": "both",
    "test_sqlalchemy_is_refused_every_alias": "both",
    "test_an_unmarked_test_is_refused_every_alias": "pytest",
    "test_a_mark_without_the_alias_is_refused_it": "pytest",
}
# The tests that declare no database, run alone: no test database is set up.
NO_DATABASE_RUNS = {
    "manage.py test": ["manage.py", "test", "--noinput", "-v", "2", "orders.test_isolation.NoDatabaseTests"],
    "pytest": [
        "-m",
        "pytest",
        "-v",
        "orders/isolation_test.py::test_an_unmarked_test_is_refused_every_alias",
        "orders/test_isolation.py::NoDatabaseTests",
    ],
}
RUNNERS = {
    "manage.py test": ["manage.py", "test", "--noinput", "-v", "2"],
    "manage.py test --parallel 2": ["manage.py", "test", "--noinput", "-v", "2", "--parallel", "2"],
    "pytest": ["-m", "pytest", "-v"],
    "pytest -n 2": ["-m", "pytest", "-v", "-n", "2"],
}

Snapshot = dict[str, dict[str, list[str]]]


@dataclass
class RealDatabases:
    """The real databases of one backend, where to find them, and what they held before the runs."""

    backend: str
    locations: dict[str, str]  # alias -> SQLite path or PostgreSQL URL
    before: Snapshot

    @property
    def env(self) -> dict[str, str]:
        if self.backend == "sqlite":
            return {ENV_VARS[alias]: f"sqlite:///{path}" for alias, path in self.locations.items()}
        return {ENV_VARS[alias]: url for alias, url in self.locations.items()}

    def snapshot(self) -> Snapshot:
        """Return every row of every table of each real database, read directly."""
        return {alias: self._tables(location) for alias, location in self.locations.items()}

    def _tables(self, location: str) -> dict[str, list[str]]:
        if self.backend == "sqlite":
            # Read-only: reading must not create or change anything either.
            with closing(sqlite3.connect(f"file:{location}?mode=ro", uri=True)) as conn:
                names = [
                    row[0]
                    for row in conn.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                    )
                ]
                return {name: sorted(map(repr, conn.execute(f'SELECT * FROM "{name}"'))) for name in names}
        import psycopg

        with psycopg.connect(location) as conn:
            names = [row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
            return {name: sorted(map(repr, conn.execute(f'SELECT * FROM "{name}"'))) for name in names}

    def leftover_test_databases(self) -> list[str]:
        """Return the test databases derived from the real ones that still exist (PostgreSQL)."""
        if self.backend == "sqlite":
            return []
        import psycopg
        from sqlalchemy.engine import make_url

        names = [make_url(url).database for url in self.locations.values()]
        with psycopg.connect(self.locations["default"]) as conn:
            rows = conn.execute("SELECT datname FROM pg_database").fetchall()
        return sorted(row[0] for row in rows if any(row[0].startswith(f"test_{name}") for name in names))


def insert_canaries(backend: str, locations: dict[str, str]) -> None:
    for alias, (table, values) in CANARIES.items():
        columns = ", ".join(values)
        if backend == "sqlite":
            row = [str(value) if isinstance(value, Decimal) else value for value in values.values()]
            row = [value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else value for value in row]
            # The inner ``conn`` commits; ``closing`` closes, which the
            # connection's own context manager does not do.
            with closing(sqlite3.connect(locations[alias])) as conn, conn:
                conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * len(values))})", row)
        else:
            import psycopg

            with psycopg.connect(locations[alias]) as conn:
                conn.execute(
                    f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(values))})", list(values.values())
                )


# What the ORM and SQLAlchemy see outside tests, with the same environment.
SEEN_OUTSIDE_TESTS = """
    import json
    import django
    django.setup()
    from sqlalchemy import select
    from django_appdb import get_sync_app_session, table_for
    from catalog.models import Category
    from inventory.models import Warehouse
    from orders.models import Order
    seen = {}
    from notes.models import Notebook
    for label, model, field in [("catalog", Category, "name"), ("inventory", Warehouse, "code"),
                                ("orders", Order, "number"), ("notes", Notebook, "title")]:
        with get_sync_app_session(label) as session:
            through_sqlalchemy = sorted(session.scalars(select(table_for(model).c[field])))
        seen[label] = [sorted(model.objects.values_list(field, flat=True)), through_sqlalchemy]
    print(json.dumps(seen))
"""


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def real_databases(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealDatabases]:
    """Create, migrate and fill the real databases of one backend, shared by every runner's test."""
    backend = request.param
    if backend == "postgresql" and not POSTGRES_URL:
        pytest.skip("APPDB_TEST_POSTGRES_URL is not set")
    directory = tmp_path_factory.mktemp(f"canary_{backend}")
    with postgres_databases(POSTGRES_URL or "postgresql:///unused") as create:
        if backend == "sqlite":
            locations = {alias: str(directory / f"{alias}.sqlite3") for alias in ENV_VARS}
        else:
            locations = {alias: create(f"canary_{alias}") for alias in ENV_VARS}
        databases = RealDatabases(backend, locations, {})
        migrated = run_manage("appdb_migrate", "--noinput", cwd=directory, **project_env(databases))
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        insert_canaries(backend, locations)
        databases.before = databases.snapshot()
        seen = run_python(textwrap.dedent(SEEN_OUTSIDE_TESTS), cwd=directory, **project_env(databases))
        assert seen.returncode == 0, seen.stderr
        # Outside tests the ORM and SQLAlchemy reach exactly these databases.
        assert json.loads(seen.stdout) == {
            "catalog": [["CANARY default"]] * 2,
            "inventory": [["CANARY"]] * 2,
            "orders": [["CANARY"]] * 2,
            "notes": [["CANARY notes"]] * 2,
        }
        assert databases.snapshot() == databases.before
        yield databases


def project_env(databases: RealDatabases) -> dict[str, str]:
    return {**databases.env, "DJANGO_SETTINGS_MODULE": "testproject.settings"}


def run_suite(arguments: list[str], databases: RealDatabases, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, *arguments]
    if command[1] == "manage.py":
        command[1] = str(TESTPROJECT / "manage.py")
    return subprocess.run(
        command,
        cwd=TESTPROJECT,
        env=child_env(**{**project_env(databases), **env}),
        capture_output=True,
        text=True,
        timeout=600,
    )


def assert_untouched(databases: RealDatabases) -> None:
    after = databases.snapshot()
    for alias, (table, _) in CANARIES.items():
        assert len(after[alias][table]) == 1, (alias, after[alias][table])
    assert after == databases.before
    assert databases.leftover_test_databases() == []


def passed_sqlalchemy_tests(runner: str, output: str) -> set[str]:
    if runner.startswith("manage.py"):
        pattern = re.compile(r"^(test\w+) \([\w.]+\) \.\.\. ok$", re.MULTILINE)
    else:
        pattern = re.compile(r"::(?:\w+::)?(test\w+) PASSED|PASSED \S+::(?:\w+::)?(test\w+)")
    found = {name for match in pattern.finditer(output) for name in match.groups() if name}
    return found & set(SQLALCHEMY_TESTS)


# The test project's suite covers its async views, which need the async extra.
@pytest.mark.async_drivers
@pytest.mark.parametrize("runner", RUNNERS)
def test_the_suite_passes_and_leaves_the_real_databases_untouched(real_databases, runner):
    result = run_suite(RUNNERS[runner], real_databases)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    expected = {name for name, who in SQLALCHEMY_TESTS.items() if who == "both" or runner.startswith("pytest")}
    assert passed_sqlalchemy_tests(runner, output) == expected, output
    # The notes app's own tests, which declare no databases, ran and passed.
    assert output.count("notes") >= 10, output
    assert_untouched(real_databases)


@pytest.mark.parametrize("runner", NO_DATABASE_RUNS)
def test_tests_without_databases_set_nothing_up_and_reach_nothing(real_databases, runner):
    result = run_suite(NO_DATABASE_RUNS[runner], real_databases)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Creating test database" not in output and "test_sqlalchemy_is_refused_every_alias" in output, output
    assert_untouched(real_databases)


# A settings module whose default test database is the real default database.
TEST_NAME_IS_REAL = """
from testproject.settings import *  # noqa: F403
DATABASES["default"]["TEST"] = {"NAME": DATABASES["default"]["NAME"]}  # noqa: F405
"""


@pytest.mark.parametrize("runner", ["manage.py test", "pytest"])
def test_a_test_database_named_after_the_real_one_is_refused_before_anything_is_dropped(
    real_databases, runner, tmp_path
):
    (tmp_path / "real_test_name.py").write_text(TEST_NAME_IS_REAL)
    arguments = RUNNERS[runner] + (["--ds", "real_test_name"] if runner == "pytest" else [])
    env = {
        "DJANGO_SETTINGS_MODULE": "real_test_name",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT), str(TESTPROJECT)]),
    }
    result = run_suite(arguments, real_databases, **env)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "django_appdb: refusing to set up the test database" in output, output
    assert "(django_appdb.E007)" in output
    assert_untouched(real_databases)


def test_the_snapshot_sees_a_single_changed_row(tmp_path):
    path = tmp_path / "real.sqlite3"
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO t (name) VALUES ('CANARY')")
    databases = RealDatabases("sqlite", {"default": str(path)}, {})
    before = databases.snapshot()
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE t SET name = 'CANARY!'")
    assert databases.snapshot() != before
    assert Path(path).exists()
