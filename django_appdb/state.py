"""What this process merged: every app's database record, the routes, and the one label-to-alias rule.

Loaded once by ``configure()`` from ``AppConfig.ready()`` (and again when a
test overrides ``INSTALLED_APPS`` or ``DATABASES``); the router, the
SQLAlchemy bridge and the commands read it. Nothing here connects.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from django.apps import AppConfig
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Model

from django_appdb.conf import conf
from django_appdb.databases import AppDatabase, merge, plan
from django_appdb.exceptions import UnknownAppError

__all__ = [
    "app_databases",
    "configure",
    "databases_by_alias",
    "direct_settings",
    "get_app_database",
    "pooler_of",
    "resolve_alias",
    "selected_records",
    "state",
]


class _State:
    """The merged result, shared by the router and the rest of the package."""

    def __init__(self) -> None:
        self.records: dict[str, AppDatabase] = {}
        # Updated in place so routers created earlier see the new tables.
        self.routes: dict[str, str] = {}
        self.aliases: dict[str, str] = {}
        self.managed: set[str] = {DEFAULT_DB_ALIAS}
        # Labels on each alias other than default, for the router's allow_migrate.
        self.homes: dict[str, frozenset[str]] = {}
        # Model class -> alias (None for default), proxies following their
        # concrete model: the router's first, cheapest look-up.
        self.model_routes: dict[type[Model], str | None] = {}
        #: The aliases django_appdb added to ``DATABASES`` (the others were in settings).
        self.added: frozenset[str] = frozenset()
        #: Primary alias -> its read replicas' aliases; replica alias -> its primary.
        self.replicas: dict[str, tuple[str, ...]] = {}
        self.primaries: dict[str, str] = {}
        #: Alias -> its direct connection's settings (``direct_settings`` completes them).
        self.direct: dict[str, dict[str, Any]] = {}
        #: Alias -> the connection pooler it is declared behind.
        self.poolers: dict[str, str] = {}

    def load(
        self,
        records: Mapping[str, AppDatabase],
        models: Iterable[type[Model]] = (),
        replicas: Mapping[str, tuple[str, ...]] | None = None,
        direct: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        self.records = dict(records)
        self.direct.clear()
        self.direct.update(direct or {})
        self.replicas.clear()
        self.replicas.update(replicas or {})
        self.primaries.clear()
        self.primaries.update({replica: primary for primary, names in self.replicas.items() for replica in names})
        aliases = {label: record.alias for label, record in records.items()}
        self.aliases.clear()
        self.aliases.update(aliases)
        self.routes.clear()
        self.routes.update({label: alias for label, alias in aliases.items() if alias != DEFAULT_DB_ALIAS})
        self.managed.clear()
        self.managed.update({DEFAULT_DB_ALIAS, *aliases.values()})
        homes: dict[str, set[str]] = {}
        for label, alias in self.routes.items():
            homes.setdefault(alias, set()).add(label)
        self.homes.clear()
        self.homes.update({alias: frozenset(labels) for alias, labels in homes.items()})
        self.model_routes.clear()
        self.model_routes.update({model: self.route_of(model) for model in models})
        # Caches keyed by app label (engines, session factories) empty themselves.
        from django_appdb import receivers

        receivers.on_databases_loaded()

    def alias_of(self, model: type[Model]) -> str:
        """Return the alias ``model``'s rows live on, as the router decides (proxies follow their concrete model)."""
        return self.route_of(model) or DEFAULT_DB_ALIAS

    def route_of(self, model: type[Model]) -> str | None:
        """Return the alias a model's rows live on, None for ``default``.

        A proxy's rows live in its concrete model's table, so it follows that
        model's app rather than its own.
        """
        concrete = model._meta.concrete_model or model
        return self.routes.get(concrete._meta.app_label)


state = _State()


def pooler_of(alias: str) -> str | None:
    """Return the connection pooler ``alias`` is declared behind (``"pgbouncer-transaction"``...), or None.

    Declared by ``?appdb_pooler=`` in an app's URL, ``DATABASE_POOLER`` in
    its ``database.py``, or ``settings.APPDB_POOLERS`` for an alias of
    ``DATABASES``.
    """
    return state.poolers.get(alias)


def resolve_alias(name: str) -> str:
    """Return the database alias ``name`` stands for: an installed app's label, else an alias of ``DATABASES``.

    This is the one rule every function taking an app label follows
    (``get_engine``, the session helpers, the repositories, the test helpers):
    a label names its app's database, ``"default"`` or any other alias names
    itself, and anything else raises :class:`~django_appdb.exceptions.UnknownAppError`
    listing both, since falling back to the default database would let a
    misspelt label write there.
    """
    alias = state.aliases.get(name)
    if alias is not None:
        return alias
    from django.db import connections

    if name in connections.settings:
        return name
    raise UnknownAppError(name, sorted(state.aliases), sorted(connections.settings))


def configure(app_configs: Collection[AppConfig]) -> dict[str, AppDatabase]:
    """Plan every app's database, merge new aliases into ``DATABASES`` and load the routes."""
    result = plan(
        app_configs, conf.DATABASES, replicas=conf.REPLICAS, direct_urls=conf.DIRECT_URLS, poolers=conf.POOLERS
    )
    live = merge(result.new_databases)
    for alias, primary in result.mirrors.items():
        # An alias of settings.DATABASES named as a replica: its tests read the primary's test database.
        live[alias].setdefault("TEST", {})["MIRROR"] = primary
    from django_appdb.testing import guard

    guard.remember_real_databases(live)
    records = {
        label: AppDatabase(
            record.label,
            record.alias,
            record.source,
            record.source_kind,
            live[record.alias],
            record.declared_url,
            record.engine_options,
        )
        for label, record in result.records.items()
    }
    models = [model for config in app_configs for model in config.get_models(include_auto_created=True)]
    state.poolers = dict(result.poolers)
    state.load(records, models, result.replicas, result.direct)
    state.added = frozenset(result.new_databases)
    return records


def direct_settings(alias: str) -> dict[str, Any] | None:
    """Return the ``DATABASES`` entry of ``alias``'s direct connection, or None when it declares none.

    The direct URL (``<APP_LABEL>_DATABASE_DIRECT_URL``, ``DATABASE_DIRECT_URL``
    in ``database.py``, ``settings.APPDB_DIRECT_URLS``) reaches the alias's
    database without its connection pooler. The entry is complete (Django's
    defaults applied), a fresh copy, and names the database the alias names
    now: its test database during a test run. It holds the password.
    """
    declared = state.direct.get(alias)
    if declared is None:
        return None
    from django.db import connections
    from django.db.utils import ConnectionHandler

    settings_dict = {**declared, "OPTIONS": dict(declared.get("OPTIONS") or {})}
    settings_dict["TEST"] = dict(declared.get("TEST") or {})
    if alias in connections.settings:
        live = connections.settings[alias]
        settings_dict["NAME"] = live.get("NAME")
        settings_dict["TEST"] = dict(live.get("TEST") or settings_dict["TEST"])
    # Django's defaults, as for every DATABASES entry (it insists on a 'default' key).
    entries = {DEFAULT_DB_ALIAS: settings_dict}
    ConnectionHandler().configure_settings(entries)
    return entries[DEFAULT_DB_ALIAS]


def app_databases() -> dict[str, AppDatabase]:
    """Return the :class:`AppDatabase` record of every installed app, by label."""
    return dict(state.records)


def get_app_database(app_label: str) -> AppDatabase:
    """Return the :class:`AppDatabase` record for ``app_label``.

    Raise :class:`~django_appdb.exceptions.UnknownAppError` (a ``LookupError``)
    listing the installed labels if it is not installed.
    """
    try:
        return state.records[app_label]
    except KeyError:
        raise UnknownAppError(app_label, sorted(state.records)) from None


def selected_records(labels: Iterable[str] | None = None) -> list[AppDatabase]:
    """Return the records of the given apps (all when None or empty), in ``INSTALLED_APPS`` order.

    Raise ``LookupError`` naming the known labels for a label that is not installed.
    """
    records = app_databases()
    if not labels:
        return list(records.values())
    wanted = {get_app_database(label).label for label in labels}
    return [record for label, record in records.items() if label in wanted]


def databases_by_alias(labels: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Return ``{alias: [app labels]}`` for the given apps, or for every installed app.

    ``default`` comes first, then the other aliases in ``INSTALLED_APPS``
    order; the labels of each alias are sorted. Raise ``LookupError`` for a
    label that is not installed.
    """
    records = selected_records(labels)
    grouped: dict[str, list[str]] = {}
    for record in records:
        grouped.setdefault(record.alias, []).append(record.label)
    ordered = sorted(grouped, key=lambda alias: alias != DEFAULT_DB_ALIAS)
    return {alias: sorted(grouped[alias]) for alias in ordered}
