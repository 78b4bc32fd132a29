"""Tests of the inventory app; Django's runner and pytest both run them."""

from django.db import connections
from django.test import TestCase, TransactionTestCase

from django_appdb.testing import app_aliases
from inventory.models import StockItem, Warehouse


class InventoryTests(TestCase):
    databases = app_aliases("inventory")

    def test_stock_lives_in_the_inventory_test_database(self):
        warehouse = Warehouse.objects.create(code="T", name="Test")
        StockItem.objects.create(warehouse=warehouse, sku="X", quantity=3, attributes={"colour": "red"})
        self.assertEqual(StockItem.objects.using("inventory").get().attributes, {"colour": "red"})
        name = str(connections["inventory"].settings_dict["NAME"])
        self.assertTrue("test" in name or "memory" in name, name)


class StockViewTests(TransactionTestCase):
    """The stock view reads through a SQLAlchemy session on the inventory engine."""

    databases = app_aliases("inventory")

    def test_the_view_sums_the_stock_of_the_inventory_test_database(self):
        warehouse = Warehouse.objects.create(code="W1", name="One")
        StockItem.objects.create(warehouse=warehouse, sku="A", quantity=3)
        StockItem.objects.create(warehouse=warehouse, sku="B", quantity=4)
        self.assertEqual(self.client.get("/inventory/stock/").json(), {"W1": 7})
