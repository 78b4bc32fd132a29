"""``manage.py appdb_createdb``: create the app databases that do not exist yet."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_appdb.operations.creating import DEFAULT_TIMEOUT, create_databases
from django_appdb.operations.textformat import format_table


class Command(BaseCommand):
    help = (
        "Create the database of every alias the apps use, if it does not exist yet: CREATE DATABASE through "
        "a maintenance connection on PostgreSQL and MySQL; nothing to do on SQLite, which creates its file "
        "on first connection. Safe to run again."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("app_label", nargs="*", help="Only create the databases of these apps.")
        parser.add_argument("--dry-run", action="store_true", help="Only show which databases would be created.")
        parser.add_argument("--json", action="store_true", help="Print a JSON array, one object per alias.")
        parser.add_argument(
            "--timeout",
            type=float,
            default=DEFAULT_TIMEOUT,
            help=f"Seconds to wait for each maintenance connection (default {DEFAULT_TIMEOUT:g}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["timeout"] > 0:
            raise CommandError(f"--timeout must be a positive number of seconds, got {options['timeout']!r}.")
        try:
            results = create_databases(options["app_label"], dry_run=options["dry_run"], timeout=options["timeout"])
        except LookupError as exc:
            raise CommandError(exc.args[0]) from None
        if options["json"]:
            self.stdout.write(json.dumps([result.as_dict() for result in results], indent=2))
        else:
            table = format_table(
                ["ALIAS", "VENDOR", "RESULT"], [[result.alias, result.vendor, result.detail] for result in results]
            )
            self.stdout.write(table[0], self.style.MIGRATE_HEADING)
            styles = {"error": self.style.ERROR, "created": self.style.SUCCESS}
            for result, line in zip(results, table[1:], strict=True):
                self.stdout.write(line, styles.get(result.action))
        failed = [result for result in results if result.failed]
        if failed:
            details = "; ".join(f"{result.alias!r}: {result.detail}" for result in failed)
            raise CommandError(f"Could not create {len(failed)} of {len(results)} databases: {details}")
