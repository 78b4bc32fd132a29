"""Choose an alias for every app's database and merge them into ``DATABASES``.

Rules, in order, for an app that declares its own database:

* ``DATABASE_ALIAS`` in ``database.py`` names the alias: an alias already in
  ``settings.DATABASES`` is reused (its database must match the URL, if one is
  given); a new name becomes a new alias that other apps may share.
* a URL naming the same database as ``DATABASES["default"]`` uses ``default``;
* a URL naming the same database as another alias in ``settings.DATABASES``
  reuses that alias;
* apps with the same URL share one alias, named after the first of them;
* any other app gets its label as its alias.

Apps that declare nothing use ``default``. Nothing here opens a connection.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.apps import AppConfig
from django.db import DEFAULT_DB_ALIAS
from django.db.utils import ConnectionHandler

from django_appdb.conf import conf
from django_appdb.dburls import (
    identity,
    mask_settings,
    mask_url,
    settings_to_url,
)
from django_appdb.directplan import DirectPlanning
from django_appdb.discovery import CONNECTION_SETTINGS, Declaration, SourceKind, check_pooler, declare
from django_appdb.exceptions import AppDatabaseConfigError
from django_appdb.replicaplan import ReplicaPlanning
from django_appdb.urlsettings import pooled_settings_for


@dataclass(frozen=True, eq=False)
class AppDatabase:
    """Where one installed app's data lives.

    ``source`` is the environment variable's name, the ``database.py`` module
    path, or ``"default"``; ``source_kind`` is ``"env"``, ``"module"`` or
    ``"default"``. ``settings`` is the live ``DATABASES[alias]`` entry.
    """

    label: str
    alias: str
    source: str
    source_kind: SourceKind
    settings: Mapping[str, Any] = field(repr=False)
    declared_url: str | None = field(default=None, repr=False)
    engine_options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def url(self) -> str:
        """Return the database URL, password included."""
        return self.declared_url if self.declared_url is not None else settings_to_url(self.settings)

    @property
    def masked_url(self) -> str:
        """Return the database URL with the password masked."""
        return mask_url(self.url)

    @property
    def engine(self) -> str:
        """Return the Django ``ENGINE`` of this database."""
        return str(self.settings.get("ENGINE", ""))

    def __repr__(self) -> str:
        return f"<AppDatabase {self.label!r} alias={self.alias!r} source={self.source!r} url={self.masked_url!r}>"


@dataclass
class Plan:
    """The aliases chosen for every app, the ``DATABASES`` entries to add, and each primary's replicas."""

    records: dict[str, AppDatabase]
    new_databases: dict[str, dict[str, Any]]
    #: Primary alias -> its replicas' aliases, in declaration order.
    replicas: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Aliases already in ``settings.DATABASES`` that become replicas: alias -> primary.
    mirrors: dict[str, str] = field(default_factory=dict)
    #: Alias -> the settings of its direct connection (never added to ``DATABASES``).
    direct: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Alias -> the connection pooler it is declared behind (aliases behind none are absent).
    poolers: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        masked = {alias: mask_settings(settings_dict) for alias, settings_dict in self.new_databases.items()}
        return f"<Plan records={list(self.records.values())!r} new_databases={masked!r}>"


#: What ``database.py`` may declare besides where the database is.
_CONNECTION_OPTIONS = ("DATABASE_OPTIONS", "DATABASE_TEST", "DATABASE_POOL", *CONNECTION_SETTINGS)
#: The ``DATABASES`` keys those set, by the name ``database.py`` gives them.
_DECLARED_KEYS = {"DATABASE_TEST": "TEST", **{key: key for key in CONNECTION_SETTINGS}}


def _comparable(settings_dict: Mapping[str, Any]) -> tuple[Any, ...]:
    keys = ("PASSWORD", "OPTIONS", "TEST", *CONNECTION_SETTINGS)
    return (identity(settings_dict), *(repr(settings_dict.get(key)) for key in keys))


class _Planner(ReplicaPlanning, DirectPlanning):
    """Assign aliases app by app, remembering the databases already seen."""

    def __init__(self, databases: Mapping[str, Mapping[str, Any]], poolers: Mapping[str, str] | None = None) -> None:
        if DEFAULT_DB_ALIAS not in databases:
            raise AppDatabaseConfigError(
                "*", "settings.DATABASES", "there is no 'default' database.", "Define DATABASES['default']."
            )
        self.databases = databases
        self.by_identity: dict[tuple[Any, ...], str] = {}
        for alias, settings_dict in databases.items():
            if not (settings_dict.get("TEST") or {}).get("MIRROR"):
                self.by_identity.setdefault(identity(settings_dict), alias)
        self.by_identity[identity(databases[DEFAULT_DB_ALIAS])] = DEFAULT_DB_ALIAS
        self.new: dict[str, dict[str, Any]] = {}
        self.owners: dict[str, str] = {}
        self.replicas: dict[str, tuple[str, ...]] = {}
        self.replica_owners: dict[str, str] = {}
        self.mirrors: dict[str, str] = {}
        self.direct: dict[str, dict[str, Any]] = {}
        self.direct_owners: dict[str, str] = {}
        self.poolers: dict[str, str] = dict(poolers or {})

    def _same_pooler(self, declaration: Declaration, alias: str, pooler: str | None) -> None:
        """Refuse an app declaring a pooler its alias is not declared behind (one connection, one pooler)."""
        current = self.poolers.get(alias)
        if pooler is None or pooler == current:
            return
        if alias in self.databases:
            fix = f"Declare it for the alias instead: APPDB_POOLERS = {{{alias!r}: {pooler!r}}}."
        else:
            fix = f"Give every app on alias {alias!r} the same pooler, or give this app a DATABASE_ALIAS of its own."
        raise AppDatabaseConfigError(
            declaration.label,
            declaration.where,
            f"declares pooler {pooler!r}, but its database alias {alias!r} is declared behind {current!r}.",
            fix,
        )

    def lookup(self, alias: str) -> Mapping[str, Any] | None:
        return self.databases.get(alias) or self.new.get(alias)

    def record(self, declaration: Declaration, alias: str, url: str | None) -> AppDatabase:
        settings_dict = self.lookup(alias)
        assert settings_dict is not None
        return AppDatabase(
            declaration.label,
            alias,
            declaration.source,
            declaration.source_kind,
            settings_dict,
            url,
            dict(declaration.options.get("SQLALCHEMY_ENGINE_OPTIONS", {})),
        )

    def assign(self, declaration: Declaration) -> AppDatabase:
        if declaration.source_kind == "default":
            self._same_pooler(declaration, DEFAULT_DB_ALIAS, declaration.pooler)
            if "DATABASE_POOL" in declaration.options:
                raise AppDatabaseConfigError(
                    declaration.label,
                    f"module {declaration.module_path} (DATABASE_POOL)",
                    "declares a connection pool, but the app uses the default database, "
                    "whose settings it cannot change.",
                    "Set OPTIONS['pool'] in settings.DATABASES['default'], or give the app a DATABASE_URL.",
                )
            return self.record(declaration, DEFAULT_DB_ALIAS, None)
        if declaration.url is None:
            named = self._named_alias(declaration)
            self._same_pooler(declaration, named, declaration.pooler)
            return self.record(declaration, named, None)
        settings_dict, pooler = pooled_settings_for(declaration)
        if "ATOMIC_REQUESTS" not in declaration.options:
            # Moving an app never changes its requests' transactions: as
            # atomic as on the default database, unless the app says otherwise.
            settings_dict["ATOMIC_REQUESTS"] = bool(self.databases[DEFAULT_DB_ALIAS].get("ATOMIC_REQUESTS", False))
        alias = self._alias_for_url(declaration, settings_dict)
        if alias in self.databases:
            self._same_pooler(declaration, alias, pooler)
            self._refuse_dropped_settings(declaration, alias, settings_dict)
        else:
            if alias in self.new:
                self._same_pooler(declaration, alias, pooler)
            elif pooler is not None:
                self.poolers[alias] = pooler
            self._add(declaration, alias, settings_dict)
        return self.record(declaration, alias, declaration.url)

    def _refuse_dropped_settings(self, declaration: Declaration, alias: str, settings_dict: Mapping[str, Any]) -> None:
        """Refuse reusing a ``settings.DATABASES`` alias whose settings differ from what the app declared.

        The URL names the same database as the alias, so the app shares its
        connection, and that connection has one set of settings: a declared
        option, password or ``database.py`` setting the alias lacks would be
        silently dropped.
        """
        existing = self.databases[alias]
        existing_options = existing.get("OPTIONS") or {}
        differing = [
            f"OPTIONS[{key!r}]"
            for key, value in (settings_dict.get("OPTIONS") or {}).items()
            if (key not in existing_options or existing_options[key] != value)
            # What a pooler adds: None is also what Django's psycopg backend uses when it is absent.
            and not (key == "prepare_threshold" and value is None and key not in existing_options)
        ]
        differing += [
            key
            for name, key in _DECLARED_KEYS.items()
            if name in declaration.options and existing.get(key) != settings_dict.get(key)
        ]
        if settings_dict.get("PASSWORD") and settings_dict.get("PASSWORD") != existing.get("PASSWORD"):
            differing.append("PASSWORD")
        if differing:
            raise AppDatabaseConfigError(
                declaration.label,
                declaration.where,
                f"names the same database as settings.DATABASES[{alias!r}] but declares {', '.join(differing)} "
                f"differently, so it cannot share that alias's connection without dropping them.",
                f"Declare the same values as DATABASES[{alias!r}] (or none), or set DATABASE_ALIAS in the app's "
                "database.py to give it a connection of its own.",
            )

    def _named_alias(self, declaration: Declaration) -> str:
        # DATABASE_ALIAS without DATABASE_URL: reuse an alias that exists.
        alias = declaration.alias or DEFAULT_DB_ALIAS
        if self.lookup(alias) is None:
            known = sorted({*self.databases, *self.new})
            raise AppDatabaseConfigError(
                declaration.label,
                declaration.where,
                f"DATABASE_ALIAS {alias!r} is not in settings.DATABASES.",
                f"Use one of: {', '.join(known)}, or also set DATABASE_URL to create it.",
            )
        extra = [key for key in _CONNECTION_OPTIONS if key in declaration.options]
        if extra and alias in self.databases:
            raise AppDatabaseConfigError(
                declaration.label,
                declaration.where,
                f"{', '.join(extra)} cannot change the existing alias {alias!r}.",
                f"Set them in settings.DATABASES[{alias!r}] instead.",
            )
        return alias

    def _alias_for_url(self, declaration: Declaration, settings_dict: Mapping[str, Any]) -> str:
        key = identity(settings_dict)
        if declaration.alias is None:
            alias = self.by_identity.get(key, declaration.label)
            existing = self.lookup(alias)
            if existing is not None and identity(existing) != key:
                raise AppDatabaseConfigError(
                    declaration.label,
                    declaration.where,
                    f"settings.DATABASES already has an alias {alias!r} for another database.",
                    f"Point the URL at DATABASES[{alias!r}], or set DATABASE_ALIAS in the app's database.py.",
                )
            return alias
        alias = declaration.alias
        existing = self.lookup(alias)
        if existing is not None and identity(existing) != key:
            raise AppDatabaseConfigError(
                declaration.label,
                declaration.where,
                f"DATABASE_ALIAS {alias!r} already names another database ({mask_url(settings_to_url(existing))}).",
                "Pick another alias, or point the URL at the same database.",
            )
        return alias

    def _add(self, declaration: Declaration, alias: str, settings_dict: dict[str, Any]) -> None:
        if alias in self.new:
            if _comparable(self.new[alias]) != _comparable(settings_dict):
                raise AppDatabaseConfigError(
                    declaration.label,
                    declaration.where,
                    f"shares database alias {alias!r} with app '{self.owners[alias]}' but with different "
                    "credentials or connection options.",
                    "Give both apps the same settings, or give one a DATABASE_ALIAS of its own.",
                )
            return
        self.new[alias] = settings_dict
        self.owners[alias] = declaration.label
        self.by_identity.setdefault(identity(settings_dict), alias)


def plan(
    app_configs: Iterable[AppConfig],
    databases: Mapping[str, Mapping[str, Any]],
    environ: Mapping[str, str] | None = None,
    replicas: Mapping[Any, Any] | None = None,
    direct_urls: Any = None,
    poolers: Any = None,
) -> Plan:
    """Choose an alias for every app, and add every declared replica and direct URL.

    ``replicas`` is ``settings.APPDB_REPLICAS``: replicas of aliases in ``databases``;
    ``direct_urls`` is ``settings.APPDB_DIRECT_URLS``; ``poolers`` is ``settings.APPDB_POOLERS``: the
    pooler each of those aliases is behind. Raise ``AppDatabaseConfigError`` on bad input.
    """
    planner = _Planner(databases, setting_poolers(poolers, databases))
    declarations = [declare(config, environ) for config in app_configs]
    records = {declaration.label: planner.assign(declaration) for declaration in declarations}
    for declaration in declarations:
        if declaration.replica_urls:
            planner.add_app_replicas(declaration, records[declaration.label].alias)
    if replicas is not None and not isinstance(replicas, Mapping):
        raise AppDatabaseConfigError(
            "*",
            "settings.APPDB_REPLICAS",
            f"must be a dict of alias -> replica URLs, got {type(replicas).__name__}.",
            "Write APPDB_REPLICAS = {'default': ['postgresql://...']}.",
        )
    for primary, entries in (replicas or {}).items():
        planner.add_setting_replicas(primary, entries)
    if direct_urls is not None:
        planner.add_setting_directs(direct_urls)
    for declaration in declarations:
        if declaration.direct_url:
            planner.add_app_direct(declaration, records[declaration.label].alias)
    return Plan(records, planner.new, planner.replicas, planner.mirrors, direct=planner.direct, poolers=planner.poolers)


def setting_poolers(poolers: Any, databases: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Return ``settings.APPDB_POOLERS`` checked: aliases of ``databases`` -> a known pooler (None entries dropped).

    Raise ``AppDatabaseConfigError`` naming the setting and the valid values.
    """
    where = "settings.APPDB_POOLERS"
    if poolers is None:
        return {}
    if not isinstance(poolers, Mapping):
        raise AppDatabaseConfigError(
            "*",
            where,
            f"must be a dict of alias -> pooler, got {type(poolers).__name__}.",
            "Write APPDB_POOLERS = {'default': 'pgbouncer-transaction'}.",
        )
    checked: dict[str, str] = {}
    for alias, pooler in poolers.items():
        if alias not in databases:
            raise AppDatabaseConfigError(
                "*",
                f"{where}[{alias!r}]",
                f"{alias!r} is not an alias of settings.DATABASES.",
                f"Use one of: {', '.join(sorted(map(str, databases)))}; an app's own database declares its pooler "
                "in its URL (?appdb_pooler=) or database.py (DATABASE_POOLER).",
            )
        value = check_pooler("*", f"{where}[{alias!r}]", pooler)
        if value is not None:
            engine = str(databases[alias].get("ENGINE") or "")
            if "postgresql" not in engine:
                raise AppDatabaseConfigError(
                    "*",
                    f"{where}[{alias!r}]",
                    f"pooler {value!r} is a PostgreSQL pooler, but DATABASES[{alias!r}] uses ENGINE {engine!r}.",
                    f"Remove {alias!r} from APPDB_POOLERS.",
                )
            checked[alias] = value
    return checked


def merge(
    new_databases: Mapping[str, Mapping[str, Any]],
    handler: ConnectionHandler | None = None,
    declared: dict[str, dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Add ``new_databases`` to ``django.db.connections`` and ``settings.DATABASES``.

    Works whether or not the connection handler has already read its settings,
    and applies Django's connection defaults (``TEST``, ``OPTIONS``, ...) to the
    new entries. Return the handler's live settings. Opens no connection.
    """
    if handler is None:
        from django.db import connections

        handler = connections
    if declared is None:
        declared = conf.DATABASES
    # ``handler.settings`` is a cached_property: once read, entries added to
    # settings.DATABASES alone would never be seen, so write to both.
    live = handler.settings
    for alias, settings_dict in new_databases.items():
        live.setdefault(alias, dict(settings_dict))
        if declared is not live:
            declared.setdefault(alias, copy.deepcopy(dict(settings_dict)))
    handler.configure_settings(live)
    if declared is not live:
        handler.configure_settings(declared)
    return live
