"""Direct connections in the plan: the server's own URL of a database reached through a pooler.

Mixed into the planner (``databases._Planner``). A direct entry is never added
to ``DATABASES``: only migrations, database creation and the test-database
set-up use it (:mod:`django_appdb.direct`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import DEFAULT_DB_ALIAS

from django_appdb.dburls import builtin_vendor, identity, is_file_engine, mask_url
from django_appdb.discovery import Declaration
from django_appdb.exceptions import AppDatabaseConfigError
from django_appdb.urlsettings import settings_for

__all__ = ["DirectPlanning"]

#: How Django uses a connection: the direct one follows its alias.
_FOLLOWED = ("ATOMIC_REQUESTS", "AUTOCOMMIT", "TIME_ZONE", "DISABLE_SERVER_SIDE_CURSORS", "TEST")


class DirectPlanning:
    """The planner's direct-URL half: each alias's direct settings, checked against the alias."""

    databases: Mapping[str, Mapping[str, Any]]
    new: dict[str, dict[str, Any]]
    direct: dict[str, dict[str, Any]]
    direct_owners: dict[str, str]

    def lookup(self, alias: str) -> Mapping[str, Any] | None:
        raise NotImplementedError

    def add_app_direct(self, declaration: Declaration, alias: str) -> None:
        """Give ``alias`` the direct URL an app declared; apps sharing an alias must not declare different ones."""
        where = declaration.direct_where
        if declaration.source_kind == "default" or alias == DEFAULT_DB_ALIAS:
            raise AppDatabaseConfigError(
                declaration.label,
                where,
                "declares a direct URL, but the app uses the default database.",
                "Declare the default database's direct URL in settings.APPDB_DIRECT_URLS = {'default': '...'}, "
                "or give the app a database of its own.",
            )
        assert declaration.direct_url is not None
        self._add_direct(declaration.label, where, alias, declaration.direct_url, f"app '{declaration.label}'")

    def add_setting_directs(self, urls: Any) -> None:
        """Add the direct URLs of ``settings.APPDB_DIRECT_URLS``: ``{alias: URL}``."""
        if not isinstance(urls, Mapping):
            raise AppDatabaseConfigError(
                "*",
                "settings.APPDB_DIRECT_URLS",
                f"must be a dict of alias -> direct URL, got {type(urls).__name__}.",
                "Write APPDB_DIRECT_URLS = {'default': 'postgresql://user:password@db-server:5432/name'}.",
            )
        for alias, url in urls.items():
            where = f"settings.APPDB_DIRECT_URLS[{alias!r}]"
            if not isinstance(alias, str) or alias not in self.databases:
                known = ", ".join(sorted(self.databases))
                raise AppDatabaseConfigError(
                    "*",
                    "settings.APPDB_DIRECT_URLS",
                    f"{alias!r} is not an alias of settings.DATABASES.",
                    f"Use one of: {known} (an app's own database takes <APP_LABEL>_DATABASE_DIRECT_URL, "
                    "or DATABASE_DIRECT_URL in its database.py).",
                )
            if not isinstance(url, str) or not url.strip():
                raise AppDatabaseConfigError(
                    "*", where, "must be a database URL (a non-empty string).", "Give the server's own URL."
                )
            self._add_direct("*", where, alias, url.strip(), where)

    def _add_direct(self, label: str, where: str, alias: str, url: str, owner: str) -> None:
        primary = self.lookup(alias)
        assert primary is not None
        if (primary.get("TEST") or {}).get("MIRROR"):
            raise AppDatabaseConfigError(
                label, where, f"alias {alias!r} is a read replica (a test mirror); it is never migrated."
            )
        settings_dict = settings_for(Declaration(label, "", "env", url=url, described=where))
        engine = str(settings_dict.get("ENGINE") or "")
        primary_engine = str(primary.get("ENGINE") or "")
        if engine != primary_engine:
            raise AppDatabaseConfigError(
                label,
                where,
                f"direct URL {mask_url(url)!r} uses {engine}, but alias {alias!r} uses {primary_engine}.",
                "The direct URL reaches the same database without the pooler: use the same kind of database.",
            )
        if is_file_engine(engine):
            raise AppDatabaseConfigError(
                label,
                where,
                f"alias {alias!r} is a {builtin_vendor(engine) or engine} file database, which has no pooler "
                "in front of it.",
                "Remove the direct URL.",
            )
        name, primary_name = settings_dict.get("NAME"), primary.get("NAME")
        # Under the test runner an alias of settings.DATABASES names its test database.
        test_name = (primary.get("TEST") or {}).get("NAME") or f"test_{name}"
        if primary_name not in (name, test_name):
            # The migration lock and the test database are named after it.
            raise AppDatabaseConfigError(
                label,
                where,
                f"direct URL {mask_url(url)!r} names database {name!r}, but alias {alias!r} names "
                f"{primary_name!r}: both must lead to the same database.",
                "Name the same database in both URLs (a pooler's database entry should use the server's name).",
            )
        for key in _FOLLOWED:
            if key in primary:
                settings_dict[key] = primary[key]
        options = {**(primary.get("OPTIONS") or {}), **(settings_dict.get("OPTIONS") or {})}
        options.pop("pool", None)
        settings_dict["OPTIONS"] = options
        # One connection per command, closed when it is done.
        settings_dict["CONN_MAX_AGE"] = 0
        settings_dict["CONN_HEALTH_CHECKS"] = False
        if alias in self.direct:
            if identity(self.direct[alias]) != identity(settings_dict):
                raise AppDatabaseConfigError(
                    label,
                    where,
                    f"declares another direct URL for alias {alias!r} than {self.direct_owners[alias]} did.",
                    "Apps sharing a database share its direct URL: declare the same one, or declare it once.",
                )
            return
        self.direct[alias] = settings_dict
        self.direct_owners[alias] = owner
