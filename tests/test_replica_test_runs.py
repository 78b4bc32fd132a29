"""Test runs of a project with read replicas declared: ``testproject/orders/replica_tests.py`` in child processes.

``ORDERS_DATABASE_REPLICA_URLS`` names the primary's own database (SQLite:
the same file; PostgreSQL: the same database), the replica becoming a test
mirror of the orders test database. Under ``manage.py test`` and pytest, a
``TestCase`` reads the rows it wrote and has them rolled back, and a
``TransactionTestCase`` that opts in with ``replica_routing()`` reads through
the replica's alias, which refuses writes. The real databases are never
created.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, child_env, run_manage

pytestmark = pytest.mark.subprocess

TESTPROJECT = ROOT / "testproject"
# Every test of the module, by runner: none may be skipped when the replica is declared.
UNITTEST_TESTS = 5
PYTEST_TESTS = 7


def sqlite_env(tmp_path: Path, replicas: bool = True) -> dict[str, str]:
    orders = f"sqlite:///{tmp_path / 'orders.sqlite3'}"
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'default.sqlite3'}",
        "INVENTORY_DATABASE_URL": f"sqlite:///{tmp_path / 'inventory.sqlite3'}",
        "NOTES_DATABASE_URL": f"sqlite:///{tmp_path / 'notes.sqlite3'}",
        "ORDERS_DATABASE_URL": orders,
    }
    env["ORDERS_DATABASE_REPLICA_URLS"] = orders if replicas else ""
    return env


def run_pytest(*args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:randomly", *args],
        cwd=TESTPROJECT,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def assert_manage_test_passed(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, output(result)
    assert f"Ran {UNITTEST_TESTS} tests" in result.stderr, output(result)
    assert re.search(r"^OK$", result.stderr, re.MULTILINE), output(result)
    assert "skipped" not in result.stderr, output(result)


def assert_pytest_passed(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, output(result)
    assert re.search(rf"\b{PYTEST_TESTS} passed\b", result.stdout), output(result)
    assert "skipped" not in result.stdout and "error" not in result.stdout.lower(), output(result)


def test_manage_py_test_with_a_sqlite_replica(tmp_path):
    result = run_manage("test", "--noinput", "-v", "2", "orders.replica_tests", cwd=TESTPROJECT, **sqlite_env(tmp_path))
    assert_manage_test_passed(result)
    assert "test_reads_go_through_the_replica_inside_replica_routing" in result.stderr
    assert list(tmp_path.iterdir()) == []  # no real database was created


def test_pytest_with_a_sqlite_replica(tmp_path):
    result = run_pytest("orders/replica_tests.py", **sqlite_env(tmp_path))
    assert_pytest_passed(result)
    assert "test_pytest_replica_routing PASSED" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_pytest_in_parallel_with_a_sqlite_replica(tmp_path):
    pytest.importorskip("xdist")
    result = run_pytest("-n", "2", "orders/replica_tests.py", **sqlite_env(tmp_path))
    assert_pytest_passed(result)


def test_without_the_variable_the_module_is_skipped(tmp_path):
    env = sqlite_env(tmp_path, replicas=False)
    result = run_pytest("orders/replica_tests.py", **env)
    assert result.returncode == 0, output(result)
    assert re.search(rf"\b{PYTEST_TESTS} skipped\b", result.stdout), output(result)
    result = run_manage("test", "--noinput", "orders.replica_tests", cwd=TESTPROJECT, **env)
    assert result.returncode == 0, output(result)
    # unittest says "OK (skipped=N)", or "NO TESTS RAN (skipped=N)" on the
    # Python 3.12 releases that report an all-skipped run that way.
    assert re.search(rf"\b(OK|NO TESTS RAN) \(skipped={UNITTEST_TESTS}\)", result.stderr), output(result)


def test_the_projects_own_suite_does_not_collect_it(tmp_path):
    result = run_pytest("--collect-only", "-q", **sqlite_env(tmp_path))
    assert result.returncode == 0, output(result)
    assert "isolation_test.py" in result.stdout and "test_isolation.py" in result.stdout  # it collected
    assert "replica_tests" not in result.stdout


def test_manage_py_test_with_a_postgresql_replica(pg_database):
    url = pg_database("replica_runs")
    env = {"ORDERS_DATABASE_URL": url, "ORDERS_DATABASE_REPLICA_URLS": url}
    result = run_manage("test", "--noinput", "-v", "2", "orders.replica_tests", cwd=TESTPROJECT, **env)
    assert_manage_test_passed(result)
    result = run_pytest("orders/replica_tests.py", **env)
    assert_pytest_passed(result)
