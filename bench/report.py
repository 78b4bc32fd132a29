"""Rows of the results table, and their markdown rendering."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .timing import Budget, Comparison


@dataclass
class Context:
    """What every benchmark gets from the runner."""

    tmp: Path
    budget: Budget
    postgres: Any  # bench.project.Postgres | None
    profile: bool = False

    def log(self, message: str) -> None:
        """Print progress on stderr, keeping stdout for the table."""
        import sys

        print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass
class Row:
    """One line of the table. ``met`` is ``yes``, ``no``, ``n/a`` or ``not available``."""

    bench: str
    what: str
    ours: str
    baseline: str
    ratio: str
    goal: str
    met: str


HEADER = ("#", "benchmark", "ours", "baseline", "ratio (median [IQR])", "goal", "met?")


def fmt_ns(ns: float) -> str:
    """Format a duration in ns, µs, ms or s."""
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.2f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.1f} ms"
    return f"{ns / 1_000_000_000:.2f} s"


def fmt_ratio(ratio: float, low: float, high: float) -> str:
    """Format a ratio with its spread."""
    return f"{ratio:.3f}x [{low:.3f}-{high:.3f}]"


def time_row(
    bench: str, what: str, result: Comparison, baseline_name: str, goal: float | None, unit: str = "/call"
) -> Row:
    """Return a row comparing per-operation times; ``goal`` is the highest acceptable ratio."""
    met = "n/a" if goal is None else ("yes" if result.ratio <= goal else "no")
    return Row(
        bench,
        what,
        f"{fmt_ns(result.ours_ns)}{unit}",
        f"{fmt_ns(result.baseline_ns)}{unit} ({baseline_name})",
        fmt_ratio(result.ratio, result.ratio_low, result.ratio_high),
        "report" if goal is None else f"<= {goal:.2f}x",
        met,
    )


def unavailable(bench: str, what: str, reason: str, goal: str) -> Row:
    """Return the row of a benchmark that could not run here."""
    return Row(bench, what, "not available", "—", "—", goal, f"not available: {reason}")


def render(rows: Iterable[Row]) -> str:
    """Return the rows as a markdown table."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    for row in rows:
        cells = (row.bench, row.what, row.ours, row.baseline, row.ratio, row.goal, row.met)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)
