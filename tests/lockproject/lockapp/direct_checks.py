"""Run by ``manage.py test`` and pytest in a subprocess: the test database was set up directly, the tests run pooled."""

from django.db import connections
from django.test import TestCase


class TestDatabaseSetUp(TestCase):
    databases = {"default", "lockapp"}

    def test_migrated_over_the_direct_connection_and_tested_over_the_pooled_one(self) -> None:
        connection = connections["lockapp"]
        with connection.cursor() as cursor:
            cursor.execute("SELECT migration, port FROM lockapp_runs ORDER BY id")
            rows = cursor.fetchall()
        assert rows == [("0002_slow", 5432), ("0003_session", 5432)], rows
        assert connection.connection.info.port == 56432
        assert connection.connection.info.dbname.startswith("test_"), connection.connection.info.dbname
