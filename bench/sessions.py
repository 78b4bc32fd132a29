"""Benchmark 3: the SQLAlchemy engine registry and app sessions.

One project: ``s_app`` declares a SQLite file in ``database.py``; with
PostgreSQL, ``s_pg`` is routed to ``<name>_sessions`` by ``S_PG_DATABASE_URL``.
In one worker process:

* ``get_engine(label)`` and ``get_sessionmaker(label)`` on their hot path
  (already built), in µs per call, against a function returning a held
  engine or factory from a ``dict`` (CPU time; goal: at most 2x);
* one session opened, ``SELECT 1`` executed, committed and closed:
  ``async with get_app_session(label)`` against a bare
  ``async_sessionmaker(engine)``, and ``with get_sync_app_session(label)``
  against a bare ``sessionmaker(engine)``, on the same engine and with the
  same ``expire_on_commit=False`` (wall clock): the session machinery alone;
* the same sessions against what a user would otherwise write: an engine from
  ``create_engine(url)`` / ``create_async_engine(url)`` with SQLAlchemy's
  defaults and a ``sessionmaker`` on it, in wall clock and in process CPU
  time. This row includes the cost of the plugin's engine settings (on
  PostgreSQL, psycopg's prepared statements are turned off).

Ours and the baseline drive the same engine and ``Session`` classes, so they
can alternate in one process.
"""

from __future__ import annotations

import time
from typing import Any

from .project import App, Project, Worker, sqlite
from .report import Context, Row, time_row, unavailable
from .timing import Comparison, calibrate, compare, no_gc

GOAL = 1.05
#: Look-ups follow Django to its test databases, and still cost at most twice a held dict.
LOOKUP_GOAL = 2.0
#: The session options the registry's factories use, so only the wrapper differs.
SESSION_OPTIONS = {"expire_on_commit": False}
MODELS = """
class Note(models.Model):
    text = models.CharField(max_length=50)
"""


def available() -> str | None:
    """Worker side: return why the API is missing, or None."""
    from .sqla import unavailable_reason

    return unavailable_reason()


def _lookup_timer(function: Any, label: str) -> Any:
    def measure(n: int) -> int:
        with no_gc():
            start = time.thread_time_ns()
            for _ in range(n):
                function(label)
            return time.thread_time_ns() - start

    return measure


def _engine_timers(label: str) -> tuple[Any, Any]:
    from django_appdb.sqlalchemy.engines import get_engine

    engines = {label: get_engine(label)}

    def hand_get_engine(app_label: str) -> Any:
        return engines[app_label]

    return _lookup_timer(get_engine, label), _lookup_timer(hand_get_engine, label)


def _sessionmaker_timers(label: str) -> tuple[Any, Any]:
    from sqlalchemy.orm import sessionmaker

    from django_appdb.sqlalchemy.engines import get_engine
    from django_appdb.sqlalchemy.sessions import get_sessionmaker

    makers = {label: sessionmaker(get_engine(label), **SESSION_OPTIONS)}

    def hand_get_sessionmaker(app_label: str) -> Any:
        return makers[app_label]

    return _lookup_timer(get_sessionmaker, label), _lookup_timer(hand_get_sessionmaker, label)


def _user_url(label: str) -> Any:
    """The URL of ``label``'s database as SQLAlchemy's, password included (never printed)."""
    from django_appdb.sqlalchemy.engines import get_engine

    return get_engine(label).url


def _sync_session_timers(label: str, defaults: bool = False, clock: Any = time.perf_counter_ns) -> tuple[Any, Any]:
    """Ours against ``sessionmaker`` on our engine, or (``defaults``) on ``create_engine(url)`` as a user writes it."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import sessionmaker

    from django_appdb.sqlalchemy.engines import get_engine
    from django_appdb.sqlalchemy.sessions import get_sync_app_session

    select = text("SELECT 1")
    engine = create_engine(_user_url(label)) if defaults else get_engine(label)
    if defaults:
        _opened.append(engine)
    bare = sessionmaker(engine, **SESSION_OPTIONS)

    def ours(n: int) -> int:
        with no_gc():
            start = clock()
            for _ in range(n):
                with get_sync_app_session(label) as session:
                    session.execute(select)
            return clock() - start

    def baseline(n: int) -> int:
        with no_gc():
            start = clock()
            for _ in range(n):
                with bare() as session:
                    session.execute(select)
                    session.commit()
            return clock() - start

    return ours, baseline


#: Engines the baselines built, disposed of at the end of a measurement.
_opened: list[Any] = []


def _async_session_timers(
    label: str, loop: Any, defaults: bool = False, clock: Any = time.perf_counter_ns
) -> tuple[Any, Any]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from django_appdb.sqlalchemy.engines import get_async_engine
    from django_appdb.sqlalchemy.sessions import get_app_session

    select = text("SELECT 1")

    async def make_bare() -> Any:
        # Async engines belong to the running loop: get it from inside the loop.
        if defaults:
            # What a user writes: the async driver of the same database, SQLAlchemy's defaults.
            engine = create_async_engine(get_async_engine(label).url)
            _opened.append(engine)
            return async_sessionmaker(engine, **SESSION_OPTIONS)
        return async_sessionmaker(get_async_engine(label), **SESSION_OPTIONS)

    bare = loop.run_until_complete(make_bare())

    async def ours_loop(n: int) -> int:
        start = clock()
        for _ in range(n):
            async with get_app_session(label) as session:
                await session.execute(select)
        return clock() - start

    async def baseline_loop(n: int) -> int:
        start = clock()
        for _ in range(n):
            async with bare() as session:
                await session.execute(select)
                await session.commit()
        return clock() - start

    def ours(n: int) -> int:
        with no_gc():
            return loop.run_until_complete(ours_loop(n))

    def baseline(n: int) -> int:
        with no_gc():
            return loop.run_until_complete(baseline_loop(n))

    return ours, baseline


def measure(label: str, rounds: int, sample_ns: int) -> dict[str, dict[str, float]]:
    """Worker side: compare each operation with its baseline on ``label``'s database."""
    from django_appdb.sqlalchemy.engines import aclose_all_engines, close_all_engines

    from .sqla import new_loop

    loop = new_loop()
    results = {}
    try:
        timers = {
            "get_engine": _engine_timers(label),
            "get_sessionmaker": _sessionmaker_timers(label),
            "async_session": _async_session_timers(label, loop),
            "sync_session": _sync_session_timers(label),
            "async_defaults": _async_session_timers(label, loop, defaults=True),
            "async_defaults_cpu": _async_session_timers(label, loop, defaults=True, clock=time.process_time_ns),
            "sync_defaults": _sync_session_timers(label, defaults=True),
            "sync_defaults_cpu": _sync_session_timers(label, defaults=True, clock=time.process_time_ns),
        }
        for name, (ours, baseline) in timers.items():
            n = calibrate(baseline, sample_ns, limit=10_000_000 if name.startswith("get_") else 100_000)
            results[name] = compare(ours, baseline, rounds=rounds, n=n).as_dict()
    finally:
        for engine in _opened:
            if hasattr(engine, "sync_engine"):
                loop.run_until_complete(engine.dispose())
            else:
                engine.dispose()
        _opened.clear()
        loop.run_until_complete(aclose_all_engines())
        loop.close()
        close_all_engines()
    return results


def project(ctx: Context) -> tuple[Project, dict[str, str]]:
    """Return the project and ``{label: backend}`` for the labels to measure."""
    root = ctx.tmp / "sessions"
    apps = [App("s_app", MODELS, database_py=f"DATABASE_URL = 'sqlite:///{root / 's_app.sqlite3'}'\n")]
    labels = {"s_app": "SQLite"}
    env = {}
    if ctx.postgres is not None:
        env["S_PG_DATABASE_URL"] = ctx.postgres.fresh(["sessions"])["sessions"]
        apps.append(App("s_pg", MODELS))
        labels["s_pg"] = "PostgreSQL"
    proj = Project(
        root,
        installed_apps=["django_appdb", *(app.label for app in apps)],
        databases={"default": sqlite(root / "default.sqlite3")},
        apps=apps,
        env=env,
    )
    return proj.write(), labels


ROWS = {
    "get_engine": (
        "get_engine(label), engine already built",
        "function returning a held engine from a dict",
        LOOKUP_GOAL,
        "/call",
    ),
    "get_sessionmaker": (
        "get_sessionmaker(label), already built",
        "function returning a held sessionmaker from a dict",
        LOOKUP_GOAL,
        "/call",
    ),
    "async_session": (
        "async with get_app_session(label): execute, commit, close",
        "bare async_sessionmaker(engine)",
        GOAL,
        "/session",
    ),
    "sync_session": (
        "with get_sync_app_session(label): execute, commit, close",
        "bare sessionmaker(engine)",
        GOAL,
        "/session",
    ),
    "async_defaults": (
        "async with get_app_session(label) vs SQLAlchemy defaults, wall",
        "async_sessionmaker(create_async_engine(url)), SQLAlchemy's defaults",
        GOAL,
        "/session",
    ),
    "async_defaults_cpu": (
        "async with get_app_session(label) vs SQLAlchemy defaults, CPU",
        "async_sessionmaker(create_async_engine(url)), SQLAlchemy's defaults; process CPU time",
        GOAL,
        "/session",
    ),
    "sync_defaults": (
        "with get_sync_app_session(label) vs SQLAlchemy defaults, wall",
        "sessionmaker(create_engine(url)), SQLAlchemy's defaults",
        GOAL,
        "/session",
    ),
    "sync_defaults_cpu": (
        "with get_sync_app_session(label) vs SQLAlchemy defaults, CPU",
        "sessionmaker(create_engine(url)), SQLAlchemy's defaults; process CPU time",
        GOAL,
        "/session",
    ),
}


def run(ctx: Context) -> list[Row]:
    """Runner side: report "not available" rows when the engine registry is missing."""
    ctx.log("3: SQLAlchemy engine registry and sessions")
    proj, labels = project(ctx)
    with Worker(proj, "sessions") as worker:
        reason = worker.call("bench.sessions:available")
        if reason:
            return [
                unavailable("3", f"{what} ({backend})", reason, "report" if goal is None else f"<= {goal:.2f}x")
                for backend in labels.values()
                for what, _, goal, _ in ROWS.values()
            ]
        rows = []
        for label, backend in labels.items():
            results = worker.call(
                "bench.sessions:measure", label=label, rounds=ctx.budget.rounds, sample_ns=ctx.budget.sample_ns
            )
            for name, (what, baseline, goal, unit) in ROWS.items():
                rows.append(
                    time_row("3", f"{what} ({backend})", Comparison.from_dict(results[name]), baseline, goal, unit)
                )
    return rows
