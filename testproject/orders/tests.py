"""Tests of the orders app; Django's runner and pytest both run them.

They only ever reach the test database Django derives from the orders alias.
"""

from decimal import Decimal

from django.db import connections, router
from django.test import TestCase, TransactionTestCase

from django_appdb.testing import app_aliases
from orders.models import Order, OrderLine


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
