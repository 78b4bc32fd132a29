"""One-off connections to an alias' database, outside ``django.db.connections``.

The commands probe and create databases through a private ``DatabaseWrapper``
built from a copy of the alias' settings, so they never disturb (or leave
open) the connection the rest of the process uses for that alias.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import load_backend

from django_appdb.state import direct_settings

__all__ = ["standalone_connection"]


def _with_connect_timeout(vendor: str, options: dict[str, Any], seconds: float) -> None:
    # libpq and the MySQL drivers take whole seconds; never lengthen a
    # shorter timeout the project already set. One second more than asked:
    # the caller's own deadline decides, and the driver's only ends an
    # attempt left behind (psycopg 3.1 gives up at exactly connect_timeout,
    # racing the deadline; psycopg 3.3 waits at least 2 s, as libpq does).
    if vendor not in ("postgresql", "mysql"):
        return
    wanted = max(1, math.ceil(seconds)) + 1
    current = options.get("connect_timeout")
    try:
        current_seconds = int(current) if current not in (None, "") else 0
    except (TypeError, ValueError):
        current_seconds = 0
    if current_seconds <= 0 or current_seconds > wanted:
        options["connect_timeout"] = wanted


@contextmanager
def standalone_connection(
    alias: str, *, connect_timeout: float | None = None, direct: bool = False
) -> Iterator[BaseDatabaseWrapper]:
    """Yield a new, unshared ``DatabaseWrapper`` for ``alias``; close it on exit.

    It opens its connection lazily, on first use, in the thread that uses it.
    ``connect_timeout`` (seconds) bounds connecting on PostgreSQL and MySQL.
    A connection pool configured in ``OPTIONS`` is not used. With ``direct``,
    it uses the alias's direct connection when one is declared
    (:func:`~django_appdb.state.direct_settings`).
    """
    source = (direct and direct_settings(alias)) or connections.settings[alias]
    # Shallow copies: OPTIONS may hold objects (an SSL context) that cannot
    # be deep-copied, and only the top-level keys are changed here.
    settings_dict = {**source, "CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": False}
    options = dict(source.get("OPTIONS") or {})
    options.pop("pool", None)
    backend = load_backend(settings_dict["ENGINE"])
    if connect_timeout is not None:
        _with_connect_timeout(backend.DatabaseWrapper.vendor, options, connect_timeout)
    settings_dict["OPTIONS"] = options
    settings_dict["TEST"] = dict(source.get("TEST") or {})
    wrapper = backend.DatabaseWrapper(settings_dict, alias)
    try:
        yield wrapper
    finally:
        wrapper.close()
        if wrapper.connection is not None:
            # SQLite ignores close() on in-memory databases to protect their
            # data; this private connection holds none worth keeping.
            BaseDatabaseWrapper.close(wrapper)
