"""The connection budget: the most connections the project can open on each server, against the server's limit.

Per alias and per process, the worst case is:

* Django: one connection per thread (persistent or not, a thread holds at
  most one at a time), or, with Django's native pool (``OPTIONS["pool"]``),
  the pool's ``max_size``, shared by the process's threads;
* SQLAlchemy, sync: ``pool_size + max_overflow`` of the alias's engine, one
  engine per process (one per thread with ``NullPool``);
* SQLAlchemy, async: the same per event loop, counting one event loop per
  thread (``async_to_sync`` in a threaded server; an ASGI worker is one thread).

Replicas are aliases on servers of their own; an alias behind a connection
pooler counts against the pooler, not the server. The server's side
(``max_connections``, the reserved slots, the connections in use now) is read
through a private connection that is closed afterwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from django.db import connections

from django_appdb.backends import describe_error, vendor_of
from django_appdb.dburls import identity
from django_appdb.nativepool import pool_max_size
from django_appdb.operations.connections import standalone_connection
from django_appdb.state import databases_by_alias, pooler_of, state

__all__ = ["SQLALCHEMY_CHOICES", "Budget", "ServerBudget", "connection_budget"]

#: Which SQLAlchemy engines the budget counts.
SQLALCHEMY_CHOICES = ("none", "sync", "async", "both")
#: SQLAlchemy's ``QueuePool`` defaults.
DEFAULT_POOL_SIZE = 5
DEFAULT_MAX_OVERFLOW = 10

ServerStatus = Literal["ok", "over", "unreachable", "unknown", "not applicable"]

_PG_SQL = (
    "SELECT current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int, "
    "coalesce(current_setting('reserved_connections', true), '0')::int, "
    "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
)
#: MySQL and MariaDB: the limit (SUPER has one connection beyond it), then the connections now.
_MYSQL_SQL = "SELECT @@max_connections, 0, 0"
_MYSQL_IN_USE = "SHOW GLOBAL STATUS LIKE 'Threads_connected'"


def _pooler(alias: str) -> str | None:
    return pooler_of(alias)


@dataclass(frozen=True)
class AliasUsage:
    """The most connections one alias opens in one process, by what opens them."""

    alias: str
    server: str
    apps: tuple[str, ...]
    replica_of: str | None
    #: ``"pool"`` (Django's native pool) or ``"per thread"``.
    django_kind: str
    django: int
    sqlalchemy_sync: int
    sqlalchemy_async: int
    notes: tuple[str, ...] = ()

    @property
    def per_process(self) -> int:
        """Return the worst case of one process."""
        return self.django + self.sqlalchemy_sync + self.sqlalchemy_async

    def as_dict(self, processes: int) -> dict[str, Any]:
        """Return the usage as a JSON-ready dict."""
        return {
            "alias": self.alias,
            "server": self.server,
            "apps": list(self.apps),
            "replica_of": self.replica_of,
            "django": {"kind": self.django_kind, "per_process": self.django},
            "sqlalchemy_sync": self.sqlalchemy_sync,
            "sqlalchemy_async": self.sqlalchemy_async,
            "per_process": self.per_process,
            "worst_case": self.per_process * processes,
            "notes": list(self.notes),
        }


@dataclass
class ServerBudget:
    """One server's limit, and the worst case of the aliases on it."""

    server: str
    vendor: str
    #: ``"server"``, ``"pooler"`` (a connection pooler in front of one) or ``"file"`` (SQLite).
    kind: str
    aliases: list[AliasUsage] = field(default_factory=list)
    processes: int = 1
    max_connections: int | None = None
    reserved: int | None = None
    in_use: int | None = None
    error: str | None = None

    @property
    def applicable(self) -> bool:
        """Return whether connections count here at all (not for SQLite files)."""
        return self.kind != "file"

    @property
    def per_process(self) -> int | None:
        """Return the worst case of one process, None where it does not apply."""
        return sum(usage.per_process for usage in self.aliases) if self.applicable else None

    @property
    def worst_case(self) -> int | None:
        """Return the worst case of every process together."""
        per_process = self.per_process
        return None if per_process is None else per_process * self.processes

    @property
    def available(self) -> int | None:
        """Return the connections ordinary users may open: ``max_connections`` less the reserved ones."""
        if self.max_connections is None:
            return None
        return self.max_connections - (self.reserved or 0)

    @property
    def status(self) -> ServerStatus:
        """Return ``over`` when the worst case exceeds the available connections."""
        if not self.applicable:
            return "not applicable"
        if self.error is not None:
            return "unreachable"
        available, worst = self.available, self.worst_case
        if available is None or worst is None:
            return "unknown"
        return "over" if worst > available else "ok"

    @property
    def warning(self) -> str | None:
        """Return the warning to print when over budget, else None."""
        if self.status != "over":
            return None
        return (
            f"{self.server}: the worst case, {self.worst_case} connections ({self.per_process} per process x "
            f"{self.processes}), exceeds the {self.available} available (max_connections {self.max_connections}"
            f" - {self.reserved} reserved). Lower --processes/--threads or the pools' sizes, put a connection "
            "pooler in front, or raise max_connections."
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the server's budget as a JSON-ready dict."""
        return {
            "server": self.server,
            "vendor": self.vendor,
            "kind": self.kind,
            "aliases": [usage.alias for usage in self.aliases],
            "per_process": self.per_process,
            "worst_case": self.worst_case,
            "max_connections": self.max_connections,
            "reserved": self.reserved,
            "available": self.available,
            "in_use": self.in_use,
            "status": self.status,
            "error": self.error,
        }


@dataclass
class Budget:
    """The connection budget of the project for ``processes`` processes of ``threads`` threads."""

    processes: int
    threads: int
    sqlalchemy: str
    servers: list[ServerBudget]

    @property
    def over_budget(self) -> bool:
        """Return whether any server's worst case exceeds its limit."""
        return any(server.status == "over" for server in self.servers)

    @property
    def unreachable(self) -> list[ServerBudget]:
        """Return the servers whose limit could not be read."""
        return [server for server in self.servers if server.status == "unreachable"]

    def as_dict(self) -> dict[str, Any]:
        """Return the budget as a JSON-ready dict (the schema ``docs/commands.md`` documents)."""
        return {
            "processes": self.processes,
            "threads": self.threads,
            "sqlalchemy": self.sqlalchemy,
            "over_budget": self.over_budget,
            "servers": [server.as_dict() for server in self.servers],
            "aliases": [usage.as_dict(self.processes) for server in self.servers for usage in server.aliases],
        }


def _engine_cap(alias: str, threads: int, notes: list[str]) -> int:
    """Return the most connections one SQLAlchemy engine of ``alias`` opens."""
    from sqlalchemy import pool

    from django_appdb.sqlalchemy.engines import engine_options

    options: dict[str, Any] = {}
    for layer in engine_options(alias):
        options.update(layer)
    poolclass = options.get("poolclass")
    if isinstance(poolclass, type):
        if issubclass(poolclass, (pool.NullPool, pool.SingletonThreadPool)):
            return threads
        if issubclass(poolclass, (pool.StaticPool, pool.AssertionPool)):
            return 1
    size = int(options.get("pool_size", DEFAULT_POOL_SIZE))
    overflow = int(options.get("max_overflow", DEFAULT_MAX_OVERFLOW))
    if size <= 0 or overflow < 0:
        notes.append("SQLAlchemy pool without a limit: counted as one connection per thread")
        return max(size, threads)
    return size + overflow


def _server_of(alias: str, settings_dict: Mapping[str, Any]) -> tuple[tuple[Any, ...], str, str]:
    """Return the server an alias's connections count against: a key, its name to show, and its kind."""
    key = identity(settings_dict, physical=True)
    if key is None or vendor_of(alias) == "sqlite":
        name = f"sqlite {settings_dict.get('NAME') or ':memory:'}"
        return ((name,), name, "file")
    host = str(settings_dict.get("HOST") or "") or "local socket"
    port = key[2]
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    pooler = _pooler(alias)
    if pooler:
        return ((*key[:3], pooler), f"{shown} ({pooler})", "pooler")
    return (key[:3], shown, "server")


def _usage(
    alias: str,
    server: str,
    apps: tuple[str, ...],
    replica_of: str | None,
    threads: int,
    sqlalchemy: str,
    counted: bool = True,
) -> AliasUsage:
    if not counted:
        return AliasUsage(alias, server, apps, replica_of, "not applicable", 0, 0, 0)
    settings_dict = connections.settings[alias]
    notes: list[str] = []
    pool = (settings_dict.get("OPTIONS") or {}).get("pool")
    max_size = pool_max_size(pool)
    if max_size is not None:
        django_kind, django = "pool", max_size
    else:
        django_kind, django = "per thread", threads
    sync = async_ = 0
    if sqlalchemy != "none":
        cap = _engine_cap(alias, threads, notes)
        sync = cap if sqlalchemy in ("sync", "both") else 0
        async_ = cap * threads if sqlalchemy in ("async", "both") else 0
    return AliasUsage(alias, server, apps, replica_of, django_kind, django, sync, async_, tuple(notes))


class _Query(threading.Thread):
    """Read one server's limit and its connections in use, through a private connection."""

    def __init__(self, server: ServerBudget, alias: str, timeout: float) -> None:
        super().__init__(name=f"appdb-budget-{alias}", daemon=True)
        self.server = server
        self.alias = alias
        self.timeout = timeout
        self.row: tuple[Any, ...] | None = None
        self.error: str | None = None

    def run(self) -> None:
        try:
            with standalone_connection(self.alias, connect_timeout=self.timeout) as wrapper:
                with wrapper.cursor() as cursor:
                    if self.server.vendor == "postgresql":
                        cursor.execute(_PG_SQL)
                        self.row = tuple(cursor.fetchone() or ())
                    else:
                        cursor.execute(_MYSQL_SQL)
                        limits = tuple(cursor.fetchone() or ())
                        cursor.execute(_MYSQL_IN_USE)
                        status = cursor.fetchone()
                        self.row = (*limits, status[1] if status else None) if limits else ()
        except Exception as exc:
            self.error = describe_error(exc, connections.settings[self.alias])


def connection_budget(
    labels: Iterable[str] | None = None,
    *,
    processes: int = 1,
    threads: int = 1,
    sqlalchemy: str = "sync",
    timeout: float = 5.0,
) -> Budget:
    """Return the connection budget of every alias the apps use (or those of ``labels``), replicas included.

    Raise ``ValueError`` for a count below 1, an unknown ``sqlalchemy``
    choice or a timeout that is not positive; ``LookupError`` for a label
    that is not installed.
    """
    for name, value in (("processes", processes), ("threads", threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"--{name} must be a whole number of at least 1, got {value!r}.")
    if sqlalchemy not in SQLALCHEMY_CHOICES:
        raise ValueError(f"--sqlalchemy must be one of {', '.join(SQLALCHEMY_CHOICES)}, got {sqlalchemy!r}.")
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}.")
    servers: dict[tuple[Any, ...], ServerBudget] = {}
    first_alias: dict[tuple[Any, ...], str] = {}
    for primary, apps in databases_by_alias(labels).items():
        for alias in (primary, *state.replicas.get(primary, ())):
            key, name, kind = _server_of(alias, connections.settings[alias])
            server = servers.setdefault(key, ServerBudget(name, vendor_of(alias), kind, processes=processes))
            first_alias.setdefault(key, alias)
            replica_of = None if alias == primary else primary
            usage = _usage(alias, server.server, tuple(apps), replica_of, threads, sqlalchemy, kind != "file")
            server.aliases.append(usage)
    queries = [
        _Query(server, first_alias[key], timeout)
        for key, server in servers.items()
        if server.kind == "server" and server.vendor in ("postgresql", "mysql")
    ]
    for query in queries:
        query.start()
    deadline = time.monotonic() + timeout
    for query in queries:
        query.join(max(0.0, deadline - time.monotonic()))
        server = query.server
        if query.is_alive():
            server.error = f"no answer within {timeout:g} s"
        elif query.error is not None or not query.row:
            server.error = query.error or "no answer"
        else:
            max_connections, superuser, reserved, in_use = query.row
            server.max_connections = int(max_connections)
            server.reserved = int(superuser) + int(reserved)
            # None where the server does not say (MySQL without performance_schema).
            server.in_use = None if in_use is None else int(in_use)
    return Budget(processes, threads, sqlalchemy, list(servers.values()))
