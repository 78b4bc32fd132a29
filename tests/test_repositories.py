"""AppRepository and AsyncAppRepository: patterns, transactions and the database guard."""

from __future__ import annotations

import asyncio
import datetime
import decimal

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.test.utils import isolate_apps
from sqlalchemy import create_engine, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from django_appdb import AppRepository, AsyncAppRepository, CrossDatabaseError, table_for
from django_appdb.sqlalchemy.tables import clear_cache
from inventory.models import Warehouse
from orders.models import Order, OrderLine
from tests.sa_engines import sync_engine
from tests.zoo import define_zoo, sample_values

ALL = ["default", "inventory", "orders"]
db = pytest.mark.django_db(databases=ALL, transaction=True)


class Orders(AppRepository):
    app_label = "orders"
    model = Order


class Lines(AppRepository):
    model = OrderLine


class AsyncOrders(AsyncAppRepository):
    app_label = "orders"
    model = Order


def sessionmaker_for(label: str):
    from django_appdb.sqlalchemy.sessions import get_sessionmaker

    return get_sessionmaker(label)


def async_sessionmaker_for(label: str):
    from django_appdb.sqlalchemy.sessions import get_async_sessionmaker

    return get_async_sessionmaker(label)


# -- get, list, count, add, update, delete ------------------------------------------


@db
def test_add_returns_the_stored_row_with_django_defaults():
    row = Orders().add(number="A-1", customer_email="ada@example.com")
    assert row._fields == ("id", "number", "customer_email", "placed_at", "paid", "total")
    assert (row.number, row.paid, row.total) == ("A-1", False, decimal.Decimal("0"))
    assert row.placed_at.utcoffset() == datetime.timedelta(0)
    stored = Order.objects.get(pk=row.id)
    assert (stored.number, stored.placed_at, stored.paid) == ("A-1", row.placed_at, False)


@db
def test_add_without_returning_reads_the_row_back(monkeypatch):
    from django_appdb.sqlalchemy.engines import get_engine

    monkeypatch.setattr(get_engine("orders").dialect, "insert_returning", False)
    row = Orders().add(number="A-1", customer_email="ada@example.com", total=decimal.Decimal("3.50"))
    assert (row.id, row.total) == (Order.objects.get(number="A-1").pk, decimal.Decimal("3.50"))


@db
def test_get_list_count_update_delete_read_what_django_wrote():
    first = Order.objects.create(number="A-1", customer_email="ada@example.com", total=decimal.Decimal("5.00"))
    second = Order.objects.create(number="B-2", customer_email="bob@example.com", paid=True)
    line = OrderLine.objects.create(order=first, sku="HAM-1", quantity=2, unit_price=decimal.Decimal("2.50"))
    orders = Orders()
    assert orders.get(first.pk).number == "A-1"
    assert orders.get(999_999) is None
    assert [row.number for row in orders.list()] == ["A-1", "B-2"]
    assert [row.number for row in orders.list(paid=True)] == ["B-2"]
    assert [row.number for row in orders.list(orders.c.total > 1)] == ["A-1"]
    assert [row.number for row in orders.list(order_by=[orders.c.number.desc()], limit=1)] == ["B-2"]
    assert [row.number for row in orders.list(offset=1)] == ["B-2"]
    assert orders.count() == 2 and orders.count(paid=False) == 1
    assert Lines().get(line.pk).order_id == first.pk
    assert [row.sku for row in Lines().list(order_id=first.pk)] == ["HAM-1"]

    assert orders.update(second.pk, paid=False, total=decimal.Decimal("7.25")) == 1
    assert orders.update(999_999, paid=True) == 0
    second.refresh_from_db()
    assert (second.paid, second.total) == (False, decimal.Decimal("7.25"))

    assert Lines().delete(line.pk) == 1
    assert orders.delete(first.pk) == 1 and orders.delete(first.pk) == 0
    assert list(Order.objects.values_list("number", flat=True)) == ["B-2"]


@db
def test_add_many_applies_defaults_to_every_row():
    assert Orders().add_many([]) == 0
    count = Orders().add_many([{"number": f"M-{i}", "customer_email": f"m{i}@example.com"} for i in range(3)])
    assert count == 3
    assert sorted(Order.objects.values_list("number", "paid")) == [("M-0", False), ("M-1", False), ("M-2", False)]
    assert Order.objects.filter(placed_at__isnull=False).count() == 3


@db
def test_none_means_is_null_and_unknown_columns_are_named():
    orders = Orders()
    assert orders.count(customer_email=None) == 0
    with pytest.raises(KeyError, match=r"no column 'colour'.*Columns: id, number"):
        orders.list(colour="red")
    with pytest.raises(KeyError, match=r"for the relation, use 'order_id'"):
        Lines().add(order=1, sku="X", quantity=1, unit_price=1)
    with pytest.raises(ValueError, match="at least one"):
        orders.update(1)


@db
def test_rows_are_keyed_by_attname_when_db_column_differs():
    with isolate_apps("orders"):
        zoo = define_zoo("orders")
    with connections["orders"].schema_editor() as editor:
        editor.create_model(zoo)
    try:
        repo_class = type("ZooRepository", (AppRepository,), {"model": zoo})
        row = repo_class().add(**sample_values())
        assert row.renamed == "renamed" and "RenamedCol" not in row._fields
        assert repo_class().list(renamed="renamed")[0].id == row.id
        assert zoo.objects.get(pk=row.id).renamed == "renamed"
    finally:
        with connections["orders"].schema_editor() as editor:
            editor.delete_model(zoo)
        clear_cache()


@db
def test_execute_runs_custom_statements_and_buffers_rows():
    Order.objects.create(number="A-1", customer_email="ada@example.com", total=decimal.Decimal("2.00"))
    Order.objects.create(number="B-2", customer_email="bob@example.com", total=decimal.Decimal("3.00"))
    orders = Orders()
    result = orders.execute(select(func.sum(orders.c.total)))
    # The session that ran it is closed already; the rows were buffered.
    assert result.scalar_one() == decimal.Decimal("5.00")


# -- transactions --------------------------------------------------------------------


@db
def test_a_with_block_is_one_transaction_that_rolls_back_on_error():
    with pytest.raises(RuntimeError, match="boom"), Orders() as orders:
        orders.add(number="A-1", customer_email="ada@example.com")
        orders.add(number="B-2", customer_email="bob@example.com")
        raise RuntimeError("boom")
    assert Order.objects.count() == 0
    with Orders() as orders:
        orders.add(number="A-1", customer_email="ada@example.com")
        assert orders.count() == 1
    assert Order.objects.count() == 1


@db
def test_nested_blocks_join_the_outer_transaction():
    orders = Orders()
    with pytest.raises(RuntimeError), orders:
        outer_session = orders.session
        with orders:
            assert orders.session is outer_session
            orders.add(number="A-1", customer_email="ada@example.com")
        raise RuntimeError("after the inner block")
    assert Order.objects.count() == 0


@db
def test_each_call_outside_a_block_commits_on_its_own():
    orders = Orders()
    orders.add(number="A-1", customer_email="ada@example.com")
    with pytest.raises(IntegrityError):
        orders.add(number="A-1", customer_email="again@example.com")
    assert list(Order.objects.values_list("customer_email", flat=True)) == ["ada@example.com"]
    with pytest.raises(RuntimeError, match="no session outside"):
        orders.session  # noqa: B018


@db
def test_a_given_session_is_joined_never_committed():
    with sessionmaker_for("orders")() as session:
        orders = Orders(session)
        with orders:
            orders.add(number="A-1", customer_email="ada@example.com")
        assert orders.session is session and session.in_transaction()
        Lines(session).add(order_id=orders.list()[0].id, sku="HAM-1", quantity=1, unit_price=1)
        session.rollback()
    assert Order.objects.count() == 0 and OrderLine.objects.count() == 0
    with sessionmaker_for("orders")() as session:
        Orders(session).add(number="A-1", customer_email="ada@example.com")
        session.commit()
    assert Order.objects.count() == 1


@db
def test_a_session_on_another_engine_for_the_same_database_is_accepted():
    with sync_engine("orders") as engine, engine.connect() as connection:
        with Session(bind=engine) as session:
            assert Orders(session).count() == 0
        with Session(bind=connection) as session:
            assert Orders(session).count() == 0


@db
def test_place_inserts_an_order_and_its_lines_atomically():
    from orders.repositories import Line, OrderRepository

    lines = [Line("HAM-1", 2, decimal.Decimal("9.50")), Line("SAW-2", 1, decimal.Decimal("1.25"))]
    order = OrderRepository().place("A-1", "ada@example.com", lines)
    assert order.total == decimal.Decimal("20.25")
    stored = Order.objects.get(number="A-1")
    assert sorted(stored.lines.values_list("sku", "quantity")) == [("HAM-1", 2), ("SAW-2", 1)]
    # A line that breaks a constraint undoes the whole order.
    with pytest.raises(IntegrityError):
        OrderRepository().place("B-2", "bob@example.com", [Line("X", 1, decimal.Decimal("1")), Line(None, 1, 1)])
    assert not Order.objects.filter(number="B-2").exists()


# -- async ---------------------------------------------------------------------------


@db
@pytest.mark.async_drivers
def test_async_repository_writes_rows_the_django_orm_reads():
    async def main() -> datetime.datetime:
        row = await AsyncOrders().add(number="A-1", customer_email="ada@example.com", total=decimal.Decimal("12.34"))
        await AsyncOrders().update(row.id, paid=True)
        return row.placed_at

    placed_at = asyncio.run(main())
    stored = Order.objects.get(number="A-1")
    assert (stored.total, stored.paid, stored.placed_at) == (decimal.Decimal("12.34"), True, placed_at)


@db
@pytest.mark.async_drivers
def test_async_repository_reads_rows_the_django_orm_wrote_across_event_loops():
    Order.objects.create(number="A-1", customer_email="ada@example.com")
    Order.objects.create(number="B-2", customer_email="bob@example.com", paid=True)

    async def read() -> tuple[list[str], int, str | None]:
        orders = AsyncOrders()
        rows = await orders.list()
        one = await orders.get(rows[0].id)
        return [row.number for row in rows], await orders.count(paid=True), one.number if one else None

    for _ in range(3):
        assert asyncio.run(read()) == (["A-1", "B-2"], 1, "A-1")


@db
@pytest.mark.async_drivers
def test_async_block_is_one_transaction_and_a_given_session_is_joined():
    async def failing() -> None:
        async with AsyncOrders() as orders:
            await orders.add(number="A-1", customer_email="ada@example.com")
            async with orders:
                await orders.add(number="B-2", customer_email="bob@example.com")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        asyncio.run(failing())
    assert Order.objects.count() == 0

    async def joined() -> None:
        async with async_sessionmaker_for("orders")() as session:
            orders = AsyncOrders(session)
            await orders.add(number="A-1", customer_email="ada@example.com")
            await orders.add_many([{"number": "B-2", "customer_email": "bob@example.com"}])
            assert await orders.count() == 2
            await session.rollback()
            await orders.add(number="C-3", customer_email="cy@example.com")
            await session.commit()

    asyncio.run(joined())
    assert list(Order.objects.values_list("number", flat=True)) == ["C-3"]


@db
@pytest.mark.async_drivers
def test_async_execute_delete_and_guard():
    Order.objects.create(number="A-1", customer_email="ada@example.com")

    async def main() -> int:
        orders = AsyncOrders()
        (row,) = (await orders.execute(select(orders.c.id))).all()
        with pytest.raises(CrossDatabaseError):
            await orders.execute(select(table_for(Warehouse)))
        return await orders.delete(row.id)

    assert asyncio.run(main()) == 1
    assert Order.objects.count() == 0


# -- the guard: a repository never touches another app's database -------------------


def test_a_model_on_another_database_is_refused():
    class Wrong(AppRepository):
        app_label = "orders"
        model = Warehouse

    with pytest.raises(CrossDatabaseError) as caught:
        Wrong()
    assert "model inventory.Warehouse lives in database 'inventory'" in str(caught.value)
    assert "app 'orders' uses database 'orders'" in str(caught.value)


def test_app_label_comes_from_the_model_and_must_exist():
    assert Lines.app_label == "orders"
    assert repr(Lines()) == "<Lines app='orders' database='orders' model=orders.OrderLine>"

    class Nameless(AppRepository):
        pass

    class Unknown(AppRepository):
        app_label = "nope"

    with pytest.raises(TypeError, match="needs app_label"):
        Nameless()
    with pytest.raises(LookupError, match="nope"):
        Unknown()
    with pytest.raises(TypeError, match="has no model"):
        type("NoModel", (AppRepository,), {"app_label": "orders"})().table  # noqa: B018


def test_apps_sharing_a_database_may_share_tables():
    class Users(AppRepository):
        app_label = "catalog"
        model = User

    assert Users().table is table_for(User)


@db
def test_tables_and_statements_of_another_database_are_refused_before_running():
    orders = Orders()
    warehouses = table_for(Warehouse)
    with pytest.raises(CrossDatabaseError, match=r"cannot use table 'inventory_warehouse' of inventory\.Warehouse"):
        orders.table_for(Warehouse)
    for statement in (
        select(warehouses),
        select(orders.c.id).where(orders.c.number.in_(select(warehouses.c.code))),
        select(warehouses.alias("w").c.code),
        insert(warehouses).values(code="N", name="North"),
    ):
        with pytest.raises(CrossDatabaseError, match="lives in database 'inventory'"):
            orders.execute(statement)
    assert Warehouse.objects.count() == 0 and Order.objects.count() == 0


@pytest.mark.psycopg
def test_sessions_of_another_database_are_refused_with_the_password_masked():
    engine = create_engine("postgresql+psycopg://appuser:s3cret-pw@db.example.com/elsewhere")
    with Session(bind=engine) as session, pytest.raises(CrossDatabaseError) as caught:
        Orders(session)
    message = str(caught.value)
    assert "s3cret-pw" not in message and "********" in message and "db.example.com/elsewhere" in message
    engine.dispose()


@pytest.mark.async_drivers
def test_sessions_bound_to_another_app_database_or_to_nothing_are_refused():
    from sqlalchemy.ext.asyncio import AsyncSession

    from django_appdb.sqlalchemy.engines import get_async_engine, get_engine

    with Session(bind=get_engine("inventory")) as session, pytest.raises(CrossDatabaseError, match="not to the app"):
        Orders(session)
    with Session() as session, pytest.raises(CrossDatabaseError, match="no bind"):
        Orders(session)

    async def refused() -> None:
        # Async engines belong to a running event loop.
        session = AsyncSession(bind=get_async_engine("inventory"))
        with pytest.raises(CrossDatabaseError, match="not to the app"):
            AsyncOrders(session)

    asyncio.run(refused())


@pytest.mark.async_drivers
def test_sync_and_async_sessions_are_not_mixed_up():
    from sqlalchemy.ext.asyncio import AsyncSession

    from django_appdb.sqlalchemy.engines import get_async_engine, get_engine

    async def mixed_up() -> None:
        with pytest.raises(TypeError, match="use an AsyncAppRepository"):
            Orders(AsyncSession(bind=get_async_engine("orders")))  # type: ignore[arg-type]

    asyncio.run(mixed_up())
    with Session(bind=get_engine("orders")) as session, pytest.raises(TypeError, match="use an AppRepository"):
        AsyncOrders(session)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"needs a sqlalchemy\.orm\.Session"):
        Orders("not a session")  # type: ignore[arg-type]
