"""The engine registry: lazy, one engine per alias, following Django, safe across threads, loops and fork."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import django
import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router
from django.test import override_settings
from sqlalchemy import event, text

from django_appdb import (
    AppDatabaseConfigError,
    EngineDoesNotExist,
    aclose_all_engines,
    close_all_engines,
    get_app_session,
    get_async_engine,
    get_engine,
)
from django_appdb.exceptions import StaleEngineError
from django_appdb.sqlalchemy.engines import AsyncEngineHandler, EngineHandler, async_engines, engines
from django_appdb.state import state

ROOT = Path(__file__).resolve().parent.parent
DATABASES = ["default", "inventory", "orders"]
# inventory is always SQLite; orders is PostgreSQL when APPDB_TEST_POSTGRES_URL is set.
LABELS = ["inventory", "orders"]
PASSWORD = "s3cr3t@:/#%?&"


@pytest.fixture(autouse=True)
def _fresh_engines() -> Iterator[None]:
    close_all_engines()
    yield
    close_all_engines()


def backend_id(conn: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return conn.execute(text("SELECT pg_backend_pid()")).scalar()
    return None


def test_engines_are_built_lazily_and_cached():
    handler = EngineHandler()
    assert handler.all(initialized_only=True) == []
    engine = handler["inventory"]
    assert handler["inventory"] is engine
    assert handler.all(initialized_only=True) == [engine]
    # Building an engine opens nothing.
    assert engine.pool.checkedin() == 0 and engine.pool.checkedout() == 0
    assert "inventory" in handler and "nope" not in handler
    assert list(handler) == list(connections.settings)


def test_apps_sharing_an_alias_share_one_engine():
    assert get_engine("catalog") is get_engine("auth") is get_engine("default") is engines["default"]
    assert get_engine("inventory") is engines["inventory"]
    assert get_engine("inventory") is not get_engine("catalog")


def test_unknown_alias_is_a_named_error_listing_the_known_ones():
    with pytest.raises(EngineDoesNotExist) as excinfo:
        engines["nope"]
    assert isinstance(excinfo.value, LookupError)
    assert "'nope'" in str(excinfo.value)
    assert "default, inventory, orders" in str(excinfo.value)


def test_unknown_app_label_is_a_lookup_error_listing_the_labels():
    with pytest.raises(LookupError) as excinfo:
        get_engine("inventroy")
    message = str(excinfo.value)
    assert "'inventroy'" in message and "inventory" in message and "orders" in message


def test_async_engine_needs_a_running_loop():
    with pytest.raises(RuntimeError, match="running event loop"):
        get_async_engine("inventory")


def test_engine_follows_an_in_place_settings_change(add_alias, tmp_path, unblocked):
    alias = add_alias("scratch", ENGINE="django.db.backends.sqlite3", NAME=str(tmp_path / "one.sqlite3"))
    handler = EngineHandler()
    first = handler[alias]
    with first.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert first.pool.checkedin() == 1

    connections[alias].settings_dict["NAME"] = str(tmp_path / "two.sqlite3")
    second = handler[alias]
    assert second is not first
    assert second.url.database == str(tmp_path / "two.sqlite3")
    # The stale engine was disposed: its pooled connection is closed, and it
    # opens no new one (not even an empty SQLite file).
    assert first.pool.checkedin() == 0
    connections[alias].settings_dict["NAME"] = str(tmp_path / "three.sqlite3")
    third = handler[alias]
    with pytest.raises(StaleEngineError, match="'scratch'"):
        second.connect()
    assert not (tmp_path / "two.sqlite3").exists()
    assert handler[alias] is third
    with third.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert (tmp_path / "three.sqlite3").exists()
    second = third

    # Any other setting is compared when a connection opens: the engine
    # refuses, and the next look-up builds one for the new settings.
    connections[alias].settings_dict["OPTIONS"]["timeout"] = 3
    second.dispose()
    with pytest.raises(StaleEngineError, match="'scratch'"):
        second.connect()
    fourth = handler[alias]
    assert fourth is not second
    with fourth.connect() as conn:
        conn.execute(text("SELECT 1"))


@pytest.mark.async_drivers
def test_async_engine_follows_a_settings_change_within_its_loop(add_alias, tmp_path, unblocked):
    from django_appdb.sqlalchemy import engines as engines_module

    alias = add_alias("scratch", ENGINE="django.db.backends.sqlite3", NAME=str(tmp_path / "one.sqlite3"))

    async def main() -> None:
        handler = AsyncEngineHandler()
        first = handler[alias]
        async with first.connect() as conn:
            await conn.execute(text("SELECT 1"))
        assert first.sync_engine.pool.checkedin() == 1
        connections[alias].settings_dict["NAME"] = str(tmp_path / "two.sqlite3")
        second = handler[alias]
        assert second is not first
        assert second.url.database == str(tmp_path / "two.sqlite3")
        # The stale engine is disposed by a task on this loop.
        await asyncio.gather(*engines_module._pending)
        assert first.sync_engine.pool.checkedin() == 0
        with pytest.raises(StaleEngineError):
            async with first.connect():
                pass
        await handler.aclose_all()

    asyncio.run(main())
    assert not (tmp_path / "two.sqlite3").exists()


def test_an_alias_removed_from_django_loses_its_engine(add_alias, tmp_path, unblocked):
    alias = add_alias("scratch", ENGINE="django.db.backends.sqlite3", NAME=str(tmp_path / "one.sqlite3"))
    handler = EngineHandler()
    engine = handler[alias]
    connections.settings.pop(alias)
    # Noticed when the engine next connects; the look-up after it knows.
    with pytest.raises(StaleEngineError):
        engine.connect()
    with pytest.raises(EngineDoesNotExist, match="'scratch'"):
        handler[alias]
    assert handler.all(initialized_only=True) == []
    assert not (tmp_path / "one.sqlite3").exists()


def test_engine_follows_a_replaced_settings_dict(add_alias, tmp_path, unblocked):
    alias = add_alias("scratch", ENGINE="django.db.backends.sqlite3", NAME=str(tmp_path / "one.sqlite3"))
    handler = EngineHandler()
    first = handler[alias]
    add_alias("scratch", ENGINE="django.db.backends.sqlite3", NAME=str(tmp_path / "two.sqlite3"))
    if hasattr(connections._connections, alias):
        del connections[alias]
    # A replaced dict is noticed when the engine next connects (look-ups
    # compare only NAME); the look-up after it builds the new engine.
    with pytest.raises(StaleEngineError):
        handler[alias].connect()
    assert not (tmp_path / "one.sqlite3").exists()
    second = handler[alias]
    assert second is not first
    assert second.url.database == str(tmp_path / "two.sqlite3")


@pytest.mark.psycopg
def test_engine_follows_django_to_the_test_database_and_back(add_alias, tmp_path, django_db_blocker):
    real = str(tmp_path / "real.sqlite3")
    alias = add_alias("scratch", ENGINE="django.db.backends.sqlite3", NAME=real, TEST={"MIGRATE": False})
    handler = EngineHandler()
    before = handler[alias]
    assert before.url.database == real
    creation = connections[alias].creation
    with django_db_blocker.unblock():
        # Django 6.0 deprecated serialize (and no longer serializes unless
        # asked to); 5.2 serializes unless told not to.
        no_serialize = {} if django.VERSION >= (6, 0) else {"serialize": False}
        test_name = creation.create_test_db(verbosity=0, autoclobber=True, **no_serialize)
        try:
            assert test_name == f"file:memorydb_{alias}?mode=memory&cache=shared"
            engine = handler[alias]
            assert engine.url.database == test_name
            with engine.connect() as conn:
                tables = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'")).scalars().all()
            # Django created the tables in the test database: SQLAlchemy sees them.
            assert "inventory_warehouse" in tables
            # An engine kept from before cannot reach the real database.
            with pytest.raises(StaleEngineError):
                before.connect()
        finally:
            creation.destroy_test_db(real, verbosity=0)
    assert handler[alias].url.database == real
    assert not Path(real).exists(), "nothing was written to the real database"


def test_32_threads_asking_at_once_build_exactly_one_engine(monkeypatch):
    handler = EngineHandler()
    built: list[str] = []
    create_engine = handler.create_engine

    def slow_create_engine(alias: str, *args: Any) -> Any:
        built.append(alias)
        # Give every other thread time to arrive while this one builds.
        time.sleep(0.05)
        return create_engine(alias, *args)

    monkeypatch.setattr(handler, "create_engine", slow_create_engine)
    barrier = threading.Barrier(32)
    results: list[Any] = [None] * 32
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            barrier.wait()
            results[index] = handler["inventory"]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert built == ["inventory"]
    assert all(result is results[0] for result in results)
    results[0].dispose()


def test_close_all_disposes_only_what_was_opened(monkeypatch):
    handler = EngineHandler()
    engine = handler["inventory"]
    disposed: list[Any] = []
    monkeypatch.setattr(type(engine), "dispose", lambda self, close=True: disposed.append(self))
    built: list[str] = []
    monkeypatch.setattr(handler, "create_engine", lambda alias, *args: built.append(alias))
    handler.close_all()
    assert disposed == [engine]
    assert built == []
    # Kept, with its connect-time checks: it connects again when next used.
    assert handler.all(initialized_only=True) == [engine]
    assert handler["inventory"] is engine
    handler.reset()
    assert disposed == [engine, engine]
    assert handler.all(initialized_only=True) == []


@pytest.mark.django_db(databases=DATABASES)
def test_close_all_engines_closes_pooled_connections_and_keeps_the_engines():
    engine = get_engine("inventory")
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert engine.pool.checkedin() == 1
    close_all_engines()
    assert engine.pool.checkedin() == 0
    assert get_engine("inventory") is engine
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1


@pytest.mark.async_drivers
@pytest.mark.django_db(databases=DATABASES)
def test_aclose_all_engines_closes_sync_and_async_engines():
    sync_engine = get_engine("inventory")
    with sync_engine.connect() as conn:
        conn.execute(text("SELECT 1"))

    async def main() -> Any:
        engine = get_async_engine("inventory")
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        assert engine.sync_engine.pool.checkedin() == 1
        await aclose_all_engines()
        assert engine.sync_engine.pool.checkedin() == 0
        assert get_async_engine("inventory") is not engine
        return engine

    asyncio.run(main())
    assert sync_engine.pool.checkedin() == 0


def test_global_engine_options_apply_and_a_setting_change_rebuilds():
    assert get_engine("default").pool.size() == 5
    with override_settings(APPDB_SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 3, "pool_pre_ping": True}):
        engine = get_engine("default")
        assert engine.pool.size() == 3
        assert engine.pool._pre_ping
    assert get_engine("default").pool.size() == 5


def test_app_engine_options_win_over_global_ones(monkeypatch):
    record = state.records["inventory"]
    monkeypatch.setitem(state.records, "inventory", dataclasses.replace(record, engine_options={"pool_size": 7}))
    handler = EngineHandler()
    with override_settings(APPDB_SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 3, "max_overflow": 1}):
        engine = handler["inventory"]
        assert engine.pool.size() == 7
        assert engine.pool._max_overflow == 1
        # Only the apps on the alias contribute.
        assert handler["default"].pool.size() == 3
    handler.close_all()


def test_apps_sharing_an_alias_must_agree_on_engine_options(monkeypatch):
    for label, size in (("auth", 4), ("catalog", 6)):
        record = state.records[label]
        options = {"pool_size": size, "connect_args": {"password": PASSWORD}}
        monkeypatch.setitem(state.records, label, dataclasses.replace(record, engine_options=options))
    with pytest.raises(AppDatabaseConfigError) as excinfo:
        EngineHandler()["default"]
    message = str(excinfo.value)
    assert "'catalog'" in message and "'auth'" in message and "'pool_size'" in message
    assert PASSWORD not in message


@pytest.mark.psycopg
def test_registry_and_errors_never_show_the_password(add_alias):
    alias = add_alias(
        "scratch",
        ENGINE="django.db.backends.postgresql",
        NAME="shop",
        USER="app",
        PASSWORD=PASSWORD,
        HOST="db.invalid",
        PORT="5432",
    )
    handler = EngineHandler()
    engine = handler[alias]
    assert engine.url.password == PASSWORD
    shown = [repr(engine), str(engine.url), repr(handler), repr(handler.record(alias))]
    with override_settings(APPDB_SQLALCHEMY_ENGINE_OPTIONS={"bogus_option": 1}):
        with pytest.raises(ImproperlyConfigured) as excinfo:
            EngineHandler()[alias]
    shown.append(str(excinfo.value))
    assert "bogus_option" in shown[-1]

    async def async_reprs() -> list[str]:
        async_handler = AsyncEngineHandler()
        async_engine = async_handler[alias]
        try:
            return [repr(async_engine), repr(async_engine.sync_engine), repr(async_handler)]
        finally:
            await async_handler.aclose_all()

    shown += asyncio.run(async_reprs())
    for text_shown in shown:
        assert PASSWORD not in text_shown and "s3cr3t" not in text_shown, text_shown
    handler.close_all()


@pytest.mark.django_db(databases=DATABASES)
def test_every_app_engine_names_the_database_django_writes_to():
    checked = set()
    for app_config in apps.get_app_configs():
        for model in app_config.get_models():
            alias = router.db_for_write(model)
            name = str(connections[alias].settings_dict["NAME"])
            assert get_engine(app_config.label).url.database == name, model
            # Inside the suite that is the test database, never the real one.
            assert name.startswith(("test_", "file:memorydb_")), name
            checked.add(app_config.label)
    assert {"catalog", "inventory", "orders", "auth"} <= checked


@pytest.mark.django_db(databases=DATABASES)
@pytest.mark.async_drivers
def test_every_app_async_engine_names_the_database_django_writes_to():
    async def names() -> dict[str, str | None]:
        return {label: get_async_engine(label).url.database for label in ("catalog", "inventory", "orders")}

    for label, name in asyncio.run(names()).items():
        alias = router.db_for_write(apps.get_app_config(label).get_models().__next__())
        assert name == str(connections[alias].settings_dict["NAME"])


def test_orders_is_on_postgresql_when_configured(postgres_url):
    engine = get_engine("orders")
    assert engine.dialect.name == "postgresql"
    assert engine.dialect.driver == "psycopg"


@pytest.mark.django_db(databases=DATABASES, transaction=True)
@pytest.mark.parametrize("label", LABELS)
def test_forked_child_never_reuses_the_parents_connections(label):
    engine = get_engine(label)
    connects: list[int] = []
    event.listen(engine, "connect", lambda *args: connects.append(os.getpid()))
    with engine.connect() as conn:
        parent_backend = backend_id(conn)
    assert engine.pool.checkedin() == 1 and len(connects) == 1

    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a threaded process may deadlock.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            os.close(read)
            result: dict[str, Any] = {"pooled": engine.pool.checkedin(), "same": get_engine(label) is engine}
            with engine.connect() as conn:
                result["one"] = conn.execute(text("SELECT 1")).scalar()
                result["backend"] = backend_id(conn)
            result["new_connections"] = connects.count(os.getpid())
            os.write(write, json.dumps(result).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        output = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output
    result = json.loads(output)
    assert result["pooled"] == 0, "the child inherited the parent's pooled connection"
    assert result["same"] is True
    assert result["one"] == 1
    assert result["new_connections"] == 1, "the child opened its own connection"
    if parent_backend is not None:
        assert result["backend"] != parent_backend
    # The parent's pooled connection is intact and still the one reused.
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
        assert backend_id(conn) == parent_backend
    assert len(connects) == 1


@pytest.mark.django_db(databases=DATABASES, transaction=True)
@pytest.mark.parametrize("label", LABELS)
@pytest.mark.async_drivers
def test_forked_child_forgets_the_parents_async_engines(label):
    async def main() -> tuple[int, str]:
        engine = get_async_engine(label)
        async with get_app_session(label) as session:
            await session.execute(text("SELECT 1"))
        read, write = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the pipe
            code = 1
            try:
                os.close(read)
                result: dict[str, Any] = {"records": len(async_engines._records)}

                async def child() -> None:
                    async with get_app_session(label) as session:
                        result["one"] = (await session.execute(text("SELECT 1"))).scalar()
                    result["new_engine"] = get_async_engine(label) is not engine

                # The parent's loop cannot run in the child: use a new one.
                thread = threading.Thread(target=lambda: asyncio.run(child()))
                thread.start()
                thread.join()
                os.write(write, json.dumps(result).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        with os.fdopen(read) as pipe:
            output = pipe.read()
        _, status = os.waitpid(pid, 0)
        # The parent's engine and its pool still work.
        assert get_async_engine(label) is engine
        async with get_app_session(label) as session:
            assert (await session.execute(text("SELECT 1"))).scalar() == 1
        return os.waitstatus_to_exitcode(status), output

    code, output = asyncio.run(main())
    assert code == 0, output
    assert json.loads(output) == {"records": 0, "one": 1, "new_engine": True}


def _run_child(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in os.environ.items() if not key.endswith("_DATABASE_URL")}
    environ.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "testproject")]),
        DJANGO_SETTINGS_MODULE="testproject.settings",
        DATABASE_URL=f"sqlite:///{cwd / 'default.sqlite3'}",
        **env,
    )
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code], cwd=cwd, env=environ, capture_output=True, text=True, timeout=120
    )


NORMAL_RUN = """
import json, sys
import django
django.setup()
loaded = "sqlalchemy" in sys.modules
from django.apps import apps
from django.db import connections, router
from django_appdb import close_all_engines, get_engine
rows = []
for config in apps.get_app_configs():
    for model in config.get_models():
        alias = router.db_for_write(model)
        name = str(connections[alias].settings_dict["NAME"])
        rows.append([config.label, get_engine(config.label).url.database, name])
close_all_engines()
print(json.dumps({"loaded_at_startup": loaded, "rows": rows}))
"""


@pytest.mark.subprocess
@pytest.mark.parametrize(
    "orders_url",
    [
        "sqlite:///{tmp}/orders.sqlite3",
        pytest.param("postgresql://app:p%40ss%3Aw%2Frd@db.invalid:5432/orders_db", marks=pytest.mark.psycopg),
    ],
    ids=["sqlite", "postgresql"],
)
def test_every_app_engine_names_djangos_database_in_a_normal_run(tmp_path, orders_url):
    orders_url = orders_url.format(tmp=tmp_path)
    # No connection is opened: db.invalid is never resolved.
    result = _run_child(NORMAL_RUN, tmp_path, ORDERS_DATABASE_URL=orders_url)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["loaded_at_startup"] is False, "django.setup() must not import SQLAlchemy"
    rows = {label: (engine_name, django_name) for label, engine_name, django_name in report["rows"]}
    assert {"catalog", "inventory", "orders", "auth"} <= set(rows)
    for label, (engine_name, django_name) in rows.items():
        assert engine_name == django_name, label
    assert rows["orders"][0] == ("orders_db" if "postgresql" in orders_url else f"{tmp_path}/orders.sqlite3")
    assert rows["inventory"][0] == str(ROOT / "testproject" / "inventory.sqlite3")
    assert rows["catalog"][0] == str(tmp_path / "default.sqlite3")


@pytest.mark.django_db(databases=DATABASES)
@pytest.mark.parametrize("is_async", [False, True])
def test_postgresql_connections_get_the_password_role_and_options(postgres_url, is_async):
    import psycopg
    from sqlalchemy.engine import make_url

    from django_appdb.sqlalchemy import dialects

    # Unique: pytest-xdist workers share the server, and roles are server-wide.
    role = f"{make_url(postgres_url).database}_reader_{uuid.uuid4().hex[:8]}"
    settings_dict = {
        **connections["orders"].settings_dict,
        "PASSWORD": PASSWORD,
        "OPTIONS": {
            "assume_role": role,
            "isolation_level": psycopg.IsolationLevel.SERIALIZABLE,
            "application_name": "appdb-options-test",
        },
    }
    assert settings_dict["NAME"].startswith("test_")
    admin = dialects.derive_spec("orders", connections["orders"].settings_dict, "postgresql", is_async=False)
    with psycopg.connect(
        **admin.url.translate_connect_args(username="user", database="dbname"), autocommit=True
    ) as conn:
        conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        conn.execute(f'CREATE ROLE "{role}"')
    engine = dialects.create(dialects.derive_spec("orders", settings_dict, "postgresql", is_async=is_async))
    query = text("SELECT current_user, current_setting('transaction_isolation'), current_setting('application_name')")

    def check(conn: Any) -> tuple[Any, ...]:
        dbapi = conn.connection.dbapi_connection
        driver = getattr(dbapi, "driver_connection", dbapi)
        return (*conn.execute(query).one(), driver.info.password, driver.prepare_threshold)

    # No pooler declared: psycopg's default prepare threshold.
    expected = (role, "serializable", "appdb-options-test", PASSWORD, 5)
    try:
        if is_async:

            async def run() -> list[tuple[Any, ...]]:
                seen = []
                for _ in range(2):  # the second checkout reuses the pooled connection
                    async with engine.connect() as conn:
                        seen.append(await conn.run_sync(check))
                await engine.dispose()
                return seen

            assert asyncio.run(run()) == [expected, expected]
        else:
            for _ in range(2):
                with engine.connect() as conn:
                    assert check(conn) == expected
            engine.dispose()
    finally:
        with psycopg.connect(
            **admin.url.translate_connect_args(username="user", database="dbname"), autocommit=True
        ) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_an_engine_found_stale_when_connecting_is_closed_by_the_next_close_all(add_alias, tmp_path, unblocked):
    alias = add_alias("scratch", ENGINE="django.db.backends.sqlite3", NAME=str(tmp_path / "one.sqlite3"))
    handler = EngineHandler()
    engine = handler[alias]
    held = engine.connect()
    connections[alias].settings_dict["OPTIONS"]["timeout"] = 3
    with pytest.raises(StaleEngineError):
        engine.connect()  # a second connection: the stale engine refuses it
    held.close()
    assert engine.pool.checkedin() == 1
    # Forgotten from inside its connect event, it is still closed with the
    # rest: PostgreSQL could not drop a database it held a connection to.
    handler.close_all()
    assert engine.pool.checkedin() == 0
    assert handler.all(initialized_only=True) == []
