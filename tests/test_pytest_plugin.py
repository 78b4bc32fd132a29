"""The pytest plugin in child pytest runs: loaded by its entry point, inert without Django, and what
its fixtures leave behind from one test to the next.

Each child run loads the plugin only through a ``pytest11`` entry point declared
like pyproject.toml's, in a throw-away ``.dist-info`` on its path: no conftest
registers it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT, child_env

pytestmark = pytest.mark.subprocess

INI = """
[pytest]
addopts = -p no:cacheprovider
filterwarnings = error
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
"""


def declared_entry_point() -> tuple[str, str]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10: tomllib's forerunner, from the "test" extra
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    ((name, value),) = project["entry-points"]["pytest11"].items()
    return name, value


@pytest.fixture
def plugin_site(tmp_path: Path) -> Path:
    """A directory holding a distribution whose only content is the declared pytest11 entry point."""
    name, value = declared_entry_point()
    site = tmp_path / "site"
    info = site / "appdb_entry_point_check-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: appdb-entry-point-check\nVersion: 0\n")
    (info / "entry_points.txt").write_text(f"[pytest11]\n{name} = {value}\n")
    return site


@pytest.fixture
def run_child(pytester: pytest.Pytester, plugin_site: Path, monkeypatch: pytest.MonkeyPatch):
    """Return a runner of pytest in ``pytester.path``, with this checkout and the entry point on the path."""
    pytester.makeini(INI)

    def run(*args: str, **env: str | None) -> pytest.RunResult:
        environment = child_env(**env)
        environment["PYTHONPATH"] = os.pathsep.join([str(plugin_site), environment["PYTHONPATH"]])
        # pytester's child inherits this process's environment: make it exactly this one.
        for key in set(os.environ) - set(environment):
            monkeypatch.delenv(key)
        for key, value in environment.items():
            monkeypatch.setenv(key, value)
        return pytester.runpytest_subprocess(*args, timeout=300)

    return run


def test_the_declared_entry_point_names_the_plugin_module():
    name, value = declared_entry_point()
    assert (name, value) == ("django_appdb", "django_appdb.testing.pytest_plugin")


def test_importing_the_plugin_imports_neither_django_nor_sqlalchemy():
    code = (
        "import sys, django_appdb.testing.pytest_plugin as plugin\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'django', 'sqlalchemy', 'pytest_django'}))\n"
        "print(sorted(name for name in dir(plugin) if name.startswith('appdb_')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.splitlines() == ["[]", "['appdb_async_session', 'appdb_django_session', 'appdb_session']"]


@pytest.mark.parametrize("pytest_django", ["enabled", "disabled"])
def test_a_project_without_django_is_unaffected(pytester, run_child, pytest_django):
    pytester.makepyfile(test_plain="def test_plain():\n    assert 1 + 1 == 2\n")
    args = ["-p", "no:django"] if pytest_django == "disabled" else []
    result = run_child(*args, DJANGO_SETTINGS_MODULE=None)
    result.assert_outcomes(passed=1)
    # The plugin was loaded, from its entry point.
    listing = run_child("--fixtures", *args, DJANGO_SETTINGS_MODULE=None)
    assert listing.ret == 0
    listing.stdout.fnmatch_lines(["appdb_session*", "*appdb_django_session*"])


# The tests run in this order; each checks what the previous ones left behind.
ACROSS_TESTS = """
import pytest
from sqlalchemy import func, insert, select

from django_appdb import get_engine, table_for
from django_appdb.testing import app_aliases
from inventory.models import Warehouse
from orders.models import Order

LABELS = ["inventory", "orders"]
MODELS = {"inventory": Warehouse, "orders": Order}
LEFT = {}


def row(label, key):
    if label == "inventory":
        return {"code": key, "name": key}
    return {"number": key, "customer_email": "ada@example.com"}


def count(session, label):
    return session.scalar(select(func.count()).select_from(table_for(MODELS[label])))


@pytest.mark.django_db(databases=app_aliases())
@pytest.mark.parametrize("label", LABELS)
def test_1_write_through_djangos_connection(appdb_django_session, label):
    MODELS[label].objects.create(**row(label, "ORM"))
    session = appdb_django_session(label)
    session.execute(insert(table_for(MODELS[label])).values(**row(label, "COMMITTED")))
    session.commit()
    session.execute(insert(table_for(MODELS[label])).values(**row(label, "PENDING")))
    assert MODELS[label].objects.count() == 3
    LEFT[label] = session


@pytest.mark.django_db(databases=app_aliases())
@pytest.mark.parametrize("label", LABELS)
def test_2_nothing_remains(appdb_django_session, label):
    assert not LEFT[label].in_transaction()
    assert MODELS[label].objects.count() == 0
    assert count(appdb_django_session(label), label) == 0


@pytest.mark.django_db(databases=app_aliases(), transaction=True)
@pytest.mark.parametrize("label", LABELS)
def test_3_nothing_remains_for_other_connections_either(appdb_session, label):
    assert count(appdb_session(label), label) == 0


@pytest.mark.django_db(databases=app_aliases())
@pytest.mark.parametrize("label", LABELS)
def test_4_leave_an_engine_session_open(appdb_session, label):
    session = appdb_session(label)
    session.execute(insert(table_for(MODELS[label])).values(**row(label, "OPEN")))
    LEFT[label] = session


@pytest.mark.django_db(databases=app_aliases(), transaction=True)
@pytest.mark.parametrize("label", LABELS)
def test_5_it_was_rolled_back_and_closed(appdb_session, label):
    assert not LEFT[label].in_transaction()
    assert get_engine(label).pool.checkedout() == 0
    assert count(appdb_session(label), label) == 0


@pytest.mark.asyncio
@pytest.mark.django_db(databases=app_aliases(), transaction=True)
@pytest.mark.parametrize("label", LABELS)
async def test_6_leave_an_async_session_open(appdb_async_session, label):
    session = appdb_async_session(label)
    await session.execute(insert(table_for(MODELS[label])).values(**row(label, "ASYNC")))
    LEFT[label] = session


@pytest.mark.django_db(databases=app_aliases(), transaction=True)
@pytest.mark.parametrize("label", LABELS)
def test_7_it_was_rolled_back_and_closed(appdb_session, label):
    assert not LEFT[label].in_transaction()
    assert count(appdb_session(label), label) == 0
"""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def orders_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The orders database of the child run (inventory is always SQLite)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'orders.sqlite3'}"
    return request.getfixturevalue("pg_database")("plugin_orders")


@pytest.mark.async_drivers
def test_what_the_fixtures_leave_to_the_next_test(pytester, run_child, tmp_path, orders_database):
    pytester.makepyfile(test_across=textwrap.dedent(ACROSS_TESTS))
    result = run_child(
        "-v",
        DJANGO_SETTINGS_MODULE="testproject.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'default.sqlite3'}",
        INVENTORY_DATABASE_URL=f"sqlite:///{tmp_path / 'inventory.sqlite3'}",
        ORDERS_DATABASE_URL=orders_database,
    )
    result.assert_outcomes(passed=14)
    # The runs never created the real databases: only their test databases were used.
    assert not (tmp_path / "orders.sqlite3").exists()
    assert not (tmp_path / "inventory.sqlite3").exists()
