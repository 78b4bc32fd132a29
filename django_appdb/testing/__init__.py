"""Testing a project that uses django-appdb: helpers for test cases, the pytest plugin, the guard.

* :func:`app_aliases` gives the database aliases a test declares in
  ``databases`` (Django's ``TestCase``) or ``@pytest.mark.django_db``.
* :func:`django_connection_session` gives a SQLAlchemy session that shares
  Django's connection and transaction, so a ``TestCase`` test sees the ORM's
  rows from SQLAlchemy and the other way round, and Django's rollback undoes
  both.

The pytest fixtures (``appdb_session``, ``appdb_async_session``,
``appdb_django_session``) live in :mod:`django_appdb.testing.pytest_plugin`.
The helpers are imported on first use: pytest loads the plugin from this
package before Django is configured, and a project without Django must not
import it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = ["app_aliases", "django_connection_session", "replica_routing"]

if TYPE_CHECKING:
    from django_appdb.testing.helpers import (
        app_aliases as app_aliases,
        django_connection_session as django_connection_session,
        replica_routing as replica_routing,
    )


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'django_appdb.testing' has no attribute {name!r}")
    value = getattr(import_module("django_appdb.testing.helpers"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
