"""Benchmark 8: a SQLAlchemy request on PostgreSQL, with and without a pooler declared.

Needs PostgreSQL (``--postgres-url``); the PgBouncer rows also need
``APPDB_TEST_PGBOUNCER_URL`` (``eval "$(bash .ci/pgbouncer.sh env)"``), a
PgBouncer in transaction mode in front of that server. In one worker process,
a request is one session that reads a row by primary key three times (so
psycopg's prepare threshold matters over a run), commits and closes:

* no pooler declared: ``sessionmaker(get_engine(label))``, the package's
  engine, against ``sessionmaker(create_engine(url))`` with SQLAlchemy's
  defaults on the same database, in wall clock and in process CPU time (goal:
  at most 1.02x). The session wrapper is benchmark 3's; here only the
  engines differ;
* declared behind PgBouncer (``?appdb_pooler=pgbouncer-transaction``): the
  same against an engine a user would configure for PgBouncer by hand,
  ``create_engine(url, poolclass=NullPool, connect_args={"prepare_threshold": None})``.

Ours and the baseline drive the same ``Session`` class and ``sessionmaker``
options against the same database, so they alternate in one process.
"""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .project import App, Project, Worker, sqlite
from .report import Context, Row, time_row, unavailable
from .timing import Comparison, calibrate, compare, no_gc

GOAL = 1.02
MODELS = """
class Note(models.Model):
    text = models.CharField(max_length=50)
"""
SESSION_OPTIONS = {"expire_on_commit": False}


def available() -> str | None:
    """Worker side: return why the API is missing, or None."""
    from .sqla import unavailable_reason

    return unavailable_reason()


def _timers(label: str, behind_pooler: bool, clock: Any) -> tuple[Any, Any, Any]:
    from sqlalchemy import create_engine, pool, text
    from sqlalchemy.orm import sessionmaker

    from django_appdb.sqlalchemy.engines import get_engine
    from django_appdb.sqlalchemy.sessions import get_sync_app_session

    package_engine = get_engine(label)
    url = package_engine.url
    if behind_pooler:
        engine = create_engine(url, poolclass=pool.NullPool, connect_args={"prepare_threshold": None})
    else:
        engine = create_engine(url)
    bare = sessionmaker(engine, **SESSION_OPTIONS)
    # The same Session factory on the package's engine: only the engines differ.
    package = sessionmaker(package_engine, **SESSION_OPTIONS)
    select = text(f"SELECT id, text FROM {label}_note WHERE id = :id")
    with get_sync_app_session(label) as session:
        session.execute(text(f"CREATE TABLE IF NOT EXISTS {label}_note (id serial PRIMARY KEY, text varchar(50))"))
        session.execute(text(f"TRUNCATE {label}_note RESTART IDENTITY"))
        session.execute(text(f"INSERT INTO {label}_note (text) SELECT 'n' || i FROM generate_series(1, 100) i"))

    def ours(n: int) -> int:
        with no_gc():
            start = clock()
            for i in range(n):
                with package() as session:
                    for j in range(3):
                        session.execute(select, {"id": 1 + (i + j) % 100}).one()
                    session.commit()
            return clock() - start

    def baseline(n: int) -> int:
        with no_gc():
            start = clock()
            for i in range(n):
                with bare() as session:
                    for j in range(3):
                        session.execute(select, {"id": 1 + (i + j) % 100}).one()
                    session.commit()
            return clock() - start

    return ours, baseline, engine


def measure(label: str, behind_pooler: bool, rounds: int, sample_ns: int) -> dict[str, dict[str, float]]:
    """Worker side: compare a request through our engine with the baseline engine, wall and CPU."""
    from django_appdb.sqlalchemy.engines import close_all_engines

    results = {}
    engines = []
    try:
        for name, clock in (("wall", time.perf_counter_ns), ("cpu", time.process_time_ns)):
            ours, baseline, engine = _timers(label, behind_pooler, clock)
            engines.append(engine)
            n = calibrate(baseline, sample_ns, limit=100_000)
            results[name] = compare(ours, baseline, rounds=rounds, n=n).as_dict()
    finally:
        for engine in engines:
            engine.dispose()
        close_all_engines()
    return results


def _pgbouncer_url(direct_url: str) -> str | None:
    """Return ``direct_url`` with the host and port of ``APPDB_TEST_PGBOUNCER_URL``, or None when it is unset."""
    pgbouncer = os.environ.get("APPDB_TEST_PGBOUNCER_URL", "").strip()
    if not pgbouncer:
        return None
    parts = urlsplit(direct_url)
    netloc = parts.netloc.rsplit("@", 1)
    host = urlsplit(pgbouncer).netloc.rsplit("@", 1)[-1]
    netloc[-1] = host
    return urlunsplit((parts.scheme, "@".join(netloc), parts.path, "appdb_pooler=pgbouncer-transaction", ""))


ROWS = {
    "wall": ("vs SQLAlchemy's defaults, wall", "sessionmaker(create_engine(url))"),
    "cpu": ("vs SQLAlchemy's defaults, CPU", "sessionmaker(create_engine(url)); process CPU time"),
}
POOLER_ROWS = {
    "wall": ("vs an engine configured for PgBouncer by hand, wall", "create_engine(url, NullPool, no prepare)"),
    "cpu": (
        "vs an engine configured for PgBouncer by hand, CPU",
        "create_engine(url, NullPool, no prepare); process CPU time",
    ),
}
WHAT = "SQLAlchemy request (3 reads by pk) on the package's engine"


def run(ctx: Context) -> list[Row]:
    """Runner side: the no-pooler rows need PostgreSQL, the PgBouncer rows PgBouncer too."""
    ctx.log("8: SQLAlchemy request on PostgreSQL, no pooler and behind PgBouncer")
    goal = f"<= {GOAL:.2f}x"
    plain = [f"{WHAT}, no pooler, {what}" for what, _ in ROWS.values()]
    pooled = [f"{WHAT}, behind PgBouncer, {what}" for what, _ in POOLER_ROWS.values()]
    if ctx.postgres is None:
        return [unavailable("8", what, "no PostgreSQL (--postgres-url)", goal) for what in plain + pooled]
    root = ctx.tmp / "pooler"
    urls = ctx.postgres.fresh(["pooler_plain", "pooler_pgb"])
    apps = [App("p_plain", MODELS)]
    env = {"P_PLAIN_DATABASE_URL": urls["pooler_plain"]}
    pgbouncer = _pgbouncer_url(urls["pooler_pgb"])
    if pgbouncer is not None:
        apps.append(App("p_pgb", MODELS))
        env["P_PGB_DATABASE_URL"] = pgbouncer
    proj = Project(
        root,
        installed_apps=["django_appdb", *(app.label for app in apps)],
        databases={"default": sqlite(root / "default.sqlite3")},
        apps=apps,
        env=env,
    ).write()
    rows = []
    with Worker(proj, "pooler") as worker:
        reason = worker.call("bench.pooler:available")
        if reason:
            return [unavailable("8", what, reason, goal) for what in plain + pooled]
        labels = [("p_plain", False, ROWS, plain)]
        if pgbouncer is not None:
            labels.append(("p_pgb", True, POOLER_ROWS, pooled))
        for label, behind, names, whats in labels:
            results = worker.call(
                "bench.pooler:measure",
                label=label,
                behind_pooler=behind,
                rounds=ctx.budget.rounds,
                sample_ns=ctx.budget.sample_ns,
            )
            for (name, (_, baseline)), what in zip(names.items(), whats, strict=True):
                rows.append(time_row("8", what, Comparison.from_dict(results[name]), baseline, GOAL, "/request"))
    if pgbouncer is None:
        rows += [unavailable("8", what, "APPDB_TEST_PGBOUNCER_URL is not set", goal) for what in pooled]
    return rows
