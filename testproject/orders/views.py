"""Orders views: async Django views on the orders database, through SQLAlchemy sessions and a repository."""

from django.http import Http404, HttpRequest, HttpResponseBadRequest, JsonResponse
from django.views.decorators.http import require_POST
from sqlalchemy import text

from django_appdb import get_app_session
from orders.repositories import AsyncOrderRepository

_FLAGS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


async def order_summary(request: HttpRequest) -> JsonResponse:
    """Return how many orders there are, how many are paid, and their total."""
    async with get_app_session("orders") as session:
        result = await session.execute(
            text("SELECT COUNT(*), COUNT(*) FILTER (WHERE paid), COALESCE(SUM(total), 0) FROM orders_order")
        )
        count, paid, total = result.one()
    return JsonResponse({"orders": count, "paid": paid, "total": str(total)})


@require_POST
async def mark_paid(request: HttpRequest, number: str) -> JsonResponse:
    """Mark one order paid; the session commits when the block exits without error."""
    async with get_app_session("orders") as session:
        result = await session.execute(
            text("UPDATE orders_order SET paid = :paid WHERE number = :number"), {"paid": True, "number": number}
        )
        if result.rowcount == 0:
            # Raising inside the block rolls the session back.
            raise Http404(f"No order {number!r}.")
    return JsonResponse({"number": number, "paid": True})


async def order_list(request: HttpRequest) -> JsonResponse | HttpResponseBadRequest:
    """Return every order with its line count, newest first; ``?paid=0`` or ``?paid=1`` filters."""
    paid = request.GET.get("paid")
    if paid is not None and paid.lower() not in _FLAGS:
        return HttpResponseBadRequest("paid must be 0 or 1")
    repo = AsyncOrderRepository()
    rows = await repo.summaries(paid=None if paid is None else _FLAGS[paid.lower()])
    return JsonResponse({"database": repo.alias, "orders": [dict(row._mapping) for row in rows]})
