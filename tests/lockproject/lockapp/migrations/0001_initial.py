from django.db import migrations


class Migration(migrations.Migration):
    operations = [
        migrations.RunSQL(
            "CREATE TABLE lockapp_runs (id serial PRIMARY KEY, migration text NOT NULL, pid integer, port integer)",
            "DROP TABLE lockapp_runs",
        )
    ]
