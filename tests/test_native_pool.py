"""Django's native psycopg pool declared for app databases: ``DATABASE_POOL`` and ``?pool=true&pool_*``."""

import pytest

from django_appdb.databases import plan
from django_appdb.exceptions import AppDatabaseConfigError
from django_appdb.nativepool import pool_max_size

# Django's native pool is psycopg 3's: without it (no extras) these tests cannot run.
pytestmark = pytest.mark.psycopg

PG = "postgresql://shop:s3cret-pw@db.internal:5432/shop"


@pytest.fixture
def databases(tmp_path):
    return {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "default.db")}}


def settings_of(result, alias="orders"):
    return result.new_databases[alias]


def test_database_py_declares_the_pool(make_app, databases):
    app = make_app("orders", f'DATABASE_URL = "{PG}"\nDATABASE_POOL = {{"min_size": 2, "max_size": 8}}\n')
    assert settings_of(plan([app], databases, environ={}))["OPTIONS"] == {"pool": {"min_size": 2, "max_size": 8}}


def test_database_py_pool_true(make_app, databases):
    app = make_app("orders", f'DATABASE_URL = "{PG}"\nDATABASE_POOL = True\n')
    assert settings_of(plan([app], databases, environ={}))["OPTIONS"] == {"pool": True}


def test_url_query_options_become_typed_pool_arguments(make_app, databases):
    url = f"{PG}?pool=true&pool_max_size=10&pool_min_size=2&pool_timeout=2.5&pool_name=shop&sslmode=require"
    result = plan([make_app("orders")], databases, environ={"ORDERS_DATABASE_URL": url})
    options = settings_of(result)["OPTIONS"]
    # The pool_* options never reach the driver as connection parameters.
    assert options == {"sslmode": "require", "pool": {"max_size": 10, "min_size": 2, "timeout": 2.5, "name": "shop"}}
    assert isinstance(options["pool"]["timeout"], float) and isinstance(options["pool"]["max_size"], int)


def test_pool_options_alone_turn_the_pool_on(make_app, databases):
    result = plan(
        [make_app("orders")], databases, environ={"ORDERS_DATABASE_URL": f"{PG}?pool_max_size=3&pool_min_size=1"}
    )
    assert settings_of(result)["OPTIONS"] == {"pool": {"max_size": 3, "min_size": 1}}


def test_url_options_win_over_database_py_key_by_key(make_app, databases):
    app = make_app("orders", 'DATABASE_POOL = {"min_size": 1, "max_size": 4, "timeout": 9}\n')
    result = plan([app], databases, environ={"ORDERS_DATABASE_URL": f"{PG}?pool_max_size=12"})
    assert settings_of(result)["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 12, "timeout": 9}


def test_url_pool_false_turns_the_module_pool_off(make_app, databases):
    app = make_app("orders", "DATABASE_POOL = True\n")
    result = plan([app], databases, environ={"ORDERS_DATABASE_URL": f"{PG}?pool=false"})
    assert pool_max_size(settings_of(result)["OPTIONS"]["pool"]) is None


@pytest.mark.parametrize(
    ("database_py", "url", "message"),
    [
        ("DATABASE_POOL = True\n", "sqlite:///orders.db", "only PostgreSQL (with psycopg 3) has one"),
        ("", "mysql://u:s3cret-pw@h/db?pool=true", "only PostgreSQL (with psycopg 3) has one"),
        ("DATABASE_POOL = True\nCONN_MAX_AGE = 60\n", PG, "CONN_MAX_AGE = 60; Django refuses a pool"),
        ("CONN_MAX_AGE = None\n", f"{PG}?pool=true", "CONN_MAX_AGE = None; Django refuses a pool"),
        ("", f"{PG}?pool_max=3", "unknown query option 'pool_max'. Valid pool options are: pool_min_size"),
        ("", f"{PG}?pool=maybe", "pool='maybe' is not true or false"),
        ("", f"{PG}?pool_max_size=ten", "pool_max_size='ten' is not a whole number"),
        ("", f"{PG}?pool_timeout=soon", "pool_timeout='soon' is not a number"),
        ("", f"{PG}?pool=false&pool_max_size=3", "says pool=false but also gives pool_max_size"),
        ("", f"{PG}?pool_max_size=2&pool_min_size=5", "max_size (2) must be at least 1 and at least its min_size (5)"),
        ('DATABASE_POOL = {"max_size": 2}\n', PG, "max_size (2) must be at least 1 and at least its min_size (4)"),
        ('DATABASE_POOL = {"maxsize": 2}\n', PG, "'maxsize' is not a psycopg_pool.ConnectionPool argument"),
        ('DATABASE_POOL = {"open": True}\n', PG, "'open' is set by Django itself"),
        ('DATABASE_POOL = {"min_size": -1}\n', PG, "min_size must be a whole number >= 0"),
        ('DATABASE_POOL = {"timeout": 0}\n', PG, "timeout must be a positive number of seconds"),
        (f'DATABASE_URL = "{PG}"\nDATABASE_POOL = True\nDATABASE_OPTIONS = {{"pool": True}}\n', None, "declared twice"),
    ],
)
def test_a_bad_pool_is_an_error_naming_app_and_source(make_app, databases, database_py, url, message):
    app = make_app("orders", database_py)
    with pytest.raises(AppDatabaseConfigError) as caught:
        plan([app], databases, environ={} if url is None else {"ORDERS_DATABASE_URL": url})
    text = str(caught.value)
    assert message in text
    assert "app 'orders'" in text
    assert "s3cret-pw" not in text


def test_database_py_type_is_checked(make_app, databases):
    app = make_app("orders", f'DATABASE_URL = "{PG}"\nDATABASE_POOL = 8\n')
    with pytest.raises(AppDatabaseConfigError, match="DATABASE_POOL must be bool or dict, got int"):
        plan([app], databases, environ={})


def test_a_pool_on_the_default_database_is_refused(make_app, databases):
    with pytest.raises(AppDatabaseConfigError, match=r"uses the default database.*settings.DATABASES\['default'\]"):
        plan([make_app("orders", "DATABASE_POOL = True\n")], databases, environ={})


def test_a_missing_psycopg_pool_is_an_error(make_app, databases, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "psycopg_pool" else real(name))
    with pytest.raises(AppDatabaseConfigError, match=r"needs psycopg_pool.*django-appdb\[pool\]"):
        plan([make_app("orders")], databases, environ={"ORDERS_DATABASE_URL": f"{PG}?pool=true"})


def test_replicas_of_a_pooled_primary_get_pools_of_their_own(make_app, databases):
    app = make_app(
        "orders",
        f'DATABASE_URL = "{PG}"\nDATABASE_POOL = {{"max_size": 6}}\n'
        'DATABASE_REPLICA_URLS = ["postgresql://shop@replica-1/shop", "postgresql://shop@replica-2/shop?pool=false"]\n',
    )
    result = plan([app], databases, environ={})
    assert result.new_databases["orders_replica_1"]["OPTIONS"]["pool"] == {"max_size": 6}
    # A replica's URL may say otherwise.
    assert pool_max_size(result.new_databases["orders_replica_2"]["OPTIONS"]["pool"]) is None


def test_pool_max_size_defaults_as_psycopg_pool():
    import inspect

    from psycopg_pool import ConnectionPool

    parameters = inspect.signature(ConnectionPool).parameters
    assert pool_max_size(True) == parameters["min_size"].default
    assert pool_max_size({"min_size": 7}) == 7
    assert pool_max_size({"min_size": 1, "max_size": 9}) == 9
    assert pool_max_size(None) is None and pool_max_size(False) is None
