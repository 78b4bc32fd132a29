"""``manage.py appdb_check``: is every app database reachable?"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_appdb.operations.probing import DEFAULT_TIMEOUT, check_databases
from django_appdb.operations.textformat import format_table


class Command(BaseCommand):
    help = (
        "Connect to the database of every alias the apps use, run a trivial query, and print status and "
        "latency per alias. Exit with status 1, naming each database that did not answer."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("app_label", nargs="*", help="Only check the databases of these apps.")
        parser.add_argument("--json", action="store_true", help="Print a JSON array, one object per alias.")
        parser.add_argument(
            "--timeout",
            type=float,
            default=DEFAULT_TIMEOUT,
            help=f"Seconds to wait for each database before calling it unreachable (default {DEFAULT_TIMEOUT:g}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            statuses = check_databases(options["app_label"], timeout=options["timeout"])
        except (LookupError, ValueError) as exc:
            raise CommandError(exc.args[0]) from None
        if options["json"]:
            self.stdout.write(json.dumps([status.as_dict() for status in statuses], indent=2))
        else:
            rows = [
                [
                    status.alias if status.replica_of is None else f"  {status.alias}",
                    status.vendor,
                    status.status,
                    "-" if status.latency_ms is None else f"{status.latency_ms:.1f} ms",
                    ", ".join(status.labels)
                    if status.replica_of is None
                    else f"replica of {status.replica_of}"
                    + ("" if status.lag_seconds is None else f", lag {status.lag_seconds:.1f} s"),
                ]
                for status in statuses
            ]
            table = format_table(["ALIAS", "VENDOR", "STATUS", "LATENCY", "APPS"], rows)
            self.stdout.write(table[0], self.style.MIGRATE_HEADING)
            for status, line in zip(statuses, table[1:], strict=True):
                self.stdout.write(line, self.style.SUCCESS if status.ok else self.style.ERROR)
        failed = [status for status in statuses if not status.ok]
        if failed:
            details = "; ".join(f"{status.alias!r} ({status.url}): {status.error}" for status in failed)
            noun = "database" if len(failed) == 1 else "databases"
            raise CommandError(f"{len(failed)} {noun} unreachable: {details}")
