"""The database router that sends each app's models to its own database."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Model

from django_appdb import replicas
from django_appdb.state import state


class AppDatabaseRouter:
    """Route every app's reads, writes, relations and migrations to its alias.

    Each decision is a dictionary look-up in tables computed once, when
    ``django_appdb`` is ready. A proxy model goes where its concrete model's
    table is. Apps on ``default`` get ``None`` from
    ``db_for_read``/``db_for_write`` so Django's own fallback (the instance's
    database, then ``default``) still applies to them.

    ``db_for_read``/``db_for_write`` take what Django's router API takes: a
    model class, or an instance of one, saved or not (django-silk passes an
    unsaved instance, which cannot be hashed). They never raise: anything
    that is not a model gets ``None``.
    """

    def __init__(self) -> None:
        # The same dict and set objects that ``state`` updates in place.
        self._routes = state.routes
        self._aliases = state.aliases
        self._homes = state.homes
        # Looked up with whatever Django passes (a model or an instance).
        self._models: Mapping[Any, str | None] = state.model_routes
        self._route_of = state.route_of
        # Primary -> its replicas, and replica -> its primary: empty (and so
        # false) in a project without replicas, which pays one test per call.
        self._replicas = state.replicas
        self._primaries = state.primaries

    def db_for_read(self, model: type[Model] | Model, **hints: Any) -> str | None:
        """Return the alias of the model's app (one of its replicas, if it has any), or None for ``default``."""
        try:
            alias = self._models[model]
        except (KeyError, TypeError):
            alias = self._slow_route(model)
        if self._replicas:
            primary = alias or DEFAULT_DB_ALIAS
            if primary in self._replicas:
                chosen = replicas.read_alias(primary)
                if alias or chosen != DEFAULT_DB_ALIAS:
                    return chosen
                # The primary of an app on default stays None, as without
                # replicas, so Django's fallback to the instance's database
                # applies, except from an instance read on a replica of
                # default: that fallback would read the replica when pinned.
                return DEFAULT_DB_ALIAS if self._on_replica_of_default(hints) else None
        return alias

    def db_for_write(self, model: type[Model] | Model, **hints: Any) -> str | None:
        """Return the alias of the model's app, or None for apps on ``default``; pin it if it has replicas."""
        try:
            alias = self._models[model]
        except (KeyError, TypeError):
            alias = self._slow_route(model)
        if self._replicas:
            primary = alias or DEFAULT_DB_ALIAS
            if primary in self._replicas:
                replicas.pin(primary)
                if alias is None and self._on_replica_of_default(hints):
                    # Django would save to the instance's database: the replica.
                    return DEFAULT_DB_ALIAS
        return alias

    def _on_replica_of_default(self, hints: dict[str, Any]) -> bool:
        instance = hints.get("instance")
        return instance is not None and self._primaries.get(instance._state.db) == DEFAULT_DB_ALIAS

    def _slow_route(self, model: type[Model] | Model) -> str | None:
        # Models made after start-up (migration state, isolate_apps), and
        # instances: an unsaved one raises TypeError when hashed, a saved one
        # is simply not a key. Both have _meta, as their class does.
        try:
            return self._route_of(model)  # type: ignore[arg-type]
        except AttributeError:
            return None

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool:
        """Allow a relation only between two objects on the same database (a primary and its replicas are one)."""
        db1 = obj1._state.db
        db2 = obj2._state.db
        if db1 is None or db2 is None:
            # Unsaved: where the model's app would save it (rare; Django assigns a database first).
            aliases = self._aliases
            db1 = db1 or aliases.get(_concrete_label(obj1), DEFAULT_DB_ALIAS)
            db2 = db2 or aliases.get(_concrete_label(obj2), DEFAULT_DB_ALIAS)
        if db1 == db2:
            return True
        primaries = self._primaries
        return bool(primaries) and primaries.get(db1, db1) == primaries.get(db2, db2)

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        """Allow an app's migrations only on its own alias, and none on a read replica.

        Other aliases that no app uses are left to the other routers.
        """
        # Membership tests only, no method call: migrate asks this for every
        # model on every database. ``homes`` holds the aliases other than
        # default; only an alias no app uses (a replica, say) takes the KeyError.
        if db == DEFAULT_DB_ALIAS:
            return app_label not in self._routes
        try:
            return app_label in self._homes[db]
        except KeyError:
            return False if db in self._primaries else None


def _concrete_label(obj: Model) -> str:
    """Return the app label of the model whose table holds ``obj``'s row (a proxy's concrete model)."""
    return (obj._meta.concrete_model or type(obj))._meta.app_label


def _has_app_router(routers: list[Any]) -> bool:
    return any(isinstance(router, AppDatabaseRouter) for router in routers)


def _patch_connection_router() -> None:
    # Django rebuilds its router list from settings whenever DATABASE_ROUTERS
    # changes (override_settings), through ``ConnectionRouter().routers``.
    # Wrapping that one cached_property keeps AppDatabaseRouter in every list
    # built from settings, whatever order signal receivers run in, and costs
    # nothing per routing call: the result is still cached on the instance.
    from django.db.utils import ConnectionRouter
    from django.utils.functional import cached_property

    current = ConnectionRouter.__dict__["routers"]
    if getattr(current, "appdb_wrapped", False):
        return
    build = current.func

    def routers(self: ConnectionRouter) -> list[Any]:
        # Django's own attribute: None when the routers come from settings.
        from_settings = getattr(self, "_routers", None) is None
        result: list[Any] = build(self)
        if from_settings and _should_install() and not _has_app_router(result):
            result = [*result, AppDatabaseRouter()]
        return result

    wrapped = cached_property(routers)
    wrapped.__set_name__(ConnectionRouter, "routers")
    wrapped.appdb_wrapped = True  # type: ignore[attr-defined]
    ConnectionRouter.routers = wrapped  # type: ignore[method-assign,assignment]


def _should_install() -> bool:
    from django_appdb.conf import conf

    return conf.INSTALL_ROUTER


def install() -> None:
    """Make sure ``django.db.router`` uses :class:`AppDatabaseRouter`.

    It is appended to the routers built from ``DATABASE_ROUTERS``, now and
    whenever Django rebuilds that list, even if Django had already built it.
    A router listed in ``DATABASE_ROUTERS`` keeps its position. Does nothing
    when ``APPDB_INSTALL_ROUTER`` is False.
    """
    from django.db import router

    _patch_connection_router()
    routers = router.__dict__.get("routers")
    if routers is not None and _should_install() and not _has_app_router(routers):
        router.routers = [*routers, AppDatabaseRouter()]


def reinstall() -> None:
    """Rebuild Django's router list (``APPDB_INSTALL_ROUTER`` changed)."""
    from django.db import router
    from django.db.utils import ConnectionRouter

    router.routers = ConnectionRouter().routers
