"""The mutation run: every mutant of every target module, the tests that exercise it, and the report.

``python -m mutation`` runs every target; ``python -m mutation
django_appdb/routers.py`` one or more. Options: ``--jobs N`` (workers, 2 by
default), ``--report FILE`` (the table, also printed), ``--list`` (the
mutants' names, without running anything).

For each target, first the unmutated module (as the mutants are written,
through :func:`ast.unparse`) must pass its tests, and a module that raises on
import must fail them: the second proves the tests import the copy being
mutated, not the installed package. Then each mutant is run; the run fails
(exit status 1) when a mutant survives that ``mutation/accepted.txt`` does not
list, and reports the listed ones that no longer survive or no longer exist,
so the list cannot outlive the code it speaks for.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from queue import Queue
from threading import Thread

from mutation.mutants import Mutant, mutants, unmutated

ROOT = Path(__file__).resolve().parent.parent
ACCEPTED = Path(__file__).resolve().parent / "accepted.txt"
#: Survivors known and not yet killed: a ratchet, not an acceptance (each needs a test; see docs/mutation.md).
PENDING = Path(__file__).resolve().parent / "pending.txt"

#: Each target module and the test files that exercise it, the quickest first (pytest runs with -x).
TARGETS: dict[str, tuple[str, ...]] = {
    "django_appdb/routers.py": (
        "tests/test_router_replicas.py",
        "tests/test_router.py",
        "tests/test_router_decisions.py",
        "tests/test_replica_routing.py",
    ),
    "django_appdb/discovery.py": (
        "tests/test_discovery.py",
        "tests/test_discovery_lookup.py",
        "tests/test_bad_input.py",
        "tests/test_poolers.py",
        "tests/test_direct_plan.py",
        "tests/test_native_pool.py",
    ),
    "django_appdb/databases.py": (
        "tests/test_plan.py",
        "tests/test_bad_input.py",
        "tests/test_poolers.py",
        "tests/test_direct_plan.py",
        "tests/test_native_pool.py",
    ),
    "django_appdb/urlsettings.py": (
        "tests/test_plan.py",
        "tests/test_bad_input.py",
        "tests/test_poolers.py",
        "tests/test_native_pool.py",
    ),
    "django_appdb/replicaplan.py": ("tests/test_replica_plan.py",),
    "django_appdb/dburls.py": ("tests/test_dburls.py", "tests/test_masking_properties.py"),
    "django_appdb/replicas.py": (
        "tests/test_replica_routing.py",
        "tests/test_replica_contexts.py",
        "tests/test_router_replicas.py",
    ),
}

#: What the tests run with: SQLite only, no replica cluster, whatever the caller's environment says.
_TEST_ENV = {"APPDB_TEST_POSTGRES_URL": "", "APPDB_TEST_REPLICA_PRIMARY_URL": "", "APPDB_TEST_MYSQL_URL": ""}
_CANARY = 'raise RuntimeError("mutation canary: the tests must import this copy")\n'
_COPIED = ("django_appdb", "tests", "testproject", "setup.cfg", "pyproject.toml")


@dataclass
class Tally:
    """One target's counts, and the names of its surviving mutants."""

    module: str
    mutants: int = 0
    killed: int = 0
    survived: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def load_pending(path: Path = PENDING) -> dict[str, str]:
    """The survivors still to kill: one name a line; blank lines and ``#`` comments are skipped."""
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return {name: "pending: needs a test" for name in names if name and not name.startswith("#")}


def load_accepted(path: Path = ACCEPTED) -> dict[str, str]:
    """The accepted survivors: ``name ## reason`` a line; blank lines and ``#`` comments are skipped."""
    accepted: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, reason = line.partition(" ## ")
        if not sep or not reason.strip():
            raise SystemExit(f"{path}:{number}: expected '<mutant name> ## <why it is equivalent>', got {raw!r}")
        if name in accepted:
            raise SystemExit(f"{path}:{number}: {name!r} is listed twice")
        accepted[name.strip()] = reason.strip()
    return accepted


class Worker:
    """A ``mutation.worker`` process on its own copy of the checkout."""

    def __init__(self) -> None:
        self.copy = Path(tempfile.mkdtemp(prefix="appdb-mutation-"))
        for name in _COPIED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, self.copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"))
            else:
                shutil.copy2(source, self.copy / name)
        env = {**os.environ, **_TEST_ENV, "PYTHONPATH": f"{self.copy}{os.pathsep}{self.copy / 'testproject'}"}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mutation.worker", str(self.copy)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**env, "PYTHONPATH": f"{ROOT}{os.pathsep}{env['PYTHONPATH']}"},
            cwd=self.copy,
        )

    def run(self, module: str, source: str, tests: Sequence[str], timeout: float) -> dict[str, object]:
        assert self.process.stdin is not None and self.process.stdout is not None
        job = {"module": module, "source": source, "tests": list(tests), "timeout": timeout}
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the mutation worker on {self.copy} exited (status {self.process.wait()})")
        result: dict[str, object] = json.loads(line)
        return result

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait()
        shutil.rmtree(self.copy, ignore_errors=True)


def _check_target(worker: Worker, module: str, tests: Sequence[str]) -> float:
    """Run the unmutated module and the canary; return the unmutated run's time (for the mutants' timeout)."""
    original = (ROOT / module).read_text(encoding="utf-8")
    result = worker.run(module, unmutated(original), tests, timeout=600)
    if result["outcome"] != "survived":
        raise SystemExit(f"{module}: its tests fail without any mutant ({result['outcome']}):\n{result['log']}")
    seconds = float(result["seconds"])  # type: ignore[arg-type]
    canary = worker.run(module, _CANARY + original, tests, timeout=600)
    if canary["outcome"] != "killed":
        raise SystemExit(f"{module}: its tests pass with a module that cannot be imported: they do not use the copy")
    return seconds


def run(modules: Sequence[str], jobs: int, match: str = "") -> list[Tally]:
    """Run every mutant of ``modules`` on ``jobs`` workers; the tallies, in the order of ``modules``."""
    workers = [Worker() for _ in range(jobs)]
    tallies = {module: Tally(module) for module in modules}
    try:
        queue: Queue[tuple[str, Mutant, float] | None] = Queue()
        # Baselines first, split across the workers, then every mutant on whichever worker is free.
        baselines: dict[str, float] = {}

        def check(worker: Worker, assigned: list[str]) -> None:
            for module in assigned:
                baselines[module] = _check_target(worker, module, TARGETS[module])

        _parallel(workers, [list(modules[index::jobs]) for index in range(jobs)], check)
        for module in modules:
            source = (ROOT / module).read_text(encoding="utf-8")
            timeout = 3 * baselines[module] + 10
            for mutant in mutants(source, module.removeprefix("django_appdb/")):
                if match not in mutant.name:
                    continue
                queue.put((module, mutant, timeout))
                tallies[module].mutants += 1
        for _ in workers:
            queue.put(None)
        total = sum(tally.mutants for tally in tallies.values())
        done: list[str] = []

        def drain(worker: Worker, _: object) -> None:
            while (item := queue.get()) is not None:
                module, mutant, timeout = item
                result = worker.run(module, mutant.source, TARGETS[module], timeout)
                tally = tallies[module]
                tally.seconds += float(result["seconds"])  # type: ignore[arg-type]
                outcome = result["outcome"]
                done.append(mutant.name)
                if len(done) % 50 == 0:
                    print(f"mutation: {len(done)} of {total} mutants run", file=sys.stderr, flush=True)
                if outcome in ("killed", "timeout"):
                    tally.killed += 1
                elif outcome == "survived":
                    tally.survived.append(mutant.name)
                else:
                    tally.errors.append(f"{mutant.name}: {outcome}\n{result['log']}")

        _parallel(workers, [None] * jobs, drain)
    finally:
        for worker in workers:
            worker.close()
    return [tallies[module] for module in modules]


def _parallel(workers: list[Worker], arguments: Sequence[object], target: object) -> None:
    errors: list[BaseException] = []

    def call(worker: Worker, argument: object) -> None:
        try:
            target(worker, argument)  # type: ignore[operator]
        except BaseException as error:
            errors.append(error)

    threads = [Thread(target=call, args=(w, a)) for w, a in zip(workers, arguments, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def report(
    tallies: Sequence[Tally], accepted: dict[str, str], wall: float, pending: dict[str, str] | None = None
) -> tuple[str, bool]:
    """The report's text, and whether the run passes."""
    pending = pending or {}
    rows: list[tuple[str, ...]] = [("module", "mutants", "killed", "survived", "accepted", "pending", "unexpected")]
    unexpected: list[str] = []
    stale: list[str] = []
    survivors = {name for tally in tallies for name in tally.survived}
    errors = [error for tally in tallies for error in tally.errors]
    for tally in tallies:
        short = tally.module.removeprefix("django_appdb/")
        listed = [name for name in tally.survived if name in accepted]
        waiting = [name for name in tally.survived if name in pending and name not in accepted]
        new = sorted(name for name in tally.survived if name not in accepted and name not in pending)
        unexpected += new
        stale += sorted(
            name for name in [*accepted, *pending] if name.startswith(f"{short}:") and name not in survivors
        )
        counts = (tally.mutants, tally.killed, len(tally.survived), len(listed), len(waiting), len(new))
        rows.append((short, *map(str, counts)))
    totals = [sum(int(row[column]) for row in rows[1:]) for column in range(1, 7)]
    rows.append(("total", *map(str, totals)))
    widths = [max(len(row[column]) for row in rows) for column in range(7)]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines.insert(-1, lines[1])
    lines.append(f"wall time {wall:.0f}s")
    if unexpected:
        lines.append(
            f"\n{len(unexpected)} mutant(s) survived that neither mutation/accepted.txt nor pending.txt lists:"
        )
        lines += [f"  {name}" for name in unexpected]
        lines.append("Add a test that kills each, or, if it cannot change behaviour, list it with the reason.")
    if stale:
        lines.append(f"\n{len(stale)} listed survivor(s) no longer survive or no longer exist; remove them:")
        lines += [f"  {name}" for name in stale]
    if errors:
        lines.append(f"\n{len(errors)} mutant(s) could not be run:")
        lines += [f"  {error}" for error in errors]
    passed = not unexpected and not stale and not errors
    lines.append("mutation: " + ("passed" if passed else "FAILED"))
    return "\n".join(lines), passed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mutation", description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"target modules (default: all of {', '.join(TARGETS)})")
    parser.add_argument("--jobs", type=int, default=2, help="parallel workers (default: 2)")
    parser.add_argument("--report", type=Path, help="also write the report to this file")
    parser.add_argument("--match", default="", help="run only the mutants whose name contains this text")
    parser.add_argument("--list", action="store_true", help="print every mutant's name and line, run nothing")
    options = parser.parse_args(argv)
    modules = list(options.modules) or list(TARGETS)
    unknown = [module for module in modules if module not in TARGETS]
    if unknown:
        parser.error(f"not a target: {', '.join(unknown)}; the targets are {', '.join(TARGETS)}")
    if options.list:
        for module, mutant in _all(modules):
            print(f"{module}:{mutant.line}: {mutant.name}")
        return 0
    accepted = load_accepted()
    pending = load_pending()
    start = time.monotonic()
    tallies = run(modules, max(1, options.jobs), options.match)
    if options.modules:
        # A partial run says nothing about the other targets' listed survivors.
        accepted = {name: reason for name, reason in accepted.items() if _in(name, modules)}
        pending = {name: reason for name, reason in pending.items() if _in(name, modules)}
    if options.match:
        # Only the mutants run can say whether a listed one still survives.
        accepted = {name: reason for name, reason in accepted.items() if options.match in name}
        pending = {name: reason for name, reason in pending.items() if options.match in name}
    text, passed = report(tallies, accepted, time.monotonic() - start, pending)
    print(text)
    if options.report is not None:
        options.report.write_text(text + "\n", encoding="utf-8")
    return 0 if passed else 1


def _in(name: str, modules: Sequence[str]) -> bool:
    return any(name.startswith(module.removeprefix("django_appdb/") + ":") for module in modules)


def _all(modules: Sequence[str]) -> Iterator[tuple[str, Mutant]]:
    for module in modules:
        for mutant in mutants((ROOT / module).read_text(encoding="utf-8"), module.removeprefix("django_appdb/")):
            yield module, mutant
