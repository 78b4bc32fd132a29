"""Inventory views: a sync Django view reading its app's database through SQLAlchemy."""

from django.http import HttpRequest, JsonResponse
from sqlalchemy import text

from django_appdb import get_sync_app_session

STOCK_BY_WAREHOUSE = text(
    """
    SELECT w.code, COALESCE(SUM(s.quantity), 0) AS quantity
    FROM inventory_warehouse w LEFT JOIN inventory_stockitem s ON s.warehouse_id = w.id
    GROUP BY w.code ORDER BY w.code
    """
)


def stock_levels(request: HttpRequest) -> JsonResponse:
    """Return the units held by each warehouse, summed in the inventory database."""
    with get_sync_app_session("inventory") as session:
        rows = session.execute(STOCK_BY_WAREHOUSE).all()
    return JsonResponse({code: int(quantity) for code, quantity in rows})
