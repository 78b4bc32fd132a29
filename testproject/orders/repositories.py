"""SQLAlchemy access to the orders database, through django-appdb repositories.

``OrderRepository`` (sync) backs the ``orders`` management command;
``AsyncOrderRepository`` backs the async ``/orders/`` view. Both always reach
the database the ``orders`` app is routed to, and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, Select, func, insert, select, update

from django_appdb import AppRepository, AsyncAppRepository
from orders.models import Order, OrderLine


@dataclass(frozen=True)
class Line:
    """One SKU to put on a new order."""

    sku: str
    quantity: int
    unit_price: Decimal


def _summaries(repo: AppRepository | AsyncAppRepository, paid: bool | None) -> Select[Any]:
    orders, lines = repo.table, repo.table_for(OrderLine)
    statement = (
        select(
            orders.c.number,
            orders.c.customer_email,
            orders.c.placed_at,
            orders.c.paid,
            orders.c.total,
            func.count(lines.c.id).label("line_count"),
        )
        # The join condition comes from the OrderLine.order foreign key.
        .select_from(orders.outerjoin(lines))
        .group_by(orders.c.id)
        .order_by(orders.c.placed_at.desc(), orders.c.id.desc())
    )
    return statement if paid is None else statement.where(orders.c.paid == paid)


class OrderRepository(AppRepository):
    """Orders and their lines."""

    app_label = "orders"
    model = Order

    def place(self, number: str, customer_email: str, lines: Sequence[Line]) -> Row[Any]:
        """Insert an order and its lines in one transaction; return the order row."""
        total = sum((line.quantity * line.unit_price for line in lines), Decimal("0"))
        with self:
            order = self.add(number=number, customer_email=customer_email, total=total)
            rows = [
                {"order_id": order.id, "sku": line.sku, "quantity": line.quantity, "unit_price": line.unit_price}
                for line in lines
            ]
            if rows:
                self.execute(insert(self.table_for(OrderLine)), rows)
        return order

    def pay(self, number: str) -> bool:
        """Mark the order paid; return False if there is no such unpaid order."""
        statement = update(self.table).where(self.c.number == number, self.c.paid.is_(False)).values(paid=True)
        return self.execute(statement).rowcount == 1

    def summaries(self, *, paid: bool | None = None) -> Sequence[Row[Any]]:
        """Return each order with its line count, newest first."""
        return self.execute(_summaries(self, paid)).all()


class AsyncOrderRepository(AsyncAppRepository):
    """Orders and their lines, for async code."""

    app_label = "orders"
    model = Order

    async def summaries(self, *, paid: bool | None = None) -> Sequence[Row[Any]]:
        """Return each order with its line count, newest first."""
        return (await self.execute(_summaries(self, paid))).all()
