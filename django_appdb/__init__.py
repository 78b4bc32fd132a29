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
    "app_databases": "databases",
    "discover_all_app_databases": "discovery",
    "discover_app_database": "discovery",
    "get_app_database": "databases",
    "mask_url": "dburls",
    "AppDatabaseRouter": "routers",
    # Exceptions
    "AppDatabaseConfigError": "exceptions",
    "CrossDatabaseError": "exceptions",
    "EngineDoesNotExist": "engines",
    "UnsupportedFieldError": "exceptions",
    # SQLAlchemy engines and sessions
    "aclose_all_engines": "engines",
    "close_all_engines": "engines",
    "get_app_session": "sessions",
    "get_async_engine": "engines",
    "get_async_sessionmaker": "sessions",
    "get_engine": "engines",
    "get_session": "sessions",
    "get_sessionmaker": "sessions",
    "get_sync_app_session": "sessions",
    "get_sync_session": "sessions",
    # SQLAlchemy tables and repositories
    "AppRepository": "repositories",
    "AsyncAppRepository": "repositories",
    "metadata_for": "tables",
    "register_field_type": "fieldtypes",
    "table_for": "tables",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .databases import (
        AppDatabase as AppDatabase,
        app_databases as app_databases,
        get_app_database as get_app_database,
    )
    from .dburls import mask_url as mask_url
    from .discovery import (
        discover_all_app_databases as discover_all_app_databases,
        discover_app_database as discover_app_database,
    )
    from .engines import (
        EngineDoesNotExist as EngineDoesNotExist,
        aclose_all_engines as aclose_all_engines,
        close_all_engines as close_all_engines,
        get_async_engine as get_async_engine,
        get_engine as get_engine,
    )
    from .exceptions import (
        AppDatabaseConfigError as AppDatabaseConfigError,
        CrossDatabaseError as CrossDatabaseError,
        UnsupportedFieldError as UnsupportedFieldError,
    )
    from .fieldtypes import register_field_type as register_field_type
    from .repositories import AppRepository as AppRepository, AsyncAppRepository as AsyncAppRepository
    from .routers import AppDatabaseRouter as AppDatabaseRouter
    from .sessions import (
        get_app_session as get_app_session,
        get_async_sessionmaker as get_async_sessionmaker,
        get_session as get_session,
        get_sessionmaker as get_sessionmaker,
        get_sync_app_session as get_sync_app_session,
        get_sync_session as get_sync_session,
    )
    from .tables import metadata_for as metadata_for, table_for as table_for


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
