"""The Django settings -> SQLAlchemy engine mapping, without opening connections."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from sqlalchemy import event, pool, text

from django_appdb.exceptions import MissingDriverError
from django_appdb.sqlalchemy import dialects

PASSWORD = "p@ss:w/rd#50%?&x"


def settings(engine: str = "django.db.backends.postgresql", **overrides: Any) -> dict[str, Any]:
    base = {
        "ENGINE": engine,
        "NAME": "shop",
        "USER": "app",
        "PASSWORD": PASSWORD,
        "HOST": "db.internal",
        "PORT": "6543",
        "OPTIONS": {},
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False,
    }
    base.update(overrides)
    return base


def derive(settings_dict: dict[str, Any], vendor: str = "postgresql", *, is_async: bool = False) -> dialects.EngineSpec:
    return dialects.derive_spec("shop", settings_dict, vendor, is_async=is_async)


@pytest.mark.parametrize("is_async", [False, pytest.param(True, marks=pytest.mark.async_drivers)])
@pytest.mark.psycopg
def test_postgresql_url_is_built_from_fields_with_any_password(is_async):
    spec = derive(settings(), is_async=is_async)
    url = spec.url
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "app",
        PASSWORD,
        "db.internal",
        6543,
        "shop",
    )
    assert PASSWORD not in repr(url) and PASSWORD not in str(url) and PASSWORD not in repr(spec)
    # The rendered URL round-trips through SQLAlchemy's own parser.
    from sqlalchemy.engine import make_url

    assert make_url(url.render_as_string(hide_password=False)).password == PASSWORD


@pytest.mark.psycopg
def test_postgresql_without_a_pooler_keeps_psycopgs_and_sqlalchemys_defaults():
    spec = derive(settings())
    # No prepare_threshold: psycopg's default prepares statements run five times.
    assert "prepare_threshold" not in spec.connect_args
    assert "poolclass" not in spec.options
    assert spec.connect_args["client_encoding"] == "UTF8"
    assert "pool_pre_ping" not in spec.options
    assert "pool_recycle" not in spec.options


@pytest.mark.parametrize("is_async", [False, pytest.param(True, marks=pytest.mark.async_drivers)])
@pytest.mark.psycopg
def test_postgresql_behind_pgbouncer_transaction_prepares_nothing_and_pools_nothing(monkeypatch, is_async):
    from django_appdb.state import state

    monkeypatch.setitem(state.poolers, "shop", "pgbouncer-transaction")
    spec = derive(settings(), is_async=is_async)
    assert spec.connect_args["prepare_threshold"] is None
    assert spec.options["poolclass"] is pool.NullPool


@pytest.mark.psycopg
def test_postgresql_behind_pgbouncer_session_pools_nothing_but_may_prepare(monkeypatch):
    from django_appdb.state import state

    monkeypatch.setitem(state.poolers, "shop", "pgbouncer-session")
    spec = derive(settings())
    assert "prepare_threshold" not in spec.connect_args
    assert spec.options["poolclass"] is pool.NullPool


@pytest.mark.psycopg
def test_postgresql_behind_a_pooler_keeps_what_the_user_wrote(monkeypatch):
    from django_appdb.state import state

    monkeypatch.setitem(state.poolers, "shop", "pgbouncer-transaction")
    spec = derive(settings(OPTIONS={"prepare_threshold": 3}))
    assert spec.connect_args["prepare_threshold"] == 3  # kept; django_appdb.W008 reports it
    dialects.apply_options(spec, {"poolclass": pool.QueuePool, "pool_pre_ping": True})
    assert spec.options["poolclass"] is pool.QueuePool


@pytest.mark.psycopg
def test_postgresql_options_become_connect_args_and_django_only_ones_are_translated():
    from psycopg import IsolationLevel

    options = {
        "sslmode": "require",
        "application_name": "shop",
        "prepare_threshold": 5,
        "isolation_level": IsolationLevel.SERIALIZABLE,
        "assume_role": 'sales"team',
        "server_side_binding": True,
        "pool": {"min_size": 2},
        "cursor_factory": object,
    }
    spec = derive(settings(OPTIONS=options))
    assert spec.connect_args == {
        "sslmode": "require",
        "application_name": "shop",
        "prepare_threshold": 5,
        "client_encoding": "UTF8",
    }
    assert spec.options["isolation_level"] == "SERIALIZABLE"
    assert spec.init_statements == ('SET ROLE "sales""team"',)


@pytest.mark.psycopg
def test_postgresql_invalid_isolation_level_is_a_clear_error():
    with pytest.raises(ImproperlyConfigured, match=r"isolation_level.*psycopg\.IsolationLevel"):
        derive(settings(OPTIONS={"isolation_level": "sometimes"}))


@pytest.mark.psycopg
def test_postgresql_without_name_uses_the_maintenance_database_like_django():
    assert derive(settings(NAME=None)).url.database == "postgres"
    with pytest.raises(ImproperlyConfigured, match="NAME is empty"):
        derive(settings(NAME=""))
    assert derive(settings(NAME="", OPTIONS={"service": "shop"})).connect_args["service"] == "shop"


@pytest.mark.psycopg
def test_postgresql_socket_directory_and_bad_port():
    assert derive(settings(HOST="/var/run/postgresql", PORT="")).url.host == "/var/run/postgresql"
    with pytest.raises(ImproperlyConfigured, match="PORT 'abc' is not a number"):
        derive(settings(PORT="abc"))


@pytest.mark.psycopg
def test_health_checks_and_max_age_map_to_pool_options():
    spec = derive(settings(CONN_HEALTH_CHECKS=True, CONN_MAX_AGE=600))
    assert spec.options["pool_pre_ping"] is True
    assert spec.options["pool_recycle"] == 600
    # None (unlimited) and 0 (Django's per-request close) leave SQLAlchemy's pool alone.
    assert "pool_recycle" not in derive(settings(CONN_MAX_AGE=None)).options


@pytest.mark.parametrize(
    ("is_async", "driver"),
    [(False, "sqlite+pysqlite"), pytest.param(True, "sqlite+aiosqlite", marks=pytest.mark.async_drivers)],
)
def test_sqlite_file_path_is_kept_verbatim(is_async, driver, tmp_path):
    path = tmp_path / "db #1.sqlite3"
    spec = derive(
        settings("django.db.backends.sqlite3", NAME=path, OPTIONS={"timeout": 20}), "sqlite", is_async=is_async
    )
    assert spec.url.drivername == driver
    assert spec.url.database == str(path)
    assert spec.url.query == {"uri": "true"}
    assert spec.connect_args == {"check_same_thread": False, "timeout": 20}
    # Pooled alike on every supported SQLAlchemy (2.0's aiosqlite default was NullPool).
    assert spec.options.get("poolclass") is (pool.AsyncAdaptedQueuePool if is_async else None)
    assert spec.init_statements[0] == "PRAGMA foreign_keys = ON"


@pytest.mark.parametrize("is_async", [False, pytest.param(True, marks=pytest.mark.async_drivers)])
def test_sqlite_django_test_database_shares_one_cache(is_async):
    name = "file:memorydb_default?mode=memory&cache=shared"
    spec = derive(settings("django.db.backends.sqlite3", NAME=name), "sqlite", is_async=is_async)
    assert spec.url.database == name
    assert spec.options["poolclass"] is (pool.AsyncAdaptedQueuePool if is_async else pool.QueuePool)


@pytest.mark.parametrize("is_async", [False, pytest.param(True, marks=pytest.mark.async_drivers)])
def test_sqlite_private_memory_database_uses_one_connection(is_async):
    spec = derive(settings("django.db.backends.sqlite3", NAME=":memory:"), "sqlite", is_async=is_async)
    assert spec.options["poolclass"] is pool.StaticPool


def test_sqlite_memory_engine_keeps_its_data_across_sessions_and_threads():
    import threading

    spec = derive(settings("django.db.backends.sqlite3", NAME=":memory:"), "sqlite")
    engine = dialects.create(spec)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        seen = []
        thread = threading.Thread(
            target=lambda: seen.append(engine.connect().execute(text("SELECT x FROM t")).scalar())
        )
        thread.start()
        thread.join()
        assert seen == [1]
    finally:
        engine.dispose()


def test_sqlite_init_command_and_foreign_keys_run_on_every_connection(tmp_path):
    options = {"init_command": "PRAGMA cache_size = 1234; PRAGMA busy_timeout = 4321;"}
    engine = dialects.create(
        derive(settings("django.db.backends.sqlite3", NAME=str(tmp_path / "a.sqlite3"), OPTIONS=options), "sqlite")
    )
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA cache_size")).scalar() == 1234
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 4321
    finally:
        engine.dispose()


def test_sqlite_transaction_mode_begins_transactions_that_way(tmp_path):
    options = {"transaction_mode": "immediate"}
    engine = dialects.create(
        derive(settings("django.db.backends.sqlite3", NAME=str(tmp_path / "a.sqlite3"), OPTIONS=options), "sqlite")
    )
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda conn, cursor, statement, *args: statements.append(statement))
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
        assert statements[0] == "BEGIN IMMEDIATE"
    finally:
        engine.dispose()
    with pytest.raises(ImproperlyConfigured, match="transaction_mode"):
        derive(settings("django.db.backends.sqlite3", NAME="x", OPTIONS={"transaction_mode": "lazy"}), "sqlite")


def test_sqlite_needs_a_name():
    with pytest.raises(ImproperlyConfigured, match="NAME is empty"):
        derive(settings("django.db.backends.sqlite3", NAME=""), "sqlite")


def test_mysql_mapping():
    importer = lambda module: None  # noqa: E731 - mysqlclient is not installable here
    spec = dialects.derive_spec(
        "shop",
        settings(
            "django.db.backends.mysql",
            HOST="/run/mysqld/mysqld.sock",
            OPTIONS={"init_command": "SET sql_mode='STRICT_TRANS_TABLES'", "charset": "utf8"},
        ),
        "mysql",
        is_async=False,
        importer=importer,
    )
    assert spec.url.drivername == "mysql+mysqldb"
    assert spec.url.password == PASSWORD
    assert spec.url.host is None
    assert spec.url.query == {"charset": "utf8"}
    assert spec.connect_args == {
        "unix_socket": "/run/mysqld/mysqld.sock",
        "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
    }
    # Django's default isolation level for MySQL.
    assert spec.options["isolation_level"] == "READ COMMITTED"
    spec = dialects.derive_spec(
        "shop",
        settings("django.db.backends.mysql", OPTIONS={"isolation_level": None}),
        "mysql",
        is_async=True,
        importer=importer,
    )
    assert spec.url.drivername == "mysql+aiomysql"
    assert "isolation_level" not in spec.options
    with pytest.raises(ImproperlyConfigured, match="isolation_level"):
        dialects.derive_spec(
            "shop",
            settings("django.db.backends.mysql", OPTIONS={"isolation_level": "chaos"}),
            "mysql",
            is_async=False,
            importer=importer,
        )


def test_async_mysql_falls_back_to_asyncmy():
    def importer(module: str) -> None:
        if module == "aiomysql":
            raise ImportError("No module named 'aiomysql'")

    spec = dialects.derive_spec("shop", settings("django.db.backends.mysql"), "mysql", is_async=True, importer=importer)
    assert spec.url.drivername == "mysql+asyncmy"


@pytest.mark.parametrize(
    ("vendor", "is_async", "package"),
    [
        ("postgresql", False, "django-appdb[postgres]"),
        ("postgresql", True, "django-appdb[async]"),
        ("sqlite", True, "django-appdb[async]"),
        ("mysql", False, "django-appdb[mysql]"),
        ("mysql", True, "django-appdb[async-mysql]"),
    ],
)
def test_missing_driver_names_the_extra_to_install(vendor, is_async, package):
    def importer(module: str) -> None:
        raise ImportError(f"No module named {module!r}")

    with pytest.raises(MissingDriverError) as excinfo:
        dialects.derive_spec("shop", settings(), vendor, is_async=is_async, importer=importer)
    message = str(excinfo.value)
    assert f"pip install {package!r}" in message
    assert "'shop'" in message and PASSWORD not in message


def test_async_engines_without_greenlet_say_what_to_install():
    def importer(module: str) -> None:
        if module == "greenlet":
            raise ImportError("No module named 'greenlet'")

    with pytest.raises(MissingDriverError, match=re.escape("pip install 'django-appdb[async]'")):
        dialects.derive_spec("shop", settings(), "postgresql", is_async=True, importer=importer)
    # Sync engines do not need it.
    assert dialects.derive_spec("shop", settings(), "postgresql", is_async=False, importer=importer)


def test_real_missing_mysqlclient_is_reported():
    try:
        import MySQLdb  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("mysqlclient is installed")
    with pytest.raises(MissingDriverError, match=re.escape("pip install 'django-appdb[mysql]'")):
        derive(settings("django.db.backends.mysql"), "mysql")


def test_unsupported_backend_lists_supported_ones():
    with pytest.raises(ImproperlyConfigured) as excinfo:
        derive(settings("django.db.backends.oracle"), "oracle")
    message = str(excinfo.value)
    assert "'oracle'" in message and "mysql, postgresql, sqlite" in message
    assert PASSWORD not in message


@pytest.mark.psycopg
def test_options_precedence_derived_then_global_then_app():
    spec = derive(settings(CONN_HEALTH_CHECKS=True, OPTIONS={"sslmode": "require", "connect_timeout": 3}))
    dialects.apply_options(
        spec,
        {"pool_size": 3, "pool_pre_ping": False, "connect_args": {"connect_timeout": 5, "application_name": "g"}},
        {"pool_size": 7, "connect_args": {"application_name": "app"}},
    )
    assert spec.options["pool_size"] == 7
    assert spec.options["pool_pre_ping"] is False
    assert spec.connect_args == {
        "client_encoding": "UTF8",
        "sslmode": "require",
        "connect_timeout": 5,
        "application_name": "app",
    }


@pytest.mark.psycopg
def test_rejected_engine_options_are_a_clear_error_without_the_password():
    spec = dialects.apply_options(
        derive(settings()), {"pool_size": 3, "no_such_option": 1, "connect_args": {"password": PASSWORD}}
    )
    with pytest.raises(ImproperlyConfigured) as excinfo:
        dialects.create(spec)
    message = str(excinfo.value)
    assert "no_such_option" in message and "'shop'" in message
    assert PASSWORD not in message


@pytest.mark.parametrize("is_async", [False, pytest.param(True, marks=pytest.mark.async_drivers)])
@pytest.mark.psycopg
def test_engine_repr_never_shows_the_password(is_async):
    engine = dialects.create(derive(settings(), is_async=is_async))
    try:
        for shown in (repr(engine), str(engine), repr(engine.url), str(engine.url)):
            assert PASSWORD not in shown
            assert "p@ss" not in shown
        sync_engine = engine.sync_engine if is_async else engine
        assert "***" in repr(sync_engine)
    finally:
        (engine.sync_engine if is_async else engine).dispose()


@pytest.mark.psycopg
def test_errors_name_the_apps_on_the_alias_and_their_source():
    with pytest.raises(ImproperlyConfigured) as info:
        dialects.derive_spec("inventory", settings(PORT="abc"), "postgresql", is_async=False)
    assert "database alias 'inventory'" in str(info.value)
    assert "used by app 'inventory' from inventory.database" in str(info.value)
    assert "PORT 'abc' is not a number" in str(info.value)
