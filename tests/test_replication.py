"""Read replicas against a real PostgreSQL streaming replica (``.ci/replication.sh``).

Every test here takes the ``replication`` fixture: skipped when
APPDB_TEST_REPLICA_PRIMARY_URL is unset, failing when it is set but the
cluster cannot be reached, and holding the cluster alone for the test (some
tests stop the replica or pause its replay).
"""

from __future__ import annotations

import uuid

import pytest

from tests.replication_cluster import Cluster, query

pytestmark = pytest.mark.replication


def test_the_replica_is_in_recovery_and_the_primary_is_not(replication: Cluster) -> None:
    assert replication.in_recovery(replication.replica_url) is True
    assert replication.in_recovery(replication.primary_url) is False
    # Two servers, not one reached twice.
    assert query(replication.primary_url, "SELECT inet_server_port()") != query(
        replication.replica_url, "SELECT inet_server_port()"
    )


def test_a_row_written_on_the_primary_reaches_the_replica(replication: Cluster) -> None:
    token = f"smoke-{uuid.uuid4().hex}"
    query(replication.primary_url, "CREATE TABLE IF NOT EXISTS appdb_replication_probe (token text PRIMARY KEY)")
    query(replication.primary_url, "INSERT INTO appdb_replication_probe VALUES (%s)", (token,))
    replication.wait_caught_up()
    rows = query(replication.replica_url, "SELECT token FROM appdb_replication_probe WHERE token = %s", (token,))
    assert rows == [(token,)]


def test_the_replica_refuses_writes(replication: Cluster) -> None:
    import psycopg

    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        query(replication.replica_url, "INSERT INTO appdb_replication_probe VALUES ('never')")


def test_the_replica_can_be_stopped_and_started_again(replication: Cluster) -> None:
    import psycopg

    replication.stop_replica()
    assert not replication.replica_running()
    with pytest.raises(psycopg.OperationalError):
        query(replication.replica_url, "SELECT 1")
    replication.start_replica()
    assert replication.in_recovery(replication.replica_url) is True


def test_replay_can_be_paused_and_resumed(replication: Cluster) -> None:
    token = f"paused-{uuid.uuid4().hex}"
    replication.pause_replay()
    query(replication.primary_url, "INSERT INTO appdb_replication_probe VALUES (%s)", (token,))
    select = "SELECT count(*) FROM appdb_replication_probe WHERE token = %s"
    assert query(replication.replica_url, select, (token,)) == [(0,)]
    replication.resume_replay()
    assert query(replication.replica_url, select, (token,)) == [(1,)]
