"""Run the benchmarks and print a markdown table of ratios against their baselines.

Usage, from the repository root::

    python -m bench [--postgres-url URL] [--quick] [--only 1,2,4] [--profile]

``--postgres-url`` (or ``APPDB_TEST_POSTGRES_URL``) enables the PostgreSQL
parts; the databases used are named after the URL's database
(``<name>_app``, ``<name>_plain``, ``<name>_c1``...), created empty, and
dropped at the end. Everything else lives in a temporary directory.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path

from .project import Postgres
from .report import Context, Row, render, unavailable
from .timing import FULL, QUICK, Budget

#: Benchmark number, module, and what its rows are called when it fails to run.
BENCHMARKS: dict[str, tuple[str, str, str]] = {
    "1": ("bench.router", "router decisions", "<= 1.00x"),
    "2": ("bench.orm", "ORM round trip", "<= 1.02x"),
    "3": ("bench.sessions", "SQLAlchemy engines and sessions", "<= 1.05x"),
    "4": ("bench.startup", "django.setup() start-up", "<= 1.05x"),
    "5": ("bench.concurrency", "200 concurrent async sessions on PostgreSQL", "throughput ≥ 0.95x"),
    "6": ("bench.instructions", "django.setup() start-up, instructions (callgrind)", "<= 1.05x"),
    "7": ("bench.replicas", "routing decisions with read replicas", "<= 1.00x"),
    "8": ("bench.pooler", "SQLAlchemy request on PostgreSQL, no pooler and behind PgBouncer", "<= 1.02x"),
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("APPDB_TEST_POSTGRES_URL", "").strip() or None,
        help="PostgreSQL server to use, as a URL naming a base database (default: $APPDB_TEST_POSTGRES_URL)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds and shorter samples (noisier)")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated benchmark numbers (default: all)")
    parser.add_argument("--rounds", type=int, help="alternated rounds per comparison")
    parser.add_argument("--sample-ms", type=float, help="target length of one timed sample, in ms")
    parser.add_argument("--repeats", type=int, help="start-up runs per configuration (benchmark 4)")
    parser.add_argument("--sizes", help="app counts for benchmarks 4 and 6 (default: 10,100,400)")
    parser.add_argument("--profile", action="store_true", help="also print cProfile output where supported")
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}; choose from {', '.join(BENCHMARKS)}")
    return args


def budget_from(args: argparse.Namespace) -> Budget:
    """Return the measuring budget the options ask for."""
    budget = QUICK if args.quick else FULL
    changes = {}
    if args.rounds:
        changes["rounds"] = args.rounds
    if args.sample_ms:
        changes["sample_ns"] = int(args.sample_ms * 1_000_000)
    if args.repeats:
        changes["startup_repeats"] = args.repeats
    return dataclasses.replace(budget, **changes)


def _version(module: str) -> str:
    try:
        return str(import_module(module).__version__)
    except Exception:  # pragma: no cover - reported, not fatal
        return "not installed"


def machine() -> str:
    """Describe the machine and the versions measured."""
    lines = [f"- CPUs (nproc): {os.cpu_count()}"]
    if shutil.which("lscpu"):
        output = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in output.splitlines():
            if line.split(":")[0].strip() in ("Architecture", "Model name", "CPU(s)", "Hypervisor vendor"):
                lines.append(f"- {' '.join(line.split())}")
    lines.append(f"- OS: {platform.platform()}")
    if hasattr(os, "getloadavg"):
        lines.append(f"- Load average when the table was printed (1, 5, 15 min): {os.getloadavg()}")
    lines.append(f"- Python {platform.python_version()} ({platform.python_implementation()})")
    lines.append(
        f"- Django {_version('django')}, SQLAlchemy {_version('sqlalchemy')}, psycopg {_version('psycopg')}, "
        f"aiosqlite {_version('aiosqlite')}"
    )
    return "\n".join(lines)


def run_benchmarks(args: argparse.Namespace, emit: Callable[[str], None] = print) -> list[Row]:
    """Run the selected benchmarks and return their rows; a benchmark that crashes gets a failure row."""
    budget = budget_from(args)
    postgres = Postgres(args.postgres_url) if args.postgres_url else None
    tmp = Path(tempfile.mkdtemp(prefix="appdb-bench-"))
    ctx = Context(tmp=tmp, budget=budget, postgres=postgres, profile=args.profile)
    ctx.sizes = [int(size) for size in args.sizes.split(",")] if args.sizes else None  # type: ignore[attr-defined]
    rows: list[Row] = []
    try:
        for number in args.only.split(","):
            module_name, what, goal = BENCHMARKS[number]
            try:
                rows.extend(import_module(module_name).run(ctx))
            except Exception as exc:
                traceback.print_exc()
                rows.append(unavailable(number, what, f"failed: {type(exc).__name__}: {exc}".splitlines()[0], goal))
    finally:
        if postgres is not None:
            postgres.drop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks and print the machine, the command and the table."""
    args = parse_args(argv)
    command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    rows = run_benchmarks(args)
    print("### Machine\n")
    print(machine())
    print(f"\n### Command\n\n    {command.strip()}\n")
    print(f"PostgreSQL: {'yes' if args.postgres_url else 'no (pass --postgres-url or set APPDB_TEST_POSTGRES_URL)'}\n")
    print("### Results\n")
    print(render(rows))
    return 1 if any(row.met.startswith("not available: failed") for row in rows) else 0
