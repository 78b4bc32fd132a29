"""Worker-side helpers shared by the SQLAlchemy benchmarks (3 and 5).

They import nothing from ``django_appdb.sqlalchemy.engines`` or ``django_appdb.sqlalchemy.sessions``
at module level, so the runner can report those benchmarks as not available
when the modules are missing, instead of crashing.
"""

from __future__ import annotations

import asyncio
from typing import Any

#: The names the benchmarks use, by module.
API = {
    "django_appdb.sqlalchemy.engines": ("get_engine", "get_async_engine", "close_all_engines", "aclose_all_engines"),
    "django_appdb.sqlalchemy.sessions": ("get_app_session", "get_sync_app_session"),
}


def unavailable_reason() -> str | None:
    """Return why the engine and session API cannot be used here, or None if it can."""
    from importlib import import_module
    from pathlib import Path

    import django_appdb

    package = Path(django_appdb.__file__).resolve().parent
    for module_name, names in API.items():
        try:
            module = import_module(module_name)
        except ImportError as exc:
            return f"{module_name} does not import ({exc})"
        # An editable install of another checkout can supply a submodule this one lacks.
        if not Path(module.__file__ or "").resolve().is_relative_to(package):
            return f"{module_name} is not part of this checkout (found {module.__file__})"
        missing = [name for name in names if not hasattr(module, name)]
        if missing:
            return f"{module_name} lacks {', '.join(missing)}"
    return None


def pool_options(engine: Any) -> dict[str, Any]:
    """Return ``create_engine`` keyword arguments that rebuild ``engine``'s pool settings.

    Read back from the pool itself, so the raw baseline gets whatever the
    registry chose (defaults, project options, per-app options).
    """
    pool = getattr(engine, "sync_engine", engine).pool
    options: dict[str, Any] = {"poolclass": type(pool)}
    if hasattr(pool, "_max_overflow"):  # QueuePool and its async variant
        options.update(
            pool_size=pool._pool.maxsize,
            max_overflow=pool._max_overflow,
            pool_timeout=pool._timeout,
            pool_use_lifo=pool._pool.use_lifo,
        )
    options.update(pool_recycle=pool._recycle, pool_pre_ping=pool._pre_ping)
    return options


def describe_pool(options: dict[str, Any]) -> str:
    """Return the pool settings as short text for the table."""
    shown = {key: value for key, value in options.items() if key != "poolclass"}
    return f"{options['poolclass'].__name__}({', '.join(f'{k}={v}' for k, v in shown.items())})"


def new_loop() -> asyncio.AbstractEventLoop:
    """Return a fresh event loop for timing coroutines from synchronous code."""
    return asyncio.new_event_loop()
