"""Exceptions raised by django-appdb."""

from __future__ import annotations

import functools
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.connection import ConnectionDoesNotExist


class AppDatabaseConfigError(ImproperlyConfigured):
    """An app's database configuration is invalid.

    The message names the app label and where the bad value came from (an
    environment variable or a ``database.py`` module). Credentials are masked.
    """

    def __init__(self, app_label: str, source: str, problem: str, fix: str = "") -> None:
        self.app_label = app_label
        self.source = source
        self.problem = problem
        self.fix = fix
        message = f"django_appdb: app '{app_label}' ({source}): {problem}"
        if fix:
            message = f"{message} {fix}"
        super().__init__(message)


class UnknownAppError(LookupError):
    """A name given where an app label is expected is neither an installed app label nor a database alias.

    The message lists the installed labels (and the aliases, where an alias
    is accepted too).
    """

    def __init__(self, name: str, labels: list[str], aliases: list[str] | None = None) -> None:
        self.name = name
        self.labels = labels
        self.aliases = aliases
        known = ", ".join(labels) or "(none: is django_appdb in INSTALLED_APPS?)"
        if aliases is None:
            message = f"No installed app with label {name!r}. Known labels: {known}."
        else:
            message = (
                f"{name!r} is neither an installed app label nor a database alias. "
                f"Known labels: {known}; aliases: {', '.join(aliases)}."
            )
        super().__init__(message)


class MissingDriverError(ImproperlyConfigured):
    """A database driver, or greenlet for async use, is not installed.

    The message names the database alias, the apps on it and the package or
    django-appdb extra to install (``pip install 'django-appdb[async]'``),
    which ``install`` holds alone (empty when nothing can be installed);
    ``problem`` is what is missing, in a sentence of its own.
    """

    def __init__(self, message: str, *, problem: str = "", install: str = "") -> None:
        self.problem = problem or message
        self.install = install
        super().__init__(message)


class UnsupportedFieldError(ImproperlyConfigured):
    """A model field has no SQLAlchemy column type.

    The message names the model, the field, its class and its internal type,
    and shows how to register a type for it.
    """

    def __init__(self, field: Any, internal_type: str) -> None:
        self.field = field
        self.internal_type = internal_type
        model = getattr(field, "model", None)
        self.model_label = model._meta.label if model is not None else None
        klass = type(field)
        where = f"{self.model_label}.{field.name}" if model is not None else repr(field)
        super().__init__(
            f"django_appdb: field '{where}' ({klass.__module__}.{klass.__qualname__}, internal type "
            f"{internal_type!r}) has no SQLAlchemy column type. Register one before building tables, "
            f"e.g. in your AppConfig.ready(): django_appdb.register_field_type({klass.__qualname__}, "
            f"sqlalchemy.Text) (a type, a type instance, or a callable taking the field). Or make "
            f"{klass.__qualname__}.get_internal_type() return the built-in field it is stored like "
            f"(such as 'CharField')."
        )


class EngineDoesNotExist(ConnectionDoesNotExist, LookupError):
    """There is no database alias of that name in ``DATABASES``."""

    def __init__(self, alias: str, known: list[str]) -> None:
        self.alias = alias
        self.known = known
        super().__init__(
            f"The database alias {alias!r} doesn't exist, so it has no SQLAlchemy engine. "
            f"Known aliases: {', '.join(sorted(known)) or '(none)'}."
        )


class CrossDatabaseError(ValueError):
    """A repository was asked to use a table or session of another app's database."""


class StaleEngineError(RuntimeError):
    """An engine built for settings Django no longer uses was asked for a new connection."""


# The test-run errors subclass Django's DatabaseOperationForbidden and
# SystemCheckError, which live in django.test and django.core.management:
# importing those costs a tenth of a second in a web process that never
# needs them, so the classes are built on first use (a test run has
# imported both by then).
_LAZY_NAMES = ("DatabaseAccessForbidden", "UndeclaredDatabaseError", "NotATestDatabaseError", "SetupRefusedError")


@functools.cache
def _lazy_classes() -> dict[str, type[Exception]]:
    from django.core.management.base import SystemCheckError

    # Not in django-stubs, though Django's test cases raise it.
    from django.test.testcases import DatabaseOperationForbidden  # type: ignore[attr-defined]

    class DatabaseAccessForbidden(DatabaseOperationForbidden, RuntimeError):  # type: ignore[misc]
        """A test reached, through django-appdb, a database it may not use.

        A ``DatabaseOperationForbidden``, as the ORM's refusal in a Django
        test case, and a ``RuntimeError``, as pytest-django's refusal in a
        test without database access.
        """

    class UndeclaredDatabaseError(DatabaseAccessForbidden):
        """A test used, through SQLAlchemy, a database alias it did not declare."""

    class NotATestDatabaseError(DatabaseAccessForbidden):
        """During a test run, a connection was about to open to a real (not a test) database."""

    class SetupRefusedError(SystemCheckError):
        """The test databases were not set up: one would be a real database, or the system checks failed.

        Raised before anything is created or dropped. A ``SystemCheckError``,
        so ``manage.py test`` prints it without a traceback.
        """

    classes: dict[str, type[Exception]] = {
        "DatabaseAccessForbidden": DatabaseAccessForbidden,
        "UndeclaredDatabaseError": UndeclaredDatabaseError,
        "NotATestDatabaseError": NotATestDatabaseError,
        "SetupRefusedError": SetupRefusedError,
    }
    for name, klass in classes.items():
        klass.__module__ = __name__
        klass.__qualname__ = name
    return classes


def __getattr__(name: str) -> Any:
    """Build the test-run exception classes on first access."""
    if name in _LAZY_NAMES:
        return _lazy_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
