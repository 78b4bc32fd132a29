"""``manage.py appdb_graph``: a picture of the project's databases, as Mermaid or Graphviz DOT."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_appdb.operations.graphing import FORMATS, project_graph


class Command(BaseCommand):
    help = (
        "Write the project's apps, database aliases, servers, replicas and connection poolers as a graph, with "
        "the relations between models on two databases (django_appdb.E003) in red. Shows no password or user "
        "name, and never connects."
    )
    # The picture must work on a project whose checks fail: the red edges are what E003 reports.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--format",
            choices=list(FORMATS),
            default=next(iter(FORMATS)),
            help="mermaid (a Mermaid flowchart, the default) or dot (a Graphviz digraph).",
        )
        parser.add_argument(
            "--output", metavar="FILE", help="Write the graph to FILE (UTF-8) instead of standard output."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        text = FORMATS[options["format"]](project_graph(base=Path.cwd()))
        output = options["output"]
        if output is None:
            self.stdout.write(text, ending="")
            return
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot write the graph to {output}: {exc.strerror or exc}.") from None
        self.stdout.write(f"Wrote the {options['format']} graph to {output}.")
