"""Run a piece of work over an alias's direct connection (the server's own URL, bypassing its pooler).

:func:`direct_connection` installs a ``DatabaseWrapper`` built from
:func:`~django_appdb.state.direct_settings` as ``connections[alias]`` in the
current thread only, for the length of a ``with`` block. Django's
``migrate``, its migration recorder and the ``pre_migrate``/``post_migrate``
receivers all look the alias up in ``connections``, so they use the direct
connection and record what they apply under the alias's own name; other
threads, and this one afterwards, keep the alias's usual (pooled) connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.base.creation import BaseDatabaseCreation
from django.db.utils import load_backend

from django_appdb import state

__all__ = ["direct_connection", "direct_wrapper", "on_direct_creation", "pooler"]

T = TypeVar("T")


def pooler(alias: str) -> str | None:
    """Return the connection pooler declared in front of ``alias`` (``"pgbouncer-transaction"``...), or None."""
    return state.pooler_of(alias)


def direct_wrapper(alias: str, settings_dict: dict[str, Any] | None = None) -> BaseDatabaseWrapper | None:
    """Return a new, unshared ``DatabaseWrapper`` on ``alias``'s direct connection, or None when it has none."""
    settings_dict = settings_dict or state.direct_settings(alias)
    if settings_dict is None:
        return None
    backend = load_backend(settings_dict["ENGINE"])
    wrapper: BaseDatabaseWrapper = backend.DatabaseWrapper(settings_dict, alias)
    return wrapper


@contextmanager
def direct_connection(alias: str) -> Iterator[BaseDatabaseWrapper | None]:
    """Make ``connections[alias]`` the direct connection in this thread for the block; yield it (None: no direct URL).

    The direct connection is closed on exit, and the alias's usual connection
    (left untouched meanwhile) comes back.
    """
    wrapper = direct_wrapper(alias)
    if wrapper is None:
        yield None
        return
    previous = connections[alias]
    connections[alias] = wrapper
    try:
        yield wrapper
    finally:
        try:
            wrapper.close()
        finally:
            connections[alias] = previous


def _end_pooled_sessions(creation: BaseDatabaseCreation, name: str) -> None:
    """End the other sessions on the test database ``name``: a pooler keeps its server connections open.

    PostgreSQL refuses to drop (or copy) a database others are connected to,
    and PgBouncer holds idle server connections to the test database long
    after the tests closed theirs.
    """
    if creation.connection.vendor != "postgresql" or not name:
        return
    with creation._nodb_cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )


def on_direct_creation(
    creation: BaseDatabaseCreation, work: Callable[[BaseDatabaseCreation], T], *, ending: str | None = None
) -> T:
    """Run ``work`` (a test database set-up or tear-down step) over the direct connection of ``creation``'s alias.

    ``work`` gets the direct wrapper's ``creation`` (itself when the alias has
    no direct URL), with ``connections[alias]`` the direct wrapper meanwhile,
    so ``migrate`` uses it too. The test database name Django gives the direct
    settings, and the serialized contents, pass to the alias's usual
    connection, over which the tests then run. ``ending`` names a test
    database about to be dropped or copied: its other sessions (the pooler's)
    are ended first, over the direct connection.
    """
    connection = creation.connection
    settings_dict = state.direct_settings(connection.alias)
    if settings_dict is None:
        if ending is not None and pooler(connection.alias) is not None:
            # No direct URL, but a pooler still holds server connections to
            # the database about to be dropped or copied.
            connection.close()
            _end_pooled_sessions(creation, ending)
        return work(creation)
    settings_dict["NAME"] = connection.settings_dict["NAME"]
    wrapper = direct_wrapper(connection.alias, settings_dict)
    assert wrapper is not None
    # A kept connection to the database would stop Django dropping it.
    connection.close()
    previous = connections[connection.alias]
    connections[connection.alias] = wrapper
    try:
        if ending is not None:
            _end_pooled_sessions(wrapper.creation, ending)
        return work(wrapper.creation)
    finally:
        try:
            wrapper.close()
        finally:
            connections[connection.alias] = previous
            connection.settings_dict["NAME"] = wrapper.settings_dict["NAME"]
            serialized = getattr(wrapper, "_test_serialized_contents", None)
            if serialized is not None:
                connection._test_serialized_contents = serialized  # type: ignore[attr-defined]
