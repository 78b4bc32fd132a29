"""Benchmark 4: ``django.setup()`` with many generated apps, with and without the plugin.

For each size (10, 100, 400 apps) one project is generated: every app
has two models; half the apps have a ``database.py`` (a quarter of those share
one SQLite file, so they share an alias), and one app in ten is routed by an
``<APP_LABEL>_DATABASE_URL`` environment variable. Two settings modules differ
in what a user writes:

* ours: ``django_appdb`` first in ``INSTALLED_APPS``, ``DATABASES`` holding
  only ``default``;
* the baseline: what a user would write by hand for the same databases, no
  ``django_appdb``: every alias in ``DATABASES`` and a router in the style of
  the Django docs' ``AuthRouter`` with a dict of routes (``database.py`` files
  present but ignored).

Every measurement is a fresh ``python`` process that times ``django.setup()``
(settings import included, for both) with ``time.perf_counter_ns``, and its
CPU time with ``time.process_time_ns`` (less disturbed by other processes).
Runs alternate between the variants; warm-up runs write the bytecode caches
first. The ratio is the median of the per-pair ratios.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from typing import Any

from .project import App, Project, sqlite
from .report import Context, Row, fmt_ns, fmt_ratio
from .timing import spread

SIZES = (10, 100, 400)
GOAL = 1.05
CONTRIB = ["django.contrib.contenttypes", "django.contrib.auth"]
MODELS = """
class Thing(models.Model):
    name = models.CharField(max_length=100)
    size = models.IntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)


class Part(models.Model):
    thing = models.ForeignKey(Thing, on_delete=models.CASCADE, related_name="parts")
    code = models.CharField(max_length=20, unique=True)
"""

CHILD = r"""
import json, os, sys, time
import django
start, cpu_start = time.perf_counter_ns(), time.process_time_ns()
django.setup()
elapsed, cpu = time.perf_counter_ns() - start, time.process_time_ns() - cpu_start
from django.apps import apps
from django.db import connections
print(json.dumps({
    "ns": elapsed,
    "cpu_ns": cpu,
    "apps": len(apps.get_app_configs()),
    "aliases": len(connections.settings),
    "sqlalchemy_imported": "sqlalchemy" in sys.modules,
    "appdb_loaded": "django_appdb" in sys.modules,
}))
"""

PROFILE_CHILD = r"""
import cProfile, pstats, sys
import django
profile = cProfile.Profile()
profile.enable()
django.setup()
profile.disable()
stats = pstats.Stats(profile, stream=sys.stdout)
stats.sort_stats("cumulative").print_stats(40)
stats.sort_stats("tottime").print_stats(25)
"""


HAND_ROUTER = """
\"\"\"What a user would write without django_appdb: a router in the style of the Django docs' AuthRouter.\"\"\"

ROUTES = {routes!r}


class HandRouter:
    def db_for_read(self, model, **hints):
        return ROUTES.get(model._meta.app_label)

    def db_for_write(self, model, **hints):
        return ROUTES.get(model._meta.app_label)

    def allow_relation(self, obj1, obj2, **hints):
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return ROUTES.get(app_label, "default") == db
"""


def generate(ctx: Context, size: int) -> Project:
    """Write the project with ``size`` apps; return the plugin variant (``bench_settings_plain`` beside it).

    The baseline is what a user would write by hand for the same databases:
    every alias in ``DATABASES`` and a dict-based router, no ``django_appdb``.
    """
    root = ctx.tmp / f"startup-{size}"
    db_dir = root / "db"
    db_dir.mkdir(parents=True, exist_ok=True)
    apps = []
    env = {}
    databases = {"default": sqlite(root / "default.sqlite3")}
    hand_databases = dict(databases)
    routes = {}
    for index in range(size):
        label = f"app_{index:03d}"
        database_py = None
        if index % 2 == 0:
            # A quarter of the apps with a database.py share one file, hence one alias.
            name = "shared" if index % 8 == 0 else label
            database_py = f"DATABASE_URL = 'sqlite:///{db_dir / name}.sqlite3'\n"
            hand_databases.setdefault(name, sqlite(db_dir / f"{name}.sqlite3"))
            routes[label] = name
        elif index % 10 == 1:
            env[f"{label.upper()}_DATABASE_URL"] = f"sqlite:///{db_dir / label}-env.sqlite3"
            hand_databases[label] = sqlite(db_dir / f"{label}-env.sqlite3")
            routes[label] = label
        apps.append(App(label, MODELS, database_py=database_py))
    labels = [app.label for app in apps]
    Project(
        root, installed_apps=CONTRIB + labels, databases=hand_databases, apps=apps, routers=["hand_router.HandRouter"]
    ).write()
    (root / "hand_router.py").write_text(HAND_ROUTER.format(routes=routes))
    (root / "bench_settings.py").rename(root / "bench_settings_plain.py")
    return Project(
        root, installed_apps=["django_appdb", *CONTRIB, *labels], databases=databases, apps=apps, env=env
    ).write()


def start(project: Project, settings: str, code: str = CHILD) -> dict[str, Any]:
    """Run one fresh interpreter and return what it measured."""
    env = project.environ()
    env["DJANGO_SETTINGS_MODULE"] = settings
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=project.root, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"django.setup() failed with {settings}:\n{done.stderr}")
    if code is not CHILD:
        return {"output": done.stdout}
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(ctx: Context, size: int) -> dict[str, Any]:
    """Alternate fresh start-ups of both variants; return the timings and sanity figures."""
    project = generate(ctx, size)
    variants = {"ours": "bench_settings", "plain": "bench_settings_plain"}
    for settings in variants.values():  # write bytecode caches, warm the page cache
        start(project, settings)
        start(project, settings)
    times: dict[str, list[int]] = {"ours": [], "plain": []}
    cpu: dict[str, list[int]] = {"ours": [], "plain": []}
    facts: dict[str, dict[str, Any]] = {}
    for index in range(ctx.budget.startup_repeats):
        order = ("ours", "plain") if index % 2 == 0 else ("plain", "ours")
        for variant in order:
            result = start(project, variants[variant])
            times[variant].append(result["ns"])
            cpu[variant].append(result["cpu_ns"])
            facts[variant] = result
    ours, plain = facts["ours"], facts["plain"]
    expected_apps = size + len(CONTRIB)
    if ours["apps"] != expected_apps + 1 or plain["apps"] != expected_apps:
        raise RuntimeError(f"unexpected app counts: {ours['apps']} and {plain['apps']}")
    if not ours["appdb_loaded"] or plain["appdb_loaded"] or plain["aliases"] != ours["aliases"] or ours["aliases"] <= 1:
        raise RuntimeError(f"the variants are not what they should be: {facts}")
    if ours["sqlalchemy_imported"]:
        raise RuntimeError("django_appdb imported SQLAlchemy during django.setup()")
    return {"times": times, "cpu": cpu, "aliases": ours["aliases"]}


def profile(ctx: Context, size: int) -> str:
    """Return cProfile output of ``django.setup()`` with the plugin, at ``size`` apps."""
    project = generate(ctx, size)
    start(project, "bench_settings")  # bytecode caches first, as in the timed runs
    return start(project, "bench_settings", PROFILE_CHILD)["output"]


def run(ctx: Context) -> list[Row]:
    """Runner side: one row per size."""
    rows = []
    sizes = getattr(ctx, "sizes", None) or SIZES
    for size in sizes:
        ctx.log(f"4: start-up with {size} apps")
        result = measure(ctx, size)
        ours, plain = result["times"]["ours"], result["times"]["plain"]
        ratios = [a / b for a, b in zip(ours, plain, strict=True)]
        ours_ms, plain_ms = statistics.median(ours), statistics.median(plain)
        ratio = statistics.median(ratios)
        low, high = spread(ratios)
        extra = ours_ms - plain_ms
        cpu_ratio = statistics.median(a / b for a, b in zip(result["cpu"]["ours"], result["cpu"]["plain"], strict=True))
        rows.append(
            Row(
                "4",
                f"django.setup(), {size} apps ({result['aliases']} aliases)",
                f"{fmt_ns(ours_ms)} ({'+' if extra >= 0 else '-'}{fmt_ns(abs(extra))}, "
                f"{extra / size / 1000:+.0f} µs/app)",
                f"{fmt_ns(plain_ms)} (same project by hand: DATABASES and a router, no django_appdb)",
                f"{fmt_ratio(ratio, low, high)}; CPU time {cpu_ratio:.3f}x",
                f"<= {GOAL:.2f}x",
                "yes" if ratio <= GOAL else "no",
            )
        )
    if ctx.profile:
        size = max(sizes)
        ctx.log(f"4: profile of django.setup() with django_appdb, {size} apps")
        print(profile(ctx, size), file=sys.stderr)
    return rows
