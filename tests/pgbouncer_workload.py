"""A workload through PgBouncer in transaction mode, run in a child process by ``tests/test_pgbouncer.py``.

The ``notes`` app's database is the one ``NOTES_DATABASE_URL`` names: a
database the test created for the run, reached through PgBouncer; ``default``
is a SQLite file. Prints one JSON object of what each step saw; a step that
raises records the exception's type and message instead of stopping the rest.

``python tests/pgbouncer_workload.py all`` runs every step;
``python tests/pgbouncer_workload.py prepared`` runs only the one that
repeats a statement on two pooled connections, where prepared statements break.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import Callable
from typing import Any

import django

ROWS = 2000
THREADS = 8
TASKS = 100

results: dict[str, Any] = {}


def step(name: str, function: Callable[[], Any]) -> None:
    try:
        results[name] = function()
    except Exception as exc:  # reported to the test, which names the step
        results[name] = {"error": type(exc).__name__, "message": str(exc)[:300]}


def setup() -> dict[str, Any]:
    from django.core.management import call_command
    from django.db import connections

    from django_appdb.state import pooler_of

    call_command("migrate", "notes", database="notes", verbosity=0)
    settings_dict = connections["notes"].settings_dict
    return {
        "pooler": pooler_of("notes"),
        "port": int(settings_dict["PORT"]),
        "disable_server_side_cursors": settings_dict["DISABLE_SERVER_SIDE_CURSORS"],
    }


def orm() -> dict[str, Any]:
    from django.db import transaction
    from notes.models import Note, Notebook

    notebook = Notebook.objects.create(title="orm")
    Note.objects.bulk_create(Note(notebook=notebook, text=f"n{i}") for i in range(ROWS))
    outside = sum(1 for _ in Note.objects.filter(notebook=notebook).iterator(chunk_size=100))
    with transaction.atomic(using="notes"):
        inside = sum(1 for _ in Note.objects.filter(notebook=notebook).iterator(chunk_size=100))
        Note.objects.filter(notebook=notebook, text="n0").update(pinned=True)
    return {"count": Note.objects.filter(notebook=notebook).count(), "iterated": [outside, inside]}


def sqlalchemy_sync() -> dict[str, Any]:
    from notes.models import Note
    from sqlalchemy import func, select

    from django_appdb import get_engine, get_sync_app_session, table_for

    notes = table_for(Note)
    counts = []
    for _ in range(20):  # more than psycopg's prepare threshold
        with get_sync_app_session("notes") as session:
            counts.append(session.execute(select(func.count()).select_from(notes)).scalar_one())
    return {"counts": sorted(set(counts)), "pool": type(get_engine("notes").pool).__name__}


def repositories() -> dict[str, Any]:
    from notes.models import Notebook

    from django_appdb import AppRepository

    class Notebooks(AppRepository):
        model = Notebook

    repo = Notebooks()
    added = [repo.add(title=f"repo {i}") for i in range(10)]
    got = [repo.get(row.id).title for row in added]
    repo.update(added[0].id, title="repo renamed")
    repo.delete(added[1].id)
    return {"got": len(got), "count": repo.count(), "renamed": repo.get(added[0].id).title}


def threads() -> dict[str, Any]:
    from django.db import close_old_connections, connections
    from notes.models import Note, Notebook
    from sqlalchemy import func, select

    from django_appdb import get_sync_app_session, table_for

    notebook = Notebook.objects.create(title="threads")
    errors: list[str] = []
    notes = table_for(Note)

    def request(number: int) -> None:
        try:
            for i in range(25):
                Note.objects.create(notebook=notebook, text=f"t{number}-{i}")
                sum(1 for _ in Note.objects.filter(notebook=notebook).iterator(chunk_size=10))
                with get_sync_app_session("notes") as session:
                    session.execute(select(func.count()).select_from(notes).where(notes.c.notebook_id == notebook.pk))
                close_old_connections()
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
        finally:
            connections.close_all()

    workers = [threading.Thread(target=request, args=(number,)) for number in range(THREADS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {"errors": errors, "rows": Note.objects.filter(notebook=notebook).count()}


def async_tasks() -> dict[str, Any]:
    from notes.models import Note, Notebook
    from sqlalchemy import func, insert, select

    from django_appdb import aclose_all_engines, get_app_session, table_for

    notebook = Notebook.objects.create(title="tasks")
    notes = table_for(Note)

    async def task(number: int) -> int:
        async with get_app_session("notes") as session:
            for i in range(3):
                await session.execute(
                    insert(notes).values(notebook_id=notebook.pk, text=f"a{number}-{i}", pinned=False)
                )
            await session.commit()
        seen = 0
        for _ in range(8):  # more than psycopg's prepare threshold
            async with get_app_session("notes") as session:
                statement = select(func.count()).select_from(notes).where(notes.c.notebook_id == notebook.pk)
                seen = (await session.execute(statement)).scalar_one()
        return int(seen)

    async def main() -> list[Any]:
        try:
            return await asyncio.gather(*(task(number) for number in range(TASKS)), return_exceptions=True)
        finally:
            await aclose_all_engines()

    outcomes = asyncio.run(main())
    errors = [f"{type(outcome).__name__}: {outcome}"[:300] for outcome in outcomes if isinstance(outcome, Exception)]
    return {"errors": errors[:5], "error_count": len(errors), "rows": Note.objects.filter(notebook=notebook).count()}


def prepared() -> dict[str, Any]:
    """Run one statement, alternately, on two connections the engine holds at once, each in its own transaction."""
    from sqlalchemy import text

    from django_appdb import get_engine

    engine = get_engine("notes")
    statement = text("SELECT count(*) FROM notes_notebook WHERE id > :floor")
    with engine.connect() as first, engine.connect() as second:
        for i in range(10):
            for connection in (first, second):
                connection.execute(statement, {"floor": -i}).scalar_one()
                connection.commit()
    return {"ok": True}


def main() -> None:
    django.setup()
    step("setup", setup)
    if sys.argv[1:] == ["prepared"]:
        step("prepared", prepared)
    else:
        for name, function in [
            ("orm", orm),
            ("sqlalchemy_sync", sqlalchemy_sync),
            ("repositories", repositories),
            ("threads", threads),
            ("async_tasks", async_tasks),
            ("prepared", prepared),
        ]:
            step(name, function)
    from django.db import connections

    connections.close_all()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
