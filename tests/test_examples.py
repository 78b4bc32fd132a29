"""The documentation's examples, as they run in the test project: a sync view, async views, a command."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from django_appdb import close_all_engines
from inventory.models import StockItem, Warehouse
from orders.models import Order

DATABASES = ["default", "inventory", "orders"]

pytestmark = pytest.mark.django_db(databases=DATABASES, transaction=True)


@pytest.fixture(autouse=True)
def _fresh_engines():
    close_all_engines()
    yield
    close_all_engines()


@pytest.fixture
def stock() -> None:
    north = Warehouse.objects.create(code="NORTH", name="North depot")
    south = Warehouse.objects.create(code="SOUTH", name="South depot")
    Warehouse.objects.create(code="EMPTY", name="Empty shed")
    StockItem.objects.create(warehouse=north, sku="HAM-1", quantity=40)
    StockItem.objects.create(warehouse=north, sku="SAW-2", quantity=3)
    StockItem.objects.create(warehouse=south, sku="HAM-1", quantity=2)


@pytest.fixture
def orders() -> None:
    Order.objects.create(number="A-1", customer_email="ada@example.com", total=Decimal("10.50"))
    Order.objects.create(number="A-2", customer_email="bob@example.com", total=Decimal("4.25"), paid=True)


def test_sync_view_reads_the_orm_rows(client, stock):
    response = client.get("/inventory/stock/")
    assert response.status_code == 200
    assert response.json() == {"EMPTY": 0, "NORTH": 43, "SOUTH": 2}


@pytest.mark.async_drivers
def test_async_views_read_and_write_the_orders_database(client, orders):
    summary = client.get("/orders/summary/").json()
    assert (summary["orders"], summary["paid"], Decimal(summary["total"])) == (2, 1, Decimal("14.75"))

    response = client.post("/orders/A-1/paid/")
    assert response.status_code == 200
    assert Order.objects.get(number="A-1").paid is True

    assert client.post("/orders/NOPE/paid/").status_code == 404
    assert client.get("/orders/summary/").json()["paid"] == 2


@pytest.mark.asyncio
@pytest.mark.async_drivers
async def test_async_view_with_the_async_client(async_client, orders):
    response = await async_client.get("/orders/summary/")
    assert response.status_code == 200
    assert response.json()["orders"] == 2


def test_management_command_reads_through_sqlalchemy(stock):
    out = StringIO()
    call_command("stock_report", "--below", "3", stdout=out)
    assert out.getvalue().split() == ["SOUTH", "HAM-1", "2", "NORTH", "SAW-2", "3"]
    out = StringIO()
    call_command("stock_report", "--below", "1", stdout=out)
    assert out.getvalue().strip() == "No stock item has 1 units or fewer."
    with pytest.raises(CommandError, match="--below"):
        call_command("stock_report", "--below", "-1")
