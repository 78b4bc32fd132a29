"""Check that every app database answers, with a deadline per database."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from django.db import connections

from django_appdb.backends import describe_error, missing_sqlite_file, vendor_of
from django_appdb.databases import AppDatabase
from django_appdb.dburls import identity, mask_url, parse_url, settings_to_url
from django_appdb.operations.connections import standalone_connection
from django_appdb.replicas import LAG_SQL
from django_appdb.state import app_databases, databases_by_alias, state

DEFAULT_TIMEOUT = 5.0

Status = Literal["ok", "error", "timeout"]


@dataclass(frozen=True)
class DatabaseStatus:
    """The outcome of probing one alias. ``latency_ms`` covers connecting and the query."""

    alias: str
    vendor: str
    labels: tuple[str, ...]
    url: str
    status: Status
    latency_ms: float | None
    error: str | None
    #: The primary this alias is a read replica of, else None.
    replica_of: str | None = None
    #: A PostgreSQL replica's replay lag in seconds (0 when it has replayed all it received), else None.
    lag_seconds: float | None = None

    @property
    def ok(self) -> bool:
        """Return whether the database answered."""
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        """Return the status as a JSON-ready dict; the URL's password is masked."""
        return {
            "alias": self.alias,
            "vendor": self.vendor,
            "apps": list(self.labels),
            "url": self.url,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "error": self.error,
            "replica_of": self.replica_of,
            "lag_seconds": self.lag_seconds,
        }


class _Probe(threading.Thread):
    """Connect to one alias and run ``SELECT 1`` in a thread of its own.

    A daemon thread, so a probe stuck past its deadline never holds up the
    interpreter's exit; its private connection is closed whenever it ends.
    """

    def __init__(self, alias: str, timeout: float, replica_of: str | None = None) -> None:
        super().__init__(name=f"appdb-check-{alias}", daemon=True)
        self.alias = alias
        self.timeout = timeout
        self.replica_of = replica_of
        self.latency_ms: float | None = None
        self.lag_seconds: float | None = None
        self.error: str | None = None

    def run(self) -> None:
        started = time.perf_counter()
        try:
            missing = missing_sqlite_file(connections.settings[self.alias])
            if missing is not None:
                # Connecting would create an empty file: a check must not.
                raise FileNotFoundError(f"SQLite database file {missing} does not exist")
            with standalone_connection(self.alias, connect_timeout=self.timeout) as wrapper:
                with wrapper.cursor() as cursor:
                    cursor.execute(f"SELECT 1{wrapper.features.bare_select_suffix}")
                    cursor.fetchone()
                    if self.replica_of is not None and wrapper.vendor == "postgresql":
                        cursor.execute(LAG_SQL)
                        row = cursor.fetchone()
                        self.lag_seconds = round(float(row[0]), 3) if row else None
        except Exception as exc:
            self.error = describe_error(exc, connections.settings[self.alias])
        else:
            self.latency_ms = round((time.perf_counter() - started) * 1000, 2)


def _probed_url(record: AppDatabase, live: Mapping[str, Any]) -> str:
    """Return the masked URL of the database probed: as declared while the live settings still name it."""
    if record.declared_url is not None:
        try:
            if identity(parse_url(record.declared_url)) == identity(live):
                return record.masked_url
        except ValueError:
            pass
    # Changed since start-up (under the test runner: the test database).
    return mask_url(settings_to_url(live))


def check_databases(labels: Iterable[str] | None = None, timeout: float = DEFAULT_TIMEOUT) -> list[DatabaseStatus]:
    """Connect to the database of every alias (or of the apps given) and run a trivial query.

    The aliases are probed concurrently, each through its own connection that
    is closed afterwards; none waits longer than ``timeout`` seconds. Return
    one :class:`DatabaseStatus` per alias, ``default`` first. Raise
    ``LookupError`` for a label that is not installed, ``ValueError`` for a
    timeout that is not positive.
    """
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}.")
    groups = databases_by_alias(labels)
    probes = []
    for alias in groups:
        probes.append(_Probe(alias, timeout))
        probes.extend(_Probe(replica, timeout, replica_of=alias) for replica in state.replicas.get(alias, ()))
    for probe in probes:
        probe.start()
    deadline = time.monotonic() + timeout
    for probe in probes:
        probe.join(max(0.0, deadline - time.monotonic()))

    records = app_databases()
    statuses = []
    for probe in probes:
        primary = probe.replica_of or probe.alias
        live = connections.settings[probe.alias]
        url = mask_url(settings_to_url(live)) if probe.replica_of else _probed_url(records[groups[primary][0]], live)
        if probe.is_alive():
            status: Status = "timeout"
            error: str | None = f"no answer within {timeout:g} s"
            latency = None
        else:
            status = "ok" if probe.error is None else "error"
            error, latency = probe.error, probe.latency_ms
        statuses.append(
            DatabaseStatus(
                probe.alias,
                vendor_of(probe.alias),
                tuple(groups[primary]),
                url,
                status,
                latency,
                error,
                probe.replica_of,
                probe.lag_seconds,
            )
        )
    return statuses
