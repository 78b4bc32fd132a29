"""Fixtures of the replica tests: ``orders`` given scratch SQLite replicas, fresh health, a fake clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from django_appdb import replicas
from django_appdb.replicas import health
from django_appdb.state import state

R1, R2 = "orders_replica_1", "orders_replica_2"


@pytest.fixture
def fresh_health() -> Iterator[None]:
    """Forget what is known of replicas' health, before and after the test."""
    health.clear()
    yield
    health.clear()


@pytest.fixture
def sqlite_replica(add_alias: Callable[..., str], tmp_path: Path, unblocked: None) -> Callable[[str], str]:
    """Return a factory of SQLite replica aliases, each a scratch file, query-only as the planner makes them."""

    def factory(alias: str) -> str:
        return add_alias(
            alias,
            ENGINE="django.db.backends.sqlite3",
            NAME=str(tmp_path / f"{alias}.sqlite3"),
            OPTIONS={"init_command": "PRAGMA query_only = ON; PRAGMA read_uncommitted = ON"},
            TEST={"MIRROR": "orders"},
        )

    return factory


def give_replicas(monkeypatch: pytest.MonkeyPatch, primary: str, *names: str) -> None:
    """Load ``names`` as ``primary``'s replicas into ``state``, in place (the router keeps the same objects)."""
    monkeypatch.setitem(state.replicas, primary, tuple(names))
    for name in names:
        monkeypatch.setitem(state.primaries, name, primary)


@pytest.fixture
def two_replicas(monkeypatch: pytest.MonkeyPatch, sqlite_replica: Callable[[str], str]) -> tuple[str, str]:
    give_replicas(monkeypatch, "orders", sqlite_replica(R1), sqlite_replica(R2))
    return R1, R2


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """Replace the replicas module's monotonic clock by one the test moves."""
    fake = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(replicas, "time", SimpleNamespace(monotonic=lambda: fake.now, time=lambda: fake.now))
    return fake
