"""Load and fault scenarios on PostgreSQL, run against a generated project in a child process.

Each scenario creates its databases beside the one named in the PostgreSQL
URL it is given (``<name>_r<token>_<app>``), writes through
:mod:`reliability.child`, counts every row afterwards with direct SQL
(psycopg, not Django or SQLAlchemy), and drops the databases at the end. It
returns a :class:`Result` whose ``problems`` list every check that failed;
the tests assert it is empty, and ``python -m reliability`` reports it.

The project has four apps with one identical model each: ``ledger`` and
``events`` configured by ``<APP>_DATABASE_URL`` variables, ``audit`` by its
``database.py`` (with ``CONN_HEALTH_CHECKS = True``), and ``notes`` on the
default database. Every database also holds empty copies of the other apps'
tables, so a misrouted row would land there and be counted.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from bench.project import App, Postgres, Project, Worker, django_settings_for_url

from .child import LABELS
from .server import LocalServer

MODELS = """
class Entry(models.Model):
    origin = models.CharField(max_length=20)
    writer = models.CharField(max_length=60)
    seq = models.IntegerField()

    class Meta:
        unique_together = [("writer", "seq")]
"""
#: Pools kept small: other projects may share the server's max_connections.
ENGINE_OPTIONS = {"pool_size": 2, "max_overflow": 3, "pool_timeout": 120}
#: Where the database-down error shows up, the password must not.
SECRET_MARK = "RelPWMK"

Key = tuple[str, str, int]


@dataclass
class Count:
    """Rows of one app, counted in its database with direct SQL."""

    label: str
    database: str
    acknowledged: int
    found: int
    lost: int
    unexpected: int
    misrouted: int


@dataclass
class Result:
    """The figures of one scenario, and every check that failed."""

    name: str
    counts: list[Count] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    leaks: int = 0

    @property
    def ok(self) -> bool:
        """Return whether every check passed."""
        return not self.problems

    def check(self, condition: bool, problem: str) -> None:
        """Record ``problem`` unless ``condition`` holds."""
        if not condition:
            self.problems.append(problem)

    @property
    def lost(self) -> int:
        """Return the acknowledged rows missing, over every app."""
        return sum(count.lost for count in self.counts)

    @property
    def misrouted(self) -> int:
        """Return the rows found in another app's database, over every database."""
        return sum(count.misrouted for count in self.counts)

    @property
    def unexpected(self) -> int:
        """Return the rows found that were rolled back or never acknowledged."""
        return sum(count.unexpected for count in self.counts)


def passwords_in(urls: Iterable[str]) -> set[str]:
    """Return the passwords of ``urls``, as written and decoded."""
    from urllib.parse import unquote

    found = set()
    for url in urls:
        password = urlsplit(url).password
        if password:
            found |= {password, unquote(password), quote(unquote(password), safe="")}
    return found


def leaked(texts: Iterable[str], secrets: Iterable[str]) -> list[str]:
    """Return the texts that contain any of ``secrets`` (or the scenario's password marker)."""
    forms = {secret for secret in secrets if len(secret) >= 4} | {SECRET_MARK}
    return [text for text in texts if any(form in text for form in forms)]


class Databases:
    """The scenario's databases, on the server of ``postgres_url`` and maybe on a second one."""

    def __init__(self, postgres_url: str) -> None:
        self.token = uuid.uuid4().hex[:6]
        self.main = Postgres(postgres_url)
        self.others: list[Postgres] = []
        self.urls: dict[str, str] = {}

    def create(self, labels: Iterable[str], server: Postgres | None = None) -> dict[str, str]:
        """Create an empty database per label (``default`` for the default one); return their URLs."""
        target = server or self.main
        if server is not None and server not in self.others:
            self.others.append(server)
        created = target.fresh([f"r{self.token}_{label}" for label in labels])
        urls = {label: created[f"r{self.token}_{label}"] for label in labels}
        self.urls.update(urls)
        return urls

    @property
    def maintenance(self) -> str:
        """Return the URL of the main server's ``postgres`` database."""
        return self.main.url_for("postgres")

    def names(self) -> list[str]:
        """Return the names of every database created on the main server."""
        return list(self.main.created)

    def drop(self) -> None:
        """Drop every database created, on every server still running."""
        for server in [self.main, *self.others]:
            try:
                server.drop_all()
            except Exception:  # a stopped second server is removed with its directory
                if server is self.main:
                    raise


def project(root: Path, urls: Mapping[str, str], audit_url: str, *, health_checks: bool = True) -> Project:
    """Write the scenario project: ledger and events by env var, audit by database.py, notes on default.

    audit keeps its Django connections (``CONN_MAX_AGE = 60``) and, with
    ``health_checks``, checks them (``CONN_HEALTH_CHECKS = True``, which also
    makes its SQLAlchemy pools ping connections before handing them out).
    """
    audit_py = (
        f"DATABASE_URL = {audit_url!r}\n"
        "CONN_MAX_AGE = 60\n"
        f"CONN_HEALTH_CHECKS = {health_checks!r}\n"
        "DATABASE_OPTIONS = {'connect_timeout': 5}\n"
    )
    return Project(
        root,
        installed_apps=["django_appdb", *LABELS],
        databases={"default": django_settings_for_url(urls["default"])},
        apps=[App(label, MODELS, database_py=audit_py if label == "audit" else None) for label in LABELS],
        env={"LEDGER_DATABASE_URL": urls["ledger"], "EVENTS_DATABASE_URL": urls["events"]},
        settings={"APPDB_SQLALCHEMY_ENGINE_OPTIONS": ENGINE_OPTIONS},
    ).write()


def read_rows(url: str, tables: Iterable[str]) -> dict[str, set[tuple[str, str, int]]]:
    """Return ``{table: {(origin, writer, seq)}}`` read with psycopg."""
    import psycopg

    rows: dict[str, set[tuple[str, str, int]]] = {}
    with psycopg.connect(url) as conn:
        for table in tables:
            found = conn.execute(f'SELECT origin, writer, seq FROM "{table}"').fetchall()
            rows[table] = {(origin, writer, int(seq)) for origin, writer, seq in found}
    return rows


def count_rows(
    result: Result,
    placement: Mapping[str, Any],
    urls: Mapping[str, str],
    acknowledged: Iterable[list[Any]],
    maybe: Iterable[list[Any]] = (),
) -> None:
    """Count every app's rows in every database and compare them with what was acknowledged.

    ``maybe`` are writes that failed while their commit may have reached
    the server: finding them is neither a loss nor unexpected.
    """
    expected: dict[str, set[Key]] = {label: set() for label in LABELS}
    for label, writer, seq, *_ in acknowledged:
        expected[label].add((label, writer, int(seq)))
    uncertain = {(label, writer, int(seq)) for label, writer, seq, *_ in maybe}
    tables = {label: placement[label]["table"] for label in LABELS}
    for label in LABELS:
        url = urls["default" if placement[label]["alias"] == "default" else label]
        rows = read_rows(url, tables.values())
        own = rows[tables[label]]
        misrouted = sum(len(found) for table, found in rows.items() if table != tables[label])
        result.counts.append(
            Count(
                label=label,
                database=placement[label]["name"],
                acknowledged=len(expected[label]),
                found=len(own),
                lost=len(expected[label] - own),
                unexpected=len(own - expected[label] - uncertain),
                misrouted=misrouted,
            )
        )
    for count in result.counts:
        result.check(count.lost == 0, f"{count.lost} acknowledged {count.label} rows are missing")
        result.check(count.unexpected == 0, f"{count.unexpected} {count.label} rows were never acknowledged")
        result.check(count.misrouted == 0, f"{count.misrouted} rows of other apps are in {count.database}")


def check_placement(result: Result, placement: Mapping[str, Any], urls: Mapping[str, str]) -> None:
    """Check that Django put each app on the database the scenario configured for it."""
    for label in LABELS:
        key = "default" if label == "notes" else label
        wanted = urlsplit(urls[key]).path.lstrip("/")
        result.check(
            placement[label]["name"] == wanted, f"{label} is on {placement[label]['name']}, configured for {wanted}"
        )


def wait_until_closed(result: Result, maintenance: str, databases: list[str]) -> int:
    """Wait (up to 20 s) until no session is left on ``databases``; return how many are left."""
    from .child import activity

    deadline = time.monotonic() + 20
    left = sum(activity(maintenance, databases).values())
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = sum(activity(maintenance, databases).values())
    result.check(left == 0, f"{left} sessions still open after every pool and connection was closed")
    return left


def _unexpected_failures(result: Result, failed: list[dict[str, Any]], allowed: Any) -> None:
    for failure in failed:
        if not allowed(failure):
            label, writer, seq = failure["key"]
            result.problems.append(f"{writer} #{seq} to {label} failed: {failure['error']}: {failure['message']}")


def run_load(
    postgres_url: str,
    workdir: Path,
    *,
    threads: int = 8,
    writes_per_thread: int = 60,
    tasks: int = 200,
    sessions_per_task: int = 3,
    rollback_every: int = 10,
) -> Result:
    """Write concurrently from ``threads`` ORM threads and ``tasks`` async sessions across four app databases."""
    result = Result("load")
    dbs = Databases(postgres_url)
    try:
        urls = dbs.create(["default", *LABELS[:3]])
        with Worker(project(workdir / "load", urls, urls["audit"]), "load") as worker:
            placement = worker.call("reliability.child:prepare")
            check_placement(result, placement, urls)
            answer = worker.call(
                "reliability.child:load",
                threads=threads,
                writes_per_thread=writes_per_thread,
                tasks=tasks,
                sessions_per_task=sessions_per_task,
                rollback_every=rollback_every,
                maintenance_url=dbs.maintenance,
                databases=dbs.names(),
            )
            worker.call("reliability.child:close")
        _unexpected_failures(result, answer["failed"], lambda failure: False)
        count_rows(result, placement, urls, answer["acknowledged"])
        checked_out = sum(answer["sync_checked_out"].values()) + sum(answer["async_checked_out"].values())
        in_transaction = sum(n for state, n in answer["activity"].items() if state.startswith("idle in transaction"))
        result.check(checked_out == 0, f"{checked_out} pooled connections still checked out after the run")
        result.check(in_transaction == 0, f"{in_transaction} sessions left idle in transaction")
        writers = [key[1] for key in answer["acknowledged"] + answer["rolled_back"]]
        result.facts.update(
            threads=threads,
            tasks=tasks,
            writes=len(writers),
            orm_writes=sum(writer.startswith("orm-") for writer in writers),
            session_writes=sum(writer.startswith("session-") for writer in writers),
            async_writes=sum(writer.startswith("async-") for writer in writers),
            rolled_back=len(answer["rolled_back"]),
            failed=len(answer["failed"]),
            checked_out=checked_out,
            idle_in_transaction=in_transaction,
            sessions_after_run=dict(answer["activity"]),
            sessions_after_close=wait_until_closed(result, dbs.maintenance, dbs.names()),
        )
        result.check(result.facts["rolled_back"] > 0, "no unit of work was rolled back: the check proves nothing")
    finally:
        dbs.drop()
    return result


def run_termination(
    postgres_url: str,
    workdir: Path,
    *,
    threads: int = 4,
    writes_per_thread: int = 40,
    tasks: int = 40,
    sessions_per_task: int = 4,
    health_checks: bool = True,
) -> Result:
    """Terminate every server session of audit's database in the middle of concurrent writes.

    With ``health_checks`` (``CONN_HEALTH_CHECKS = True``), only writes in
    flight when the sessions died may fail. Without, the first use of each
    dead connection may fail too -- at most one write per terminated
    session -- and the round after that must not.
    """
    name = "termination" if health_checks else "termination-without-health-checks"
    result = Result(name)
    dbs = Databases(postgres_url)
    try:
        urls = dbs.create(["default", *LABELS[:3]])
        proj = project(workdir / name, urls, urls["audit"], health_checks=health_checks)
        with Worker(proj, name) as worker:
            placement = worker.call("reliability.child:prepare")
            check_placement(result, placement, urls)
            total = threads * writes_per_thread + tasks * sessions_per_task
            answer = worker.call(
                "reliability.child:survive_termination",
                victim="audit",
                maintenance_url=dbs.maintenance,
                threads=threads,
                writes_per_thread=writes_per_thread,
                tasks=tasks,
                sessions_per_task=sessions_per_task,
                kill_after=total // 2,
            )
            worker.call("reliability.child:close")
        fault = answer["fault"]
        in_flight = [f for f in answer["failed"] if f["key"][0] == "audit" and f["started"] <= fault["over"]]
        after = [key for key in answer["acknowledged"] if key[3] > fault["over"]]
        after_failed = [f for f in answer["failed"] if f["started"] > fault["over"]]
        first_use = [f for f in after_failed if f["key"][0] == "audit" and not f["key"][1].endswith("-again")]
        allowed = in_flight + ([] if health_checks else first_use)
        _unexpected_failures(result, answer["failed"], lambda f: f in allowed)
        count_rows(result, placement, urls, answer["acknowledged"], maybe=[f["key"] for f in allowed])
        result.check(
            len(first_use) <= fault["terminated"],
            f"{len(first_use)} writes failed after the fault, more than the {fault['terminated']} sessions terminated",
        )
        checked_out = sum(answer["sync_checked_out"].values()) + sum(answer["async_checked_out"].values())
        result.check(fault["terminated"] > 0, "no session was terminated: the fault never happened")
        result.check(bool(after), "no write began after the fault: recovery was not exercised")
        for path in ("orm", "session", "async"):
            result.check(
                any(key[1].startswith(f"{path}-") and key[0] == "audit" for key in after),
                f"no {path} write to audit after the fault",
            )
        result.check(checked_out == 0, f"{checked_out} pooled connections still checked out after the run")
        result.facts.update(
            database=answer["database"],
            terminated=fault["terminated"],
            writes=len(answer["acknowledged"]) + len(answer["failed"]),
            failed_in_flight=len(in_flight),
            writes_after=len(after) + len(after_failed),
            failed_after=len(after_failed),
            checked_out=checked_out,
        )
    finally:
        dbs.drop()
    return result


def _appdb_check_process(root: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "django", "appdb_check", "--json", "--timeout", "5"],
        cwd=root,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def run_outage(postgres_url: str, workdir: Path, *, threads: int = 3, per_label: int = 3, tasks: int = 10) -> Result:
    """Put audit's database on a second server, stop it, write, check, restart it, write again."""
    import json

    result = Result("outage")
    dbs = Databases(postgres_url)
    secret = f"0ut@ge:{SECRET_MARK}{dbs.token}/#%"
    shown: list[str] = []
    with LocalServer() as server:
        try:
            urls = dbs.create(["default", "ledger", "events"])
            second = Postgres(server.url(f"{dbs.main.base}_second", password=secret))
            urls.update(dbs.create(["audit"], server=second))
            audit_url = urls["audit"]  # it carries the password: trust authentication ignores it
            proj = project(workdir / "outage", urls, audit_url)
            secrets = passwords_in([*urls.values(), audit_url]) | {secret}
            with Worker(proj, "outage") as worker:
                placement = worker.call("reliability.child:prepare")
                check_placement(result, placement, urls)
                rounds = {}
                rounds["before"] = worker.call(
                    "reliability.child:write_round", tag="before", threads=threads, per_label=per_label, tasks=tasks
                )
                server.stop()
                rounds["down"] = worker.call(
                    "reliability.child:write_round", tag="down", threads=threads, per_label=per_label, tasks=tasks
                )
                down_check = worker.call("reliability.child:check_command", timeout=5)
                down_process = _appdb_check_process(proj.root, proj.environ())
                server.start()
                rounds["after"] = worker.call(
                    "reliability.child:write_round", tag="after", threads=threads, per_label=per_label, tasks=tasks
                )
                up_check = worker.call("reliability.child:check_command", timeout=5)
                up_process = _appdb_check_process(proj.root, proj.environ())
                worker.call("reliability.child:close")

            for name in ("before", "after"):
                _unexpected_failures(result, rounds[name]["failed"], lambda failure: False)
            down = rounds["down"]
            _unexpected_failures(result, down["failed"], lambda failure: failure["key"][0] == "audit")
            audit_down_acknowledged = [key for key in down["acknowledged"] if key[0] == "audit"]
            result.check(
                not audit_down_acknowledged,
                f"{len(audit_down_acknowledged)} writes to audit succeeded while its server was down",
            )
            shown += [f"{f['error']}: {f['message']}" for r in rounds.values() for f in r["failed"]]

            statuses = {status["alias"]: status["status"] for status in down_check["statuses"]}
            result.check(statuses.get("audit") == "error", f"appdb_check reported audit as {statuses.get('audit')}")
            result.check(
                all(status == "ok" for alias, status in statuses.items() if alias != "audit"),
                f"appdb_check reported healthy databases as down: {statuses}",
            )
            result.check(
                bool(down_check["error"]) and "'audit'" in down_check["error"],
                f"appdb_check did not name audit: {down_check['error']!r}",
            )
            result.check(down_process.returncode != 0, "manage.py appdb_check exited 0 with audit's server down")
            result.check("'audit'" in down_process.stderr, "manage.py appdb_check did not name audit on stderr")
            result.check(up_check["error"] is None, f"appdb_check after the restart: {up_check['error']}")
            result.check(up_process.returncode == 0, f"manage.py appdb_check after the restart: {up_process.stderr}")
            shown += [
                down_check["output"],
                str(down_check["error"]),
                down_process.stdout,
                down_process.stderr,
                up_check["output"],
                up_process.stdout,
                up_process.stderr,
            ]

            acknowledged = [key for r in rounds.values() for key in r["acknowledged"]]
            count_rows(result, placement, {**urls, "audit": audit_url}, acknowledged)
            leaks = leaked(shown, secrets)
            result.leaks = len(leaks)
            result.check(not leaks, f"a password appeared in output: {leaks[:1]}")
            healthy_down = [key for key in down["acknowledged"] if key[0] != "audit"]
            result.facts.update(
                server_port=server.port,
                writes_before=len(rounds["before"]["acknowledged"]),
                healthy_writes_during=len(healthy_down),
                failed_writes_during=len(down["failed"]),
                failure_types=sorted({failure["error"] for failure in down["failed"]}),
                check_named=sorted(alias for alias, status in statuses.items() if status != "ok"),
                check_exit_status_down=down_process.returncode,
                check_exit_status_up=up_process.returncode,
                writes_after=len(rounds["after"]["acknowledged"]),
                failed_after=len(rounds["after"]["failed"]),
                texts_checked_for_leaks=len(shown),
                down_statuses=json.dumps(statuses, sort_keys=True),
            )
            result.check(len(healthy_down) > 0, "nothing was written to the healthy databases during the outage")
        finally:
            dbs.drop()
    return result
