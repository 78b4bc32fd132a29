"""Django app configuration: discovery, merge, the router, the checks, the receivers and the test guards."""

from __future__ import annotations

from django.apps import AppConfig, apps

from django_appdb.exceptions import AppDatabaseConfigError


def _configure() -> AppDatabaseConfigError | None:
    """Run the configuration; return its error as a fresh copy, without the frames that raised it."""
    from django_appdb import state

    try:
        state.configure(list(apps.get_app_configs()))
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
        """Merge every app's database into ``DATABASES``, install the router, connect the receivers.

        Opens no database connection, and imports neither SQLAlchemy nor ``django.test``.
        """
        # Importing ``checks`` registers the system checks.
        from django_appdb import checks, receivers, routers  # noqa: F401
        from django_appdb.testing import guard

        error = _configure()
        if error is not None:
            # Raised here, from a copy with no traceback: the frames that found
            # the problem hold the raw URL and PASSWORD in their locals, which
            # error trackers (Sentry's frame variables) would send.
            raise error
        routers.install()
        receivers.connect()
        guard.install()
