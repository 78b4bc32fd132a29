"""Benchmarks for django-appdb, each measured against its hand-written baseline in the same run.

Run them all with ``python -m bench`` from the repository root; see ``docs/performance.md``.
These are not tests: nothing here asserts a timing.
"""
