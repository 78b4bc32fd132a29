"""``manage.py appdb_migrate``: run ``migrate`` on every app database."""

from __future__ import annotations

from argparse import ArgumentParser, ArgumentTypeError
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from django_appdb.backends import describe_error
from django_appdb.operations.locking import DEFAULT_LOCK_TIMEOUT, LockWait
from django_appdb.operations.migrating import (
    DatabaseMigration,
    DatabaseMigrationError,
    MigrationOptions,
    MigrationResult,
    UnreachableDatabaseError,
    first_unreachable,
    migrate_databases,
    migration_targets,
)


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise ArgumentTypeError(f"must be a number of seconds, 0 or more (got {value!r})")
    return seconds


def _databases(count: int) -> str:
    return "1 database" if count == 1 else f"{count} databases"


class Command(BaseCommand):
    help = (
        "Run migrate on every database the apps use, default first, each app's migrations on its own "
        "database only. Stops at the first database that fails; the databases migrated before it stay "
        "migrated, and running the command again resumes. Each database is migrated over its direct URL "
        "when it has one, holding a lock that makes another appdb_migrate of it wait."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("app_label", nargs="?", help="Only migrate this app, on its own database.")
        parser.add_argument(
            "migration_name",
            nargs="?",
            help='Bring the app to the state after this migration; "zero" unapplies all its migrations.',
        )
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="Do not prompt for input of any kind.",
        )
        parser.add_argument("--fake", action="store_true", help="Mark migrations as run without running them.")
        parser.add_argument(
            "--fake-initial", action="store_true", help="Fake-apply initial migrations whose tables already exist."
        )
        parser.add_argument(
            "--plan", action="store_true", help="Show the migration operations per database, and apply nothing."
        )
        parser.add_argument(
            "--check",
            action="store_true",
            dest="check_unapplied",
            help="Apply nothing; exit with status 1, naming the databases with unapplied migrations.",
        )
        parser.add_argument(
            "--lock-timeout",
            type=_seconds,
            default=DEFAULT_LOCK_TIMEOUT,
            metavar="SECONDS",
            help="How long to wait for another process migrating the same database before failing "
            f"(default {DEFAULT_LOCK_TIMEOUT:g}; 0: do not wait).",
        )

    def get_check_kwargs(self, options: Any) -> Any:
        # Like ``migrate``, also run the checks of the databases it touches.
        try:
            aliases = [target.alias for target in migration_targets(options["app_label"])]
        except LookupError:
            aliases = []
        kwargs = dict(super().get_check_kwargs(options))
        kwargs["databases"] = aliases
        return kwargs

    def check(self, *args: Any, **kwargs: Any) -> None:
        """Run the system checks; name the database if one cannot be reached."""
        try:
            super().check(*args, **kwargs)
        except DatabaseError as exc:
            unreachable = first_unreachable(kwargs.get("databases") or [])
            where = f"database {unreachable[0]!r}" if unreachable else "a database"
            raise CommandError(
                f"System checks could not use {where}: {describe_error(exc)}. Nothing was migrated."
            ) from exc

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = options["verbosity"]
        check = options["check_unapplied"]
        migration_options = MigrationOptions(
            app_label=options["app_label"],
            migration_name=options["migration_name"],
            plan=options["plan"],
            check=check,
            fake=options["fake"],
            fake_initial=options["fake_initial"],
            interactive=options["interactive"],
            verbosity=verbosity,
            lock_timeout=options["lock_timeout"],
            extra={"no_color": options["no_color"], "force_color": options["force_color"]},
        )

        def announce(target: DatabaseMigration) -> None:
            if verbosity >= 1:
                self.stdout.write(
                    f"Database {target.alias!r} (apps: {', '.join(target.labels)})", self.style.MIGRATE_HEADING
                )

        def waiting(wait: LockWait) -> None:
            if verbosity >= 1:
                held = f" (held by {wait.holder})" if wait.holder else ""
                self.stdout.write(
                    f"  Another process is migrating database {wait.alias!r}{held}: waiting up to "
                    f"{options['lock_timeout']:g} s for its migration lock."
                )

        def report(result: MigrationResult) -> None:
            if verbosity >= 1 and result.waited:
                self.stdout.write(f"  Waited {result.waited:.1f} s for the migration lock of {result.alias!r}.")
            if verbosity >= 1 and check:
                if result.outcome == "unapplied":
                    self.stdout.write("  Unapplied migrations.", self.style.ERROR)
                else:
                    self.stdout.write("  No unapplied migrations.")

        # ``migrate`` wraps the stream itself; handing it our wrapper would add
        # a line break after each "Applying ..." that it writes without one.
        stream = cast(TextIO, getattr(self.stdout, "_out", self.stdout))
        errors = cast(TextIO, getattr(self.stderr, "_out", self.stderr))
        try:
            results = migrate_databases(
                migration_options,
                stdout=stream,
                stderr=errors,
                on_database=announce,
                on_result=report,
                on_lock_wait=waiting,
            )
        except LookupError as exc:
            raise CommandError(exc.args[0]) from None
        except (UnreachableDatabaseError, DatabaseMigrationError) as exc:
            raise CommandError(str(exc)) from exc

        aliases = ", ".join(result.alias for result in results)
        unapplied = [result.alias for result in results if result.outcome == "unapplied"]
        if unapplied:
            raise CommandError(f"Unapplied migrations on {_databases(len(unapplied))}: {', '.join(unapplied)}.")
        if verbosity >= 1:
            if check:
                self.stdout.write(f"No unapplied migrations on {_databases(len(results))}: {aliases}.")
            elif options["plan"]:
                self.stdout.write(f"Planned {_databases(len(results))}: {aliases}.")
            else:
                self.stdout.write(f"Migrated {_databases(len(results))}: {aliases}.", self.style.SUCCESS)
