"""Exceptions raised by django-appdb."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


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
