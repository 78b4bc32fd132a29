"""``appdb_migrate``: every database in one command, each app's migrations on its own database."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from django_appdb.operations.migrating import migration_targets

from .conftest import project_env, run_manage

ALL = ["default", "inventory", "orders"]
INVENTORY_TABLES = {"inventory_warehouse", "inventory_stockitem"}
ORDERS_TABLES = {"orders_order", "orders_orderline"}


def tables(path: Path) -> set[str]:
    """Return the table names of a SQLite file (empty if the file does not exist)."""
    if not path.exists():
        return set()
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        return {row[0] for row in rows}


def applied(path: Path) -> list[tuple[str, str]]:
    """Return the (app, name) rows of a SQLite file's django_migrations table."""
    with closing(sqlite3.connect(path)) as conn:
        return sorted(conn.execute("SELECT app, name FROM django_migrations").fetchall())


def headings(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Database '")]


def sections(output: str) -> dict[str, str]:
    """Split ``appdb_migrate`` output into the part written for each database."""
    parts = output.split("Database '")[1:]
    return {part.split("'", 1)[0]: part for part in parts}


def test_targets_put_default_first_and_narrow_to_one_app():
    assert [target.alias for target in migration_targets()] == ALL
    assert migration_targets()[0].labels[:2] == ("admin", "auth")
    (orders,) = migration_targets("orders")
    assert (orders.alias, orders.labels) == ("orders", ("orders",))
    with pytest.raises(LookupError):
        migration_targets("nope")


@pytest.mark.django_db(databases=ALL)
def test_in_process_on_migrated_databases_is_a_no_op():
    out = StringIO()
    call_command("appdb_migrate", "--noinput", stdout=out)
    output = out.getvalue()
    assert headings(output) == ALL
    assert output.count("No migrations to apply.") == 3
    assert output.rstrip().endswith("Migrated 3 databases: default, inventory, orders.")

    out = StringIO()
    call_command("appdb_migrate", "--check", stdout=out)
    assert out.getvalue().count("No unapplied migrations.") == 3

    out = StringIO()
    call_command("appdb_migrate", "orders", "--plan", stdout=out)
    assert headings(out.getvalue()) == ["orders"]
    assert "No planned migration operations." in out.getvalue()


def test_unknown_app_label():
    with pytest.raises(CommandError, match="No installed app with label 'nope'"):
        call_command("appdb_migrate", "nope", skip_checks=True)


@pytest.mark.subprocess
def test_each_apps_tables_land_in_its_own_database_and_a_second_run_is_a_no_op(sqlite_project, tmp_path):
    env = sqlite_project()
    default, inventory, orders = (tmp_path / f"{name}.sqlite3" for name in ("default", "inventory", "orders"))

    checked = run_manage(env, "appdb_migrate", "--check", returncode=1)
    assert "CommandError: Unapplied migrations on 3 databases: default, inventory, orders." in checked.stderr

    first = run_manage(env, "appdb_migrate", "--noinput")
    assert headings(first.stdout) == ALL
    assert "Applying inventory.0001_initial... OK" in first.stdout
    assert "Migrated 3 databases: default, inventory, orders." in first.stdout

    assert tables(inventory) == INVENTORY_TABLES | {"django_migrations"}
    assert tables(orders) == ORDERS_TABLES | {"django_migrations"}
    default_tables = tables(default)
    assert {"catalog_product", "auth_permission", "django_content_type", "django_session"} <= default_tables
    assert not default_tables & (INVENTORY_TABLES | ORDERS_TABLES)
    before = {path: (tables(path), applied(path)) for path in (default, inventory, orders)}

    second = run_manage(env, "appdb_migrate", "--noinput")
    assert second.stdout.count("No migrations to apply.") == 3
    assert "Applying" not in second.stdout
    assert {path: (tables(path), applied(path)) for path in (default, inventory, orders)} == before
    run_manage(env, "appdb_migrate", "--check")


@pytest.mark.subprocess
def test_plan_applies_nothing(sqlite_project, tmp_path):
    result = run_manage(sqlite_project(), "appdb_migrate", "--plan")
    assert headings(result.stdout) == ALL
    assert result.stdout.count("Planned operations:") == 3
    assert "orders.0001_initial\n    Create model Order" in result.stdout
    assert "Planned 3 databases: default, inventory, orders." in result.stdout
    assert all(tables(tmp_path / f"{name}.sqlite3") <= {"django_migrations"} for name in ALL)


@pytest.mark.subprocess
def test_app_label_and_migration_name_narrow_to_that_apps_database(sqlite_project, tmp_path):
    env = sqlite_project()
    orders = tmp_path / "orders.sqlite3"
    result = run_manage(env, "appdb_migrate", "orders", "--noinput")
    assert headings(result.stdout) == ["orders"]
    assert "Migrated 1 database: orders." in result.stdout
    assert tables(orders) == ORDERS_TABLES | {"django_migrations"}
    assert not (tmp_path / "default.sqlite3").exists()
    assert not (tmp_path / "inventory.sqlite3").exists()

    result = run_manage(env, "appdb_migrate", "orders", "zero", "--noinput")
    assert "Unapply all migrations: orders" in result.stdout
    assert tables(orders) == {"django_migrations"}


@pytest.mark.subprocess
def test_fake_records_without_creating(sqlite_project, tmp_path):
    env = sqlite_project()
    inventory = tmp_path / "inventory.sqlite3"
    run_manage(env, "appdb_migrate", "inventory", "--fake", "--noinput")
    assert tables(inventory) == {"django_migrations"}
    assert ("inventory", "0001_initial") in applied(inventory)


@pytest.mark.subprocess
def test_a_failure_names_the_database_stops_and_keeps_what_was_migrated(sqlite_project, tmp_path):
    env = sqlite_project()
    default, inventory, orders = (tmp_path / f"{name}.sqlite3" for name in ("default", "inventory", "orders"))
    with closing(sqlite3.connect(inventory)) as conn, conn:
        conn.execute("CREATE TABLE inventory_warehouse (id integer)")

    result = run_manage(env, "appdb_migrate", "--noinput", returncode=1)
    assert headings(result.stdout) == ["default", "inventory"]
    assert (
        "CommandError: migrating database 'inventory' failed: table \"inventory_warehouse\" already exists. "
        "Already migrated, and left so: default. Not attempted: orders." in result.stderr
    )
    assert "catalog_product" in tables(default)
    assert not tables(orders)

    # Fix the cause and run again: it resumes.
    with closing(sqlite3.connect(inventory)) as conn, conn:
        conn.execute("DROP TABLE inventory_warehouse")
    resumed = sections(run_manage(env, "appdb_migrate", "--noinput").stdout)
    assert "No migrations to apply." in resumed["default"]
    assert "Applying inventory.0001_initial... OK" in resumed["inventory"]
    assert tables(orders) == ORDERS_TABLES | {"django_migrations"}


@pytest.mark.subprocess
def test_an_unreachable_database_stops_it_before_anything_is_migrated(sqlite_project, tmp_path):
    env = sqlite_project(INVENTORY_DATABASE_URL=f"sqlite:///{tmp_path / 'missing' / 'inventory.sqlite3'}")
    result = run_manage(env, "appdb_migrate", "--noinput", returncode=1)
    assert (
        "CommandError: System checks could not use database 'inventory': OperationalError: unable to open "
        "database file. Nothing was migrated." in result.stderr
    )
    assert not tables(tmp_path / "default.sqlite3")


@pytest.mark.subprocess
@pytest.mark.psycopg
@pytest.mark.parametrize(
    ("options", "message"),
    [
        # The database checks (E006) connect first...
        ((), "CommandError: System checks could not use database 'orders': OperationalError: "),
        # ... and without them, the connection made before migrating anything.
        (("--skip-checks",), "CommandError: cannot connect to database 'orders' (OperationalError: "),
    ],
)
def test_a_postgresql_server_that_is_down_stops_it_before_anything_is_migrated(
    sqlite_project, tmp_path, closed_port, options, message
):
    env = sqlite_project(ORDERS_DATABASE_URL=f"postgresql://shop:Hidden-7@127.0.0.1:{closed_port}/shop")
    result = run_manage(env, "appdb_migrate", "--noinput", *options, returncode=1)
    assert message in result.stderr
    assert "Nothing was migrated." in result.stderr
    assert "Hidden-7" not in result.stdout + result.stderr
    # default and inventory come before orders, and were not touched either.
    assert not tables(tmp_path / "default.sqlite3")
    assert not tables(tmp_path / "inventory.sqlite3")


@pytest.mark.subprocess
def test_system_check_errors_stop_it_before_anything_is_migrated(sqlite_project, tmp_path):
    env = sqlite_project(AUTH_DATABASE_URL=f"sqlite:///{tmp_path / 'auth.sqlite3'}")
    result = run_manage(env, "appdb_migrate", "--noinput", returncode=1)
    assert "auth.Permission.content_type: (django_appdb.E003)" in result.stderr
    assert not tables(tmp_path / "default.sqlite3")


@pytest.mark.postgres
@pytest.mark.subprocess
def test_fresh_postgresql_createdb_migrate_check(pg_databases, tmp_path):
    default, orders = pg_databases.name("default"), pg_databases.name("orders")
    inventory_file = tmp_path / "inventory.sqlite3"
    env = project_env(
        DATABASE_URL=pg_databases.url_for(default),
        ORDERS_DATABASE_URL=pg_databases.url_for(orders),
        INVENTORY_DATABASE_URL=f"sqlite:///{inventory_file}",
    )
    run_manage(env, "appdb_check", returncode=1)
    run_manage(env, "appdb_createdb")
    first = run_manage(env, "appdb_migrate", "--noinput")
    assert headings(first.stdout) == ALL
    checked = run_manage(env, "appdb_check")
    assert [line.split()[2] for line in checked.stdout.splitlines()[1:]] == ["ok", "ok", "ok"]

    default_tables = pg_databases.tables(default)
    orders_tables = pg_databases.tables(orders)
    assert {"catalog_product", "auth_user", "django_content_type", "django_session"} <= default_tables
    assert not default_tables & (INVENTORY_TABLES | ORDERS_TABLES)
    assert orders_tables == ORDERS_TABLES | {"django_migrations"}
    assert tables(inventory_file) == INVENTORY_TABLES | {"django_migrations"}
    with pg_databases.connect(orders) as conn:
        recorded = conn.execute("SELECT count(*) FROM django_migrations").fetchone()[0]

    second = run_manage(env, "appdb_migrate", "--noinput")
    assert second.stdout.count("No migrations to apply.") == 3
    assert pg_databases.tables(default) == default_tables
    assert pg_databases.tables(orders) == orders_tables
    with pg_databases.connect(orders) as conn:
        assert conn.execute("SELECT count(*) FROM django_migrations").fetchone()[0] == recorded
    run_manage(env, "appdb_migrate", "--check")


@pytest.mark.subprocess
def test_an_app_moved_onto_a_database_that_already_records_it_is_reported(sqlite_project, tmp_path):
    # orders' tables were created on default, so default records orders' migrations...
    shared = f"sqlite:///{tmp_path / 'default.sqlite3'}"
    run_manage(sqlite_project(ORDERS_DATABASE_URL=shared), "appdb_migrate", "--noinput")
    # ... then default is copied to a new file for orders, and its tables dropped there: the records stay.
    moved = tmp_path / "moved.sqlite3"
    moved.write_bytes((tmp_path / "default.sqlite3").read_bytes())
    with closing(sqlite3.connect(moved)) as conn, conn:
        conn.execute("DROP TABLE orders_orderline")
        conn.execute("DROP TABLE orders_order")
    env = sqlite_project(ORDERS_DATABASE_URL=f"sqlite:///{moved}")
    result = run_manage(env, "check", "--database", "orders", returncode=1)
    assert (
        "(django_appdb.E006) app 'orders': database alias 'orders' records its migrations as applied, but "
        "none of its tables exist (orders_order, orders_orderline)" in result.stderr
    )
    assert "migrate orders zero --fake --database=orders" in result.stderr
    checked = run_manage(env, "appdb_migrate", "--check", returncode=1)
    assert "(django_appdb.E006)" in checked.stderr
    # Without --database, check opens no connection and says nothing of it.
    assert "E006" not in run_manage(env, "check").stderr
