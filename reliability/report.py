"""Render the figures of a reliability run as ``docs/reliability.md``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .checks import MATRIX, PROPERTIES, REPORTER, SuiteFigures
from .scenarios import Result

WHAT = {
    MATRIX: "bad-input matrix: each configuration gives `AppDatabaseConfigError` naming app and source, no password",
    PROPERTIES: "hypothesis: generated URLs and passwords never leak, only the documented exception",
    REPORTER: "`AppDatabaseExceptionReporterFilter` on the debug page and in error e-mails (and Django's without it)",
}


def _yes(condition: bool) -> str:
    return "yes" if condition else "**no**"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _by_name(results: list[Result]) -> dict[str, Result]:
    return {result.name: result for result in results}


def summary(tests: SuiteFigures, results: list[Result], min_cases: int, min_examples: int) -> list[str]:
    """Return the summary table."""
    rows_verified = sum(count.found for result in results for count in result.counts)
    acknowledged = sum(count.acknowledged for result in results for count in result.counts)
    lost = sum(result.lost for result in results)
    misrouted = sum(result.misrouted for result in results)
    unexpected = sum(result.unexpected for result in results)
    leaks = tests.leaks + sum(result.leaks for result in results)
    checked_out = sum(int(result.facts.get("checked_out", 0)) for result in results)
    in_transaction = sum(int(result.facts.get("idle_in_transaction", 0)) for result in results)
    faults = [result for result in results if result.name != "load"]
    survived = [result for result in faults if result.ok]
    return _table(
        ["Figure", "Result", "Goal", "Met"],
        [
            [
                "Bad configurations tried (URLs, schemes, env vars, `database.py` contents and options)",
                tests.matrix_cases,
                f">= {min_cases}, each the documented error, naming app and source",
                _yes(tests.matrix_cases >= min_cases and tests.matrix_failed == 0),
            ],
            [
                "Hypothesis examples (generated URLs and passwords, encoded and malformed)",
                tests.hypothesis_examples,
                f">= {min_examples}, only the documented exception",
                _yes(tests.hypothesis_examples >= min_examples and tests.modules[PROPERTIES].failed == 0),
            ],
            [
                "Password leaks found (errors, `appdb_list`, reprs, engines, debug page, error e-mail, fault output)",
                leaks,
                "0",
                _yes(leaks == 0),
            ],
            [
                "Rows acknowledged, then found with direct SQL",
                f"{acknowledged} / {rows_verified}",
                "every acknowledged row found",
                _yes(lost == 0 and bool(results)),
            ],
            [
                "Rows lost / misrouted / kept despite a rollback",
                f"{lost} / {misrouted} / {unexpected}",
                "0 / 0 / 0",
                _yes(lost == misrouted == unexpected == 0 and bool(results)),
            ],
            [
                "Pooled connections left checked out / sessions idle in transaction",
                f"{checked_out} / {in_transaction}",
                "0 / 0",
                _yes(checked_out == in_transaction == 0),
            ],
            [
                "Faults injected / survived",
                f"{len(faults)} / {len(survived)}",
                "all survived",
                _yes(bool(faults) and len(faults) == len(survived)),
            ],
        ],
    )


def counts_table(result: Result) -> list[str]:
    """Return the per-app row counts of one scenario."""
    return _table(
        [
            "App",
            "Database",
            "Acknowledged",
            "Found",
            "Lost",
            "Kept despite a rollback or never acknowledged",
            "Other apps' rows in this database",
        ],
        [
            [f"`{c.label}`", f"`{c.database}`", c.acknowledged, c.found, c.lost, c.unexpected, c.misrouted]
            for c in result.counts
        ],
    )


def tests_section(tests: SuiteFigures) -> list[str]:
    lines = ["## 1. Bad input and credentials", ""]
    lines += _table(
        ["Test module", "What it checks", "Passed", "Failed"],
        [[f"`{path}`", WHAT[path], module.passed, module.failed] for path, module in tests.modules.items()],
    )
    lines += [
        "",
        f"- {tests.matrix_cases} bad configurations, one table ({MATRIX}): {tests.matrix_failed} failed.",
        f"- {tests.hypothesis_examples} hypothesis examples over three properties (start-up from an environment "
        "variable or a `database.py`, `mask_url`, `mask_text`), derandomized.",
    ]
    for module in tests.modules.values():
        lines += [f"- FAILED: `{nodeid}`" for nodeid in module.failures]
    return lines


def load_section(result: Result | None) -> list[str]:
    lines = ["## 2. Nothing lost under load", ""]
    if result is None:
        return [*lines, "Not run.", ""]
    facts = result.facts
    lines += [
        f"{facts.get('threads', '?')} threads of Django ORM writes (one write in four through "
        f"`get_sync_app_session`) and {facts.get('tasks', '?')} concurrent async `get_app_session` tasks write "
        "at the same time to four apps on four PostgreSQL databases (two configured by `<APP>_DATABASE_URL`, one by "
        "`database.py`, one on the default database). One unit of work in ten raises and must leave nothing.",
        "",
    ]
    lines += counts_table(result)
    lines += [
        "",
        f"- Writes: {facts.get('writes', 0)} (ORM {facts.get('orm_writes', 0)}, sync sessions "
        f"{facts.get('session_writes', 0)}, async sessions {facts.get('async_writes', 0)}); rolled back on purpose: "
        f"{facts.get('rolled_back', 0)}; failed: {facts.get('failed', 0)}.",
        f"- After the run, before closing anything: pooled connections checked out {facts.get('checked_out', '?')}, "
        f"sessions idle in transaction {facts.get('idle_in_transaction', '?')} "
        f"(server sessions by state: {facts.get('sessions_after_run', {})}).",
        f"- Sessions left on the server after `close_all_engines()` and `connections.close_all()`: "
        f"{facts.get('sessions_after_close', '?')}.",
        f"- Time: {facts.get('seconds', '?')} s.",
    ]
    return lines


def termination_section(results: Mapping[str, Result]) -> list[str]:
    lines = [
        "### Every server session of one app database terminated mid-run",
        "",
        "While ORM threads, sync sessions and async sessions write to all four apps, every server session of "
        "`audit`'s database is ended with `pg_terminate_backend` (its Django connections, kept with "
        "`CONN_MAX_AGE = 60`, and both SQLAlchemy pools' connections among them). The same threads, pools and "
        "event loop then write twice more to every app.",
        "",
    ]
    with_checks = results.get("termination")
    without = results.get("termination-without-health-checks")
    columns = [r for r in (with_checks, without) if r is not None]
    if not columns:
        return [*lines, "Not run.", ""]

    def row(name: str, key: str) -> list[Any]:
        return [name, *(r.facts.get(key, "?") for r in columns)]

    header = ["", *("`CONN_HEALTH_CHECKS = True`" if r is with_checks else "without health checks" for r in columns)]
    lines += _table(
        header,
        [
            row("Sessions terminated", "terminated"),
            row("Writes in flight when they died, failed", "failed_in_flight"),
            row("Writes begun after the fault", "writes_after"),
            row("... of which failed", "failed_after"),
            ["Rows lost / misrouted", *(f"{r.lost} / {r.misrouted}" for r in columns)],
            ["Pooled connections left checked out", *(r.facts.get("checked_out", "?") for r in columns)],
            ["Survived (every check passed)", *(_yes(r.ok) for r in columns)],
        ],
    )
    lines += [
        "",
        "With health checks, Django checks a kept connection before the first query of each unit of work and "
        "SQLAlchemy pings pooled connections before handing them out (`pool_pre_ping`), so only writes in flight "
        "fail. Without, the first use of each dead connection fails as well (at most one write per terminated "
        "session), and the next one succeeds.",
        "",
    ]
    if with_checks is not None:
        lines += counts_table(with_checks)
    return lines


def outage_section(result: Result | None) -> list[str]:
    lines = [
        "",
        "### One app's database server stopped, then restarted",
        "",
        "`audit`'s database lives on a second PostgreSQL server (its own cluster on 127.0.0.1, started for the "
        "run). It is stopped (`pg_ctl stop -m fast`), every app is written to, `appdb_check` runs in the process "
        "and as `python -m django appdb_check`; then the server is started again and the same process writes "
        "again.",
        "",
    ]
    if result is None:
        return [*lines, "Not run.", ""]
    facts = result.facts
    lines += _table(
        ["Figure", "Value"],
        [
            ["Writes before the outage", facts.get("writes_before", "?")],
            ["Writes to the other apps during the outage (all succeeded)", facts.get("healthy_writes_during", "?")],
            [
                "Writes to `audit` during the outage (all failed)",
                f"{facts.get('failed_writes_during', '?')} ({', '.join(facts.get('failure_types', []))})",
            ],
            ["`appdb_check` during the outage: databases named as down", ", ".join(facts.get("check_named", []))],
            [
                "`manage.py appdb_check` exit status: down / after the restart",
                f"{facts.get('check_exit_status_down', '?')} / {facts.get('check_exit_status_up', '?')}",
            ],
            [
                "Writes after the restart, same process / failed",
                f"{facts.get('writes_after', '?')} / {facts.get('failed_after', '?')}",
            ],
            [
                "Outputs checked for `audit`'s password / leaks",
                f"{facts.get('texts_checked_for_leaks', '?')} / {result.leaks}",
            ],
            ["Survived (every check passed)", _yes(result.ok)],
        ],
    )
    lines += ["", *counts_table(result)]
    return lines


METHOD = """## Method

- **Counting.** Every write is a unit of work of its own (an ORM `transaction.atomic()` block wrapped in
  `close_old_connections()` as Django wraps a request, or a `get_sync_app_session` / `get_app_session` block). A
  write is *acknowledged* when its unit returned. Afterwards every table of every database is read with psycopg,
  not through Django or SQLAlchemy: an acknowledged row missing is *lost*, a row found that was rolled back or never
  acknowledged is *kept despite a rollback*. Writes that failed while their commit may have reached the server (in
  flight when a session died) may be found or not.
- **Misrouting.** Every database also holds empty copies of the other apps' tables, so a row sent to the wrong
  database lands there instead of failing; those copies must stay empty.
- **Leaks.** Passwords are chosen so that no fixed text can contain them: each carries a marker (`PWMK`/`KMWP` and
  digits in the tests, `RelPWMK` and a random token in the outage run), and any output containing the marker, the
  password or its percent-encoded form counts as a leak.
- **Isolation.** Each scenario runs a generated project in a child process with its own settings and environment,
  on databases named after the given URL's database, dropped at the end; the second server lives in a temporary
  directory and is removed with it.
"""


def render(
    *,
    tests: SuiteFigures,
    results: list[Result],
    bad: list[str],
    machine: Mapping[str, str],
    command: str,
    date: str,
    seconds: int,
    min_cases: int = 30,
    min_examples: int = 600,
) -> str:
    """Return the whole ``docs/reliability.md``."""
    by_name = _by_name(results)
    lines = [
        "# Reliability and security",
        "",
        "Bad configuration, generated credentials, concurrent writes and database faults, with the figures of the "
        "last run. `python -m reliability` re-runs every case and rewrites this file; CI runs it on PostgreSQL and "
        "fails on any bad figure.",
        "",
        f"- Run: {date}, {seconds} s: `{command}`",
        "- " + ", ".join(f"{name} {value}" for name, value in machine.items()),
        "",
        "## Summary",
        "",
        *summary(tests, results, min_cases, min_examples),
        "",
    ]
    if bad:
        lines += ["**Bad figures:**", "", *(f"- {problem}" for problem in bad), ""]
    lines += [*tests_section(tests), "", *load_section(by_name.get("load")), "", "## 3. Faults", ""]
    lines += termination_section(by_name)
    lines += outage_section(by_name.get("outage"))
    lines += ["", METHOD]
    return "\n".join(lines).rstrip() + "\n"
