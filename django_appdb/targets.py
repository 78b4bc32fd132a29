"""Group installed apps by the database alias their models live on."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import DEFAULT_DB_ALIAS

from .databases import AppDatabase, app_databases, get_app_database


def selected_records(labels: Iterable[str] | None = None) -> list[AppDatabase]:
    """Return the records of the given apps (all when None or empty), in ``INSTALLED_APPS`` order.

    Raise ``LookupError`` naming the known labels for a label that is not installed.
    """
    records = app_databases()
    if not labels:
        return list(records.values())
    wanted = {get_app_database(label).label for label in labels}
    return [record for label, record in records.items() if label in wanted]


def databases_by_alias(labels: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Return ``{alias: [app labels]}`` for the given apps, or for every installed app.

    ``default`` comes first, then the other aliases in ``INSTALLED_APPS``
    order; the labels of each alias are sorted. Raise ``LookupError`` for a
    label that is not installed.
    """
    records = selected_records(labels)
    grouped: dict[str, list[str]] = {}
    for record in records:
        grouped.setdefault(record.alias, []).append(record.label)
    ordered = sorted(grouped, key=lambda alias: alias != DEFAULT_DB_ALIAS)
    return {alias: sorted(grouped[alias]) for alias in ordered}
