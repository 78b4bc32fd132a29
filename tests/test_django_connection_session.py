"""SQLAlchemy sessions on Django's own connection: ``django_connection_session`` and ``appdb_django_session``.

``inventory`` is always SQLite; ``orders`` is PostgreSQL when
APPDB_TEST_POSTGRES_URL is set, so both backends are covered by one run with
it set.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import NotSupportedError, connections, transaction
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError

from django_appdb import get_sync_app_session, table_for
from django_appdb.sqlalchemy.djangoconnection import in_test_transaction
from django_appdb.state import resolve_alias as database_alias
from django_appdb.testing import django_connection_session
from inventory.models import StockItem, Warehouse
from orders.models import Order, OrderLine
from orders.repositories import Line, OrderRepository

DATABASES = ["default", "inventory", "orders"]
LABELS = ["inventory", "orders"]
in_test = pytest.mark.django_db(databases=DATABASES)
transactional = pytest.mark.django_db(databases=DATABASES, transaction=True)


def model(label: str) -> Any:
    return Warehouse if label == "inventory" else Order


def orm_create(label: str, key: str) -> None:
    if label == "inventory":
        Warehouse.objects.create(code=key, name=f"Warehouse {key}")
    else:
        Order.objects.create(number=key, customer_email="ada@example.com", total=Decimal("12.50"))


def orm_keys(label: str) -> set[str]:
    if label == "inventory":
        return set(Warehouse.objects.values_list("code", flat=True))
    return set(Order.objects.values_list("number", flat=True))


def sa_insert(session: Any, label: str, key: str) -> None:
    table = table_for(model(label))
    if label == "inventory":
        session.execute(insert(table).values(code=key, name=f"Warehouse {key}"))
    else:
        session.execute(insert(table).values(number=key, customer_email="bob@example.com"))


def sa_keys(session: Any, label: str) -> set[str]:
    table = table_for(model(label))
    column = table.c.code if label == "inventory" else table.c.number
    return set(session.scalars(select(column)))


@in_test
@pytest.mark.parametrize("label", LABELS)
def test_the_session_sees_the_orms_uncommitted_rows(appdb_django_session, label):
    orm_create(label, "ORM-1")
    session = appdb_django_session(label)
    assert sa_keys(session, label) == {"ORM-1"}
    assert in_test_transaction(connections[label])


@in_test
@pytest.mark.parametrize("label", LABELS)
def test_the_orm_sees_what_the_session_flushed_and_committed(appdb_django_session, label):
    session = appdb_django_session(label)
    sa_insert(session, label, "SA-1")
    assert orm_keys(label) == {"SA-1"}  # executed, not yet committed
    session.commit()
    assert orm_keys(label) == {"SA-1"}
    # Still inside the test's transaction, which Django rolls back.
    assert connections[label].in_atomic_block


@in_test
@pytest.mark.parametrize("label", LABELS)
def test_rollback_undoes_only_the_sessions_work(appdb_django_session, label):
    orm_create(label, "ORM")
    session = appdb_django_session(label)
    sa_insert(session, label, "GONE")
    session.rollback()
    assert orm_keys(label) == {"ORM"}
    sa_insert(session, label, "KEPT")
    session.commit()
    sa_insert(session, label, "GONE-TOO")
    session.rollback()
    assert orm_keys(label) == {"ORM", "KEPT"}
    assert sa_keys(session, label) == {"ORM", "KEPT"}
    orm_create(label, "ORM-AFTER")
    assert sa_keys(session, label) == {"ORM", "KEPT", "ORM-AFTER"}


@in_test
@pytest.mark.parametrize("label", LABELS)
def test_a_failed_statement_is_rolled_back_and_the_test_carries_on(appdb_django_session, label):
    orm_create(label, "TAKEN")
    session = appdb_django_session(label)
    with pytest.raises(IntegrityError):
        sa_insert(session, label, "TAKEN")
    session.rollback()
    # On PostgreSQL the transaction would be aborted had the savepoint not been rolled back.
    orm_create(label, "NEXT")
    assert orm_keys(label) == {"TAKEN", "NEXT"}


@in_test
def test_the_same_session_for_the_same_database_within_a_test(appdb_django_session):
    assert appdb_django_session("orders") is appdb_django_session("orders")
    # "catalog" and "default" name the same database.
    assert appdb_django_session("catalog") is appdb_django_session("default")
    assert appdb_django_session("inventory") is not appdb_django_session("orders")


@in_test
def test_results_have_the_types_of_the_apps_own_engine(appdb_django_session):
    warehouse = Warehouse.objects.create(code="W", name="Main")
    StockItem.objects.create(warehouse=warehouse, sku="HAM-1", quantity=3, attributes={"colour": ["red", 1]})
    order = Order.objects.create(number="T-1", customer_email="ada@example.com", total=Decimal("9.50"))
    OrderLine.objects.create(order=order, sku="HAM-1", quantity=2, unit_price=Decimal("4.75"))
    shared = {
        "stock": appdb_django_session("inventory").execute(select(table_for(StockItem))).one(),
        "order": appdb_django_session("orders").execute(select(table_for(Order))).one(),
    }
    assert shared["stock"].attributes == {"colour": ["red", 1]}
    assert shared["order"].total == Decimal("9.50")
    assert shared["order"].placed_at == order.placed_at
    assert shared["order"].placed_at.tzinfo is not None
    assert shared["order"].paid is False


@transactional
def test_results_match_a_session_on_the_apps_engine(appdb_session):
    warehouse = Warehouse.objects.create(code="W", name="Main")
    StockItem.objects.create(warehouse=warehouse, sku="HAM-1", quantity=3, attributes={"colour": ["red", 1]})
    Order.objects.create(number="T-1", customer_email="ada@example.com", total=Decimal("9.50"))
    for label, table in [("inventory", table_for(StockItem)), ("orders", table_for(Order))]:
        own = appdb_session(label).execute(select(table)).one()
        with django_connection_session(label) as session:
            assert session.execute(select(table)).one() == own


@pytest.mark.postgres
@in_test
def test_postgresql_values_load_as_on_sqlalchemys_connections(appdb_django_session):
    if connections["orders"].vendor != "postgresql":
        pytest.skip("orders is on PostgreSQL only when APPDB_TEST_POSTGRES_URL is set")
    query = text("""SELECT CAST('{"a": [1, 2]}' AS jsonb), CAST('{"b": 1}' AS json), CAST('10.0.0.1' AS inet)""")
    jsonb, json_, inet = appdb_django_session("orders").execute(query).one()
    assert (jsonb, json_, str(inet)) == ({"a": [1, 2]}, {"b": 1}, "10.0.0.1")
    # Django's own cursors keep Django's loaders: jsonb and inet as text.
    with connections["orders"].cursor() as cursor:
        cursor.execute(query.text)
        assert cursor.fetchone()[0::2] == ('{"a": [1, 2]}', "10.0.0.1")


@in_test
@pytest.mark.parametrize("label", LABELS)
def test_djangos_connection_is_left_as_django_made_it(appdb_django_session, label):
    connection = connections[label]
    orm_create(label, "ORM")  # Django's transaction has begun
    raw = connection.connection
    before = _connection_state(connection)
    session = appdb_django_session(label)
    sa_insert(session, label, "SA")
    session.commit()
    session.rollback()
    assert connection.connection is raw
    assert _connection_state(connection) == before
    if connection.vendor == "sqlite":
        # Django's regexp() returns NULL for a NULL pattern; SQLAlchemy's would raise.
        with connection.cursor() as cursor:
            cursor.execute("SELECT regexp(NULL, 'x')")
            assert cursor.fetchone() == (None,)


def _connection_state(connection: Any) -> dict[str, Any]:
    raw = connection.connection
    state: dict[str, Any] = {"autocommit": connection.get_autocommit(), "in_atomic": connection.in_atomic_block}
    if connection.vendor == "postgresql":
        from psycopg.pq import Format

        jsonb = raw.adapters.types["jsonb"].oid
        state.update(
            isolation=raw.isolation_level,
            read_only=raw.read_only,
            jsonb_loader=raw.adapters.get_loader(jsonb, Format.TEXT),
            notice_handlers=len(raw._notice_handlers),
            status=raw.info.transaction_status,
        )
    else:
        state.update(isolation=raw.isolation_level, in_transaction=raw.in_transaction)
    return state


@in_test
def test_settings_that_would_change_djangos_connection_are_refused(appdb_django_session):
    dbapi_connection = appdb_django_session("orders").connection().connection.dbapi_connection
    with pytest.raises(NotSupportedError, match=r"cannot change its 'autocommit'.*belong to Django"):
        dbapi_connection.autocommit = True
    assert not connections["orders"].get_autocommit()


@in_test
def test_an_app_repository_accepts_the_session(appdb_django_session):
    session = appdb_django_session("orders")
    OrderRepository(session).place("R-1", "ada@example.com", [Line("HAM-1", 2, Decimal("4.75"))])
    order = Order.objects.get(number="R-1")
    assert order.total == Decimal("9.50")
    assert order.lines.get().sku == "HAM-1"


# -- the context manager --------------------------------------------------


@in_test
@pytest.mark.parametrize("label", LABELS)
def test_the_context_manager_commits_into_djangos_transaction_on_a_clean_exit(label):
    orm_create(label, "ORM")
    with django_connection_session(label) as session:
        assert sa_keys(session, label) == {"ORM"}
        sa_insert(session, label, "SA")
    assert orm_keys(label) == {"ORM", "SA"}
    assert connections[label].in_atomic_block


@in_test
@pytest.mark.parametrize("label", LABELS)
def test_the_context_manager_rolls_back_when_the_block_raises(label):
    orm_create(label, "ORM")
    with pytest.raises(ZeroDivisionError), django_connection_session(label) as session:
        sa_insert(session, label, "SA")
        orm_create(label, "ORM-INSIDE")
        1 / 0  # noqa: B018
    assert orm_keys(label) == {"ORM"}


@transactional
@pytest.mark.parametrize("label", LABELS)
def test_rolling_back_djangos_transaction_leaves_nothing(label):
    with transaction.atomic(using=label):
        orm_create(label, "ORM")
        with django_connection_session(label) as session:
            sa_insert(session, label, "SA")
            session.commit()
        assert orm_keys(label) == {"ORM", "SA"}
        transaction.set_rollback(True, using=label)
    assert orm_keys(label) == set()
    with get_sync_app_session(label) as session:
        assert sa_keys(session, label) == set()


@transactional
@pytest.mark.parametrize("label", LABELS)
def test_outside_a_transaction_the_context_manager_commits_for_real(label):
    with django_connection_session(label) as session:
        sa_insert(session, label, "SA")
    assert not connections[label].in_atomic_block
    with get_sync_app_session(label) as session:
        assert sa_keys(session, label) == {"SA"}


@in_test
def test_the_context_manager_accepts_labels_and_aliases():
    assert database_alias("catalog") == database_alias("default") == "default"
    assert database_alias("auth") == "default"
    with django_connection_session("catalog") as session:
        assert session.scalar(text("SELECT 1")) == 1
    with pytest.raises(LookupError, match=r"neither an installed app label nor a database alias"):
        database_alias("nope")


@pytest.mark.django_db(databases=["default"])
def test_a_database_the_test_did_not_declare_is_refused():
    with pytest.raises(AssertionError, match=r"'orders' are not allowed"), django_connection_session("orders"):
        pass


@in_test
def test_an_unsupported_backend_raises_a_clear_error(monkeypatch):
    blocks = list(connections["inventory"].atomic_blocks)  # the test's own
    monkeypatch.setattr(connections["inventory"], "vendor", "mysql")
    with pytest.raises(NotSupportedError, match=r"'mysql' backend is not supported.*transaction=True"):
        with django_connection_session("inventory"):
            pass
    assert connections["inventory"].atomic_blocks == blocks


# -- the fixture's own checks ---------------------------------------------


def test_the_fixture_needs_database_access(appdb_django_session):
    with pytest.raises(pytest.fail.Exception, match=r"needs database access"):
        appdb_django_session("orders")


@pytest.mark.django_db(databases=["default", "inventory"])
def test_the_fixture_refuses_a_database_the_test_did_not_declare(appdb_django_session):
    with pytest.raises(pytest.fail.Exception, match=r"may not use database alias 'orders'.*declared"):
        appdb_django_session("orders")


@pytest.mark.django_db(databases="__all__")
def test_all_databases_may_be_declared_at_once(appdb_django_session):
    assert appdb_django_session("orders").scalar(select(func.count()).select_from(table_for(Order))) == 0


@transactional
def test_the_fixture_refuses_transactional_tests(appdb_django_session):
    with pytest.raises(pytest.fail.Exception, match=r"this test has none.*Use appdb_session"):
        appdb_django_session("orders")
