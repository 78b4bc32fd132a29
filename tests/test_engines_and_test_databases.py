"""Engines give up their pooled connections when Django creates, copies or drops a database.

PostgreSQL refuses to drop or copy a database with sessions, so the test
runners' teardown would fail while SQLAlchemy pooled connections to the test
database; Django opens a connection without a database (``NO_DB_ALIAS``) for
exactly those operations, and the engines close their pools when it does.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.db import connections
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.signals import connection_created
from sqlalchemy import text

from django_appdb import get_engine
from django_appdb.sqlalchemy.engines import engines

DATABASES = ["default", "inventory", "orders"]


def pooled(label: str) -> int:
    engine = get_engine(label)
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return engine.pool.checkedin()


@pytest.mark.django_db(databases=DATABASES, transaction=True)
def test_a_connection_without_a_database_closes_the_pools():
    assert pooled("orders") == 1
    engine = get_engine("orders")
    connection_created.send(sender=object, connection=SimpleNamespace(alias=NO_DB_ALIAS))
    assert engine.pool.checkedin() == 0
    assert get_engine("orders") is engine  # kept, and connects again when used
    assert pooled("orders") == 1


@pytest.mark.django_db(databases=DATABASES, transaction=True)
def test_ordinary_connections_leave_the_pools_alone():
    assert pooled("inventory") == 1
    engine = get_engine("inventory")
    connections["inventory"].close()
    connections["inventory"].ensure_connection()  # sends connection_created for 'inventory'
    assert engine.pool.checkedin() == 1
    assert get_engine("inventory") is engine


@pytest.mark.postgres
@pytest.mark.django_db(databases=DATABASES, transaction=True)
def test_djangos_maintenance_connection_on_postgresql_closes_the_pools(postgres_url):
    assert pooled("orders") == 1
    engine = get_engine("orders")
    name = connections["orders"].settings_dict["NAME"]
    with connections["orders"]._nodb_cursor() as cursor:
        cursor.execute("SELECT current_database()")
        assert cursor.fetchone()[0] != name
    assert engine.pool.checkedin() == 0
    assert engines._records["orders"].engine is engine
