"""pytest configuration of the test project.

django-appdb's fixtures (``appdb_session``, ``appdb_async_session``,
``appdb_django_session``) come from its pytest plugin, which installing
django-appdb registers; this also loads it when the project runs from a
source checkout that was not installed.
"""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    from django_appdb.testing import pytest_plugin

    if not config.pluginmanager.is_registered(pytest_plugin):
        config.pluginmanager.register(pytest_plugin, "django_appdb")
