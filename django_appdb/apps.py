"""Django app configuration: discovery, merge and router installation."""

from __future__ import annotations

from django.apps import AppConfig, apps
from django.core.signals import setting_changed

from .exceptions import AppDatabaseConfigError


def _configure() -> AppDatabaseConfigError | None:
    """Run the configuration; return its error as a fresh copy, without the frames that raised it."""
    from . import databases

    try:
        databases.configure(list(apps.get_app_configs()))
    except AppDatabaseConfigError as exc:
        return AppDatabaseConfigError(exc.app_label, exc.source, exc.problem, exc.fix)
    return None


class DjangoAppdbConfig(AppConfig):
    """Give every installed app its own database when ``django_appdb`` is installed."""

    name = "django_appdb"
    label = "django_appdb"
    verbose_name = "Per-app databases"
    default = True

    def ready(self) -> None:
        """Merge every app's database into ``DATABASES`` and install the router.

        Opens no database connection.
        """
        # Importing ``checks`` registers the system checks.
        from . import checks, databases, routers, testguard  # noqa: F401

        error = _configure()
        if error is not None:
            # Raised here, from a copy with no traceback: the frames that found
            # the problem hold the raw URL and PASSWORD in their locals, which
            # error trackers (Sentry's frame variables) would send.
            raise error
        routers.install()
        testguard.install()
        setting_changed.connect(routers.on_setting_changed, dispatch_uid="django_appdb.routers")
