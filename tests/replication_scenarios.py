"""Replica scenarios, run by tests/test_replication.py in a child: ``python -m tests.replication_scenarios NAME``.

Not a test run: the ``orders`` app's real database is the primary of the
throwaway cluster of ``.ci/replication.sh`` (``ORDERS_DATABASE_URL``), its
replica declared by ``ORDERS_DATABASE_REPLICA_URLS``, and ``default`` a SQLite
file in the test's temporary directory. Settings: ``tests.replication_settings``.

Each scenario prints one line, ``RESULT <json>``: a dict of step name to what
the step saw, or to ``{"error": "..."}`` when it raised. Where a query ran is
asked of the server that ran it (``inet_server_port()`` and
``pg_is_in_recovery()`` in the query itself), then named ``primary`` or
``replica``.

This module is also the URLconf of the child: views that write and read
orders, through ``ReplicaPinningMiddleware``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from django.db import connections
from django.db.models import BooleanField, IntegerField
from django.db.models.expressions import RawSQL
from django.http import HttpRequest, JsonResponse
from django.urls import path

REPLICA_ALIAS = "orders_replica_1"
SEED = "REPL-SEED"


def _port(url_variable: str) -> int:
    from sqlalchemy.engine import make_url

    port = make_url(os.environ[url_variable]).port
    assert port is not None
    return port


def role(port: int, recovery: bool) -> str:
    """Name the server that answered: ``primary``, ``replica``, or what was unexpected about it."""
    if port == _port("APPDB_TEST_REPLICA_PRIMARY_URL") and not recovery:
        return "primary"
    if port == _port("APPDB_TEST_REPLICA_URL") and recovery:
        return "replica"
    return f"port {port}, in recovery: {recovery}"


def server_of(alias: str) -> dict[str, Any]:
    """Where a connection of ``alias`` goes."""
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT inet_server_port(), pg_is_in_recovery()")
        port, recovery = cursor.fetchone()
    return {"alias": alias, "server": role(port, recovery)}


def _probe_queryset(numbers: list[str]) -> Any:
    from orders.models import Order

    return (
        Order.objects.filter(number__in=numbers)
        .annotate(
            server_port=RawSQL("inet_server_port()", (), output_field=IntegerField()),
            in_recovery=RawSQL("pg_is_in_recovery()", (), output_field=BooleanField()),
        )
        .values_list("number", "server_port", "in_recovery")
    )


def _summary(rows: list[tuple[str, int, bool]], alias: str) -> dict[str, Any]:
    # SEED is on both servers, so a probe always returns a row naming the server.
    servers = sorted({role(port, recovery) for _, port, recovery in rows})
    return {
        "server": servers[0] if len(servers) == 1 else servers,
        "found": sorted(number for number, _, _ in rows),
        "alias": alias,
    }


def probe(*numbers: str) -> dict[str, Any]:
    """Read the orders ``numbers`` (and SEED) through the router: which server answered, what it found."""
    queryset = _probe_queryset([SEED, *numbers])
    rows = list(queryset)
    return _summary(rows, queryset.db)


async def aprobe(*numbers: str) -> dict[str, Any]:
    """:func:`probe` through the async ORM."""
    queryset = _probe_queryset([SEED, *numbers])
    rows = [row async for row in queryset]
    return _summary(rows, queryset.db)


def write(number: str) -> dict[str, Any]:
    """Create an order through the router; say where it was written."""
    from orders.models import Order

    order = Order.objects.create(number=number, customer_email="replica@example.com")
    return server_of(order._state.db)


def new_number(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- views ------------------------------------------------------------------


def read_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(probe(*request.GET.getlist("number")))


async def aread_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(await aprobe(*request.GET.getlist("number")))


def write_view(request: HttpRequest) -> JsonResponse:
    number = request.GET["number"]
    written = write(number)
    # Read right after the write, in the same request.
    return JsonResponse({"write": written, "read_after": probe(number)})


urlpatterns = [
    path("read/", read_view),
    path("aread/", aread_view),
    path("write/", write_view),
]


# -- scenarios --------------------------------------------------------------


def _cluster() -> Any:
    from tests.replication_cluster import Cluster

    return Cluster.from_environ()


class Steps:
    """Run named steps, recording each one's result or error, so that one failing step does not hide the others."""

    def __init__(self) -> None:
        self.results: dict[str, Any] = {}

    def __call__(self, name: str, function: Callable[[], Any]) -> Any:
        try:
            value = function()
        except Exception as error:  # recorded, for the test to assert on
            self.results[name] = {"error": f"{type(error).__module__}.{type(error).__qualname__}: {error}"}
            traceback.print_exc()
            return None
        self.results[name] = value
        return value


def prepare() -> None:
    """Create the orders tables on the primary (migrations), the SEED order, and wait until the replica has them."""
    from django.core.management import call_command

    from orders.models import Order

    call_command("migrate", "orders", database="orders", verbosity=0)
    Order.objects.using("orders").get_or_create(number=SEED, defaults={"customer_email": "seed@example.com"})
    _cluster().wait_caught_up()


def scenario_routing(steps: Steps) -> None:
    from django.conf import settings
    from django.db import router

    from django_appdb import replica_scope, use_primary
    from django_appdb.state import state
    from orders.models import Order

    steps("replicas", lambda: {key: list(value) for key, value in state.replicas.items()})
    steps("primaries", lambda: dict(state.primaries))
    steps(
        "replica_settings",
        lambda: {
            "TEST": {"MIRROR": settings.DATABASES[REPLICA_ALIAS]["TEST"].get("MIRROR")},
            "CONN_HEALTH_CHECKS": settings.DATABASES[REPLICA_ALIAS]["CONN_HEALTH_CHECKS"],
        },
    )
    steps("allow_migrate_replica", lambda: router.allow_migrate(REPLICA_ALIAS, "orders", model_name="order"))
    steps("allow_migrate_primary", lambda: router.allow_migrate("orders", "orders", model_name="order"))

    def relation() -> bool | None:
        on_primary = Order.objects.using("orders").get(number=SEED)
        on_replica = Order.objects.using(REPLICA_ALIAS).get(number=SEED)
        return router.allow_relation(on_primary, on_replica)

    steps("allow_relation_primary_replica", relation)

    def fresh_read() -> dict[str, Any]:
        with replica_scope():
            return probe()

    steps("read", fresh_read)

    def write_then_read() -> dict[str, Any]:
        number = new_number("RYW")
        with replica_scope():
            written = write(number)
            return {"write": written, "read_after": probe(number)}

    steps("write_then_read", write_then_read)

    def scope_restores() -> dict[str, Any]:
        # A write pins the context; a nested replica_scope starts unpinned; the pin is back after it.
        with replica_scope():
            write(new_number("NEST"))
            with replica_scope():
                inner = probe()
            return {"inner": inner, "after": probe()}

    steps("nested_scope", scope_restores)

    def primary_for_orders() -> dict[str, Any]:
        with replica_scope(), use_primary("orders"):
            return probe()

    steps("use_primary_orders", primary_for_orders)

    def primary_for_every_app() -> dict[str, Any]:
        with replica_scope(), use_primary():
            return probe()

    steps("use_primary_all", primary_for_every_app)

    def primary_for_another_app() -> dict[str, Any]:
        with replica_scope(), use_primary("catalog"):
            return probe()

    steps("use_primary_other_app", primary_for_another_app)

    @use_primary("orders")
    def decorated() -> dict[str, Any]:
        return probe()

    def decorated_read() -> dict[str, Any]:
        with replica_scope():
            return decorated()

    steps("use_primary_decorator", decorated_read)

    @replica_scope()
    async def async_read() -> dict[str, Any]:
        return await aprobe()

    steps("async_read", lambda: asyncio.run(async_read()))

    @replica_scope()
    @use_primary("orders")
    async def async_primary_read() -> dict[str, Any]:
        return await aprobe()

    steps("async_use_primary", lambda: asyncio.run(async_primary_read()))

    def write_to_replica() -> str:
        Order.objects.using(REPLICA_ALIAS).create(number=new_number("BYHAND"), customer_email="x@example.com")
        return "written"

    steps("write_to_replica", write_to_replica)


def scenario_client(steps: Steps) -> None:
    from django.test import Client

    client = Client()
    other = Client()
    number = new_number("REQ")

    def get(which: Client, url: str) -> dict[str, Any]:
        response = which.get(url)
        return {"status": response.status_code, **(response.json() if response.status_code == 200 else {})}

    steps("first_read", lambda: get(client, "/read/"))
    written_at = time.monotonic()

    def post() -> dict[str, Any]:
        response = client.post(f"/write/?number={number}")
        body = response.json() if response.status_code == 200 else {}
        return {"status": response.status_code, **body, "cookie": "appdb_pinned" in client.cookies}

    steps("write", post)
    steps("next_request", lambda: get(client, f"/read/?number={number}"))
    steps("next_request_async_view", lambda: get(client, f"/aread/?number={number}"))
    steps("other_client", lambda: get(other, "/read/"))
    steps("other_client_async_view", lambda: get(other, "/aread/"))
    # The pin lasts APPDB_REPLICA_PIN_SECONDS after the write, then reads go back to a replica.
    pin = float(os.environ["REPLICATION_TEST_PIN_SECONDS"])
    steps("pinned_within_limit", lambda: time.monotonic() - written_at < pin)
    _cluster().wait_caught_up()
    time.sleep(max(0.0, written_at + pin + 1.0 - time.monotonic()))
    steps("after_pin", lambda: get(client, f"/read/?number={number}"))


def scenario_replica_down(steps: Steps) -> None:
    from django.db import close_old_connections
    from django.test import Client

    from django_appdb import get_sync_app_session, replica_scope

    cluster = _cluster()
    client = Client()

    def get(url: str) -> dict[str, Any]:
        # As a WSGI server does, and the test Client leaves out: connections
        # past their CONN_MAX_AGE (0) close at the request's start and end.
        close_old_connections()
        try:
            response = client.get(url)
        finally:
            close_old_connections()
        return {"status": response.status_code, **(response.json() if response.status_code == 200 else {})}

    def scoped_read() -> dict[str, Any]:
        with replica_scope():
            return probe()

    def session_read() -> str:
        from sqlalchemy import text

        with replica_scope(), get_sync_app_session("orders", replica=True) as session:
            port, recovery = session.execute(text("SELECT inet_server_port(), pg_is_in_recovery()")).one()
        return role(port, recovery)

    steps("before", lambda: get("/read/"))
    # A connection to the replica left open outside any request, as a long-running worker has.
    steps("before_outside_request", scoped_read)
    cluster.stop_replica()
    steps("replica_stopped", lambda: not cluster.replica_running())
    steps("outside_request_while_down", scoped_read)
    steps("session_while_down", session_read)
    steps("request_while_down", lambda: get("/read/"))
    steps("async_request_while_down", lambda: get("/aread/"))
    number = new_number("DOWN")
    steps("write_while_down", lambda: client.post(f"/write/?number={number}").status_code)
    # Back up: after APPDB_REPLICA_RETRY_SECONDS, the replica serves reads again, to a
    # client that has not just written (this one's cookie pins it to the primary).
    cluster.start_replica()
    time.sleep(float(os.environ["REPLICATION_TEST_RETRY_SECONDS"]) + 1.0)
    steps("pinned_after_restart", lambda: get("/read/"))
    client.cookies.clear()
    steps("after_restart", lambda: get("/read/"))


def scenario_lag(steps: Steps) -> None:
    from django_appdb import get_sync_app_session, replica_scope

    cluster = _cluster()
    max_lag = float(os.environ["REPLICATION_TEST_MAX_LAG"])
    check = float(os.environ["REPLICATION_TEST_LAG_CHECK_SECONDS"])

    def scoped_read(*numbers: str) -> dict[str, Any]:
        with replica_scope():
            return probe(*numbers)

    steps("before", scoped_read)
    cluster.pause_replay()
    number = new_number("LAG")
    steps("write", lambda: write(number))
    steps("on_replica_directly", lambda: _summary(list(_probe_queryset([SEED, number]).using(REPLICA_ALIAS)), ""))
    # Past the limit, and past the interval between two lag measurements.
    time.sleep(max_lag + check + 1.0)
    steps("lagging", lambda: scoped_read(number))

    def session_read() -> str:
        from sqlalchemy import text

        with replica_scope(), get_sync_app_session("orders", replica=True) as session:
            port, recovery = session.execute(text("SELECT inet_server_port(), pg_is_in_recovery()")).one()
        return role(port, recovery)

    steps("session_lagging", session_read)
    cluster.resume_replay()
    time.sleep(check + 1.0)
    steps("caught_up", lambda: scoped_read(number))


def _session_role(session: Any) -> str:
    from sqlalchemy import text

    port, recovery = session.execute(text("SELECT inet_server_port(), pg_is_in_recovery()")).one()
    return role(port, recovery)


_INSERT = (
    "INSERT INTO orders_order (number, customer_email, placed_at, paid, total)"
    " VALUES (:n, 'sa@example.com', now(), false, 0)"
)


def scenario_sqlalchemy(steps: Steps) -> None:
    from sqlalchemy import text

    from django_appdb import get_sync_app_session, replica_scope, use_primary

    def read(replica: bool) -> str:
        with replica_scope(), get_sync_app_session("orders", replica=replica) as session:
            return _session_role(session)

    steps("session_replica", lambda: read(True))
    steps("session_default", lambda: read(False))

    def pinned() -> str:
        with replica_scope(), use_primary("orders"), get_sync_app_session("orders", replica=True) as session:
            return _session_role(session)

    steps("session_replica_use_primary", pinned)

    def write_through_replica_session() -> str:
        with replica_scope(), get_sync_app_session("orders", replica=True) as session:
            session.execute(text(_INSERT), {"n": new_number("SAW")})
        return "written"

    steps("session_replica_write", write_through_replica_session)


def scenario_sqlalchemy_async(steps: Steps) -> None:
    from sqlalchemy import text

    from django_appdb import get_app_session, replica_scope

    async def read(replica: bool) -> str:
        with replica_scope():
            async with get_app_session("orders", replica=replica) as session:
                result = await session.execute(text("SELECT inet_server_port(), pg_is_in_recovery()"))
                port, recovery = result.one()
        return role(port, recovery)

    steps("session_replica", lambda: asyncio.run(read(True)))
    steps("session_default", lambda: asyncio.run(read(False)))

    async def write() -> str:
        with replica_scope():
            async with get_app_session("orders", replica=True) as session:
                await session.execute(text(_INSERT), {"n": new_number("SAAW")})
        return "written"

    steps("session_replica_write", lambda: asyncio.run(write()))


def scenario_repository(steps: Steps) -> None:
    """With the replica's replay paused (by this scenario), a row only the primary has tells where a read went."""
    from django_appdb import AppRepository, AsyncAppRepository, replica_scope
    from orders.models import Order

    class Orders(AppRepository):
        model = Order

    class AsyncOrders(AsyncAppRepository):
        model = Order

    cluster = _cluster()
    cluster.pause_replay()
    number = new_number("REPO")
    pk = Order.objects.using("orders").create(number=number, customer_email="repo@example.com").pk

    def get(replica: bool) -> bool:
        with replica_scope():
            return Orders(replica=replica).get(pk) is not None

    steps("get_replica", lambda: get(True))
    steps("get_default", lambda: get(False))

    def count(replica: bool) -> int:
        with replica_scope():
            return Orders(replica=replica).count(number=number)

    steps("count_replica", lambda: count(True))
    steps("count_default", lambda: count(False))

    def list_replica() -> list[str]:
        with replica_scope():
            return [row.number for row in Orders(replica=True).list(number=number)]

    steps("list_replica", list_replica)

    def add_then_read() -> dict[str, int]:
        added = new_number("REPOADD")
        with replica_scope():
            repo = Orders(replica=True)
            repo.add(number=added, customer_email="repo@example.com", placed_at=_now(), paid=False, total=0)
            return {"count_after_add": repo.count(number=added), "other_repo": Orders(replica=True).count(number=added)}

    steps("add_then_read", add_then_read)

    async def async_count() -> int:
        with replica_scope():
            return await AsyncOrders(replica=True).count(number=number)

    steps("async_count_replica", lambda: asyncio.run(async_count()))
    cluster.resume_replay()


def _now() -> Any:
    from django.utils import timezone

    return timezone.now()


SCENARIOS: dict[str, Callable[[Steps], None]] = {
    "routing": scenario_routing,
    "client": scenario_client,
    "replica_down": scenario_replica_down,
    "lag": scenario_lag,
    "sqlalchemy": scenario_sqlalchemy,
    "sqlalchemy_async": scenario_sqlalchemy_async,
    "repository": scenario_repository,
}


def main(name: str) -> None:
    import django

    django.setup()
    steps = Steps()
    steps("prepare", prepare)
    if "error" not in (steps.results["prepare"] or {}):
        # An error outside a step (a missing name, say) is recorded as the scenario's.
        steps("scenario", lambda: SCENARIOS[name](steps))
    print("RESULT " + json.dumps(steps.results, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
