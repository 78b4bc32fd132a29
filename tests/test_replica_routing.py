"""Routing with read replicas, in this process: which alias each read and write gets, and when.

The ``orders`` alias is given replicas for each test: scratch SQLite files
added as aliases (``add_alias``), or a PostgreSQL alias on a loopback port
nothing listens on, loaded into ``state`` as the planner would load them.
Time, where it matters (the retry interval), is a fake clock, never a sleep.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connections, router
from django.test import override_settings

from catalog.models import Category
from django_appdb import replicas
from django_appdb.replicas import health, read_alias, replica_scope
from django_appdb.routers import AppDatabaseRouter
from django_appdb.testing import replica_routing
from orders.models import Order, OrderLine
from tests.replica_fixtures import R1, R2, give_replicas

pytestmark = pytest.mark.usefixtures("fresh_health")


@pytest.fixture
def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def dead_replica(add_alias: Callable[..., str], dead_port: int, unblocked: None) -> str:
    """Return a PostgreSQL replica alias on a loopback port nothing listens on."""
    pytest.importorskip("psycopg")
    return add_alias(
        "orders_replica_dead",
        ENGINE="django.db.backends.postgresql",
        NAME="nowhere",
        USER="nobody",
        HOST="127.0.0.1",
        PORT=str(dead_port),
        OPTIONS={"connect_timeout": 2},
        TEST={"MIRROR": "orders"},
    )


# -- during a test run -----------------------------------------------------------------------------


def test_reads_go_to_the_primary_during_a_test_run(two_replicas):
    assert router.db_for_read(Order) == "orders"
    assert AppDatabaseRouter().db_for_read(Order) == "orders"
    assert Order.objects.all().db == "orders"
    # Nothing was chosen or pinned: it is the test run that decided.
    assert replicas.pinned_aliases() == frozenset()


def test_replica_routing_sends_reads_to_a_replica(two_replicas):
    with replica_routing():
        chosen = router.db_for_read(Order)
        assert chosen in two_replicas
        assert AppDatabaseRouter().db_for_read(Order) == chosen
        assert Order.objects.all().db == chosen
        # A related model of the same app, an instance, a saved instance: the same replica.
        assert router.db_for_read(OrderLine) == chosen
        assert AppDatabaseRouter().db_for_read(Order(number="x")) == chosen
    # Over: back to the primary.
    assert router.db_for_read(Order) == "orders"


def test_replica_routing_as_a_decorator(two_replicas):
    @replica_routing()
    def read() -> str | None:
        return router.db_for_read(Order)

    assert read() in two_replicas
    assert read() in two_replicas
    assert router.db_for_read(Order) == "orders"


def test_an_alias_without_replicas_is_routed_as_before(two_replicas):
    with replica_routing():
        assert AppDatabaseRouter().db_for_read(Category) is None
        assert router.db_for_read(Category) == "default"
        assert AppDatabaseRouter().db_for_write(Category) is None
        assert replicas.written() == frozenset()


# -- writes pin --------------------------------------------------------------------------------------


def test_a_write_goes_to_the_primary_and_pins_it_for_the_rest_of_the_context(two_replicas):
    with replica_routing():
        assert router.db_for_read(Order) in two_replicas
        assert router.db_for_write(Order) == "orders"
        assert replicas.written() == {"orders"}
        assert replicas.pinned_aliases() == {"orders"}
        assert router.db_for_read(Order) == "orders"
        assert router.db_for_read(OrderLine) == "orders"
    with replica_routing():
        # A fresh context: unpinned.
        assert router.db_for_read(Order) in two_replicas


def test_a_write_of_an_instance_pins_too(two_replicas):
    with replica_routing():
        assert AppDatabaseRouter().db_for_write(Order(number="y")) == "orders"
        assert router.db_for_read(Order) == "orders"


# -- the choice ------------------------------------------------------------------------------------


def test_the_choice_is_kept_for_the_rest_of_the_context(two_replicas):
    with replica_routing():
        first = router.db_for_read(Order)
        assert {router.db_for_read(Order) for _ in range(50)} == {first}


def test_the_choice_is_random_across_contexts(two_replicas):
    seen = set()
    with replica_routing():
        for _ in range(200):
            with replica_scope():
                seen.add(router.db_for_read(Order))
    assert seen == set(two_replicas)


def test_a_chosen_replica_that_goes_down_is_replaced_in_the_same_context(two_replicas):
    with replica_routing():
        first = router.db_for_read(Order)
        health.mark_down(first)
        other = router.db_for_read(Order)
        assert other in two_replicas and other != first
        assert router.db_for_read(Order) == other


def test_a_lagging_replica_is_never_chosen(two_replicas):
    with override_settings(APPDB_REPLICA_MAX_LAG=5):
        health.record_lag(R1, 6.0)
        health.record_lag(R2, 4.0)
        with replica_routing():
            for _ in range(30):
                with replica_scope():
                    assert router.db_for_read(Order) == R2
            health.record_lag(R2, 9.0)
            # Both lag: the primary, and nothing pinned.
            assert router.db_for_read(Order) == "orders"
            assert replicas.pinned_aliases() == frozenset()
    # Without a limit, lag does not matter.
    with replica_routing():
        assert router.db_for_read(Order) in two_replicas


def test_the_lag_is_due_only_with_a_limit_and_once_per_interval(clock):
    assert not health.lag_due(R1, clock.now)
    with override_settings(APPDB_REPLICA_MAX_LAG=1, APPDB_REPLICA_LAG_CHECK_SECONDS=5):
        assert health.lag_due(R1, clock.now)
        health.record_lag(R1, 0.5)
        assert not health.lag_due(R1, clock.now + 4.9)
        assert health.lag_due(R1, clock.now + 5)
        assert not health.lagging(R1)
        health.record_lag(R1, 1.5)
        assert health.lagging(R1)


def test_the_lag_is_measured_at_most_once_per_interval_per_replica(monkeypatch, clock):
    give_replicas(monkeypatch, "orders", R1)
    measured: list[str] = []

    def probe(alias: str) -> float | None:
        due = health.lag_due(alias, clock.now)
        if due:
            measured.append(alias)
        return 0.0 if due else None

    with override_settings(APPDB_REPLICA_MAX_LAG=1, APPDB_REPLICA_LAG_CHECK_SECONDS=5), replica_routing():
        for _ in range(10):
            with replica_scope():
                assert read_alias("orders", probe) == R1
        assert measured == [R1]
        clock.now += 5
        with replica_scope():
            assert read_alias("orders", probe) == R1
        assert measured == [R1, R1]


# -- a replica that is down ------------------------------------------------------------------------


def test_a_replica_on_a_dead_port_is_marked_down_and_the_read_falls_back(monkeypatch, dead_replica, clock):
    give_replicas(monkeypatch, "orders", dead_replica)
    with replica_routing():
        assert router.db_for_read(Order) == "orders"
        assert health.is_down(dead_replica, clock.now)
        # Not pinned: a later context tries the replicas again (once the interval is over).
        assert replicas.pinned_aliases() == frozenset()
        assert replicas.written() == frozenset()


def test_a_dead_replica_is_skipped_for_the_retry_interval_then_tried_again(
    monkeypatch, dead_replica, sqlite_replica, clock
):
    ok = sqlite_replica(R1)
    give_replicas(monkeypatch, "orders", dead_replica, ok)
    attempts: list[float] = []
    real_probe = replicas._django_probe

    def counting_probe(alias: str) -> float | None:
        if alias == dead_replica:
            attempts.append(clock.now)
        return real_probe(alias)

    with override_settings(APPDB_REPLICA_RETRY_SECONDS=7), replica_routing():
        # Until the dead one has been tried once, either may come first.
        while not attempts:
            with replica_scope():
                assert read_alias("orders", counting_probe) == ok
        assert health.down_until[dead_replica] == clock.now + 7
        clock.now += 6.9
        for _ in range(20):
            with replica_scope():
                assert read_alias("orders", counting_probe) == ok
        assert len(attempts) == 1
        clock.now += 0.2
        while len(attempts) == 1:
            with replica_scope():
                assert read_alias("orders", counting_probe) == ok
        assert attempts[1] == clock.now
        assert health.down_until[dead_replica] == clock.now + 7


def test_a_replica_that_answers_again_is_marked_up(two_replicas, clock):
    with override_settings(APPDB_REPLICA_RETRY_SECONDS=30):
        health.mark_down(R1)
        health.mark_down(R2)
        with replica_routing():
            assert router.db_for_read(Order) == "orders"
            clock.now += 30
            chosen = router.db_for_read(Order)
            assert chosen in two_replicas
        # The one that answered is up again; the other was not tried.
        assert chosen not in health.down_until
        assert len(health.down_until) == 1


def test_every_replica_down_reads_the_primary_and_never_raises(monkeypatch, dead_replica):
    give_replicas(monkeypatch, "orders", dead_replica)
    with replica_routing():
        assert [router.db_for_read(Order) for _ in range(3)] == ["orders"] * 3


def test_a_probe_error_that_is_not_a_database_error_is_not_swallowed(two_replicas):
    def broken(alias: str) -> float | None:
        raise RuntimeError("a bug, not an outage")

    with replica_routing(), pytest.raises(RuntimeError, match="a bug"):
        read_alias("orders", broken)
    assert health.down_until == {}


# -- the default database with replicas ------------------------------------------------------------


def test_default_with_replicas(monkeypatch, sqlite_replica):
    replica = sqlite_replica("default_replica_1")
    give_replicas(monkeypatch, "default", replica)
    app_router = AppDatabaseRouter()
    # During a test run, and when pinned, an app on default still gets None: Django's own fallback applies.
    assert app_router.db_for_read(Category) is None
    with replica_routing():
        assert app_router.db_for_read(Category) == replica
        assert router.db_for_read(Category) == replica
        assert app_router.db_for_write(Category) is None
        assert replicas.written() == {"default"}
        assert app_router.db_for_read(Category) is None
        # Django's fallback: the instance's database, for a router that says None.
        instance = Category(name="c")
        instance._state.db = "inventory"
        assert router.db_for_read(Category, instance=instance) == "inventory"
    assert app_router.allow_migrate(replica, "catalog") is False
    assert app_router.allow_migrate("default", "catalog") is True
    # orders has no replicas here.
    assert app_router.db_for_read(Order) == "orders"


def test_an_object_read_on_a_replica_of_default_is_saved_to_default(monkeypatch, sqlite_replica):
    replica = sqlite_replica("default_replica_1")
    give_replicas(monkeypatch, "default", replica)
    from_replica = Category(name="c")
    from_replica._state.db = replica
    elsewhere = Category(name="d")
    elsewhere._state.db = "inventory"
    with replica_routing():
        # Django saves an object where it was read when routers say None: never on a replica.
        assert router.db_for_write(Category, instance=from_replica) == "default"
        assert replicas.written() == {"default"}
        # Pinned now: a related read from that object goes to the primary, not back to the replica.
        assert router.db_for_read(Category, instance=from_replica) == "default"
        # An object read with using() elsewhere keeps Django's own rule.
        assert router.db_for_write(Category, instance=elsewhere) == "inventory"
        assert router.db_for_read(Category, instance=elsewhere) == "inventory"
    with replica_routing(), replica_scope():
        # Unpinned, a read from it may go to a replica, as any read does.
        assert router.db_for_read(Category, instance=from_replica) == replica


# -- relations and migrations ----------------------------------------------------------------------


def saved(model: type[Any], alias: str) -> Any:
    instance = model()
    instance._state.db = alias
    return instance


def test_a_primary_and_its_replicas_are_one_database_for_relations(two_replicas):
    app_router = AppDatabaseRouter()
    assert app_router.allow_relation(saved(Order, R1), saved(OrderLine, "orders")) is True
    assert app_router.allow_relation(saved(Order, "orders"), saved(OrderLine, R2)) is True
    assert app_router.allow_relation(saved(Order, R1), saved(OrderLine, R2)) is True
    # Unsaved: by the model's home.
    assert app_router.allow_relation(Order(), saved(OrderLine, R1)) is True
    assert app_router.allow_relation(saved(Order, R1), saved(Category, "default")) is False
    assert app_router.allow_relation(saved(Order, R1), Category()) is False
    assert app_router.allow_relation(saved(Order, "orders"), saved(Category, "default")) is False


def test_replicas_of_different_primaries_are_different_databases(monkeypatch, two_replicas, sqlite_replica):
    give_replicas(monkeypatch, "default", sqlite_replica("default_replica_1"))
    app_router = AppDatabaseRouter()
    assert app_router.allow_relation(saved(Order, R1), saved(Category, "default_replica_1")) is False
    assert app_router.allow_relation(saved(Category, "default"), saved(Category, "default_replica_1")) is True


def test_without_replicas_an_alias_looking_like_one_is_not_merged(add_alias, tmp_path):
    add_alias(R1, ENGINE="django.db.backends.sqlite3", NAME=str(tmp_path / "r.sqlite3"))
    assert AppDatabaseRouter().allow_relation(saved(Order, R1), saved(OrderLine, "orders")) is False


def test_no_migrations_on_a_replica_and_every_other_answer_unchanged(two_replicas):
    app_router = AppDatabaseRouter()
    for label in ("orders", "catalog", "inventory", "auth", "notes", "nosuch"):
        assert app_router.allow_migrate(R1, label) is False
        assert app_router.allow_migrate(R2, label, model_name="order") is False
    assert app_router.allow_migrate("orders", "orders") is True
    assert app_router.allow_migrate("orders", "catalog") is False
    assert app_router.allow_migrate("default", "orders") is False
    assert app_router.allow_migrate("default", "catalog") is True
    assert app_router.allow_migrate("inventory", "inventory") is True
    assert app_router.allow_migrate("unknown_alias", "orders") is None
    assert app_router.allow_migrate("orders_replica_3", "orders") is None


# -- SQLAlchemy ------------------------------------------------------------------------------------


def test_a_sqlalchemy_replica_session_reads_the_replica_and_cannot_write(two_replicas):
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from django_appdb import get_sync_app_session

    with replica_routing():
        chosen = router.db_for_read(Order)
        with get_sync_app_session("orders", replica=True) as session:
            # The same replica as the ORM's reads in this context.
            assert session.bind.url.database == str(Path(connections.settings[chosen]["NAME"]))
            assert session.scalar(text("PRAGMA query_only")) == 1
            with pytest.raises(OperationalError, match="readonly"):
                session.execute(text("CREATE TABLE written (x INTEGER)"))
        assert replicas.written() == frozenset()


@pytest.mark.parametrize(
    "setting, value",
    [
        ("APPDB_REPLICA_RETRY_SECONDS", 1.0),
        ("APPDB_REPLICA_MAX_LAG", 100.0),
        ("APPDB_REPLICA_LAG_CHECK_SECONDS", 1.0),
        ("APPDB_REPLICAS", {}),
    ],
)
def test_changing_a_replica_setting_forgets_what_was_learnt_of_replicas(two_replicas, setting, value):
    health.mark_down(R1)
    health.record_lag(R2, 9.0)
    with override_settings(**{setting: value}):
        assert health.down_until == {} and health.lag == {}
        health.mark_down(R2)
    # Leaving the override is a change too.
    assert health.down_until == {}


def test_another_setting_keeps_what_was_learnt_of_replicas(two_replicas):
    health.mark_down(R1)
    with override_settings(USE_TZ=False):
        assert R1 in health.down_until
