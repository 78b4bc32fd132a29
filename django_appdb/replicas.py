"""Which database serves a read: read-your-writes pinning, the replica chosen, and each replica's health and lag.

A database alias with read replicas (``state.replicas``) has its reads sent
to one of them, chosen at random among the usable ones the first time the
current context reads it and kept for the rest of that context, so the reads
of one request or task agree with each other. Its writes go to the primary
and *pin* it: the context's later reads of that alias go to the primary too,
so a client reads its own writes.

The state is a context variable, never a thread-local: an ASGI request, an
``asyncio`` task, a thread and ``sync_to_async`` each see their own, and
``sync_to_async`` hands changes back to its caller. :func:`replica_scope`
starts a fresh context (the middleware runs every request in one);
:func:`use_primary` pins apps for a block.

A replica that cannot be reached is skipped for ``APPDB_REPLICA_RETRY_SECONDS``
and reads fall back to another replica, then to the primary; with
``APPDB_REPLICA_MAX_LAG`` set, a PostgreSQL replica whose replay lag exceeds
it is skipped, the lag being measured at most every
``APPDB_REPLICA_LAG_CHECK_SECONDS`` per replica and process, when a context
first reads from it. During a test run reads go to the primary (a test's rows
sit in a transaction a replica's connection cannot see) unless the test asks
for replica routing (:func:`django_appdb.testing.replica_routing`).
"""

from __future__ import annotations

import functools
import inspect
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType, TracebackType
from typing import Any, NamedTuple, TypeVar

from django.db import DatabaseError, connections

from django_appdb.conf import conf
from django_appdb.state import resolve_alias, state

__all__ = [
    "ReplicaHealth",
    "aread_alias",
    "health",
    "pin",
    "pin_for_request",
    "pinned_aliases",
    "read_alias",
    "replica_scope",
    "use_primary",
    "written",
]

F = TypeVar("F", bound=Callable[..., Any])

#: PostgreSQL's replay lag in seconds: 0 on a primary and on a replica that has replayed all it received.
LAG_SQL = (
    "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0 "
    "WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END"
)


class _Context(NamedTuple):
    """One context's read-your-writes state; replaced, never changed, so copied contexts stay apart.

    A named tuple rather than a frozen dataclass: it is read on every routing
    decision and replaced on a context's first read and first write, and a
    tuple's fields and ``_replace`` cost a fraction of a dataclass's.
    """

    pinned: frozenset[str] = frozenset()
    pin_all: bool = False
    written: frozenset[str] = frozenset()
    chosen: Mapping[str, str] = MappingProxyType({})
    replicas_in_tests: bool = False


_EMPTY = _Context()
_current: ContextVar[_Context] = ContextVar("django_appdb.replicas", default=_EMPTY)


def pin(primary: str) -> None:
    """Record a write to ``primary``: the current context reads it from the primary from now on."""
    context = _current.get()
    # ``written`` is always within ``pinned`` (a block's pins end with it, its writes' do not): one test.
    if primary not in context.written:
        _current.set(context._replace(pinned=context.pinned | {primary}, written=context.written | {primary}))


def written() -> frozenset[str]:
    """Return the primaries the current context wrote to (since its :func:`replica_scope` began)."""
    return _current.get().written


class ReplicaHealth:
    """What this process knows of each replica: unreachable until when, and its last measured lag."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.down_until: dict[str, float] = {}
        self.lag: dict[str, tuple[float, float]] = {}  # alias -> (seconds, measured at)

    def mark_down(self, alias: str) -> None:
        """Skip ``alias`` for ``APPDB_REPLICA_RETRY_SECONDS``."""
        with self._lock:
            self.down_until[alias] = time.monotonic() + conf.REPLICA_RETRY_SECONDS

    def mark_up(self, alias: str) -> None:
        """Forget a failure of ``alias``: it answered."""
        if alias in self.down_until:
            with self._lock:
                self.down_until.pop(alias, None)

    def is_down(self, alias: str, now: float) -> bool:
        """Return whether ``alias`` failed less than the retry interval ago."""
        until = self.down_until.get(alias)
        return until is not None and until > now

    def lag_due(self, alias: str, now: float) -> bool:
        """Return whether ``alias``'s lag should be measured now (a limit is set and the last figure is old)."""
        if conf.REPLICA_MAX_LAG is None:
            return False
        measured = self.lag.get(alias)
        return measured is None or now - measured[1] >= conf.REPLICA_LAG_CHECK_SECONDS

    def record_lag(self, alias: str, seconds: float) -> None:
        """Remember ``alias``'s lag, measured now."""
        with self._lock:
            self.lag[alias] = (float(seconds), time.monotonic())

    def lagging(self, alias: str) -> bool:
        """Return whether ``alias``'s last measured lag exceeds ``APPDB_REPLICA_MAX_LAG``."""
        measured = self.lag.get(alias)
        if measured is None:
            # Nothing measured: not lagging, whatever the limit (not read, then: a read of the settings costs more).
            return False
        limit = conf.REPLICA_MAX_LAG
        return limit is not None and measured[0] > limit

    def clear(self) -> None:
        """Forget everything (the settings changed)."""
        with self._lock:
            self.down_until.clear()
            self.lag.clear()


health = ReplicaHealth()


_running_tests: Callable[[], bool] | None = None


def _in_tests() -> bool:
    # The test guard's check, imported on first use (the core imports no test machinery when loaded), then kept.
    global _running_tests
    if _running_tests is None:
        from django_appdb.testing.guard import running_tests

        _running_tests = running_tests
    return _running_tests()


def _choice(primary: str, context: _Context) -> str | list[str]:
    """Return the alias a read of ``primary`` in ``context`` uses without probing, or the replicas to try, in order."""
    # Called on every read of a database with replicas: the common cases
    # (pinned, or a replica already chosen and nothing known against it)
    # come first and make no further calls.
    if context.pin_all or primary in context.pinned:
        return primary
    names = state.replicas.get(primary)
    if not names:
        return primary
    if not context.replicas_in_tests and _in_tests():
        return primary
    chosen = context.chosen.get(primary)
    if chosen is not None:
        if not health.down_until and not health.lag:
            # Nothing is down and no lag was measured: the chosen replica stands.
            return chosen
        if not health.is_down(chosen, time.monotonic()) and not health.lagging(chosen):
            return chosen
    now = time.monotonic()
    usable = [name for name in names if not health.is_down(name, now)]
    random.shuffle(usable)
    return usable


def _accept(primary: str, alias: str, lag: float | None) -> bool:
    """Record what a probe found; return whether ``alias`` serves the context's reads of ``primary``."""
    health.mark_up(alias)
    if lag is not None:
        health.record_lag(alias, lag)
    if health.lagging(alias):
        return False
    context = _current.get()
    _current.set(context._replace(chosen={**context.chosen, primary: alias}))
    return True


def _fallback(primary: str) -> str:
    context = _current.get()
    # No replica is usable: the primary, without pinning (a later read tries the replicas again).
    chosen = dict(context.chosen)
    chosen.pop(primary, None)
    _current.set(context._replace(chosen=chosen))
    return primary


def _django_probe(alias: str) -> float | None:
    """Connect ``alias``'s Django connection, checking a kept one still answers; return its lag when one is due."""
    connection = connections[alias]
    if connection.connection is not None and not connection.in_atomic_block and not connection.is_usable():
        # Kept from before the replica went away (a worker's, between its
        # tasks): Django checks health only at a request's start.
        connection.close()
    connection.ensure_connection()
    if connection.vendor != "postgresql" or not health.lag_due(alias, time.monotonic()):
        return None
    with connection.cursor() as cursor:
        cursor.execute(LAG_SQL)
        row = cursor.fetchone()
    return float(row[0]) if row else 0.0


def read_alias(
    primary: str,
    probe: Callable[[str], float | None] = _django_probe,
    errors: tuple[type[BaseException], ...] = (DatabaseError,),
) -> str:
    """Return the alias a read of ``primary``'s data uses now: a usable replica, else the primary.

    ``probe`` connects to a candidate (and returns its lag when one is due);
    an exception in ``errors`` marks it down for the retry interval.
    """
    context = _current.get()
    if context.pin_all or primary in context.pinned:
        return primary  # The commonest answer after a write, without a further call.
    decision = _choice(primary, context)
    if isinstance(decision, str):
        return decision
    for alias in decision:
        try:
            lag = probe(alias)
        except errors:
            health.mark_down(alias)
            continue
        if _accept(primary, alias, lag):
            return alias
    return _fallback(primary)


async def aread_alias(primary: str, probe: Callable[[str], Any], errors: tuple[type[BaseException], ...]) -> str:
    """The same as :func:`read_alias`, with a probe to await."""
    decision = _choice(primary, _current.get())
    if isinstance(decision, str):
        return decision
    for alias in decision:
        try:
            lag = await probe(alias)
        except errors:
            health.mark_down(alias)
            continue
        if _accept(primary, alias, lag):
            return alias
    return _fallback(primary)


class _ContextBlock:
    """A context manager (sync and async) and decorator that changes the read-your-writes context for a block."""

    def __init__(self) -> None:
        self._tokens: list[tuple[Token[_Context], _Context]] = []

    def _new(self, outer: _Context) -> _Context:
        raise NotImplementedError

    def _restored(self, outer: _Context, inner: _Context) -> _Context | None:
        """Return the context to go on with after the block, or None to restore the outer one as it was."""
        return None

    def __enter__(self) -> None:
        outer = _current.get()
        self._tokens.append((_current.set(self._new(outer)), outer))

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        token, outer = self._tokens.pop()
        after = self._restored(outer, _current.get())
        _current.reset(token)
        if after is not None:
            _current.set(after)

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, traceback)

    def _fresh(self) -> _ContextBlock:
        raise NotImplementedError

    def __call__(self, function: F) -> F:
        """Run ``function`` (sync or async) inside the block, a new one per call."""
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with self._fresh():
                    return await function(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return function(*args, **kwargs)

        return run  # type: ignore[return-value]


class use_primary(_ContextBlock):
    """Read the given apps (labels or aliases; every app with none) from their primaries inside the block.

    A context manager (``with`` and ``async with``) and a decorator for sync
    and async functions. Writes inside the block pin their databases for the
    rest of the context, as anywhere else.
    """

    def __init__(self, *labels: str) -> None:
        super().__init__()
        self._labels = labels

    def _fresh(self) -> use_primary:
        return use_primary(*self._labels)

    def _new(self, outer: _Context) -> _Context:
        if not self._labels:
            return outer._replace(pin_all=True)
        return outer._replace(pinned=outer.pinned | {resolve_alias(label) for label in self._labels})

    def _restored(self, outer: _Context, inner: _Context) -> _Context:
        # The block's pins end with it; its writes keep theirs, and its replica choices stand.
        return inner._replace(pinned=outer.pinned | inner.written, pin_all=outer.pin_all)


class replica_scope(_ContextBlock):
    """Run the block in a fresh read-your-writes context: nothing pinned, no replica chosen.

    The outer context is restored, unchanged, on exit. Use it around each
    task of a worker (a Celery task, a job) so that one task's writes do not
    pin the next one's reads; ``ReplicaPinningMiddleware`` does it for every
    request. A context manager (sync and async) and a decorator.
    """

    def __init__(self, *, replicas_in_tests: bool | None = None) -> None:
        super().__init__()
        self._replicas_in_tests = replicas_in_tests

    def _fresh(self) -> replica_scope:
        return replica_scope(replicas_in_tests=self._replicas_in_tests)

    def _new(self, outer: _Context) -> _Context:
        in_tests = outer.replicas_in_tests if self._replicas_in_tests is None else self._replicas_in_tests
        return _Context(replicas_in_tests=in_tests)


def pinned_aliases() -> frozenset[str]:
    """Return the primaries whose reads the current context sends to the primary."""
    context = _current.get()
    return frozenset(state.replicas) if context.pin_all else context.pinned & frozenset(state.replicas)


def pin_for_request(aliases: Iterable[str]) -> None:
    """Pin ``aliases`` (primaries the client wrote to recently) in the current context; they are not writes of it."""
    context = _current.get()
    known = {alias for alias in aliases if alias in state.replicas}
    if known - context.pinned:
        _current.set(context._replace(pinned=context.pinned | known))
