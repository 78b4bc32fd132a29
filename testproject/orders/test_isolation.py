"""What a test may reach through SQLAlchemy, under Django's runner and pytest alike.

* Factories made at import time follow Django to the orders test database,
  whichever is used first after the switch: the factory or a fresh look-up.
* An engine kept from import time is refused: it was built for the real database.
* A test that does not declare an alias is refused it, as the ORM is.

Every refusal below is tried with a write: if a guard let it through, the row
would land where the real-database canary finds it.
"""

from django.db import connections
from django.test import SimpleTestCase, TransactionTestCase
from django.test.testcases import DatabaseOperationForbidden
from sqlalchemy import func, insert, select

from django_appdb import get_engine, get_sync_app_session, table_for
from django_appdb.exceptions import NotATestDatabaseError, UndeclaredDatabaseError
from django_appdb.sqlalchemy.engines import reset_engines
from django_appdb.testing import app_aliases
from orders import store
from orders.models import Order
from orders.repositories import OrderRepository


def new_order(number):
    return insert(table_for(Order)).values(number=number, customer_email="guard@example.com", paid=False, total=0)


def current_test_database_name(alias):
    name = str(connections[alias].settings_dict["NAME"])
    assert "test" in name or "memory" in name, name
    return name


class ImportTimeFactoryTests(TransactionTestCase):
    databases = app_aliases("orders")

    def setUp(self):
        # Nothing built since the switch to the test database: each test
        # chooses what comes first.
        reset_engines()

    def test_the_import_time_factory_first_then_a_fresh_look_up(self):
        with store.Session() as session:
            session.execute(new_order("F-1"))
            session.commit()
            bound = session.bind
        self.assertEqual(list(Order.objects.values_list("number", flat=True)), ["F-1"])
        self.assertIs(get_engine("orders"), bound)
        self.assertEqual(bound.url.database, current_test_database_name("orders"))

    def test_a_fresh_look_up_first_then_the_import_time_factory(self):
        engine = get_engine("orders")
        with engine.connect() as connection:
            self.assertEqual(connection.scalar(select(func.count()).select_from(table_for(Order))), 0)
        with store.Session() as session:
            self.assertIs(session.bind, engine)
            session.execute(new_order("F-2"))
            session.commit()
        self.assertEqual(list(Order.objects.values_list("number", flat=True)), ["F-2"])

    def test_an_engine_kept_from_import_time_is_refused(self):
        with self.assertRaises(NotATestDatabaseError) as caught, store.ENGINE.begin() as connection:
            connection.execute(new_order("KEPT"))
        message = str(caught.exception)
        self.assertIn("'orders'", message)
        self.assertIn("test database", message)
        self.assertIsInstance(caught.exception, DatabaseOperationForbidden)
        self.assertEqual(Order.objects.count(), 0)


class UndeclaredAliasTests(TransactionTestCase):
    # Declared explicitly, so never widened: orders is not allowed here.
    databases = {"default"}

    def test_sqlalchemy_is_refused_an_undeclared_alias_as_the_orm_is(self):
        with self.assertRaises(DatabaseOperationForbidden):
            Order.objects.count()
        attempts = {
            "get_sync_app_session": lambda: _write_through_app_session("U-1"),
            "import-time factory": lambda: _write_through_factory("U-2"),
            "get_engine": lambda: _write_through_engine("U-3"),
            "repository": lambda: OrderRepository().place("U-4", "guard@example.com", []),
        }
        for what, attempt in attempts.items():
            with self.subTest(what), self.assertRaises(UndeclaredDatabaseError) as caught:
                attempt()
            self.assertIn("'orders'", str(caught.exception))
            self.assertIsInstance(caught.exception, DatabaseOperationForbidden)


class NoDatabaseTests(SimpleTestCase):
    def test_sqlalchemy_is_refused_every_alias(self):
        for label in ("catalog", "inventory", "orders"):
            with self.subTest(label), self.assertRaises(DatabaseOperationForbidden):
                with get_sync_app_session(label) as session:
                    session.execute(select(1))


def _write_through_app_session(number):
    with get_sync_app_session("orders") as session:
        session.execute(new_order(number))


def _write_through_factory(number):
    with store.Session() as session:
        session.execute(new_order(number))
        session.commit()


def _write_through_engine(number):
    with get_engine("orders").begin() as connection:
        connection.execute(new_order(number))
