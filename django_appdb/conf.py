"""Settings for django-appdb, read at access time so ``override_settings`` works.

This module is the only reader of ``django.conf.settings`` in the package.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from django_appdb.exceptions import AppDatabaseConfigError

#: Every ``APPDB_*`` setting, with its default. The system checks
#: ``django_appdb.E004``/``E005`` check each one's type (:func:`raw`).
DEFAULTS: dict[str, Any] = {
    "APPDB_INSTALL_ROUTER": True,
    "APPDB_SQLALCHEMY_ENGINE_OPTIONS": {},
    "APPDB_WIDEN_TEST_DATABASES": True,
}
#: The settings that take True or False (``django_appdb.E004``).
BOOLEAN_SETTINGS = ("APPDB_INSTALL_ROUTER", "APPDB_WIDEN_TEST_DATABASES")


def raw(name: str) -> Any:
    """Return the ``APPDB_*`` setting ``name`` as the project wrote it, or its default."""
    return getattr(settings, name, DEFAULTS[name])


class Settings:
    """Typed, defaulted access to the ``APPDB_*`` settings."""

    @property
    def INSTALL_ROUTER(self) -> bool:
        """Whether ``AppDatabaseRouter`` is appended to the routers automatically.

        Only ``False`` turns it off: a value of another type (``"False"``) is
        reported by ``django_appdb.E004``, and routing stays on meanwhile.
        """
        return raw("APPDB_INSTALL_ROUTER") is not False

    @property
    def SQLALCHEMY_ENGINE_OPTIONS(self) -> dict[str, Any]:
        """Keyword arguments passed to every SQLAlchemy engine.

        Raise :class:`~django_appdb.exceptions.AppDatabaseConfigError` for a
        value that is not a dict, rather than building engines without it.
        """
        value = raw("APPDB_SQLALCHEMY_ENGINE_OPTIONS")
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise AppDatabaseConfigError(
                "*",
                "settings.APPDB_SQLALCHEMY_ENGINE_OPTIONS",
                f"must be a dict of create_engine() keyword arguments, got {type(value).__name__}.",
            )
        return dict(value)

    @property
    def WIDEN_TEST_DATABASES(self) -> bool:
        """Whether a test that declares no databases may also use every app database.

        Django's test cases, and pytest-django's ``django_db`` mark without
        ``databases``, allow ``{"default"}``; with this on (the default) they
        allow the app databases too, and their test databases are created.
        Only ``False`` restores Django's behaviour (``django_appdb.E004``
        reports other types).
        """
        return raw("APPDB_WIDEN_TEST_DATABASES") is not False

    @property
    def USE_TZ(self) -> bool:
        """Django's ``USE_TZ``: whether datetimes are timezone-aware."""
        return bool(settings.USE_TZ)

    @property
    def DATABASES(self) -> dict[str, dict[str, Any]]:
        """Django's ``DATABASES`` setting (the live dict, not a copy)."""
        databases: dict[str, dict[str, Any]] = settings.DATABASES
        return databases

    @property
    def DATABASE_ROUTERS(self) -> list[Any]:
        """Django's ``DATABASE_ROUTERS`` setting."""
        return list(settings.DATABASE_ROUTERS)


conf = Settings()
