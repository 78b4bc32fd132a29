"""SQLAlchemy sessions bound to each app's database, sync and async.

``get_app_session(label)`` and ``get_sync_app_session(label)`` are units of
work: they commit when the block exits cleanly, roll back when it raises,
and always close the session, returning its connection to the pool.

Session factories are built once per alias with ``expire_on_commit=False``,
so objects loaded in a block stay readable after it has committed and
closed (an async session cannot lazily reload them). A factory binds each
session it makes to the alias's engine at that moment, so a factory kept
from import time follows Django to its test databases, and an async one
works in every event loop.

Only the async names import ``sqlalchemy.ext.asyncio``, on first use: it
needs greenlet, which the sync side never does.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from django.db import DEFAULT_DB_ALIAS, connections
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from django_appdb import replicas
from django_appdb.sqlalchemy import dialects
from django_appdb.sqlalchemy.engines import _BaseEngineHandler, async_engines, engines
from django_appdb.state import resolve_alias, state

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

__all__ = [
    "AppSession",
    "AppSessionmaker",
    "AsyncAppSession",
    "get_app_session",
    "get_async_sessionmaker",
    "get_session",
    "get_sessionmaker",
    "get_sync_app_session",
]

SESSION_OPTIONS: dict[str, Any] = {"expire_on_commit": False}

# A replica that cannot be reached: a DBAPI error (SQLAlchemy wraps the driver's) or the socket's own.
_PROBE_ERRORS: tuple[type[BaseException], ...] = (DBAPIError, OSError)


def _probe(alias: str) -> float | None:
    """Check a connection out of ``alias``'s engine (pinged: replicas have health checks); return its lag when due."""
    engine = engines.record(alias).engine
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql" and replicas.health.lag_due(alias, time.monotonic()):
            return float(connection.exec_driver_sql(replicas.LAG_SQL).scalar() or 0)
    return None


async def _async_probe(alias: str) -> float | None:
    """The same as :func:`_probe`, on the alias's async engine."""
    engine = async_engines.record(alias).engine
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql" and replicas.health.lag_due(alias, time.monotonic()):
            return float((await connection.exec_driver_sql(replicas.LAG_SQL)).scalar() or 0)
    return None


# Closes of async sessions still running after their task was cancelled.
_closing: set[asyncio.Future[None]] = set()


class _AliasBound:
    """What both factories add to SQLAlchemy's: an alias, and each session bound to its current engine.

    ``bind`` given to the call or to ``configure()`` wins, as with any
    ``sessionmaker``.
    """

    kw: dict[str, Any]
    alias: str

    @staticmethod
    def _handler() -> _BaseEngineHandler[Any]:
        raise NotImplementedError

    def __init__(self, alias: str, **options: Any) -> None:
        cast(Any, super()).__init__(**{**SESSION_OPTIONS, **options})
        self.alias = alias

    def __call__(self, **local_kw: Any) -> Any:
        """Return a new session on the alias's engine (for the running event loop, when async)."""
        if local_kw.get("bind") is None and self.kw.get("bind") is None:
            local_kw["bind"] = self._handler().record(self.alias).engine
        return cast(Any, super()).__call__(**local_kw)


class AppSessionmaker(_AliasBound, sessionmaker[Session]):
    """A ``sessionmaker`` for one database alias, binding each session to the alias's engine when it is made."""

    @staticmethod
    def _handler() -> _BaseEngineHandler[Any]:
        return engines


@functools.cache
def _async_sessionmaker_class() -> Callable[[str], async_sessionmaker[AsyncSession]]:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    class AsyncAppSessionmaker(_AliasBound, async_sessionmaker[AsyncSession]):
        """An ``async_sessionmaker`` for one alias, binding each session to its engine for the running loop."""

        @staticmethod
        def _handler() -> _BaseEngineHandler[Any]:
            return async_engines

    AsyncAppSessionmaker.__module__ = __name__
    return AsyncAppSessionmaker


# Factories by alias, and by app label for get_sessionmaker()'s fast path;
# the label caches are emptied when the apps are routed anew.
_makers: dict[str, AppSessionmaker] = {}
_async_makers: dict[str, async_sessionmaker[AsyncSession]] = {}
_label_makers: dict[str, AppSessionmaker] = {}
_label_async_makers: dict[str, async_sessionmaker[AsyncSession]] = {}


def forget_labels() -> None:
    """Forget the session factories cached by app label (the labels' aliases may have changed)."""
    _label_makers.clear()
    _label_async_makers.clear()


def sessionmaker_for(alias: str) -> AppSessionmaker:
    """Return the alias's session factory, built once."""
    maker = _makers.get(alias)
    if maker is None:
        # Two threads may both build one; the first stored wins.
        maker = _makers.setdefault(alias, AppSessionmaker(alias))
    return maker


def async_sessionmaker_for(alias: str) -> async_sessionmaker[AsyncSession]:
    """Return the alias's async session factory, built once; raise ``MissingDriverError`` first if it cannot work."""
    maker = _async_makers.get(alias)
    if maker is None:
        # Report a missing greenlet or async driver for this alias, naming
        # the extra to install, before sqlalchemy.ext.asyncio is imported.
        if alias in connections.settings:
            dialects.driver_for(connections[alias].vendor, True, alias=alias, settings_dict=connections.settings[alias])
        maker = _async_makers.setdefault(alias, _async_sessionmaker_class()(alias))
    return maker


def get_sessionmaker(app_label: str) -> sessionmaker[Session]:
    """Return the ``sessionmaker`` of ``app_label``'s database (``"default"`` for the default).

    Every session it makes is bound to the engine the alias has at that
    moment, so a factory made at import time reaches the test database in
    tests. Raise ``LookupError`` for a label that is not installed.
    """
    maker = _label_makers.get(app_label)
    if maker is None:
        maker = _label_makers.setdefault(app_label, sessionmaker_for(resolve_alias(app_label)))
    return maker


def get_async_sessionmaker(app_label: str) -> async_sessionmaker[AsyncSession]:
    """Return the ``async_sessionmaker`` of ``app_label``'s database.

    Every session it makes is bound to the alias's engine for the running
    event loop, so one factory serves every loop (make sessions inside a
    coroutine). Raise ``LookupError`` for a label that is not installed.
    """
    maker = _label_async_makers.get(app_label)
    if maker is None:
        maker = _label_async_makers.setdefault(app_label, async_sessionmaker_for(resolve_alias(app_label)))
    return maker


class _UnitOfWork:
    """What both units of work share: one alias (or a replica of it), one session at a time."""

    __slots__ = ("_alias", "_replica", "_session")

    def __init__(self, alias: str, replica: bool = False) -> None:
        self._alias = alias
        self._replica = replica
        self._session: Any = None

    def _primary(self) -> str | None:
        """Return the primary for a writing session (pinned, as the router pins a write); None: choose a replica."""
        if self._replica and self._alias in state.replicas:
            return None
        if self._alias in state.replicas:
            replicas.pin(self._alias)
        return self._alias

    def _begin(self, maker: Callable[[], Any], again: str) -> Any:
        if self._session is not None:
            raise RuntimeError(f"This app session is already in use; call {again}() again.")
        self._session = session = maker()
        return session

    def _end(self) -> Any:
        session, self._session = self._session, None
        assert session is not None
        return session

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._alias!r}>"


class AsyncAppSession(_UnitOfWork):
    """An async unit of work on one database: commit on success, roll back on error, always close."""

    __slots__ = ()

    async def __aenter__(self) -> AsyncSession:
        alias = self._primary() or await replicas.aread_alias(self._alias, _async_probe, _PROBE_ERRORS)
        session: AsyncSession = self._begin(async_sessionmaker_for(alias), "get_app_session")
        return session

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        session: AsyncSession = self._end()
        try:
            if exc_type is None:
                try:
                    await session.commit()
                except BaseException:
                    await session.rollback()
                    raise
            else:
                await session.rollback()
        finally:
            # Shielded, as SQLAlchemy's own AsyncSession.__aexit__ does: a
            # cancel scope that cancels again at every await of the clean-up
            # (anyio's, a TaskGroup's) would otherwise stop the close halfway
            # and leave the connection checked out, in its transaction.
            closing = asyncio.ensure_future(session.close())
            # Kept referenced until done: the loop holds tasks only weakly.
            _closing.add(closing)
            closing.add_done_callback(_closing.discard)
            await asyncio.shield(closing)


class AppSession(_UnitOfWork):
    """A sync unit of work on one database: commit on success, roll back on error, always close."""

    __slots__ = ()

    def __enter__(self) -> Session:
        alias = self._primary() or replicas.read_alias(self._alias, _probe, _PROBE_ERRORS)
        session: Session = self._begin(sessionmaker_for(alias), "get_sync_app_session")
        return session

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        session: Session = self._end()
        # The same steps as __aexit__, without the awaits.
        try:
            if exc_type is None:
                try:
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise
            else:
                session.rollback()
        finally:
            session.close()


def get_app_session(app_label: str, *, replica: bool = False) -> AsyncAppSession:
    """Return an async context manager yielding an ``AsyncSession`` on ``app_label``'s database.

    ``async with get_app_session("orders") as session:`` commits when the
    block exits cleanly, rolls back when it raises, and always closes the
    session. Raise ``LookupError`` at once for a label that is not installed.

    With ``replica=True`` the session reads from one of the database's read
    replicas, chosen, pinned and fallen back from exactly as the router's
    reads are (the primary when the context wrote to it, or when no replica
    answers); writes through it fail. Without, a session on a database that
    has replicas pins it for the rest of the context, as a write does.
    """
    return AsyncAppSession(resolve_alias(app_label), replica)


def get_sync_app_session(app_label: str, *, replica: bool = False) -> AppSession:
    """Return a context manager yielding a ``Session`` on ``app_label``'s database.

    The sync counterpart of :func:`get_app_session`, with the same commit,
    rollback and close behaviour, and the same ``replica`` option.
    """
    return AppSession(resolve_alias(app_label), replica)


def get_session() -> AsyncAppSession:
    """Return ``get_app_session("default")``: an async unit of work on the default database.

    A thin alias, kept because the design log names it.
    """
    return AsyncAppSession(DEFAULT_DB_ALIAS)
