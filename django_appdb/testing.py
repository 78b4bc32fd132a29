"""Helpers for testing a project that uses django-appdb.

* :func:`app_aliases` gives the database aliases a test declares in
  ``databases`` (Django's ``TestCase``) or ``@pytest.mark.django_db``.
* :func:`django_connection_session` gives a SQLAlchemy session that shares
  Django's connection and transaction, so a ``TestCase`` test sees the ORM's
  rows from SQLAlchemy and the other way round, and Django's rollback undoes
  both.

The pytest fixtures (``appdb_session``, ``appdb_async_session``,
``appdb_django_session``) live in :mod:`django_appdb.pytest_plugin`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from .databases import state

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["app_aliases", "database_alias", "django_connection_session"]


def app_aliases(*app_labels: str) -> set[str]:
    """Return the database aliases of the given apps, or of every installed app.

    Use it for ``databases`` on Django test cases and in
    ``@pytest.mark.django_db(databases=...)``::

        class OrderTests(TestCase):
            databases = app_aliases()            # every app database
            # databases = app_aliases("orders")  # just one app's

    ``default`` is always included: Django keeps its own tables there.
    """
    if not app_labels:
        return {DEFAULT_DB_ALIAS, *state.aliases.values()}
    unknown = [label for label in app_labels if label not in state.aliases]
    if unknown:
        raise LookupError(
            f"No installed app with label {', '.join(map(repr, unknown))}. "
            f"Known labels: {', '.join(sorted(state.aliases))}."
        )
    return {DEFAULT_DB_ALIAS, *(state.aliases[label] for label in app_labels)}


def database_alias(name: str) -> str:
    """Return the database alias ``name`` stands for: an installed app's label, else a database alias.

    Raise ``LookupError`` listing both when it is neither.
    """
    alias = state.aliases.get(name)
    if alias is not None:
        return alias
    if name in connections.settings:
        return name
    raise LookupError(
        f"{name!r} is neither an installed app label nor a database alias. "
        f"Labels: {', '.join(sorted(state.aliases)) or '(none)'}; "
        f"aliases: {', '.join(sorted(connections.settings))}."
    )


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
    from . import shared_connection

    alias = database_alias(name)
    connection = connections[alias]
    shared_connection.check_access(connection)
    with transaction.atomic(using=alias):
        session, bound = shared_connection.open_session(connection, **options)
        try:
            yield session
        except BaseException:
            shared_connection.close_session(session, bound, connection, commit=False)
            raise
        shared_connection.close_session(session, bound, connection, commit=True)
