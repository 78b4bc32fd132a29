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
    "APPDB_DIRECT_URLS": {},
    "APPDB_INSTALL_ROUTER": True,
    "APPDB_POOLERS": {},
    "APPDB_REPLICAS": {},
    "APPDB_REPLICA_LAG_CHECK_SECONDS": 5.0,
    "APPDB_REPLICA_MAX_LAG": None,
    "APPDB_REPLICA_PIN_SECONDS": 5.0,
    "APPDB_REPLICA_RETRY_SECONDS": 30.0,
    "APPDB_SQLALCHEMY_ENGINE_OPTIONS": {},
    "APPDB_WIDEN_TEST_DATABASES": True,
}
#: The settings that take a number of seconds (``django_appdb.E008``); None is allowed where the default is None.
SECONDS_SETTINGS = (
    "APPDB_REPLICA_LAG_CHECK_SECONDS",
    "APPDB_REPLICA_MAX_LAG",
    "APPDB_REPLICA_PIN_SECONDS",
    "APPDB_REPLICA_RETRY_SECONDS",
)
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
    def REPLICAS(self) -> Any:
        """Read replicas of aliases in ``DATABASES``: ``{"default": ["postgresql://...", "other_alias"]}``.

        Returned as written; the planner checks it and names the problem.
        """
        return raw("APPDB_REPLICAS")

    @property
    def DIRECT_URLS(self) -> Any:
        """Direct URLs of aliases in ``DATABASES``, for migrations: ``{"default": "postgresql://..."}``.

        Returned as written; the planner checks it and names the problem.
        """
        return raw("APPDB_DIRECT_URLS")

    @property
    def POOLERS(self) -> Any:
        """The connection pooler each alias of ``DATABASES`` is behind: ``{"default": "pgbouncer-transaction"}``.

        Returned as written; the planner checks it and names the problem.
        """
        return raw("APPDB_POOLERS")

    def _seconds(self, name: str) -> float | None:
        value = raw(name)
        if value is None and DEFAULTS[name] is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            # Reported by django_appdb.E008; the default meanwhile.
            default: float | None = DEFAULTS[name]
            return default
        return float(value)

    @property
    def REPLICA_PIN_SECONDS(self) -> float:
        """How long after a write a client's reads of that database stay on its primary (the pinning cookie)."""
        return self._seconds("APPDB_REPLICA_PIN_SECONDS") or 0.0

    @property
    def REPLICA_RETRY_SECONDS(self) -> float:
        """How long a replica that could not be reached is skipped before it is tried again."""
        return self._seconds("APPDB_REPLICA_RETRY_SECONDS") or 0.0

    @property
    def REPLICA_MAX_LAG(self) -> float | None:
        """The replay lag, in seconds, above which a replica is skipped; None for no limit."""
        return self._seconds("APPDB_REPLICA_MAX_LAG")

    @property
    def REPLICA_LAG_CHECK_SECONDS(self) -> float:
        """How often, at most, each replica's lag is measured (per process)."""
        return self._seconds("APPDB_REPLICA_LAG_CHECK_SECONDS") or 0.0

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
