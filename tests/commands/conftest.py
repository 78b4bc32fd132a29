"""Fixtures for the ``appdb_*`` commands and the system checks.

Subprocess tests run the test project's ``manage.py`` against the checkout
under test, with every app database redirected to files under ``tmp_path`` (or
to PostgreSQL databases these fixtures create and drop), so no project
database is ever touched.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

if TYPE_CHECKING:
    import psycopg

ROOT = Path(__file__).resolve().parents[2]
MANAGE = ROOT / "testproject" / "manage.py"


def project_env(*extra_paths: Path, settings: str = "testproject.settings", **variables: str) -> dict[str, str]:
    """Return an environment for ``manage.py``: this checkout first on the path, no inherited database URL."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith("DATABASE_URL") and key != "DJANGO_SETTINGS_MODULE"
    }
    env["PYTHONPATH"] = os.pathsep.join(str(path) for path in (ROOT, ROOT / "testproject", *extra_paths))
    env["DJANGO_SETTINGS_MODULE"] = settings
    env.update(variables)
    return env


def run_manage(env: dict[str, str], *args: str, returncode: int = 0) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py *args`` and assert its exit status; return the finished process."""
    result = subprocess.run(
        [sys.executable, str(MANAGE), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == returncode, (
        f"manage.py {' '.join(args)} exited with {result.returncode}, expected {returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result


def call_output(command: str, *args: str) -> str:
    """Run a management command in this process with ``call_command``; return what it wrote to stdout."""
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def sqlite_project(tmp_path: Path) -> Callable[..., dict[str, str]]:
    """Return a factory of ``manage.py`` environments with every app database a file in ``tmp_path``."""

    def factory(*extra_paths: Path, **variables: str) -> dict[str, str]:
        urls = {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'default.sqlite3'}",
            "INVENTORY_DATABASE_URL": f"sqlite:///{tmp_path / 'inventory.sqlite3'}",
            "ORDERS_DATABASE_URL": f"sqlite:///{tmp_path / 'orders.sqlite3'}",
        }
        return project_env(*extra_paths, **{**urls, **variables})

    return factory


@pytest.fixture
def closed_port() -> int:
    """Return a port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """Return a port on 127.0.0.1 that accepts TCP connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


class PostgresDatabases:
    """Create and drop throw-away PostgreSQL databases named after APPDB_TEST_POSTGRES_URL's database."""

    def __init__(self, url: str) -> None:
        import psycopg.conninfo

        self.url = url
        parts = urlsplit(url)
        self.base = parts.path.lstrip("/")
        self._parts = parts
        self.maintenance = psycopg.conninfo.make_conninfo(url, dbname="postgres")
        self.token = uuid.uuid4().hex[:6]
        self.names: list[str] = []

    def name(self, suffix: str) -> str:
        """Return a database name unique to this test, and remember it for dropping."""
        name = f"{self.base}_{self.token}_{suffix}"
        self.names.append(name)
        return name

    def url_for(self, name: str, password: str | None = None) -> str:
        """Return APPDB_TEST_POSTGRES_URL pointing at database ``name`` (optionally with a password)."""
        netloc = self._parts.netloc
        if password is not None:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.split(':', 1)[0]}:{quote(password, safe='')}@{host}"
        return urlunsplit((self._parts.scheme, netloc, "/" + quote(name), "", ""))

    def connect(self, name: str | None = None) -> psycopg.Connection[Any]:
        """Return an autocommit psycopg connection to ``name`` (default: the maintenance database)."""
        import psycopg

        conninfo = self.maintenance if name is None else psycopg.conninfo.make_conninfo(self.url, dbname=name)
        return psycopg.connect(conninfo, autocommit=True)

    def exists(self, name: str) -> bool:
        """Return whether database ``name`` exists."""
        with self.connect() as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None

    def tables(self, name: str) -> set[str]:
        """Return the table names in the public schema of database ``name``."""
        with self.connect(name) as conn:
            rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
        return {row[0] for row in rows}

    def drop_all(self) -> None:
        """Drop every database this object named."""
        from psycopg import sql

        with self.connect() as conn:
            for name in self.names:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def pg_databases(postgres_url: str) -> Iterator[PostgresDatabases]:
    """Yield a :class:`PostgresDatabases`; drop its databases afterwards."""
    databases = PostgresDatabases(postgres_url)
    try:
        yield databases
    finally:
        databases.drop_all()
