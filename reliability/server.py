"""A throw-away PostgreSQL server on 127.0.0.1, for the outage scenario.

It is a separate cluster (``initdb`` in a temporary directory, trust
authentication, listening on 127.0.0.1 only, on a free port), started and
stopped with ``pg_ctl`` and removed with its directory. As root, the server
binaries run as the ``postgres`` user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote


class ServerError(RuntimeError):
    """The second PostgreSQL server could not be created, started or stopped."""


def find_bindir() -> Path:
    """Return the directory of ``initdb`` and ``pg_ctl``: $APPDB_PG_BINDIR, ``pg_config``, or the newest install."""
    candidates: list[str] = []
    if os.environ.get("APPDB_PG_BINDIR"):
        candidates.append(os.environ["APPDB_PG_BINDIR"])
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(result.stdout.strip())
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda path: int(path.split("/")[-2]), reverse=True
    )
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    raise ServerError("initdb and pg_ctl not found: install the PostgreSQL server or set APPDB_PG_BINDIR")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalServer:
    """A PostgreSQL cluster of its own: ``create()``, ``start()``, ``stop()``, ``remove()``."""

    def __init__(self, bindir: Path | None = None) -> None:
        self.bindir = bindir or find_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="appdb-reliability-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.running = False
        self._as_postgres = os.geteuid() == 0 if hasattr(os, "geteuid") else False
        if self._as_postgres:
            import pwd

            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise ServerError(f"{' '.join(args[:2])} failed ({result.returncode}): {result.stderr}{result.stdout}{log}")
        return result

    def create(self) -> LocalServer:
        """Create the cluster (trust authentication, no fsync: nothing here needs to survive a crash)."""
        self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        return self

    def start(self) -> None:
        """Start the server on 127.0.0.1:``port`` and wait until it accepts connections."""
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} "
            "-c fsync=off -c max_connections=60"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` ends every session, as an administrator's shutdown does."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        self.running = False

    def remove(self) -> None:
        """Stop the server if it runs, and delete its directory."""
        try:
            if self.running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str, password: str | None = None, user: str = "postgres") -> str:
        """Return a ``postgresql://`` URL of ``database`` on this server (the password is ignored: trust)."""
        userinfo = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
        return f"postgresql://{userinfo}@127.0.0.1:{self.port}/{quote(database, safe='')}"

    def __enter__(self) -> LocalServer:
        try:
            self.create()
            self.start()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
