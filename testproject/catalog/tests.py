"""Tests of the catalog app and the overview page, which reads every app database."""

from decimal import Decimal

from django.test import TestCase, TransactionTestCase
from sqlalchemy import insert

from catalog.models import Category, Product
from django_appdb import get_sync_app_session, table_for
from django_appdb.testing import app_aliases
from inventory.models import Warehouse
from orders.models import Order


class OverviewTests(TestCase):
    databases = app_aliases()

    def test_overview_counts_rows_in_each_apps_database(self):
        category = Category.objects.create(name="C")
        Product.objects.create(sku="P", name="P", price=Decimal("1.00"), category=category)
        Warehouse.objects.create(code="W", name="W")
        Order.objects.create(number="O", customer_email="o@example.com")
        Order.objects.create(number="O2", customer_email="o@example.com")
        data = self.client.get("/").json()
        self.assertEqual(data["catalog.Product"], {"database": "default", "rows": 1})
        self.assertEqual(data["inventory.StockItem"], {"database": "inventory", "rows": 0})
        self.assertEqual(data["orders.Order"]["rows"], 2)


class CatalogSqlalchemyTests(TransactionTestCase):
    """A SQLAlchemy session on the default database."""

    databases = {"default"}

    def test_a_session_on_the_default_database_writes_to_its_test_database(self):
        with get_sync_app_session("default") as session:
            session.execute(insert(table_for(Category)).values(name="From SQLAlchemy"))
        self.assertEqual(list(Category.objects.values_list("name", flat=True)), ["From SQLAlchemy"])
