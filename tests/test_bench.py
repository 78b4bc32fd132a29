"""The benchmark runner still runs: a tiny router benchmark, and the engine benchmarks' availability check.

Nothing here looks at a timing; ``python -m bench`` is where the numbers are.
"""

import sys

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
def test_replica_benchmark_measures_ours_against_the_hand_written_router_and_multidb():
    # django-multidb-router comes with the dev extra; without it the row says why (tested below).
    pytest.importorskip("multidb")
    rows = run.run_benchmarks(run.parse_args(["--only", "7", *TINY]))

    decisions = [
        "router.db_for_read, replicas",
        "router.db_for_read after a write (pinned)",
        "router.db_for_write, replicas",
        "router.allow_relation, replica and primary objects",
        "a request: 2 reads, a write, 2 pinned reads, allow_relation",
    ]
    assert [row.what for row in rows] == [
        *decisions,
        *(f"{what}, vs multidb" for what in decisions),
        "noise control: router.db_for_read, ours vs ours",
    ]
    # Each worker checks that its router routes the workload as the others do
    # before timing; a disagreement fails the benchmark, with a failure row.
    for row in rows:
        assert not row.met.startswith("not available"), row
        assert row.ratio.endswith("]") and float(row.ratio.split("x")[0]) > 0, row
    assert {row.met for row in rows[:5]} <= {"yes", "no"}
    assert {row.goal for row in rows[:5]} == {"<= 1.00x"}
    assert {row.met for row in rows[5:]} == {"n/a"}
    assert all("(hand-written replica router, ContextVar)" in row.baseline for row in rows[:5])
    assert all("(multidb.PinningReplicaRouter)" in row.baseline for row in rows[5:10])
    assert rows[4].ours.endswith("/request") and rows[0].ours.endswith("/call")


def forgetful_install() -> None:
    """Worker side: install a hand-written router that forgets read-your-writes."""
    from bench import replicas

    class Forgetful(replicas.HandWrittenReplicaRouter):
        def db_for_write(self, model: object, **hints: object) -> str:
            return replicas.PRIMARY

    replicas.check_equivalent(replicas.Variant([Forgetful()], replicas._hand_scope))


@pytest.mark.subprocess
def test_the_replica_benchmark_refuses_to_time_a_router_that_routes_differently(tmp_path):
    from bench import replicas
    from bench.project import Worker, WorkerError
    from bench.report import Context
    from bench.timing import QUICK

    project = replicas.project(Context(tmp=tmp_path, budget=QUICK, postgres=None))
    with Worker(project, "check") as worker:
        worker.call("bench.replicas:install", variant="hand")  # The real one passes.
        with pytest.raises(WorkerError, match="a read after a write went to 'replica_"):
            worker.call("tests.test_bench:forgetful_install")


def test_the_replica_benchmark_says_why_multidb_is_not_measured(monkeypatch):
    from bench import replicas

    monkeypatch.setitem(sys.modules, "multidb", None)
    assert (replicas.multidb_status() or "").startswith("django-multidb-router does not import:")


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
