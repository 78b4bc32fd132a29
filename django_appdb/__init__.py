"""Give every installed Django app its own database, with zero glue code."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AppDatabase",
    "AppDatabaseConfigError",
    "AppDatabaseRouter",
    "AppRepository",
    "AsyncAppRepository",
    "CrossDatabaseError",
    "EngineDoesNotExist",
    "UnsupportedFieldError",
    "aclose_all_engines",
    "app_databases",
    "close_all_engines",
    "discover_all_app_databases",
    "discover_app_database",
    "get_app_database",
    "get_app_session",
    "get_async_engine",
    "get_async_sessionmaker",
    "get_engine",
    "get_session",
    "get_sessionmaker",
    "get_sync_app_session",
    "get_sync_session",
    "mask_url",
    "metadata_for",
    "register_field_type",
    "table_for",
]

# Imported on first use so that listing django_appdb in INSTALLED_APPS costs
# nothing before Django has configured its settings.
_EXPORTS = {
    "AppDatabase": "databases",
    "AppDatabaseConfigError": "exceptions",
    "AppDatabaseRouter": "routers",
    "EngineDoesNotExist": "engines",
    "aclose_all_engines": "engines",
    "AppRepository": "repositories",
    "AsyncAppRepository": "repositories",
    "CrossDatabaseError": "exceptions",
    "UnsupportedFieldError": "exceptions",
    "app_databases": "databases",
    "discover_all_app_databases": "discovery",
    "discover_app_database": "discovery",
    "close_all_engines": "engines",
    "get_app_database": "databases",
    "get_app_session": "sessions",
    "get_async_engine": "engines",
    "get_async_sessionmaker": "sessions",
    "get_engine": "engines",
    "get_session": "sessions",
    "get_sessionmaker": "sessions",
    "get_sync_app_session": "sessions",
    "get_sync_session": "sessions",
    "mask_url": "dburls",
    "metadata_for": "tables",
    "register_field_type": "fieldtypes",
    "table_for": "tables",
}

if TYPE_CHECKING:
    from .databases import AppDatabase, app_databases, get_app_database
    from .dburls import mask_url
    from .discovery import discover_all_app_databases, discover_app_database
    from .engines import (
        EngineDoesNotExist,
        aclose_all_engines,
        close_all_engines,
        get_async_engine,
        get_engine,
    )
    from .exceptions import AppDatabaseConfigError, CrossDatabaseError, UnsupportedFieldError
    from .fieldtypes import register_field_type
    from .repositories import AppRepository, AsyncAppRepository
    from .routers import AppDatabaseRouter
    from .sessions import (
        get_app_session,
        get_async_sessionmaker,
        get_session,
        get_sessionmaker,
        get_sync_app_session,
        get_sync_session,
    )
    from .tables import metadata_for, table_for


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
