"""Django's native psycopg pool for an app database: declared in ``database.py`` or the URL, checked, in ``OPTIONS``.

Django 5.1+ pools PostgreSQL connections (psycopg 3 and ``psycopg_pool``)
when ``OPTIONS["pool"]`` is set. An app declares it with
``DATABASE_POOL = True`` (or a dict of ``psycopg_pool.ConnectionPool``
arguments) in ``database.py``, or with URL query options:
``?pool=true&pool_max_size=10``. The URL's options win over the module's,
key by key; ``?pool=false`` turns a module's pool off. Nothing here connects.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

from django_appdb.dburls import builtin_vendor, mask_url
from django_appdb.discovery import Declaration
from django_appdb.exceptions import AppDatabaseConfigError

__all__ = ["DEFAULT_MIN_SIZE", "URL_OPTIONS", "apply_pool", "pool_max_size", "take_url_pool"]

#: The URL query option that turns the pool on, and the prefix of the others (``pool_max_size``).
URL_SWITCH = "pool"
URL_PREFIX = "pool_"

#: ``ConnectionPool`` arguments a URL may give (as ``pool_<name>``), with their types.
URL_OPTIONS: dict[str, type] = {
    "min_size": int,
    "max_size": int,
    "timeout": float,
    "max_waiting": int,
    "max_lifetime": float,
    "max_idle": float,
    "reconnect_timeout": float,
    "num_workers": int,
    "name": str,
}
#: Further arguments only ``database.py`` can give (objects, not text).
MODULE_ONLY_OPTIONS = ("reset", "reconnect_failed", "connection_class", "close_returns")
#: Arguments Django passes itself, so a declaration may not.
DJANGO_SETS = ("conninfo", "kwargs", "open", "configure", "check")
#: psycopg_pool's ``min_size`` default; ``max_size`` defaults to ``min_size``.
DEFAULT_MIN_SIZE = 4

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def _switch(declaration: Declaration, value: Any) -> bool:
    text = str(value).strip().lower()
    if isinstance(value, bool):
        return value
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise AppDatabaseConfigError(
        declaration.label,
        declaration.where,
        f"the URL's query option pool={value!r} is not true or false.",
        "Write ?pool=true (with pool_max_size=..., pool_min_size=...) or ?pool=false.",
    )


def _typed(declaration: Declaration, name: str, value: Any, wanted: type) -> Any:
    if wanted is str:
        return str(value)
    converted: int | float | None = None
    if isinstance(value, (bool, list)):
        pass
    elif wanted is int:
        converted = value if isinstance(value, int) else None
    else:
        try:
            converted = float(value)
        except (TypeError, ValueError):
            converted = None
    if converted is None:
        kind = "a whole number" if wanted is int else "a number"
        raise AppDatabaseConfigError(
            declaration.label,
            declaration.where,
            f"the URL's query option {URL_PREFIX}{name}={value!r} is not {kind}.",
            f"Write it as ?{URL_PREFIX}{name}=10.",
        )
    return converted


def take_url_pool(declaration: Declaration, options: dict[str, Any]) -> bool | dict[str, Any] | None:
    """Remove the pool query options (``pool``, ``pool_*``) from a parsed URL's ``OPTIONS``; return what they declare.

    None when the URL says nothing about a pool, False for ``?pool=false``,
    else the pool's arguments (``pool_*`` options alone turn it on too).
    """
    switch = options.pop(URL_SWITCH, None)
    arguments: dict[str, Any] = {}
    for key in [key for key in options if key.startswith(URL_PREFIX)]:
        name = key[len(URL_PREFIX) :]
        if name not in URL_OPTIONS:
            raise AppDatabaseConfigError(
                declaration.label,
                declaration.where,
                f"{mask_url(declaration.url or '')!r} has the unknown query option {key!r}.",
                f"Valid pool options are: {', '.join(URL_PREFIX + option for option in URL_OPTIONS)}.",
            )
        arguments[name] = _typed(declaration, name, options.pop(key), URL_OPTIONS[name])
    if switch is None:
        return arguments or None
    if not _switch(declaration, switch):
        if arguments:
            raise AppDatabaseConfigError(
                declaration.label,
                declaration.where,
                f"the URL says pool=false but also gives {', '.join(URL_PREFIX + name for name in arguments)}.",
                "Remove pool=false to use the pool, or the pool_* options to go without.",
            )
        return False
    return arguments


def _check_arguments(declaration: Declaration, where: str, arguments: Mapping[str, Any]) -> None:
    valid = (*URL_OPTIONS, *MODULE_ONLY_OPTIONS)
    for key, value in arguments.items():
        if key in DJANGO_SETS:
            raise AppDatabaseConfigError(
                declaration.label, where, f"the pool argument {key!r} is set by Django itself.", "Remove it."
            )
        if key not in valid:
            raise AppDatabaseConfigError(
                declaration.label,
                where,
                f"{key!r} is not a psycopg_pool.ConnectionPool argument.",
                f"Valid pool arguments are: {', '.join(valid)}.",
            )
        wanted = URL_OPTIONS.get(key)
        if wanted is int and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise AppDatabaseConfigError(
                declaration.label, where, f"the pool's {key} must be a whole number >= 0, got {value!r}."
            )
        if wanted is float and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise AppDatabaseConfigError(
                declaration.label, where, f"the pool's {key} must be a positive number of seconds, got {value!r}."
            )
    min_size = arguments.get("min_size", DEFAULT_MIN_SIZE)
    max_size = arguments.get("max_size")
    if max_size is not None and (max_size < 1 or max_size < min_size):
        raise AppDatabaseConfigError(
            declaration.label,
            where,
            f"the pool's max_size ({max_size}) must be at least 1 and at least its min_size ({min_size}).",
            "Raise max_size, or lower min_size (psycopg_pool's default min_size is 4).",
        )


def apply_pool(declaration: Declaration, settings_dict: dict[str, Any], from_url: bool | dict[str, Any] | None) -> None:
    """Set ``settings_dict["OPTIONS"]["pool"]`` from ``DATABASE_POOL`` and the URL's options; raise on a bad pool.

    Only PostgreSQL with psycopg 3 and ``psycopg_pool`` has Django's native
    pool, and Django refuses it with persistent connections, so a pool with
    another engine, without the driver, or with a ``CONN_MAX_AGE`` other than
    0 is an error rather than a setting silently dropped.
    """
    options = settings_dict.setdefault("OPTIONS", {})
    module_where = f"module {declaration.module_path} (DATABASE_POOL)"
    declared = declaration.options.get("DATABASE_POOL")
    if declared is not None and options.get("pool") not in (None, False):
        raise AppDatabaseConfigError(
            declaration.label,
            module_where,
            "the pool is declared twice: in DATABASE_POOL and in DATABASE_OPTIONS['pool'].",
            "Keep DATABASE_POOL and remove 'pool' from DATABASE_OPTIONS.",
        )
    value: Any = declared if declared is not None else options.get("pool")
    where = module_where if declared is not None else declaration.where
    if isinstance(value, dict):
        _check_arguments(declaration, where, value)
    if from_url is False:
        value = False
    elif isinstance(from_url, dict):
        value = {**(value if isinstance(value, dict) else {}), **from_url}
        where = declaration.where
        _check_arguments(declaration, where, value)
    if value is None:
        return
    if value is False:
        options["pool"] = False
        return
    if value is not True and not isinstance(value, dict):
        raise AppDatabaseConfigError(
            declaration.label, where, f"the pool must be True or a dict of pool arguments, got {type(value).__name__}."
        )
    engine = str(settings_dict.get("ENGINE") or "")
    if builtin_vendor(engine) != "postgresql":
        raise AppDatabaseConfigError(
            declaration.label,
            where,
            f"declares Django's native connection pool, but the database uses {engine or 'no ENGINE'}: "
            "only PostgreSQL (with psycopg 3) has one.",
            "Remove the pool, or use a postgresql:// database.",
        )
    for module, what in (("psycopg", "psycopg 3"), ("psycopg_pool", "psycopg_pool")):
        if importlib.util.find_spec(module) is None:
            raise AppDatabaseConfigError(
                declaration.label,
                where,
                f"declares Django's native connection pool, which needs {what}, and it is not installed.",
                "Install it: pip install 'django-appdb[pool]' (psycopg[binary,pool]).",
            )
    max_age = settings_dict.get("CONN_MAX_AGE", 0)
    if max_age != 0:
        raise AppDatabaseConfigError(
            declaration.label,
            where,
            f"declares Django's native connection pool with CONN_MAX_AGE = {max_age!r}; Django refuses a pool "
            "with persistent connections.",
            "Set CONN_MAX_AGE = 0 in the app's database.py (the pool keeps the connections open), or remove the pool.",
        )
    options["pool"] = dict(value) if isinstance(value, dict) else True


def pool_max_size(pool: Any) -> int | None:
    """Return how many connections Django's native pool ``OPTIONS["pool"]`` opens at most; None for no pool."""
    if not pool:
        return None
    arguments = pool if isinstance(pool, Mapping) else {}
    min_size = arguments.get("min_size", DEFAULT_MIN_SIZE)
    max_size = arguments.get("max_size")
    return int(max_size if max_size is not None else min_size)
