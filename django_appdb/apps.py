"""Django app configuration: discovery, merge and router installation."""

from __future__ import annotations

from django.apps import AppConfig, apps
from django.core.signals import setting_changed


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
        from . import checks, databases, routers  # noqa: F401

        databases.configure(apps.get_app_configs())
        routers.install()
        setting_changed.connect(routers.on_setting_changed, dispatch_uid="django_appdb.routers")
