"""Read replicas in the plan: where they are declared, what they are called, and the settings they get.

Every declaration is planned as ``AppConfig.ready()`` plans it (``plan(...,
replicas=settings.APPDB_REPLICAS)``); every bad one must stop with an
``AppDatabaseConfigError`` that names where the value came from and shows no
password.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import pytest

from django_appdb.databases import plan
from django_appdb.exceptions import AppDatabaseConfigError

MARK = "Rq9XwLp"
PG_PRIMARY = f"postgresql://app:{MARK}pw@db.internal:5432/orders"
PG_REPLICA_1 = f"postgresql://ro:{MARK}r1@replica1.internal:5432/orders"
PG_REPLICA_2 = f"postgresql://ro:{MARK}r2@replica2.internal:5432/orders"
VAR = "ORDERS_DATABASE_REPLICA_URLS"


@pytest.fixture
def databases(tmp_path: Path) -> dict[str, dict[str, Any]]:
    return {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "default.db")},
        "reporting": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "reports",
            "HOST": "db.internal",
            "PORT": "5432",
            "USER": "rep",
            "PASSWORD": f"{MARK}rep",
        },
        "reporting_ro": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "reports",
            "HOST": "replica.internal",
            "PORT": "5432",
            "USER": "rep",
            "PASSWORD": f"{MARK}rep",
        },
    }


def refused(function: Any, *args: Any, **kwargs: Any) -> AppDatabaseConfigError:
    """Return the error ``function`` raises, checking that no password shows in its message, repr or traceback."""
    with pytest.raises(AppDatabaseConfigError) as caught:
        function(*args, **kwargs)
    error = caught.value
    shown = str(error) + repr(error) + "".join(traceback.format_exception(error))
    assert MARK not in shown, shown
    return error


def orders_plan(make_app: Any, databases: dict[str, Any], urls: str, **more: Any) -> Any:
    return plan([make_app("orders")], databases, environ={"ORDERS_DATABASE_URL": PG_PRIMARY, VAR: urls}, **more)


# -- the environment variable -----------------------------------------------------------------------


def test_the_variable_lists_replicas_in_order_under_numbered_aliases(make_app, databases):
    result = orders_plan(make_app, databases, f" {PG_REPLICA_1} , {PG_REPLICA_2} ")
    assert result.replicas == {"orders": ("orders_replica_1", "orders_replica_2")}
    assert list(result.new_databases) == ["orders", "orders_replica_1", "orders_replica_2"]
    assert result.new_databases["orders_replica_1"]["HOST"] == "replica1.internal"
    assert result.new_databases["orders_replica_2"]["HOST"] == "replica2.internal"
    assert result.new_databases["orders_replica_2"]["PASSWORD"] == f"{MARK}r2"
    # The primary's own settings are untouched.
    assert result.new_databases["orders"]["HOST"] == "db.internal"
    assert "MIRROR" not in (result.new_databases["orders"].get("TEST") or {})


def test_a_blank_variable_is_unset(make_app, databases):
    result = orders_plan(make_app, databases, "  \t ")
    assert result.replicas == {}
    assert list(result.new_databases) == ["orders"]


@pytest.mark.parametrize(
    ("value", "position"),
    [
        (f"{PG_REPLICA_1},,{PG_REPLICA_2}", 2),
        (f"{PG_REPLICA_1},", 2),
        (f",{PG_REPLICA_1}", 1),
        (f"{PG_REPLICA_1}, ,{PG_REPLICA_2}", 2),
    ],
)
def test_an_empty_item_names_the_variable_and_its_position(make_app, databases, value, position):
    error = refused(orders_plan, make_app, databases, value)
    assert error.app_label == "orders"
    assert error.source == f"environment variable {VAR}"
    assert f"item {position} of the comma-separated list is empty" in str(error)


def test_a_comma_in_a_password_is_percent_encoded(make_app, databases):
    result = orders_plan(make_app, databases, "postgresql://ro:a%2Cb@replica1.internal/orders")
    assert result.replicas == {"orders": ("orders_replica_1",)}
    assert result.new_databases["orders_replica_1"]["PASSWORD"] == "a,b"


def test_the_variable_wins_over_database_py(make_app, databases):
    app = make_app("orders", f"DATABASE_URL = {PG_PRIMARY!r}\nDATABASE_REPLICA_URLS = [{PG_REPLICA_1!r}]\n")
    result = plan([app], databases, environ={VAR: PG_REPLICA_2})
    assert result.new_databases["orders_replica_1"]["HOST"] == "replica2.internal"
    assert result.replicas == {"orders": ("orders_replica_1",)}


def test_a_replica_on_another_engine_is_refused_with_its_url_masked(make_app, databases, tmp_path):
    error = refused(orders_plan, make_app, databases, f"{PG_REPLICA_1},sqlite:///{tmp_path}/r.db")
    assert error.source == f"environment variable {VAR}"
    assert "django.db.backends.sqlite3" in str(error) and "django.db.backends.postgresql" in str(error)
    assert "same kind of database" in str(error)


def test_a_replica_url_that_does_not_parse_is_refused_without_its_password(make_app, databases):
    error = refused(orders_plan, make_app, databases, f"nosuchdb://ro:{MARK}x@replica1.internal/orders")
    assert "ORDERS_DATABASE_REPLICA_URLS" in str(error)


# -- database.py ------------------------------------------------------------------------------------


def test_database_py_lists_replicas(make_app, databases):
    app = make_app("orders", f"DATABASE_URL = {PG_PRIMARY!r}\nDATABASE_REPLICA_URLS = ({PG_REPLICA_1!r},)\n")
    result = plan([app], databases, environ={})
    assert result.replicas == {"orders": ("orders_replica_1",)}
    assert result.new_databases["orders_replica_1"]["HOST"] == "replica1.internal"


def test_database_py_with_an_empty_list_declares_none(make_app, databases):
    app = make_app("orders", f"DATABASE_URL = {PG_PRIMARY!r}\nDATABASE_REPLICA_URLS = []\n")
    assert plan([app], databases, environ={}).replicas == {}


def test_database_py_with_a_string_instead_of_a_list_is_refused_masked(make_app, databases):
    app = make_app("orders", f"DATABASE_URL = {PG_PRIMARY!r}\nDATABASE_REPLICA_URLS = {PG_REPLICA_1!r}\n")
    error = refused(plan, [app], databases, environ={})
    assert error.source.startswith(f"module {app.name}.database")
    assert "DATABASE_REPLICA_URLS must be list or tuple" in str(error)
    assert "replica1.internal" in str(error)  # shown, masked


@pytest.mark.parametrize(
    ("items", "shown"), [("['']", "an empty string"), ("['  ']", "an empty string"), ("[5]", "int")]
)
def test_database_py_with_a_bad_item_is_refused(make_app, databases, items, shown):
    app = make_app("orders", f"DATABASE_URL = {PG_PRIMARY!r}\nDATABASE_REPLICA_URLS = [{PG_REPLICA_1!r}, *{items}]\n")
    error = refused(plan, [app], databases, environ={})
    assert f"item 2 is {shown}" in str(error)


def test_an_app_on_default_declaring_replicas_is_refused(make_app, databases):
    app = make_app("orders", f"DATABASE_REPLICA_URLS = [{PG_REPLICA_1!r}]\n")
    error = refused(plan, [app], databases, environ={})
    assert "uses the default database" in str(error)
    assert "APPDB_REPLICAS" in str(error)
    # Through the variable too.
    error = refused(plan, [make_app("billing")], databases, environ={"BILLING_DATABASE_REPLICA_URLS": PG_REPLICA_1})
    assert error.source == "environment variable BILLING_DATABASE_REPLICA_URLS"


def test_an_app_whose_url_is_defaults_declaring_replicas_is_refused(make_app, databases, tmp_path):
    # Its URL leads to the default database: its replicas would take every default app's reads.
    environ = {"BILLING_DATABASE_URL": f"sqlite:///{tmp_path}/default.db", "BILLING_DATABASE_REPLICA_URLS": "sqlite://"}
    error = refused(plan, [make_app("billing")], databases, environ=environ)
    assert "default database" in str(error)


# -- apps sharing an alias ----------------------------------------------------------------------


def test_apps_sharing_an_alias_with_the_same_replicas_share_them(make_app, databases):
    environ = {
        "ORDERS_DATABASE_URL": PG_PRIMARY,
        "BILLING_DATABASE_URL": PG_PRIMARY,
        VAR: PG_REPLICA_1,
        # The same replica, spelt differently (port implied).
        "BILLING_DATABASE_REPLICA_URLS": f"postgresql://ro:{MARK}r1@REPLICA1.internal/orders",
    }
    result = plan([make_app("orders"), make_app("billing")], databases, environ=environ)
    assert result.replicas == {"orders": ("orders_replica_1",)}
    assert list(result.new_databases) == ["orders", "orders_replica_1"]


@pytest.mark.parametrize("billing", [PG_REPLICA_2, f"{PG_REPLICA_1},{PG_REPLICA_2}", f"{PG_REPLICA_2},{PG_REPLICA_1}"])
def test_apps_sharing_an_alias_with_other_replicas_are_refused(make_app, databases, billing):
    environ = {
        "ORDERS_DATABASE_URL": PG_PRIMARY,
        "BILLING_DATABASE_URL": PG_PRIMARY,
        VAR: PG_REPLICA_1 if billing != f"{PG_REPLICA_2},{PG_REPLICA_1}" else f"{PG_REPLICA_1},{PG_REPLICA_2}",
        "BILLING_DATABASE_REPLICA_URLS": billing,
    }
    error = refused(plan, [make_app("orders"), make_app("billing")], databases, environ=environ)
    assert error.app_label == "billing"
    assert "other read replicas for alias 'orders' than app 'orders' did" in str(error)


def test_an_app_sharing_an_alias_may_leave_the_replicas_to_the_other(make_app, databases):
    environ = {"ORDERS_DATABASE_URL": PG_PRIMARY, "BILLING_DATABASE_URL": PG_PRIMARY, VAR: PG_REPLICA_1}
    result = plan([make_app("billing"), make_app("orders")], databases, environ=environ)
    # The alias is named after the first app; the replicas after the alias.
    assert result.records["orders"].alias == result.records["billing"].alias == "billing"
    assert result.replicas == {"billing": ("billing_replica_1",)}


# -- alias collisions -----------------------------------------------------------------------------


def test_a_replica_alias_already_in_databases_is_refused(make_app, databases):
    databases["orders_replica_1"] = dict(databases["reporting"])
    error = refused(orders_plan, make_app, databases, PG_REPLICA_1)
    assert "the replica's alias 'orders_replica_1' is already in settings.DATABASES" in str(error)


def test_a_replica_alias_taken_by_an_app_is_refused(make_app, databases):
    other = make_app("warehouse", f'DATABASE_URL = "{PG_REPLICA_2}"\nDATABASE_ALIAS = "orders_replica_1"\n')
    environ = {"ORDERS_DATABASE_URL": PG_PRIMARY, VAR: PG_REPLICA_1}
    error = refused(plan, [other, make_app("orders")], databases, environ=environ)
    assert "'orders_replica_1'" in str(error)


# -- settings.APPDB_REPLICAS ----------------------------------------------------------------------


def test_appdb_replicas_gives_default_a_url_replica(make_app, databases, tmp_path):
    result = plan([make_app("a")], databases, environ={}, replicas={"default": [f"sqlite:///{tmp_path}/default.db"]})
    assert result.replicas == {"default": ("default_replica_1",)}
    replica = result.new_databases["default_replica_1"]
    assert replica["NAME"] == f"{tmp_path}/default.db"
    assert replica["TEST"] == {"MIRROR": "default"}
    assert result.mirrors == {}


def test_appdb_replicas_names_an_existing_alias_which_keeps_its_name(make_app, databases):
    result = plan([make_app("a")], databases, environ={}, replicas={"reporting": ["reporting_ro"]})
    assert result.replicas == {"reporting": ("reporting_ro",)}
    assert result.mirrors == {"reporting_ro": "reporting"}
    assert result.new_databases == {}
    # Mixed with a URL, numbered by position.
    result = plan([make_app("b")], databases, environ={}, replicas={"reporting": ["reporting_ro", PG_REPLICA_1]})
    assert result.replicas == {"reporting": ("reporting_ro", "reporting_replica_2")}


@pytest.mark.parametrize("entries", [[], ()])
def test_appdb_replicas_with_an_empty_list_declares_none(make_app, databases, entries):
    result = plan([make_app("a")], databases, environ={}, replicas={"default": entries, "reporting": entries})
    assert result.replicas == {}
    assert result.new_databases == {}
    # An app may then declare the replicas of a database the setting left empty.
    app = make_app("orders", f"DATABASE_URL = {PG_PRIMARY!r}\nDATABASE_REPLICA_URLS = [{PG_REPLICA_1!r}]\n")
    result = plan([app], databases, environ={}, replicas={"orders": entries})
    assert result.replicas == {"orders": ("orders_replica_1",)}


def test_appdb_replicas_for_an_app_alias(make_app, databases):
    result = orders_plan(make_app, databases, "", replicas={"orders": [PG_REPLICA_2]})
    assert result.replicas == {"orders": ("orders_replica_1",)}
    assert result.new_databases["orders_replica_1"]["HOST"] == "replica2.internal"


@pytest.mark.parametrize("value", [["default"], ("reporting",), "default", ["default", "x"]])
def test_appdb_replicas_not_a_dict_is_refused(make_app, databases, value):
    error = refused(plan, [make_app("a")], databases, environ={}, replicas=value)
    assert error.source == "settings.APPDB_REPLICAS"
    assert f"must be a dict of alias -> replica URLs, got {type(value).__name__}" in str(error)


@pytest.mark.parametrize("alias", ["nope", 1, None])
def test_appdb_replicas_of_an_unknown_alias_is_refused(make_app, databases, alias):
    error = refused(plan, [make_app("a")], databases, environ={}, replicas={alias: [PG_REPLICA_1]})
    assert f"{alias!r} is not a database alias" in str(error)
    assert "default, reporting, reporting_ro" in str(error)


@pytest.mark.parametrize("entries", [PG_REPLICA_1, [PG_REPLICA_1, ""], [None], {"a": 1}, ["  "]])
def test_appdb_replicas_entries_not_a_list_of_strings_are_refused(make_app, databases, entries):
    error = refused(plan, [make_app("a")], databases, environ={}, replicas={"reporting": entries})
    assert error.source == "settings.APPDB_REPLICAS['reporting']"
    assert "must be a list of replica URLs or alias names" in str(error)


@pytest.mark.parametrize("entry", ["reporting", "nosuch", "orders_typo"])
def test_appdb_replicas_entry_neither_url_nor_other_alias_is_refused(make_app, databases, entry):
    error = refused(plan, [make_app("a")], databases, environ={}, replicas={"reporting": [entry]})
    assert "is neither a database URL nor another alias of settings.DATABASES" in str(error)
    assert "default, reporting_ro" in str(error)


def test_appdb_replicas_alias_already_a_mirror_of_another_is_refused(make_app, databases):
    databases["reporting_ro"]["TEST"] = {"MIRROR": "default"}
    error = refused(plan, [make_app("a")], databases, environ={}, replicas={"reporting": ["reporting_ro"]})
    assert "alias 'reporting_ro' is already a test mirror of 'default', not of 'reporting'" in str(error)
    # A mirror of that very primary is fine.
    databases["reporting_ro"]["TEST"] = {"MIRROR": "reporting"}
    result = plan([make_app("b")], databases, environ={}, replicas={"reporting": ["reporting_ro"]})
    assert result.replicas == {"reporting": ("reporting_ro",)}


def test_appdb_replicas_url_on_another_engine_is_refused(make_app, databases):
    error = refused(plan, [make_app("a")], databases, environ={}, replicas={"default": [PG_REPLICA_1]})
    assert error.source == "settings.APPDB_REPLICAS['default']"
    assert "same kind of database" in str(error)


def test_appdb_replicas_and_an_app_declaring_other_replicas_for_one_alias_are_refused(make_app, databases):
    error = refused(orders_plan, make_app, databases, PG_REPLICA_1, replicas={"orders": [PG_REPLICA_2]})
    assert "other read replicas for alias 'orders' than app 'orders' did" in str(error)
    # The same ones are fine.
    result = orders_plan(make_app, databases, PG_REPLICA_1, replicas={"orders": [PG_REPLICA_1]})
    assert result.replicas == {"orders": ("orders_replica_1",)}


# -- the replica's settings -----------------------------------------------------------------------


def test_a_replica_mirrors_its_primary_in_tests_checks_health_and_never_wraps_requests(make_app, databases):
    app = make_app(
        "orders",
        f"DATABASE_URL = {PG_PRIMARY!r}\nDATABASE_REPLICA_URLS = [{PG_REPLICA_1!r}]\n"
        "ATOMIC_REQUESTS = True\nCONN_HEALTH_CHECKS = False\nCONN_MAX_AGE = 60\nTIME_ZONE = 'UTC'\n"
        "DATABASE_TEST = {'NAME': 'test_orders_x'}\n",
    )
    result = plan([app], databases, environ={})
    primary, replica = result.new_databases["orders"], result.new_databases["orders_replica_1"]
    assert primary["ATOMIC_REQUESTS"] is True and primary["CONN_HEALTH_CHECKS"] is False
    assert replica["TEST"] == {"MIRROR": "orders"}
    assert replica["CONN_HEALTH_CHECKS"] is True
    assert replica["ATOMIC_REQUESTS"] is False
    # How Django uses the connection follows the primary.
    assert replica["CONN_MAX_AGE"] == 60 and replica["TIME_ZONE"] == "UTC"


def test_a_postgresql_replica_refuses_writes(make_app, databases):
    replica = orders_plan(make_app, databases, PG_REPLICA_1).new_databases["orders_replica_1"]
    assert replica["OPTIONS"]["options"] == "-c default_transaction_read_only=on"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("-c search_path=shop", "-c search_path=shop -c default_transaction_read_only=on"),
        ("  -c search_path=shop  ", "-c search_path=shop -c default_transaction_read_only=on"),
        ("-c default_transaction_read_only=on", "-c default_transaction_read_only=on"),
        (
            "-c search_path=shop -c default_transaction_read_only=on",
            "-c search_path=shop -c default_transaction_read_only=on",
        ),
    ],
)
def test_the_read_only_option_is_appended_to_the_primarys_not_duplicated(make_app, databases, options, expected):
    app = make_app(
        "orders",
        f"DATABASE_URL = {PG_PRIMARY!r}\nDATABASE_REPLICA_URLS = [{PG_REPLICA_1!r}]\n"
        f"DATABASE_OPTIONS = {{'options': {options!r}, 'sslmode': 'require'}}\n",
    )
    result = plan([app], databases, environ={})
    replica = result.new_databases["orders_replica_1"]
    assert replica["OPTIONS"]["options"] == expected
    assert replica["OPTIONS"]["sslmode"] == "require"
    # The primary keeps its own, writable.
    assert result.new_databases["orders"]["OPTIONS"]["options"] == options


def test_a_sqlite_replica_is_query_only(make_app, databases, tmp_path):
    app = make_app(
        "notes",
        f"DATABASE_URL = 'sqlite:///{tmp_path}/notes.db'\nDATABASE_REPLICA_URLS = ['sqlite:///{tmp_path}/notes.db']\n",
    )
    replica = plan([app], databases, environ={}).new_databases["notes_replica_1"]
    assert replica["OPTIONS"]["init_command"] == "PRAGMA query_only = ON; PRAGMA read_uncommitted = ON"
    assert replica["NAME"] == f"{tmp_path}/notes.db"


@pytest.mark.parametrize(
    ("init", "expected"),
    [
        (
            "PRAGMA foreign_keys = ON",
            "PRAGMA foreign_keys = ON; PRAGMA query_only = ON; PRAGMA read_uncommitted = ON",
        ),
        ("PRAGMA query_only = ON", "PRAGMA query_only = ON; PRAGMA read_uncommitted = ON"),
        (
            "PRAGMA read_uncommitted = ON; PRAGMA query_only = ON",
            "PRAGMA read_uncommitted = ON; PRAGMA query_only = ON",
        ),
    ],
)
def test_the_sqlite_init_command_is_appended_to_not_duplicated(make_app, databases, tmp_path, init, expected):
    app = make_app(
        "notes",
        f"DATABASE_URL = 'sqlite:///{tmp_path}/notes.db'\nDATABASE_REPLICA_URLS = ['sqlite:///{tmp_path}/notes.db']\n"
        f"DATABASE_OPTIONS = {{'init_command': {init!r}}}\n",
    )
    result = plan([app], databases, environ={})
    assert result.new_databases["notes_replica_1"]["OPTIONS"]["init_command"] == expected
    assert result.new_databases["notes"]["OPTIONS"]["init_command"] == init


def test_the_plan_repr_masks_replica_passwords(make_app, databases):
    result = orders_plan(make_app, databases, f"{PG_REPLICA_1},{PG_REPLICA_2}")
    assert "orders_replica_2" in repr(result)
    assert MARK not in repr(result)
