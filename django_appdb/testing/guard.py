"""Keep test runs on test databases: what a running test may connect to, and what may be set up.

A test run is active from Django's ``setup_test_environment()`` to its
``teardown_test_environment()``, under ``manage.py test`` and pytest-django
alike. While it is:

* **No connection opens to a real database.** The databases in ``DATABASES``
  when the process started are the real ones; every SQLAlchemy engine of
  django-appdb, and every Django connection but the maintenance one Django
  creates and drops test databases through, checks the database it is about
  to connect to when the connection opens, and raises
  :class:`~django_appdb.exceptions.NotATestDatabaseError` for a real one. The
  check runs in the engine's connect event, so an engine or session factory
  kept from import time is covered too.
* **A test uses only the aliases it declared.** SQLAlchemy access to an alias
  the running test did not declare fails as Django's ORM does in that test,
  with :class:`~django_appdb.exceptions.UndeclaredDatabaseError` (a
  ``DatabaseOperationForbidden``).
* **Tests that declare nothing may use the app databases.** Django's default
  ``databases = {"default"}`` of ``TransactionTestCase`` and ``TestCase`` is
  widened to every app database (``APPDB_WIDEN_TEST_DATABASES``), so a
  third-party app's suite keeps passing when the app moves to its own
  database; an explicit ``databases`` is never widened.
* **Set-up refuses what would make it destructive or pointless.** Before the
  first test database is created, a test database name that is a real
  database is refused, and django-appdb's system checks run (Django's runner
  runs them only after migrating the test databases, pytest-django never); a
  set-up that fails drops the test databases it created, and a test
  database is never destroyed when its name is a real database's.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import NO_DB_ALIAS, BaseDatabaseWrapper
from django.db.backends.base.creation import BaseDatabaseCreation

from django_appdb.dburls import identity, is_file_engine

if TYPE_CHECKING:
    from django.core.checks import CheckMessage

__all__ = [
    "check_access",
    "check_real_database",
    "colliding_test_databases",
    "default_test_databases",
    "install",
    "real_alias_of",
    "remember_real_databases",
    "running_tests",
]

logger = logging.getLogger(__name__)

#: The ``DATABASES`` entries at start-up, before any test set-up renamed them.
_real_settings: dict[str, dict[str, Any]] = {}
#: Their physical identities (see :func:`guard_identity`), each with its alias.
_real_identities: dict[tuple[Any, ...], str] = {}
#: Test databases this process created: (creation, real NAME, test NAME).
_created: list[tuple[BaseDatabaseCreation, Any, Any]] = []

_PYTEST_DJANGO_REFUSAL = (
    'Database access not allowed, use the "django_db" mark, or the "db" or "transactional_db" fixtures to enable it.'
)


def running_tests() -> bool:
    """Return whether Django's test environment is set up (a test run is in progress)."""
    # Cheap when no test runs: django.test.utils is not even imported then.
    utils = sys.modules.get("django.test.utils")
    return utils is not None and hasattr(utils._TestState, "saved_data")


def guard_identity(settings_dict: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """Return the key equal for two settings reaching the same data, None for a private in-memory one."""
    key = identity(settings_dict, physical=True)
    if key is not None and "oracle" in str(settings_dict.get("ENGINE") or ""):
        # Oracle's test database is a test user in the same database.
        key = (*key, str(settings_dict.get("USER") or "").upper())
    return key


_PLAIN = (str, int, float, bool, bytes, type(None))
#: Identities not computed yet: most processes never run a test and never need them.
_LATER = object()
#: Alias -> its identity (or _LATER) in the order of ``DATABASES``, until ``_real_identities`` is built.
_pending: dict[str, Any] = {}


def _snapshot(value: Any) -> Any:
    """Return a deep copy of a ``DATABASES`` value; plain dicts and scalars without ``copy.deepcopy``."""
    if type(value) in _PLAIN:
        return value
    if type(value) is dict:
        return {key: _snapshot(item) for key, item in value.items()}
    return copy.deepcopy(value)


def _depends_on_process(settings_dict: Mapping[str, Any]) -> bool:
    """Whether the identity may change with the working directory or HOME: a relative SQLite path."""
    if not is_file_engine(str(settings_dict.get("ENGINE") or "")):
        return False
    name = str(settings_dict.get("NAME") or "")
    if name.startswith("file:"):
        name = name[len("file:") :]
    return not os.path.isabs(name)


def remember_real_databases(databases: Mapping[str, Mapping[str, Any]]) -> None:
    """Record ``databases`` as the real ones; ignored while a test run is active."""
    if running_tests():
        return
    _real_settings.clear()
    _real_identities.clear()
    _pending.clear()
    for alias, settings_dict in databases.items():
        _real_settings[alias] = _snapshot(dict(settings_dict))
        # Relative SQLite paths are resolved now, against today's working directory.
        _pending[alias] = guard_identity(settings_dict) if _depends_on_process(settings_dict) else _LATER


def _real_identity_table() -> dict[tuple[Any, ...], str]:
    """Return ``_real_identities``, computing the identities deferred at start-up on first use."""
    if _pending:
        for alias, key in _pending.items():
            if key is _LATER:
                key = guard_identity(_real_settings[alias])
            if key is not None:
                _real_identities.setdefault(key, alias)
        _pending.clear()
    return _real_identities


def real_alias_of(settings_dict: Mapping[str, Any]) -> str | None:
    """Return the alias whose real database ``settings_dict`` reaches, or None for a database that is not real."""
    key = guard_identity(settings_dict)
    return None if key is None else _real_identity_table().get(key)


def _describe_state(alias: str) -> str:
    current = connections.settings.get(alias)
    if current is None:
        return f"database alias {alias!r} is no longer in DATABASES"
    if real_alias_of(current) is not None:
        return (
            f"no test database is set up for alias {alias!r} in this run: the test runners create one only "
            "for the aliases the collected tests declare"
        )
    return f"alias {alias!r} now uses the test database {str(current.get('NAME'))!r}"


def _how_to_declare(alias: str) -> str:
    return (
        f"Declare it: databases = {{..., {alias!r}}} on the test case, or "
        f"@pytest.mark.django_db(databases=[..., {alias!r}]); django_appdb.testing.app_aliases() gives every "
        "app database."
    )


def forbidden_reason(alias: str) -> str | None:
    """Return why the running test may not use ``alias``, as Django or pytest-django refuse the ORM; None if it may."""
    testcases = sys.modules.get("django.test.testcases")
    if testcases is not None and alias in connections.settings:
        # Django's test cases replace connect() of every alias a test did
        # not declare, on the test thread's connection.
        failure = getattr(connections[alias], "connect", None)
        if isinstance(failure, testcases._DatabaseFailure):
            return str(failure.message)
    # pytest-django replaces ensure_connection() while a test has no database access.
    ensure = BaseDatabaseWrapper.ensure_connection
    if getattr(ensure, "__module__", "") == "pytest_django.plugin" and ensure.__name__ == "_blocking_wrapper":
        return _PYTEST_DJANGO_REFUSAL
    return None


def check_access(alias: str, what: str = "SQLAlchemy") -> None:
    """Raise :class:`~django_appdb.exceptions.UndeclaredDatabaseError` if the running test may not use ``alias``."""
    if not running_tests():
        return
    reason = forbidden_reason(alias)
    if reason is None:
        return
    from django_appdb.exceptions import UndeclaredDatabaseError

    raise UndeclaredDatabaseError(
        f"django_appdb: {what} may not use database alias {alias!r} in this test, as the ORM may not: {reason}"
    )


def check_real_database(alias: str, settings_dict: Mapping[str, Any], what: str) -> None:
    """Raise :class:`~django_appdb.exceptions.NotATestDatabaseError` if a test run would reach a real database."""
    if not running_tests():
        return
    real = real_alias_of(settings_dict)
    if real is None:
        return
    from django_appdb.exceptions import NotATestDatabaseError

    shown = f"the real database of alias {real!r}" if real != alias else "its real database"
    state = _describe_state(alias)
    raise NotATestDatabaseError(
        f"django_appdb: a test run is active, and {what} for database alias {alias!r} was about to connect to "
        f"{shown} ({str(settings_dict.get('NAME'))!r}); nothing a test does may reach a real database. "
        f"{state[0].upper()}{state[1:]}. {_how_to_declare(alias)} Get engines from django_appdb when they are "
        "used (get_engine(), get_sessionmaker()), rather than keeping an engine from import time."
    )


def on_connection_created(connection: Any) -> None:
    """Refuse, during a test run, a Django connection that opened on a real database."""
    # Django's own connections: the ORM of a test whose alias has no test
    # database (widened or not) must not reach the real one either. The
    # maintenance connection is how test databases are created and dropped.
    if connection.alias == NO_DB_ALIAS or not running_tests():
        return
    try:
        check_real_database(connection.alias, connection.settings_dict, "Django's connection")
    except Exception:
        # Closed, so the next query connects (and is refused) again.
        connection.close()
        raise


def default_test_databases(django_default: Iterable[str] = (DEFAULT_DB_ALIAS,)) -> frozenset[str]:
    """Return what a test that declares no databases may use: Django's default and, unless off, the app databases."""
    from django_appdb.conf import conf
    from django_appdb.state import state

    declared = frozenset(django_default)
    if not conf.WIDEN_TEST_DATABASES:
        return declared
    aliases = {alias for alias in state.aliases.values() if alias in connections.settings}
    # And their replicas, test mirrors of the primaries (Django creates nothing for them).
    # (A list first: a generator over ``aliases`` would see the set grow.)
    aliases.update([replica for alias in aliases for replica in state.replicas.get(alias, ())])
    return declared | aliases


class DefaultTestDatabases:
    """``TransactionTestCase.databases``: Django's default, read at access time and widened to the app databases.

    A test case class that sets ``databases`` itself, as any subclass may,
    is never widened.
    """

    def __init__(self, django_default: Iterable[str]) -> None:
        self.django_default = frozenset(django_default)

    def __get__(self, instance: object, owner: type | None = None) -> frozenset[str]:
        return default_test_databases(self.django_default)

    def __repr__(self) -> str:
        return f"<django_appdb default test databases {sorted(default_test_databases(self.django_default))}>"


def _widen_test_cases(module: Any) -> None:
    case = module.TransactionTestCase
    default = case.__dict__.get("databases")
    if isinstance(default, (set, frozenset)):
        case.databases = DefaultTestDatabases(default)


# -- test database set-up -------------------------------------------------------------------------


def colliding_test_databases(
    databases: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[tuple[str, str, str]]:
    """Return (alias, test database name, real alias) for every test database that is a real database.

    ``databases`` defaults to the real ``DATABASES`` recorded at start-up.
    Mirrors (``TEST["MIRROR"]``) create no database and are skipped.
    """
    from django.db.utils import load_backend

    if databases is None:
        databases = _real_settings or connections.settings
    real = {
        key: alias for alias, settings_dict in databases.items() if (key := guard_identity(settings_dict)) is not None
    }
    found = []
    for alias, settings_dict in databases.items():
        if (settings_dict.get("TEST") or {}).get("MIRROR"):
            continue
        try:
            wrapper = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(copy.deepcopy(dict(settings_dict)), alias)
            test_name = wrapper.creation._get_test_db_name()
        except Exception:
            # A backend that cannot load here (its driver is missing:
            # django_appdb.E002): Django's rule for servers.
            test_name = (settings_dict.get("TEST") or {}).get("NAME") or f"test_{settings_dict.get('NAME')}"
        key = guard_identity({**settings_dict, "NAME": test_name})
        if key is not None and key in real:
            found.append((alias, str(test_name), real[key]))
    return found


def _refuse_real_test_database(creation: BaseDatabaseCreation) -> None:
    connection = creation.connection
    # Django's own rule for the name (private, and not in django-stubs).
    test_name = creation._get_test_db_name()  # type: ignore[attr-defined]
    real = real_alias_of({**connection.settings_dict, "NAME": test_name})
    if real is None:
        return
    from django_appdb.exceptions import SetupRefusedError

    itself = "its own real database" if real == connection.alias else f"the real database of alias {real!r}"
    raise SetupRefusedError(
        f"django_appdb: refusing to set up the test database {str(test_name)!r} of alias {connection.alias!r}: it "
        f"is {itself}, which the test runner would delete (SQLite) or drop (servers) with its data. Nothing was "
        "created or dropped. Give TEST['NAME'] (DATABASE_TEST in database.py) a name of its own, or leave it out "
        "(Django then uses test_<NAME>). (django_appdb.E007)"
    )


def serious_check_messages() -> list[CheckMessage]:
    """Return django-appdb's unsilenced system check errors: those that make a test run pointless."""
    from django.core.checks import run_checks

    from django_appdb.checks import TAG

    return [message for message in run_checks(tags=[TAG]) if message.is_serious() and not message.is_silenced()]


def preflight(creation: BaseDatabaseCreation, *, run_checks: bool = True) -> None:
    """Refuse to set up test databases that are real ones, or a run the system checks fail; create nothing."""
    _refuse_real_test_database(creation)
    errors = serious_check_messages() if run_checks else []
    if errors:
        from django_appdb.exceptions import SetupRefusedError

        shown = "\n".join(str(message) for message in errors)
        raise SetupRefusedError(
            "django_appdb: the test databases were not set up, because the system checks found errors that would "
            f"make the run fail (Django's runner checks only after migrating them). Nothing was created.\n\n{shown}"
        )


def _drop_created(creation: BaseDatabaseCreation, old_name: Any) -> None:
    """Drop the test databases this set-up created, the failing one included: a rerun would stop at a prompt."""
    pending = [*_created, (creation, old_name, creation.connection.settings_dict["NAME"])]
    _created.clear()
    for made, real_name, test_name in reversed(pending):
        settings_dict = made.connection.settings_dict
        if settings_dict["NAME"] == real_name or settings_dict["NAME"] != test_name:
            continue  # never created, or torn down already
        try:
            made.destroy_test_db(real_name, verbosity=0, keepdb=False)
        except Exception as exc:
            logger.warning(
                "Could not drop the test database %r of alias %r: %r", str(test_name), made.connection.alias, exc
            )


def _marked(wrapper: Callable[..., Any], original: Callable[..., Any]) -> Callable[..., Any]:
    # functools.update_wrapper sets __wrapped__, the name and the docstring;
    # the marker keeps a second install() from wrapping twice.
    functools.update_wrapper(wrapper, original)
    wrapper.django_appdb_guard = True  # type: ignore[attr-defined]
    return wrapper


def _wrap_once(name: str, guarded: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    method = getattr(BaseDatabaseCreation, name)
    if not getattr(method, "django_appdb_guard", False):
        setattr(BaseDatabaseCreation, name, guarded(method))


def _guarded_create_test_db(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_test_db(self: BaseDatabaseCreation, *args: Any, **kwargs: Any) -> Any:
        keepdb = kwargs.get("keepdb", args[3] if len(args) > 3 else False)
        # Forget the set-ups torn down since; the checks run once per set-up, at its first database.
        _created[:] = [entry for entry in _created if entry[0].connection.settings_dict["NAME"] == entry[2]]
        preflight(self, run_checks=not _created)
        old_name = self.connection.settings_dict["NAME"]
        try:
            test_name = original(self, *args, **kwargs)
        except BaseException:
            if not keepdb:
                _drop_created(self, old_name)
            raise
        _created.append((self, old_name, self.connection.settings_dict["NAME"]))
        return test_name

    return _marked(create_test_db, original)


_installed = False


def _guarded_destroy_test_db(original: Callable[..., Any]) -> Callable[..., Any]:
    def destroy_test_db(
        self: BaseDatabaseCreation,
        old_database_name: Any = None,
        verbosity: int = 1,
        keepdb: bool = False,
        suffix: str | None = None,
    ) -> Any:
        settings_dict = self.connection.settings_dict
        name = settings_dict["NAME"] if suffix is None else self.get_test_db_clone_settings(suffix)["NAME"]
        real = real_alias_of({**settings_dict, "NAME": name})
        if real is not None and not keepdb:
            # Torn down twice, the alias is back on its real NAME: Django
            # would delete the real SQLite file or drop the real database.
            from django_appdb.exceptions import SetupRefusedError

            raise SetupRefusedError(
                f"django_appdb: refusing to destroy {str(name)!r} as the test database of alias "
                f"{self.connection.alias!r}: it is the real database of alias {real!r} (were the test databases "
                "torn down twice?). Nothing was dropped."
            )
        if not keepdb and self.connection.vendor == "postgresql":
            from django_appdb.state import pooler_of

            if pooler_of(self.connection.alias) is not None:
                _end_pooled_server_connections(self, str(name))
        return original(self, old_database_name, verbosity, keepdb, suffix)

    return _marked(destroy_test_db, original)


def _end_pooled_server_connections(creation: BaseDatabaseCreation, name: str) -> None:
    """End the server connections a pooler still holds to the test database ``name``, so it can be dropped.

    PgBouncer keeps its server connections open after Django closes its own,
    and PostgreSQL refuses to drop a database others are connected to. Only
    connections to the test database are ended (the caller has checked it is
    no real database's); PgBouncer opens new ones when they are next needed.
    """
    creation.connection.close()
    with creation.connection._nodb_cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )


def install() -> None:
    """Install the guards: idempotent, opens nothing, imports no test machinery."""
    global _installed
    if _installed:
        return
    _installed = True
    import wrapt

    _wrap_once("create_test_db", _guarded_create_test_db)
    _wrap_once("destroy_test_db", _guarded_destroy_test_db)
    # django.test costs a tenth of a second to import: widen its default
    # only once a test runner has imported it.
    wrapt.register_post_import_hook(_widen_test_cases, "django.test.testcases")
