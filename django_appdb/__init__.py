"""Give every installed Django app its own database, with zero glue code."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AppDatabase",
    "AppDatabaseConfigError",
    "AppDatabaseRouter",
    "app_databases",
    "discover_all_app_databases",
    "discover_app_database",
    "get_app_database",
    "mask_url",
]

# Imported on first use so that listing django_appdb in INSTALLED_APPS costs
# nothing before Django has configured its settings.
_EXPORTS = {
    "AppDatabase": "databases",
    "AppDatabaseConfigError": "exceptions",
    "AppDatabaseRouter": "routers",
    "app_databases": "databases",
    "discover_all_app_databases": "discovery",
    "discover_app_database": "discovery",
    "get_app_database": "databases",
    "mask_url": "dburls",
}

if TYPE_CHECKING:
    from .databases import AppDatabase, app_databases, get_app_database
    from .dburls import mask_url
    from .discovery import discover_all_app_databases, discover_app_database
    from .exceptions import AppDatabaseConfigError
    from .routers import AppDatabaseRouter


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
