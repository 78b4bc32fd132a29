"""Nothing lost under load, and every fault survived, on real PostgreSQL databases.

The scenarios live in ``reliability/scenarios.py`` (``python -m reliability``
runs the same ones and records their figures in docs/reliability.md). Each
runs a generated four-app project in a child process, counts every row
afterwards with direct SQL, and returns the checks that failed.
"""

from __future__ import annotations

import pytest

from reliability.child import LABELS
from reliability.scenarios import run_load, run_outage, run_termination

pytestmark = [pytest.mark.postgres, pytest.mark.subprocess]


def assert_every_row_accounted_for(result) -> None:
    assert [count.label for count in result.counts] == list(LABELS)
    for count in result.counts:
        assert count.acknowledged > 0, count
        assert (count.lost, count.unexpected, count.misrouted) == (0, 0, 0), count
    # Four databases, each app on its own.
    assert len({count.database for count in result.counts}) == 4


def test_nothing_lost_or_misrouted_under_load(postgres_url, tmp_path):
    result = run_load(postgres_url, tmp_path, threads=8, tasks=200)

    assert result.problems == []
    assert_every_row_accounted_for(result)
    for count in result.counts:
        assert count.found == count.acknowledged
    facts = result.facts
    assert (facts["threads"], facts["tasks"]) == (8, 200)
    assert facts["async_writes"] >= 200 and facts["orm_writes"] > 0 and facts["session_writes"] > 0
    assert facts["rolled_back"] > 0 and facts["failed"] == 0
    assert facts["checked_out"] == 0
    assert facts["idle_in_transaction"] == 0
    assert facts["sessions_after_close"] == 0


@pytest.mark.parametrize("health_checks", [True, False], ids=["conn-health-checks", "no-health-checks"])
def test_terminated_sessions_are_survived(postgres_url, tmp_path, health_checks):
    result = run_termination(postgres_url, tmp_path, health_checks=health_checks)

    assert result.problems == []
    assert_every_row_accounted_for(result)
    facts = result.facts
    assert facts["terminated"] > 0
    assert facts["writes_after"] > 0
    if health_checks:
        # Only writes in flight when their session died may fail.
        assert facts["failed_after"] == 0
    else:
        assert facts["failed_after"] <= facts["terminated"]
    assert facts["checked_out"] == 0


def test_a_stopped_server_affects_only_its_app_and_is_recovered_from(postgres_url, tmp_path):
    result = run_outage(postgres_url, tmp_path)

    assert result.problems == []
    assert_every_row_accounted_for(result)
    facts = result.facts
    assert facts["healthy_writes_during"] > 0
    assert facts["failed_writes_during"] > 0 and facts["failure_types"] == ["OperationalError"]
    assert facts["check_named"] == ["audit"]
    assert facts["check_exit_status_down"] == 1 and facts["check_exit_status_up"] == 0
    assert facts["writes_after"] > 0 and facts["failed_after"] == 0
    assert result.leaks == 0 and facts["texts_checked_for_leaks"] > 0
