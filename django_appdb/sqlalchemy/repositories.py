"""Repositories: SQLAlchemy data access bound to one app's database.

::

    class OrderRepository(AsyncAppRepository):
        app_label = "orders"
        model = Order

    async with OrderRepository() as orders:      # one transaction
        order = await orders.add(number="A-1", customer_email="ada@example.com")
        await orders.update(order.id, paid=True)

A repository works in one of three ways:

* ``OrderRepository(session)`` joins the caller's ``Session``/``AsyncSession``
  and its transaction: the repository never commits, rolls back or closes it.
* ``with OrderRepository() as repo:`` (``async with`` for the async class)
  opens a session on the app's database, commits when the block exits cleanly
  and rolls back when it raises. Nested blocks join the outer one.
* Outside such a block, each call runs in a transaction of its own and
  commits, like Django's autocommit.

A repository never touches another app's database: a session bound elsewhere
and any generated table of a model on another database are refused with
:class:`~django_appdb.exceptions.CrossDatabaseError`.

Writes go straight to the database: Django's signals, ``save()`` and Python-side
``on_delete`` cascades do not run. Fields' defaults, ``auto_now`` and
``auto_now_add`` are applied.

A repository instance holds its session: use one per request, task or thread.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from django.db.models import Model
from sqlalchemy import ColumnElement, Executable, Row, Table, delete, func, insert, select, tuple_, update
from sqlalchemy.engine import URL, Connection, Engine, Result
from sqlalchemy.exc import UnboundExecutionError
from sqlalchemy.orm import Session
from sqlalchemy.sql import visitors

from django_appdb.dburls import identity, mask_url
from django_appdb.exceptions import CrossDatabaseError
from django_appdb.sqlalchemy.tables import INFO_DATABASE, INFO_MODEL, database_of, table_for
from django_appdb.state import get_app_database

if TYPE_CHECKING:
    from sqlalchemy.engine import CursorResult
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.sql.elements import ClauseElement

T = TypeVar("T")
SyncRepo = TypeVar("SyncRepo", bound="AppRepository")
AsyncRepo = TypeVar("AsyncRepo", bound="AsyncAppRepository")

__all__ = ["AppRepository", "AsyncAppRepository"]


def _url_identity(url: URL) -> tuple[Any, ...] | None:
    # dburls.identity(), read from an engine's URL (its connect_args, and so
    # any schema chosen there, are not part of it).
    backend = url.get_backend_name()
    engine = "django.db.backends.sqlite3" if backend == "sqlite" else f"django.db.backends.{backend}"
    # A SQLite URI's own options (``?mode=memory&cache=shared``) do not change which database it names.
    name = (url.database or "").split("?", 1)[0]
    return identity({"ENGINE": engine, "NAME": name, "HOST": url.host, "PORT": url.port})


def _is_async_session(value: object) -> bool:
    # sqlalchemy.ext.asyncio needs greenlet: never import it on the sync path.
    # Until something imported it, no AsyncSession can exist.
    module = sys.modules.get("sqlalchemy.ext.asyncio")
    return module is not None and isinstance(value, module.AsyncSession)


def _buffered(result: Result[Any]) -> Result[Any]:
    # Rows stay readable after the session that produced them has closed.
    return result.freeze()() if cast("CursorResult[Any]", result).returns_rows else result


def _rowcount(result: Result[Any]) -> int:
    # What DML returns is a CursorResult, which counts the rows it matched.
    count: int = cast("CursorResult[Any]", result).rowcount
    return count


class _Base:
    """What the sync and async repositories share: binding checks and statements."""

    #: The app whose database this repository uses. Defaults to ``model``'s app.
    app_label: ClassVar[str] = ""
    #: The model whose table ``get``/``list``/``add``/``update``/``delete`` use.
    #: Optional: a repository may run only its own statements.
    model: ClassVar[type[Model] | None] = None

    _validated: ClassVar[tuple[Any, str] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("app_label") and cls.__dict__.get("model") is not None:
            cls.app_label = cls.model._meta.app_label  # type: ignore[union-attr]
        cls._validated = None

    def __init__(self, replica: bool = False) -> None:
        self.alias = self._check_class()
        self._depth = 0
        #: Whether ``get``/``list``/``count`` outside ``with repo:`` read from a read replica.
        self.replica = replica

    @classmethod
    def _check_class(cls) -> str:
        """Return the app's database alias; check the model lives there (once per routing)."""
        if not cls.app_label:
            raise TypeError(f"{cls.__qualname__} needs app_label (or a model, whose app is then used).")
        record = get_app_database(cls.app_label)
        if cls._validated is not None and cls._validated[0] is record:
            return cls._validated[1]
        if cls.model is not None:
            model_alias = database_of(cls.model)
            if model_alias != record.alias:
                raise CrossDatabaseError(
                    f"{cls.__qualname__}: model {cls.model._meta.label} lives in database {model_alias!r}, "
                    f"but app {cls.app_label!r} uses database {record.alias!r}. Use a repository of app "
                    f"{cls.model._meta.app_label!r} for it."
                )
        cls._validated = (record, record.alias)
        return record.alias

    def __repr__(self) -> str:
        model = f" model={self.model._meta.label}" if self.model is not None else ""
        return f"<{type(self).__qualname__} app={self.app_label!r} database={self.alias!r}{model}>"

    # -- tables ------------------------------------------------------------

    @property
    def table(self) -> Table:
        """Return the table of ``model``."""
        if self.model is None:
            raise TypeError(f"{type(self).__qualname__} has no model: set model = ..., or use self.table_for(Model).")
        return self.table_for(self.model)

    @property
    def c(self) -> Any:
        """Return the columns of ``model``'s table, keyed by attname: ``repo.c.total > 10``."""
        return self.table.c

    def table_for(self, model: type[Model] | str) -> Table:
        """Return ``model``'s table; raise ``CrossDatabaseError`` if it lives in another database."""
        table = table_for(model)
        self._check_table(table)
        return table

    def _check_table(self, table: Table) -> None:
        alias = table.info.get(INFO_DATABASE)
        if alias is not None and alias != self.alias:
            label = table.info[INFO_MODEL]._meta.label
            raise CrossDatabaseError(
                f"{type(self).__qualname__} (app {self.app_label!r}, database {self.alias!r}) cannot use "
                f"table {table.name!r} of {label}: it lives in database {alias!r}. Use a repository of "
                f"app {table.info[INFO_MODEL]._meta.app_label!r} for it."
            )

    def _check_statement(self, statement: Executable) -> None:
        for element in visitors.iterate(cast("ClauseElement", statement)):
            if isinstance(element, Table):
                self._check_table(element)

    def _check_bind(self, bind: Engine | Connection, expected: Engine) -> None:
        engine = bind.engine if isinstance(bind, Connection) else bind
        if engine is expected or _url_identity(engine.url) == _url_identity(expected.url):
            return
        raise CrossDatabaseError(
            f"{type(self).__qualname__} (app {self.app_label!r}, database {self.alias!r}) was given a "
            f"session bound to {mask_url(engine.url.render_as_string(hide_password=False))}, not to the "
            f"app's database {mask_url(expected.url.render_as_string(hide_password=False))}."
        )

    def _session_bind(self, session: Session) -> Engine | Connection:
        try:
            return session.get_bind(clause=self.table if self.model is not None else None)
        except UnboundExecutionError:
            raise CrossDatabaseError(
                f"{type(self).__qualname__} was given a session with no bind: it cannot tell which "
                f"database the session uses. Bind it to the app's engine, e.g. "
                f"django_appdb.get_sessionmaker({self.app_label!r})()."
            ) from None

    # -- statements --------------------------------------------------------

    def _columns(self) -> list[Any]:
        # Result keys are attnames (``category_id``), also when db_column differs.
        return [column if column.key == column.name else column.label(column.key) for column in self.table.c]

    def _where(self, where: Sequence[ColumnElement[bool]], equals: Mapping[str, Any]) -> list[ColumnElement[bool]]:
        clauses = list(where)
        for key, value in equals.items():
            column = self._column(key)
            clauses.append(column.is_(None) if value is None else column == value)
        return clauses

    def _column(self, key: str) -> Any:
        columns = self.table.c
        if key in columns:
            return columns[key]
        hint = ""
        field = next((f for f in self.table.info[INFO_MODEL]._meta.concrete_fields if f.name == key), None)
        if field is not None and field.attname in columns:
            hint = f" (for the relation, use {field.attname!r})"
        raise KeyError(
            f"{self.table.info[INFO_MODEL]._meta.label} has no column {key!r}{hint}. "
            f"Columns: {', '.join(columns.keys())}."
        )

    def _values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {self._column(key).key: value for key, value in values.items()}

    def _pk_clause(self, pk: Any) -> ColumnElement[bool]:
        columns = list(self.table.primary_key.columns)
        if len(columns) == 1:
            clause: ColumnElement[bool] = columns[0] == pk
            return clause
        if not isinstance(pk, (tuple, list)) or len(pk) != len(columns):
            raise ValueError(
                f"{self.table.info[INFO_MODEL]._meta.label} has a composite primary key "
                f"({', '.join(c.key for c in columns)}): pass a tuple of {len(columns)} values."
            )
        return tuple_(*columns) == tuple_(*pk)

    def _get_statement(self, pk: Any) -> Executable:
        return select(*self._columns()).where(self._pk_clause(pk))

    def _count_statement(self, where: Sequence[ColumnElement[bool]], equals: Mapping[str, Any]) -> Executable:
        return select(func.count()).select_from(self.table).where(*self._where(where, equals))

    def _insert_statement(self, values: Mapping[str, Any], returning: bool) -> Executable:
        statement = insert(self.table).values(self._values(values))
        return statement.returning(*self._columns()) if returning else statement

    def _update_statement(self, pk: Any, values: Mapping[str, Any]) -> Executable:
        if not values:
            raise ValueError("update() needs at least one column=value.")
        return update(self.table).where(self._pk_clause(pk)).values(self._values(values))

    def _delete_statement(self, pk: Any) -> Executable:
        return delete(self.table).where(self._pk_clause(pk))

    def _inserted_pk(self, result: Result[Any]) -> Any:
        key = tuple(cast("CursorResult[Any]", result).inserted_primary_key or ())
        return key[0] if len(key) == 1 else key

    # The work of each method, written once as a function of a sync Session:
    # the sync repository calls it, the async one runs it through
    # AsyncSession.run_sync (one greenlet switch per method, as one await).

    def _execute_work(self, statement: Executable, params: Any) -> Callable[[Session], Result[Any]]:
        self._check_statement(statement)
        return lambda session: _buffered(session.execute(statement, params))

    def _get_work(self, pk: Any) -> Callable[[Session], Row[Any] | None]:
        statement = self._get_statement(pk)
        return lambda session: session.execute(statement).one_or_none()

    def _list_work(
        self,
        where: Sequence[ColumnElement[bool]],
        equals: Mapping[str, Any],
        order_by: Iterable[Any] | None,
        limit: int | None,
        offset: int | None,
    ) -> Callable[[Session], Sequence[Row[Any]]]:
        statement = select(*self._columns()).where(*self._where(where, equals))
        statement = statement.order_by(*(order_by if order_by is not None else self.table.primary_key.columns))
        if limit is not None:
            statement = statement.limit(limit)
        if offset is not None:
            statement = statement.offset(offset)
        return lambda session: session.execute(statement).all()

    def _count_work(self, where: Sequence[ColumnElement[bool]], equals: Mapping[str, Any]) -> Callable[[Session], int]:
        statement = self._count_statement(where, equals)
        return lambda session: int(session.execute(statement).scalar_one())

    def _add_work(self, values: Mapping[str, Any]) -> Callable[[Session], Row[Any]]:
        def work(session: Session) -> Row[Any]:
            returning = session.get_bind(clause=self.table).dialect.insert_returning
            result = session.execute(self._insert_statement(values, returning))
            if returning:
                return result.one()
            return session.execute(self._get_statement(self._inserted_pk(result))).one()

        return work

    def _add_many_work(self, rows: Iterable[Mapping[str, Any]]) -> Callable[[Session], int] | None:
        # None for no rows: nothing to insert, so no session is opened.
        values = [self._values(row) for row in rows]
        if not values:
            return None

        def work(session: Session) -> int:
            session.execute(insert(self.table), values)
            return len(values)

        return work

    def _update_work(self, pk: Any, values: Mapping[str, Any]) -> Callable[[Session], int]:
        statement = self._update_statement(pk, values)
        return lambda session: _rowcount(session.execute(statement))

    def _delete_work(self, pk: Any) -> Callable[[Session], int]:
        statement = self._delete_statement(pk)
        return lambda session: _rowcount(session.execute(statement))


class AppRepository(_Base):
    """A synchronous repository bound to ``app_label``'s database.

    Pass a ``Session`` to join the caller's transaction; otherwise use
    ``with repo:`` for one transaction, or call methods directly to run each in
    its own transaction. Sessions come from
    :func:`django_appdb.get_sync_app_session`. With ``replica=True``,
    ``get``/``list``/``count`` called outside ``with repo:`` read from a read
    replica, as the router's reads do; writes go to the primary and pin it.
    """

    def __init__(self, session: Session | None = None, *, replica: bool = False) -> None:
        super().__init__(replica)
        if session is not None:
            if not isinstance(session, Session):
                raise TypeError(
                    f"{type(self).__qualname__} needs a sqlalchemy.orm.Session, got {type(session).__name__}"
                    + (": use an AsyncAppRepository for an AsyncSession." if _is_async_session(session) else ".")
                )
            from django_appdb.sqlalchemy.engines import get_engine

            self._check_bind(self._session_bind(session), get_engine(self.app_label))
        self._session: Session | None = session
        self._owned: Any = None

    @property
    def session(self) -> Session:
        """Return the session in use: the caller's, or the one ``with repo:`` opened."""
        if self._session is None:
            raise RuntimeError(
                f"{type(self).__qualname__} has no session outside 'with repo:'; pass one to the constructor."
            )
        return self._session

    def __enter__(self: SyncRepo) -> SyncRepo:
        if self._session is None:
            from django_appdb.sqlalchemy.sessions import get_sync_app_session

            owned = get_sync_app_session(self.app_label)
            self._session = owned.__enter__()
            self._owned = owned
        self._depth += 1
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._depth -= 1
        if self._depth == 0 and self._owned is not None:
            owned, self._owned, self._session = self._owned, None, None
            owned.__exit__(exc_type, exc, tb)

    def _run(self, work: Callable[[Session], T], read: bool = False) -> T:
        if self._session is not None:
            return work(self._session)
        if read and self.replica:
            from django_appdb.sqlalchemy.sessions import get_sync_app_session

            with get_sync_app_session(self.app_label, replica=True) as session:
                return work(session)
        with self:
            return work(self.session)

    def execute(self, statement: Executable, params: Any = None) -> Result[Any]:
        """Execute ``statement`` on the app's database and return its buffered result.

        Raise ``CrossDatabaseError`` if it uses a table of another database.
        """
        return self._run(self._execute_work(statement, params))

    def get(self, pk: Any) -> Row[Any] | None:
        """Return the row whose primary key is ``pk`` (a tuple for a composite key), or None."""
        return self._run(self._get_work(pk), read=True)

    def list(
        self,
        *where: ColumnElement[bool],
        order_by: Iterable[Any] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        **equals: Any,
    ) -> Sequence[Row[Any]]:
        """Return the rows matching every ``where`` clause and ``column=value``, by primary key by default."""
        return self._run(self._list_work(where, equals, order_by, limit, offset), read=True)

    def count(self, *where: ColumnElement[bool], **equals: Any) -> int:
        """Return how many rows match every ``where`` clause and ``column=value``."""
        return self._run(self._count_work(where, equals), read=True)

    def add(self, **values: Any) -> Row[Any]:
        """Insert one row and return it as stored, defaults and primary key included.

        Columns are named by attname (``order_id``, not ``order``).
        """
        return self._run(self._add_work(values))

    def add_many(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert many rows in one statement (all with the same columns); return how many."""
        work = self._add_many_work(rows)
        return 0 if work is None else self._run(work)

    def update(self, pk: Any, **values: Any) -> int:
        """Set ``column=value`` on the row whose primary key is ``pk``; return 1, or 0 if there is none."""
        return self._run(self._update_work(pk, values))

    def delete(self, pk: Any) -> int:
        """Delete the row whose primary key is ``pk``; return 1, or 0 if there is none.

        Django's ``on_delete`` does not run: delete dependent rows first.
        """
        return self._run(self._delete_work(pk))


class AsyncAppRepository(_Base):
    """An asynchronous repository bound to ``app_label``'s database.

    Pass an ``AsyncSession`` to join the caller's transaction; otherwise use
    ``async with repo:`` for one transaction, or await methods directly to run
    each in its own transaction. Sessions come from
    :func:`django_appdb.get_app_session`; ``replica=True`` reads from a
    replica as :class:`AppRepository`'s does.
    """

    def __init__(self, session: AsyncSession | None = None, *, replica: bool = False) -> None:
        super().__init__(replica)
        if session is not None:
            if not _is_async_session(session):
                raise TypeError(
                    f"{type(self).__qualname__} needs a sqlalchemy.ext.asyncio.AsyncSession, got "
                    f"{type(session).__name__}"
                    + (": use an AppRepository for a Session." if isinstance(cast(object, session), Session) else ".")
                )
            from django_appdb.sqlalchemy.engines import get_async_engine

            self._check_bind(self._session_bind(session.sync_session), get_async_engine(self.app_label).sync_engine)
        self._session: AsyncSession | None = session
        self._owned: Any = None

    @property
    def session(self) -> AsyncSession:
        """Return the session in use: the caller's, or the one ``async with repo:`` opened."""
        if self._session is None:
            raise RuntimeError(
                f"{type(self).__qualname__} has no session outside 'async with repo:'; pass one to the constructor."
            )
        return self._session

    async def __aenter__(self: AsyncRepo) -> AsyncRepo:
        if self._session is None:
            from django_appdb.sqlalchemy.sessions import get_app_session

            owned = get_app_session(self.app_label)
            self._session = await owned.__aenter__()
            self._owned = owned
        self._depth += 1
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._depth -= 1
        if self._depth == 0 and self._owned is not None:
            owned, self._owned, self._session = self._owned, None, None
            await owned.__aexit__(exc_type, exc, tb)

    async def _run(self, work: Callable[[Session], T], read: bool = False) -> T:
        if self._session is not None:
            return await self._session.run_sync(work)
        if read and self.replica:
            from django_appdb.sqlalchemy.sessions import get_app_session

            async with get_app_session(self.app_label, replica=True) as session:
                return await session.run_sync(work)
        async with self:
            return await self.session.run_sync(work)

    async def execute(self, statement: Executable, params: Any = None) -> Result[Any]:
        """Execute ``statement`` on the app's database and return its buffered result.

        Raise ``CrossDatabaseError`` if it uses a table of another database.
        """
        return await self._run(self._execute_work(statement, params))

    async def get(self, pk: Any) -> Row[Any] | None:
        """Return the row whose primary key is ``pk`` (a tuple for a composite key), or None."""
        return await self._run(self._get_work(pk), read=True)

    async def list(
        self,
        *where: ColumnElement[bool],
        order_by: Iterable[Any] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        **equals: Any,
    ) -> Sequence[Row[Any]]:
        """Return the rows matching every ``where`` clause and ``column=value``, by primary key by default."""
        return await self._run(self._list_work(where, equals, order_by, limit, offset), read=True)

    async def count(self, *where: ColumnElement[bool], **equals: Any) -> int:
        """Return how many rows match every ``where`` clause and ``column=value``."""
        return await self._run(self._count_work(where, equals), read=True)

    async def add(self, **values: Any) -> Row[Any]:
        """Insert one row and return it as stored, defaults and primary key included.

        Columns are named by attname (``order_id``, not ``order``).
        """
        return await self._run(self._add_work(values))

    async def add_many(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert many rows in one statement (all with the same columns); return how many."""
        work = self._add_many_work(rows)
        return 0 if work is None else await self._run(work)

    async def update(self, pk: Any, **values: Any) -> int:
        """Set ``column=value`` on the row whose primary key is ``pk``; return 1, or 0 if there is none."""
        return await self._run(self._update_work(pk, values))

    async def delete(self, pk: Any) -> int:
        """Delete the row whose primary key is ``pk``; return 1, or 0 if there is none.

        Django's ``on_delete`` does not run: delete dependent rows first.
        """
        return await self._run(self._delete_work(pk))
