from typing import Any

from django.db import migrations

from tests.lockproject.lockapp.runs import SLEEP_SECONDS, record


def slow(apps: Any, schema_editor: Any) -> None:
    """Take long enough for a second process started at the same time to arrive meanwhile."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [SLEEP_SECONDS])
    record(schema_editor, "0002_slow")


class Migration(migrations.Migration):
    dependencies = [("lockapp", "0001_initial")]
    operations = [migrations.RunPython(slow, migrations.RunPython.noop)]
