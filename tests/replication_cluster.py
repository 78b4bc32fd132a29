"""The PostgreSQL primary and streaming replica of ``.ci/replication.sh``, as the tests see them.

``.ci/replication.sh env`` prints the variables read here:
``APPDB_TEST_REPLICA_PRIMARY_URL`` and ``APPDB_TEST_REPLICA_URL`` (one database,
replicated), ``APPDB_TEST_REPLICA_PGDATA``, ``APPDB_TEST_REPLICA_PGCTL`` and
``APPDB_TEST_REPLICA_LOG`` (to stop and start the replica),
``APPDB_TEST_REPLICA_RUNAS`` (the ``runuser`` prefix when the servers run as
another user). The tests that use the cluster hold an exclusive lock on it
for their whole run, so that a test stopping the replica or pausing its
replay never overlaps another one under ``pytest -n``.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRIMARY_URL = os.environ.get("APPDB_TEST_REPLICA_PRIMARY_URL", "").strip()

#: How long to wait for the replica to start, catch up or resume, in seconds (a bound, not a measure).
PATIENCE = 60.0


def query(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on ``url`` with psycopg, autocommit, and return its rows (none for a statement without)."""
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


@dataclass(frozen=True)
class Cluster:
    """The primary and its streaming replica."""

    primary_url: str
    replica_url: str
    pgdata: Path
    pg_ctl: str
    log: Path
    runas: tuple[str, ...]

    @classmethod
    def from_environ(cls) -> Cluster:
        """Read the cluster from ``APPDB_TEST_REPLICA_*``; a missing variable is a KeyError naming it."""
        env = os.environ
        return cls(
            primary_url=env["APPDB_TEST_REPLICA_PRIMARY_URL"].strip(),
            replica_url=env["APPDB_TEST_REPLICA_URL"].strip(),
            pgdata=Path(env["APPDB_TEST_REPLICA_PGDATA"]),
            pg_ctl=env["APPDB_TEST_REPLICA_PGCTL"],
            log=Path(env["APPDB_TEST_REPLICA_LOG"]),
            runas=tuple(shlex.split(env.get("APPDB_TEST_REPLICA_RUNAS", ""))),
        )

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the cluster's lock: one test at a time, across pytest-xdist workers and concurrent runs."""
        with (self.pgdata.parent / "tests.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.runas, self.pg_ctl, "-D", str(self.pgdata), *args],
            capture_output=True,
            text=True,
            timeout=PATIENCE + 30,
        )

    def replica_running(self) -> bool:
        """Whether the replica's postmaster runs (``pg_ctl status``)."""
        return self._pg_ctl("status").returncode == 0

    def stop_replica(self) -> None:
        """Stop the replica (fast shutdown) and wait until it is down."""
        done = self._pg_ctl("-m", "fast", "-w", "-t", str(int(PATIENCE)), "stop")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed: {done.stdout}{done.stderr}")

    def start_replica(self) -> None:
        """Start the replica and wait until it accepts connections, is in recovery and has caught up."""
        done = self._pg_ctl("-l", str(self.log), "-w", "-t", str(int(PATIENCE)), "start")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {done.stdout}{done.stderr}")
        self.wait_caught_up()

    def in_recovery(self, url: str) -> bool:
        """``pg_is_in_recovery()`` on ``url``."""
        return bool(query(url, "SELECT pg_is_in_recovery()")[0][0])

    def replay_paused(self) -> bool:
        """Whether the replica's WAL replay is paused (or being paused)."""
        return query(self.replica_url, "SELECT pg_get_wal_replay_pause_state()")[0][0] != "not paused"

    def pause_replay(self) -> None:
        """Pause the replica's WAL replay and wait until it is paused."""
        query(self.replica_url, "SELECT pg_wal_replay_pause()")
        self._wait(lambda: query(self.replica_url, "SELECT pg_get_wal_replay_pause_state()")[0][0] == "paused")

    def resume_replay(self) -> None:
        """Resume the replica's WAL replay and wait until it has caught up."""
        query(self.replica_url, "SELECT pg_wal_replay_resume()")
        self.wait_caught_up()

    def wait_caught_up(self) -> None:
        """Wait until the replica has replayed everything the primary has written so far."""
        import psycopg

        target = query(self.primary_url, "SELECT pg_current_wal_lsn()")[0][0]

        def caught_up() -> bool:
            try:
                rows = query(self.replica_url, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,))
            except psycopg.OperationalError:  # still starting: "the database system is starting up"
                return False
            return bool(rows[0][0])

        self._wait(caught_up)

    def restore(self) -> None:
        """Bring the replica back to normal after a test: running, replaying, caught up."""
        if not self.replica_running():
            self.start_replica()
        if self.replay_paused():
            self.resume_replay()
        self.wait_caught_up()

    @staticmethod
    def _wait(condition: Any) -> None:
        deadline = time.monotonic() + PATIENCE
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the replication cluster did not reach the expected state in {PATIENCE:.0f}s")
            time.sleep(0.1)
