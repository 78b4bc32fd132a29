"""Plain SQLAlchemy engines on the test databases, for tests that need no engine registry.

Built from ``django.db.connections[alias].settings_dict``, so they reach the
test database Django created (``test_<name>``, or SQLite's shared in-memory
``file:memorydb_<alias>``), never a real one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from django.db import connections
from sqlalchemy import Engine, NullPool, create_engine
from sqlalchemy.engine import URL

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


def url_of(alias: str, *, asyncio: bool = False) -> URL:
    """Return the SQLAlchemy URL of ``alias``'s current (test) database."""
    settings_dict = connections[alias].settings_dict
    vendor = connections[alias].vendor
    name = str(settings_dict["NAME"])
    assert "test" in name or "memorydb" in name, f"{alias!r} is not a test database: {name!r}"
    if vendor == "sqlite":
        path, _, query = name.partition("?")
        options = dict(parse_qsl(query))
        if path.startswith("file:"):
            options["uri"] = "true"
        return URL.create("sqlite+aiosqlite" if asyncio else "sqlite+pysqlite", database=path, query=options)
    if vendor == "postgresql":
        port = settings_dict.get("PORT")
        return URL.create(
            "postgresql+psycopg",
            username=settings_dict.get("USER") or None,
            password=settings_dict.get("PASSWORD") or None,
            host=settings_dict.get("HOST") or None,
            port=int(port) if port else None,
            database=name,
        )
    raise NotImplementedError(f"no test engine for {vendor}")


@contextmanager
def sync_engine(alias: str) -> Iterator[Engine]:
    """Yield an engine on ``alias``'s test database, disposed afterwards."""
    engine = create_engine(url_of(alias), poolclass=NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


def async_engine(alias: str) -> AsyncEngine:
    """Return an async engine on ``alias``'s test database that pools nothing (safe across event loops)."""
    # Imported here: sqlalchemy.ext.asyncio needs greenlet, which the sync tests run without.
    from sqlalchemy.ext.asyncio import create_async_engine

    return create_async_engine(url_of(alias, asyncio=True), poolclass=NullPool)
