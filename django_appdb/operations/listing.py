"""Describe where every installed app's data lives, without connecting."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from django.db import connections

from django_appdb.backends import vendor_of
from django_appdb.dburls import mask_url, settings_to_url
from django_appdb.state import pooler_of, selected_records, state

#: Column order of ``appdb_list``, in its table and in its JSON objects.
COLUMNS = ("label", "alias", "source", "source_kind", "vendor", "atomic_requests", "url", "replicas", "pooler")


@dataclass(frozen=True)
class AppDatabaseRow:
    """One installed app's database, safe to show: the URL's password is masked."""

    label: str
    alias: str
    source: str
    source_kind: str
    vendor: str
    #: Whether Django wraps each request in a transaction on this database
    #: (``ATOMIC_REQUESTS``): one more connection per request while it runs.
    atomic_requests: bool
    url: str
    #: The alias's read replicas: ``{"alias": ..., "url": ...}`` each, passwords masked.
    replicas: tuple[dict[str, str], ...] = ()
    #: The connection pooler the alias is declared behind (``"pgbouncer-transaction"``...), or None.
    pooler: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the row as a dict with the keys in :data:`COLUMNS` order."""
        values = asdict(self)
        values["replicas"] = [dict(replica) for replica in self.replicas]
        return {column: values[column] for column in COLUMNS}


def list_app_databases(labels: Iterable[str] | None = None) -> list[AppDatabaseRow]:
    """Return one row per installed app (or per app given), in ``INSTALLED_APPS`` order.

    Opens no connection. Raise ``LookupError`` for a label that is not installed.
    """
    records = selected_records(labels)
    vendors: dict[str, str] = {}
    rows = []
    for record in records:
        if record.alias not in vendors:
            vendors[record.alias] = vendor_of(record.alias)
        rows.append(
            AppDatabaseRow(
                label=record.label,
                alias=record.alias,
                source=record.source,
                source_kind=record.source_kind,
                vendor=vendors[record.alias],
                atomic_requests=bool(record.settings.get("ATOMIC_REQUESTS", False)),
                url=record.masked_url,
                replicas=tuple(
                    {"alias": replica, "url": mask_url(settings_to_url(connections.settings[replica]))}
                    for replica in state.replicas.get(record.alias, ())
                ),
                pooler=pooler_of(record.alias),
            )
        )
    return rows
