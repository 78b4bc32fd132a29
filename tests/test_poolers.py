"""The pooler marker: where it is declared, what it sets, the errors for bad values, W008 and appdb_list."""

from __future__ import annotations

import pytest

from django_appdb.databases import plan
from django_appdb.exceptions import AppDatabaseConfigError

PG = "postgresql://app:s3cret-pw@db.internal:6432/shop"
TRANSACTION = "pgbouncer-transaction"


@pytest.fixture
def databases(tmp_path):
    return {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "default.db")}}


def _fails(excinfo: pytest.ExceptionInfo[AppDatabaseConfigError], *parts: str) -> str:
    message = str(excinfo.value)
    assert "s3cret-pw" not in message
    for part in parts:
        assert part in message, message
    return message


def test_the_url_option_declares_the_pooler_and_never_reaches_the_driver(make_app, databases):
    result = plan([make_app("shop")], databases, environ={"SHOP_DATABASE_URL": f"{PG}?appdb_pooler={TRANSACTION}"})
    settings_dict = result.new_databases["shop"]
    assert result.poolers == {"shop": TRANSACTION}
    assert "appdb_pooler" not in settings_dict["OPTIONS"]
    assert settings_dict["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert settings_dict["OPTIONS"]["prepare_threshold"] is None
    assert "server_side_binding" not in settings_dict["OPTIONS"]


def test_database_py_declares_the_pooler(make_app, databases):
    app = make_app("shop", f"DATABASE_URL = {PG!r}\nDATABASE_POOLER = {TRANSACTION!r}\n")
    result = plan([app], databases, environ={})
    assert result.poolers == {"shop": TRANSACTION}
    assert result.new_databases["shop"]["DISABLE_SERVER_SIDE_CURSORS"] is True


def test_session_mode_needs_no_django_setting(make_app, databases):
    result = plan([make_app("shop")], databases, environ={"SHOP_DATABASE_URL": f"{PG}?appdb_pooler=pgbouncer-session"})
    assert result.poolers == {"shop": "pgbouncer-session"}
    assert result.new_databases["shop"]["DISABLE_SERVER_SIDE_CURSORS"] is False
    assert "prepare_threshold" not in result.new_databases["shop"].get("OPTIONS", {})


def test_no_pooler_declared_changes_nothing(make_app, databases):
    result = plan([make_app("shop")], databases, environ={"SHOP_DATABASE_URL": PG})
    assert result.poolers == {}
    assert result.new_databases["shop"]["DISABLE_SERVER_SIDE_CURSORS"] is False
    assert result.new_databases["shop"].get("OPTIONS", {}) == {}


def test_what_the_app_declared_is_kept(make_app, databases):
    app = make_app(
        "shop",
        f"DATABASE_URL = {PG!r}\nDATABASE_POOLER = {TRANSACTION!r}\nDISABLE_SERVER_SIDE_CURSORS = False\n"
        "DATABASE_OPTIONS = {'prepare_threshold': 5}\n",
    )
    settings_dict = plan([app], databases, environ={}).new_databases["shop"]
    assert settings_dict["DISABLE_SERVER_SIDE_CURSORS"] is False  # W008 reports it
    assert settings_dict["OPTIONS"]["prepare_threshold"] == 5


def test_the_environment_variable_replaces_database_pooler(make_app, databases):
    app = make_app("shop", f"DATABASE_URL = {PG!r}\nDATABASE_POOLER = {TRANSACTION!r}\n")
    result = plan([app], databases, environ={"SHOP_DATABASE_URL": PG.replace("6432", "5432")})
    assert result.poolers == {}


def test_an_unknown_pooler_in_the_url_is_refused(make_app, databases):
    with pytest.raises(AppDatabaseConfigError) as excinfo:
        plan([make_app("shop")], databases, environ={"SHOP_DATABASE_URL": f"{PG}?appdb_pooler=pgbouncer"})
    _fails(excinfo, "'shop'", "SHOP_DATABASE_URL", "?appdb_pooler=", "'pgbouncer'", TRANSACTION, "pgbouncer-session")


@pytest.mark.parametrize("value", ["'transaction'", "1"])
def test_an_unknown_database_pooler_is_refused(make_app, databases, value):
    app = make_app("shop", f"DATABASE_URL = {PG!r}\nDATABASE_POOLER = {value}\n")
    with pytest.raises(AppDatabaseConfigError) as excinfo:
        plan([app], databases, environ={})
    _fails(excinfo, "'shop'", "database.py", "DATABASE_POOLER", TRANSACTION)


def test_two_different_poolers_for_one_url_are_refused(make_app, databases):
    app = make_app("shop", f"DATABASE_URL = '{PG}?appdb_pooler={TRANSACTION}'\nDATABASE_POOLER = 'pgbouncer-session'\n")
    with pytest.raises(AppDatabaseConfigError) as excinfo:
        plan([app], databases, environ={})
    _fails(excinfo, "'shop'", "remove one")


def test_a_pooler_on_another_vendor_is_refused(make_app, databases, tmp_path):
    url = f"sqlite:///{tmp_path}/shop.db?appdb_pooler={TRANSACTION}"
    with pytest.raises(AppDatabaseConfigError) as excinfo:
        plan([make_app("shop")], databases, environ={"SHOP_DATABASE_URL": url})
    _fails(excinfo, "'shop'", "not a PostgreSQL database")


def test_apps_sharing_an_alias_must_agree_on_the_pooler(make_app, databases):
    environ = {"A_DATABASE_URL": f"{PG}?appdb_pooler={TRANSACTION}", "B_DATABASE_URL": PG}
    app_a, app_b = make_app("a"), make_app("b", "DATABASE_ALIAS = 'a'\n")
    with pytest.raises(AppDatabaseConfigError):
        plan([app_b, app_a], databases, environ=environ)


def test_appdb_poolers_declares_settings_aliases(databases):
    pg = {"ENGINE": "django.db.backends.postgresql", "NAME": "shop", "HOST": "db", "PORT": 6432}
    result = plan([], {**databases, "shop": pg}, environ={}, poolers={"shop": TRANSACTION, "default": None})
    assert result.poolers == {"shop": TRANSACTION}


@pytest.mark.parametrize(
    ("poolers", "expected"),
    [
        (["default"], "must be a dict"),
        ({"nope": TRANSACTION}, "'nope' is not an alias"),
        ({"default": "pgbouncer"}, "pgbouncer-session"),
        ({"default": TRANSACTION}, "is a PostgreSQL pooler"),
    ],
)
def test_bad_appdb_poolers_are_refused(databases, poolers, expected):
    with pytest.raises(AppDatabaseConfigError) as excinfo:
        plan([], databases, environ={}, poolers=poolers)
    _fails(excinfo, "APPDB_POOLERS", expected)


def test_an_app_on_an_alias_declared_otherwise_is_refused(make_app, databases):
    app = make_app("shop", f"DATABASE_POOLER = {TRANSACTION!r}\n")
    with pytest.raises(AppDatabaseConfigError) as excinfo:
        plan([app], databases, environ={})
    _fails(excinfo, "'shop'", "'default'", "APPDB_POOLERS")


def test_w008_names_each_setting_transaction_mode_breaks(monkeypatch, add_alias):
    from django.conf import settings

    from django_appdb import checks
    from django_appdb.state import state

    alias = add_alias(
        "pooled",
        ENGINE="django.db.backends.postgresql",
        NAME="x",
        DISABLE_SERVER_SIDE_CURSORS=False,
        OPTIONS={"prepare_threshold": 5, "pool": True, "server_side_binding": True},
    )
    monkeypatch.setitem(state.poolers, alias, TRANSACTION)
    messages = checks.check_poolers()
    assert {message.id for message in messages} == {"django_appdb.W008"}
    text = "\n".join(message.msg for message in messages)
    for setting in ("DISABLE_SERVER_SIDE_CURSORS", "OPTIONS['prepare_threshold']", "OPTIONS['pool']"):
        assert setting in text
    assert "server_side_binding" not in text  # binding alone prepares nothing
    settings.DATABASES[alias] = {"ENGINE": "django.db.backends.postgresql", "NAME": "x"}
    settings.DATABASES[alias].update({"DISABLE_SERVER_SIDE_CURSORS": True, "OPTIONS": {"prepare_threshold": None}})
    assert checks.check_poolers() == []


def test_appdb_list_shows_the_pooler(monkeypatch):
    import json
    from io import StringIO

    from django.core.management import call_command

    from django_appdb.state import state

    monkeypatch.setitem(state.poolers, "default", TRANSACTION)
    out = StringIO()
    call_command("appdb_list", "--json", stdout=out)
    rows = json.loads(out.getvalue())
    assert {row["pooler"] for row in rows if row["alias"] == "default"} == {TRANSACTION}
    out = StringIO()
    call_command("appdb_list", stdout=out)
    assert f"  pooler: {TRANSACTION}" in out.getvalue()


def test_a_bad_appdb_poolers_is_reported_by_e001(settings):
    from django_appdb import checks

    settings.APPDB_POOLERS = {"default": "pgbouncer"}
    messages = checks.check_configuration()
    assert [message.id for message in messages] == ["django_appdb.E001"]
    assert "settings.APPDB_POOLERS['default']" in messages[0].msg
    assert "pgbouncer-transaction" in (messages[0].hint or "")
