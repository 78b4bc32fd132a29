"""The test project's orders view and ``orders`` command, both working through repositories."""

from __future__ import annotations

import decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from orders.models import Order, OrderLine

db = pytest.mark.django_db(databases=["default", "inventory", "orders"], transaction=True)


def run(*args: str) -> str:
    out = StringIO()
    call_command("orders", *args, stdout=out)
    return out.getvalue()


@db
def test_command_places_pays_and_lists_orders_in_the_orders_database():
    assert run("place", "A-1", "ada@example.com", "HAM-1:2:9.50", "SAW-2:1:1.25") == (
        "Placed order A-1 (2 lines, total 20.25).\n"
    )
    order = Order.objects.get(number="A-1")
    assert (order.total, order.lines.count(), order.paid) == (decimal.Decimal("20.25"), 2, False)
    run("place", "B-2", "bob@example.com", "HAM-1:1:9.50")
    assert run("pay", "A-1") == "Order A-1 is paid.\n"
    assert Order.objects.get(number="A-1").paid is True

    listing = run("list").splitlines()
    assert listing[-1] == "2 orders in database 'orders'."
    assert listing[0].split()[:3] == ["B-2", "bob@example.com", "unpaid"]
    assert listing[1].split() == ["A-1", "ada@example.com", "paid", "20.25", "2", "lines"]
    assert [line.split()[0] for line in run("list", "--unpaid").splitlines()[:-1]] == ["B-2"]


@db
def test_command_errors_are_command_errors_and_leave_nothing_behind():
    run("place", "A-1", "ada@example.com", "HAM-1:2:9.50")
    with pytest.raises(CommandError, match="Order A-1 already exists"):
        run("place", "A-1", "other@example.com", "SAW-2:1:1")
    with pytest.raises(CommandError, match=r"Bad line 'HAM-1:two:9\.50'"):
        run("place", "C-3", "cy@example.com", "HAM-1:two:9.50")
    with pytest.raises(CommandError, match="No unpaid order Z-9"):
        run("pay", "Z-9")
    run("pay", "A-1")
    with pytest.raises(CommandError, match="No unpaid order A-1"):
        run("pay", "A-1")
    assert list(Order.objects.values_list("number", "customer_email")) == [("A-1", "ada@example.com")]
    assert OrderLine.objects.count() == 1


@db
@pytest.mark.async_drivers
def test_async_view_lists_orders_written_by_the_orm(client):
    paid = Order.objects.create(number="A-1", customer_email="ada@example.com", paid=True, total=decimal.Decimal("5"))
    OrderLine.objects.create(order=paid, sku="HAM-1", quantity=1, unit_price=decimal.Decimal("5"))
    Order.objects.create(number="B-2", customer_email="bob@example.com")

    response = client.get(reverse("orders"))
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "orders"
    assert [(o["number"], o["paid"], o["total"], o["line_count"]) for o in body["orders"]] == [
        ("B-2", False, "0.00", 0),
        ("A-1", True, "5.00", 1),
    ]
    assert [o["number"] for o in client.get(reverse("orders"), {"paid": "1"}).json()["orders"]] == ["A-1"]
    assert [o["number"] for o in client.get(reverse("orders"), {"paid": "no"}).json()["orders"]] == ["B-2"]
    assert client.get(reverse("orders"), {"paid": "maybe"}).status_code == 400
