"""Timing helpers: calibrated samples, alternated A/B rounds, medians of per-round ratios.

A measured variant and its baseline are timed in alternating rounds (A then B,
then B then A, ...) so that drift on the machine (frequency scaling, other
processes) hits both alike; the reported ratio is the median of the per-round
ratios, with its interquartile range as the spread.
"""

from __future__ import annotations

import dataclasses
import gc
import statistics
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

#: ``measure(n)`` runs an operation ``n`` times and returns the elapsed nanoseconds.
Measure = Callable[[int], int]


@dataclass(frozen=True)
class Budget:
    """How long to measure: rounds of alternation, and the target length of one sample."""

    rounds: int = 31
    sample_ns: int = 30_000_000
    startup_repeats: int = 15
    #: Fresh pairs of worker processes for the benchmarks that compare two processes.
    process_pairs: int = 3


QUICK = Budget(rounds=7, sample_ns=10_000_000, startup_repeats=3, process_pairs=1)
FULL = Budget()


@dataclass(frozen=True)
class Comparison:
    """Per-operation times of a variant and its baseline, and their ratio."""

    ours_ns: float
    baseline_ns: float
    ratio: float
    ratio_low: float
    ratio_high: float
    rounds: int
    n: int

    def as_dict(self) -> dict[str, float]:
        """Return the comparison as a JSON-friendly dict."""
        return {
            "ours_ns": self.ours_ns,
            "baseline_ns": self.baseline_ns,
            "ratio": self.ratio,
            "ratio_low": self.ratio_low,
            "ratio_high": self.ratio_high,
            "rounds": self.rounds,
            "n": self.n,
        }

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> Comparison:
        """Rebuild a comparison sent back by a worker process."""
        return cls(
            float(data["ours_ns"]),
            float(data["baseline_ns"]),
            float(data["ratio"]),
            float(data["ratio_low"]),
            float(data["ratio_high"]),
            int(data["rounds"]),
            int(data["n"]),
        )


@contextmanager
def no_gc() -> Iterator[None]:
    """Collect once, then keep the garbage collector out of the timed region."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def spread(values: list[float]) -> tuple[float, float]:
    """Return the first and third quartiles of ``values`` (the values themselves when fewer than 4)."""
    if len(values) < 4:
        return min(values), max(values)
    quartiles = statistics.quantiles(values, n=4, method="inclusive")
    return quartiles[0], quartiles[2]


def calibrate(measure: Measure, target_ns: int, start: int = 1, limit: int = 10_000_000) -> int:
    """Return an iteration count for which ``measure`` takes about ``target_ns``."""
    n = start
    while True:
        elapsed = measure(n)
        if elapsed >= target_ns // 4 or n >= limit:
            break
        n *= 4 if elapsed < target_ns // 40 else 2
    return max(1, min(limit, round(n * target_ns / max(elapsed, 1))))


def alternate(
    ours: Measure, baseline: Measure, *, rounds: int, n: int, warmup: bool = True
) -> list[tuple[float, float]]:
    """Time ``n`` operations of each, alternating which goes first; return per-operation ns per round."""
    if warmup:
        ours(max(1, n // 4))
        baseline(max(1, n // 4))
    samples = []
    for index in range(rounds):
        if index % 2 == 0:
            a = ours(n)
            b = baseline(n)
        else:
            b = baseline(n)
            a = ours(n)
        samples.append((a / n, b / n))
    return samples


def summarise(samples: list[tuple[float, float]], per_iteration: int = 1) -> Comparison:
    """Return medians of each side and the median of the per-round ratios ``ours / baseline``."""
    ratios = [a / b for a, b in samples]
    low, high = spread(ratios)
    return Comparison(
        statistics.median(a for a, _ in samples) / per_iteration,
        statistics.median(b for _, b in samples) / per_iteration,
        statistics.median(ratios),
        low,
        high,
        len(samples),
        0,
    )


def compare(ours: Measure, baseline: Measure, *, rounds: int, n: int, warmup: bool = True) -> Comparison:
    """Time ``ours`` and ``baseline`` for ``n`` operations each, alternating over ``rounds`` rounds."""
    result = summarise(alternate(ours, baseline, rounds=rounds, n=n, warmup=warmup))
    return dataclasses.replace(result, n=n)
