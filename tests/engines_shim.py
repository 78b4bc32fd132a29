"""TEMPORARY stand-ins for ``django_appdb.engines`` and ``django_appdb.sessions``.

REMOVE THIS FILE, and the ``engines_api`` fixtures that use it, once the engine
registry and sessions are part of the package. Until then ``installed()``
provides the same public functions, built on plain engines over the test
databases, so the repository tests can run. When the real modules exist it
installs nothing and the tests use them.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest
from sqlalchemy import Engine, NullPool, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

import django_appdb
from django_appdb.databases import alias_for
from tests.sa_engines import url_of


def real_api_available() -> bool:
    """Return whether the package ships its own engines and sessions modules."""
    return all(importlib.util.find_spec(f"django_appdb.{name}") is not None for name in ("engines", "sessions"))


@contextmanager
def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Provide ``django_appdb.engines``/``sessions`` for the duration of a test, unless they exist."""
    if real_api_available():
        yield
        return
    sync_engines: dict[str, Engine] = {}
    async_engines: dict[str, AsyncEngine] = {}

    def get_engine(app_label: str) -> Engine:
        alias = alias_for(app_label)
        if alias not in sync_engines:
            sync_engines[alias] = create_engine(url_of(alias), poolclass=NullPool)
        return sync_engines[alias]

    def get_async_engine(app_label: str) -> AsyncEngine:
        alias = alias_for(app_label)
        if alias not in async_engines:
            async_engines[alias] = create_async_engine(url_of(alias, asyncio=True), poolclass=NullPool)
        return async_engines[alias]

    def get_sessionmaker(app_label: str) -> sessionmaker[Session]:
        return sessionmaker(bind=get_engine(app_label), expire_on_commit=False)

    def get_async_sessionmaker(app_label: str) -> async_sessionmaker[AsyncSession]:
        return async_sessionmaker(bind=get_async_engine(app_label), expire_on_commit=False)

    @contextmanager
    def get_sync_app_session(app_label: str) -> Iterator[Session]:
        with get_sessionmaker(app_label)() as session:
            try:
                yield session
            except BaseException:
                session.rollback()
                raise
            session.commit()

    @asynccontextmanager
    async def get_app_session(app_label: str) -> AsyncIterator[AsyncSession]:
        async with get_async_sessionmaker(app_label)() as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            await session.commit()

    engines = types.ModuleType("django_appdb.engines")
    engines.get_engine = get_engine  # type: ignore[attr-defined]
    engines.get_async_engine = get_async_engine  # type: ignore[attr-defined]
    sessions = types.ModuleType("django_appdb.sessions")
    sessions.get_sessionmaker = get_sessionmaker  # type: ignore[attr-defined]
    sessions.get_async_sessionmaker = get_async_sessionmaker  # type: ignore[attr-defined]
    sessions.get_sync_app_session = get_sync_app_session  # type: ignore[attr-defined]
    sessions.get_app_session = get_app_session  # type: ignore[attr-defined]
    for name, module in (("engines", engines), ("sessions", sessions)):
        monkeypatch.setitem(sys.modules, f"django_appdb.{name}", module)
        monkeypatch.setattr(django_appdb, name, module, raising=False)
    try:
        yield
    finally:
        for engine in sync_engines.values():
            engine.dispose()
        for async_engine in async_engines.values():
            # NullPool keeps no connection, so nothing is left on any event loop.
            async_engine.sync_engine.dispose()
