"""Give every installed Django app its own database, with zero glue code."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The public API, written down once: each name and the module it lives in.
# ``__all__`` and the lazy loader below derive from it; the imports under
# TYPE_CHECKING, which type checkers need, are checked against it by
# tests/test_public_api.py. Imported on first use, so that listing
# django_appdb in INSTALLED_APPS costs nothing before Django has configured
# its settings.
_EXPORTS = {
    # Discovery and the merged configuration
    "AppDatabase": "databases",
    "app_databases": "state",
    "discover_all_app_databases": "discovery",
    "discover_app_database": "discovery",
    "get_app_database": "state",
    "mask_url": "dburls",
    "AppDatabaseRouter": "routers",
    # Exceptions (all of them live in django_appdb.exceptions)
    "AppDatabaseConfigError": "exceptions",
    "CrossDatabaseError": "exceptions",
    "EngineDoesNotExist": "exceptions",
    "MissingDriverError": "exceptions",
    "UnknownAppError": "exceptions",
    "UnsupportedFieldError": "exceptions",
    # Read replicas: read-your-writes
    "replica_scope": "replicas",
    "use_primary": "replicas",
    # SQLAlchemy engines and sessions
    "aclose_all_engines": "sqlalchemy.engines",
    "close_all_engines": "sqlalchemy.engines",
    "get_app_session": "sqlalchemy.sessions",
    "get_async_engine": "sqlalchemy.engines",
    "get_async_sessionmaker": "sqlalchemy.sessions",
    "get_engine": "sqlalchemy.engines",
    "get_session": "sqlalchemy.sessions",
    "get_sessionmaker": "sqlalchemy.sessions",
    "get_sync_app_session": "sqlalchemy.sessions",
    # SQLAlchemy tables and repositories
    "AppRepository": "sqlalchemy.repositories",
    "AsyncAppRepository": "sqlalchemy.repositories",
    "metadata_for": "sqlalchemy.tables",
    "register_field_type": "sqlalchemy.fieldtypes",
    "table_for": "sqlalchemy.tables",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from django_appdb.databases import AppDatabase as AppDatabase
    from django_appdb.dburls import mask_url as mask_url
    from django_appdb.discovery import (
        discover_all_app_databases as discover_all_app_databases,
        discover_app_database as discover_app_database,
    )
    from django_appdb.exceptions import (
        AppDatabaseConfigError as AppDatabaseConfigError,
        CrossDatabaseError as CrossDatabaseError,
        EngineDoesNotExist as EngineDoesNotExist,
        MissingDriverError as MissingDriverError,
        UnknownAppError as UnknownAppError,
        UnsupportedFieldError as UnsupportedFieldError,
    )
    from django_appdb.replicas import replica_scope as replica_scope, use_primary as use_primary
    from django_appdb.routers import AppDatabaseRouter as AppDatabaseRouter
    from django_appdb.sqlalchemy.engines import (
        aclose_all_engines as aclose_all_engines,
        close_all_engines as close_all_engines,
        get_async_engine as get_async_engine,
        get_engine as get_engine,
    )
    from django_appdb.sqlalchemy.fieldtypes import register_field_type as register_field_type
    from django_appdb.sqlalchemy.repositories import (
        AppRepository as AppRepository,
        AsyncAppRepository as AsyncAppRepository,
    )
    from django_appdb.sqlalchemy.sessions import (
        get_app_session as get_app_session,
        get_async_sessionmaker as get_async_sessionmaker,
        get_session as get_session,
        get_sessionmaker as get_sessionmaker,
        get_sync_app_session as get_sync_app_session,
    )
    from django_appdb.sqlalchemy.tables import metadata_for as metadata_for, table_for as table_for
    from django_appdb.state import (
        app_databases as app_databases,
        get_app_database as get_app_database,
    )


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'django_appdb' has no attribute {name!r}") from None
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
