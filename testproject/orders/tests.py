"""Tests of the orders app; Django's runner and pytest both run them.

They only ever reach the test database Django derives from the orders alias,
through the ORM and through SQLAlchemy alike.
"""

from decimal import Decimal

from django.db import connections, router
from django.test import TestCase, TransactionTestCase
from sqlalchemy import func, insert, select

from django_appdb import get_app_session, get_async_engine, get_engine, get_sync_app_session, table_for
from django_appdb.testing import app_aliases, django_connection_session
from orders.models import Order, OrderLine
from orders.repositories import AsyncOrderRepository, Line, OrderRepository


class OrderTests(TestCase):
    databases = app_aliases("orders")

    def test_order_and_lines_live_in_the_orders_test_database(self):
        order = Order.objects.create(number="T-1", customer_email="t@example.com", total=Decimal("3.00"))
        OrderLine.objects.create(order=order, sku="X", quantity=1, unit_price=Decimal("3.00"))
        self.assertEqual(router.db_for_write(Order), "orders")
        self.assertEqual(order._state.db, "orders")
        self.assertEqual(Order.objects.using("orders").count(), 1)
        name = str(connections["orders"].settings_dict["NAME"])
        self.assertTrue("test" in name or "memory" in name, name)

    def test_each_test_starts_empty(self):
        self.assertEqual(Order.objects.count(), 0)


class OrderTransactionTests(TransactionTestCase):
    databases = app_aliases("orders")

    def test_committed_rows_are_flushed_after_the_test(self):
        Order.objects.create(number="T-2", customer_email="t@example.com")
        self.assertEqual(Order.objects.count(), 1)


class OrderSqlalchemyTests(TransactionTestCase):
    """SQLAlchemy on the app's own engines: committed rows, which Django deletes after each test."""

    databases = app_aliases("orders")

    def test_the_repository_and_sessions_use_the_orders_test_database(self):
        order = OrderRepository().place("SA-1", "ada@example.com", [Line("HAM-1", 2, Decimal("4.75"))])
        # Exactly the rows this test wrote: nothing of a real database.
        self.assertEqual(Order.objects.get().total, Decimal("9.50"))
        self.assertEqual(OrderLine.objects.get().order_id, order.id)
        with get_sync_app_session("orders") as session:
            self.assertEqual(session.scalar(select(func.count()).select_from(table_for(Order))), 1)
        self.assertEqual(get_engine("orders").url.database, connections["orders"].settings_dict["NAME"])

    async def test_async_sessions_and_repository_use_the_orders_test_database(self):
        self.assertEqual(get_async_engine("orders").url.database, connections["orders"].settings_dict["NAME"])
        async with get_app_session("orders") as session:
            await session.execute(
                insert(table_for(Order)).values(number="SA-2", customer_email="bob@example.com", total=Decimal("3"))
            )
        rows = await AsyncOrderRepository().summaries()
        self.assertEqual([(row.number, row.line_count) for row in rows], [("SA-2", 0)])
        self.assertEqual(await Order.objects.acount(), 1)


class OrderSharedConnectionTests(TestCase):
    """SQLAlchemy on Django's own connection, inside the transaction Django rolls back after each test."""

    databases = app_aliases("orders")

    def test_sqlalchemy_and_the_orm_see_each_others_rows(self):
        Order.objects.create(number="ORM-1", customer_email="ada@example.com")
        with django_connection_session("orders") as session:
            OrderRepository(session).place("SA-3", "bob@example.com", [Line("SAW-1", 1, Decimal("14.00"))])
            numbers = set(session.scalars(select(table_for(Order).c.number)))
        self.assertEqual(numbers, {"ORM-1", "SA-3"})
        self.assertEqual(set(Order.objects.values_list("number", flat=True)), {"ORM-1", "SA-3"})
