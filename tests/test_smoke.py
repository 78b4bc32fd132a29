import pytest
from django.db import router

from inventory.models import Warehouse
from orders.models import Order


@pytest.mark.django_db(databases=["default", "inventory", "orders"])
def test_rows_land_in_their_apps_database():
    Warehouse.objects.create(code="N", name="North")
    assert router.db_for_write(Warehouse) == "inventory"
    assert router.db_for_write(Order) == "orders"
    assert Warehouse.objects.using("inventory").count() == 1
