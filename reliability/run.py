"""Re-run the reliability and security cases and write ``docs/reliability.md``.

Usage, from the repository root::

    python -m reliability [--postgres-url URL] [--output docs/reliability.md]

It runs, in order:

1. the bad-input matrix, the masking property tests (hypothesis) and the
   error-report filter tests, through pytest;
2. on PostgreSQL (``--postgres-url`` or ``APPDB_TEST_POSTGRES_URL``): the load
   scenario, the terminated-sessions scenario (with and without
   ``CONN_HEALTH_CHECKS``) and the server-outage scenario, which starts a
   second PostgreSQL server of its own on 127.0.0.1.

Databases are named after the URL's database (``<name>_r<token>_<app>``) and
dropped at the end. The figures go to the output file; the exit status is 1
if any figure is bad (a failed test, a leak, a lost or misrouted row, a fault
not survived), 2 if PostgreSQL is not configured.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from .checks import MATRIX, PROPERTIES, REPORTER, ROOT, SuiteFigures, run_tests
from .report import render
from .scenarios import Result, run_load, run_outage, run_termination

MIN_MATRIX_CASES = 30
MIN_EXAMPLES = 600


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("APPDB_TEST_POSTGRES_URL", "").strip() or None,
        help="PostgreSQL server to use, as a URL naming a base database (default: $APPDB_TEST_POSTGRES_URL)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "docs" / "reliability.md",
        help="where to write the figures (default: docs/reliability.md)",
    )
    return parser.parse_args(argv)


def run_scenarios(postgres_url: str, log: Callable[[str], None]) -> list[Result]:
    """Run every PostgreSQL scenario; a scenario that crashes becomes a result with one problem."""
    scenarios: list[tuple[str, Callable[[Path], Result]]] = [
        ("load", lambda tmp: run_load(postgres_url, tmp)),
        ("termination", lambda tmp: run_termination(postgres_url, tmp)),
        ("termination-without-health-checks", lambda tmp: run_termination(postgres_url, tmp, health_checks=False)),
        ("outage", lambda tmp: run_outage(postgres_url, tmp)),
    ]
    results = []
    tmp = Path(tempfile.mkdtemp(prefix="appdb-reliability-"))
    try:
        for name, scenario in scenarios:
            log(f"scenario: {name}")
            started = time.monotonic()
            try:
                result = scenario(tmp)
            except Exception as exc:
                traceback.print_exc()
                result = Result(name, problems=[f"crashed: {type(exc).__name__}: {exc}".splitlines()[0]])
            result.facts["seconds"] = round(time.monotonic() - started, 1)
            results.append(result)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def verdicts(tests: SuiteFigures, results: list[Result]) -> list[str]:
    """Return every figure that is bad, in words; empty when all are good."""
    bad = []
    if tests.exit_code != 0 or tests.failed:
        bad.append(f"{tests.failed} test(s) failed (pytest exit status {tests.exit_code})")
    if tests.matrix_cases < MIN_MATRIX_CASES:
        bad.append(f"only {tests.matrix_cases} bad-input cases passed, {MIN_MATRIX_CASES} wanted")
    if tests.hypothesis_examples < MIN_EXAMPLES:
        bad.append(f"only {tests.hypothesis_examples} hypothesis examples ran, {MIN_EXAMPLES} wanted")
    for result in results:
        bad += [f"{result.name}: {problem}" for problem in result.problems]
    return bad


def machine() -> dict[str, str]:
    """Return the versions and the machine the figures come from."""
    from importlib.metadata import version

    def installed(name: str) -> str:
        try:
            return version(name)
        except Exception:
            return "not installed"

    return {
        "Python": platform.python_version(),
        "Django": installed("django"),
        "SQLAlchemy": installed("sqlalchemy"),
        "psycopg": installed("psycopg"),
        "hypothesis": installed("hypothesis"),
        "OS": platform.platform(),
        "CPUs": str(os.cpu_count()),
    }


def server_version(postgres_url: str) -> str:
    """Return the PostgreSQL server's version string."""
    import psycopg

    from bench.project import Postgres

    with psycopg.connect(Postgres(postgres_url).url_for("postgres")) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def main(argv: Sequence[str] | None = None) -> int:
    """Run everything, write the figures, and return the exit status."""
    args = parse_args(argv)
    if not args.postgres_url:
        print(
            "python -m reliability needs PostgreSQL: pass --postgres-url or set APPDB_TEST_POSTGRES_URL",
            file=sys.stderr,
        )
        return 2

    def log(message: str) -> None:
        print(f"== {message}", file=sys.stderr, flush=True)

    started = time.monotonic()
    log(f"tests: {MATRIX}, {PROPERTIES}, {REPORTER}")
    tests = run_tests()
    results = run_scenarios(args.postgres_url, log)
    bad = verdicts(tests, results)
    env = machine()
    env["PostgreSQL"] = server_version(args.postgres_url)
    command = "python -m reliability " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    text = render(
        tests=tests,
        results=results,
        bad=bad,
        machine=env,
        command=command.strip(),
        date=datetime.date.today().isoformat(),
        seconds=round(time.monotonic() - started),
        min_cases=MIN_MATRIX_CASES,
        min_examples=MIN_EXAMPLES,
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    log(f"wrote {args.output}")
    for problem in bad:
        print(f"BAD: {problem}", file=sys.stderr)
    print(text)
    return 1 if bad else 0
