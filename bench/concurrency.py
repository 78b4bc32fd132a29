"""Benchmark 5: 200 concurrent async sessions over 4 app databases on PostgreSQL.

Four apps (``c_1`` ... ``c_4``) each declare their own PostgreSQL database
(``<name>_c1`` ... ``<name>_c4``) in ``database.py``. 200 tasks each run a
series of sessions (``SELECT 1``, commit, close) against the app ``i % 4``:

* ours: ``async with get_app_session(label)``;
* the baseline: raw SQLAlchemy, one ``create_async_engine`` per database with
  the pool settings read back from ours, and ``async_sessionmaker``.

Before each timed burst, the other variant's pools are disposed (so the
server never holds both sets of connections) and an untimed burst refills
this variant's pools. Wall-clock time; throughput is sessions per second.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .project import App, Project, Worker, sqlite
from .report import Context, Row, fmt_ratio, unavailable
from .timing import Comparison, calibrate, compare

CONCURRENCY = 200
DATABASES = 4
GOAL = 0.95
MODELS = """
class Event(models.Model):
    name = models.CharField(max_length=50)
"""
LABELS = [f"c_{index}" for index in range(1, DATABASES + 1)]


def available() -> str | None:
    """Worker side: return why the API is missing, or None."""
    from .sqla import unavailable_reason

    return unavailable_reason()


def measure(rounds: int, sample_ns: int) -> dict[str, Any]:
    """Worker side: alternate bursts of ours and of raw engines; return per-task-iteration times."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from django_appdb.sqlalchemy.engines import aclose_all_engines, get_async_engine
    from django_appdb.sqlalchemy.sessions import get_app_session

    from .sqla import describe_pool, new_loop, pool_options

    select = text("SELECT 1")
    loop = new_loop()

    async def engines() -> dict[str, Any]:
        # Async engines belong to the running loop: get them from inside it.
        return {label: get_async_engine(label) for label in LABELS}

    ours_engines = loop.run_until_complete(engines())
    options = {label: pool_options(engine) for label, engine in ours_engines.items()}
    raw_engines = {label: create_async_engine(engine.url, **options[label]) for label, engine in ours_engines.items()}
    raw_makers = {label: async_sessionmaker(engine, expire_on_commit=False) for label, engine in raw_engines.items()}

    async def ours_session(label: str) -> None:
        async with get_app_session(label) as session:
            await session.execute(select)

    async def raw_session(label: str) -> None:
        async with raw_makers[label]() as session:
            await session.execute(select)
            await session.commit()

    async def burst(one_session: Any, per_task: int) -> int:
        async def task(index: int) -> None:
            label = LABELS[index % DATABASES]
            for _ in range(per_task):
                await one_session(label)

        start = time.perf_counter_ns()
        await asyncio.gather(*(task(index) for index in range(CONCURRENCY)))
        return time.perf_counter_ns() - start

    async def timed(one_session: Any, others: dict[str, Any], per_task: int) -> int:
        for engine in others.values():
            await engine.dispose()
        await burst(one_session, 2)
        return await burst(one_session, per_task)

    def ours(n: int) -> int:
        return loop.run_until_complete(timed(ours_session, raw_engines, n))

    def raw(n: int) -> int:
        return loop.run_until_complete(timed(raw_session, ours_engines, n))

    try:
        n = calibrate(raw, sample_ns, limit=1000)
        result = compare(ours, raw, rounds=rounds, n=n)
    finally:
        for engine in raw_engines.values():
            loop.run_until_complete(engine.dispose())
        loop.run_until_complete(aclose_all_engines())
        loop.close()
    return {"result": result.as_dict(), "pool": describe_pool(options[LABELS[0]])}


def project(ctx: Context) -> Project:
    """Return the project with four apps on four fresh PostgreSQL databases."""
    root = ctx.tmp / "concurrency"
    urls = ctx.postgres.fresh([f"c{index}" for index in range(1, DATABASES + 1)])
    apps = [
        App(label, MODELS, database_py=f"DATABASE_URL = {urls[f'c{index}']!r}\n")
        for index, label in enumerate(LABELS, start=1)
    ]
    return Project(
        root,
        installed_apps=["django_appdb", *LABELS],
        databases={"default": sqlite(root / "default.sqlite3")},
        apps=apps,
    ).write()


WHAT = f"{CONCURRENCY} concurrent async sessions over {DATABASES} PostgreSQL app databases"


def run(ctx: Context) -> list[Row]:
    """Runner side: needs PostgreSQL and the engine registry."""
    goal = f">= {GOAL:.2f}x throughput"
    if ctx.postgres is None:
        return [Row("5", WHAT, "not run", "-", "-", goal, "n/a: no PostgreSQL URL (--postgres-url)")]
    ctx.log("5: concurrency on PostgreSQL")
    with Worker(project(ctx), "concurrency") as worker:
        reason = worker.call("bench.concurrency:available")
        if reason:
            return [unavailable("5", WHAT, reason, goal)]
        answer = worker.call(
            "bench.concurrency:measure", rounds=ctx.budget.rounds, sample_ns=max(ctx.budget.sample_ns, 200_000_000)
        )
    result = Comparison.from_dict(answer["result"])
    # Per-iteration times cover CONCURRENCY sessions; throughput is the inverse ratio.
    ours_rate = CONCURRENCY / result.ours_ns * 1e9
    raw_rate = CONCURRENCY / result.baseline_ns * 1e9
    ratio = 1 / result.ratio
    return [
        Row(
            "5",
            WHAT,
            f"{ours_rate:,.0f} sessions/s",
            f"{raw_rate:,.0f} sessions/s (raw engines, {answer['pool']})",
            fmt_ratio(ratio, 1 / result.ratio_high, 1 / result.ratio_low),
            goal,
            "yes" if ratio >= GOAL else "no",
        )
    ]
