"""The orders app's tests with a read replica declared (ORDERS_DATABASE_REPLICA_URLS), under both runners.

Run by ``tests/test_replica_test_runs.py`` in child test runs, with the
replica's URL that of the primary (SQLite: the same file; PostgreSQL: the
same database): ``manage.py test orders.replica_tests`` and
``pytest orders/replica_tests.py``. Its name matches neither runner's
pattern, so the test project's own suite never collects it, and without
the variable every test here is skipped.

* A ``TestCase`` (and a ``django_db`` test) writes an order and reads it
  back: reads go to the primary during a test run, so the test sees its own
  row, which is rolled back afterwards (both tests write the same number).
* A ``TransactionTestCase`` (and a ``django_db(transaction=True)`` test)
  opts in with ``replica_routing()``: its reads go through the replica's
  alias, which sees the committed rows and refuses writes.
"""

import os
import unittest

import pytest
from django.db import DatabaseError, connections, router, transaction
from django.test import TestCase, TransactionTestCase

from django_appdb.state import state
from django_appdb.testing import app_aliases, replica_routing
from orders.models import Order

REPLICA = "orders_replica_1"
DECLARED = bool(os.environ.get("ORDERS_DATABASE_REPLICA_URLS", "").strip())
REASON = "ORDERS_DATABASE_REPLICA_URLS is not set"
# unittest's skip for the test cases (both runners honour it); pytest's for the functions.
needs_replica = unittest.skipUnless(DECLARED, REASON)
pytest_needs_replica = pytest.mark.skipif(not DECLARED, reason=REASON)


def new_order(number):
    return Order.objects.create(number=number, customer_email="replica@example.com")


def assert_replica_declared():
    assert state.replicas["orders"] == (REPLICA,), state.replicas
    assert connections[REPLICA].settings_dict["TEST"]["MIRROR"] == "orders"
    # The replica follows the primary to its test database.
    assert connections[REPLICA].settings_dict["NAME"] == connections["orders"].settings_dict["NAME"]


def assert_reads_through_the_replica():
    """Inside replica_routing(): reads use the replica's alias, see the committed row, and cannot write."""
    assert router.db_for_read(Order) == REPLICA
    rows = Order.objects.all()
    assert rows.db == REPLICA
    assert [order.number for order in rows] == ["T-1"]
    assert Order.objects.get(number="T-1")._state.db == REPLICA
    try:
        with transaction.atomic(using=REPLICA):
            Order.objects.using(REPLICA).create(number="T-2", customer_email="replica@example.com")
    except DatabaseError:
        pass
    else:
        raise AssertionError("a write through the replica's alias succeeded")
    assert Order.objects.using("orders").count() == 1
    # A write goes to the primary and pins it: read-your-writes.
    new_order("T-3")
    assert router.db_for_read(Order) == "orders"
    assert Order.objects.count() == 2


@needs_replica
class ReadOwnWritesTests(TestCase):
    databases = app_aliases("orders")

    def test_the_replica_is_declared_and_allowed(self):
        assert_replica_declared()
        self.assertIn(REPLICA, self.databases)

    def test_a_test_reads_the_row_it_wrote(self):
        self.assertEqual(router.db_for_read(Order), "orders")
        self.assertEqual(Order.objects.count(), 0)
        new_order("R-1")
        self.assertEqual(list(Order.objects.values_list("number", flat=True)), ["R-1"])

    def test_a_test_reads_the_row_it_wrote_again_after_the_rollback(self):
        self.assertEqual(Order.objects.count(), 0)
        new_order("R-1")
        self.assertEqual(Order.objects.get().number, "R-1")


@needs_replica
class ReplicaRoutingTests(TransactionTestCase):
    databases = app_aliases("orders")

    def test_reads_go_through_the_replica_inside_replica_routing(self):
        new_order("T-1")
        with replica_routing():
            assert_reads_through_the_replica()
        self.assertEqual(router.db_for_read(Order), "orders")

    def test_outside_replica_routing_reads_go_to_the_primary(self):
        self.assertEqual(router.db_for_read(Order), "orders")
        self.assertEqual(Order.objects.count(), 0)


@pytest_needs_replica
@pytest.mark.django_db(databases=["default", "orders", REPLICA])
def test_pytest_reads_the_row_it_wrote():
    assert_replica_declared()
    assert Order.objects.count() == 0
    new_order("R-1")
    assert router.db_for_read(Order) == "orders"
    assert list(Order.objects.values_list("number", flat=True)) == ["R-1"]


@pytest_needs_replica
@pytest.mark.django_db(databases=["default", "orders", REPLICA], transaction=True)
def test_pytest_replica_routing():
    new_order("T-1")

    @replica_routing()
    def reads():
        assert_reads_through_the_replica()

    reads()
    assert router.db_for_read(Order) == "orders"
