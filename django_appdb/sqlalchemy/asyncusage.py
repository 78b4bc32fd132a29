"""Find what in the project uses SQLAlchemy's async side, and on which database, without running it.

The system check ``django_appdb.W004`` warns when one of these uses a
database whose async driver (greenlet, aiosqlite, psycopg) is missing, so a
base install (``pip install django-appdb``, no ``[async]`` extra) finds out
from ``manage.py check`` rather than from a 500 on the first request.

Two kinds of use are found:

* subclasses of :class:`~django_appdb.AsyncAppRepository` that have been
  imported (their app is known from ``app_label`` or ``model``);
* async views in the root URLconf whose module uses one of the async entry
  points (``get_app_session``, ``get_async_engine``, ...) or an async
  repository. Their database is that of every installed app label the
  view's code names as a string constant (``get_app_session("orders")``),
  or else that of the app the module belongs to.

Nothing here imports ``sqlalchemy.ext.asyncio`` or opens a connection.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from types import CodeType, ModuleType
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.apps import apps
from django.db import DEFAULT_DB_ALIAS

from django_appdb.state import state

__all__ = ["AsyncUse", "async_uses"]

# django_appdb's async entry points, by the module defining them.
_ENTRY_POINTS = {
    "django_appdb.sqlalchemy.engines": ("get_async_engine", "aclose_all_engines", "async_engines"),
    "django_appdb.sqlalchemy.sessions": ("get_app_session", "get_session", "get_async_sessionmaker"),
}


@dataclass(frozen=True)
class AsyncUse:
    """One place that uses an app database through SQLAlchemy's async side."""

    #: The Django database alias it uses.
    alias: str
    #: What uses it, for the reader: ``async view orders.views.order_list (/orders/)``.
    what: str
    #: The label of the installed app whose module holds it, if any.
    app_label: str | None = None


def _app_of(module_name: str) -> str | None:
    config = apps.get_containing_app_config(module_name)
    return config.label if config is not None else None


def _entry_points() -> list[Any]:
    found: list[Any] = []
    for module_name, names in _ENTRY_POINTS.items():
        module = sys.modules.get(module_name)
        if module is not None:
            found.extend(getattr(module, name) for name in names if hasattr(module, name))
    return found


def _async_repositories() -> list[type]:
    module = sys.modules.get("django_appdb.sqlalchemy.repositories")
    if module is None:
        return []
    seen: list[type] = []
    pending = list(module.AsyncAppRepository.__subclasses__())
    while pending:
        cls = pending.pop()
        if cls not in seen:
            seen.append(cls)
            pending.extend(cls.__subclasses__())
    return seen


def _alias_of_label(label: str) -> str | None:
    record = state.records.get(label)
    return record.alias if record is not None else None


def _repository_uses() -> Iterator[AsyncUse]:
    for cls in _async_repositories():
        label = getattr(cls, "app_label", "")
        alias = _alias_of_label(label) if label else None
        if alias is not None:
            yield AsyncUse(alias, f"{cls.__module__}.{cls.__qualname__}", _app_of(cls.__module__))


def _string_constants(code: CodeType) -> Iterator[str]:
    for constant in code.co_consts:
        if isinstance(constant, str):
            yield constant
        elif isinstance(constant, CodeType):
            # Nested functions and comprehensions.
            yield from _string_constants(constant)


def _view_patterns(patterns: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if hasattr(pattern, "url_patterns"):
            yield from _view_patterns(pattern.url_patterns, route)
        elif getattr(pattern, "callback", None) is not None:
            yield route, pattern.callback


def _is_async_view(callback: Any) -> bool:
    view_class = getattr(callback, "view_class", None)
    if view_class is not None:
        return bool(getattr(view_class, "view_is_async", False))
    return iscoroutinefunction(callback)


def _uses_async_side(module: ModuleType, entry_points: list[Any], repositories: list[type]) -> bool:
    values = vars(module).values()
    return any(value is entry for value in values for entry in entry_points) or any(
        value is repository for value in values for repository in repositories
    )


def _view_aliases(view: Any, module: ModuleType) -> set[str]:
    target = inspect.unwrap(view)
    view_class = getattr(view, "view_class", None)
    codes: list[CodeType] = []
    if view_class is not None:
        codes = [member.__code__ for member in vars(view_class).values() if hasattr(member, "__code__")]
    elif hasattr(target, "__code__"):
        codes = [target.__code__]
    aliases = {
        alias
        for code in codes
        for constant in _string_constants(code)
        if (alias := _alias_of_label(constant)) is not None
    }
    if aliases:
        return aliases
    label = _app_of(module.__name__)
    alias = _alias_of_label(label) if label is not None else None
    return {alias or DEFAULT_DB_ALIAS}


def _view_uses(urlconf: Any) -> Iterator[AsyncUse]:
    entry_points = _entry_points()
    repositories = _async_repositories()
    if not entry_points and not repositories:
        return
    for route, callback in _view_patterns(getattr(urlconf, "urlpatterns", ())):
        if not _is_async_view(callback):
            continue
        view = inspect.unwrap(getattr(callback, "view_class", callback))
        module = sys.modules.get(getattr(view, "__module__", "") or "")
        if module is None or not _uses_async_side(module, entry_points, repositories):
            continue
        name = f"{view.__module__}.{getattr(view, '__qualname__', view)}"
        for alias in sorted(_view_aliases(callback, module)):
            yield AsyncUse(alias, f"async view {name} (/{route})", _app_of(module.__name__))


def async_uses(urlconf: ModuleType | None = None) -> list[AsyncUse]:
    """Return every async use of an app database found in ``urlconf`` and the imported repositories.

    ``urlconf`` is the root URLconf module, already imported (the caller
    decides whether importing it is safe); None looks at repositories only.
    """
    uses: list[AsyncUse] = []
    if urlconf is not None:
        uses.extend(_view_uses(urlconf))
    uses.extend(_repository_uses())
    return list(dict.fromkeys(uses))
