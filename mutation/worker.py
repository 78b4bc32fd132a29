"""One worker of the mutation run: a fork server that runs the tests against one mutant at a time.

Started by :mod:`mutation.runner` as ``python -m mutation.worker <copy>``,
where ``<copy>`` is a private copy of the checkout. It imports the third-party
libraries the tests need once (Django, SQLAlchemy, pytest) but nothing of ``django_appdb``, then, for each job read from
stdin (one JSON object a line: the module's path, the source to write, the
test files, a timeout), writes the source into the copy and forks: the child
runs pytest in-process, so it imports the mutated package, and the parent
reports ``{"outcome": ..., "seconds": ...}`` on stdout. A child that outlives
its timeout is killed with its process group and counts as killed.

Each job's module is written before the fork, and every other module an
earlier job changed is put back first, so a child sees exactly one change.
pytest compiles the package itself (it is a pytest plugin, so pytest rewrites
its asserts) and checks its cached bytecode against the source's hash, so a
module rewritten within a second of its last import is never read stale.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path


def _preload() -> None:
    # Third-party modules only: importing any of django_appdb here would freeze the unmutated package
    # into every child. Nor pytest's plugins (pytest-django, hypothesis...): pytest warns, and the suite
    # makes warnings errors, when a plugin's modules are imported before it can rewrite their asserts.
    import dj_database_url  # noqa: F401
    import django.db.models
    import django.test  # noqa: F401
    import pytest  # noqa: F401
    import sqlalchemy.orm  # noqa: F401


def _run_child(copy: Path, tests: list[str], log: Path) -> None:
    os.setsid()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    import pytest

    args = ["-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:xdist", "--no-header", *tests]
    code = pytest.main(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code))


def _wait(pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            return None
        time.sleep(0.02)


def main() -> int:
    copy = Path(sys.argv[1]).resolve()
    os.chdir(copy)
    sys.path[:0] = [str(copy), str(copy / "testproject")]
    _preload()
    log = copy / "mutant.log"
    originals: dict[Path, str] = {}
    for line in sys.stdin:
        job = json.loads(line)
        target = copy / job["module"]
        for path, text in originals.items():
            if path != target:
                path.write_text(text, encoding="utf-8")
        originals.setdefault(target, target.read_text(encoding="utf-8"))
        target.write_text(job["source"], encoding="utf-8")
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _run_child(copy, job["tests"], log)
        code = _wait(pid, job["timeout"])
        seconds = time.monotonic() - start
        if code is None:
            outcome = "timeout"
        elif code == 0:
            outcome = "survived"
        elif code in (1, 2, 3):
            # 1: a test failed; 2, 3: collection or an internal error, i.e. the mutant broke an import.
            outcome = "killed"
        else:
            outcome = f"error (pytest exit code {code})"
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        print(json.dumps({"outcome": outcome, "seconds": seconds, "log": tail}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
