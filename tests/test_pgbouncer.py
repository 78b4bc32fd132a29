"""Through the real PgBouncer, in transaction mode: what an app declared behind it needs, on both sides.

Run when ``APPDB_TEST_PGBOUNCER_URL`` is set (``eval "$(bash .ci/pgbouncer.sh env)"``);
when it is set but PgBouncer cannot be reached, the tests fail. Every
database a test touches is one it created for the run (directly, on
``APPDB_TEST_PGBOUNCER_DIRECT_URL``'s server) and drops afterwards, or a
``test_`` database Django's test runner derives from it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, child_env, postgres_databases, run_manage

pytestmark = [pytest.mark.pgbouncer, pytest.mark.subprocess]

PGBOUNCER_URL = os.environ.get("APPDB_TEST_PGBOUNCER_URL", "").strip()
DIRECT_URL = os.environ.get("APPDB_TEST_PGBOUNCER_DIRECT_URL", "").strip()
# The children run the test project's settings, never this suite's (inherited
# from pytest-django): those put orders on this run's PostgreSQL database, and
# a child's test run would drop this run's test database of it.
TESTPROJECT_SETTINGS = "testproject.settings"
MARKER = "appdb_pooler=pgbouncer-transaction"


@pytest.fixture
def behind_pgbouncer() -> Iterator[str]:
    """Create a database for the test and return its URL through PgBouncer (no marker); drop it afterwards."""
    if not PGBOUNCER_URL:
        pytest.skip("APPDB_TEST_PGBOUNCER_URL is not set (.ci/pgbouncer.sh start, then env)")
    if not DIRECT_URL:
        pytest.fail("APPDB_TEST_PGBOUNCER_URL is set but APPDB_TEST_PGBOUNCER_DIRECT_URL is not")
    import psycopg
    from sqlalchemy.engine import make_url

    try:
        with psycopg.connect(PGBOUNCER_URL, prepare_threshold=None, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.fail(f"APPDB_TEST_PGBOUNCER_URL is set, but PgBouncer cannot be reached: {exc}")
    with postgres_databases(DIRECT_URL) as create:
        name = make_url(create("pgb")).database
        yield make_url(PGBOUNCER_URL).set(database=name).render_as_string(hide_password=False)


def workload(tmp_path: Path, notes_url: str, *args: str) -> dict[str, Any]:
    env = child_env(
        DJANGO_SETTINGS_MODULE=TESTPROJECT_SETTINGS,
        DATABASE_URL=f"sqlite:///{tmp_path / 'default.sqlite3'}",
        NOTES_DATABASE_URL=notes_url,
    )
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "pgbouncer_workload.py"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    outcome: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return outcome


def test_an_app_declared_behind_pgbouncer_works_through_it(tmp_path, behind_pgbouncer):
    port = int(PGBOUNCER_URL.rsplit(":", 1)[1].split("/", 1)[0])
    outcome = workload(tmp_path, f"{behind_pgbouncer}?{MARKER}")
    assert outcome["setup"] == {"pooler": "pgbouncer-transaction", "port": port, "disable_server_side_cursors": True}
    assert outcome["orm"] == {"count": 2000, "iterated": [2000, 2000]}
    assert outcome["sqlalchemy_sync"] == {"counts": [2000], "pool": "NullPool"}
    assert outcome["repositories"] == {"got": 10, "count": 1 + 10 - 1, "renamed": "repo renamed"}
    assert outcome["threads"] == {"errors": [], "rows": 8 * 25}
    assert outcome["async_tasks"] == {"errors": [], "error_count": 0, "rows": 100 * 3}
    assert outcome["prepared"] == {"ok": True}


def test_without_the_marker_prepared_statements_break_through_pgbouncer(tmp_path, behind_pgbouncer):
    # The same statement on two connections: psycopg prepares it on the fifth
    # run, under the same name on each connection, and PgBouncer gives both
    # the one server connection it holds for this database.
    outcome = workload(tmp_path, behind_pgbouncer, "prepared")
    assert outcome["setup"]["pooler"] is None
    assert outcome["prepared"]["error"] in ("ProgrammingError", "OperationalError"), outcome
    assert "prepared statement" in outcome["prepared"]["message"]
    marked = workload(tmp_path, f"{behind_pgbouncer}?{MARKER}", "prepared")
    assert marked["prepared"] == {"ok": True}


def test_the_test_runner_creates_its_test_database_through_pgbouncer(tmp_path, behind_pgbouncer):
    result = run_manage(
        "test",
        "notes",
        "--noinput",
        cwd=tmp_path,
        DJANGO_SETTINGS_MODULE=TESTPROJECT_SETTINGS,
        DATABASE_URL=f"sqlite:///{tmp_path / 'default.sqlite3'}",
        NOTES_DATABASE_URL=f"{behind_pgbouncer}?{MARKER}",
    )
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stderr
    # Only the test database was written: the app's own database has no tables.
    import psycopg

    with psycopg.connect(behind_pgbouncer, prepare_threshold=None) as conn:
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    assert tables == []
