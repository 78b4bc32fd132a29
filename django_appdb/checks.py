"""System checks run by ``manage.py check`` (and before ``migrate``, ``runserver``...).

Ids, listed in docs/commands.md:

* ``django_appdb.E001`` the app database configuration is invalid;
* ``django_appdb.E002`` an app database's backend cannot be loaded;
* ``django_appdb.E003`` a relation crosses two databases;
* ``django_appdb.W001`` another router answers before ``AppDatabaseRouter``;
* ``django_appdb.W002`` ``AppDatabaseRouter`` is not installed;
* ``django_appdb.W003`` two aliases name the same physical database;
* ``django_appdb.W004`` async views or repositories use a database whose
  async driver (greenlet, aiosqlite, psycopg) is not installed;
* ``django_appdb.E004`` ``APPDB_INSTALL_ROUTER`` or ``APPDB_WIDEN_TEST_DATABASES``
  is not a bool;
* ``django_appdb.E005`` ``APPDB_SQLALCHEMY_ENGINE_OPTIONS`` is not a dict of
  keyword arguments (``connect_args`` a dict);
* ``django_appdb.W005`` a ``<LABEL>_DATABASE_URL`` (or ``_DATABASE_DIRECT_URL``) variable names no
  installed app (a typo moves nothing);
* ``django_appdb.W006`` a ``database.py`` sets options but no URL or alias,
  so they apply to nothing;
* ``django_appdb.W007`` a ``GenericForeignKey`` can point at models that
  live on another database;
* ``django_appdb.E007`` an alias's test database is a real database (its
  own or another alias'), which the test runner would drop;
* ``django_appdb.E008`` a replica setting has the wrong type;
* ``django_appdb.E009`` ``APPDB_DIRECT_URLS`` is not a dict of alias -> URL;
* ``django_appdb.W008`` a database declared behind PgBouncer in transaction
  mode has a setting that mode breaks (server-side cursors, prepared
  statements, Django's own connection pool);
* ``django_appdb.E006`` a database records an app's migrations as applied
  while none of its tables exist (database checks: ``migrate``,
  ``appdb_migrate``, ``check --database``).

None of them opens a database connection, but E006, which runs only when a
command names its databases. The errors among them also run before any test
database is created (:mod:`django_appdb.testing.guard`).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Iterator, Sequence
from itertools import combinations
from types import ModuleType
from typing import Any

from django.apps import AppConfig, apps
from django.core.checks import CheckMessage, Error, Tags, Warning as CheckWarning, register
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Model
from django.db.utils import load_backend

from django_appdb.backends import describe_error
from django_appdb.conf import BOOLEAN_SETTINGS, DEFAULTS, SECONDS_SETTINGS, conf, raw as raw_setting
from django_appdb.databases import AppDatabase, plan
from django_appdb.dburls import identity, mask_url, parse_url, settings_to_url
from django_appdb.discovery import DIRECT_ENV_SUFFIX, ENV_SUFFIX, declare, direct_env_var_name, env_var_name
from django_appdb.exceptions import AppDatabaseConfigError
from django_appdb.relations import CrossingRelation, generic_fields, model_crossings, relation_models
from django_appdb.routers import AppDatabaseRouter
from django_appdb.state import app_databases, databases_by_alias, pooler_of, resolve_alias, state

TAG = "django_appdb"
ROUTER_PATH = f"{AppDatabaseRouter.__module__}.{AppDatabaseRouter.__qualname__}"


_NAMING_KEYS = ("NAME", "HOST", "PORT", "USER")


def _app_labels(app_configs: Sequence[AppConfig] | None) -> set[str] | None:
    return None if app_configs is None else {config.label for config in app_configs}


@register(TAG)
def check_configuration(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Re-validate every app's database declaration (E001).

    An invalid declaration already stops start-up; this catches one made
    invalid later in the process (an environment variable or ``DATABASES``
    changed after ``django.setup()``). The aliases the apps reached by URL are
    re-planned from those URLs rather than from their live settings: under the
    test runner those name test databases, which no longer match the URLs.
    """
    # The aliases django_appdb added are planned again from the declarations.
    databases: dict[str, Any] = {alias: value for alias, value in conf.DATABASES.items() if alias not in state.added}
    reached_by_url: set[str] = set()
    for record in app_databases().values():
        if record.declared_url is None or record.alias in (DEFAULT_DB_ALIAS, *reached_by_url, *state.added):
            continue
        if record.alias not in databases:
            continue
        # A settings alias an app reached by URL: under the test runner its
        # NAME is the test database's; compare with what the URL names.
        reached_by_url.add(record.alias)
        try:
            parsed = parse_url(record.declared_url)
        except ValueError:
            continue
        databases[record.alias] = {**databases[record.alias], **{key: parsed.get(key) for key in _NAMING_KEYS}}
    messages: list[CheckMessage] = []
    try:
        direct_urls = conf.DIRECT_URLS
        # A direct-URL setting of the wrong type is E009's.
        plan(
            apps.get_app_configs(),
            databases,
            direct_urls=direct_urls if isinstance(direct_urls, dict) else None,
            poolers=conf.POOLERS,
        )
    except AppDatabaseConfigError as exc:
        messages.append(
            Error(f"app '{exc.app_label}' ({exc.source}): {exc.problem}", hint=exc.fix or None, id="django_appdb.E001")
        )
    current = conf.DATABASES
    for alias, labels in databases_by_alias().items():
        if alias not in current:
            messages.append(
                Error(
                    f"apps {_quoted(labels)} are routed to database alias {alias!r}, which is no longer in "
                    "settings.DATABASES.",
                    hint="Do not remove or replace DATABASES entries after start-up.",
                    id="django_appdb.E001",
                )
            )
    return messages


_DRIVERS = {
    "postgresql": "pip install 'django-appdb[postgres]' (psycopg)",
    "postgis": "pip install 'django-appdb[postgres]' (psycopg)",
    "mysql": "pip install 'django-appdb[mysql]' (mysqlclient)",
    "oracle": "pip install oracledb",
}


@register(TAG)
def check_backends(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Report an app database whose ``ENGINE`` cannot be imported (E002)."""
    messages: list[CheckMessage] = []
    current = conf.DATABASES
    for alias, labels in databases_by_alias().items():
        if alias not in current:
            continue
        engine = str(current[alias].get("ENGINE") or "")
        try:
            load_backend(engine)
        except Exception as exc:
            kind = engine.rsplit(".", 1)[-1]
            messages.append(
                Error(
                    f"database alias {alias!r} of apps {_quoted(labels)} uses ENGINE {engine!r}, which cannot be "
                    f"loaded: {describe_error(exc, current[alias])}",
                    hint=f"Install its driver: {_DRIVERS[kind]}."
                    if kind in _DRIVERS
                    else "Install the backend's package, or fix the URL's scheme.",
                    id="django_appdb.E002",
                )
            )
    return messages


def _quoted(labels: Iterable[str]) -> str:
    return ", ".join(f"'{label}'" for label in labels)


def _record(label: str) -> AppDatabase | None:
    return state.records.get(label)


def _move_back(record: AppDatabase) -> str:
    if record.source_kind == "env":
        return f"unset {record.source}"
    if record.source_kind == "module":
        return f"remove DATABASE_URL and DATABASE_ALIAS from {record.source}"
    return f"route '{record.label}' to '{DEFAULT_DB_ALIAS}'"


def _move_to(record: AppDatabase, other: AppDatabase) -> str:
    """Describe how to put ``record``'s app on ``other``'s database."""
    if other.alias == DEFAULT_DB_ALIAS:
        return _move_back(record)
    return f"set {env_var_name(record.label)} to the URL of '{other.label}' ({other.source})"


def _colocate_hint(first: str, second: str) -> str | None:
    one, two = _record(first), _record(second)
    if one is None or two is None:
        return None
    return (
        f"Put '{first}' and '{second}' on one database: {_move_to(two, one)}, or {_move_to(one, two)}."
        " Otherwise store the key in a plain field instead of a relation: Django cannot join, "
        "constrain or assign across databases."
    )


def _crossing_error(relation: CrossingRelation) -> CheckMessage:
    """Return E003 for a relation found by :func:`~django_appdb.relations.crossing_relations`."""
    model, field, own = relation.model, relation.field, relation.alias
    other = relation.elsewhere[0]
    if not field.many_to_many:
        related, where = relation.related, relation.related_alias
        message = (
            f"{type(field).__name__} to {related._meta.label} crosses databases: {model._meta.label} is on "
            f"{own!r}, {related._meta.label} is on {where!r}."
        )
    else:
        sides = dict(relation.sides)
        through = relation.sides[2][0]
        placed = ", ".join(
            f"{side._meta.label} is on {alias!r}" for side, alias in sides.items() if not side._meta.auto_created
        )
        table = f"its table {through._meta.db_table} is on {sides[through]!r}" if through._meta.auto_created else ""
        message = (
            f"ManyToManyField to {relation.related._meta.label} crosses databases: "
            f"{placed}{', ' + table if table else ''}."
        )
    return Error(
        message, hint=_colocate_hint(model._meta.app_label, other._meta.app_label), obj=field, id="django_appdb.E003"
    )


def _generic_foreign_key_warnings(model: type[Model]) -> Iterator[CheckMessage]:
    kinds = generic_fields()
    if kinds is None:
        return
    own = state.alias_of(model)
    for field in model._meta.private_fields:
        if not isinstance(field, kinds[0]):
            continue
        elsewhere = sorted({resolve_alias(label) for label in _labels_with_models()} - {own})
        if elsewhere:
            yield CheckWarning(
                f"GenericForeignKey {model._meta.label}.{field.name} can point at any model, but "
                f"{model._meta.label} is on {own!r} and other apps' models are on {_quoted(elsewhere)}: "
                f"Django looks its target up on {own!r}, so an object on another database cannot be one.",
                hint="Keep the models it points at on the same database, or silence django_appdb.W007 if it "
                "never points at them.",
                obj=field,
                id="django_appdb.W007",
            )


def _labels_with_models() -> set[str]:
    return {config.label for config in apps.get_app_configs() if any(True for _ in config.get_models())}


def _crossing_fields(model: type[Model]) -> Iterator[CheckMessage]:
    for relation in model_crossings(model):
        yield _crossing_error(relation)
    yield from _generic_foreign_key_warnings(model)


@register(TAG, Tags.models)
def check_relations(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Report relations between models on two databases (E003), and generic keys that may point across (W007).

    Covers ForeignKey, OneToOneField (multi-table inheritance included),
    ManyToManyField with their through tables and GenericRelation, contrib
    apps included, as :func:`~django_appdb.relations.model_crossings` finds them.
    """
    messages: list[CheckMessage] = []
    for model in relation_models(_app_labels(app_configs)):
        messages.extend(_crossing_fields(model))
    return messages


def _router_path(router: Any) -> str:
    cls = router if isinstance(router, type) else type(router)
    return f"{cls.__module__}.{cls.__qualname__}"


def _disagreement(router: Any, label: str, alias: str, managed: Iterable[str]) -> str | None:
    """Return how ``router`` contradicts django_appdb for app ``label``, or None."""
    for model in apps.get_app_config(label).get_models():
        for method in ("db_for_read", "db_for_write"):
            decide = getattr(router, method, None)
            if decide is None:
                continue
            try:
                answer = decide(model)
            except Exception:
                # A router that needs hints the probe cannot give is not judged.
                continue
            if answer is not None and answer != alias:
                return f"{method}({model._meta.label}) returns {answer!r}, not {alias!r}"
        allow = getattr(router, "allow_migrate", None)
        if allow is None:
            continue
        for db in managed:
            try:
                answer = allow(db, label, model_name=model._meta.model_name, model=model)
            except Exception:
                continue
            if answer is not None and bool(answer) != (db == alias):
                return f"allow_migrate({db!r}, {label!r}) returns {answer!r}, but {label!r} is migrated on {alias!r}"
    return None


@register(TAG)
def check_router(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Report a router answering before ``AppDatabaseRouter`` (W001), or no such router (W002).

    Only apps with a database of their own are probed: for apps on
    ``default`` the router returns None, leaving other routers free to decide.
    """
    from django.db import router as connection_router

    routes = dict(state.routes)
    labels = _app_labels(app_configs)
    if labels is not None:
        routes = {label: alias for label, alias in routes.items() if label in labels}
    if not routes:
        return []
    routers = list(connection_router.routers)
    position = next((i for i, router in enumerate(routers) if isinstance(router, AppDatabaseRouter)), None)
    if position is None:
        return [
            CheckWarning(
                f"{ROUTER_PATH} is not installed: apps {_quoted(sorted(routes))} have a database of their own, "
                "but their queries and migrations go where the other routers (or 'default') send them.",
                hint=f"Remove APPDB_INSTALL_ROUTER = False, or add '{ROUTER_PATH}' to DATABASE_ROUTERS.",
                id="django_appdb.W002",
            )
        ]
    managed = sorted(state.managed)
    messages: list[CheckMessage] = []
    for router in routers[:position]:
        for label, alias in routes.items():
            problem = _disagreement(router, label, alias, managed)
            if problem is None:
                continue
            path = _router_path(router)
            messages.append(
                CheckWarning(
                    f"router {path} answers before {ROUTER_PATH} and sends app '{label}' elsewhere: {problem}.",
                    hint=f"List '{ROUTER_PATH}' before {path} in DATABASE_ROUTERS, or make {path} return None "
                    f"for app '{label}'.",
                    obj=router,
                    id="django_appdb.W001",
                )
            )
    return messages


@register(TAG)
def check_shared_databases(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Report two aliases of the apps that reach the same physical database (W003)."""
    current = conf.DATABASES
    groups = {alias: labels for alias, labels in databases_by_alias().items() if alias in current}
    keys = {alias: identity(current[alias], physical=True) for alias in groups}
    messages: list[CheckMessage] = []
    flagged: set[str] = set()
    for first, second in combinations(groups, 2):
        if second in flagged or keys[first] is None or keys[first] != keys[second]:
            continue
        mirrors = {(current[first].get("TEST") or {}).get("MIRROR"), (current[second].get("TEST") or {}).get("MIRROR")}
        if first in mirrors or second in mirrors:
            continue
        flagged.add(second)
        messages.append(
            CheckWarning(
                f"database alias {second!r} (apps {_quoted(groups[second])}) reaches the same database as "
                f"{first!r}: {mask_url(settings_to_url(current[second]))} and "
                f"{mask_url(settings_to_url(current[first]))}.",
                hint=f"Give apps {_quoted(groups[second])} exactly the URL of {first!r} (same host name, port and "
                f"user) or DATABASE_ALIAS = {first!r}, so they share its alias; or a database of their own. Under "
                "two aliases Django opens two connections, refuses relations between them and splits migrations.",
                id="django_appdb.W003",
            )
        )
    return messages


def _root_urlconf() -> ModuleType | None:
    from django.urls import get_resolver

    try:
        module = get_resolver().urlconf_module
    except Exception:
        # A missing or broken URLconf is Django's own check's to report.
        return None
    return module if isinstance(module, ModuleType) else None


@register(TAG, Tags.compatibility)
def check_async_drivers(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Report async views or repositories on a database whose async driver is missing (W004).

    A base install has no greenlet, aiosqlite or async psycopg; sync use
    needs none of them, so this is a warning found before the first request
    rather than an error at start-up.
    """
    from django_appdb.backends import vendor_of
    from django_appdb.exceptions import MissingDriverError
    from django_appdb.sqlalchemy.asyncusage import async_uses
    from django_appdb.sqlalchemy.dialects import driver_for

    labels = _app_labels(app_configs)
    by_alias: dict[str, list[str]] = {}
    for use in async_uses(_root_urlconf()):
        if labels is None or use.app_label in labels:
            by_alias.setdefault(use.alias, []).append(use.what)
    messages: list[CheckMessage] = []
    current = conf.DATABASES
    for alias, uses in by_alias.items():
        if alias not in current:
            continue
        try:
            driver_for(vendor_of(alias), True, alias=alias, settings_dict=current[alias])
        except MissingDriverError as exc:
            shown = "; ".join(uses[:5]) + (f"; and {len(uses) - 5} more" if len(uses) > 5 else "")
            messages.append(
                CheckWarning(
                    f"{shown} use{'s' if len(uses) == 1 else ''} database alias {alias!r} through SQLAlchemy's "
                    f"async side, which fails here: {exc.problem}",
                    hint=(f"Install it: pip install '{exc.install}'. " if exc.install else "")
                    + "Sync engines, sessions and repositories work without it.",
                    id="django_appdb.W004",
                )
            )
        except Exception:
            # An unsupported backend: the async side reports it when used.
            continue
    return messages


@register(TAG, Tags.compatibility)
def check_settings(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Check the type of every ``APPDB_*`` setting (E004, E005, E008, E009)."""
    messages: list[CheckMessage] = []
    for name in BOOLEAN_SETTINGS:
        value = raw_setting(name)
        if not isinstance(value, bool):
            messages.append(
                Error(
                    f"{name} must be True or False, got {value!r} ({type(value).__name__}).",
                    hint=f"Write {name} = {not DEFAULTS[name]} (not a string) to change it, or remove it.",
                    id="django_appdb.E004",
                )
            )
    for name in SECONDS_SETTINGS:
        value = raw_setting(name)
        if value is None and DEFAULTS[name] is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            allowed = " or None" if DEFAULTS[name] is None else ""
            messages.append(
                Error(
                    f"{name} must be a number of seconds (0 or more){allowed}, got {value!r}.",
                    hint=f"Write {name} = {DEFAULTS[name] if DEFAULTS[name] is not None else 2.0}, or remove it "
                    "to use the default.",
                    id="django_appdb.E008",
                )
            )
    replicas = raw_setting("APPDB_REPLICAS")
    if not isinstance(replicas, dict):
        messages.append(
            Error(
                f"APPDB_REPLICAS must be a dict of alias -> replica URLs, got {type(replicas).__name__}.",
                hint="Write APPDB_REPLICAS = {'default': ['postgresql://...']}, or remove it.",
                id="django_appdb.E008",
            )
        )
    direct = raw_setting("APPDB_DIRECT_URLS")
    if not isinstance(direct, dict) or not all(
        isinstance(alias, str) and isinstance(url, str) and url.strip() for alias, url in direct.items()
    ):
        shown = type(direct).__name__ if not isinstance(direct, dict) else "a dict with a value that is not a URL"
        messages.append(
            Error(
                f"APPDB_DIRECT_URLS must be a dict of alias -> direct database URL, got {shown}.",
                hint="Write APPDB_DIRECT_URLS = {'default': 'postgresql://user:password@db-server:5432/name'} "
                "(the server's own URL, not the pooler's), or remove it.",
                id="django_appdb.E009",
            )
        )
    options = raw_setting("APPDB_SQLALCHEMY_ENGINE_OPTIONS")
    if options is not None and not isinstance(options, dict):
        messages.append(
            Error(
                f"APPDB_SQLALCHEMY_ENGINE_OPTIONS must be a dict, got {type(options).__name__}.",
                hint="Give the create_engine() keyword arguments as a dict, e.g. {'pool_size': 10}.",
                id="django_appdb.E005",
            )
        )
    elif isinstance(options, dict):
        bad_keys = sorted(repr(key) for key in options if not isinstance(key, str))
        connect_args = options.get("connect_args", {})
        if bad_keys or not isinstance(connect_args, dict):
            problem = (
                f"keys must be strings, got {', '.join(bad_keys)}"
                if bad_keys
                else f"'connect_args' must be a dict, got {type(connect_args).__name__}"
            )
            messages.append(
                Error(
                    f"APPDB_SQLALCHEMY_ENGINE_OPTIONS: {problem}.",
                    hint="Give create_engine() keyword arguments by name, and connect_args as a dict.",
                    id="django_appdb.E005",
                )
            )
    return messages


def _pooler_conflicts(settings_dict: Any, engine_options: Any) -> list[tuple[str, str]]:
    """Return ``(setting, why it breaks)`` for each setting of an alias that PgBouncer's transaction mode breaks."""
    conflicts = []
    if settings_dict.get("DISABLE_SERVER_SIDE_CURSORS") is not True:
        conflicts.append(
            (
                "DISABLE_SERVER_SIDE_CURSORS",
                "is not True: QuerySet.iterator() would open a server-side cursor, which the next "
                "transaction's server connection does not have (cursor does not exist)",
            )
        )
    options = settings_dict.get("OPTIONS") or {}
    if options.get("prepare_threshold") is not None:
        conflicts.append(
            (
                "OPTIONS['prepare_threshold']",
                "is not None: psycopg would prepare statements on one server connection and run them on another "
                "(prepared statement does not exist)",
            )
        )
    if options.get("pool"):
        conflicts.append(
            (
                "OPTIONS['pool']",
                "is set: Django's psycopg pool keeps connections open in every process in front of the pooler, "
                "whose pool should be the only one",
            )
        )
    connect_args = (engine_options or {}).get("connect_args") or {}
    if connect_args.get("prepare_threshold") is not None:
        conflicts.append(
            (
                "SQLALCHEMY_ENGINE_OPTIONS['connect_args']['prepare_threshold']",
                "is not None: SQLAlchemy's psycopg connections would prepare statements",
            )
        )
    return conflicts


@register(TAG)
def check_poolers(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Report a setting PgBouncer's transaction mode breaks on an alias declared behind it (W008)."""
    messages: list[CheckMessage] = []
    for alias, settings_dict in conf.DATABASES.items():
        if pooler_of(alias) != "pgbouncer-transaction":
            continue
        from django_appdb.sqlalchemy.engines import engine_options

        try:
            global_options, app_options = engine_options(alias)
        except AppDatabaseConfigError:
            global_options, app_options = {}, {}  # E001/E005 report it
        merged = {"connect_args": {**global_options.get("connect_args", {}), **app_options.get("connect_args", {})}}
        for setting, why in _pooler_conflicts(settings_dict, merged):
            messages.append(
                CheckWarning(
                    f"database alias {alias!r} is declared behind 'pgbouncer-transaction' but {setting} {why}.",
                    hint=f"Remove {setting} from where it is set for {alias!r} (DATABASES, the app's database.py "
                    "or APPDB_SQLALCHEMY_ENGINE_OPTIONS), or declare 'pgbouncer-session' if the pooler runs in "
                    "session mode.",
                    id="django_appdb.W008",
                )
            )
    return messages


@register(TAG)
def check_environment(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Report ``<LABEL>_DATABASE_URL`` and ``<LABEL>_DATABASE_DIRECT_URL`` variables naming no installed app (W005)."""
    labels = {config.label for config in apps.get_app_configs()}
    messages: list[CheckMessage] = []
    for suffix, var_name, effect in (
        (ENV_SUFFIX, env_var_name, "moves nothing"),
        (DIRECT_ENV_SUFFIX, direct_env_var_name, "is used by no migration"),
    ):
        known = {var_name(label): label for label in labels}
        for name in sorted(os.environ):
            if not name.endswith(suffix) or name == suffix.lstrip("_") or name in known:
                continue
            if not os.environ[name].strip():
                continue
            label = name[: -len(suffix)].lower()
            # Compare the labels alone: the common suffix would make every name look close.
            close = difflib.get_close_matches(label, sorted(labels), n=1)
            messages.append(
                CheckWarning(
                    f"environment variable {name} is set, but no installed app has the label {label!r}, so it "
                    f"{effect}.",
                    hint=f"Did you mean {var_name(close[0])}?"
                    if close
                    else f"App database variables are <APP_LABEL>{suffix}; the installed labels are: "
                    f"{', '.join(sorted(labels))}.",
                    id="django_appdb.W005",
                )
            )
    return messages


@register(TAG)
def check_unused_module_settings(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Report a ``database.py`` whose settings apply to no database of the app's own (W006)."""
    messages: list[CheckMessage] = []
    wanted = _app_labels(app_configs)
    for label, record in app_databases().items():
        if (wanted is not None and label not in wanted) or record.source_kind != "default":
            continue
        try:
            declaration = declare(apps.get_app_config(label))
        except Exception:
            continue  # E001 reports a broken database.py
        unused = sorted(key for key in declaration.options if key != "SQLALCHEMY_ENGINE_OPTIONS")
        if declaration.source_kind == "default" and unused and declaration.module_path:
            messages.append(
                CheckWarning(
                    f"module {declaration.module_path} sets {', '.join(unused)}, but neither DATABASE_URL nor "
                    f"DATABASE_ALIAS, and {env_var_name(label)} is unset: app {label!r} is on the default database, "
                    "whose settings come from settings.DATABASES['default'], so these are ignored.",
                    hint="Add DATABASE_URL (or DATABASE_ALIAS) to give the app a database of its own, or set these in "
                    "DATABASES['default'].",
                    id="django_appdb.W006",
                )
            )
    return messages


# Under Django's database tag alone, as Django's own database checks: a check
# run by tag (check --tag django_appdb, and Django 6.1 then hands it every
# alias) must not connect to every database.
@register(Tags.database)
def check_recorded_migrations(
    app_configs: Sequence[AppConfig] | None = None, databases: Iterable[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report an app whose migrations a database records as applied while none of its tables exist (E006).

    The trap of moving an app onto a database whose ``django_migrations``
    already lists it (every database records every app's migrations):
    ``migrate`` then creates nothing and says all is applied. Runs only for
    the databases a command asks for (``migrate``, ``appdb_migrate``,
    ``check --database``): two queries per database.
    """
    from django.db import connections
    from django.db.migrations.recorder import MigrationRecorder

    messages: list[CheckMessage] = []
    wanted = _app_labels(app_configs)
    on_alias = databases_by_alias()
    for alias in databases or ():
        labels = [label for label in on_alias.get(alias, []) if wanted is None or label in wanted]
        if not labels or alias not in connections:
            continue
        connection = connections[alias]
        recorder = MigrationRecorder(connection)
        if not recorder.has_table():
            continue
        recorded = {app for app, _ in recorder.applied_migrations()}
        tables = set(connection.introspection.table_names())
        for label in labels:
            if label not in recorded:
                continue
            own = sorted(
                {
                    model._meta.db_table
                    for model in apps.get_app_config(label).get_models()
                    if model._meta.managed and not model._meta.proxy
                }
            )
            if own and not tables.intersection(own):
                messages.append(
                    Error(
                        f"app {label!r}: database alias {alias!r} records its migrations as applied, but none of its "
                        f"tables exist ({', '.join(own)}): migrate would create nothing. The app was probably moved "
                        "onto a database whose django_migrations already listed it.",
                        hint=f"Clear its records, then migrate it: python manage.py migrate {label} zero --fake "
                        f"--database={alias}, then python manage.py appdb_migrate {label}.",
                        id="django_appdb.E006",
                    )
                )
    return messages


@register(TAG)
def check_test_database_names(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Report test databases that are real databases, which the test runner would drop (E007)."""
    from django_appdb.testing import guard

    messages: list[CheckMessage] = []
    for alias, test_name, real in guard.colliding_test_databases():
        labels = sorted(label for label, record in app_databases().items() if record.alias == alias)
        whose = f" (apps: {', '.join(labels)})" if labels else ""
        itself = "its own real database" if real == alias else f"the real database of alias {real!r}"
        messages.append(
            Error(
                f"The test database {test_name!r} of database alias {alias!r}{whose} is {itself}: the test runner "
                "would delete (SQLite) or drop (servers) it, with its data, when it creates the test database.",
                hint="Give TEST['NAME'] (DATABASE_TEST in the app's database.py) a name of its own, or leave it out "
                "(Django then uses test_<NAME>, or memory for SQLite). Test runs refuse to start meanwhile.",
                id="django_appdb.E007",
            )
        )
    return messages
