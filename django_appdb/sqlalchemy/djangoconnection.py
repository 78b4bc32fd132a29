"""SQLAlchemy sessions on Django's own database connection, inside Django's transaction.

Django's ``TestCase`` (and pytest-django's ``django_db`` without
``transaction=True``) runs each test inside a transaction on Django's
connection and rolls it back afterwards. A SQLAlchemy session on an engine of
its own has another connection: it cannot see the rows the test wrote through
the ORM, and whatever it commits outlives the test. A session from
:func:`open_session` runs on Django's very DBAPI connection instead, so the ORM
and SQLAlchemy see each other's uncommitted rows and Django's rollback undoes
both.

How it stays inside Django's transaction:

* The engine's only pooled connection (``StaticPool``) is a thin wrapper of
  Django's DBAPI connection whose ``commit()``, ``rollback()`` and ``close()``
  do nothing: SQLAlchemy can never end Django's transaction or close its
  connection. Its attributes (``autocommit``, isolation level, read-only)
  cannot be set through the wrapper, and the dialect's on-connect hooks do not
  reach Django's connection (SQLite's ``regexp``/``floor`` functions, psycopg
  notice handlers; Django's connection already has its own).
* The session joins with ``join_transaction_mode="create_savepoint"``: its
  ``commit()`` releases a savepoint and its ``rollback()`` rolls back to one,
  undoing only the session's own work.

Results have the types SQLAlchemy's own connections give: SQLite dates and
times, which Django's connection already parses, pass through SQLAlchemy's
parsers unchanged, and on PostgreSQL each cursor loads ``json``, ``jsonb``,
``inet`` and ``cidr`` with psycopg's loaders rather than the text loaders
Django installs.

Supported backends: PostgreSQL through psycopg 3, and SQLite. Other backends
raise ``django.db.NotSupportedError``.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

from django.db import NotSupportedError

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.orm import Session

__all__ = [
    "SUPPORTED_VENDORS",
    "check_access",
    "check_supported",
    "close_session",
    "engine_for",
    "in_test_transaction",
    "open_session",
]

#: The Django backends (``connection.vendor``) a session can share a connection with.
SUPPORTED_VENDORS = ("postgresql", "sqlite")

# psycopg types Django loads as text on its connections, where SQLAlchemy's
# own connections use psycopg's default loaders.
_PG_TEXT_LOADED = ("json", "jsonb", "inet", "cidr")

# Django's connection wrapper -> (the DBAPI connection, the engine over it).
# Django's wrappers are per thread, so a thread only ever sees its own.
_engines: weakref.WeakKeyDictionary[Any, tuple[Any, Engine]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


class _SharedDBAPIConnection:
    """Django's DBAPI connection as SQLAlchemy's pool sees it: it runs statements, never ends or closes anything."""

    __slots__ = ("_alias", "_connection", "_loaders")

    def __init__(self, connection: Any, alias: str, loaders: tuple[tuple[int, type], ...]) -> None:
        object.__setattr__(self, "_connection", connection)
        object.__setattr__(self, "_alias", alias)
        object.__setattr__(self, "_loaders", loaders)

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        """Return a cursor of Django's connection that loads values as SQLAlchemy's connections do."""
        cursor = self._connection.cursor(*args, **kwargs)
        for oid, loader in self._loaders:
            # Per cursor: Django's own cursors keep Django's loaders.
            cursor.adapters.register_loader(oid, loader)
        return cursor

    # The transaction and the connection belong to Django.
    def commit(self) -> None:
        """Do nothing: Django commits or rolls back its own transaction."""

    def rollback(self) -> None:
        """Do nothing: the session rolls back to its savepoint instead."""

    def close(self) -> None:
        """Do nothing: Django closes its own connection."""

    # On-connect hooks of SQLAlchemy's dialects, kept off Django's connection.
    def create_function(self, *args: Any, **kwargs: Any) -> None:
        """Do nothing: Django's SQLite connection already defines the functions SQLAlchemy adds."""

    def add_notice_handler(self, *args: Any, **kwargs: Any) -> None:
        """Do nothing: leave Django's psycopg connection's notice handlers as they are."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise NotSupportedError(
            f"django_appdb: a SQLAlchemy session on Django's connection {self._alias!r} cannot change its "
            f"{name!r}: the connection and its transaction belong to Django. (Isolation level and read-only "
            "execution options are not available on it.)"
        )

    def __repr__(self) -> str:
        return f"<shared Django connection {self._alias!r}: {self._connection!r}>"


def check_supported(connection: BaseDatabaseWrapper) -> None:
    """Raise ``django.db.NotSupportedError`` unless a session can share ``connection``."""
    if connection.vendor not in SUPPORTED_VENDORS:
        raise NotSupportedError(
            f"django_appdb: a SQLAlchemy session cannot share Django's connection {connection.alias!r}: the "
            f"{connection.vendor!r} backend is not supported (supported: {', '.join(SUPPORTED_VENDORS)}). "
            "Use a transactional test instead (TransactionTestCase, or @pytest.mark.django_db(transaction=True) "
            "with the appdb_session fixture): sessions then use their own connections to the test database, "
            "and Django empties its tables after each test."
        )


def check_access(connection: BaseDatabaseWrapper) -> None:
    """Raise unless a session may share ``connection``: a supported backend, and a database the test declared.

    Django's test cases make ``cursor()`` fail for a database the test did
    not declare in ``databases``, as the ORM would; SQLAlchemy must not reach
    further than the ORM.
    """
    check_supported(connection)
    connection.cursor().close()


def _psycopg_loaders(raw: Any, alias: str) -> tuple[tuple[int, type], ...]:
    import psycopg
    from psycopg.pq import Format

    if not isinstance(raw, psycopg.Connection):
        raise NotSupportedError(
            f"django_appdb: a SQLAlchemy session can share Django's PostgreSQL connection {alias!r} only when "
            f"Django uses psycopg 3; it uses {type(raw).__module__}.{type(raw).__qualname__}. Install "
            "'psycopg[binary]' (Django prefers it to psycopg2)."
        )
    loaders = []
    for name in _PG_TEXT_LOADED:
        oid = psycopg.adapters.types[name].oid
        for fmt in (Format.TEXT, Format.BINARY):
            wanted = psycopg.adapters.get_loader(oid, fmt)
            if wanted is not None and raw.adapters.get_loader(oid, fmt) is not wanted:
                loaders.append((oid, wanted))
    return tuple(loaders)


def _passthrough(base: type) -> type:
    """Return a SQLite date/time type that leaves values Django's connection already parsed alone."""

    class Parsed(base):  # type: ignore[misc]
        def result_processor(self, dialect: Any, coltype: Any) -> Any:
            parse = super().result_processor(dialect, coltype)
            if parse is None:
                return None

            def process(value: Any) -> Any:
                return parse(value) if isinstance(value, str) else value

            return process

    Parsed.__name__ = Parsed.__qualname__ = f"Parsed{base.__name__}"
    return Parsed


def _build(connection: BaseDatabaseWrapper, raw: Any) -> Engine:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    from django_appdb.sqlalchemy import dialects

    vendor = connection.vendor
    alias = connection.alias
    # The URL names the database, as the app's own engine does: repositories
    # compare it to tell which database a session is bound to.
    url = dialects.derive_spec(alias, connection.settings_dict, vendor, is_async=False).url
    options: dict[str, Any] = {"poolclass": StaticPool, "pool_reset_on_return": None}
    loaders: tuple[tuple[int, type], ...] = ()
    if vendor == "postgresql":
        loaders = _psycopg_loaders(raw, alias)
        # Registering hstore would change Django's connection's adapters.
        options["use_native_hstore"] = False
    shared = _SharedDBAPIConnection(raw, alias, loaders)
    engine = create_engine(url, creator=lambda: shared, **options)
    if vendor == "sqlite":
        from sqlalchemy import types
        from sqlalchemy.dialects.sqlite import DATE, DATETIME, TIME

        # Django's connection parses declared date/time columns itself.
        engine.dialect.colspecs = {
            **engine.dialect.colspecs,
            types.Date: _passthrough(DATE),
            types.DateTime: _passthrough(DATETIME),
            types.Time: _passthrough(TIME),
        }
    return engine


def engine_for(connection: BaseDatabaseWrapper) -> Engine:
    """Return an engine whose one connection is ``connection``'s open DBAPI connection.

    The engine is kept while Django keeps that DBAPI connection open. Raise
    ``django.db.NotSupportedError`` for an unsupported backend.
    """
    check_supported(connection)
    connection.ensure_connection()
    raw = connection.connection
    with _lock:
        cached = _engines.get(connection)
        if cached is not None and cached[0] is raw:
            return cached[1]
        engine = _build(connection, raw)
        _engines[connection] = (raw, engine)
    if cached is not None:
        # Only forgets the wrapper of a connection Django has since closed.
        cached[1].dispose()
    return engine


def in_test_transaction(connection: BaseDatabaseWrapper) -> bool:
    """Return whether ``connection`` is inside the transaction a Django ``TestCase`` wraps each test in."""
    return any(getattr(block, "_from_testcase", False) for block in getattr(connection, "atomic_blocks", ()))


def open_session(connection: BaseDatabaseWrapper, **options: Any) -> tuple[Session, Connection]:
    """Return a ``Session`` on ``connection``'s DBAPI connection, and the SQLAlchemy connection it is bound to.

    ``connection`` must be inside a transaction (an ``atomic`` block). Close
    both with :func:`close_session`. ``options`` go to ``Session``;
    ``expire_on_commit`` defaults to False, as for the app sessions.
    """
    from sqlalchemy.orm import Session

    from django_appdb.sqlalchemy.sessions import SESSION_OPTIONS

    check_access(connection)
    engine = engine_for(connection)
    bound = engine.connect()
    try:
        # A transaction only for SQLAlchemy's bookkeeping: BEGIN is a no-op for
        # these dialects, and Django's transaction is already open.
        bound.begin()
        session = Session(bind=bound, join_transaction_mode="create_savepoint", **{**SESSION_OPTIONS, **options})
    except BaseException:
        bound.close()
        raise
    return session, bound


def close_session(session: Session, bound: Connection, connection: BaseDatabaseWrapper, *, commit: bool) -> None:
    """Release (``commit=True``) or roll back the session's savepoint, then close the session and ``bound``.

    When Django's transaction has already ended, and its savepoints with it,
    the session is discarded without a statement.
    """
    try:
        if not (connection.in_atomic_block and connection.connection is not None):
            session.invalidate()
            return
        try:
            if commit:
                session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
    finally:
        bound.close()
