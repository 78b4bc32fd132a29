"""Shared fixtures for django-appdb's tests."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

POSTGRES_URL = os.environ.get("APPDB_TEST_POSTGRES_URL", "").strip()

# pytester runs the pytest plugin's own tests in child pytest processes; the replica tests share fixtures.
pytest_plugins = ["pytester", "tests.replica_fixtures"]


def pytest_configure(config: pytest.Config) -> None:
    """Use this checkout's pytest plugin when no installed entry point has loaded it (a checkout run in place)."""
    from django_appdb.testing import pytest_plugin

    if not config.pluginmanager.is_registered(pytest_plugin):
        config.pluginmanager.register(pytest_plugin, "django_appdb")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs PostgreSQL (postgres_url, replication fixtures), so that ``-m`` can deselect it."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "postgres_url" in fixtures and item.get_closest_marker("postgres") is None:
            item.add_marker(pytest.mark.postgres)
        if "replication" in fixtures and item.get_closest_marker("replication") is None:
            item.add_marker(pytest.mark.replication)


@pytest.fixture
def postgres_url() -> str:
    """Return APPDB_TEST_POSTGRES_URL, skipping the test only when it is unset."""
    if not POSTGRES_URL:
        pytest.skip("APPDB_TEST_POSTGRES_URL is not set")
    return POSTGRES_URL


@pytest.fixture
def replication() -> Iterator[Any]:
    """Return the primary and streaming replica of ``.ci/replication.sh`` (a ``tests.replication_cluster.Cluster``).

    Skipped only when APPDB_TEST_REPLICA_PRIMARY_URL is unset; when it is set,
    an unreachable cluster fails the test. The test holds the cluster alone,
    and the replica is running and replaying again afterwards.
    """
    from tests.replication_cluster import PRIMARY_URL, Cluster

    if not PRIMARY_URL:
        pytest.skip("APPDB_TEST_REPLICA_PRIMARY_URL is not set (.ci/replication.sh start, then env)")
    cluster = Cluster.from_environ()
    if not cluster.pgdata.is_dir():
        pytest.fail(f"APPDB_TEST_REPLICA_PRIMARY_URL is set, but there is no replica in {cluster.pgdata}")
    with cluster.locked():
        try:
            yield cluster
        finally:
            cluster.restore()


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., SimpleNamespace]]:
    """Return a factory for throw-away app packages, optionally with a database.py.

    The result quacks like an AppConfig (label, name, module), which is all
    discovery needs.
    """
    sys.path.insert(0, str(tmp_path))
    created: list[str] = []

    def factory(label: str, database_py: str | None = None) -> SimpleNamespace:
        name = f"appdb_tmp_{label}_{uuid.uuid4().hex[:8]}"
        package = tmp_path / name
        package.mkdir()
        (package / "__init__.py").write_text("")
        if database_py is not None:
            (package / "database.py").write_text(database_py)
        importlib.invalidate_caches()
        module = importlib.import_module(name)
        created.append(name)
        return SimpleNamespace(label=label, name=name, module=module)

    yield factory
    sys.path.remove(str(tmp_path))
    for name in created:
        for key in [key for key in sys.modules if key == name or key.startswith(name + ".")]:
            del sys.modules[key]


ROOT = Path(__file__).resolve().parent.parent


def child_env(**overrides: str | None) -> dict[str, str]:
    """Return an environment for a child Python that imports this checkout.

    ``*_DATABASE_URL`` variables of the parent are dropped so a child never
    reaches a database the test did not choose; pass ``NAME=None`` to unset.
    """
    env = {key: value for key, value in os.environ.items() if not key.endswith("_DATABASE_URL")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "testproject"), env.get("PYTHONPATH", "")])
    env.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_python(code: str, *, cwd: Path, timeout: float = 120, **env: str | None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child Python with :func:`child_env`."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=child_env(**env), capture_output=True, text=True, timeout=timeout
    )


def run_manage(*args: str, cwd: Path, timeout: float = 180, **env: str | None) -> subprocess.CompletedProcess[str]:
    """Run ``testproject/manage.py`` in a child process with :func:`child_env`."""
    return subprocess.run(
        [sys.executable, str(ROOT / "testproject" / "manage.py"), *args],
        cwd=cwd,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def sqlite_tables(path: Path) -> set[str]:
    """Return the table names in a SQLite file, read directly."""
    import sqlite3

    # closing(): sqlite3's own context manager ends the transaction but leaves the connection open.
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        return {row[0] for row in rows}


@contextmanager
def postgres_databases(postgres_url: str) -> Iterator[Callable[[str], str]]:
    """Yield a factory that creates a fresh PostgreSQL database and returns its URL; drop them all on exit.

    Names derive from ``postgres_url``'s database name. Test databases Django
    derived from them (``test_<name>...``) and left behind are dropped too.
    Nothing connects, and psycopg is not needed, until a database is created.
    """
    from sqlalchemy.engine import make_url

    base = make_url(postgres_url)
    created: list[str] = []
    maintenance = base.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)

    def factory(suffix: str) -> str:
        import psycopg

        name = f"{base.database}_{suffix}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return base.set(drivername="postgresql", database=name).render_as_string(hide_password=False)

    try:
        yield factory
    finally:
        if created:
            _drop_databases(maintenance, created)


def _drop_databases(maintenance: str, created: list[str]) -> None:
    """Drop the databases ``postgres_databases`` created, and the test databases Django derived from them."""
    import psycopg

    with psycopg.connect(maintenance, autocommit=True) as conn:
        for name in created:
            derived = conn.execute(
                "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", [f"test_{name}"]
            ).fetchall()
            for (leftover,) in derived:
                conn.execute(f'DROP DATABASE IF EXISTS "{leftover}" WITH (FORCE)')
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_database(postgres_url: str) -> Iterator[Callable[[str], str]]:
    """Return a factory that creates a fresh PostgreSQL database and returns its URL.

    Names derive from APPDB_TEST_POSTGRES_URL's database name; every database
    created is dropped afterwards.
    """
    with postgres_databases(postgres_url) as factory:
        yield factory


def pg_tables(url: str) -> set[str]:
    """Return the table names in a PostgreSQL database's public schema, read directly."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {row[0] for row in rows}


@pytest.fixture
def unblocked(django_db_blocker: Any) -> Iterator[None]:
    """Allow database access in a test of scratch aliases on temporary files, which no test runner sets up."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def add_alias() -> Iterator[Callable[..., str]]:
    """Return a factory adding a database alias to ``connections`` for one test."""
    from django.conf import settings
    from django.db import connections

    added: list[str] = []

    def factory(alias: str, **settings_dict: Any) -> str:
        both = {id(connections.settings): connections.settings, id(settings.DATABASES): settings.DATABASES}
        for databases in both.values():
            databases[alias] = dict(settings_dict)
            # Fill in Django's defaults (TEST, OPTIONS, ...) in place.
            connections.configure_settings(databases)
        added.append(alias)
        return alias

    yield factory
    for alias in added:
        if hasattr(connections._connections, alias):
            connections[alias].close()
            del connections[alias]
        connections.settings.pop(alias, None)
        settings.DATABASES.pop(alias, None)
