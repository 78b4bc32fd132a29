"""Keep database credentials off Django's debug page and out of its error reports.

Django hides settings whose *names* look secret (``PASSWORD``, ``API_KEY``,
...), but not the values of environment variables such as
``ORDERS_DATABASE_URL``: ``runserver`` copies the environment into
``request.META``, so the technical 500 page and the error e-mails show every
database URL with its password (Django ticket #31604). Enable the filter
below with Django's own setting::

    DEFAULT_EXCEPTION_REPORTER_FILTER = "django_appdb.debug.AppDatabaseExceptionReporterFilter"
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pprint import pformat
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from django.http import HttpRequest
from django.views.debug import SafeExceptionReporterFilter

from django_appdb.dburls import MASK, is_secret_key, mask_text, mask_url, secret_forms, settings_secrets

__all__ = ["MIN_LITERAL_PASSWORD", "AppDatabaseExceptionReporterFilter", "is_database_url_name"]

#: Passwords shorter than this are masked inside URLs only: replacing a
#: two-letter password wherever it occurs would garble the whole report.
MIN_LITERAL_PASSWORD = 4

_DATABASE_URL_NAME = re.compile(r"(?:^|_)DATABASE_URL$", re.IGNORECASE)

# The passwords to mask during one report, set for the duration of a call.
# A context variable, because Django shares one filter instance between threads.
_secrets: ContextVar[tuple[str, ...] | None] = ContextVar("django_appdb_report_secrets", default=None)


def is_database_url_name(name: object) -> bool:
    """Return whether ``name`` is ``DATABASE_URL`` or ends in ``_DATABASE_URL``."""
    return isinstance(name, str) and _DATABASE_URL_NAME.search(name) is not None


def _url_passwords(url: str) -> set[str]:
    """Return the secrets of ``url``: its password and secret query values (``?sslpassword=``), decoded."""
    try:
        parts = urlsplit(url)
        password = parts.password
        query = parse_qsl(parts.query, keep_blank_values=False)
    except ValueError:
        password, query = None, []
    if not password:
        # An unquoted "@", "/" or "#" can hide the password from urlsplit.
        userinfo = url.split("://", 1)[-1].rpartition("@")[0]
        password = userinfo.partition(":")[2] if ":" in userinfo else None
    found = {password, unquote(password)} if password else set()
    found.update(value for key, value in query if is_secret_key(key) and value)
    return found


def _known_secrets(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """Return the secrets of the configured databases and ``*_DATABASE_URL`` variables, in every escaped form."""
    from django.db import connections

    found = set(extra)
    for settings_dict in connections.settings.values():
        found.update(settings_secrets(settings_dict))
    for name, value in os.environ.items():
        if is_database_url_name(name):
            found.update(_url_passwords(value))
    # However the report wrote them: repr(), JSON, conninfo quoting, percent-encoding, HTML.
    forms = {form for secret in found if len(secret) >= MIN_LITERAL_PASSWORD for form in secret_forms(secret)}
    # Longest first, so a password containing another is replaced whole.
    return tuple(sorted((form for form in forms if len(form) >= MIN_LITERAL_PASSWORD), key=len, reverse=True))


def _meta_passwords(request: HttpRequest | None) -> set[str]:
    """Return the passwords of the ``*_DATABASE_URL`` entries of ``request.META``."""
    meta: Mapping[str, Any] = getattr(request, "META", None) or {}
    return {
        password
        for name, value in meta.items()
        if is_database_url_name(name) and isinstance(value, str)
        for password in _url_passwords(value)
    }


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return mask_text(text)


class _Masked:
    """Stand in for a value so that its rendered form has credentials masked.

    Django renders frame variables and settings with ``pprint`` after the
    filter has run, so the masking has to apply to that rendering, whatever
    the value's type.
    """

    __slots__ = ("_secrets", "_value")

    def __init__(self, value: Any, secrets: tuple[str, ...]) -> None:
        self._value = value
        self._secrets = secrets

    def __repr__(self) -> str:
        try:
            text = pformat(self._value)
        except Exception as exc:  # a broken __repr__ must not break the report
            text = f"<unrepresentable {type(self._value).__name__}: {type(exc).__name__}>"
        return _scrub(text, self._secrets)


class AppDatabaseExceptionReporterFilter(SafeExceptionReporterFilter):
    """Mask database credentials on the debug page and in error reports.

    On top of what :class:`django.views.debug.SafeExceptionReporterFilter`
    hides, it

    * shows ``DATABASE_URL`` and every ``*_DATABASE_URL`` (in ``request.META``
      and in settings) with the password masked;
    * masks the password of any ``scheme://user:password@`` URL in settings,
      ``request.META`` and the local variables of each traceback frame;
    * masks, in those same values, the literal passwords of the configured
      databases and of the ``*_DATABASE_URL`` URLs, when they are at least
      :data:`MIN_LITERAL_PASSWORD` characters long.

    It applies with ``DEBUG`` on and off, unlike Django's
    ``sensitive_variables``. Subclass it to combine it with a filter of your own.
    """

    @contextmanager
    def _masking(self, extra: Iterable[str] = ()) -> Iterator[tuple[str, ...]]:
        current = _secrets.get()
        if current is not None and not extra:
            yield current
            return
        secrets = _known_secrets([*(current or ()), *extra])
        token = _secrets.set(secrets)
        try:
            yield secrets
        finally:
            _secrets.reset(token)

    def _mask(self, value: Any, secrets: tuple[str, ...]) -> Any:
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, str):
            return value if value == self.cleansed_substitute else _scrub(value, secrets)
        return _Masked(value, secrets)

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        """Cleanse one setting, ``META`` entry or cookie, masking database URLs and passwords."""
        with self._masking() as secrets:
            if is_database_url_name(key) and isinstance(value, str):
                own = {form for secret in _url_passwords(value) for form in secret_forms(secret)}
                return _scrub(mask_url(value), sorted({*secrets, *own}, key=len, reverse=True))
            cleansed = super().cleanse_setting(key, value)
            if isinstance(cleansed, (dict, list, tuple)):
                # Django recursed through this method: the leaves are done.
                return cleansed
            return self._mask(cleansed, secrets)

    def get_safe_settings(self) -> dict[str, Any]:
        """Return the settings with secrets and database credentials masked."""
        with self._masking():
            return super().get_safe_settings()

    def get_safe_request_meta(self, request: HttpRequest) -> dict[str, Any]:
        """Return ``request.META`` with secrets and database credentials masked."""
        with self._masking(_meta_passwords(request)):
            return super().get_safe_request_meta(request)

    def get_traceback_frame_variables(self, request: HttpRequest | None, tb_frame: Any) -> Any:
        """Return a frame's local variables, their rendered form with database credentials masked."""
        with self._masking(_meta_passwords(request)) as secrets:
            return [
                (name, self._mask(value, secrets))
                for name, value in super().get_traceback_frame_variables(request, tb_frame)
            ]
