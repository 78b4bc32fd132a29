"""Read replicas in the plan: each one's alias, its settings (read-only, a test mirror), and the rules they follow.

Mixed into the planner (``databases._Planner``), whose aliases and new
``DATABASES`` entries the replicas join.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS

from django_appdb.dburls import builtin_vendor, identity, mask_url
from django_appdb.discovery import Declaration
from django_appdb.exceptions import AppDatabaseConfigError
from django_appdb.urlsettings import settings_for

__all__ = ["REPLICA_SUFFIX", "ReplicaPlanning", "replica_alias"]

#: A replica's alias is its primary's followed by this and its position: ``orders_replica_1``.
REPLICA_SUFFIX = "_replica_"

#: How each backend refuses writes on a replica's connections, in its ``OPTIONS``.
_READ_ONLY: dict[str, tuple[str, tuple[str, ...], str]] = {
    # vendor: (OPTIONS key, values, separator from a value already there)
    "postgresql": ("options", ("-c default_transaction_read_only=on",), " "),
    # read_uncommitted matters only in shared-cache mode (SQLite's in-memory
    # test databases): there a reader of a table another connection of the
    # cache is writing gets "database table is locked" -- as Django's
    # TestCase teardown does when it checks constraints on the test mirror
    # while the primary's test transaction is open.
    "sqlite": ("init_command", ("PRAGMA query_only = ON", "PRAGMA read_uncommitted = ON"), "; "),
    "mysql": ("init_command", ("SET SESSION TRANSACTION READ ONLY",), "; "),
}


def replica_alias(primary: str, position: int) -> str:
    """Return the alias of ``primary``'s replica number ``position`` (from 1)."""
    return f"{primary}{REPLICA_SUFFIX}{position}"


class ReplicaPlanning:
    """The planner's replica half: what a primary's replicas are, checked, and where they go."""

    databases: Mapping[str, Mapping[str, Any]]
    new: dict[str, dict[str, Any]]
    owners: dict[str, str]
    replicas: dict[str, tuple[str, ...]]
    replica_owners: dict[str, str]
    mirrors: dict[str, str]

    def lookup(self, alias: str) -> Mapping[str, Any] | None:
        raise NotImplementedError

    def add_app_replicas(self, declaration: Declaration, primary: str) -> None:
        """Add the replicas an app declared to its alias's; apps sharing an alias must declare the same ones."""
        where = declaration.replica_where
        # Also an app whose URL is the default database's: its replicas would take every default app's reads.
        if declaration.source_kind == "default" or primary == DEFAULT_DB_ALIAS:
            raise AppDatabaseConfigError(
                declaration.label,
                where,
                "declares read replicas, but the app uses the default database.",
                "Declare the default database's replicas in settings.APPDB_REPLICAS = {'default': [...]}, "
                "or give the app a database of its own.",
            )
        entries = [self._replica_settings(declaration.label, where, primary, url) for url in declaration.replica_urls]
        self._add_replicas(declaration.label, where, primary, entries)

    def add_setting_replicas(self, primary: Any, entries: Any) -> None:
        """Add the replicas ``settings.APPDB_REPLICAS`` gives an alias: URLs, or names of other aliases."""
        where = f"settings.APPDB_REPLICAS[{primary!r}]"
        if not isinstance(primary, str) or self.lookup(primary) is None:
            known = ", ".join(sorted({*self.databases, *self.new}))
            raise AppDatabaseConfigError(
                "*", "settings.APPDB_REPLICAS", f"{primary!r} is not a database alias.", f"Use one of: {known}."
            )
        if not isinstance(entries, (list, tuple)) or not all(
            isinstance(entry, str) and entry.strip() for entry in entries
        ):
            raise AppDatabaseConfigError(
                "*",
                where,
                "must be a list of replica URLs or alias names.",
                f"Write APPDB_REPLICAS = {{{primary!r}: ['postgresql://...', ...]}}.",
            )
        settings_list: list[dict[str, Any] | str] = []
        for entry in entries:
            entry = entry.strip()
            if "://" in entry:
                settings_list.append(self._replica_settings("*", where, primary, entry))
            elif entry in self.databases and entry != primary:
                mirror = (self.databases[entry].get("TEST") or {}).get("MIRROR")
                if mirror not in (None, primary):
                    raise AppDatabaseConfigError(
                        "*", where, f"alias {entry!r} is already a test mirror of {mirror!r}, not of {primary!r}."
                    )
                settings_list.append(entry)
            else:
                known = ", ".join(sorted(alias for alias in self.databases if alias != primary))
                raise AppDatabaseConfigError(
                    "*",
                    where,
                    f"{entry!r} is neither a database URL nor another alias of settings.DATABASES.",
                    f"Give a URL (scheme://...) or one of: {known or '(none)'}.",
                )
        self._add_replicas("*", where, primary, settings_list)

    def _replica_settings(self, label: str, where: str, primary: str, url: str) -> dict[str, Any]:
        primary_settings = self.lookup(primary)
        assert primary_settings is not None
        settings_dict = settings_for(Declaration(label, "", "env", url=url, described=where))
        engine = str(settings_dict.get("ENGINE") or "")
        primary_engine = str(primary_settings.get("ENGINE") or "")
        if engine != primary_engine:
            raise AppDatabaseConfigError(
                label,
                where,
                f"replica {mask_url(url)!r} uses {engine}, but its primary {primary!r} uses {primary_engine}.",
                "A replica must be a copy of its primary, on the same kind of database.",
            )
        # How Django uses the connection follows the primary; where it leads is the replica's.
        for key in ("CONN_MAX_AGE", "TIME_ZONE", "DISABLE_SERVER_SIDE_CURSORS", "AUTOCOMMIT"):
            if key in primary_settings:
                settings_dict[key] = primary_settings[key]
        options = {**(primary_settings.get("OPTIONS") or {}), **(settings_dict.get("OPTIONS") or {})}
        vendor = builtin_vendor(engine)
        if vendor in _READ_ONLY:
            key, values, separator = _READ_ONLY[vendor]
            current = str(options.get(key) or "").strip()
            missing = [value for value in values if value not in current]
            options[key] = separator.join([current, *missing] if current else missing)
        settings_dict["OPTIONS"] = options
        settings_dict["ATOMIC_REQUESTS"] = False
        settings_dict["CONN_HEALTH_CHECKS"] = True
        settings_dict["TEST"] = {"MIRROR": primary}
        return settings_dict

    def _same_replica(self, alias: str, entry: dict[str, Any] | str) -> bool:
        if isinstance(entry, str):
            return entry == alias
        known = self.lookup(alias)
        return known is not None and identity(known) == identity(entry)

    def _add_replicas(self, label: str, where: str, primary: str, entries: Sequence[dict[str, Any] | str]) -> None:
        if not entries:
            # An empty list declares no replicas: the alias stays a plain
            # primary, with no empty replica list for the router to choose from.
            return
        if primary in self.replicas:
            known = self.replicas[primary]
            if len(known) != len(entries) or not all(map(self._same_replica, known, entries)):
                raise AppDatabaseConfigError(
                    label,
                    where,
                    f"declares other read replicas for alias {primary!r} than {self.replica_owners[primary]} did.",
                    "Apps sharing a database share its replicas: declare the same ones, or declare them once.",
                )
            return
        aliases = []
        for position, entry in enumerate(entries, 1):
            if isinstance(entry, str):
                self.mirrors[entry] = primary
                aliases.append(entry)
                continue
            alias = replica_alias(primary, position)
            if self.lookup(alias) is not None:
                raise AppDatabaseConfigError(
                    label,
                    where,
                    f"the replica's alias {alias!r} is already in settings.DATABASES.",
                    f"Rename that alias, or list it in settings.APPDB_REPLICAS[{primary!r}] instead of a URL.",
                )
            self.new[alias] = entry
            self.owners[alias] = label
            aliases.append(alias)
        self.replicas[primary] = tuple(aliases)
        self.replica_owners[primary] = f"app '{label}'" if label != "*" else where
