"""Benchmark 2: ORM round trips with the plugin routing the app to its own database.

The same app (``orm_app``, one model) runs in two projects:

* ours: ``django_appdb`` installed, ``orm_app`` on its own database, from
  ``database.py`` (SQLite) or ``ORM_APP_DATABASE_URL`` (PostgreSQL);
* the baseline: a plain single-database project, the model on ``default``.

Each project runs in its own worker process; samples alternate between the
two. Operations: ``Item.objects.get(pk=...)`` over pre-filled rows, and a
small ``Item.objects.create(...)`` (one autocommitted INSERT). Wall-clock time.
"""

from __future__ import annotations

import time
from typing import Any

from .project import App, Project, Worker, django_settings_for_url, sqlite
from .report import Context, Row, time_row
from .timing import alternate, calibrate, no_gc, summarise

LABEL = "orm_app"
ROWS = 1000
MODELS = """
class Item(models.Model):
    name = models.CharField(max_length=50)
    quantity = models.IntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
"""
OPERATIONS = ("get", "create")


def _model() -> Any:
    from django.apps import apps

    return apps.get_model(LABEL, "Item")


def prepare(rows: int) -> dict[str, Any]:
    """Worker side: create the table where the router sends it, fill it; say where that is."""
    from django.db import connections, router

    model = _model()
    alias = router.db_for_write(model)
    connection = connections[alias]
    if model._meta.db_table not in connection.introspection.table_names():
        with connection.schema_editor() as editor:
            editor.create_model(model)
    existing = model.objects.count()
    if existing < rows:
        model.objects.bulk_create(model(name=f"item {i}", quantity=i) for i in range(existing, rows))
    return {"alias": alias, "vendor": connection.vendor, "name": str(connection.settings_dict["NAME"])}


def time_get(n: int) -> int:
    """Worker side: wall-clock ns of ``n`` primary-key look-ups."""
    model = _model()
    manager = model.objects
    pks = list(manager.order_by("pk").values_list("pk", flat=True)[:ROWS])
    count = len(pks)
    with no_gc():
        start = time.perf_counter_ns()
        for i in range(n):
            manager.get(pk=pks[i % count])
        return time.perf_counter_ns() - start


def time_create(n: int) -> int:
    """Worker side: wall-clock ns of ``n`` single-row creates."""
    manager = _model().objects
    with no_gc():
        start = time.perf_counter_ns()
        for i in range(n):
            manager.create(name="new", quantity=i)
        return time.perf_counter_ns() - start


def projects(ctx: Context, backend: str) -> tuple[Project, Project]:
    """Return the (ours, baseline) projects for ``sqlite`` or ``postgresql``."""
    base = ctx.tmp / f"orm-{backend}"
    app = App(LABEL, MODELS)
    if backend == "sqlite":
        ours = Project(
            base / "ours",
            installed_apps=["django_appdb", LABEL],
            databases={"default": sqlite(base / "ours" / "default.sqlite3")},
            apps=[App(LABEL, MODELS, database_py=f"DATABASE_URL = 'sqlite:///{base / 'ours' / 'orm_app.sqlite3'}'\n")],
        )
        plain = Project(
            base / "plain",
            installed_apps=[LABEL],
            databases={"default": sqlite(base / "plain" / "default.sqlite3")},
            apps=[app],
        )
    else:
        urls = ctx.postgres.fresh(["app", "plain"])
        ours = Project(
            base / "ours",
            installed_apps=["django_appdb", LABEL],
            databases={"default": sqlite(base / "ours" / "default.sqlite3")},
            apps=[app],
            env={"ORM_APP_DATABASE_URL": urls["app"]},
        )
        plain = Project(
            base / "plain",
            installed_apps=[LABEL],
            databases={"default": django_settings_for_url(urls["plain"])},
            apps=[app],
        )
    return ours.write(), plain.write()


def measure(ctx: Context, backend: str) -> dict[str, Any]:
    """Runner side: alternate samples between the two projects' workers."""
    ours_project, plain_project = projects(ctx, backend)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in OPERATIONS}
    where = {}
    for pair in range(ctx.budget.process_pairs):
        with (
            Worker(ours_project, f"orm-{backend}-ours-{pair}") as ours,
            Worker(plain_project, f"orm-{backend}-plain-{pair}") as plain,
        ):
            where["ours"] = ours.call("bench.orm:prepare", rows=ROWS)
            where["plain"] = plain.call("bench.orm:prepare", rows=ROWS)
            if where["ours"]["alias"] != LABEL or where["plain"]["alias"] != "default":
                raise RuntimeError(f"{LABEL} is not where the benchmark expects it: {where}")
            for name in OPERATIONS:

                def measure_ours(n: int, name: str = name) -> int:
                    return ours.call(f"bench.orm:time_{name}", n=n)

                def measure_plain(n: int, name: str = name) -> int:
                    return plain.call(f"bench.orm:time_{name}", n=n)

                n = calibrate(measure_plain, ctx.budget.sample_ns, limit=100_000)
                samples[name].extend(alternate(measure_ours, measure_plain, rounds=ctx.budget.rounds, n=n))
    return {"samples": samples, "where": where}


def run(ctx: Context) -> list[Row]:
    """Runner side: SQLite always, PostgreSQL when a URL was given."""
    rows = []
    for backend in ("sqlite", "postgresql"):
        if backend == "postgresql" and ctx.postgres is None:
            for name in OPERATIONS:
                rows.append(
                    Row(
                        "2",
                        f"ORM {name} on PostgreSQL",
                        "not run",
                        "-",
                        "-",
                        "<= 1.02x",
                        "n/a: no PostgreSQL URL (--postgres-url)",
                    )
                )
            continue
        ctx.log(f"2: ORM round trip on {backend}")
        result = measure(ctx, backend)
        for name in OPERATIONS:
            what = {"get": "Model.objects.get(pk=...)", "create": "Model.objects.create(...)"}[name]
            rows.append(
                time_row(
                    "2", f"ORM {what} on {backend}", summarise(result["samples"][name]), "single-database project", 1.02
                )
            )
    return rows
