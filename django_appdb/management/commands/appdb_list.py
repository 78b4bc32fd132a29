"""``manage.py appdb_list``: where each installed app's data lives."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_appdb.operations.listing import COLUMNS, list_app_databases
from django_appdb.operations.textformat import format_table

_TABLE_COLUMNS = [column for column in COLUMNS if column not in ("source_kind", "replicas", "pooler")]
_HEADINGS = {"atomic_requests": "ATOMIC"}


def _cell(value: str | bool) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


class Command(BaseCommand):
    help = (
        "List every installed app with its database alias, the source of its URL (environment variable, "
        "database.py module or default), the vendor and the URL with its password masked. Never connects."
    )
    # A listing must work on a project whose checks fail: that is when it helps.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("app_label", nargs="*", help="Only list these apps.")
        parser.add_argument(
            "--json",
            action="store_true",
            help=f"Print a JSON array of objects with the keys {', '.join(COLUMNS)}, in that order.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            rows = list_app_databases(options["app_label"])
        except LookupError as exc:
            raise CommandError(exc.args[0]) from None
        if options["json"]:
            self.stdout.write(json.dumps([row.as_dict() for row in rows], indent=2))
            return
        table = format_table(
            [_HEADINGS.get(column, column.upper()) for column in _TABLE_COLUMNS],
            [[_cell(row.as_dict()[column]) for column in _TABLE_COLUMNS] for row in rows],
        )
        self.stdout.write(table[0], self.style.MIGRATE_HEADING)
        for row, line in zip(rows, table[1:], strict=True):
            self.stdout.write(line)
            if row.pooler is not None:
                self.stdout.write(f"  pooler: {row.pooler}")
            # Each replica under its primary's row.
            for replica in row.replicas:
                self.stdout.write(f"  replica {replica['alias']}: {replica['url']}")
