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
    "UnsupportedFieldError",
    "app_databases",
    "discover_all_app_databases",
    "discover_app_database",
    "get_app_database",
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
    "AppRepository": "repositories",
    "AsyncAppRepository": "repositories",
    "CrossDatabaseError": "exceptions",
    "UnsupportedFieldError": "exceptions",
    "app_databases": "databases",
    "discover_all_app_databases": "discovery",
    "discover_app_database": "discovery",
    "get_app_database": "databases",
    "mask_url": "dburls",
    "metadata_for": "tables",
    "register_field_type": "fieldtypes",
    "table_for": "tables",
}

if TYPE_CHECKING:
    from .databases import AppDatabase, app_databases, get_app_database
    from .dburls import mask_url
    from .discovery import discover_all_app_databases, discover_app_database
    from .exceptions import AppDatabaseConfigError, CrossDatabaseError, UnsupportedFieldError
    from .fieldtypes import register_field_type
    from .repositories import AppRepository, AsyncAppRepository
    from .routers import AppDatabaseRouter
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
