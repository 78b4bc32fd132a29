"""The helpers :mod:`django_appdb.testing` exports: the aliases a test declares, a session on Django's connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from django_appdb.replicas import replica_scope
from django_appdb.state import resolve_alias, state

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["app_aliases", "django_connection_session", "replica_routing"]


def app_aliases(*names: str) -> set[str]:
    """Return the database aliases of the given apps (labels or aliases), or of every installed app.

    Use it for ``databases`` on Django test cases and in
    ``@pytest.mark.django_db(databases=...)``::

        class OrderTests(TestCase):
            databases = app_aliases()            # every app database
            # databases = app_aliases("orders")  # just one app's

    ``default`` is always included: Django keeps its own tables there. Each
    name is an app label or a database alias, as everywhere else (an unknown one raises
    :class:`~django_appdb.UnknownAppError`).
    """
    aliases = {DEFAULT_DB_ALIAS, *(state.aliases.values() if not names else map(resolve_alias, names))}
    # Their read replicas too: a test that opts in to replica routing reads them.
    return aliases | {replica for alias in aliases for replica in state.replicas.get(alias, ())}


class replica_routing(replica_scope):
    """Route reads to read replicas inside the block, though a test is running.

    During a test run reads go to the primary, since a replica's connection
    cannot see rows a test wrote inside its transaction. Inside this block
    (a context manager, sync and async, and a decorator) they go to replicas
    as in production, in a fresh read-your-writes context. Use it in a
    ``TransactionTestCase`` (or ``django_db(transaction=True)``), whose rows are
    committed, and declare the replicas' aliases (:func:`app_aliases` includes them).
    """

    def __init__(self) -> None:
        super().__init__(replicas_in_tests=True)

    def _fresh(self) -> replica_routing:
        return replica_routing()


@contextmanager
def django_connection_session(name: str = DEFAULT_DB_ALIAS, **options: Any) -> Iterator[Session]:
    """Yield a SQLAlchemy ``Session`` running on Django's own connection for an app's database.

    ``name`` is an app label or a database alias. The block runs inside
    ``transaction.atomic(using=alias)`` and the session joins that
    transaction through a savepoint:

    * the session sees rows the test wrote through the ORM, and the ORM sees
      what the session flushed, before anything is committed;
    * ``session.commit()`` releases the session's savepoint, and
      ``session.rollback()`` undoes only the session's work since then;
    * a clean exit commits the session (as ``get_sync_app_session`` does),
      and an exception rolls it back; either way the work stays inside
      Django's transaction, which a ``TestCase`` rolls back after the test.

    ::

        class OrderTests(TestCase):
            databases = app_aliases("orders")

            def test_sqlalchemy_sees_the_orm(self):
                Order.objects.create(number="A-1", customer_email="ada@example.com")
                with django_connection_session("orders") as session:
                    assert session.scalar(select(func.count()).select_from(table_for(Order))) == 1

    Django's test cases refuse databases a test did not declare; so does
    this session. ``options`` go to ``Session``. Supported on PostgreSQL
    (psycopg 3) and SQLite; other backends raise
    ``django.db.NotSupportedError``. Sync only: Django's connection cannot be
    shared with an ``AsyncSession``.
    """
    from django_appdb.sqlalchemy import djangoconnection

    alias = resolve_alias(name)
    connection = connections[alias]
    djangoconnection.check_access(connection)
    with transaction.atomic(using=alias):
        session, bound = djangoconnection.open_session(connection, **options)
        try:
            yield session
        except BaseException:
            djangoconnection.close_session(session, bound, connection, commit=False)
            raise
        djangoconnection.close_session(session, bound, connection, commit=True)
