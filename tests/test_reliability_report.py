"""``python -m reliability`` turns its figures into docs/reliability.md and fails on any bad one.

No database here: the figures are made up, the verdicts and the rendering are real.
"""

from __future__ import annotations

import pytest

from reliability import run
from reliability.checks import MATRIX, PROPERTIES, REPORTER, ModuleFigures, SuiteFigures
from reliability.report import render
from reliability.scenarios import Count, Result


def good_tests(**changes) -> SuiteFigures:
    modules = {path: ModuleFigures(path, passed=10) for path in (MATRIX, PROPERTIES, REPORTER)}
    figures = SuiteFigures(modules, matrix_cases=64, matrix_failed=0, hypothesis_examples=600, exit_code=0)
    for name, value in changes.items():
        setattr(figures, name, value)
    return figures


def good_results() -> list[Result]:
    counts = [Count("ledger", "db_ledger", 10, 10, 0, 0, 0), Count("notes", "db_default", 5, 5, 0, 0, 0)]
    return [
        Result(
            "load", counts=list(counts), facts={"threads": 8, "tasks": 200, "checked_out": 0, "idle_in_transaction": 0}
        ),
        Result("termination", counts=list(counts), facts={"terminated": 3, "failed_after": 0}),
        Result("outage", counts=list(counts), facts={"check_named": ["audit"]}),
    ]


def render_with(tests: SuiteFigures, results: list[Result]) -> str:
    return render(
        tests=tests,
        results=results,
        bad=run.verdicts(tests, results),
        machine={"Python": "3"},
        command="python -m reliability",
        date="2026-01-01",
        seconds=1,
    )


def test_good_figures_give_no_verdict_and_a_green_summary():
    tests, results = good_tests(), good_results()
    assert run.verdicts(tests, results) == []
    text = render_with(tests, results)
    summary = text.split("## Summary")[1].split("## 1.")[0]
    assert "**no**" not in summary and "Bad figures" not in text
    assert "| Faults injected / survived | 2 / 2 |" in summary
    assert "| Rows lost / misrouted / kept despite a rollback | 0 / 0 / 0 |" in summary


@pytest.mark.parametrize(
    ("tests", "expected"),
    [
        (good_tests(exit_code=1), "test(s) failed"),
        (good_tests(matrix_cases=29), "only 29 bad-input cases passed"),
        (good_tests(hypothesis_examples=10), "only 10 hypothesis examples ran"),
    ],
)
def test_bad_test_figures_are_verdicts(tests, expected):
    bad = run.verdicts(tests, good_results())
    assert any(expected in problem for problem in bad), bad


def test_a_leak_in_the_tests_is_a_verdict_and_shows_in_the_summary():
    tests = good_tests()
    tests.modules[PROPERTIES].failed = 1
    tests.modules[PROPERTIES].failures.append("tests/test_masking_properties.py::test_x")
    assert run.verdicts(tests, good_results())
    text = render_with(tests, good_results())
    assert "| Password leaks found" in text and "| 1 | 0 | **no** |" in text
    assert "FAILED: `tests/test_masking_properties.py::test_x`" in text


def test_a_lost_row_or_a_fault_not_survived_is_a_verdict():
    results = good_results()
    results[0].counts[0] = Count("ledger", "db_ledger", 10, 9, 1, 0, 0)
    results[0].problems.append("1 acknowledged ledger rows are missing")
    results[2].problems.append("appdb_check did not name audit")
    bad = run.verdicts(good_tests(), results)
    assert bad == ["load: 1 acknowledged ledger rows are missing", "outage: appdb_check did not name audit"]
    text = render_with(good_tests(), results)
    assert "| Faults injected / survived | 2 / 1 | all survived | **no** |" in text
    assert "| Rows lost / misrouted / kept despite a rollback | 1 / 0 / 0 | 0 / 0 / 0 | **no** |" in text


def test_without_postgres_the_script_refuses_to_run(monkeypatch, capsys):
    monkeypatch.delenv("APPDB_TEST_POSTGRES_URL", raising=False)
    assert run.main([]) == 2
    assert "needs PostgreSQL" in capsys.readouterr().err
