"""Direct URLs in the plan: from the environment, ``database.py`` and ``APPDB_DIRECT_URLS``, checked and masked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from django.test import override_settings

from django_appdb.checks import check_settings
from django_appdb.databases import plan
from django_appdb.state import direct_settings, state

# refused() checks that no password (marked with MARK) shows in the error, its repr or traceback.
from .test_replica_plan import MARK, refused

POOLED = f"postgresql://app:{MARK}pw@pgbouncer.internal:6432/orders"
DIRECT = f"postgresql://app:{MARK}pw@db.internal:5432/orders"
VAR = "ORDERS_DATABASE_DIRECT_URL"


@pytest.fixture
def databases(tmp_path: Path) -> dict[str, dict[str, Any]]:
    """Return ``DATABASES``: default on SQLite, ``reporting`` through a pooler, with a test database name of its own."""
    reporting = {"ENGINE": "django.db.backends.postgresql", "NAME": "reports", "HOST": "pgbouncer.internal"}
    reporting.update(PORT="6432", USER="rep", PASSWORD=f"{MARK}rep", TEST={"NAME": "test_reports_own"})
    return {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "default.db")},
        "reporting": reporting,
    }


def orders_plan(make_app: Any, databases: dict[str, Any], direct: str = DIRECT, **more: Any) -> Any:
    return plan([make_app("orders")], databases, environ={"ORDERS_DATABASE_URL": POOLED, VAR: direct}, **more)


def test_the_variable_gives_the_alias_its_direct_settings(make_app, databases):
    result = orders_plan(make_app, databases)
    direct = result.direct["orders"]
    assert (direct["HOST"], direct["PORT"], direct["NAME"]) == ("db.internal", 5432, "orders")
    # Only the plan holds it: DATABASES gets the pooled entry alone.
    assert list(result.new_databases) == ["orders"]
    assert result.new_databases["orders"]["HOST"] == "pgbouncer.internal"
    assert direct["CONN_MAX_AGE"] == 0


def test_the_variable_wins_over_database_py(make_app, databases):
    app = make_app("orders", 'DATABASE_DIRECT_URL = "postgresql://app@elsewhere.internal/orders"\n')
    result = plan([app], databases, environ={"ORDERS_DATABASE_URL": POOLED, VAR: DIRECT})
    assert result.direct["orders"]["HOST"] == "db.internal"


def test_database_py_declares_it(make_app, databases):
    app = make_app(
        "orders",
        f'DATABASE_URL = "{POOLED}"\nDATABASE_DIRECT_URL = "{DIRECT}"\n'
        'DATABASE_OPTIONS = {"prepare_threshold": None}\nDISABLE_SERVER_SIDE_CURSORS = True\n',
    )
    result = plan([app], databases, environ={})
    direct = result.direct["orders"]
    assert direct["HOST"] == "db.internal"
    # How Django uses the connection follows the alias.
    assert direct["OPTIONS"] == {"prepare_threshold": None}
    assert direct["DISABLE_SERVER_SIDE_CURSORS"] is True


def test_database_py_with_an_empty_direct_url_is_refused(make_app, databases):
    app = make_app("orders", f'DATABASE_URL = "{POOLED}"\nDATABASE_DIRECT_URL = "  "\n')
    error = refused(plan, [app], databases, environ={})
    assert "DATABASE_DIRECT_URL is empty" in str(error)


def test_a_blank_variable_is_unset(make_app, databases):
    assert orders_plan(make_app, databases, direct="  ").direct == {}


def test_appdb_direct_urls_gives_an_alias_of_databases_one(make_app, databases):
    url = f"postgresql://rep:{MARK}rep@db.internal:5432/reports"
    result = plan([make_app("orders")], databases, environ={}, direct_urls={"reporting": url})
    direct = result.direct["reporting"]
    assert (direct["HOST"], direct["NAME"], direct["TEST"]) == ("db.internal", "reports", {"NAME": "test_reports_own"})


def test_another_engine_is_refused_masked(make_app, databases, tmp_path):
    error = refused(orders_plan, make_app, databases, direct=f"mysql://app:{MARK}pw@db.internal/orders")
    assert error.source == f"environment variable {VAR}"
    assert "uses django.db.backends.mysql, but alias 'orders' uses django.db.backends.postgresql" in str(error)


def test_another_database_name_is_refused(make_app, databases):
    error = refused(orders_plan, make_app, databases, direct=f"postgresql://app:{MARK}pw@db.internal/shop")
    assert "names database 'shop', but alias 'orders' names 'orders'" in str(error)
    assert "Name the same database in both URLs" in str(error)


def test_a_bad_direct_url_is_refused_masked(make_app, databases):
    error = refused(orders_plan, make_app, databases, direct=f"postgresql://app:{MARK}p/w@db.internal/orders")
    assert "'@' after the host" in str(error)


def test_an_app_on_default_is_told_to_use_the_setting(make_app, databases):
    error = refused(plan, [make_app("orders")], databases, environ={VAR: DIRECT})
    assert "the app uses the default database" in str(error)
    assert "APPDB_DIRECT_URLS" in (error.fix or "")


def test_a_sqlite_database_has_no_direct_url(make_app, databases, tmp_path):
    environ = {"ORDERS_DATABASE_URL": f"sqlite:///{tmp_path}/o.db", VAR: f"sqlite:///{tmp_path}/o.db"}
    error = refused(plan, [make_app("orders")], databases, environ=environ)
    assert "has no pooler" in str(error)


def test_apps_sharing_an_alias_with_other_direct_urls_are_refused(make_app, databases):
    environ = {
        "ORDERS_DATABASE_URL": POOLED,
        "BILLING_DATABASE_URL": POOLED,
        VAR: DIRECT,
        "BILLING_DATABASE_DIRECT_URL": "postgresql://app@other.internal/orders",
    }
    error = refused(plan, [make_app("orders"), make_app("billing")], databases, environ=environ)
    assert "another direct URL for alias 'orders' than app 'orders' did" in str(error)


def test_the_setting_must_be_a_dict_of_known_aliases(make_app, databases):
    error = refused(plan, [make_app("orders")], databases, environ={}, direct_urls=["x"])
    assert "must be a dict of alias -> direct URL, got list" in str(error)
    error = refused(plan, [make_app("orders")], databases, environ={}, direct_urls={"nope": DIRECT})
    assert "'nope' is not an alias of settings.DATABASES" in str(error)
    assert "Use one of: default, reporting" in (error.fix or "")
    error = refused(plan, [make_app("orders")], databases, environ={}, direct_urls={"reporting": ""})
    assert error.source == "settings.APPDB_DIRECT_URLS['reporting']"


def test_the_declaration_repr_masks_the_direct_url(make_app):
    from django_appdb.discovery import declare

    declaration = declare(make_app("orders"), {"ORDERS_DATABASE_URL": POOLED, VAR: DIRECT})
    assert declaration.direct_url == DIRECT
    assert MARK not in repr(declaration)
    assert "db.internal" in repr(declaration)


@pytest.mark.parametrize(
    ("value", "shown"),
    [(["x"], "got list"), ({"default": 3}, "a value that is not a URL"), ({"default": " "}, "not a URL")],
)
def test_e009_reports_a_setting_of_the_wrong_type(value, shown):
    with override_settings(APPDB_DIRECT_URLS=value):
        (message,) = [m for m in check_settings() if m.id == "django_appdb.E009"]
    assert shown in message.msg
    assert "APPDB_DIRECT_URLS = {'default':" in message.hint


def test_e009_is_quiet_for_a_good_setting():
    with override_settings(APPDB_DIRECT_URLS={"default": "postgresql://db.internal/x"}):
        assert not [m for m in check_settings() if m.id == "django_appdb.E009"]


def test_direct_settings_is_a_complete_fresh_entry_naming_the_alias_database_now(monkeypatch):
    alias = "orders"
    declared = {"ENGINE": "django.db.backends.postgresql", "NAME": "orders", "HOST": "db.internal", "PORT": 5432}
    monkeypatch.setitem(state.direct, alias, declared)
    assert direct_settings("inventory") is None
    entry = direct_settings(alias)
    assert entry is not None
    assert entry["HOST"] == "db.internal"
    # Django's defaults, and the NAME and TEST of the alias as it is now (its test database in a test run).
    assert entry["NAME"] == connections.settings[alias]["NAME"]
    assert entry["TEST"] == connections.settings[alias]["TEST"]
    assert {"ATOMIC_REQUESTS", "AUTOCOMMIT", "OPTIONS", "TIME_ZONE", "USER", "PASSWORD"} <= set(entry)
    entry["OPTIONS"]["x"] = 1
    assert "x" not in (direct_settings(alias) or {})["OPTIONS"]
    assert declared == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "orders",
        "HOST": "db.internal",
        "PORT": 5432,
    }


def test_an_alias_naming_its_test_database_keeps_its_direct_url(make_app, databases):
    # Under the test runner, settings.DATABASES names the test database; the direct URL names the real one.
    databases["reporting"]["NAME"] = "test_reports_own"
    url = "postgresql://rep@db.internal:5432/reports"
    result = plan([make_app("orders")], databases, environ={}, direct_urls={"reporting": url})
    assert result.direct["reporting"]["HOST"] == "db.internal"


def test_e001_reports_a_direct_url_made_invalid_after_start_up():
    from django_appdb.checks import check_configuration

    with override_settings(APPDB_DIRECT_URLS={"default": f"postgresql://u:{MARK}@db.internal/x"}):
        messages = [m for m in check_configuration() if m.id == "django_appdb.E001"]
    assert messages and "settings.APPDB_DIRECT_URLS['default']" in messages[0].msg
    assert MARK not in messages[0].msg


def test_the_url_variable_drops_the_direct_url_written_for_the_modules_database(make_app, databases):
    # ORDERS_DATABASE_URL moves the database: a direct URL of the old one would migrate the wrong server.
    app = make_app("orders", f'DATABASE_URL = "{POOLED}"\nDATABASE_DIRECT_URL = "{DIRECT}"\n')
    moved = "postgresql://app@pgbouncer.elsewhere:6432/orders"
    assert plan([app], databases, environ={"ORDERS_DATABASE_URL": moved}).direct == {}
    environ = {"ORDERS_DATABASE_URL": moved, VAR: "postgresql://app@db.elsewhere/orders"}
    assert plan([app], databases, environ=environ).direct["orders"]["HOST"] == "db.elsewhere"


def test_w005_reports_a_direct_url_variable_naming_no_app(monkeypatch):
    from django_appdb.checks import check_environment

    monkeypatch.setenv("ORDRS_DATABASE_DIRECT_URL", "postgresql://db.internal/orders")
    monkeypatch.setenv("ORDERS_DATABASE_DIRECT_URL", "postgresql://db.internal/orders")
    (message,) = [m for m in check_environment() if m.id == "django_appdb.W005"]
    assert "ORDRS_DATABASE_DIRECT_URL is set, but no installed app has the label 'ordrs'" in message.msg
    assert "is used by no migration" in message.msg
    assert message.hint == "Did you mean ORDERS_DATABASE_DIRECT_URL?"


@pytest.mark.subprocess
def test_the_setting_reaches_the_started_project():
    """``settings.APPDB_DIRECT_URLS`` is read at start-up, not only by the checks."""
    import subprocess
    import sys

    code = (
        "import django\n"
        "from django.conf import settings\n"
        "settings.configure(INSTALLED_APPS=['django_appdb'], DATABASES={'default': {"
        "'ENGINE': 'django.db.backends.postgresql', 'NAME': 'shop', 'HOST': 'pooler.internal', 'PORT': '6432'}},"
        " APPDB_DIRECT_URLS={'default': 'postgresql://app:" + MARK + "@db.internal:5432/shop'})\n"
        "django.setup()\n"
        "from django_appdb.state import direct_settings\n"
        "direct = direct_settings('default')\n"
        "print(direct['HOST'], direct['PORT'], direct['NAME'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["db.internal", "5432", "shop"]
