"""pytest tests of the orders app with django-appdb's fixtures (pytest runs them; manage.py test does not).

Like the TestCase classes, they only ever reach the test databases.
"""

from decimal import Decimal

import pytest
from sqlalchemy import insert, select

from django_appdb import table_for
from django_appdb.testing import app_aliases
from inventory.models import Warehouse
from orders.models import Order
from orders.repositories import AsyncOrderRepository, Line, OrderRepository


@pytest.mark.django_db(databases=app_aliases("orders"))
def test_sqlalchemy_shares_the_transaction_django_rolls_back(appdb_django_session):
    Order.objects.create(number="ORM-1", customer_email="ada@example.com")
    session = appdb_django_session("orders")
    OrderRepository(session).place("SA-1", "bob@example.com", [Line("HAM-1", 2, Decimal("4.75"))])
    session.commit()
    assert set(Order.objects.values_list("number", flat=True)) == {"ORM-1", "SA-1"}
    assert set(session.scalars(select(table_for(Order).c.number))) == {"ORM-1", "SA-1"}


@pytest.mark.django_db(databases=app_aliases("orders", "inventory"), transaction=True)
def test_sessions_on_the_app_engines(appdb_session):
    orders = appdb_session("orders")
    orders.execute(insert(table_for(Order)).values(number="SA-2", customer_email="ada@example.com"))
    orders.commit()
    inventory = appdb_session("inventory")
    inventory.execute(insert(table_for(Warehouse)).values(code="W-SA", name="From SQLAlchemy"))
    inventory.commit()
    assert list(Order.objects.values_list("number", flat=True)) == ["SA-2"]
    assert list(Warehouse.objects.values_list("code", flat=True)) == ["W-SA"]


@pytest.mark.asyncio
@pytest.mark.django_db(databases=app_aliases("orders"), transaction=True)
async def test_an_async_session_on_the_app_engine(appdb_async_session):
    session = appdb_async_session("orders")
    await session.execute(insert(table_for(Order)).values(number="SA-3", customer_email="ada@example.com"))
    await session.commit()
    rows = await AsyncOrderRepository(session).summaries()
    assert [row.number for row in rows] == ["SA-3"]
