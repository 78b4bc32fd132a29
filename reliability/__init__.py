"""Reliability and security runs of django-appdb: bad input, credentials, load and faults.

``python -m reliability`` re-runs every case and writes ``docs/reliability.md``;
the tests in ``tests/test_reliability.py`` run the same scenarios.
"""
