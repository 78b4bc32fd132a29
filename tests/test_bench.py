"""The benchmark runner still runs: a tiny router benchmark, and the engine benchmarks' availability check.

Nothing here looks at a timing; ``python -m bench`` is where the numbers are.
"""

import pytest

from bench import run
from bench.report import render

TINY = ["--quick", "--rounds", "2", "--sample-ms", "1"]


@pytest.mark.subprocess
def test_router_benchmark_runs_and_renders_its_rows():
    rows = run.run_benchmarks(run.parse_args(["--only", "1", *TINY]))

    assert [row.what for row in rows] == [
        "router.db_for_read",
        "router.db_for_write",
        "router.allow_migrate",
        "router.db_for_read vs no router at all",
        "router.db_for_write vs no router at all",
        "router.allow_migrate vs no router at all",
        "noise control: router.allow_migrate, ours vs ours",
    ]
    assert {row.met for row in rows[:3]} <= {"yes", "no"}
    assert {row.met for row in rows[3:]} == {"n/a"}
    table = render(rows).splitlines()
    assert table[0].startswith("| # | benchmark | ours | baseline |")
    assert len(table) == 2 + len(rows)


@pytest.mark.subprocess
@pytest.mark.async_drivers
def test_engine_benchmarks_run_or_say_why_not():
    rows = run.run_benchmarks(run.parse_args(["--only", "3", *TINY, "--postgres-url", ""]))

    assert [row.what.split(",")[0].split(":")[0] for row in rows] == [
        "get_engine(label)",
        "get_sessionmaker(label)",
        "async with get_app_session(label)",
        "with get_sync_app_session(label)",
        "async with get_app_session(label) vs SQLAlchemy defaults",
        "async with get_app_session(label) vs SQLAlchemy defaults",
        "with get_sync_app_session(label) vs SQLAlchemy defaults",
        "with get_sync_app_session(label) vs SQLAlchemy defaults",
    ]
    for row in rows:
        # Measured, with a ratio against its baseline and a goal it is judged by.
        assert row.met in {"yes", "no"}, row
        assert row.ratio.endswith("]") and float(row.ratio.split("x")[0]) > 0, row


@pytest.mark.subprocess
def test_instruction_benchmark_runs_or_says_why_not():
    rows = run.run_benchmarks(run.parse_args(["--only", "6", "--sizes", "2"]))

    assert [row.what for row in rows] == ["django.setup() start-up, instructions (callgrind), 2 apps"]
    (row,) = rows
    if row.met.startswith("not available"):
        assert row.met == "not available: valgrind is not installed", row
    else:
        assert row.met in {"yes", "no"}, row
        assert float(row.ratio.rstrip("x")) > 0, row


def test_unknown_benchmark_numbers_are_refused(capsys):
    with pytest.raises(SystemExit):
        run.parse_args(["--only", "1,9"])
    assert "unknown benchmark(s): 9" in capsys.readouterr().err


@pytest.mark.subprocess
def test_pooler_benchmark_runs_or_says_why_not():
    rows = run.run_benchmarks(run.parse_args(["--only", "8", *TINY]))

    assert len(rows) == 4
    assert all(row.bench == "8" and row.goal == "<= 1.02x" for row in rows)
    assert [row.what.split(", ")[1] for row in rows] == ["no pooler"] * 2 + ["behind PgBouncer"] * 2
    for row in rows:
        assert row.met in {"yes", "no"} or row.met.startswith("not available: "), row
