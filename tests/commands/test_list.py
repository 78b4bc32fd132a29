"""``appdb_list``: one row per installed app, never connecting, never showing a password."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command

from django_appdb.operations.listing import COLUMNS, list_app_databases

from .conftest import run_manage


def _call(*args: str) -> str:
    out = StringIO()
    call_command("appdb_list", *args, stdout=out)
    return out.getvalue()


def test_one_row_per_installed_app_in_installed_apps_order():
    rows = list_app_databases()
    assert [row.label for row in rows] == [config.label for config in apps.get_app_configs()]
    by_label = {row.label: row for row in rows}
    assert (by_label["orders"].alias, by_label["orders"].source, by_label["orders"].source_kind) == (
        "orders",
        "ORDERS_DATABASE_URL",
        "env",
    )
    assert (by_label["inventory"].alias, by_label["inventory"].source) == ("inventory", "inventory.database")
    assert (by_label["catalog"].alias, by_label["catalog"].source) == ("default", "default")
    assert by_label["inventory"].vendor == "sqlite"


def test_table_has_a_header_and_a_row_per_app():
    lines = _call().splitlines()
    assert lines[0].split() == ["LABEL", "ALIAS", "SOURCE", "VENDOR", "ATOMIC", "URL"]
    assert len(lines) == 1 + len(apps.get_app_configs())
    inventory = next(line for line in lines if line.startswith("inventory "))
    assert inventory.split()[:5] == ["inventory", "inventory", "inventory.database", "sqlite", "no"]
    assert all(line == line.rstrip() for line in lines)


def test_json_has_stable_keys_in_column_order():
    data = json.loads(_call("--json"))
    assert [list(row) for row in data] == [list(COLUMNS)] * len(apps.get_app_configs())
    assert {row["label"]: row["alias"] for row in data}["orders"] == "orders"


def test_labels_narrow_the_listing_in_installed_apps_order():
    data = json.loads(_call("orders", "catalog", "orders", "--json"))
    assert [row["label"] for row in data] == ["catalog", "orders"]


def test_unknown_label_names_the_known_ones():
    with pytest.raises(CommandError, match=r"No installed app with label 'nope'.*Known labels: .*orders"):
        _call("nope")


@pytest.mark.subprocess
def test_json_parses_and_hides_the_password_with_no_database_reachable(sqlite_project, closed_port):
    password = "S3cr3t-p@ss:word"
    encoded = "S3cr3t-p%40ss%3Aword"
    env = sqlite_project(
        ORDERS_DATABASE_URL=f"postgresql://shop:{encoded}@127.0.0.1:{closed_port}/shop",
        INVENTORY_DATABASE_URL=f"mysql://stock:{encoded}@127.0.0.1:{closed_port}/stock",
    )
    result = run_manage(env, "appdb_list", "--json")
    data = {row["label"]: row for row in json.loads(result.stdout)}
    assert data["orders"]["vendor"] == "postgresql"
    assert data["orders"]["url"] == f"postgresql://shop:********@127.0.0.1:{closed_port}/shop"
    # The MySQL driver need not be installed: the vendor comes from the ENGINE.
    assert data["inventory"]["vendor"] == "mysql"
    table = run_manage(env, "appdb_list")
    for output in (result.stdout, result.stderr, table.stdout, table.stderr):
        assert password not in output
        assert encoded not in output


@pytest.mark.subprocess
def test_works_when_system_checks_fail(sqlite_project, tmp_path):
    # Moving auth alone is a check error (E003); listing must still work.
    env = sqlite_project(AUTH_DATABASE_URL=f"sqlite:///{tmp_path / 'auth.sqlite3'}")
    data = json.loads(run_manage(env, "appdb_list", "--json").stdout)
    assert {row["label"]: row["alias"] for row in data}["auth"] == "auth"
