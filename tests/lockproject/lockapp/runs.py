"""What the lockapp migrations record: one row per migration run, with the port the connection reached."""

from typing import Any

SLEEP_SECONDS = 2


def record(schema_editor: Any, migration: str) -> None:
    """Insert a row saying ``migration`` ran, from which process, over which port (5432 direct, else PgBouncer's)."""
    import os

    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO lockapp_runs (migration, pid, port) VALUES (%s, %s, %s)",
            [migration, os.getpid(), connection.connection.info.port],
        )
