"""Map a Django ``DATABASES`` entry to a SQLAlchemy engine: URL, driver, connect arguments.

The URL is built with ``sqlalchemy.engine.URL.create`` from the settings'
fields, never by formatting a string, so any character in a user name or
password works. Each Django backend gets an explicit dialect and driver:

=============  ============================  ============================
Django vendor  sync                          async
=============  ============================  ============================
postgresql     ``postgresql+psycopg``        ``postgresql+psycopg`` (async)
sqlite         ``sqlite+pysqlite``           ``sqlite+aiosqlite``
mysql          ``mysql+mysqldb``             ``mysql+aiomysql`` / ``asyncmy``
=============  ============================  ============================

Engine keyword arguments are merged in this order, later winning: the
defaults derived from the Django settings (``CONN_HEALTH_CHECKS`` ->
``pool_pre_ping``, ``CONN_MAX_AGE`` -> ``pool_recycle``, the isolation
level...), then ``APPDB_SQLALCHEMY_ENGINE_OPTIONS``, then the app's
``SQLALCHEMY_ENGINE_OPTIONS``. ``connect_args`` are merged key by key in the
same order rather than replaced.

Nothing here opens a connection.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any, cast

from django.core.exceptions import ImproperlyConfigured

from django_appdb.dburls import mask_settings, mask_text
from django_appdb.exceptions import MissingDriverError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine
    from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass(frozen=True)
class Driver:
    """A DBAPI module SQLAlchemy can drive, and the django-appdb extra that installs it."""

    dialect: str
    module: str
    #: What to install, as ``pip install`` takes it; empty when nothing can be installed.
    install: str


#: The extra that installs greenlet and the async drivers for SQLite and PostgreSQL.
ASYNC_EXTRA = "django-appdb[async]"

# Tried in order; the first whose module imports is used.
DRIVERS: dict[tuple[str, bool], tuple[Driver, ...]] = {
    ("postgresql", False): (Driver("postgresql+psycopg", "psycopg", "django-appdb[postgres]"),),
    ("postgresql", True): (Driver("postgresql+psycopg", "psycopg", ASYNC_EXTRA),),
    ("sqlite", False): (Driver("sqlite+pysqlite", "sqlite3", ""),),
    ("sqlite", True): (Driver("sqlite+aiosqlite", "aiosqlite", ASYNC_EXTRA),),
    ("mysql", False): (Driver("mysql+mysqldb", "MySQLdb", "django-appdb[mysql]"),),
    ("mysql", True): (
        Driver("mysql+aiomysql", "aiomysql", "django-appdb[async-mysql]"),
        Driver("mysql+asyncmy", "asyncmy", "asyncmy"),
    ),
}

#: Django ``OPTIONS`` keys that configure Django itself, not the driver.
#: They are translated below where SQLAlchemy has an equivalent.
DJANGO_ONLY_OPTIONS: dict[str, frozenset[str]] = {
    # ``pool`` is Django's psycopg pool (SQLAlchemy has its own); ``context``
    # and ``cursor_factory`` are Django's psycopg adapters, which would fight
    # SQLAlchemy's type handling.
    "postgresql": frozenset(
        {"isolation_level", "assume_role", "pool", "server_side_binding", "cursor_factory", "context"}
    ),
    "sqlite": frozenset({"init_command", "transaction_mode"}),
    "mysql": frozenset({"isolation_level", "charset"}),
}

_PG_ISOLATION = {1: "READ UNCOMMITTED", 2: "READ COMMITTED", 3: "REPEATABLE READ", 4: "SERIALIZABLE"}
_MYSQL_ISOLATION = ("read uncommitted", "read committed", "repeatable read", "serializable")
_SQLITE_TRANSACTION_MODES = ("DEFERRED", "EXCLUSIVE", "IMMEDIATE")


@dataclass
class EngineSpec:
    """Everything needed to create one engine for one Django alias.

    ``init_statements`` run on every new DBAPI connection, as Django runs its
    own (``PRAGMA foreign_keys = ON``, ``SET ROLE``, ``init_command``).
    ``begin_statement`` replaces the driver's implicit ``BEGIN`` (SQLite
    ``transaction_mode``).
    """

    alias: str
    vendor: str
    is_async: bool
    url: URL
    options: dict[str, Any] = field(default_factory=dict)
    init_statements: tuple[str, ...] = ()
    begin_statement: str | None = None

    @property
    def connect_args(self) -> dict[str, Any]:
        """Return the keyword arguments given to the DBAPI ``connect()``."""
        connect_args: dict[str, Any] = self.options.setdefault("connect_args", {})
        return connect_args

    def __repr__(self) -> str:
        return f"<EngineSpec {self.alias!r} {self.url!r} async={self.is_async}>"


def _error(
    alias: str, settings_dict: Mapping[str, Any], problem: str, fix: str = "", *, missing: str | None = None
) -> ImproperlyConfigured:
    from django_appdb.state import state

    engine = settings_dict.get("ENGINE", "")
    # Name the apps on the alias and where their database came from, so the
    # reader knows which environment variable or database.py to fix.
    users = [f"'{record.label}' from {record.source}" for record in state.records.values() if record.alias == alias]
    used_by = f", used by app {', '.join(users)}" if users and alias != "default" else ""
    message = f"django_appdb: database alias {alias!r} (ENGINE {engine!r}{used_by}): {problem}"
    if missing is not None:
        return MissingDriverError(f"{message} {fix}".rstrip(), problem=problem, install=missing)
    return ImproperlyConfigured(f"{message} {fix}".rstrip())


def driver_for(
    vendor: str,
    is_async: bool,
    *,
    alias: str = "?",
    settings_dict: Mapping[str, Any] | None = None,
    importer: Callable[[str], Any] = import_module,
) -> Driver:
    """Return the driver for a Django vendor, importing its DBAPI module to prove it is there.

    Raise :class:`~django_appdb.exceptions.MissingDriverError` naming the
    extra to install when the driver (or, for async, greenlet) is missing,
    or ``ImproperlyConfigured`` listing the supported backends when the
    vendor is unknown.
    """
    settings_dict = settings_dict or {}
    candidates = DRIVERS.get((vendor, is_async))
    if candidates is None:
        supported = sorted({kind for kind, _ in DRIVERS})
        raise _error(
            alias,
            settings_dict,
            f"SQLAlchemy engines are not supported for the {vendor!r} backend.",
            f"Supported backends: {', '.join(supported)}.",
        )
    failures = []
    for driver in candidates:
        try:
            importer(driver.module)
        except ImportError as exc:
            failures.append(f"{driver.module}: {exc}")
            continue
        if is_async:
            try:
                # SQLAlchemy's asyncio support runs on greenlet.
                importer("greenlet")
            except ImportError as exc:
                raise _error(
                    alias,
                    settings_dict,
                    f"async SQLAlchemy engines need greenlet ({mask_text(str(exc))}).",
                    f"Install the async extra: pip install '{ASYNC_EXTRA}'. Sync engines and sessions work without it.",
                    missing=ASYNC_EXTRA,
                ) from None
        return driver
    packages = " or ".join(f"pip install '{driver.install}'" for driver in candidates if driver.install)
    if not packages:
        packages = "use a Python built with the sqlite3 module"
    kind = "async" if is_async else "sync"
    raise _error(
        alias,
        settings_dict,
        f"the {kind} SQLAlchemy driver {candidates[0].dialect!r} cannot be imported "
        f"({'; '.join(mask_text(failure) for failure in failures)}).",
        f"Install it: {packages}.",
        missing=next((driver.install for driver in candidates if driver.install), ""),
    )


def _port(alias: str, settings_dict: Mapping[str, Any]) -> int | None:
    port = settings_dict.get("PORT")
    if port in (None, ""):
        return None
    try:
        return int(port)
    except (TypeError, ValueError):
        raise _error(alias, settings_dict, f"PORT {port!r} is not a number.") from None


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _pooler(alias: str) -> str | None:
    """Return the connection pooler ``alias`` is declared behind (``django_appdb.state.pooler_of``)."""
    from django_appdb.state import pooler_of

    return pooler_of(alias)


def _postgresql(spec: EngineSpec, settings_dict: Mapping[str, Any], options: dict[str, Any]) -> None:
    from sqlalchemy import pool
    from sqlalchemy.engine import URL

    alias = spec.alias
    name = settings_dict.get("NAME")
    if name == "" and not options.get("service"):
        raise _error(alias, settings_dict, "NAME is empty.", "Supply NAME or OPTIONS['service'].")
    if name is None:
        # As Django: no NAME means the maintenance database.
        options.pop("service", None)
        name = "postgres"
    spec.url = URL.create(
        spec.url.drivername,
        username=settings_dict.get("USER") or None,
        password=settings_dict.get("PASSWORD") or None,
        host=settings_dict.get("HOST") or None,
        port=_port(alias, settings_dict),
        database=name or None,
    )
    connect_args = spec.connect_args
    connect_args["client_encoding"] = "UTF8"
    if "prepare_threshold" in options:
        connect_args["prepare_threshold"] = options.pop("prepare_threshold")
    pooler = _pooler(alias)
    if pooler is not None:
        # The pooler pools: a second pool here would keep idle connections
        # (PgBouncer client slots, and in session mode server connections)
        # open in every process, and hand out ones PgBouncer may have closed.
        spec.options["poolclass"] = pool.NullPool
    if pooler == "pgbouncer-transaction":
        # A prepared statement lives on one server connection, and in
        # transaction mode the next transaction may run on another.
        connect_args.setdefault("prepare_threshold", None)
    # Without a pooler, psycopg's default: statements run five times are
    # prepared on the server, as SQLAlchemy's own engines do.
    if "isolation_level" in options:
        level = options["isolation_level"]
        try:
            spec.options["isolation_level"] = _PG_ISOLATION[int(level)]
        except (KeyError, TypeError, ValueError):
            raise _error(
                alias,
                settings_dict,
                f"OPTIONS['isolation_level'] {level!r} is not a psycopg.IsolationLevel.",
                "Use one of psycopg.IsolationLevel.READ_COMMITTED, REPEATABLE_READ, SERIALIZABLE.",
            ) from None
    role = options.get("assume_role")
    if role:
        spec.init_statements += (f"SET ROLE {_quote_identifier(str(role))}",)


def _is_memory(name: str) -> bool:
    return name == ":memory:" or (name.startswith("file:") and "mode=memory" in name)


def _sqlite(spec: EngineSpec, settings_dict: Mapping[str, Any], options: dict[str, Any]) -> None:
    from sqlalchemy import pool
    from sqlalchemy.engine import URL

    alias = spec.alias
    name = settings_dict.get("NAME")
    if not name:
        raise _error(alias, settings_dict, "NAME is empty.", "Supply the path of the SQLite database file.")
    name = os.fspath(name)
    # ``uri=true`` makes SQLAlchemy hand NAME to sqlite3 verbatim with
    # uri=True, as Django does: ``file:memorydb_default?mode=memory&cache=shared``
    # (Django's in-memory test databases) keeps its query, and a relative path
    # stays relative to the working directory, like Django's own connection.
    spec.url = URL.create(spec.url.drivername, database=name, query={"uri": "true"})
    connect_args = spec.connect_args
    # As Django: the pool, not sqlite3, decides which thread uses a connection.
    connect_args["check_same_thread"] = False
    if _is_memory(name):
        if "cache=shared" in name:
            # Every pooled connection opens the same shared-cache database,
            # and the pool keeps one open so its data outlives each session.
            spec.options["poolclass"] = pool.AsyncAdaptedQueuePool if spec.is_async else pool.QueuePool
        else:
            # A private in-memory database lives in exactly one connection:
            # share that one, or every checkout would see an empty database.
            spec.options["poolclass"] = pool.StaticPool
    elif spec.is_async:
        # Pool file connections as the sync engine does. SQLAlchemy 2.1 does
        # so by default; 2.0 up to at least 2.0.30 opened a new aiosqlite
        # connection per checkout (NullPool).
        spec.options["poolclass"] = pool.AsyncAdaptedQueuePool
    spec.init_statements += ("PRAGMA foreign_keys = ON", "PRAGMA legacy_alter_table = OFF")
    init_command = options.get("init_command") or ""
    spec.init_statements += tuple(part.strip() for part in str(init_command).split(";") if part.strip())
    mode = options.get("transaction_mode")
    if mode is not None:
        if str(mode).upper() not in _SQLITE_TRANSACTION_MODES:
            raise _error(
                alias,
                settings_dict,
                f"OPTIONS['transaction_mode'] {mode!r} is not valid.",
                f"Use one of {', '.join(_SQLITE_TRANSACTION_MODES)}, or None.",
            )
        spec.begin_statement = f"BEGIN {str(mode).upper()}"


def _mysql(spec: EngineSpec, settings_dict: Mapping[str, Any], options: dict[str, Any]) -> None:
    from sqlalchemy.engine import URL

    alias = spec.alias
    host = settings_dict.get("HOST") or None
    if host and str(host).startswith("/"):
        spec.connect_args["unix_socket"] = host
        host = None
    spec.url = URL.create(
        spec.url.drivername,
        username=settings_dict.get("USER") or None,
        password=settings_dict.get("PASSWORD") or None,
        host=host,
        port=_port(alias, settings_dict),
        database=settings_dict.get("NAME") or None,
        query={"charset": str(options.get("charset") or "utf8mb4")},
    )
    # As Django: READ COMMITTED unless OPTIONS say otherwise (None: the server's).
    level = options.get("isolation_level", "read committed")
    if level:
        if str(level).lower() not in _MYSQL_ISOLATION:
            raise _error(
                alias,
                settings_dict,
                f"OPTIONS['isolation_level'] {level!r} is not valid.",
                f"Use one of {', '.join(repr(name) for name in _MYSQL_ISOLATION)}, or None.",
            )
        spec.options["isolation_level"] = str(level).upper()


_VENDORS: dict[str, Callable[[EngineSpec, Mapping[str, Any], dict[str, Any]], None]] = {
    "postgresql": _postgresql,
    "sqlite": _sqlite,
    "mysql": _mysql,
}


def derive_spec(
    alias: str,
    settings_dict: Mapping[str, Any],
    vendor: str,
    *,
    is_async: bool,
    importer: Callable[[str], Any] = import_module,
) -> EngineSpec:
    """Return the engine spec Django's settings imply for ``alias``, before user options.

    ``vendor`` is the Django backend's ``vendor`` (``connection.vendor``), so
    GIS and wrapping backends map like the backend they build on. Raise
    ``ImproperlyConfigured`` for an unsupported backend, a missing driver or
    an invalid option.
    """
    from sqlalchemy.engine import URL

    driver = driver_for(vendor, is_async, alias=alias, settings_dict=settings_dict, importer=importer)
    spec = EngineSpec(alias, vendor, is_async, URL.create(driver.dialect))
    options = dict(settings_dict.get("OPTIONS") or {})
    _VENDORS[vendor](spec, settings_dict, options)
    django_only = DJANGO_ONLY_OPTIONS.get(vendor, frozenset())
    for key, value in options.items():
        if key not in django_only:
            spec.connect_args.setdefault(key, value)
    if settings_dict.get("CONN_HEALTH_CHECKS"):
        spec.options["pool_pre_ping"] = True
    max_age = settings_dict.get("CONN_MAX_AGE")
    # 0 (Django's default) means "close after each request"; SQLAlchemy's pool
    # returns connections instead, so only a positive age maps to a recycle.
    if isinstance(max_age, int) and not isinstance(max_age, bool) and max_age > 0:
        spec.options["pool_recycle"] = max_age
    return spec


def apply_options(spec: EngineSpec, *layers: Mapping[str, Any]) -> EngineSpec:
    """Merge engine keyword arguments into ``spec``, each layer winning over the previous.

    ``connect_args`` are merged key by key; every other option replaces.
    """
    for layer in layers:
        for key, value in layer.items():
            if key == "connect_args":
                spec.connect_args.update(value)
            else:
                spec.options[key] = value
    return spec


def create(spec: EngineSpec) -> Engine | AsyncEngine:
    """Create the engine ``spec`` describes (no connection is opened).

    Raise ``ImproperlyConfigured``, with the password masked, when SQLAlchemy
    rejects the options.
    """
    from sqlalchemy import create_engine, event, exc

    factory: Callable[..., Engine | AsyncEngine] = create_engine
    if spec.is_async:
        # Only here: sqlalchemy.ext.asyncio needs greenlet, which derive_spec()
        # has checked for through driver_for().
        from sqlalchemy.ext.asyncio import create_async_engine

        factory = create_async_engine
    try:
        engine = factory(spec.url, **spec.options)
    except (exc.ArgumentError, TypeError, ValueError) as error:
        options = {key: value for key, value in spec.options.items() if key != "connect_args"}
        masked_args = mask_settings({"OPTIONS": spec.options.get("connect_args", {})})["OPTIONS"]
        raise ImproperlyConfigured(
            f"django_appdb: cannot create the SQLAlchemy engine for database alias {spec.alias!r} "
            f"({spec.url!r}): {mask_text(str(error))} "
            f"Engine options: {options!r}, connect_args: {masked_args!r}. Check "
            "APPDB_SQLALCHEMY_ENGINE_OPTIONS and the app's SQLALCHEMY_ENGINE_OPTIONS."
        ) from None
    sync_engine = cast("AsyncEngine", engine).sync_engine if spec.is_async else cast("Engine", engine)
    statements = spec.init_statements
    begin = spec.begin_statement
    if statements or begin:

        @event.listens_for(sync_engine, "connect")
        def _init_connection(dbapi_connection: Any, connection_record: Any) -> None:
            if begin:
                # Let the "begin" listener below issue BEGIN itself.
                dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            try:
                for statement in statements:
                    cursor.execute(statement)
            finally:
                cursor.close()
            if spec.vendor == "postgresql":
                # SET ROLE opened a transaction: commit it, or the pool's
                # reset-on-return would roll the role back.
                dbapi_connection.commit()

    if begin:

        @event.listens_for(sync_engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql(begin)

    return engine
