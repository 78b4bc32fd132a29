"""pytest fixtures for projects that use django-appdb, on top of pytest-django.

Installed with django-appdb and loaded through the ``pytest11`` entry point
(``-p django_appdb.testing.pytest_plugin`` when plugin autoloading is disabled). It
only defines fixtures and imports nothing of Django or SQLAlchemy until one
is used, so it leaves projects that do not use django_appdb alone.

Each fixture is a factory taking an app label (``"orders"``), ``"default"``
or a database alias, for a test that declared that database::

    @pytest.mark.django_db(databases=app_aliases(), transaction=True)
    def test_paying(appdb_session):
        session = appdb_session("orders")

* ``appdb_session(name)`` -- a ``Session`` on the app's test database,
  through the app's engine (its own connection), as application code gets
  from ``get_sync_app_session``. For transactional tests
  (``transaction=True``): Django empties the tables afterwards. In a test
  Django rolls back, committing it raises, since the rows would outlive the
  test.
* ``appdb_async_session(name)`` -- the same with an ``AsyncSession``, from an
  async test (pytest-asyncio).
* ``appdb_django_session(name)`` -- a ``Session`` on Django's own connection,
  inside the transaction Django wraps a non-transactional ``django_db`` test
  in: it sees the ORM's uncommitted rows and the ORM sees its flushed ones;
  ``commit()`` and ``rollback()`` act on a savepoint; Django's rollback at the
  end of the test undoes everything. PostgreSQL (psycopg 3) and SQLite.

Sessions still open when the test ends are rolled back and closed before
Django cleans the database up.

The plugin also widens, as django-appdb does for Django's test cases, a
``django_db`` mark (or a ``db``/``transactional_db`` fixture) that declares no
``databases`` to every app database (``APPDB_WIDEN_TEST_DATABASES``), so the
test databases of those apps are created; and it stops the run at the first
test whose database set-up django-appdb refused.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.orm import Session

# pytest-django's fixtures that give a test database access without the mark.
_DB_FIXTURES = ("transactional_db", "db", "live_server", "django_db_reset_sequences", "django_db_serialized_rollback")
# validate_django_db()'s positional parameters: (transaction, reset_sequences, databases, ...).
_DATABASES_POSITION = 2


def _widened_databases() -> frozenset[str] | None:
    """Return what a test that declares no databases may use, or None when django-appdb does not run here."""
    django_apps = sys.modules.get("django.apps")
    if django_apps is None or not django_apps.apps.ready or not django_apps.apps.is_installed("django_appdb"):
        return None
    from django_appdb.testing.guard import default_test_databases

    widened = default_test_databases()
    return widened if widened != {"default"} else None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every test that declares no databases the app databases too, so their test databases are created."""
    widened = _widened_databases()
    if widened is None:
        return
    from django.test import TransactionTestCase

    databases = sorted(widened)
    for item in items:
        test_class = getattr(item, "cls", None)
        if isinstance(test_class, type) and issubclass(test_class, TransactionTestCase):
            continue  # Django's test cases: their default is widened at the class
        marker = item.get_closest_marker("django_db")
        if marker is not None:
            if "databases" in marker.kwargs or len(marker.args) > _DATABASES_POSITION:
                continue  # declared: never widened
            mark = pytest.mark.django_db(*marker.args, **marker.kwargs, databases=databases)
        elif any(name in getattr(item, "fixturenames", ()) for name in _DB_FIXTURES):
            mark = pytest.mark.django_db(databases=databases)
        else:
            continue
        # First among the item's own marks: the closest, which pytest-django reads.
        item.add_marker(mark, append=False)


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    """Stop the run when django-appdb refused to set up the test databases: every other test would fail alike."""
    if call.when != "setup" or call.excinfo is None:
        return
    exceptions = sys.modules.get("django_appdb.exceptions")
    # The class exists once raised: without it, nothing was refused.
    if exceptions is None or not exceptions._lazy_classes.cache_info().currsize:
        return
    if call.excinfo.errisinstance(exceptions.SetupRefusedError):
        item.session.shouldstop = "django_appdb refused to set up the test databases (see the error above)"


class DatabaseAccess:
    """The database aliases the running test declared, and whether Django rolls the test back, as pytest-django does."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        from django.db import connections

        self.test = request.node.nodeid
        names = request.fixturenames
        marker = request.node.get_closest_marker("django_db")
        transactional = any(name in names for name in ("transactional_db", "live_server", "django_db_reset_sequences"))
        if marker is not None:
            from pytest_django.fixtures import validate_django_db

            transaction, reset_sequences, databases, *_ = validate_django_db(marker)
            transactional = transactional or transaction or reset_sequences
        elif any(name in names for name in _DB_FIXTURES):
            databases = None
        else:
            self.declared: frozenset[str] | None = None
            self.rolled_back = False
            return
        if databases is None:
            from django_appdb.testing.guard import default_test_databases

            self.declared = default_test_databases()
        elif databases == "__all__":
            self.declared = frozenset(connections)
        else:
            self.declared = frozenset(databases)
        #: Whether Django runs the test inside a transaction it rolls back (TestCase).
        self.rolled_back = not transactional

    def alias(self, fixture: str, name: str) -> str:
        """Return the alias ``name`` stands for; fail the test if it may not use that database."""
        from django_appdb.state import resolve_alias

        if self.declared is None:
            pytest.fail(
                f"{fixture}({name!r}) needs database access, and {self.test} has none. Mark it: "
                "@pytest.mark.django_db(databases=app_aliases()) (from django_appdb.testing import app_aliases), "
                "or list the aliases it uses.",
                pytrace=False,
            )
        alias = resolve_alias(name)
        if alias not in self.declared:
            pytest.fail(
                f"{fixture}({name!r}): {self.test} may not use database alias {alias!r}; it declared "
                f"{sorted(self.declared)}. Add it: @pytest.mark.django_db(databases=[..., {alias!r}]), or "
                "databases=app_aliases() for every app database (or '__all__').",
                pytrace=False,
            )
        return alias

    def refuse_commits(self, session: Session, alias: str, fixture: str, name: str) -> None:
        """Make ``session.commit()`` raise in a test Django rolls back: the rows would outlive the test."""
        if not self.rolled_back:
            return
        from sqlalchemy import event

        def before_commit(session: Session) -> None:
            raise RuntimeError(
                f"{fixture}({name!r}) has a connection of its own, but {self.test} runs inside a transaction "
                f"Django rolls back (django_db without transaction=True): rows it commits would stay in the "
                f"test database {alias!r} for the tests after it. Use appdb_django_session({name!r}), which "
                "shares Django's transaction, or mark the test transaction=True."
            )

        event.listen(session, "before_commit", before_commit)


@pytest.fixture
def _appdb_database_access(request: pytest.FixtureRequest) -> DatabaseAccess:
    """Return the databases the test declared, set up after pytest-django's database fixtures.

    Being set up after them, the sessions fixtures are torn down before them:
    sessions are rolled back and closed before Django rolls back or empties
    the test database.
    """
    if request.node.get_closest_marker("django_db") is None:
        # The mark's helper is an autouse fixture, already set up; the
        # fixtures may come after this one in the test's arguments.
        for name in ("transactional_db", "db"):
            if name in request.fixturenames:
                request.getfixturevalue(name)
                break
    return DatabaseAccess(request)


@pytest.fixture
def appdb_session(_appdb_database_access: DatabaseAccess) -> Iterator[Callable[..., Session]]:
    """Return a factory of sync sessions on an app's test database, through the app's engine.

    ``appdb_session("orders")`` returns a new ``sqlalchemy.orm.Session``;
    keyword arguments go to the session. Sessions still open at teardown are
    rolled back and closed.
    """
    access = _appdb_database_access
    opened: list[Session] = []

    def factory(name: str, **options: Any) -> Session:
        from django_appdb.sqlalchemy.sessions import sessionmaker_for

        alias = access.alias("appdb_session", name)
        session: Session = sessionmaker_for(alias)(**options)
        access.refuse_commits(session, alias, "appdb_session", name)
        opened.append(session)
        return session

    yield factory
    for session in reversed(opened):
        session.close()


def _async_session_fixture() -> Any:
    try:
        import pytest_asyncio
    except ImportError:

        @pytest.fixture(name="appdb_async_session")
        def needs_pytest_asyncio() -> None:
            """Need pytest-asyncio (pip install pytest-asyncio)."""
            pytest.fail("appdb_async_session needs pytest-asyncio: pip install pytest-asyncio", pytrace=False)

        return needs_pytest_asyncio

    @pytest_asyncio.fixture
    async def appdb_async_session(
        _appdb_database_access: DatabaseAccess,
    ) -> AsyncIterator[Callable[..., AsyncSession]]:
        """Return a factory of async sessions on an app's test database, for async tests.

        ``appdb_async_session("orders")``, called from the async test, returns
        a new ``AsyncSession`` on the app's async engine for the running event
        loop. Sessions still open at teardown are rolled back and closed.
        """
        access = _appdb_database_access
        opened: list[AsyncSession] = []

        def factory(name: str, **options: Any) -> AsyncSession:
            from django_appdb.sqlalchemy.sessions import async_sessionmaker_for

            alias = access.alias("appdb_async_session", name)
            session = async_sessionmaker_for(alias)(**options)
            access.refuse_commits(session.sync_session, alias, "appdb_async_session", name)
            opened.append(session)
            return session

        yield factory
        for session in reversed(opened):
            await session.close()

    return appdb_async_session


appdb_async_session = _async_session_fixture()


@pytest.fixture
def appdb_django_session(_appdb_database_access: DatabaseAccess) -> Iterator[Callable[..., Session]]:
    """Return a factory of sync sessions on Django's own connection, inside the test's transaction.

    ``appdb_django_session("orders")`` returns the ``Session`` sharing
    Django's connection to the app's test database (the same one for every
    call in a test). The test must be one Django rolls back (``django_db``
    without ``transaction=True``). At teardown the session's uncommitted work
    is rolled back; Django's rollback then undoes the rest.
    """
    from django.db import connections

    from django_appdb.sqlalchemy import djangoconnection

    access = _appdb_database_access
    opened: dict[str, tuple[Session, Connection]] = {}

    def factory(name: str, **options: Any) -> Session:
        alias = access.alias("appdb_django_session", name)
        if alias in opened:
            return opened[alias][0]
        connection = connections[alias]
        djangoconnection.check_supported(connection)
        if not djangoconnection.in_test_transaction(connection):
            pytest.fail(
                f"appdb_django_session({name!r}) shares the transaction Django wraps a test in, and this test "
                "has none (transaction=True, transactional_db or live_server). Use appdb_session, whose "
                "committed rows Django removes after a transactional test.",
                pytrace=False,
            )
        opened[alias] = djangoconnection.open_session(connection, **options)
        return opened[alias][0]

    yield factory
    for alias, (session, bound) in reversed(opened.items()):
        djangoconnection.close_session(session, bound, connections[alias], commit=False)
