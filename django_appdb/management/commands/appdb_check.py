"""``manage.py appdb_check``: is every app database reachable? With ``--connections``: the connection budget."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_appdb.operations.budget import SQLALCHEMY_CHOICES, Budget, connection_budget
from django_appdb.operations.probing import DEFAULT_TIMEOUT, check_databases
from django_appdb.operations.textformat import format_table

#: Exit statuses of ``--connections``.
OVER_BUDGET = 1
UNREACHABLE = 2


class Command(BaseCommand):
    help = (
        "Connect to the database of every alias the apps use, run a trivial query, and print status and "
        "latency per alias. Exit with status 1, naming each database that did not answer. With --connections, "
        "print the connection budget per server instead: exit 1 when a server's worst case exceeds its limit, "
        "2 when a server could not be asked."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("app_label", nargs="*", help="Only check the databases of these apps.")
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print JSON: an array, one object per alias (with --connections: one object, the budget).",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=DEFAULT_TIMEOUT,
            help=f"Seconds to wait for each database before calling it unreachable (default {DEFAULT_TIMEOUT:g}).",
        )
        parser.add_argument(
            "--connections",
            action="store_true",
            help="Print the connection budget: per server, its limit, the connections in use, and the worst case.",
        )
        parser.add_argument(
            "--processes", type=int, default=1, help="With --connections: worker processes (default 1)."
        )
        parser.add_argument(
            "--threads", type=int, default=1, help="With --connections: threads per process (default 1)."
        )
        parser.add_argument(
            "--sqlalchemy",
            choices=SQLALCHEMY_CHOICES,
            default="sync",
            help="With --connections: which SQLAlchemy engines to count (default sync; async counts one event "
            "loop per thread).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["connections"]:
            self._budget(options)
            return
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

    def _budget(self, options: dict[str, Any]) -> None:
        try:
            budget = connection_budget(
                options["app_label"],
                processes=options["processes"],
                threads=options["threads"],
                sqlalchemy=options["sqlalchemy"],
                timeout=options["timeout"],
            )
        except (LookupError, ValueError) as exc:
            raise CommandError(exc.args[0]) from None
        if options["json"]:
            self.stdout.write(json.dumps(budget.as_dict(), indent=2))
        else:
            self._print_budget(budget)
        if budget.over_budget:
            servers = ", ".join(server.server for server in budget.servers if server.status == "over")
            raise CommandError(f"over the connection budget on {servers}", returncode=OVER_BUDGET)
        if budget.unreachable:
            details = "; ".join(f"{server.server}: {server.error}" for server in budget.unreachable)
            raise CommandError(f"could not read the limit of: {details}", returncode=UNREACHABLE)

    def _print_budget(self, budget: Budget) -> None:
        def number(value: int | None) -> str:
            return "-" if value is None else str(value)

        self.stdout.write(
            f"Connection budget for {budget.processes} process(es) x {budget.threads} thread(s), "
            f"SQLAlchemy engines counted: {budget.sqlalchemy}"
        )
        rows = [
            [
                server.server,
                server.vendor,
                number(server.per_process),
                number(server.worst_case),
                number(server.available),
                number(server.in_use),
                server.status,
            ]
            for server in budget.servers
        ]
        table = format_table(["SERVER", "VENDOR", "PER PROCESS", "WORST CASE", "AVAILABLE", "IN USE", "STATUS"], rows)
        self.stdout.write(table[0], self.style.MIGRATE_HEADING)
        for server, line in zip(budget.servers, table[1:], strict=True):
            bad = server.status in ("over", "unreachable")
            self.stdout.write(line, self.style.ERROR if bad else self.style.SUCCESS)
        usages = [usage for server in budget.servers for usage in server.aliases]
        alias_rows = [
            [
                usage.alias if usage.replica_of is None else f"  {usage.alias}",
                usage.server,
                f"{usage.django} ({usage.django_kind})" if counted else "-",
                str(usage.sqlalchemy_sync) if counted else "-",
                str(usage.sqlalchemy_async) if counted else "-",
                str(usage.per_process) if counted else "not applicable",
            ]
            for usage in usages
            for counted in [usage.django_kind != "not applicable"]
        ]
        self.stdout.write("")
        lines = format_table(["ALIAS", "SERVER", "DJANGO", "SA SYNC", "SA ASYNC", "PER PROCESS"], alias_rows)
        self.stdout.write(lines[0], self.style.MIGRATE_HEADING)
        for line in lines[1:]:
            self.stdout.write(line)
        for server in budget.servers:
            if server.warning:
                self.stdout.write(f"WARNING: {server.warning}", self.style.WARNING)
            elif server.error:
                self.stdout.write(f"{server.server}: not reachable ({server.error}).", self.style.ERROR)
        for usage in usages:
            for note in usage.notes:
                self.stdout.write(f"{usage.alias}: {note}.")
