"""Worker side of the load and fault scenarios: runs inside a Django process of the generated project.

Every function here is called through :class:`bench.project.Worker` and
returns JSON-ready data. Writes go through three paths -- the Django ORM in
long-lived threads (each unit of work wrapped in ``close_old_connections()``,
as Django wraps a request), a sync ``get_sync_app_session`` and an async
``get_app_session`` -- and every outcome is recorded, so the runner can
compare what was acknowledged with what the databases hold.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import json
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

LABELS = ("ledger", "events", "audit", "notes")
MODEL = "Entry"
#: The rounds written after the fault, by every path to every app.
AFTER = ("after", "again")


class Rollback(Exception):
    """Raised inside a unit of work that must leave nothing behind."""


# --- long-lived ORM threads -------------------------------------------------


class Lane(threading.Thread):
    """A thread that runs the functions it is given, keeping its Django connections between them."""

    def __init__(self, index: int) -> None:
        super().__init__(name=f"orm-{index}", daemon=True)
        self.index = index
        self.jobs: queue.Queue[tuple[Callable[[], Any], concurrent.futures.Future[Any]] | None] = queue.Queue()
        self.start()

    def run(self) -> None:
        while (job := self.jobs.get()) is not None:
            function, future = job
            try:
                future.set_result(function())
            except BaseException as exc:
                future.set_exception(exc)

    def submit(self, function: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.jobs.put((function, future))
        return future

    def stop(self) -> None:
        from django.db import connections

        self.submit(connections.close_all).result()
        self.jobs.put(None)
        self.join()


_lanes: list[Lane] = []
_loop: asyncio.AbstractEventLoop | None = None


def lanes(count: int) -> list[Lane]:
    """Return ``count`` ORM threads, started on first use and kept between calls."""
    while len(_lanes) < count:
        _lanes.append(Lane(len(_lanes)))
    return _lanes[:count]


def loop() -> asyncio.AbstractEventLoop:
    """Return the event loop kept between calls, so async pools outlive one call."""
    global _loop
    if _loop is None:
        _loop = asyncio.new_event_loop()
    return _loop


# --- outcomes ------------------------------------------------------------------


class Outcomes:
    """What happened to every write: acknowledged, rolled back on purpose, or failed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acknowledged: list[list[Any]] = []
        self.rolled_back: list[list[Any]] = []
        self.failed: list[dict[str, Any]] = []

    def record(self, key: list[Any], started: float, error: BaseException | None, rollback: bool) -> None:
        from django_appdb.dburls import mask_text

        with self.lock:
            if error is None:
                (self.rolled_back if rollback else self.acknowledged).append([*key, started])
            else:
                self.failed.append(
                    {
                        "key": key,
                        "started": started,
                        "error": type(error).__name__,
                        "message": mask_text(" ".join(str(error).split()))[:300],
                    }
                )

    def count(self) -> int:
        with self.lock:
            return len(self.acknowledged) + len(self.rolled_back)

    def as_dict(self) -> dict[str, Any]:
        return {"acknowledged": self.acknowledged, "rolled_back": self.rolled_back, "failed": self.failed}


def _model(label: str) -> Any:
    from django.apps import apps

    return apps.get_model(label, MODEL)


def orm_write(label: str, writer: str, seq: int, rollback: bool) -> None:
    """Write one row with the ORM as one unit of work (like one request)."""
    from django.db import close_old_connections, router, transaction

    model = _model(label)
    close_old_connections()
    try:
        with transaction.atomic(using=router.db_for_write(model)):
            model.objects.create(origin=label, writer=writer, seq=seq)
            if rollback:
                raise Rollback
    finally:
        close_old_connections()


def session_write(label: str, writer: str, seq: int, rollback: bool) -> None:
    """Write one row through ``get_sync_app_session``."""
    from sqlalchemy import insert

    from django_appdb import get_sync_app_session, table_for

    with get_sync_app_session(label) as session:
        session.execute(insert(table_for(_model(label))).values(origin=label, writer=writer, seq=seq))
        if rollback:
            raise Rollback


async def async_write(label: str, writer: str, seq: int, rollback: bool) -> None:
    """Write one row through ``get_app_session``."""
    from sqlalchemy import insert

    from django_appdb import get_app_session, table_for

    async with get_app_session(label) as session:
        await session.execute(insert(table_for(_model(label))).values(origin=label, writer=writer, seq=seq))
        if rollback:
            raise Rollback


def attempt(outcomes: Outcomes, write: Callable[..., None], label: str, writer: str, seq: int, rollback: bool) -> None:
    started = time.monotonic()
    try:
        write(label, writer, seq, rollback)
    except Rollback:
        outcomes.record([label, writer, seq], started, None, True)
    except Exception as exc:
        outcomes.record([label, writer, seq], started, exc, rollback)
    else:
        outcomes.record([label, writer, seq], started, None, rollback)


async def attempt_async(outcomes: Outcomes, label: str, writer: str, seq: int, rollback: bool) -> None:
    started = time.monotonic()
    try:
        await async_write(label, writer, seq, rollback)
    except Rollback:
        outcomes.record([label, writer, seq], started, None, True)
    except Exception as exc:
        outcomes.record([label, writer, seq], started, exc, rollback)
    else:
        outcomes.record([label, writer, seq], started, None, rollback)


# --- set-up and inspection ------------------------------------------------------


def prepare() -> dict[str, Any]:
    """Create every app's table in its own database (migrate), and trap copies in every other one.

    A row routed to the wrong database lands in a trap table instead of
    failing, so the runner can count it.
    """
    from django.core.management import call_command
    from django.db import connections

    for alias in connections:
        call_command("migrate", database=alias, run_syncdb=True, interactive=False, verbosity=0)
    for alias in connections:
        existing = set(connections[alias].introspection.table_names())
        with connections[alias].schema_editor() as editor:
            for label in LABELS:
                model = _model(label)
                if model._meta.db_table not in existing:
                    editor.create_model(model)
    connections.close_all()
    return where()


def where() -> dict[str, Any]:
    """Return each app's alias, the name of the database Django uses for it, and its table."""
    from django.db import connections, router

    result = {}
    for label in LABELS:
        alias = router.db_for_write(_model(label))
        result[label] = {
            "alias": alias,
            "name": connections.settings[alias]["NAME"],
            "table": _model(label)._meta.db_table,
        }
    return result


def pool_state() -> dict[str, int]:
    """Return how many connections each sync engine built so far has checked out."""
    from django_appdb.sqlalchemy.engines import engines

    return {repr(engine.url): engine.pool.checkedout() for engine in engines.all(initialized_only=True)}


async def async_pool_state() -> dict[str, int]:
    """Return how many connections each async engine of the running loop has checked out."""
    from django_appdb import get_async_engine

    state = {}
    for label in LABELS:
        engine = get_async_engine(label)
        state[repr(engine.url)] = engine.pool.checkedout()
    return state


def activity(maintenance_url: str, databases: Iterable[str]) -> dict[str, int]:
    """Return ``{state: number of sessions}`` of the client sessions on ``databases``."""
    import psycopg

    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT coalesce(state, '?'), count(*) FROM pg_stat_activity "
            "WHERE datname = ANY(%s) AND backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1",
            [list(databases)],
        ).fetchall()
    return {state: count for state, count in rows}


def close() -> None:
    """Close every Django connection (in every ORM thread) and every pooled SQLAlchemy connection."""
    from django.db import connections

    from django_appdb import aclose_all_engines, close_all_engines

    global _loop
    while _lanes:
        _lanes.pop().stop()
    if _loop is not None:
        # What asyncio.run() does on the way out: the async engines go with their loop.
        _loop.run_until_complete(aclose_all_engines())
        _loop.run_until_complete(_loop.shutdown_asyncgens())
        _loop.run_until_complete(_loop.shutdown_default_executor())
        _loop.close()
        _loop = None
    close_all_engines()
    connections.close_all()


# --- scenarios ---------------------------------------------------------------------


def _rollback(index: int, every: int) -> bool:
    return every > 0 and index % every == every - 1


def load(
    threads: int,
    writes_per_thread: int,
    tasks: int,
    sessions_per_task: int,
    rollback_every: int,
    maintenance_url: str,
    databases: list[str],
) -> dict[str, Any]:
    """Write concurrently from ``threads`` ORM threads and ``tasks`` async sessions, across every app.

    One ORM write in four goes through ``get_sync_app_session`` instead;
    one write in ``rollback_every`` raises inside its unit of work. Once
    everything has finished, and before any pool is closed, report what each
    pool still has checked out and what state the server sees each session in.
    """
    outcomes = Outcomes()

    def orm_thread(index: int) -> None:
        for n in range(writes_per_thread):
            path, write = ("session", session_write) if n % 4 == 3 else ("orm", orm_write)
            label = LABELS[(index + n) % len(LABELS)]
            attempt(outcomes, write, label, f"{path}-{index}", n, _rollback(n, rollback_every))

    async def task(index: int) -> None:
        for m in range(sessions_per_task):
            label = LABELS[(index + m) % len(LABELS)]
            await attempt_async(
                outcomes, label, f"async-{index}", m, _rollback(index * sessions_per_task + m, rollback_every)
            )

    async def main() -> dict[str, Any]:
        futures = [lane.submit(lambda i=lane.index: orm_thread(i)) for lane in lanes(threads)]
        await asyncio.gather(*(task(index) for index in range(tasks)))
        for future in futures:
            await asyncio.wrap_future(future)
        return {
            "async_checked_out": await async_pool_state(),
            "sync_checked_out": pool_state(),
            "activity": await asyncio.to_thread(activity, maintenance_url, databases),
        }

    state = loop().run_until_complete(main())
    return {**outcomes.as_dict(), **state}


def _terminate(maintenance_url: str, database: str) -> tuple[int, float]:
    """Terminate every session on ``database``; wait until they are gone. Return (how many, when done)."""
    import psycopg

    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        pids = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database]
            ).fetchall()
        ]
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", [pid])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            left = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [pids]).fetchone()
            if left is not None and left[0] == 0:
                break
            time.sleep(0.01)
    return len(pids), time.monotonic()


def survive_termination(
    victim: str,
    maintenance_url: str,
    threads: int,
    writes_per_thread: int,
    tasks: int,
    sessions_per_task: int,
    kill_after: int,
) -> dict[str, Any]:
    """Write from ORM threads and async sessions; terminate every session of ``victim``'s database mid-run.

    Phase 1 writes everywhere; once ``kill_after`` writes are acknowledged,
    every server session of the target database is terminated (the ORM
    threads' connections and both pools' ones among them) and the run goes on.
    Phase 2 then writes twice more (``AFTER``) through every path to every
    app, on the same threads, pools and event loop. Each failure is reported with the
    time its unit of work started, so the runner can tell writes in flight
    when the sessions died from writes begun afterwards.
    """
    if kill_after >= threads * writes_per_thread + tasks * sessions_per_task:
        raise ValueError("kill_after must be below the number of writes of phase 1, or the fault never comes")
    outcomes = Outcomes()
    phase_two = threading.Event()
    fault: dict[str, Any] = {}
    database = where()[victim]["name"]

    def orm_thread(index: int) -> None:
        for n in range(writes_per_thread):
            path, write = ("session", session_write) if n % 3 == 2 else ("orm", orm_write)
            attempt(outcomes, write, LABELS[(index + n) % len(LABELS)], f"{path}-{index}", n, False)
        phase_two.wait()
        for phase in AFTER:
            for n, label in enumerate(LABELS):
                attempt(outcomes, orm_write, label, f"orm-{index}-{phase}", n, False)
                attempt(outcomes, session_write, label, f"session-{index}-{phase}", n, False)

    async def task(index: int) -> None:
        for m in range(sessions_per_task):
            await attempt_async(outcomes, LABELS[(index + m) % len(LABELS)], f"async-{index}", m, False)
            await asyncio.sleep(0)

    async def killer() -> None:
        while outcomes.count() < kill_after:
            await asyncio.sleep(0.005)
        fault["started"] = time.monotonic()
        fault["terminated"], fault["over"] = await asyncio.to_thread(_terminate, maintenance_url, database)

    async def main() -> None:
        futures = [lane.submit(lambda i=lane.index: orm_thread(i)) for lane in lanes(threads)]
        await asyncio.gather(killer(), *(task(index) for index in range(tasks)))
        phase_two.set()
        for phase in AFTER:
            await asyncio.gather(
                *(
                    attempt_async(outcomes, label, f"async-{index}-{phase}", n, False)
                    for index in range(tasks)
                    for n, label in enumerate(LABELS)
                )
            )
        for future in futures:
            await asyncio.wrap_future(future)

    loop().run_until_complete(main())
    return {
        **outcomes.as_dict(),
        "fault": fault,
        "database": database,
        "sync_checked_out": pool_state(),
        "async_checked_out": loop().run_until_complete(async_pool_state()),
    }


def write_round(tag: str, threads: int, per_label: int, tasks: int) -> dict[str, Any]:
    """Write ``per_label`` rows to every app from each ORM thread (ORM and sync session) and each async task.

    The threads, pools and event loop are those of earlier calls, so a
    server that went away in between is met through connections that were
    open before.
    """
    outcomes = Outcomes()

    def orm_thread(index: int) -> None:
        for n in range(per_label):
            for label in LABELS:
                attempt(outcomes, orm_write, label, f"orm-{tag}-{index}", n, False)
                attempt(outcomes, session_write, label, f"session-{tag}-{index}", n, False)

    async def main() -> None:
        futures = [lane.submit(lambda i=lane.index: orm_thread(i)) for lane in lanes(threads)]
        await asyncio.gather(
            *(
                attempt_async(outcomes, label, f"async-{tag}-{index}", n, False)
                for index in range(tasks)
                for n in range(per_label)
                for label in LABELS
            )
        )
        for future in futures:
            await asyncio.wrap_future(future)

    loop().run_until_complete(main())
    return outcomes.as_dict()


def check_command(timeout: float) -> dict[str, Any]:
    """Run ``appdb_check --json`` in this process; return its output and the error it raised, if any."""
    from django.core.management import CommandError, call_command

    out, err = io.StringIO(), io.StringIO()
    error = None
    try:
        call_command("appdb_check", "--json", "--timeout", str(timeout), stdout=out, stderr=err)
    except CommandError as exc:
        error = str(exc)
    return {"statuses": json.loads(out.getvalue() or "[]"), "error": error, "output": out.getvalue() + err.getvalue()}
