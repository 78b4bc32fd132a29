"""Benchmark 1: router decisions through ``django.db.router``.

One project, two apps: ``r_routed`` declares its own SQLite database in
``database.py``; ``r_default`` stays on ``default``. Worker processes of that
project install one set of routers each, for their whole life:

* ours: the ``AppDatabaseRouter`` that ``django_appdb`` installed;
* the baseline: a hand-written router in the style of the Django docs'
  ``AuthRouter`` (a ``route_app_labels`` set);
* no router at all (reported for scale);
* ours again (a noise control: identical code in two processes).

A variant and its baseline alternate sample by sample, in
``Budget.process_pairs`` fresh pairs of processes. Each timed iteration makes
four decisions, alternating the routed and the default app, so both of the
router's answers (an alias, and ``None``) count. The clock is the thread's CPU
time (``time.thread_time_ns``): these are sub-microsecond, CPU-only calls,
and CPU time leaves out the time other processes hold the core.
"""

from __future__ import annotations

import time
from typing import Any

from .project import App, Project, pair_rounds, sqlite
from .report import Context, Row, time_row
from .timing import no_gc, summarise

ROUTED = "r_routed"
DEFAULT = "r_default"
PER_ITERATION = 4
DECISIONS = ("db_for_read", "db_for_write", "allow_migrate")
MODELS = """
class Item(models.Model):
    name = models.CharField(max_length=50)
"""


class HandWrittenRouter:
    """The Django docs' ``AuthRouter`` pattern, for the one routed app."""

    route_app_labels = {ROUTED}

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        if model._meta.app_label in self.route_app_labels:
            return ROUTED
        return None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        if model._meta.app_label in self.route_app_labels:
            return ROUTED
        return None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        if obj1._meta.app_label in self.route_app_labels or obj2._meta.app_label in self.route_app_labels:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        if app_label in self.route_app_labels:
            return db == ROUTED
        return None


def project(ctx: Context) -> Project:
    """Return the router benchmark's project."""
    root = ctx.tmp / "router"
    return Project(
        root,
        installed_apps=["django_appdb", DEFAULT, ROUTED],
        databases={"default": sqlite(root / "default.sqlite3")},
        apps=[
            App(DEFAULT, MODELS),
            App(ROUTED, MODELS, database_py=f"DATABASE_URL = 'sqlite:///{root / 'routed.sqlite3'}'\n"),
        ],
    ).write()


def _runtime_string(text: str) -> str:
    """Return a copy of ``text`` built at run time, as argv or settings parsing would."""
    return "".join(list(text))


def _timers(routers: list[Any]) -> dict[str, Any]:
    """Return ``measure(n)`` functions for each decision, run with ``routers`` installed."""
    from django.apps import apps
    from django.db import DEFAULT_DB_ALIAS, connections, router

    routed = apps.get_model(ROUTED, "Item")
    default = apps.get_model(DEFAULT, "Item")
    # The arguments migrate passes: the model's app label, and the alias of a
    # connection named on the command line. Neither is the interned literal a
    # hand-written router compares with, so identity shortcuts favour nobody.
    routed_label, default_label = routed._meta.app_label, default._meta.app_label
    routed_db = connections[_runtime_string(ROUTED)].alias
    default_db = connections[DEFAULT_DB_ALIAS].alias

    def reads(n: int) -> int:
        router.routers = routers
        decide = router.db_for_read
        with no_gc():
            start = time.thread_time_ns()
            for _ in range(n):
                decide(routed)
                decide(default)
                decide(routed)
                decide(default)
            return time.thread_time_ns() - start

    def writes(n: int) -> int:
        router.routers = routers
        decide = router.db_for_write
        with no_gc():
            start = time.thread_time_ns()
            for _ in range(n):
                decide(routed)
                decide(default)
                decide(routed)
                decide(default)
            return time.thread_time_ns() - start

    def migrations(n: int) -> int:
        router.routers = routers
        decide = router.allow_migrate
        with no_gc():
            start = time.thread_time_ns()
            for _ in range(n):
                decide(routed_db, routed_label, model_name="item")
                decide(default_db, routed_label, model_name="item")
                decide(default_db, default_label, model_name="item")
                decide(routed_db, default_label, model_name="item")
            return time.thread_time_ns() - start

    return dict(zip(DECISIONS, (reads, writes, migrations), strict=True))


def check_equivalent(ours: list[Any], hand: list[Any]) -> None:
    """Raise if the two routers disagree where both have an opinion (so the race is fair)."""
    from django.apps import apps
    from django.db import router

    saved = router.routers
    try:
        for model in (apps.get_model(ROUTED, "Item"), apps.get_model(DEFAULT, "Item")):
            answers = []
            for routers in (ours, hand):
                router.routers = routers
                answers.append((router.db_for_read(model), router.db_for_write(model)))
            if answers[0] != answers[1]:
                raise AssertionError(f"routers disagree on {model._meta.label}: {answers}")
        expected = {(ROUTED, ROUTED): True, ("default", ROUTED): False}
        for routers in (ours, hand):
            router.routers = routers
            for (db, label), allowed in expected.items():
                if router.allow_migrate(db, label, model_name="item") is not allowed:
                    raise AssertionError(f"allow_migrate({db!r}, {label!r}) is not {allowed} with {routers}")
    finally:
        router.routers = saved


_TIMERS: dict[str, Any] = {}


def install(variant: str) -> None:
    """Worker side: install the variant's routers for the life of this process.

    Each variant runs in a process of its own: the interpreter specialises
    Django's routing code for the router types it sees, so timing two routers
    through the same code in one process would favour whichever came first.
    """
    from django.db import router

    from django_appdb.routers import AppDatabaseRouter

    ours = [r for r in router.routers if isinstance(r, AppDatabaseRouter)]
    if not ours:
        raise RuntimeError("django_appdb did not install AppDatabaseRouter")
    hand: list[Any] = [HandWrittenRouter()]
    check_equivalent(ours, hand)
    # "ours-again": the same router in a second process, the noise control.
    routers = {"ours": ours, "ours-again": ours, "hand": hand, "none": []}[variant]
    router.routers = routers
    _TIMERS.clear()
    _TIMERS.update(_timers(routers))


def time_decisions(decision: str, n: int) -> int:
    """Worker side: return the CPU time of ``n`` iterations of four decisions."""
    return _TIMERS[decision](n)


def run(ctx: Context) -> list[Row]:
    """Runner side: measure in worker processes and return the table rows."""
    ctx.log("1: router decisions")
    proj = project(ctx)
    rows = []
    for baseline, label, goal in (
        ("hand", "hand-written AuthRouter-style", 1.0),
        ("none", "no router", None),
    ):
        samples = pair_rounds(ctx, proj, "bench.router", baseline, DECISIONS)
        for name in DECISIONS:
            result = summarise(samples[name], per_iteration=PER_ITERATION)
            what = f"router.{name}" if baseline == "hand" else f"router.{name} vs no router at all"
            rows.append(time_row("1", what, result, label, goal))
    # The same router in two processes: how far apart identical code measures here.
    control = summarise(
        pair_rounds(ctx, proj, "bench.router", "ours-again", ("allow_migrate",))["allow_migrate"], PER_ITERATION
    )
    rows.append(
        time_row("1", "noise control: router.allow_migrate, ours vs ours", control, "ours, other process", None)
    )
    return rows
