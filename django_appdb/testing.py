"""Helpers for testing a project that uses django-appdb."""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS

from .databases import state


def app_aliases(*app_labels: str) -> set[str]:
    """Return the database aliases of the given apps, or of every installed app.

    Use it for ``databases`` on Django test cases and in
    ``@pytest.mark.django_db(databases=...)``::

        class OrderTests(TestCase):
            databases = app_aliases()            # every app database
            # databases = app_aliases("orders")  # just one app's

    ``default`` is always included: Django keeps its own tables there.
    """
    if not app_labels:
        return {DEFAULT_DB_ALIAS, *state.aliases.values()}
    unknown = [label for label in app_labels if label not in state.aliases]
    if unknown:
        raise LookupError(
            f"No installed app with label {', '.join(map(repr, unknown))}. "
            f"Known labels: {', '.join(sorted(state.aliases))}."
        )
    return {DEFAULT_DB_ALIAS, *(state.aliases[label] for label in app_labels)}
