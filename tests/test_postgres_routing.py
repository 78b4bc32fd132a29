"""Routing and migrations on real PostgreSQL databases that the tests create and drop."""

from __future__ import annotations

import pytest

from tests.conftest import pg_tables, run_manage
from tests.test_project import OWN_TABLES

pytestmark = [pytest.mark.postgres, pytest.mark.subprocess]


@pytest.fixture
def pg_env(pg_database) -> dict[str, str]:
    return {
        "DATABASE_URL": pg_database("default"),
        "INVENTORY_DATABASE_URL": pg_database("inventory"),
        "ORDERS_DATABASE_URL": pg_database("orders"),
    }


def test_each_apps_tables_and_rows_land_in_its_own_postgres_database(tmp_path, pg_env):
    result = run_manage("demo", cwd=tmp_path, **pg_env)
    assert result.returncode == 0, result.stderr
    default = pg_tables(pg_env["DATABASE_URL"])
    assert pg_tables(pg_env["INVENTORY_DATABASE_URL"]) == OWN_TABLES["inventory"] | {"django_migrations"}
    assert pg_tables(pg_env["ORDERS_DATABASE_URL"]) == OWN_TABLES["orders"] | {"django_migrations"}
    assert OWN_TABLES["catalog"] | OWN_TABLES["contrib"] <= default
    assert not default & (OWN_TABLES["inventory"] | OWN_TABLES["orders"])

    import psycopg

    for key, table in [
        ("ORDERS_DATABASE_URL", "orders_order"),
        ("INVENTORY_DATABASE_URL", "inventory_warehouse"),
        ("DATABASE_URL", "catalog_product"),
    ]:
        with psycopg.connect(pg_env[key]) as conn:
            assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 1, key


def test_migrate_database_orders_touches_only_orders(tmp_path, pg_env):
    result = run_manage("migrate", "--database=orders", "--noinput", cwd=tmp_path, **pg_env)
    assert result.returncode == 0, result.stderr
    assert pg_tables(pg_env["ORDERS_DATABASE_URL"]) == OWN_TABLES["orders"] | {"django_migrations"}
    assert pg_tables(pg_env["DATABASE_URL"]) == set()
    assert pg_tables(pg_env["INVENTORY_DATABASE_URL"]) == set()


def test_postgres_and_sqlite_apps_side_by_side(tmp_path, pg_env):
    env = {**pg_env, "INVENTORY_DATABASE_URL": f"sqlite:///{tmp_path / 'inventory.sqlite3'}"}
    result = run_manage("demo", cwd=tmp_path, **env)
    assert result.returncode == 0, result.stderr
    from tests.conftest import sqlite_tables

    assert sqlite_tables(tmp_path / "inventory.sqlite3") == OWN_TABLES["inventory"] | {"django_migrations"}
    assert pg_tables(pg_env["ORDERS_DATABASE_URL"]) == OWN_TABLES["orders"] | {"django_migrations"}


def _schema_tables(url: str, schema: str) -> set[str]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema]).fetchall()
    return {row[0] for row in rows}


@pytest.mark.parametrize("query", ["options=-c%20search_path%3Dledger", "currentSchema=ledger"])
def test_an_app_in_another_schema_of_the_default_database_writes_there(tmp_path, pg_database, query):
    import psycopg

    url = pg_database("schemas")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA ledger")
    env = {
        "DATABASE_URL": url,
        "INVENTORY_DATABASE_URL": f"sqlite:///{tmp_path / 'inventory.sqlite3'}",
        # The same server, database and user as default: only the schema differs.
        "ORDERS_DATABASE_URL": f"{url}?{query}",
    }
    listing = run_manage("appdb_list", "orders", cwd=tmp_path, **env)
    assert listing.stdout.splitlines()[1].split()[:2] == ["orders", "orders"]
    result = run_manage("demo", cwd=tmp_path, **env)
    assert result.returncode == 0, result.stderr
    assert OWN_TABLES["orders"] <= _schema_tables(url, "ledger")
    public = _schema_tables(url, "public")
    assert not public & OWN_TABLES["orders"]
    assert OWN_TABLES["catalog"] <= public
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM ledger.orders_order").fetchone()[0] == 1
