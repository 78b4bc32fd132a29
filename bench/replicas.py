"""Benchmark 7: routing decisions on a database with read replicas.

One project: the app ``r_shop`` (``Author``, and ``Book`` with a foreign key
to it) on ``default``, which has two read replicas, ``replica_a`` and
``replica_b`` (SQLite files). ``default`` because django-multidb-router only
knows replicas of ``default``; the three routers are configured for the same
databases:

* ours: the ``AppDatabaseRouter`` that ``django_appdb`` installed, the
  replicas declared with ``APPDB_REPLICAS = {"default": ["replica_a", "replica_b"]}``;
* django-multidb-router's ``multidb.PinningReplicaRouter`` with
  ``REPLICA_DATABASES = ["replica_a", "replica_b"]``. It does not pin on a
  write by itself (its middleware pins a whole POST request, and
  ``use_primary_db`` a block), so its workload calls ``pin_this_thread()``
  right after a write, which is what those do;
* a hand-written router in the style of the Django docs' ``PrimaryReplicaRouter``
  (a random replica per read, ``allow_relation`` within the set of the
  primary and its replicas), with read-your-writes added the way an ASGI-safe
  project would: a ``ContextVar`` set by a write.

Each variant runs in worker processes of its own (see ``bench.router``). The
decisions are made through ``django.db.router`` with the arguments Django
passes: a ``QuerySet`` read (the model alone), a related manager's read and a
``save()`` (``instance=``), and a foreign key assignment's ``allow_relation``
between an object read from a replica and one from the primary. ``pinned``
reads are made after a write in the same context. The per-decision rows time
a context already past its first read (ours chooses a replica once per
context; the hand-written router draws one per read); the "request" row
times a whole request-sized context from its start: each router's own scope
(ours: ``replica_scope()``, as its middleware does; the hand-written one: a
``ContextVar`` reset; multidb: ``unpin_this_thread()`` at the end, as its
middleware does), two reads, a write, two pinned reads and a relation check.
The clock is the thread's CPU time, as in benchmark 1.
"""

from __future__ import annotations

import contextlib
import contextvars
import random
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from .project import App, Project, WorkerError, pair_rounds, sqlite
from .report import Context, Row, time_row, unavailable
from .timing import no_gc, summarise

APP = "r_shop"
PRIMARY = "default"
REPLICAS = ("replica_a", "replica_b")
PER_ITERATION = 4
DECISIONS = ("db_for_read", "db_for_read_pinned", "db_for_write", "allow_relation", "request")
WHAT = {
    "db_for_read": "router.db_for_read, replicas",
    "db_for_read_pinned": "router.db_for_read after a write (pinned)",
    "db_for_write": "router.db_for_write, replicas",
    "allow_relation": "router.allow_relation, replica and primary objects",
    "request": "a request: 2 reads, a write, 2 pinned reads, allow_relation",
}
MODELS = """
class Author(models.Model):
    name = models.CharField(max_length=50)


class Book(models.Model):
    title = models.CharField(max_length=50)
    author = models.ForeignKey(Author, on_delete=models.CASCADE, null=True)
"""

# -- the hand-written router ---------------------------------------------------------------------

#: Whether the current context wrote to the primary. A ContextVar, not a
#: thread-local, so that it is right under ASGI and in asyncio tasks.
_written: ContextVar[bool] = ContextVar("bench_hand_written", default=False)


class HandWrittenReplicaRouter:
    """The Django docs' ``PrimaryReplicaRouter``, with read-your-writes through a ``ContextVar``."""

    databases = frozenset({PRIMARY, *REPLICAS})

    def db_for_read(self, model: Any, **hints: Any) -> str:
        if _written.get():
            return PRIMARY
        return random.choice(REPLICAS)

    def db_for_write(self, model: Any, **hints: Any) -> str:
        if not _written.get():
            _written.set(True)
        return PRIMARY

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        databases = self.databases
        if obj1._state.db in databases and obj2._state.db in databases:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        return db == PRIMARY


@contextlib.contextmanager
def _hand_scope() -> Iterator[None]:
    """What the hand-written router's middleware does around a request: a fresh, unpinned context."""
    token = _written.set(False)
    try:
        yield
    finally:
        _written.reset(token)


@contextlib.contextmanager
def _multidb_scope() -> Iterator[None]:
    """What ``multidb.middleware.PinningRouterMiddleware`` does for a GET request: unpin at its end."""
    from multidb.pinning import unpin_this_thread

    try:
        yield
    finally:
        unpin_this_thread()


def _nothing() -> None:
    return None


class Variant:
    """One way of routing: the routers, a request's scope, and what follows a write."""

    def __init__(
        self, routers: list[Any], scope: Callable[[], Any], after_write: Callable[[], None] = _nothing
    ) -> None:
        self.routers = routers
        self.scope = scope
        self.after_write = after_write


def multidb_status() -> str | None:
    """Return why django-multidb-router cannot be measured here, or None when it can."""
    try:
        import multidb  # noqa: F401
        from multidb import PinningReplicaRouter  # noqa: F401
        from multidb.pinning import pin_this_thread, unpin_this_thread  # noqa: F401
    except ImportError as exc:
        return f"django-multidb-router does not import: {exc}"
    return None


def build_variant(name: str) -> Variant:
    """Return the variant ``name`` (``ours``, ``ours-again``, ``hand`` or ``multidb``), in a worker."""
    from django.db import router

    from django_appdb import replica_scope
    from django_appdb.routers import AppDatabaseRouter

    if name in ("ours", "ours-again"):
        ours = [r for r in router.routers if isinstance(r, AppDatabaseRouter)]
        if not ours:
            raise RuntimeError("django_appdb did not install AppDatabaseRouter")
        return Variant(ours, replica_scope)
    if name == "hand":
        return Variant([HandWrittenReplicaRouter()], _hand_scope)
    if name == "multidb":
        from multidb import PinningReplicaRouter
        from multidb.pinning import pin_this_thread

        return Variant([PinningReplicaRouter()], _multidb_scope, pin_this_thread)
    raise ValueError(f"unknown variant {name!r}")


def project(ctx: Context) -> Project:
    """Return the replica benchmark's project."""
    root = ctx.tmp / "replicas"
    return Project(
        root,
        installed_apps=["django_appdb", APP],
        databases={
            PRIMARY: sqlite(root / "default.sqlite3"),
            **{name: sqlite(root / "default.sqlite3") for name in REPLICAS},
        },
        apps=[App(APP, MODELS)],
        settings={"APPDB_REPLICAS": {PRIMARY: list(REPLICAS)}, "REPLICA_DATABASES": list(REPLICAS)},
    ).write()


def _objects() -> dict[str, Any]:
    """Return the models and saved-looking instances the workload routes."""
    from django.apps import apps

    author_model = apps.get_model(APP, "Author")
    book_model = apps.get_model(APP, "Book")

    def saved(model: Any, alias: str, pk: int) -> Any:
        instance = model(pk=pk)
        instance._state.adding = False
        instance._state.db = alias
        return instance

    return {
        "Author": author_model,
        "Book": book_model,
        # Read from replicas (the usual case: a page reads, then a form saves).
        "author_a": saved(author_model, REPLICAS[0], 1),
        "author_b": saved(author_model, REPLICAS[1], 2),
        # Read from, or saved to, the primary.
        "book": saved(book_model, PRIMARY, 1),
        "author_p": saved(author_model, PRIMARY, 3),
    }


def _in_fresh_context(function: Callable[[int], int], n: int) -> int:
    """Run ``function(n)`` in an empty context: no pins, no replica chosen, whatever ran before."""
    return contextvars.Context().run(function, n)


def _timers(chosen: Variant) -> dict[str, Callable[[int], int]]:
    """Return ``measure(n)`` functions for each decision, run with the variant's routers installed."""
    from django.db import router

    o = _objects()
    author_model, book_model = o["Author"], o["Book"]
    author_a, author_b, book, author_p = o["author_a"], o["author_b"], o["book"], o["author_p"]
    routers, scope, after_write = chosen.routers, chosen.scope, chosen.after_write

    def reads(n: int) -> int:
        router.routers = routers
        decide = router.db_for_read
        decide(author_model)  # The context's first read: ours chooses its replica here.
        with no_gc():
            start = time.thread_time_ns()
            for _ in range(n):
                decide(author_model)
                decide(book_model, instance=author_a)
                decide(author_model)
                decide(book_model, instance=author_b)
            return time.thread_time_ns() - start

    def pinned_reads(n: int) -> int:
        router.routers = routers
        decide = router.db_for_read
        decide(author_model)
        router.db_for_write(book_model, instance=book)
        after_write()
        with no_gc():
            start = time.thread_time_ns()
            for _ in range(n):
                decide(author_model)
                decide(book_model, instance=author_p)
                decide(author_model)
                decide(book_model, instance=author_p)
            return time.thread_time_ns() - start

    def writes(n: int) -> int:
        router.routers = routers
        decide = router.db_for_write
        with no_gc():
            start = time.thread_time_ns()
            for _ in range(n):
                decide(author_model, instance=author_p)
                decide(book_model, instance=book)
                decide(author_model, instance=author_p)
                decide(book_model, instance=book)
            after_write()
            return time.thread_time_ns() - start

    def relations(n: int) -> int:
        router.routers = routers
        decide = router.allow_relation
        with no_gc():
            start = time.thread_time_ns()
            for _ in range(n):
                decide(author_a, book)
                decide(author_p, book)
                decide(author_b, book)
                decide(author_a, author_b)
            return time.thread_time_ns() - start

    def requests(n: int) -> int:
        router.routers = routers
        read, write, relation = router.db_for_read, router.db_for_write, router.allow_relation
        with no_gc():
            start = time.thread_time_ns()
            for _ in range(n):
                with scope():
                    read(author_model)
                    read(book_model, instance=author_a)
                    write(book_model, instance=book)
                    after_write()
                    read(author_model)
                    read(book_model, instance=author_p)
                    relation(author_a, book)
            return time.thread_time_ns() - start

    timers = dict(zip(DECISIONS, (reads, pinned_reads, writes, relations, requests), strict=True))
    return {name: (lambda n, timer=timer: _in_fresh_context(timer, n)) for name, timer in timers.items()}


def check_equivalent(chosen: Variant) -> None:
    """Raise unless the variant routes the workload as the others do (so the race is fair)."""
    from django.db import router

    o = _objects()
    saved = router.routers
    router.routers = chosen.routers

    def one_request() -> None:
        with chosen.scope():
            reads = {router.db_for_read(o["Author"]) for _ in range(20)}
            if not reads <= set(REPLICAS):
                raise AssertionError(f"reads went to {reads}, not to the replicas {REPLICAS}")
            if router.db_for_read(o["Book"], instance=o["author_a"]) not in REPLICAS:
                raise AssertionError("a related read did not go to a replica")
            for model, instance in (("Book", "book"), ("Author", "author_p")):
                written = router.db_for_write(o[model], instance=o[instance])
                if written != PRIMARY:
                    raise AssertionError(f"a write of {model} went to {written!r}, not {PRIMARY!r}")
            chosen.after_write()
            for model, hints in (("Author", {}), ("Book", {"instance": o["author_p"]})):
                after = router.db_for_read(o[model], **hints)
                if after != PRIMARY:
                    raise AssertionError(f"a read after a write went to {after!r}, not {PRIMARY!r}")
            for first, second in (("author_a", "book"), ("author_p", "book"), ("author_a", "author_b")):
                if router.allow_relation(o[first], o[second]) is not True:
                    raise AssertionError(f"allow_relation({first}, {second}) is not True")

    try:
        contextvars.Context().run(one_request)
        # A new request starts unpinned again.
        after = contextvars.Context().run(lambda: {router.db_for_read(o["Author"]) for _ in range(20)})
        if not after <= set(REPLICAS):
            raise AssertionError(f"a new request read from {after}: the previous one's pin leaked")
    finally:
        router.routers = saved


_TIMERS: dict[str, Callable[[int], int]] = {}


def install(variant: str) -> None:
    """Worker side: check the variant routes like the others, then keep its timers."""
    from django.db import router

    chosen = build_variant(variant)
    check_equivalent(chosen)
    router.routers = chosen.routers
    _TIMERS.clear()
    _TIMERS.update(_timers(chosen))


def time_decisions(decision: str, n: int) -> int:
    """Worker side: return the CPU time of ``n`` iterations of ``decision``."""
    return _TIMERS[decision](n)


def _rows(ctx: Context, proj: Project, baseline: str, label: str, goal: float | None) -> list[Row]:
    samples = pair_rounds(ctx, proj, "bench.replicas", baseline, DECISIONS)
    rows = []
    for name in DECISIONS:
        per, unit = (1, "/request") if name == "request" else (PER_ITERATION, "/call")
        what = WHAT[name] if baseline == "hand" else f"{WHAT[name]}, vs multidb"
        rows.append(time_row("7", what, summarise(samples[name], per_iteration=per), label, goal, unit))
    return rows


def run(ctx: Context) -> list[Row]:
    """Runner side: measure in worker processes and return the table rows."""
    ctx.log("7: routing with read replicas")
    proj = project(ctx)
    rows = _rows(ctx, proj, "hand", "hand-written replica router, ContextVar", 1.0)
    reason = multidb_status()
    if reason is None:
        try:
            rows.extend(_rows(ctx, proj, "multidb", "multidb.PinningReplicaRouter", None))
        except WorkerError as exc:
            # It imports but does not work with this Django: say so in its row.
            last = [line for line in str(exc).splitlines() if line.strip()][-1]
            reason = f"django-multidb-router failed here: {last.strip()}"
    if reason is not None:
        rows.append(unavailable("7", "routing with replicas vs django-multidb-router", reason, "report"))
    control = summarise(
        pair_rounds(ctx, proj, "bench.replicas", "ours-again", ("db_for_read",))["db_for_read"], PER_ITERATION
    )
    rows.append(time_row("7", "noise control: router.db_for_read, ours vs ours", control, "ours, other process", None))
    return rows
