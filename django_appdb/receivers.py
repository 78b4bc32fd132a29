"""The signal receivers and the fork hook, connected once, from ``AppConfig.ready()``.

Each forwards to the modules it concerns only once they are imported: a
process that never built an engine has no engines to reset, and connecting
the receivers imports neither SQLAlchemy nor ``django.test``.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any

from django.core.signals import setting_changed
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.signals import connection_created

__all__ = ["connect", "on_connection_created", "on_databases_loaded", "on_setting_changed"]

_UID = "django_appdb.receivers"


def _imported(name: str) -> ModuleType | None:
    return sys.modules.get(f"django_appdb.{name}")


def on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    """Follow ``override_settings``: the router list, the engines, the table cache and the replicas' health."""
    if setting == "APPDB_INSTALL_ROUTER":
        from django_appdb import routers

        routers.reinstall()
    engines = _imported("sqlalchemy.engines")
    if engines is not None and setting in ("DATABASES", "APPDB_SQLALCHEMY_ENGINE_OPTIONS"):
        engines.reset_engines()
    tables = _imported("sqlalchemy.tables")
    if tables is not None and setting in ("USE_TZ", "DATABASES"):
        tables.clear_cache()
    replicas = _imported("replicas")
    if replicas is not None and (setting == "DATABASES" or setting.startswith("APPDB_REPLICA")):
        # What was learnt of a replica (down until when, its lag) belongs to
        # the databases and limits it was learnt under.
        replicas.health.clear()


def on_databases_loaded() -> None:
    """Empty the caches keyed by app label, after the app databases were (re)loaded."""
    engines = _imported("sqlalchemy.engines")
    if engines is not None:
        engines.engines.forget_labels()
    sessions = _imported("sqlalchemy.sessions")
    if sessions is not None:
        sessions.forget_labels()


def on_connection_created(*, connection: Any, **kwargs: Any) -> None:
    """Close the engines' pools before Django creates or drops a database; refuse real ones in tests."""
    engines = _imported("sqlalchemy.engines")
    # Django connects without a database only to create, copy or drop one:
    # the test databases, before and after every test run. PostgreSQL refuses
    # to drop or copy a database that still has sessions, so pooled
    # connections must not outlive that moment.
    if engines is not None and connection.alias == NO_DB_ALIAS:
        engines.close_all_engines()
    guard = _imported("testing.guard")
    if guard is not None:
        guard.on_connection_created(connection)


def _after_fork_in_child() -> None:
    engines = _imported("sqlalchemy.engines")
    if engines is not None:
        engines.after_fork_in_child()


_connected = False


def connect() -> None:
    """Connect the receivers and register the fork hook; idempotent."""
    global _connected
    if _connected:
        return
    _connected = True
    setting_changed.connect(on_setting_changed, dispatch_uid=f"{_UID}.setting_changed")
    connection_created.connect(on_connection_created, dispatch_uid=f"{_UID}.connection_created")
    # A fork hook cannot be removed: registered once per process.
    os.register_at_fork(after_in_child=_after_fork_in_child)
