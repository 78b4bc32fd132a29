"""Create the app databases that do not exist yet.

PostgreSQL and MySQL databases are created through a maintenance connection,
the way Django's test runner creates test databases (``_nodb_cursor``: the
``postgres`` database on PostgreSQL, no database on MySQL). SQLite creates its
file on first connection, so there is nothing to do beyond making sure the
file's directory exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from django.db import connections

from django_appdb.backends import describe_error, vendor_of
from django_appdb.dburls import sqlite_path
from django_appdb.operations.connections import standalone_connection
from django_appdb.state import databases_by_alias, direct_settings

DEFAULT_TIMEOUT = 10.0
# PostgreSQL truncates longer identifiers (NAMEDATALEN - 1 bytes).
_POSTGRES_MAX_NAME_BYTES = 63

Action = Literal["created", "exists", "would-create", "nothing-to-do", "unsupported", "error"]


@dataclass(frozen=True)
class CreationResult:
    """What creating one alias' database did (or, with ``dry_run``, would do)."""

    alias: str
    vendor: str
    labels: tuple[str, ...]
    name: str
    action: Action
    detail: str

    @property
    def failed(self) -> bool:
        """Return whether the database could not be checked or created."""
        return self.action == "error"

    def as_dict(self) -> dict[str, Any]:
        """Return the result as a JSON-ready dict."""
        return {
            "alias": self.alias,
            "vendor": self.vendor,
            "apps": list(self.labels),
            "name": self.name,
            "action": self.action,
            "detail": self.detail,
        }


def quote_identifier(name: str, quote: str = '"') -> str:
    """Return ``name`` quoted as an SQL identifier, doubling any quote inside it."""
    return f"{quote}{name.replace(quote, quote * 2)}{quote}"


@dataclass(frozen=True)
class _Outcome:
    action: Action
    detail: str


def _duplicate(exc: BaseException) -> bool:
    # 42P04 duplicate_database (PostgreSQL), 1007 ER_DB_CREATE_EXISTS (MySQL):
    # another process created it between our look-up and CREATE DATABASE.
    cause = exc.__cause__ or exc
    code = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    if code == "42P04":
        return True
    args: tuple[Any, ...] = getattr(cause, "args", ())
    return bool(args) and args[0] == 1007


def _create_server_database(
    alias: str, name: str, dry_run: bool, timeout: float, exists_sql: str, create_sql: str
) -> _Outcome:
    # Over the direct connection when the alias declares one: a pooler may not let CREATE DATABASE through.
    with (
        standalone_connection(alias, connect_timeout=timeout, direct=True) as wrapper,
        wrapper._nodb_cursor() as cursor,
    ):
        cursor.execute(exists_sql, [name])
        if cursor.fetchone() is not None:
            return _Outcome("exists", f"database {name!r} already exists")
        if dry_run:
            return _Outcome("would-create", f"would create database {name!r}")
        try:
            cursor.execute(create_sql)
        except Exception as exc:
            if _duplicate(exc):
                return _Outcome("exists", f"database {name!r} already exists")
            raise
        return _Outcome("created", f"created database {name!r}")


def _postgresql(alias: str, settings_dict: Mapping[str, Any], dry_run: bool, timeout: float) -> _Outcome:
    name = str(settings_dict.get("NAME") or "")
    if not name:
        return _Outcome("error", "NAME is empty: there is no database name to create")
    if len(name.encode()) > _POSTGRES_MAX_NAME_BYTES:
        return _Outcome("error", f"database name {name!r} is longer than PostgreSQL's 63 bytes")
    return _create_server_database(
        alias,
        name,
        dry_run,
        timeout,
        "SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s",
        f"CREATE DATABASE {quote_identifier(name)}",
    )


def _mysql(alias: str, settings_dict: Mapping[str, Any], dry_run: bool, timeout: float) -> _Outcome:
    name = str(settings_dict.get("NAME") or "")
    if not name:
        return _Outcome("error", "NAME is empty: there is no database name to create")
    return _create_server_database(
        alias,
        name,
        dry_run,
        timeout,
        "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s",
        f"CREATE DATABASE IF NOT EXISTS {quote_identifier(name, '`')}",
    )


def _sqlite(alias: str, settings_dict: Mapping[str, Any], dry_run: bool, timeout: float) -> _Outcome:
    path = sqlite_path(settings_dict)
    if path is None:
        return _Outcome("nothing-to-do", "nothing to do: an in-memory SQLite database")
    if path.exists():
        return _Outcome("nothing-to-do", f"nothing to do: SQLite file {path} exists")
    detail = f"nothing to do: SQLite creates {path} on first connection"
    if not path.parent.is_dir():
        if dry_run:
            return _Outcome("nothing-to-do", f"{detail}; would create directory {path.parent}")
        path.parent.mkdir(parents=True, exist_ok=True)
        detail = f"{detail}; created directory {path.parent}"
    return _Outcome("nothing-to-do", detail)


_CREATORS: dict[str, Callable[[str, Mapping[str, Any], bool, float], _Outcome]] = {
    "postgresql": _postgresql,
    "mysql": _mysql,
    "sqlite": _sqlite,
}


def create_databases(
    labels: Iterable[str] | None = None, *, dry_run: bool = False, timeout: float = DEFAULT_TIMEOUT
) -> list[CreationResult]:
    """Create the database of every alias (or of the apps given) that does not exist yet.

    Idempotent: an existing database is left alone. With ``dry_run``, only
    look. ``timeout`` bounds each maintenance connection, in seconds. A failure
    on one alias is reported in its result and does not stop the others.
    Return one :class:`CreationResult` per alias, ``default`` first. Raise
    ``LookupError`` for a label that is not installed.
    """
    results = []
    for alias, alias_labels in databases_by_alias(labels).items():
        settings_dict = connections.settings[alias]
        vendor = vendor_of(alias)
        name = str(settings_dict.get("NAME") or "")
        creator = _CREATORS.get(vendor)
        if creator is None:
            outcome = _Outcome("unsupported", f"creating {vendor} databases is not supported: create {name!r} by hand")
        else:
            try:
                outcome = creator(alias, settings_dict, dry_run, timeout)
            except Exception as exc:
                # Masking the password of the connection that failed: the direct one, if declared.
                outcome = _Outcome("error", describe_error(exc, direct_settings(alias) or settings_dict))
        results.append(CreationResult(alias, vendor, tuple(alias_labels), name, outcome.action, outcome.detail))
    return results
