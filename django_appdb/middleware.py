"""Keep a client that just wrote on the primaries it wrote to, for a few seconds, across requests."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from django_appdb import replicas
from django_appdb.conf import conf

__all__ = ["ReplicaPinningMiddleware"]

#: The signed cookie holding, for each primary the client wrote to, when its pin ends.
COOKIE_NAME = "appdb_pinned"
_SALT = "django_appdb.middleware.ReplicaPinningMiddleware"


class ReplicaPinningMiddleware:
    """Run each request in a fresh read-your-writes context, and pin the client's recent writes.

    A request starts unpinned, except for the databases the client wrote to
    less than ``APPDB_REPLICA_PIN_SECONDS`` ago, which a signed cookie
    (``appdb_pinned``) lists with the time each pin ends: their reads go to
    the primary. After a request that wrote to a database with replicas, the
    cookie is set (or extended) for it. Works under WSGI and ASGI.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        with replicas.replica_scope():
            pins = _read_cookie(request)
            replicas.pin_for_request(pins)
            response: HttpResponseBase = self.get_response(request)
            _write_cookie(request, response, pins, replicas.written())
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
        async with replicas.replica_scope():
            pins = _read_cookie(request)
            replicas.pin_for_request(pins)
            response = await get_response(request)
            _write_cookie(request, response, pins, replicas.written())
        return response


def _read_cookie(request: HttpRequest) -> dict[str, float]:
    """Return the pins the client's cookie holds that have not ended: alias -> end (Unix time)."""
    value = request.get_signed_cookie(COOKIE_NAME, default=None, salt=_SALT)
    if not value:
        return {}
    now = time.time()
    pins: dict[str, float] = {}
    for part in str(value).split(","):
        alias, _, until = part.rpartition(":")
        try:
            end = float(until)
        except ValueError:
            continue
        if alias and end > now:
            pins[alias] = end
    return pins


def _write_cookie(
    request: HttpRequest, response: HttpResponseBase, pins: dict[str, float], written: frozenset[str]
) -> None:
    if not written:
        return
    seconds = conf.REPLICA_PIN_SECONDS
    end = time.time() + seconds
    pins = {**pins, **dict.fromkeys(written, end)}
    value = ",".join(f"{alias}:{math.ceil(until)}" for alias, until in sorted(pins.items()))
    response.set_signed_cookie(
        COOKIE_NAME,
        value,
        salt=_SALT,
        max_age=max(1, round(max(pins.values()) - time.time())),
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
    )
