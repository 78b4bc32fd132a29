"""The SQLAlchemy engine registry: one engine per Django database alias, built on first use.

Modelled on Django's connection handler (``django.utils.connection``):
``engines["orders"]`` returns the sync engine of the ``orders`` alias,
building it from ``django.db.connections["orders"].settings_dict`` the first
time; an unknown alias raises :class:`EngineDoesNotExist`. Apps that share
an alias share its engine.

* **Follows Django.** A look-up checks that the alias's ``NAME`` is still the
  one the engine was built for (Django renames it when it creates and
  destroys the test databases) and otherwise disposes the engine and builds
  a new one. Every other setting is compared when the engine opens a
  connection: an engine whose settings Django no longer uses -- a reference
  kept from before, say -- refuses (:class:`StaleEngineError`) rather than
  reaching the old database, and the next look-up builds a new one.
* **Tests.** While a test run is active, the same connect-time check refuses
  a real database and an alias the running test did not declare
  (:mod:`django_appdb.testing.guard`), so no engine, session or factory kept
  from import time reaches a real database.
* **Threads.** Engines are shared by all threads; building one takes a
  lock, so 32 threads asking at once build exactly one.
* **Event loops.** An async engine's pooled connections belong to the event
  loop that opened them, so :data:`async_engines` keeps one engine per alias
  *per running loop*, and disposes it while that loop shuts down
  (``asyncio.run()`` and ``asgiref``'s ``async_to_sync`` both do this).
* **Fork.** A forked child never reuses the parent's pooled connections: its
  sync engines get fresh pools (``Engine.dispose(close=False)``, which leaves
  the parent's connections alone) and its async engines are forgotten.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import weakref
from collections.abc import Hashable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from django.apps import apps
from django.db import connections
from sqlalchemy import event
from sqlalchemy.engine import Engine

from django_appdb.conf import conf
from django_appdb.discovery import MODULE_NAME
from django_appdb.exceptions import AppDatabaseConfigError, EngineDoesNotExist, StaleEngineError
from django_appdb.sqlalchemy import dialects
from django_appdb.state import resolve_alias, state
from django_appdb.testing import guard

if TYPE_CHECKING:
    # Only for annotations: sqlalchemy.ext.asyncio needs greenlet, which sync
    # use never does. dialects.create() imports it when an async engine is built.
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "AsyncEngineHandler",
    "EngineHandler",
    "aclose_all_engines",
    "async_engines",
    "close_all_engines",
    "engines",
    "get_async_engine",
    "get_engine",
]

logger = logging.getLogger(__name__)

EngineT = TypeVar("EngineT", Engine, "AsyncEngine")

# The settings an engine is built from. A change to any of them, in place or
# by replacing the dict, makes the engine stale.
_KEYS = ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS", "CONN_HEALTH_CHECKS", "CONN_MAX_AGE")
_OPTIONS_INDEX = _KEYS.index("OPTIONS")

# How long close_all_engines() waits for another thread's event loop to
# close an engine's connections before giving up on closing them.
_CROSS_THREAD_TIMEOUT = 30.0


def _fingerprint(settings_dict: Mapping[str, Any]) -> tuple[Any, ...]:
    values = [settings_dict.get(key) for key in _KEYS]
    options = values[_OPTIONS_INDEX]
    if isinstance(options, dict):
        # A copy, so a later in-place edit of OPTIONS compares unequal.
        values[_OPTIONS_INDEX] = dict(options)
    return tuple(values)


def _module_of(label: str) -> str:
    try:
        return f"module {apps.get_app_config(label).name}.{MODULE_NAME}"
    except LookupError:
        return f"app {label!r}"


def engine_options(alias: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the global and the per-app SQLAlchemy engine options for ``alias``.

    The per-app options merge the ``SQLALCHEMY_ENGINE_OPTIONS`` of every app
    on the alias; two apps giving one key different values is an error,
    since they share one engine.
    """
    global_options = conf.SQLALCHEMY_ENGINE_OPTIONS
    if not isinstance(global_options.get("connect_args", {}), Mapping):
        raise AppDatabaseConfigError("*", "settings.APPDB_SQLALCHEMY_ENGINE_OPTIONS", "'connect_args' must be a dict.")
    merged: dict[str, Any] = {}
    merged_args: dict[str, Any] = {}
    owners: dict[str, str] = {}

    def put(target: dict[str, Any], slot: str, value: Any, name: str, label: str) -> None:
        if slot in target and target[slot] != value:
            # Values are not shown: connect_args may hold credentials.
            raise AppDatabaseConfigError(
                label,
                _module_of(label),
                f"SQLALCHEMY_ENGINE_OPTIONS {name} differs from app '{owners[name]}', which shares the "
                f"database alias {alias!r} and so the same engine.",
                "Give both apps the same value, or set it once in APPDB_SQLALCHEMY_ENGINE_OPTIONS.",
            )
        target[slot] = value
        owners.setdefault(name, label)

    for label, record in sorted(state.records.items()):
        if record.alias != alias:
            continue
        for key, value in record.engine_options.items():
            if key != "connect_args":
                put(merged, key, value, repr(key), label)
                continue
            if not isinstance(value, Mapping):
                raise AppDatabaseConfigError(
                    label, _module_of(label), "SQLALCHEMY_ENGINE_OPTIONS['connect_args'] must be a dict."
                )
            for arg, item in value.items():
                put(merged_args, arg, item, f"['connect_args'][{arg!r}]", label)
    if merged_args:
        merged["connect_args"] = merged_args
    return global_options, merged


class _Record:
    """One built engine, the settings it was built from, and what hangs off it."""

    __slots__ = ("alias", "engine", "fingerprint", "guard", "loop", "name", "settings", "watching")

    def __init__(
        self, alias: str, engine: Any, settings: Mapping[str, Any], loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        self.alias = alias
        self.engine = engine
        # The dict in connections.settings, which Django mutates in place.
        self.settings = settings
        self.fingerprint = _fingerprint(settings)
        # What the look-up's fast path compares: the NAME object built for.
        self.name = settings.get("NAME")
        self.loop = loop
        self.guard: Any = None
        self.watching = False

    def built_for(self) -> dict[str, Any]:
        """Return the settings the engine was built from."""
        return dict(zip(_KEYS, self.fingerprint, strict=True))

    def is_current(self) -> bool:
        """Return whether Django still uses the settings the engine was built from."""
        current = connections.settings.get(self.alias)
        return current is self.settings and _fingerprint(current) == self.fingerprint

    def __repr__(self) -> str:
        return f"<engine record {self.alias!r} {self.engine!r}>"


_handlers: weakref.WeakSet[_BaseEngineHandler[Any]] = weakref.WeakSet()
# Pools and loop guards inherited across fork, kept referenced so that the
# garbage collector never closes the parent's connections or wakes its loops.
_fork_orphans: list[Any] = []


class _BaseEngineHandler(Generic[EngineT]):
    """What the sync and async registries share: settings, building, option merging."""

    is_async = False
    exception_class = EngineDoesNotExist

    def __init__(self) -> None:
        self._records: dict[Hashable, _Record] = {}
        # Forgotten from inside their own connect event, so not disposed
        # then: the next close disposes of them, or PostgreSQL could not
        # drop a database they still hold a pooled connection to.
        self._stale: list[_Record] = []
        self._lock = threading.RLock()
        _handlers.add(self)

    @property
    def settings(self) -> Mapping[str, Mapping[str, Any]]:
        """Return Django's database settings by alias (``connections.settings``)."""
        return connections.settings

    def __iter__(self) -> Iterator[str]:
        return iter(connections.settings)

    def __contains__(self, alias: object) -> bool:
        return alias in connections.settings

    def __repr__(self) -> str:
        built = sorted({record.alias for record in self._records.values()})
        return f"<{type(self).__name__} built={built}>"

    def record(self, alias: str) -> _Record:
        """Return the alias's current engine record, building the engine if it has none or a stale one."""
        raise NotImplementedError

    def _refresh(self, key: Hashable, alias: str, loop: asyncio.AbstractEventLoop | None = None) -> _Record:
        """Return an up-to-date record for ``key``, building its engine if needed (slow path)."""
        with self._lock:
            record = self._records.get(key)
            if alias not in connections.settings:
                if record is not None:
                    # The alias was removed from Django's settings.
                    self._forget(key, record)
                raise self.exception_class(alias, list(connections.settings))
            connection = connections[alias]
            settings_dict = connections.settings[alias]
            if record is not None:
                if record.is_current():
                    # Another thread rebuilt it first, or NAME was replaced by
                    # an equal value: nothing changed.
                    record.name = settings_dict.get("NAME")
                    return record
                self._forget(key, record)
            engine = self.create_engine(alias, settings_dict, connection.vendor)
            record = _Record(alias, engine, settings_dict, loop)
            self._guard(key, record)
            self._records[key] = record
            self._adopt(key, record)
            return record

    def _forget(self, key: Hashable, record: _Record, *, dispose: bool = True) -> None:
        """Drop ``record`` if it is still the one registered for ``key``; dispose of its engine unless told not to."""
        with self._lock:
            if self._records.get(key) is not record:
                return
            del self._records[key]
            self._forgot(record)
            if not dispose:
                self._stale.append(record)
        if dispose:
            self._retire(record)

    def _forgot(self, record: _Record) -> None:
        """Drop what else refers to a forgotten record (the sync registry's label cache)."""

    def _guard(self, key: Hashable, record: _Record) -> None:
        """Check every connection the engine opens, and every check-out, before the driver is called.

        A kept reference to an engine whose settings Django no longer uses
        raises :class:`StaleEngineError`; during a test run, a real database
        and an alias the running test did not declare are refused. Being in
        the connect event, the check covers engines and session factories
        kept from import time, and creates nothing (not even an empty SQLite
        file). Connections already checked out finish their work.
        """
        # An AsyncEngine wraps a sync one; testing the attribute keeps
        # sqlalchemy.ext.asyncio unimported on the sync path.
        sync_engine = getattr(record.engine, "sync_engine", record.engine)
        shown = repr(sync_engine.url)  # SQLAlchemy masks the password
        alias = record.alias
        what = f"the SQLAlchemy engine {shown}"

        def before_connect(*args: Any) -> None:
            guard.check_access(alias, what)
            guard.check_real_database(alias, record.built_for(), what)
            if not record.is_current():
                # Not disposed from inside its own connect: it is stale, and
                # its pool goes with the last reference.
                self._forget(key, record, dispose=False)
                raise StaleEngineError(
                    f"django_appdb: this engine ({shown}) was built for settings that database alias {alias!r} no "
                    "longer has, so it opens no new connection. Call get_engine(), get_sessionmaker() or "
                    "get_app_session() again rather than keeping engines."
                )

        def on_checkout(*args: Any) -> None:
            guard.check_access(alias, what)

        event.listen(sync_engine, "do_connect", before_connect)
        event.listen(sync_engine, "checkout", on_checkout)

    def create_engine(self, alias: str, settings_dict: Mapping[str, Any], vendor: str) -> EngineT:
        """Return a new engine for ``alias`` from its Django settings and the engine options."""
        spec = dialects.derive_spec(alias, settings_dict, vendor, is_async=self.is_async)
        dialects.apply_options(spec, *engine_options(alias))
        logger.debug(
            "Creating %s engine for database alias %r: %r", "async" if self.is_async else "sync", alias, spec.url
        )
        return dialects.create(spec)  # type: ignore[return-value]

    def _adopt(self, key: Hashable, record: _Record) -> None:
        """Set up a freshly built record (the async registry watches its loop)."""

    def _retire(self, record: _Record) -> Any:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def close_all(self) -> None:
        raise NotImplementedError

    async def aclose_all(self) -> None:
        raise NotImplementedError

    def _after_fork_in_child(self) -> None:
        raise NotImplementedError


class EngineHandler(_BaseEngineHandler[Engine]):
    """Sync SQLAlchemy engines by Django database alias, built on first use."""

    def __init__(self) -> None:
        super().__init__()
        # App label -> record, for get_engine(); emptied whenever a record is
        # forgotten or the labels are routed anew.
        self._labels: dict[str, _Record] = {}

    def record(self, alias: str) -> _Record:
        record = self._records.get(alias)
        # The hot path: is the alias's NAME still the one the engine was
        # built for? The connect event compares everything else.
        if record is not None and record.settings.get("NAME") is record.name:
            return record
        return self._refresh(alias, alias)

    def _label_record(self, app_label: str) -> _Record:
        """Return the record of ``app_label``'s alias, remembering it for the label (slow path of get_engine)."""
        alias = resolve_alias(app_label)
        record = self.record(alias)
        with self._lock:
            if self._records.get(alias) is record:
                self._labels[app_label] = record
        return record

    def _forgot(self, record: _Record) -> None:
        self._labels.clear()

    def forget_labels(self) -> None:
        """Forget which alias each app label has (they were routed anew)."""
        with self._lock:
            self._labels.clear()

    def __getitem__(self, alias: str) -> Engine:
        """Return the engine of ``alias``; raise :class:`EngineDoesNotExist` for an unknown alias."""
        engine: Engine = self.record(alias).engine
        return engine

    def all(self, initialized_only: bool = False) -> list[Engine]:
        """Return the engine of every alias, or only those already built."""
        if initialized_only:
            return [record.engine for record in list(self._records.values())]
        return [self[alias] for alias in self]

    def _retire(self, record: _Record) -> None:
        record.engine.dispose()

    def close_all(self) -> None:
        """Close the pooled connections of every engine built so far.

        The engines stay registered, with their connect-time checks, and open
        new connections when next used. Nothing is opened.
        """
        with self._lock:
            records = [*self._records.values(), *self._stale]
            self._stale.clear()
        for record in records:
            record.engine.dispose()

    def reset(self) -> None:
        """Close every engine and forget it: the next look-up builds a new one (the engine options changed)."""
        with self._lock:
            records = [*self._records.values(), *self._stale]
            self._records.clear()
            self._stale.clear()
            self._labels.clear()
        for record in records:
            record.engine.dispose()

    async def aclose_all(self) -> None:
        """Do :meth:`close_all` in a worker thread, leaving the event loop free."""
        await asyncio.to_thread(self.close_all)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.RLock()
        # The parent's stale engines: their pools stay the parent's.
        _fork_orphans.extend(record.engine.pool for record in self._stale)
        self._stale.clear()
        for record in self._records.values():
            # The old pool stays referenced so that no finalizer in the child
            # ever touches the parent's connections; the child gets a new one.
            _fork_orphans.append(record.engine.pool)
            record.engine.dispose(close=False)


def _in_thread(function: Any) -> concurrent.futures.Future[Any]:
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def run() -> None:
        try:
            future.set_result(function())
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name="django_appdb-dispose").start()
    return future


# Tasks scheduled to dispose engines, kept alive until they finish.
_pending: set[asyncio.Task[Any]] = set()


class AsyncEngineHandler(_BaseEngineHandler["AsyncEngine"]):
    """Async SQLAlchemy engines by Django database alias, one per running event loop.

    Look-ups must happen inside a running event loop: a pooled async
    connection belongs to the loop that opened it. Each engine is disposed
    while its loop shuts down (``loop.shutdown_asyncgens()``, which
    ``asyncio.run()``, ``asyncio.Runner`` and ``asgiref`` call).
    """

    is_async = True

    def record(self, alias: str) -> _Record:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                f"django_appdb: the async SQLAlchemy engine of {alias!r} needs a running event loop, since "
                "its pooled connections belong to one loop. Get it from a coroutine (async def), or use the "
                "sync get_engine() outside event loops."
            ) from None
        key = (alias, loop)
        record = self._records.get(key)
        if record is not None and record.settings.get("NAME") is record.name:
            return record
        return self._refresh(key, alias, loop)

    def __getitem__(self, alias: str) -> AsyncEngine:
        """Return the engine of ``alias`` for the running loop; raise :class:`EngineDoesNotExist` if unknown."""
        engine: AsyncEngine = self.record(alias).engine
        return engine

    def all(self, initialized_only: bool = False) -> list[AsyncEngine]:
        """Return the engine of every alias for the running loop, or only those already built."""
        if initialized_only:
            loop = asyncio.get_running_loop()
            return [record.engine for record in list(self._records.values()) if record.loop is loop]
        return [self[alias] for alias in self]

    def _adopt(self, key: Hashable, record: _Record) -> None:
        self._prune_closed_loops()
        if getattr(record.loop, "_asyncgens_shutdown_called", False):
            # Built while the loop is already shutting down: too late to
            # watch it; close_all_engines() or the next build disposes it.
            return
        # An async generator started in the loop is closed by the loop's
        # shutdown_asyncgens() while the loop still runs: the one moment a
        # loop's connections can still be closed properly.
        guard = self._watch(key, record)
        record.guard = guard
        record.watching = True
        try:
            guard.__anext__().send(None)
        except StopIteration:
            pass

    async def _watch(self, key: Hashable, record: _Record) -> Any:
        try:
            yield
        finally:
            if record.watching:
                record.watching = False
                with self._lock:
                    if self._records.get(key) is record:
                        del self._records[key]
                await record.engine.dispose()

    def _prune_closed_loops(self) -> None:
        # Loops closed without shutdown_asyncgens() (loop.close() by hand).
        stale = [key for key, record in self._records.items() if record.loop is not None and record.loop.is_closed()]
        for key in stale:
            self._retire(self._records.pop(key))

    def _retire(self, record: _Record) -> concurrent.futures.Future[Any] | asyncio.Future[Any] | None:
        """Dispose of ``record``'s engine on a loop where its connections can be closed."""
        record.watching = False
        # Its loop finalizes the dropped guard, which now does nothing.
        record.guard = None
        engine = record.engine
        loop = record.loop
        if loop is None or loop.is_closed() or not loop.is_running():
            # psycopg and aiosqlite connections can be closed from any loop.
            return _in_thread(lambda: asyncio.run(engine.dispose()))
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            task = loop.create_task(engine.dispose())
            _pending.add(task)
            task.add_done_callback(_pending.discard)
            return task
        return asyncio.run_coroutine_threadsafe(engine.dispose(), loop)

    def _take_all(self) -> list[_Record]:
        with self._lock:
            records = [*self._records.values(), *self._stale]
            self._records.clear()
            self._stale.clear()
        return records

    def close_all(self) -> None:
        """Close the pooled connections of every async engine, on every loop, and forget the engines.

        Engines of a loop running in another thread are closed on that loop;
        those of the running loop (when called from sync code inside it) are
        closed by a task scheduled on it; the rest in a worker thread.
        """
        for record in self._take_all():
            outcome = self._retire(record)
            if isinstance(outcome, concurrent.futures.Future):
                try:
                    outcome.result(timeout=_CROSS_THREAD_TIMEOUT)
                except Exception as exc:
                    logger.warning("Could not close the async engine of %r: %r", record.alias, exc)

    def reset(self) -> None:
        """Close every async engine and forget it (the same as :meth:`close_all`)."""
        self.close_all()

    async def aclose_all(self) -> None:
        """Close the pooled connections of every async engine, on every loop, and forget the engines."""
        loop = asyncio.get_running_loop()
        for record in self._take_all():
            if record.loop is loop:
                record.watching = False
                record.guard = None
                await record.engine.dispose()
                continue
            outcome = self._retire(record)
            if isinstance(outcome, concurrent.futures.Future):
                try:
                    await asyncio.wrap_future(outcome)
                except Exception as exc:
                    logger.warning("Could not close the async engine of %r: %r", record.alias, exc)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.RLock()
        _fork_orphans.extend(record.engine.sync_engine.pool for record in self._stale)
        self._stale.clear()
        # The parent's loops cannot run in the child: forget their engines.
        for record in self._records.values():
            record.watching = False
            _fork_orphans.extend((record.guard, record.engine.sync_engine.pool))
            record.engine.sync_engine.dispose(close=False)
        self._records.clear()


engines = EngineHandler()
"""Sync SQLAlchemy engines by Django database alias: ``engines["orders"]``."""

async_engines = AsyncEngineHandler()
"""Async SQLAlchemy engines by Django database alias, for the running loop: ``async_engines["orders"]``."""


_labels = engines._labels


def get_engine(app_label: str) -> Engine:
    """Return the sync SQLAlchemy engine of ``app_label``'s database.

    ``"default"`` names the default database. Raise ``LookupError`` for a
    label that is not installed.
    """
    try:
        record = _labels[app_label]
        if record.settings["NAME"] is record.name:
            engine: Engine = record.engine
            return engine
    except KeyError:
        pass
    engine = engines._label_record(app_label).engine
    return engine


def get_async_engine(app_label: str) -> AsyncEngine:
    """Return the async SQLAlchemy engine of ``app_label``'s database, for the running event loop.

    Raise ``RuntimeError`` outside a running loop and ``LookupError`` for a
    label that is not installed.
    """
    engine: AsyncEngine = async_engines.record(resolve_alias(app_label)).engine
    return engine


def close_all_engines() -> None:
    """Close every pooled connection of every engine, sync and async.

    Callable from sync code, including at shutdown. Sync engines stay
    registered and connect again when next used; async engines, which belong
    to their event loop, are forgotten and rebuilt on next use.
    """
    for handler in list(_handlers):
        handler.close_all()


def reset_engines() -> None:
    """Close and forget every engine, sync and async: the next look-ups build new ones."""
    for handler in list(_handlers):
        handler.reset()


async def aclose_all_engines() -> None:
    """Close every pooled connection of every engine, sync and async, and forget the engines."""
    for handler in list(_handlers):
        await handler.aclose_all()


def after_fork_in_child() -> None:
    """Drop, in a forked child, every engine inherited from the parent without closing the parent's connections."""
    for handler in list(_handlers):
        handler._after_fork_in_child()
