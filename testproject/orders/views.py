"""Orders views: async Django views on their app's database through SQLAlchemy's asyncio API."""

from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.http import require_POST
from sqlalchemy import text

from django_appdb import get_app_session


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
