"""The pytest plugin's ``appdb_session`` and ``appdb_async_session`` fixtures, in this test session.

``inventory`` is always SQLite; ``orders`` is PostgreSQL when
APPDB_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from catalog.models import Category
from django_appdb import get_engine, table_for
from inventory.models import Warehouse
from orders.models import Order

DATABASES = ["default", "inventory", "orders"]
LABELS = ["inventory", "orders"]
transactional = pytest.mark.django_db(databases=DATABASES, transaction=True)
in_test = pytest.mark.django_db(databases=DATABASES)


def model(label: str) -> Any:
    return Warehouse if label == "inventory" else Order


def row(label: str, key: str) -> dict[str, str]:
    if label == "inventory":
        return {"code": key, "name": f"Warehouse {key}"}
    return {"number": key, "customer_email": "ada@example.com"}


def count(session: Session, label: str) -> int:
    return session.scalar(select(func.count()).select_from(table_for(model(label))))


def current_database_name(label: str) -> str:
    name = str(connections[label].settings_dict["NAME"])
    assert "test" in name or "memorydb" in name, name
    return name


@transactional
@pytest.mark.parametrize("label", LABELS)
def test_the_session_is_on_the_apps_test_database(appdb_session, label):
    session = appdb_session(label)
    assert isinstance(session, Session)
    assert session.get_bind().url.database.split("?")[0] == current_database_name(label).split("?")[0]
    session.execute(insert(table_for(model(label))).values(**row(label, "SA")))
    session.commit()
    assert model(label).objects.count() == 1
    assert count(session, label) == 1


@transactional
def test_labels_of_apps_on_the_default_database_name_it(appdb_session):
    assert appdb_session("catalog").get_bind() is appdb_session("default").get_bind() is get_engine("default")


@transactional
def test_keyword_arguments_go_to_the_session(appdb_session):
    assert appdb_session("orders", autoflush=False).autoflush is False
    # The app sessions' default, kept by the factory.
    assert appdb_session("orders").expire_on_commit is False


@pytest.fixture
def after_the_fixtures() -> Iterator[list[Callable[[], None]]]:
    """Run the checks a test appends after the teardown of the fixtures it requested after this one."""
    checks: list[Callable[[], None]] = []
    yield checks
    for check in checks:
        check()


@transactional
@pytest.mark.parametrize("label", LABELS)
def test_an_uncommitted_session_is_rolled_back_at_teardown(after_the_fixtures, appdb_session, label):
    session = appdb_session(label)
    session.execute(insert(table_for(model(label))).values(**row(label, "PENDING")))
    assert session.in_transaction()

    def check() -> None:
        assert not session.in_transaction()
        assert get_engine(label).pool.checkedout() == 0

    after_the_fixtures.append(check)


@in_test
@pytest.mark.parametrize("label", LABELS)
def test_committing_inside_a_test_django_rolls_back_is_refused(appdb_session, label):
    session = appdb_session(label)
    session.execute(insert(table_for(model(label))).values(**row(label, "LEAK")))
    with pytest.raises(RuntimeError, match=rf"rows it commits would stay in the test database '{label}'"):
        session.commit()
    session.rollback()
    assert count(session, label) == 0


@in_test
def test_reading_needs_no_commit_and_committing_is_refused_even_without_writes(appdb_session):
    session = appdb_session("inventory")
    assert count(session, "inventory") == 0
    with pytest.raises(RuntimeError, match=r"transaction=True"):
        session.commit()


def test_the_session_fixture_needs_database_access(appdb_session):
    with pytest.raises(pytest.fail.Exception, match=r"appdb_session\('orders'\) needs database access.*django_db"):
        appdb_session("orders")


@pytest.mark.django_db
def test_a_bare_mark_declares_every_app_database(appdb_session, request):
    # Widened, as Django's default on its test cases (APPDB_WIDEN_TEST_DATABASES).
    assert request.node.get_closest_marker("django_db").kwargs["databases"] == ["default", "inventory", "orders"]
    assert appdb_session("catalog").scalar(select(func.count()).select_from(table_for(Category))) == 0
    assert count(appdb_session("inventory"), "inventory") == 0


@pytest.mark.django_db(databases=["default"])
def test_an_explicit_declaration_is_never_widened(appdb_session):
    appdb_session("catalog")
    only_default = r"may not use database alias 'inventory'; it declared \['default'\]"
    with pytest.raises(pytest.fail.Exception, match=only_default):
        appdb_session("inventory")


def test_the_db_fixture_declares_every_app_database(db, appdb_session):
    appdb_session("default")
    assert count(appdb_session("orders"), "orders") == 0


@transactional
def test_an_unknown_name_is_a_lookup_error(appdb_session):
    with pytest.raises(LookupError, match=r"'nope' is neither an installed app label nor a database alias"):
        appdb_session("nope")


# -- async ----------------------------------------------------------------


@pytest.mark.asyncio
@transactional
@pytest.mark.parametrize("label", LABELS)
@pytest.mark.async_drivers
async def test_the_async_session_is_on_the_apps_test_database(appdb_async_session, label):
    from sqlalchemy.ext.asyncio import AsyncSession

    session = appdb_async_session(label)
    assert isinstance(session, AsyncSession)
    await session.execute(insert(table_for(model(label))).values(**row(label, "ASYNC")))
    await session.commit()
    try:
        assert await model(label).objects.acount() == 1
    finally:
        # The async ORM ran in asgiref's worker thread; its Django connection
        # would keep PostgreSQL from dropping the test database.
        await sync_to_async(connections.close_all)()
    total = await session.scalar(select(func.count()).select_from(table_for(model(label))))
    assert total == 1


@pytest.mark.asyncio
@in_test
@pytest.mark.async_drivers
async def test_async_commits_inside_a_test_django_rolls_back_are_refused(appdb_async_session):
    session = appdb_async_session("orders")
    await session.execute(insert(table_for(Order)).values(**row("orders", "LEAK")))
    with pytest.raises(RuntimeError, match=r"appdb_async_session.*transaction=True"):
        await session.commit()
    await session.rollback()


@pytest.mark.asyncio
async def test_the_async_fixture_needs_database_access(appdb_async_session):
    with pytest.raises(pytest.fail.Exception, match=r"appdb_async_session.*needs database access"):
        appdb_async_session("orders")
