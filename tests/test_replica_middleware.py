"""ReplicaPinningMiddleware: a fresh context per request, and the signed cookie that keeps a writer on the primary.

Requests come from ``RequestFactory``; the view asks the router, as the ORM
would, and records what the request's context held. ``orders`` has two
scratch SQLite replicas; replica routing is switched on around each request,
as it is outside tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import router
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory, override_settings

from django_appdb.middleware import COOKIE_NAME, ReplicaPinningMiddleware
from django_appdb.replicas import pinned_aliases, written
from django_appdb.testing import replica_routing
from orders.models import Order

pytestmark = pytest.mark.usefixtures("fresh_health", "two_replicas")

SALT = "django_appdb.middleware.ReplicaPinningMiddleware"


def signed(value: str, salt: str = SALT) -> str:
    """Return ``value`` signed as the middleware signs its cookie (Django's public cookie signing)."""
    response = HttpResponse()
    response.set_signed_cookie(COOKIE_NAME, value, salt=salt)
    return response.cookies[COOKIE_NAME].value


def unsigned(cookie: str) -> str:
    """Return the value of the middleware's signed cookie ``cookie``, checking its signature."""
    value: str = request(cookie).get_signed_cookie(COOKIE_NAME, salt=SALT)
    return value


class View:
    """A view that reads (and writes, if told) orders, and records what its request saw."""

    def __init__(self, writes: bool = False) -> None:
        self.writes = writes
        self.seen: list[dict[str, Any]] = []

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.seen.append({"pinned": pinned_aliases(), "read": router.db_for_read(Order)})
        if self.writes:
            router.db_for_write(Order)
        return HttpResponse("ok")


def request(cookie: str | None = None) -> HttpRequest:
    req = RequestFactory().get("/")
    if cookie is not None:
        req.COOKIES[COOKIE_NAME] = cookie
    return req


def run(view: Callable[[HttpRequest], HttpResponse], req: HttpRequest) -> HttpResponse:
    with replica_routing():
        response: HttpResponse = ReplicaPinningMiddleware(view)(req)
        return response


def test_a_request_that_writes_sets_the_signed_cookie(two_replicas):
    with override_settings(APPDB_REPLICA_PIN_SECONDS=7):
        before = time.time()
        response = run(View(writes=True), request())
    morsel = response.cookies[COOKIE_NAME]
    assert morsel["max-age"] in (6, 7)
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert not morsel["secure"]
    value = unsigned(morsel.value)
    alias, _, end = value.rpartition(":")
    assert alias == "orders"
    assert before + 7 <= float(end) <= time.time() + 8


def test_the_cookie_is_secure_on_a_secure_request(two_replicas):
    req = RequestFactory().get("/", secure=True)
    assert run(View(writes=True), req).cookies[COOKIE_NAME]["secure"] is True


def test_a_request_carrying_the_cookie_reads_the_primary(two_replicas):
    cookie = run(View(writes=True), request()).cookies[COOKIE_NAME].value
    view = View()
    response = run(view, request(cookie))
    assert view.seen == [{"pinned": {"orders"}, "read": "orders"}]
    # Not written in this request: the cookie is not set again.
    assert COOKIE_NAME not in response.cookies


def test_a_request_that_does_not_write_sets_no_cookie(two_replicas):
    view = View()
    response = run(view, request())
    assert COOKIE_NAME not in response.cookies
    assert view.seen[0]["read"] in two_replicas
    assert view.seen[0]["pinned"] == frozenset()


@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param(signed(f"orders:{int(time.time()) - 1}"), id="expired"),
        pytest.param(signed(f"orders:{int(time.time()) + 60}")[:-2] + "xx", id="tampered"),
        pytest.param(signed(f"orders:{int(time.time()) + 60}", salt="another salt"), id="other-salt"),
        pytest.param(f"orders:{int(time.time()) + 60}", id="unsigned"),
        pytest.param(signed("orders:soon"), id="no-number"),
        pytest.param(signed(f"nosuchalias:{int(time.time()) + 60}"), id="unknown-alias"),
        pytest.param(signed(f":{int(time.time()) + 60}"), id="no-alias"),
        pytest.param("", id="empty"),
    ],
)
def test_a_cookie_that_is_expired_tampered_or_unsigned_is_ignored(two_replicas, cookie):
    view = View()
    run(view, request(cookie))
    assert view.seen[0]["pinned"] == frozenset()
    assert view.seen[0]["read"] in two_replicas


def test_a_valid_pin_is_kept_beside_an_expired_one_and_extended_by_a_write(monkeypatch, two_replicas, sqlite_replica):
    from tests.replica_fixtures import give_replicas

    give_replicas(monkeypatch, "default", sqlite_replica("default_replica_1"))
    later = int(time.time()) + 100
    cookie = signed(f"default:{later},orders:{int(time.time()) - 5}")
    view = View(writes=True)
    with override_settings(APPDB_REPLICA_PIN_SECONDS=5):
        response = run(view, request(cookie))
    assert view.seen[0]["pinned"] == {"default"}
    value = unsigned(response.cookies[COOKIE_NAME].value)
    pins = dict(part.rsplit(":", 1) for part in value.split(","))
    assert set(pins) == {"default", "orders"}
    assert int(pins["default"]) == later
    # Long enough for the longest pin.
    assert response.cookies[COOKIE_NAME]["max-age"] >= 99


def test_each_request_starts_unpinned(two_replicas):
    view = View(writes=True)
    with replica_routing():
        middleware = ReplicaPinningMiddleware(view)
        middleware(request())
        middleware(request())
        # The requests' writes did not pin the thread's own context.
        assert written() == frozenset()
    assert [seen["pinned"] for seen in view.seen] == [frozenset(), frozenset()]
    assert all(seen["read"] in two_replicas for seen in view.seen)


def test_a_request_does_not_see_the_outer_contexts_pins(two_replicas):
    view = View()
    with replica_routing():
        router.db_for_write(Order)
        ReplicaPinningMiddleware(view)(request())
        assert written() == {"orders"}
    assert view.seen[0]["pinned"] == frozenset()


@pytest.mark.asyncio
async def test_the_async_middleware_pins_and_sets_the_cookie(two_replicas):
    from asgiref.sync import iscoroutinefunction, sync_to_async

    seen: list[frozenset[str]] = []

    async def writes(req: HttpRequest) -> HttpResponse:
        seen.append(pinned_aliases())
        await sync_to_async(router.db_for_write)(Order)
        return HttpResponse("ok")

    async def reads(req: HttpRequest) -> HttpResponse:
        seen.append(pinned_aliases())
        return HttpResponse("ok")

    async with replica_routing():
        middleware = ReplicaPinningMiddleware(writes)
        assert iscoroutinefunction(middleware)
        response = await middleware(request())
        cookie = response.cookies[COOKIE_NAME].value
        assert written() == frozenset()
        again = await middleware(request())
        response = await ReplicaPinningMiddleware(reads)(request(cookie))
    assert COOKIE_NAME in again.cookies
    assert COOKIE_NAME not in response.cookies
    assert seen == [frozenset(), frozenset(), {"orders"}]


def test_the_sync_middleware_is_not_a_coroutine(two_replicas):
    from asgiref.sync import iscoroutinefunction

    assert not iscoroutinefunction(ReplicaPinningMiddleware(View()))
    assert ReplicaPinningMiddleware.sync_capable and ReplicaPinningMiddleware.async_capable
