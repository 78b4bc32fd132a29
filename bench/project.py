"""Throw-away Django projects for the benchmarks, and worker processes that run them.

Every benchmark configures Django in a child process from settings generated
in a temporary directory, so no run touches the test project's database files.
SQLite databases live in that directory; PostgreSQL databases are named after
the database of the URL given to the runner (``<name>_app``, ``<name>_plain``, ...).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from .report import Context

REPO_ROOT = Path(__file__).resolve().parent.parent
SETTINGS_MODULE = "bench_settings"


@dataclass
class App:
    """One generated app: its models, and optionally a ``database.py``."""

    label: str
    models: str = ""
    database_py: str | None = None


@dataclass
class Project:
    """A generated project: a settings module and its apps, in its own directory."""

    root: Path
    installed_apps: list[str]
    databases: dict[str, dict[str, Any]]
    apps: list[App] = field(default_factory=list)
    routers: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    #: Further settings, written as ``NAME = repr(value)``.
    settings: dict[str, Any] = field(default_factory=dict)

    def write(self) -> Project:
        """Write the settings module and the app packages; return self."""
        self.root.mkdir(parents=True, exist_ok=True)
        for app in self.apps:
            package = self.root / app.label
            package.mkdir(exist_ok=True)
            (package / "__init__.py").write_text("")
            (package / "models.py").write_text("from django.db import models\n\n" + textwrap.dedent(app.models))
            if app.database_py is not None:
                (package / "database.py").write_text(textwrap.dedent(app.database_py))
        settings = f'''\
"""Generated benchmark settings."""

SECRET_KEY = "bench-not-secret"
INSTALLED_APPS = {self.installed_apps!r}
DATABASES = {self.databases!r}
DATABASE_ROUTERS = {self.routers!r}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
'''
        settings += "".join(f"{name} = {value!r}\n" for name, value in self.settings.items())
        (self.root / f"{SETTINGS_MODULE}.py").write_text(settings)
        return self

    def environ(self) -> dict[str, str]:
        """Return the environment a child process of this project runs with."""
        env = {key: value for key, value in os.environ.items() if not key.endswith("_DATABASE_URL")}
        env.update(
            DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
            PYTHONPATH=os.pathsep.join([str(self.root), str(REPO_ROOT)]),
            # Equal dict and set layouts in every child, so hashing cannot favour one variant.
            PYTHONHASHSEED="0",
        )
        # Generated apps are imported from bytecode after the first run, as in a deployed project.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(self.env)
        return env


def sqlite(path: Path) -> dict[str, Any]:
    """Return a ``DATABASES`` entry for a SQLite file."""
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path)}


class WorkerError(RuntimeError):
    """A worker process failed; the message carries its traceback."""


class Worker:
    """A child process that sets Django up for a project, then runs benchmark calls on request.

    Calls are ``module:function`` names with JSON keyword arguments; the
    function runs in the child and its JSON result is sent back. Timing
    happens inside the child, so the pipe is never in the timed region.
    """

    def __init__(self, project: Project, name: str) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.worker"],
            cwd=project.root,
            env=project.environ(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            self._read()  # Django is set up.
        except BaseException:
            self.close()
            raise

    def _read(self) -> Any:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            raise WorkerError(f"worker {self.name} exited with status {code}")
        message = json.loads(line)
        if "error" in message:
            raise WorkerError(f"worker {self.name}: {message['error']}")
        return message["result"]

    def call(self, target: str, **kwargs: Any) -> Any:
        """Run ``target`` (``module:function``) in the worker and return its result."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"call": target, "kwargs": kwargs}) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        """Stop the worker (closing its stdin ends its loop) and release the pipes."""
        assert self.process.stdin is not None and self.process.stdout is not None
        if not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Postgres:
    """Benchmark databases beside the database named in a PostgreSQL URL.

    Names are derived from that database's name (``<name>_<suffix>``); they
    are created empty when asked for and dropped by :meth:`drop_all`.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.url = url
        self.base = parts.path.lstrip("/")
        if not self.base:
            raise ValueError("the PostgreSQL URL must name a database, e.g. postgresql://user@host/appdb_bench")
        self._parts = parts
        self.created: list[str] = []

    def url_for(self, name: str, driver: str = "") -> str:
        """Return the URL of database ``name`` on the same server (``driver``: ``+psycopg``, say)."""
        scheme = self._parts.scheme.split("+", 1)[0] + driver
        return urlunsplit((scheme, self._parts.netloc, f"/{name}", self._parts.query, ""))

    def name(self, suffix: str) -> str:
        """Return the name of the benchmark database ``<name>_<suffix>``."""
        return f"{self.base}_{suffix}"

    def _maintenance(self) -> Any:
        import psycopg

        return psycopg.connect(self.url_for("postgres").replace("postgresql+psycopg", "postgresql"), autocommit=True)

    def fresh(self, suffixes: Iterable[str]) -> dict[str, str]:
        """(Re)create empty databases ``<name>_<suffix>``; return ``{suffix: url}``."""
        from psycopg import sql

        urls = {}
        with self._maintenance() as connection:
            for suffix in suffixes:
                name = self.name(suffix)
                connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                if name not in self.created:
                    self.created.append(name)
                urls[suffix] = self.url_for(name)
        return urls

    def drop_all(self) -> None:
        """Drop every database this object created."""
        from psycopg import sql

        if not self.created:
            return
        with self._maintenance() as connection:
            for name in self.created:
                connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        self.created.clear()


def django_settings_for_url(url: str) -> dict[str, Any]:
    """Return a ``DATABASES`` entry for ``url`` (parsed by dj-database-url, as the plugin does)."""
    import dj_database_url

    return dict(dj_database_url.parse(url))


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """Return the current environment without ``*_DATABASE_URL`` variables, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.endswith("_DATABASE_URL")}
    env.update(extra)
    return env


def pair_rounds(
    ctx: Context, proj: Project, module: str, baseline: str, decisions: tuple[str, ...]
) -> dict[str, list[tuple[float, float]]]:
    """Time each of ``decisions`` in two workers of ``module`` (ours and ``baseline``), alternating, pair by pair.

    ``module`` provides the worker side: ``install(variant=...)`` and
    ``time_decisions(decision=..., n=...)``. Each pair of fresh processes is
    calibrated on the baseline and measured in alternated rounds.
    """
    from .timing import alternate, calibrate

    name_of = module.rsplit(".", 1)[-1]
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in decisions}
    for pair in range(ctx.budget.process_pairs):
        with Worker(proj, f"{name_of}-ours-{pair}") as ours, Worker(proj, f"{name_of}-{baseline}-{pair}") as base:
            ours.call(f"{module}:install", variant="ours")
            base.call(f"{module}:install", variant=baseline)
            for name in decisions:

                def measure_ours(n: int, name: str = name) -> int:
                    return ours.call(f"{module}:time_decisions", decision=name, n=n)

                def measure_base(n: int, name: str = name) -> int:
                    return base.call(f"{module}:time_decisions", decision=name, n=n)

                n = calibrate(measure_base, ctx.budget.sample_ns)
                samples[name].extend(alternate(measure_ours, measure_base, rounds=ctx.budget.rounds, n=n))
    return samples
