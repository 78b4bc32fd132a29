"""Shared fixtures for django-appdb's tests."""

from __future__ import annotations

import importlib
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

POSTGRES_URL = os.environ.get("APPDB_TEST_POSTGRES_URL", "").strip()


@pytest.fixture
def postgres_url() -> str:
    """Return APPDB_TEST_POSTGRES_URL, skipping the test only when it is unset."""
    if not POSTGRES_URL:
        pytest.skip("APPDB_TEST_POSTGRES_URL is not set")
    return POSTGRES_URL


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


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None) -> Iterator[None]:
    """Close SQLAlchemy's pooled connections before the test databases are destroyed.

    PostgreSQL refuses to drop a database that still has sessions.
    """
    yield
    engines = sys.modules.get("django_appdb.engines")
    if engines is not None:
        engines.close_all_engines()
