"""A base install (``pip install django-appdb``, no extras): sync use never needs greenlet or an async driver.

Each test runs a child Python in which greenlet and aiosqlite cannot be
imported, whatever this environment has installed, so the guarantee is
checked in every run, not only in the matrix session that lacks them.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from .conftest import ROOT, run_manage, run_python

pytestmark = pytest.mark.subprocess

# Run first in every child: greenlet and aiosqlite are not installed.
NO_ASYNC_EXTRA = """
import importlib.abc, sys

class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("greenlet", "aiosqlite"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled())
"""

SYNC_USE = """
import json
import django
django.setup()
from django.core.management import call_command
from sqlalchemy import func, select, text

call_command("appdb_migrate", interactive=False, verbosity=0)

from django_appdb import get_engine, get_sync_app_session, table_for
from orders.models import Order
from orders.repositories import Line, OrderRepository
from decimal import Decimal

with get_engine("orders").connect() as connection:
    connection.execute(text("SELECT 1")).scalar_one()
with get_sync_app_session("orders") as session:
    session.execute(table_for(Order).insert().values(number="S-1", customer_email="s@example.com", total=1))
repo = OrderRepository()
repo.place("S-2", "t@example.com", [Line("HAM-1", 2, Decimal("9.50"))])
with get_sync_app_session("orders") as session:
    count = session.scalar(select(func.count()).select_from(table_for(Order)))
print(json.dumps({
    "orm": Order.objects.count(),
    "sqlalchemy": count,
    "summaries": len(repo.summaries()),
    "asyncio_imported": "sqlalchemy.ext.asyncio" in sys.modules,
    "greenlet_imported": "greenlet" in sys.modules,
}))
"""

ASYNC_USE = """
import asyncio, json
import django
django.setup()
from django_appdb import get_app_session, get_async_engine
from django_appdb.exceptions import MissingDriverError
from orders.repositories import AsyncOrderRepository

async def attempt(name, work):
    try:
        await work()
    except MissingDriverError as exc:
        return [name, type(exc).__name__, str(exc), exc.install]
    return [name, "no error", "", ""]

async def session():
    async with get_app_session("orders"):
        pass

async def engine():
    get_async_engine("orders")

async def repository():
    await AsyncOrderRepository().summaries()

async def main():
    return [await attempt("session", session), await attempt("engine", engine),
            await attempt("repository", repository)]

print(json.dumps(asyncio.run(main())))
"""


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'default.sqlite3'}",
        "INVENTORY_DATABASE_URL": f"sqlite:///{tmp_path / 'inventory.sqlite3'}",
        "ORDERS_DATABASE_URL": f"sqlite:///{tmp_path / 'orders.sqlite3'}",
    }


def test_sync_engines_sessions_and_repositories_work_without_greenlet(tmp_path):
    result = run_python(NO_ASYNC_EXTRA + textwrap.dedent(SYNC_USE), cwd=tmp_path, **_env(tmp_path))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report == {
        "orm": 2,
        "sqlalchemy": 2,
        "summaries": 2,
        "asyncio_imported": False,
        "greenlet_imported": False,
    }


def test_async_names_say_which_extra_to_install(tmp_path):
    result = run_python(NO_ASYNC_EXTRA + textwrap.dedent(ASYNC_USE), cwd=tmp_path, **_env(tmp_path))
    assert result.returncode == 0, result.stderr
    for name, kind, message, install in json.loads(result.stdout):
        assert kind == "MissingDriverError", (name, kind)
        assert "pip install 'django-appdb[async]'" in message, name
        assert "'orders'" in message and "aiosqlite" in message, name
        assert install == "django-appdb[async]"


def test_check_warns_about_async_views_without_their_driver(tmp_path):
    sitecustomize = tmp_path / "site" / "sitecustomize.py"
    sitecustomize.parent.mkdir()
    sitecustomize.write_text(NO_ASYNC_EXTRA)
    paths = [sitecustomize.parent, ROOT, ROOT / "testproject"]
    env = {**_env(tmp_path), "PYTHONPATH": os.pathsep.join(map(str, paths))}
    result = run_manage("check", cwd=tmp_path, **env)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert output.count("(django_appdb.W004)") == 1, output
    for view in ("orders.views.order_summary", "orders.views.mark_paid", "orders.views.order_list"):
        assert f"async view {view}" in output
    assert "orders.repositories.AsyncOrderRepository" in output
    assert "database alias 'orders'" in output and "'sqlite+aiosqlite' cannot be imported" in output
    assert "HINT: Install it: pip install 'django-appdb[async]'." in output


@pytest.mark.async_drivers
def test_check_is_quiet_when_the_async_driver_is_there(tmp_path):
    result = run_manage("check", cwd=tmp_path, **_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "W004" not in result.stdout + result.stderr
