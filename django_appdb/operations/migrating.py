"""Run Django's ``migrate`` on every app database, one database after another.

Databases are migrated in order, ``default`` first. When one fails, the run
stops there: the databases migrated before it stay migrated (migrations on two
databases cannot share a transaction), and the ones after it are not touched.
Running again after fixing the cause picks up where it stopped, since
``migrate`` skips what is already applied.

Each database is migrated over its direct connection when it declares one
(:mod:`django_appdb.direct`), holding its migration lock
(:mod:`django_appdb.operations.locking`) for the whole of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

from django.core.management import call_command
from django.db import connections

from django_appdb.backends import describe_error
from django_appdb.dburls import mask_text
from django_appdb.direct import direct_connection
from django_appdb.operations.connections import standalone_connection
from django_appdb.operations.locking import DEFAULT_LOCK_TIMEOUT, LockResult, LockWait, migration_lock
from django_appdb.state import databases_by_alias, direct_settings

Outcome = Literal["migrated", "planned", "up-to-date", "unapplied"]


@dataclass(frozen=True)
class DatabaseMigration:
    """One database to migrate: its alias and the apps whose tables live there."""

    alias: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class MigrationResult:
    """What ``migrate`` did on one database."""

    alias: str
    labels: tuple[str, ...]
    outcome: Outcome
    #: Seconds spent waiting for another process's migration lock.
    waited: float = 0.0
    #: Whether it ran over the alias's direct connection.
    direct: bool = False


@dataclass
class MigrationOptions:
    """The ``migrate`` options passed through to every database."""

    app_label: str | None = None
    migration_name: str | None = None
    plan: bool = False
    check: bool = False
    fake: bool = False
    fake_initial: bool = False
    interactive: bool = True
    verbosity: int = 1
    #: Seconds to wait for another process's migration lock (0: do not wait).
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    extra: dict[str, Any] = field(default_factory=dict)


class UnreachableDatabaseError(Exception):
    """A database to migrate cannot be connected to, so nothing was migrated."""

    def __init__(self, alias: str, detail: str) -> None:
        self.alias = alias
        self.detail = detail
        super().__init__(f"cannot connect to database {alias!r} ({detail}). Nothing was migrated.")


class DatabaseMigrationError(Exception):
    """Migrating one database failed; the run stopped there.

    ``migrated`` lists the aliases migrated before it (they stay migrated),
    ``skipped`` the aliases not attempted.
    """

    def __init__(self, alias: str, cause: BaseException, migrated: Sequence[str], skipped: Sequence[str]) -> None:
        self.alias = alias
        self.migrated = list(migrated)
        self.skipped = list(skipped)
        detail = mask_text(" ".join(str(cause).split())) or type(cause).__name__
        message = f"migrating database {alias!r} failed: {detail.rstrip('.')}."
        if self.migrated:
            message += f" Already migrated, and left so: {', '.join(self.migrated)}."
        if self.skipped:
            message += f" Not attempted: {', '.join(self.skipped)}."
        super().__init__(message)


def migration_targets(app_label: str | None = None) -> list[DatabaseMigration]:
    """Return the databases to migrate, in order: all of them, or ``app_label``'s alone.

    Raise ``LookupError`` if ``app_label`` is not installed.
    """
    groups = databases_by_alias([app_label] if app_label else None)
    if app_label:
        return [DatabaseMigration(alias, (app_label,)) for alias in groups]
    return [DatabaseMigration(alias, tuple(labels)) for alias, labels in groups.items()]


def migrate_databases(
    options: MigrationOptions,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    on_database: Callable[[DatabaseMigration], None] | None = None,
    on_result: Callable[[MigrationResult], None] | None = None,
    on_lock_wait: Callable[[LockWait], None] | None = None,
) -> list[MigrationResult]:
    """Run ``migrate`` on each database of :func:`migration_targets`, in order.

    ``migrate`` writes to ``stdout``/``stderr``; ``on_database`` is called
    before each database and ``on_result`` after it. With ``options.check``
    every database is checked, and the ones with unapplied migrations get the
    outcome ``"unapplied"``.

    Every database is connected to first: one that cannot be reached raises
    :class:`UnreachableDatabaseError` before any is migrated (Django's own
    checks connect to some backends only, so they cannot be relied on for
    this). Raise :class:`DatabaseMigrationError` when a database fails,
    or when its migration lock cannot be taken within ``options.lock_timeout``
    (``on_lock_wait`` is called when another process holds it). ``--plan``
    and ``--check`` change nothing, and take no lock.
    """
    targets = migration_targets(options.app_label)
    unreachable = first_unreachable([target.alias for target in targets])
    if unreachable is not None:
        raise UnreachableDatabaseError(*unreachable)
    positional = [value for value in (options.app_label, options.migration_name) if value]
    results: list[MigrationResult] = []
    for index, target in enumerate(targets):
        if on_database is not None:
            on_database(target)
        changes = not (options.plan or options.check)
        lock = LockResult(target.alias, "none")
        direct = False
        try:
            with ExitStack() as stack:
                if changes:
                    lock = stack.enter_context(migration_lock(target.alias, options.lock_timeout, on_lock_wait))
                direct = stack.enter_context(direct_connection(target.alias)) is not None
                call_command(
                    "migrate",
                    *positional,
                    database=target.alias,
                    plan=options.plan,
                    check_unapplied=options.check,
                    fake=options.fake,
                    fake_initial=options.fake_initial,
                    interactive=options.interactive,
                    verbosity=options.verbosity,
                    stdout=stdout,
                    stderr=stderr,
                    **options.extra,
                )
        except SystemExit as exc:
            # ``migrate --check`` exits with 1 when migrations are unapplied.
            if not (options.check and exc.code not in (0, None)):
                raise
            outcome: Outcome = "unapplied"
        except Exception as exc:
            # --plan and --check change nothing, so nothing stays migrated.
            changed = [] if options.plan or options.check else [result.alias for result in results]
            raise DatabaseMigrationError(
                target.alias,
                exc,
                changed,
                [pending.alias for pending in targets[index + 1 :]],
            ) from exc
        else:
            outcome = "planned" if options.plan else "up-to-date" if options.check else "migrated"
        result = MigrationResult(target.alias, target.labels, outcome, lock.waited, direct)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def first_unreachable(aliases: Iterable[str], timeout: float = 5.0) -> tuple[str, str] | None:
    """Return the first of ``aliases`` whose database cannot be connected to, with why; or None.

    Each is tried through a private connection, closed afterwards, waiting at
    most about ``timeout`` seconds on PostgreSQL and MySQL.
    """
    for alias in aliases:
        try:
            with standalone_connection(alias, connect_timeout=timeout, direct=True) as wrapper:
                wrapper.ensure_connection()
        except Exception as exc:
            return alias, describe_error(exc, direct_settings(alias) or connections.settings[alias])
    return None
