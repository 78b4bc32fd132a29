"""Run the bad-input, masking and error-report tests through pytest, and collect their figures."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MATRIX = "tests/test_bad_input.py"
PROPERTIES = "tests/test_masking_properties.py"
REPORTER = "tests/test_debug_filter.py"
MODULES = (MATRIX, PROPERTIES, REPORTER)
MATRIX_TEST = "test_bad_configuration_gives_a_clear_masked_error"


@dataclass
class ModuleFigures:
    """Outcome of one test module."""

    path: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)


@dataclass
class SuiteFigures:
    """What the test modules showed: cases tried, examples generated, failures."""

    modules: dict[str, ModuleFigures]
    matrix_cases: int
    matrix_failed: int
    hypothesis_examples: int
    exit_code: int

    @property
    def leaks(self) -> int:
        """Return the failed tests whose only assertion is that no password shows."""
        return self.modules[PROPERTIES].failed + self.modules[REPORTER].failed

    @property
    def failed(self) -> int:
        return sum(module.failed for module in self.modules.values())


class Collector:
    """A pytest plugin recording each test's outcome and ``record_property`` values."""

    def __init__(self) -> None:
        self.reports: list[Any] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call" or report.outcome != "passed":
            self.reports.append(report)


def run_tests(extra_args: list[str] | None = None) -> SuiteFigures:
    """Run the three modules with pytest in this process; return their figures."""
    import pytest

    collector = Collector()
    with _chdir(ROOT):
        exit_code = int(
            pytest.main(
                [
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "-c",
                    str(ROOT / "setup.cfg"),
                    "--rootdir",
                    str(ROOT),
                    "--ds",
                    "tests.settings",
                    *(extra_args or []),
                    *MODULES,
                ],
                plugins=[collector],
            )
        )
    modules = {path: ModuleFigures(path) for path in MODULES}
    matrix_cases = matrix_failed = examples = 0
    for report in collector.reports:
        path = report.nodeid.split("::", 1)[0]
        module = modules.get(path)
        if module is None:
            continue
        if report.skipped:
            module.skipped += 1
        elif report.failed:
            module.failed += 1
            module.failures.append(report.nodeid)
        elif report.when == "call":
            module.passed += 1
        if path == MATRIX and f"::{MATRIX_TEST}[" in report.nodeid and report.when == "call":
            matrix_cases += report.passed
            matrix_failed += report.failed
        examples += sum(int(value) for name, value in report.user_properties if name == "hypothesis_examples")
    return SuiteFigures(modules, matrix_cases, matrix_failed, examples, exit_code)


@contextlib.contextmanager
def _chdir(path: Path) -> Iterator[None]:
    # setup.cfg's pythonpath is relative to the repository root. (contextlib.chdir needs Python 3.11.)
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)
