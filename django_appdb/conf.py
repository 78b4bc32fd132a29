"""Settings for django-appdb, read at access time so ``override_settings`` works.

This module is the only reader of ``django.conf.settings`` in the package.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings


class Settings:
    """Typed, defaulted access to the ``APPDB_*`` settings."""

    @property
    def INSTALL_ROUTER(self) -> bool:
        """Whether ``AppDatabaseRouter`` is appended to the routers automatically."""
        return bool(getattr(settings, "APPDB_INSTALL_ROUTER", True))

    @property
    def SQLALCHEMY_ENGINE_OPTIONS(self) -> dict[str, Any]:
        """Keyword arguments passed to every SQLAlchemy engine."""
        return dict(getattr(settings, "APPDB_SQLALCHEMY_ENGINE_OPTIONS", {}) or {})

    @property
    def USE_TZ(self) -> bool:
        """Django's ``USE_TZ``: whether datetimes are timezone-aware."""
        return bool(settings.USE_TZ)

    @property
    def DATABASES(self) -> dict[str, dict[str, Any]]:
        """Django's ``DATABASES`` setting (the live dict, not a copy)."""
        return settings.DATABASES

    @property
    def DATABASE_ROUTERS(self) -> list[Any]:
        """Django's ``DATABASE_ROUTERS`` setting."""
        return list(settings.DATABASE_ROUTERS)


conf = Settings()
