"""Views of the test project."""

from django.db import router
from django.http import HttpRequest, JsonResponse

from catalog.models import Product
from inventory.models import StockItem
from orders.models import Order


def overview(request: HttpRequest) -> JsonResponse:
    """Return how many rows each app holds, and in which database."""
    return JsonResponse(
        {
            model._meta.label: {"database": router.db_for_read(model), "rows": model.objects.count()}
            for model in (Product, StockItem, Order)
        }
    )
