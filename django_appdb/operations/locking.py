"""The migration lock: one process at a time migrates a database.

``appdb_migrate`` holds it for the whole migration of each database, so two
processes started together (two deploys, two containers running their
release step) never migrate the same database at once: the second waits, then
finds nothing to do. Per backend:

* PostgreSQL: a session advisory lock (``pg_advisory_lock``) on a private
  session of the direct connection, when the alias declares one. The key is
  derived from the database's name (advisory locks are per database already,
  so two databases never share one); the session's ``application_name`` tells
  a waiting process who holds it. A session lock through a pooler in
  transaction mode would be taken on one server connection and released on
  another, so such an alias needs a direct URL.
* MySQL and MariaDB: ``GET_LOCK`` on a private connection, named after the
  database.
* SQLite: an exclusive ``flock`` on a file next to the database file
  (``<file>.appdb-migrate.lock``); an in-memory database belongs to one
  process and takes none. Where ``fcntl`` does not exist (Windows), no lock.
* Other backends: no lock.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from django_appdb.backends import vendor_of
from django_appdb.dburls import sqlite_path
from django_appdb.direct import pooler
from django_appdb.operations.connections import standalone_connection
from django_appdb.state import direct_settings

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "LockResult",
    "LockWait",
    "MigrationLockError",
    "advisory_key",
    "migration_lock",
]

#: Seconds ``appdb_migrate`` waits for another process's migration of a database.
DEFAULT_LOCK_TIMEOUT = 300.0
_NAMESPACE = "django_appdb.migrate"
_POLL_SECONDS = 0.1
_CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class LockWait:
    """Another process holds the lock of ``alias``: ``holder`` says who, when the database tells."""

    alias: str
    holder: str | None


@dataclass
class LockResult:
    """What taking the lock of one database did."""

    alias: str
    kind: str
    waited: float = 0.0
    holder: str | None = None


class MigrationLockError(Exception):
    """The migration lock of a database could not be taken; nothing was migrated on it."""

    def __init__(self, alias: str, message: str) -> None:
        self.alias = alias
        super().__init__(message)


def advisory_key(name: str) -> int:
    """Return the PostgreSQL advisory lock key (a signed 64-bit integer) of the database ``name``."""
    digest = hashlib.sha256(f"{_NAMESPACE}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_name(name: str) -> str:
    """Return the MySQL ``GET_LOCK`` name of the database ``name`` (at most 64 characters)."""
    full = f"{_NAMESPACE}:{name}"
    if len(full) <= 64:
        return full
    return f"{_NAMESPACE}:{hashlib.sha256(name.encode()).hexdigest()[:40]}"


def _who() -> str:
    # PostgreSQL keeps 63 bytes of application_name.
    return f"appdb_migrate pid {os.getpid()} on {socket.gethostname()}"[:63]


def _timed_out(alias: str, seconds: float, holder: str | None) -> MigrationLockError:
    held = f", held by {holder}" if holder else ""
    return MigrationLockError(
        alias,
        f"could not take the migration lock of database {alias!r} within {seconds:g} s: another process is "
        f"migrating it{held}. Nothing was migrated on it. Wait for that migration to finish and run again, "
        "or give a longer --lock-timeout.",
    )


def _postgres_holder(cursor: Any, key: int) -> str | None:
    cursor.execute(
        "SELECT a.pid, a.application_name, a.client_addr, a.backend_start "
        "FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
        "AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) "
        "AND l.classid = %s AND l.objid = %s",
        [(key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF],
    )
    row = cursor.fetchone()
    if row is None:
        return None
    pid, application, address, started = row
    parts = [f"server process {pid}"]
    if application:
        parts.append(f"application {application!r}")
    if address:
        parts.append(f"from {address}")
    if started is not None:
        parts.append(f"connected since {started:%Y-%m-%d %H:%M:%S %Z}".rstrip())
    return ", ".join(parts)


@contextmanager
def _postgres(
    alias: str, wrapper: BaseDatabaseWrapper, timeout: float, on_wait: Callable[[LockWait], None] | None
) -> Iterator[LockResult]:
    from django.db import OperationalError

    name = str(wrapper.settings_dict.get("NAME") or "")
    key = advisory_key(name)
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT set_config('application_name', %s, false)", [_who()])
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        result = LockResult(alias, "postgresql advisory lock")
        if not cursor.fetchone()[0]:
            result.holder = _postgres_holder(cursor, key)
            if on_wait is not None:
                on_wait(LockWait(alias, result.holder))
            started = time.monotonic()
            if timeout <= 0:
                raise _timed_out(alias, timeout, result.holder)
            cursor.execute("SELECT set_config('lock_timeout', %s, false)", [f"{max(1, round(timeout * 1000))}ms"])
            try:
                cursor.execute("SELECT pg_advisory_lock(%s)", [key])
            except OperationalError as exc:
                # 55P03 lock_not_available: lock_timeout ran out.
                if getattr(exc.__cause__, "sqlstate", None) != "55P03":
                    raise
                raise _timed_out(alias, timeout, _postgres_holder(cursor, key) or result.holder) from None
            result.waited = time.monotonic() - started
        try:
            yield result
        finally:
            # Closing the session releases it too; unlocking says so at once.
            try:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
            except Exception:
                wrapper.close()


@contextmanager
def _mysql(
    alias: str, wrapper: BaseDatabaseWrapper, timeout: float, on_wait: Callable[[LockWait], None] | None
) -> Iterator[LockResult]:
    name = lock_name(str(wrapper.settings_dict.get("NAME") or ""))
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT GET_LOCK(%s, 0)", [name])
        result = LockResult(alias, "MySQL GET_LOCK")
        if cursor.fetchone()[0] != 1:
            cursor.execute("SELECT IS_USED_LOCK(%s)", [name])
            holder = cursor.fetchone()[0]
            result.holder = None if holder is None else f"connection {holder}"
            if on_wait is not None:
                on_wait(LockWait(alias, result.holder))
            started = time.monotonic()
            cursor.execute("SELECT GET_LOCK(%s, %s)", [name, max(0, timeout)])
            if cursor.fetchone()[0] != 1:
                raise _timed_out(alias, timeout, result.holder)
            result.waited = time.monotonic() - started
        try:
            yield result
        finally:
            try:
                cursor.execute("SELECT RELEASE_LOCK(%s)", [name])
            except Exception:
                wrapper.close()


@contextmanager
def _file_lock(
    alias: str, path: Path, timeout: float, on_wait: Callable[[LockWait], None] | None
) -> Iterator[LockResult]:
    try:
        import fcntl
    except ImportError:  # Windows
        yield LockResult(alias, "none (no fcntl on this platform)")
        return
    lock_path = path.with_name(f"{path.name}.appdb-migrate.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+", encoding="utf-8") as handle:
        result = LockResult(alias, f"file lock {lock_path}")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            result.holder = handle.read().strip() or None
            if on_wait is not None:
                on_wait(LockWait(alias, result.holder))
            started = time.monotonic()
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() - started >= timeout:
                        raise _timed_out(alias, timeout, result.holder) from None
                    time.sleep(_POLL_SECONDS)
            result.waited = time.monotonic() - started
        handle.seek(0)
        handle.truncate()
        handle.write(_who())
        handle.flush()
        try:
            yield result
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def migration_lock(
    alias: str, timeout: float = DEFAULT_LOCK_TIMEOUT, on_wait: Callable[[LockWait], None] | None = None
) -> Iterator[LockResult]:
    """Hold the migration lock of ``alias``'s database for the block; yield what taking it did.

    Wait at most ``timeout`` seconds for another process's lock (0: do not
    wait), calling ``on_wait`` once when the wait starts. Raise
    :class:`MigrationLockError` on timeout, naming the holder when the
    database tells, and for a PostgreSQL alias behind a transaction pooler
    with no direct URL.
    """
    vendor = vendor_of(alias)
    if vendor == "sqlite":
        path = sqlite_path(connections.settings[alias])
        if path is None:
            yield LockResult(alias, "none (in-memory SQLite)")
            return
        with _file_lock(alias, path, timeout, on_wait) as result:
            yield result
        return
    lockers = {"postgresql": _postgres, "mysql": _mysql}
    if vendor not in lockers:
        yield LockResult(alias, f"none ({vendor} has none)")
        return
    if vendor == "postgresql" and pooler(alias) == "pgbouncer-transaction" and direct_settings(alias) is None:
        raise MigrationLockError(
            alias,
            f"database {alias!r} is behind PgBouncer in transaction mode, where a session lock cannot be held: "
            "declare its direct URL (<APP_LABEL>_DATABASE_DIRECT_URL, DATABASE_DIRECT_URL in database.py, or "
            "settings.APPDB_DIRECT_URLS for an alias of settings.DATABASES). Nothing was migrated on it.",
        )
    with standalone_connection(alias, connect_timeout=_CONNECT_TIMEOUT, direct=True) as wrapper:
        with lockers[vendor](alias, wrapper, timeout, on_wait) as result:
            yield result
