"""Find where each installed app's database is declared.

An app's database URL comes from, in order:

1. the environment variable ``<APP_LABEL>_DATABASE_URL`` (an empty or blank
   value counts as unset). It says *where* the data lives: it replaces the
   ``database.py`` URL, alias and driver ``OPTIONS`` (options written for the
   module's database, SQLite's ``timeout`` say, may not suit another; put
   driver options in its query string, ``?sslmode=require``). What
   ``database.py`` says about *how* Django uses the connection still applies
   (:data:`CONNECTION_SETTINGS`, ``DATABASE_TEST``,
   ``SQLALCHEMY_ENGINE_OPTIONS``);
2. ``DATABASE_URL`` (or ``DATABASE_ALIAS``) in the app's ``database.py``;
3. the project default, ``DATABASES["default"]``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import import_module
from importlib.machinery import FileFinder, SourceFileLoader, SourcelessFileLoader, all_suffixes
from types import ModuleType
from typing import Any, Literal

from django.apps import AppConfig, apps
from django.db import DEFAULT_DB_ALIAS
from django.db.backends.base.base import NO_DB_ALIAS
from django.utils.module_loading import module_has_submodule

from django_appdb.conf import conf
from django_appdb.dburls import mask_text, mask_url, settings_to_url
from django_appdb.exceptions import AppDatabaseConfigError

ENV_SUFFIX = "_DATABASE_URL"
REPLICA_ENV_SUFFIX = "_DATABASE_REPLICA_URLS"
DIRECT_ENV_SUFFIX = "_DATABASE_DIRECT_URL"
MODULE_NAME = "database"

#: The connection poolers an app's database may be declared behind (``DATABASE_POOLER``,
#: ``?appdb_pooler=``, ``APPDB_POOLERS``); see the deployment page for what each sets.
POOLERS = ("pgbouncer-transaction", "pgbouncer-session")
#: The URL query option that declares a pooler; removed before the URL reaches the driver.
POOLER_URL_OPTION = "appdb_pooler"

SourceKind = Literal["env", "module", "default"]

#: Django ``DATABASES`` keys ``database.py`` may set under their own names:
#: how Django uses the connection, not where it leads.
CONNECTION_SETTINGS: dict[str, tuple[type, ...]] = {
    "ATOMIC_REQUESTS": (bool,),
    "AUTOCOMMIT": (bool,),
    "CONN_MAX_AGE": (int, type(None)),
    "CONN_HEALTH_CHECKS": (bool,),
    "DISABLE_SERVER_SIDE_CURSORS": (bool,),
    "TIME_ZONE": (str, type(None)),
}

#: Names ``database.py`` may define, with the type each must have.
MODULE_SETTINGS: dict[str, tuple[type, ...]] = {
    "DATABASE_URL": (str,),
    "DATABASE_ALIAS": (str,),
    "DATABASE_OPTIONS": (dict,),
    "DATABASE_TEST": (dict,),
    "DATABASE_REPLICA_URLS": (list, tuple),
    "DATABASE_DIRECT_URL": (str,),
    "DATABASE_POOLER": (str, type(None)),
    **CONNECTION_SETTINGS,
    "DATABASE_POOL": (bool, dict),
    "SQLALCHEMY_ENGINE_OPTIONS": (dict,),
}

#: What an environment variable replaces: where the database is.
#: (A pooler sits at a location too: with the variable set, its URL's ``?appdb_pooler=`` declares it.)
LOCATION_SETTINGS = ("DATABASE_URL", "DATABASE_ALIAS", "DATABASE_OPTIONS", "DATABASE_POOLER")

# Any name that looks like one of ours, so a misspelt one is reported rather than ignored.
_OURS = re.compile(
    r"^(DATABASE_|CONN_|SQLALCHEMY_)[A-Z0-9_]*$|^(ATOMIC_REQUESTS|AUTOCOMMIT|DISABLE_SERVER_SIDE_CURSORS|TIME_ZONE)$"
)
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def check_pooler(label: str, where: str, value: object) -> str | None:
    """Return the pooler ``value`` declares (None for none); raise ``AppDatabaseConfigError`` listing the valid ones."""
    if value is None or (isinstance(value, str) and value in POOLERS):
        return value
    shown = repr(mask_url(value)) if isinstance(value, str) else type(value).__name__
    raise AppDatabaseConfigError(
        label,
        where,
        f"pooler {shown} is not known.",
        f"Use one of: {', '.join(repr(name) for name in POOLERS)}, or None for no pooler.",
    )


def env_var_name(app_label: str) -> str:
    """Return the environment variable that overrides ``app_label``'s database."""
    return f"{app_label.upper()}{ENV_SUFFIX}"


def replica_env_var_name(app_label: str) -> str:
    """Return the environment variable that lists ``app_label``'s read replicas."""
    return f"{app_label.upper()}{REPLICA_ENV_SUFFIX}"


def direct_env_var_name(app_label: str) -> str:
    """Return the environment variable that gives ``app_label``'s direct URL (migrations, bypassing a pooler)."""
    return f"{app_label.upper()}{DIRECT_ENV_SUFFIX}"


@dataclass(frozen=True)
class Declaration:
    """What one app declares about its database, before aliases are chosen."""

    label: str
    source: str
    source_kind: SourceKind
    url: str | None = None
    alias: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    module_path: str | None = None
    #: The read replicas' URLs, and where they were declared (for messages).
    replica_urls: tuple[str, ...] = ()
    replica_where: str = ""
    #: Overrides :attr:`where` (a replica's URL is reported where it was declared).
    described: str = ""
    #: The URL migrations and database creation use instead of :attr:`url` (bypassing a pooler), and where.
    direct_url: str | None = None
    direct_where: str = ""
    #: ``DATABASE_POOLER`` of ``database.py`` (a URL's ``?appdb_pooler=`` is read with the URL).
    pooler: str | None = None

    def __repr__(self) -> str:
        url = None if self.url is None else mask_url(self.url)
        replicas = [mask_url(replica) for replica in self.replica_urls]
        direct = None if self.direct_url is None else mask_url(self.direct_url)
        return (
            f"<Declaration {self.label!r} {self.where} url={url!r} alias={self.alias!r} "
            f"options={sorted(self.options)!r} replicas={replicas!r} direct={direct!r}>"
        )

    @property
    def where(self) -> str:
        """Describe the source for error messages."""
        if self.described:
            return self.described
        if self.source_kind == "env":
            return f"environment variable {self.source}"
        if self.source_kind == "module":
            return f"module {self.source}"
        return "DATABASES['default']"


def _describe_module(module_name: str, module: ModuleType | None = None) -> str:
    path = getattr(module, "__file__", None)
    return f"{module_name} ({path})" if path else module_name


# importlib ignores case on these platforms when PYTHONCASEOK is set; the listing below would not.
_CASE_INSENSITIVE = sys.platform.startswith(("win", "cygwin", "darwin"))
_SUFFIXES = tuple(all_suffixes())


def _in_directories(package: ModuleType) -> bool | None:
    """Return whether a plain directory package has a ``database`` submodule; None when it is not one.

    What importlib's path finder would answer, from one directory listing:
    ``database/`` (a package, or a namespace portion) or ``database`` with
    any importable suffix (``.py``, ``.pyc``, an extension module). Only for
    a package loaded from files (not a namespace package, not a zip), whose
    directories are served by the standard ``FileFinder``, and only when the
    submodule is not imported already; None sends the caller to importlib.
    """
    spec = getattr(package, "__spec__", None)
    path = getattr(package, "__path__", None)
    if (
        spec is None
        or not isinstance(spec.loader, (SourceFileLoader, SourcelessFileLoader))
        or type(path) is not list
        or path is not spec.submodule_search_locations
        or (_CASE_INSENSITIVE and "PYTHONCASEOK" in os.environ)
        or f"{package.__name__}.{MODULE_NAME}" in sys.modules
    ):
        return None
    for directory in path:
        if not isinstance(directory, str) or not isinstance(sys.path_importer_cache.get(directory), FileFinder):
            return None
        try:
            names = set(os.listdir(directory))
        except OSError:
            return None
        if MODULE_NAME in names and os.path.isdir(os.path.join(directory, MODULE_NAME)):
            return True
        for suffix in _SUFFIXES:
            if MODULE_NAME + suffix in names and os.path.isfile(os.path.join(directory, MODULE_NAME + suffix)):
                return True
    return False


def has_database_module(package: ModuleType) -> bool:
    """Return whether ``package`` has a ``database`` submodule, as Django's ``module_has_submodule`` answers.

    Cheap for the usual app, a directory package: one directory listing
    instead of importlib's full search. Zip and namespace packages, single
    module apps and anything unusual go through importlib.
    """
    found = _in_directories(package)
    return module_has_submodule(package, MODULE_NAME) if found is None else found


def load_database_module(app_config: AppConfig) -> ModuleType | None:
    """Import and return the app's ``database`` module, or None if it has none.

    An exception raised while importing it is reported, never swallowed.
    """
    module_name = f"{app_config.name}.{MODULE_NAME}"
    if app_config.module is None or not has_database_module(app_config.module):
        return None
    try:
        return import_module(module_name)
    except (KeyboardInterrupt, GeneratorExit):
        raise
    except BaseException as exc:
        # SystemExit too: sys.exit("postgres://u:pw@...") would print its raw message.
        detail = mask_text(str(exc))
        if isinstance(exc, SyntaxError):
            detail = f"{mask_text(exc.msg or '')} at {exc.filename}:{exc.lineno}"
        # ``from None``: the chained traceback would print source lines that
        # may hold an unmasked URL.
        raise AppDatabaseConfigError(
            app_config.label,
            f"module {module_name}",
            f"importing it raised {type(exc).__name__}: {detail}",
            f"Fix {module_name}, or delete it to use the default database.",
        ) from None


def _read_module(app_config: AppConfig, module: ModuleType) -> dict[str, Any]:
    where = f"module {_describe_module(module.__name__, module)}"
    values: dict[str, Any] = {}
    for name in dir(module):
        if not _OURS.match(name):
            continue
        if name not in MODULE_SETTINGS:
            raise AppDatabaseConfigError(
                app_config.label,
                where,
                f"unknown setting {name}.",
                f"Valid settings are: {', '.join(MODULE_SETTINGS)}.",
            )
        value = getattr(module, name)
        if name == "DATABASE_POOLER":
            values[name] = check_pooler(app_config.label, f"{where} (DATABASE_POOLER)", value)
            continue
        expected = MODULE_SETTINGS[name]
        # bool is an int: CONN_MAX_AGE = True is a mistake.
        if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
            wanted = " or ".join("None" if t is type(None) else t.__name__ for t in expected)
            shown = mask_url(value) if isinstance(value, str) else type(value).__name__
            raise AppDatabaseConfigError(app_config.label, where, f"{name} must be {wanted}, got {shown}.")
        values[name] = value
    url = values.get("DATABASE_URL")
    if url is not None and not url.strip():
        raise AppDatabaseConfigError(
            app_config.label,
            where,
            "DATABASE_URL is empty.",
            "Set it to a database URL, or remove it to use the default database.",
        )
    alias = values.get("DATABASE_ALIAS")
    if alias is not None and not _ALIAS.match(alias):
        raise AppDatabaseConfigError(app_config.label, where, f"DATABASE_ALIAS {alias!r} is not a valid alias name.")
    if alias == NO_DB_ALIAS:
        raise AppDatabaseConfigError(
            app_config.label,
            where,
            f"DATABASE_ALIAS {alias!r} is Django's internal alias for connecting to no database.",
            "Pick another alias name.",
        )
    replicas = values.get("DATABASE_REPLICA_URLS")
    if replicas is not None:
        for position, replica in enumerate(replicas, 1):
            if not isinstance(replica, str) or not replica.strip():
                shown = "an empty string" if isinstance(replica, str) else type(replica).__name__
                raise AppDatabaseConfigError(
                    app_config.label,
                    where,
                    f"DATABASE_REPLICA_URLS must be a list of database URLs; item {position} is {shown}.",
                    "List one URL per replica, or remove the setting.",
                )
    direct = values.get("DATABASE_DIRECT_URL")
    if direct is not None and not direct.strip():
        raise AppDatabaseConfigError(
            app_config.label,
            where,
            "DATABASE_DIRECT_URL is empty.",
            "Set it to the database server's own URL (not the pooler's), or remove it.",
        )
    max_age = values.get("CONN_MAX_AGE")
    if max_age is not None and max_age < 0:
        raise AppDatabaseConfigError(app_config.label, where, "CONN_MAX_AGE must be >= 0, or None for unlimited.")
    return values


def _replicas(
    label: str, values: Mapping[str, Any], module: ModuleType | None, environ: Mapping[str, str]
) -> dict[str, Any]:
    """Return the replica URLs an app declares, and where: the environment variable wins over ``database.py``."""
    var = replica_env_var_name(label)
    env_value = environ.get(var, "").strip()
    if env_value:
        urls = tuple(part.strip() for part in env_value.split(","))
        for position, url in enumerate(urls, 1):
            if not url:
                raise AppDatabaseConfigError(
                    label,
                    f"environment variable {var}",
                    f"item {position} of the comma-separated list is empty.",
                    "Separate the replica URLs with single commas (percent-encode a comma in a password as %2C).",
                )
        return {"replica_urls": urls, "replica_where": f"environment variable {var}"}
    declared = values.get("DATABASE_REPLICA_URLS")
    if declared and module is not None:
        where = f"module {module.__name__} (DATABASE_REPLICA_URLS)"
        return {"replica_urls": tuple(url.strip() for url in declared), "replica_where": where}
    return {}


def _direct(
    label: str, values: Mapping[str, Any], module: ModuleType | None, environ: Mapping[str, str]
) -> dict[str, Any]:
    """Return the direct URL an app declares, and where: the environment variable wins over ``database.py``."""
    var = direct_env_var_name(label)
    env_value = environ.get(var, "").strip()
    if env_value:
        return {"direct_url": env_value, "direct_where": f"environment variable {var}"}
    declared = values.get("DATABASE_DIRECT_URL")
    if declared and module is not None:
        return {"direct_url": declared.strip(), "direct_where": f"module {module.__name__} (DATABASE_DIRECT_URL)"}
    return {}


def declare(app_config: AppConfig, environ: Mapping[str, str] | None = None) -> Declaration:
    """Return what ``app_config`` declares about its database.

    Raise :class:`~django_appdb.exceptions.AppDatabaseConfigError` for a
    ``database.py`` that fails to import or holds invalid values.
    """
    environ = os.environ if environ is None else environ
    label = app_config.label
    module = load_database_module(app_config)
    values = _read_module(app_config, module) if module is not None else {}
    options = {
        key: value
        for key, value in values.items()
        if key
        not in ("DATABASE_URL", "DATABASE_ALIAS", "DATABASE_REPLICA_URLS", "DATABASE_DIRECT_URL", "DATABASE_POOLER")
    }
    module_path = module.__name__ if module is not None else None
    var = env_var_name(label)
    env_value = environ.get(var, "").strip()
    # The variable says where the database is: a direct URL written for the module's database goes too.
    direct_values = {} if env_value else values
    replicas = {**_replicas(label, values, module, environ), **_direct(label, direct_values, module, environ)}

    if env_value:
        # The variable says where the database is; the module still says how
        # Django uses it. Driver OPTIONS written for the module's database
        # (SQLite's ``timeout``, say) may not suit another, so they go.
        kept = {key: value for key, value in options.items() if key not in LOCATION_SETTINGS}
        return Declaration(label, var, "env", url=env_value, options=kept, module_path=module_path, **replicas)
    if module is not None and ("DATABASE_URL" in values or "DATABASE_ALIAS" in values):
        return Declaration(
            label,
            module.__name__,
            "module",
            url=values.get("DATABASE_URL", "").strip() or None,
            alias=values.get("DATABASE_ALIAS"),
            options=options,
            module_path=module_path,
            pooler=values.get("DATABASE_POOLER"),
            **replicas,
        )
    return Declaration(
        label,
        "default",
        "default",
        options=options,
        module_path=module_path,
        pooler=values.get("DATABASE_POOLER"),
        **replicas,
    )


def default_url() -> str:
    """Return ``DATABASES["default"]`` as a URL (``OPTIONS`` are not rendered)."""
    return settings_to_url(conf.DATABASES[DEFAULT_DB_ALIAS])


def _url_of(declaration: Declaration) -> str:
    if declaration.url is not None:
        return declaration.url
    if declaration.alias is not None:
        databases = conf.DATABASES
        if declaration.alias in databases:
            return settings_to_url(databases[declaration.alias])
    return default_url()


def discover_app_database(app_label: str) -> str:
    """Return the database URL for ``app_label``.

    The environment variable ``<APP_LABEL>_DATABASE_URL`` wins over the app's
    ``database.py``, which wins over ``DATABASES["default"]``. A label that is
    not installed gets the default. The URL contains the password: mask it with
    :func:`django_appdb.mask_url` before showing it.
    """
    try:
        app_config = apps.get_app_config(app_label)
    except LookupError:
        return default_url()
    return _url_of(declare(app_config))


def discover_all_app_databases() -> dict[str, str]:
    """Return ``{app_label: database URL}`` for every installed app."""
    return {config.label: _url_of(declare(config)) for config in apps.get_app_configs()}
