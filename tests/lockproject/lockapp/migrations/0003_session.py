from typing import Any

from django.db import migrations, transaction

from tests.lockproject.lockapp.runs import record


def needs_session(apps: Any, schema_editor: Any) -> None:
    """Use session state across statements, which a transaction pooler does not keep."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '1234ms'")
        cursor.execute("SHOW lock_timeout")
        (value,) = cursor.fetchone()
        if value != "1234ms":
            raise RuntimeError(f"SET lock_timeout was lost: the next statement saw {value!r}")
        cursor.execute("SELECT pg_advisory_lock(4242)")
        cursor.execute("SELECT pg_advisory_unlock(4242)")
        (unlocked,) = cursor.fetchone()
        if not unlocked:
            raise RuntimeError("pg_advisory_unlock ran on another server session than pg_advisory_lock")
        cursor.execute("RESET lock_timeout")
    with transaction.atomic(using=connection.alias):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(4243)")
        record(schema_editor, "0003_session")


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("lockapp", "0002_slow")]
    operations = [migrations.RunPython(needs_session, migrations.RunPython.noop, atomic=False)]
