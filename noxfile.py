"""The test matrix: every supported Python x Django, the lowest supported dependencies, a base install.

Each session builds a new virtual environment from scratch (nox's default),
so a dependency the package forgets to declare fails here. Interpreters are
found on PATH as ``python3.X`` (pyenv's shims work once the versions are
active, e.g. ``PYENV_VERSION=3.10.13:3.11.7:3.12.1:3.13.0``).

``nox`` runs every session; ``nox -s tests`` the SQLite matrix alone,
``nox -l`` lists them. Sessions tagged ``postgres`` run the PostgreSQL tests
too and need ``APPDB_TEST_POSTGRES_URL``; without it they are skipped, as
the PostgreSQL tests are in a plain ``pytest`` run. They, and ``coverage``,
also run the replica tests when ``APPDB_TEST_REPLICA_PRIMARY_URL`` is set
(``eval "$(.ci/replication.sh env)"`` after ``.ci/replication.sh start``),
and the PgBouncer tests when ``APPDB_TEST_PGBOUNCER_URL`` and
``APPDB_TEST_PGBOUNCER_DIRECT_URL`` are set (``eval "$(bash .ci/pgbouncer.sh env)"``,
which ``.ci/run`` does); the SQLite matrix and ``minimal`` skip them.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = False
nox.options.default_venv_backend = "venv"

ROOT = Path(__file__).resolve().parent

#: The Pythons each supported Django runs on (Django 6.x needs Python 3.12+).
DJANGO_PYTHONS = {
    "5.2": ("3.10", "3.11", "3.12", "3.13"),
    "6.0": ("3.12", "3.13"),
    "6.1": ("3.12", "3.13"),
}
LATEST_DJANGO = "6.1"

#: The lowest version of each dependency pyproject.toml declares, for the "lowest" session.
LOWEST = (
    "Django==5.2.*",
    "dj-database-url==3.0.0",
    "SQLAlchemy==2.0.30",
    "psycopg[binary]==3.1.8",
    "aiosqlite==0.19.0",
    "greenlet==3.0.0",
    "wrapt==1.14.0",
)

# Deselects what a base install cannot run: pytest's -m expression, matching the markers in setup.cfg.
NEEDS_EXTRAS = "not postgres and not async_drivers and not psycopg and not mysql and not replication and not pgbouncer"


def _postgres_url(session: nox.Session) -> str:
    url = os.environ.get("APPDB_TEST_POSTGRES_URL", "").strip()
    if not url:
        session.skip("APPDB_TEST_POSTGRES_URL is not set")
    return url


def _pytest(session: nox.Session, *args: str, **env: str) -> None:
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", *args, *session.posargs, env=env)


@nox.session(tags=["tests"])
@nox.parametrize(
    "python,django",
    [(python, django) for django, pythons in DJANGO_PYTHONS.items() for python in pythons],
    ids=[f"{python}-django{django}" for django, pythons in DJANGO_PYTHONS.items() for python in pythons],
)
def tests(session: nox.Session, django: str) -> None:
    """Run the suite on SQLite with every extra, on one Python and Django."""
    session.install("-e", ".[dev]", f"Django=={django}.*")
    _pytest(session, APPDB_TEST_POSTGRES_URL="", APPDB_TEST_REPLICA_PRIMARY_URL="", APPDB_TEST_PGBOUNCER_URL="")


@nox.session(python=DJANGO_PYTHONS[LATEST_DJANGO][-1], tags=["postgres"])
def postgres(session: nox.Session) -> None:
    """Run the whole suite, PostgreSQL included, on the latest Python, Django and SQLAlchemy."""
    url = _postgres_url(session)
    session.install("-e", ".[dev]", f"Django=={LATEST_DJANGO}.*")
    _pytest(session, APPDB_TEST_POSTGRES_URL=url)


@nox.session(python=DJANGO_PYTHONS["5.2"][0], tags=["postgres"])
def lowest(session: nox.Session) -> None:
    """Run the whole suite, PostgreSQL included, on the oldest Python and the lowest declared dependencies."""
    url = _postgres_url(session)
    session.install("-e", ".[dev]", *LOWEST)
    session.run("python", "-m", "pip", "check")
    _pytest(session, APPDB_TEST_POSTGRES_URL=url)


@nox.session(python=DJANGO_PYTHONS[LATEST_DJANGO][-1])
def minimal(session: nox.Session) -> None:
    """Install with no extras (no greenlet, no async or PostgreSQL driver), run the demo and the sync tests."""
    session.install("-e", ".")
    session.run(
        "python",
        "-c",
        "import importlib.util, sys; extra = [name for name in ('greenlet', 'aiosqlite', 'psycopg') "
        "if importlib.util.find_spec(name)]; sys.exit(f'installed without an extra: {extra}' if extra else 0)",
    )
    tmp = Path(session.create_tmp()).resolve()
    for name in ("default", "inventory", "orders"):
        (tmp / f"{name}.sqlite3").unlink(missing_ok=True)
    with session.chdir(ROOT / "testproject"):
        session.run(
            "python",
            "-W",
            "error",
            "manage.py",
            "demo",
            env={
                "DATABASE_URL": f"sqlite:///{tmp / 'default.sqlite3'}",
                "INVENTORY_DATABASE_URL": f"sqlite:///{tmp / 'inventory.sqlite3'}",
                "ORDERS_DATABASE_URL": f"sqlite:///{tmp / 'orders.sqlite3'}",
            },
        )
    # The test tools alone: the "test" extra brings no database driver.
    session.install("-e", ".[test]")
    _pytest(
        session,
        "-m",
        NEEDS_EXTRAS,
        APPDB_TEST_POSTGRES_URL="",
        APPDB_TEST_REPLICA_PRIMARY_URL="",
        APPDB_TEST_PGBOUNCER_URL="",
    )


@nox.session(python=DJANGO_PYTHONS[LATEST_DJANGO][-1])
def lint(session: nox.Session) -> None:
    """Run ruff's linter and its formatter's check on the package, the tests and the tools."""
    session.install("ruff")
    paths = ("django_appdb", "tests", "testproject", "reliability", "bench", "mutation", "docs/conf.py", "noxfile.py")
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)


@nox.session(python=DJANGO_PYTHONS[LATEST_DJANGO][-1])
def typecheck(session: nox.Session) -> None:
    """Type-check the package with mypy --strict, against Django's stubs and SQLAlchemy's own annotations."""
    session.install("-e", ".[dev]", "mypy", "django-stubs")
    session.run("mypy")


@nox.session(python=DJANGO_PYTHONS[LATEST_DJANGO][-1])
def docs(session: nox.Session) -> None:
    """Build the documentation site with Sphinx: every warning is an error, every reference must resolve."""
    session.install("-e", ".[docs]")
    out = Path(session.create_tmp()).resolve() / "html"
    session.run("sphinx-build", "-W", "--keep-going", "-n", "-b", "html", "docs", str(out), *session.posargs)
    session.log(f"The documentation is in {out}")


@nox.session(python=DJANGO_PYTHONS[LATEST_DJANGO][-1])
def coverage(session: nox.Session) -> None:
    """Measure the suite's coverage of the package, child processes included (test runs, commands, workers)."""
    session.install("-e", ".[dev]", "coverage>=7.10")
    session.run("coverage", "erase")
    session.run(
        "coverage",
        "run",
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-n",
        "2",
        *session.posargs,
        env={"APPDB_TEST_POSTGRES_URL": os.environ.get("APPDB_TEST_POSTGRES_URL", "")},
    )
    session.run("coverage", "combine", "--quiet")
    session.run("coverage", "report")


@nox.session(python=DJANGO_PYTHONS[LATEST_DJANGO][-1])
def mutation(session: nox.Session) -> None:
    """Mutate the routing, discovery, merge, masking and replica modules; fail on an unlisted survivor.

    The report's table is also written to ``$APPDB_MUTATION_REPORT`` when that
    is set (``.ci/run`` prints it at the end); ``docs/mutation.md`` explains it.
    """
    session.install("-e", ".[dev]")
    report = os.environ.get("APPDB_MUTATION_REPORT", "").strip() or str(Path(session.create_tmp()) / "mutation.txt")
    session.run("python", "-m", "mutation", "--report", report, *session.posargs)
