"""The database router that sends each app's models to its own database."""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Model

from .databases import state


class AppDatabaseRouter:
    """Route every app's reads, writes, relations and migrations to its alias.

    Each decision is a dictionary look-up in tables computed once, when
    ``django_appdb`` is ready. Apps on ``default`` get ``None`` from
    ``db_for_read``/``db_for_write`` so Django's own fallback (the instance's
    database, then ``default``) still applies to them.
    """

    def __init__(self) -> None:
        # The same dict and set objects that ``state`` updates in place.
        self._routes = state.routes
        self._aliases = state.aliases
        self._homes = state.homes

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        """Return the alias of the model's app, or None for apps on ``default``."""
        return self._routes.get(model._meta.app_label)

    def db_for_write(self, model: type[Model], **hints: Any) -> str | None:
        """Return the alias of the model's app, or None for apps on ``default``."""
        return self._routes.get(model._meta.app_label)

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool:
        """Allow a relation only between two objects on the same database."""
        aliases = self._aliases
        db1 = obj1._state.db or aliases.get(obj1._meta.app_label, DEFAULT_DB_ALIAS)
        db2 = obj2._state.db or aliases.get(obj2._meta.app_label, DEFAULT_DB_ALIAS)
        return db1 == db2

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        """Allow an app's migrations only on its own alias.

        Aliases that no app uses (a replica declared in settings, say) are left
        to the other routers.
        """
        # Membership tests only, no method call: migrate asks this for every
        # model on every database. ``homes`` holds the aliases other than
        # default; only an alias no app uses (a replica) takes the KeyError.
        if db == DEFAULT_DB_ALIAS:
            return app_label not in self._routes
        try:
            return app_label in self._homes[db]
        except KeyError:
            return None


def _has_app_router(routers: list[Any]) -> bool:
    return any(isinstance(router, AppDatabaseRouter) for router in routers)


def install() -> None:
    """Append :class:`AppDatabaseRouter` to ``django.db.router`` unless already there.

    Works even if Django has already built its router list. A router listed in
    ``DATABASE_ROUTERS`` keeps its position. Does nothing when
    ``APPDB_INSTALL_ROUTER`` is False.
    """
    from django.db import router

    from .conf import conf

    routers = router.routers
    if not conf.INSTALL_ROUTER or _has_app_router(routers):
        return
    router.routers = [*routers, AppDatabaseRouter()]


RECEIVER_UID = "django_appdb.routers"


def on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    """Put the router back after ``DATABASE_ROUTERS`` or ``APPDB_INSTALL_ROUTER`` changes.

    Django's test signals reset the router list on the same signal; when they
    were registered after this receiver (``django.test`` imported after
    ``django.setup()``), this receiver moves itself behind them so the next
    change is handled in the right order.
    """
    if setting not in ("DATABASE_ROUTERS", "APPDB_INSTALL_ROUTER"):
        return
    reconnect_last()
    from django.db import router
    from django.db.utils import ConnectionRouter

    from .conf import conf

    routers = ConnectionRouter().routers
    if conf.INSTALL_ROUTER and not _has_app_router(routers):
        routers.append(AppDatabaseRouter())
    router.routers = routers


def reconnect_last() -> None:
    """Move this module's ``setting_changed`` receiver to the end of the list."""
    from django.core.signals import setting_changed

    if setting_changed.disconnect(dispatch_uid=RECEIVER_UID):
        setting_changed.connect(on_setting_changed, dispatch_uid=RECEIVER_UID)
