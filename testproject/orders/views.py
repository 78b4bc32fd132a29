"""Views of the orders app, reading through an async SQLAlchemy repository."""

from django.http import HttpRequest, HttpResponseBadRequest, JsonResponse

from orders.repositories import AsyncOrderRepository

_FLAGS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


async def order_list(request: HttpRequest) -> JsonResponse | HttpResponseBadRequest:
    """Return every order with its line count, newest first; ``?paid=0`` or ``?paid=1`` filters."""
    paid = request.GET.get("paid")
    if paid is not None and paid.lower() not in _FLAGS:
        return HttpResponseBadRequest("paid must be 0 or 1")
    repo = AsyncOrderRepository()
    rows = await repo.summaries(paid=None if paid is None else _FLAGS[paid.lower()])
    return JsonResponse({"database": repo.alias, "orders": [dict(row._mapping) for row in rows]})
