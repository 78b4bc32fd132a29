"""The test project in child processes: start-up order, migrations per database, errors.

Each test points every database at files under ``tmp_path`` (or at PostgreSQL
databases it creates and drops), so no real project database is touched.
"""

from __future__ import annotations

import shutil
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.conftest import run_manage, run_python, sqlite_tables

pytestmark = pytest.mark.subprocess

OWN_TABLES = {
    "catalog": {"catalog_category", "catalog_product", "catalog_tag", "catalog_product_tags"},
    "inventory": {"inventory_warehouse", "inventory_stockitem"},
    "orders": {"orders_order", "orders_orderline"},
    "contrib": {
        "auth_user",
        "auth_permission",
        "auth_group",
        "django_content_type",
        "django_session",
        "django_admin_log",
    },
}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """Environment pointing every testproject database at a file in tmp_path."""
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'default.sqlite3'}",
        "INVENTORY_DATABASE_URL": f"sqlite:///{tmp_path / 'inventory.sqlite3'}",
        "ORDERS_DATABASE_URL": f"sqlite:///{tmp_path / 'orders.sqlite3'}",
    }


def settings_module(tmp_path: Path, body: str) -> str:
    """Write a settings module extending the test project's; return its name."""
    name = f"appdb_settings_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("from testproject.settings import *  # noqa\n" + textwrap.dedent(body))
    return name


def with_path(tmp_path: Path, files: dict[str, str], **extra: str) -> dict[str, str]:
    from tests.conftest import child_env

    env = {**files, **extra}
    env["PYTHONPATH"] = f"{tmp_path}:{child_env()['PYTHONPATH']}"
    return env


def test_migrating_orders_creates_only_orders_tables(tmp_path, files):
    result = run_manage("migrate", "--database=orders", "--noinput", cwd=tmp_path, **files)
    assert result.returncode == 0, result.stderr
    assert sqlite_tables(tmp_path / "orders.sqlite3") == OWN_TABLES["orders"] | {"django_migrations"}
    assert not (tmp_path / "default.sqlite3").exists() or sqlite_tables(tmp_path / "default.sqlite3") == set()


def test_every_apps_tables_land_in_its_own_file(tmp_path, files):
    for alias in ("default", "inventory", "orders"):
        result = run_manage("migrate", f"--database={alias}", "--noinput", cwd=tmp_path, **files)
        assert result.returncode == 0, result.stderr
    default = sqlite_tables(tmp_path / "default.sqlite3")
    inventory = sqlite_tables(tmp_path / "inventory.sqlite3")
    orders = sqlite_tables(tmp_path / "orders.sqlite3")
    assert inventory == OWN_TABLES["inventory"] | {"django_migrations"}
    assert orders == OWN_TABLES["orders"] | {"django_migrations"}
    assert OWN_TABLES["catalog"] | OWN_TABLES["contrib"] <= default
    assert not default & (OWN_TABLES["inventory"] | OWN_TABLES["orders"])


def test_demo_command_puts_rows_in_each_apps_file(tmp_path, files):
    result = run_manage("demo", cwd=tmp_path, **files)
    assert result.returncode == 0, result.stderr
    import sqlite3
    from contextlib import closing

    counts = {}
    for name, table in [
        ("orders", "orders_order"),
        ("inventory", "inventory_warehouse"),
        ("default", "catalog_product"),
    ]:
        with closing(sqlite3.connect(tmp_path / f"{name}.sqlite3")) as conn:
            counts[name] = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    assert counts == {"orders": 1, "inventory": 1, "default": 1}
    assert "orders.Order" in result.stdout and "orders" in result.stdout


def test_ready_opens_no_connection(tmp_path, files):
    code = """
        from django.db.backends.base.base import BaseDatabaseWrapper
        opened = []
        original = BaseDatabaseWrapper.connect
        BaseDatabaseWrapper.connect = lambda self: opened.append(self.alias) or original(self)
        import django
        django.setup()
        from django.db import connections
        assert "orders" in connections.settings and "inventory" in connections.settings
        print("OPENED", opened)
    """
    result = run_python(textwrap.dedent(code), cwd=tmp_path, **files)
    assert result.returncode == 0, result.stderr
    assert "OPENED []" in result.stdout


@pytest.mark.parametrize("early", [pytest.param("contrib_postgres", marks=pytest.mark.psycopg), "model_module"])
def test_connections_read_before_ready(tmp_path, files, early):
    """New aliases work even when django.db.connections read its settings before ready()."""
    if early == "contrib_postgres":
        body = 'INSTALLED_APPS = ["django.contrib.postgres", *INSTALLED_APPS]\n'
    else:
        app = tmp_path / "early_app"
        app.mkdir()
        (app / "__init__.py").write_text("")
        # A model module that reads the backend while models load, before any ready().
        (app / "models.py").write_text(
            "from django.db import connection, connections\n"
            "MAX_NAME = connection.ops.max_name_length()\n"
            "ALIASES = list(connections)\n"
        )
        body = 'INSTALLED_APPS = [*INSTALLED_APPS, "early_app"]\n'
    name = settings_module(tmp_path, body)
    code = """
        import django
        from django.db import connections
        django.setup()
        assert "settings" in connections.__dict__, "connections had not read its settings early"
        from django.core.management import call_command
        call_command("migrate", database="orders", verbosity=0)
        call_command("migrate", database="inventory", verbosity=0)
        from orders.models import Order
        from inventory.models import Warehouse
        Order.objects.create(number="1", customer_email="a@example.com")
        Warehouse.objects.create(code="W", name="w")
        assert connections["orders"].settings_dict["TEST"]["MIGRATE"] is True
        print("ROWS", Order.objects.count(), Warehouse.objects.count())
    """
    env = with_path(tmp_path, files, DJANGO_SETTINGS_MODULE=name)
    result = run_python(textwrap.dedent(code), cwd=tmp_path, **env)
    assert result.returncode == 0, result.stderr
    assert "ROWS 1 1" in result.stdout
    assert sqlite_tables(tmp_path / "orders.sqlite3") == OWN_TABLES["orders"] | {"django_migrations"}
    assert sqlite_tables(tmp_path / "inventory.sqlite3") == OWN_TABLES["inventory"] | {"django_migrations"}


def test_router_installed_when_router_list_was_cached_before_setup(tmp_path, files):
    code = """
        from django.db import router
        before = list(router.routers)  # Django builds and caches its router list now
        import django
        django.setup()
        from django_appdb.routers import AppDatabaseRouter
        assert before == []
        assert [type(r) for r in router.routers] == [AppDatabaseRouter]
        from orders.models import Order
        print("ROUTED", router.db_for_write(Order))
    """
    result = run_python(textwrap.dedent(code), cwd=tmp_path, **files)
    assert result.returncode == 0, result.stderr
    assert "ROUTED orders" in result.stdout


def test_listed_router_keeps_its_position_and_is_not_duplicated(tmp_path, files):
    body = """
        class Audit:
            def db_for_read(self, model, **hints):
                return None
        DATABASE_ROUTERS = ["django_appdb.routers.AppDatabaseRouter", Audit()]
    """
    name = settings_module(tmp_path, body)
    code = """
        import django
        django.setup()
        from django.db import router
        print("ROUTERS", [type(r).__name__ for r in router.routers])
    """
    result = run_python(textwrap.dedent(code), cwd=tmp_path, **with_path(tmp_path, files, DJANGO_SETTINGS_MODULE=name))
    assert result.returncode == 0, result.stderr
    assert "ROUTERS ['AppDatabaseRouter', 'Audit']" in result.stdout


def test_automatic_install_can_be_turned_off(tmp_path, files):
    name = settings_module(tmp_path, "APPDB_INSTALL_ROUTER = False\n")
    code = """
        import django
        django.setup()
        from django.db import router
        from orders.models import Order
        print("ROUTERS", router.routers, router.db_for_write(Order))
    """
    result = run_python(textwrap.dedent(code), cwd=tmp_path, **with_path(tmp_path, files, DJANGO_SETTINGS_MODULE=name))
    assert result.returncode == 0, result.stderr
    assert "ROUTERS [] default" in result.stdout


def test_bad_env_var_stops_start_up_with_a_masked_message(tmp_path, files):
    env = {**files, "ORDERS_DATABASE_URL": "postgresx://shop:Hunter2Secret@db/orders"}
    result = run_manage("check", cwd=tmp_path, **env)
    assert result.returncode != 0
    assert "AppDatabaseConfigError" in result.stderr
    assert "app 'orders' (environment variable ORDERS_DATABASE_URL)" in result.stderr
    assert "Hunter2Secret" not in result.stderr + result.stdout


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="the sqlite3 command-line shell is not installed")
def test_dbshell_reaches_the_apps_database(tmp_path, files):
    assert run_manage("migrate", "--database=inventory", cwd=tmp_path, **files).returncode == 0
    result = subprocess_dbshell(tmp_path, files)
    assert result.returncode == 0, result.stderr
    assert "inventory_warehouse" in result.stdout


def subprocess_dbshell(tmp_path, files):
    import subprocess
    import sys

    from tests.conftest import ROOT, child_env

    return subprocess.run(
        [sys.executable, str(ROOT / "testproject" / "manage.py"), "dbshell", "--database=inventory"],
        input=".tables\n",
        cwd=tmp_path,
        env=child_env(**files),
        capture_output=True,
        text=True,
        timeout=60,
    )
