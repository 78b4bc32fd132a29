"""Read-your-writes contexts: use_primary, replica_scope, and how pins travel (or not) between threads and tasks.

``orders`` has two scratch SQLite replicas in every test. Reads are asked of
the router in sync code (a read connects to its replica, which Django refuses
inside an event loop); in async code through ``sync_to_async``.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import router

from django_appdb import replica_scope, use_primary
from django_appdb.exceptions import UnknownAppError
from django_appdb.replicas import pinned_aliases, written
from django_appdb.testing import replica_routing
from orders.models import Order
from tests.replica_fixtures import give_replicas

pytestmark = pytest.mark.usefixtures("fresh_health", "two_replicas")

PRIMARY = "orders"


def read() -> str | None:
    return router.db_for_read(Order)


def write() -> str | None:
    return router.db_for_write(Order)


# -- use_primary ----------------------------------------------------------------------------------


@pytest.mark.parametrize("names", [("orders",), ()])
def test_use_primary_as_a_context_manager(two_replicas, names):
    with replica_routing():
        chosen = read()
        assert chosen in two_replicas
        with use_primary(*names):
            assert read() == PRIMARY
            assert pinned_aliases() == {PRIMARY}
        # The block's pin ends with it; the replica chosen before stands.
        assert read() == chosen
        assert pinned_aliases() == frozenset()
        assert written() == frozenset()


def test_use_primary_takes_an_alias_and_only_pins_what_it_names(monkeypatch, two_replicas, sqlite_replica):
    give_replicas(monkeypatch, "default", sqlite_replica("default_replica_1"))
    with replica_routing():
        with use_primary("catalog"):
            assert pinned_aliases() == {"default"}
            assert read() in two_replicas
        with use_primary("orders"):
            assert pinned_aliases() == {"orders"}
        with use_primary():
            assert pinned_aliases() == {"orders", "default"}


def test_use_primary_of_an_unknown_label_raises():
    with pytest.raises(UnknownAppError), use_primary("nosuch"):
        pass  # pragma: no cover


def test_use_primary_nested(two_replicas):
    with replica_routing():
        outer = use_primary("orders")
        with outer:
            with use_primary("catalog"):
                assert read() == PRIMARY
            assert read() == PRIMARY
            # The same object entered twice, nested.
            with outer:
                assert read() == PRIMARY
            assert read() == PRIMARY
            with use_primary():
                assert read() == PRIMARY
            assert pinned_aliases() == {PRIMARY}
        assert read() in two_replicas


def test_a_write_inside_use_primary_keeps_its_pin_after_the_block(two_replicas):
    with replica_routing():
        with use_primary():
            assert write() == PRIMARY
        assert read() == PRIMARY
        assert written() == {PRIMARY}


def test_use_primary_ends_on_an_exception(two_replicas):
    with replica_routing():
        with pytest.raises(ZeroDivisionError), use_primary("orders"):
            1 / 0  # noqa: B018
        assert read() in two_replicas


def test_use_primary_as_a_decorator_of_a_sync_function(two_replicas):
    @use_primary("orders")
    def inside() -> tuple[str | None, str | None]:
        return read(), (write() and read())

    with replica_routing():
        # Called twice: a fresh block each time, and the write in the first pins the rest of the context.
        assert inside() == (PRIMARY, PRIMARY)
        assert read() == PRIMARY
    with replica_routing():

        @use_primary()
        def only_reads() -> str | None:
            return read()

        assert only_reads() == PRIMARY
        assert only_reads() == PRIMARY
        assert read() in two_replicas
        assert only_reads.__name__ == "only_reads"


@pytest.mark.asyncio
async def test_use_primary_as_an_async_context_manager_and_decorator(two_replicas):
    async with replica_routing():
        assert await sync_to_async(read)() in two_replicas
        async with use_primary("orders"):
            assert pinned_aliases() == {PRIMARY}
            assert await sync_to_async(read)() == PRIMARY
        assert pinned_aliases() == frozenset()

        @use_primary("orders")
        async def decorated() -> str | None:
            assert pinned_aliases() == {PRIMARY}
            return await sync_to_async(read)()

        assert asyncio.iscoroutinefunction(decorated)
        assert await decorated() == PRIMARY
        assert pinned_aliases() == frozenset()
        assert await sync_to_async(read)() in two_replicas


# -- replica_scope --------------------------------------------------------------------------------


def test_replica_scope_starts_fresh_and_restores_the_outer_context(two_replicas):
    with replica_routing():
        chosen = read()
        with replica_scope():
            assert pinned_aliases() == frozenset()
            assert write() == PRIMARY
            assert read() == PRIMARY
        assert written() == frozenset()
        assert read() == chosen
        write()
        with replica_scope():
            # The outer pin is not seen inside.
            assert written() == frozenset()
            assert read() in two_replicas
        assert read() == PRIMARY


def test_replica_scope_inside_use_primary_is_unpinned(two_replicas):
    with replica_routing(), use_primary():
        with replica_scope():
            assert read() in two_replicas
        assert read() == PRIMARY


def test_replica_scope_as_decorator_sync_and_async(two_replicas):
    @replica_scope()
    def job() -> frozenset[str]:
        before = written()
        write()
        return before

    with replica_routing():
        write()
        assert job() == frozenset()
        assert job() == frozenset()
        assert written() == {PRIMARY}

    @replica_scope()
    async def ajob() -> frozenset[str]:
        before = written()
        write()
        return before

    async def main() -> None:
        write()
        assert await ajob() == frozenset()
        assert written() == {PRIMARY}

    with replica_scope():
        asyncio.run(main())
        assert written() == frozenset()


def test_replica_scope_does_not_switch_on_replicas_during_tests(two_replicas):
    with replica_scope():
        assert read() == PRIMARY
    with replica_routing(), replica_scope():
        assert read() in two_replicas


# -- threads and tasks ----------------------------------------------------------------------------


def test_a_pin_set_in_a_thread_does_not_leak_to_the_main_thread(two_replicas):
    seen: list[object] = []

    def worker() -> None:
        write()
        seen.append(written())

    with replica_routing():
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        assert seen == [{PRIMARY}]
        assert written() == frozenset()
        assert read() in two_replicas


def test_a_pin_of_the_main_thread_does_not_reach_a_new_thread(two_replicas):
    seen: list[object] = []
    with replica_routing():
        write()
        thread = threading.Thread(target=lambda: seen.append(written()))
        thread.start()
        thread.join()
    assert seen == [frozenset()]


@pytest.mark.asyncio
async def test_asyncio_tasks_get_copies():
    async def task_writes() -> frozenset[str]:
        write()
        return written()

    async def task_reads() -> frozenset[str]:
        return written()

    async with replica_scope():
        assert await asyncio.create_task(task_writes()) == {PRIMARY}
        assert written() == frozenset()
        write()
        # A task starts with a copy of its parent's context.
        assert await asyncio.create_task(task_reads()) == {PRIMARY}
        results = await asyncio.gather(task_reads(), task_writes())
        assert results == [{PRIMARY}, {PRIMARY}]


@pytest.mark.asyncio
async def test_sync_to_async_hands_a_writes_pin_back_to_the_caller(two_replicas):
    async with replica_routing():
        assert await sync_to_async(read)() in two_replicas
        assert await sync_to_async(write)() == PRIMARY
        assert written() == {PRIMARY}
        assert await sync_to_async(read)() == PRIMARY
    async with replica_routing():
        assert await sync_to_async(write, thread_sensitive=False)() == PRIMARY
        assert pinned_aliases() == {PRIMARY}


def test_async_to_sync_hands_a_writes_pin_back_to_the_caller(two_replicas):
    async def awrite() -> str | None:
        return write()

    with replica_routing():
        chosen = read()
        assert chosen in two_replicas
        assert async_to_sync(awrite)() == PRIMARY
        assert written() == {PRIMARY}
        assert read() == PRIMARY


def test_async_to_sync_sees_the_callers_pins(two_replicas):
    async def pins() -> frozenset[str]:
        return pinned_aliases()

    with replica_routing():
        with use_primary("orders"):
            assert async_to_sync(pins)() == {PRIMARY}
        assert async_to_sync(pins)() == frozenset()
