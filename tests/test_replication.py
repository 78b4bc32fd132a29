"""Read replicas against a real PostgreSQL streaming replica (``.ci/replication.sh``).

Every test here takes the ``replication`` fixture: skipped when
APPDB_TEST_REPLICA_PRIMARY_URL is unset, failing when it is set but the
cluster cannot be reached, and holding the cluster alone for the test (some
tests stop the replica or pause its replay).

First the cluster itself (in recovery, replicating, read-only, can be stopped
and paused); then the replica feature, in child processes of the test project
whose ``orders`` database is the cluster's primary with the replica declared
(tests/replication_scenarios.py): which server each read and write reached is
asked of the server itself, in the query.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, child_env
from tests.replication_cluster import Cluster, query

pytestmark = [pytest.mark.replication, pytest.mark.subprocess]


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


# -- the replica feature, in a child process of the test project ------------
#
# tests/replication_scenarios.py runs each scenario with the orders app's real
# database on the cluster's primary and its replica declared by
# ORDERS_DATABASE_REPLICA_URLS (not a test run: routing is live), and prints
# what each step saw. A scenario runs once per worker; the tests below assert
# on its steps.

REPLICA_ALIAS = "orders_replica_1"
SEED = "REPL-SEED"
SCENARIO_SETTINGS: dict[str, dict[str, str]] = {
    "client": {"REPLICATION_TEST_PIN_SECONDS": "3"},
    "replica_down": {"REPLICATION_TEST_RETRY_SECONDS": "2", "REPLICATION_TEST_PIN_SECONDS": "60"},
    "lag": {"REPLICATION_TEST_MAX_LAG": "1", "REPLICATION_TEST_LAG_CHECK_SECONDS": "1"},
}
_results: dict[str, dict[str, Any]] = {}


def scenario(name: str, cluster: Cluster, tmp_path: Path) -> dict[str, Any]:
    """Run (once per worker) and return the steps of a scenario of tests/replication_scenarios.py."""
    if name not in _results:
        env = child_env(
            DJANGO_SETTINGS_MODULE="tests.replication_settings",
            DATABASE_URL=f"sqlite:///{tmp_path / 'default.sqlite3'}",
            ORDERS_DATABASE_URL=cluster.primary_url,
            ORDERS_DATABASE_REPLICA_URLS=cluster.replica_url,
            **SCENARIO_SETTINGS.get(name, {}),
        )
        # The child is not a test run: nothing tells it it runs under pytest.
        for key in [key for key in env if key.startswith(("PYTEST_", "APPDB_REPLICA_"))]:
            del env[key]
        done = subprocess.run(
            [sys.executable, "-m", "tests.replication_scenarios", name],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        assert done.returncode == 0 and lines, f"scenario {name} failed:\n{done.stdout}\n{done.stderr}"
        _results[name] = json.loads(lines[-1].removeprefix("RESULT "))
    results = _results[name]
    assert results["prepare"] is None, results["prepare"]
    return results


def ok(results: dict[str, Any], step: str) -> Any:
    """Return a step's result, failing with its error when it raised."""
    assert step in results, f"{step} did not run: {results.get('scenario')}"
    value = results[step]
    assert not (isinstance(value, dict) and "error" in value), f"{step}: {value['error']}"
    return value


def failure(results: dict[str, Any], step: str) -> str:
    """Return the error a step raised, failing when it did not."""
    assert step in results, f"{step} did not run: {results.get('scenario')}"
    value = results[step]
    assert isinstance(value, dict) and "error" in value, f"{step} did not fail: {value}"
    return str(value["error"])


@pytest.fixture
def routing(replication: Cluster, tmp_path: Path) -> dict[str, Any]:
    return scenario("routing", replication, tmp_path)


def test_the_replica_alias_is_declared_with_its_primary(routing: dict[str, Any]) -> None:
    assert ok(routing, "replicas").get("orders") == [REPLICA_ALIAS]
    assert ok(routing, "primaries") == {REPLICA_ALIAS: "orders"}
    assert ok(routing, "replica_settings") == {"TEST": {"MIRROR": "orders"}, "CONN_HEALTH_CHECKS": True}


def test_migrations_never_run_on_the_replica(routing: dict[str, Any]) -> None:
    assert ok(routing, "allow_migrate_replica") is False
    assert ok(routing, "allow_migrate_primary") is True


def test_a_primary_and_its_replica_are_one_database_for_relations(routing: dict[str, Any]) -> None:
    assert ok(routing, "allow_relation_primary_replica") is True


def test_reads_go_to_the_replica(routing: dict[str, Any]) -> None:
    assert ok(routing, "read") == {"server": "replica", "found": [SEED], "alias": REPLICA_ALIAS}


def test_a_write_goes_to_the_primary_and_the_read_after_it_too(routing: dict[str, Any]) -> None:
    step = ok(routing, "write_then_read")
    assert step["write"] == {"alias": "orders", "server": "primary"}
    read = step["read_after"]
    assert (read["server"], read["alias"]) == ("primary", "orders")
    # The row just written, which the replica may not have yet.
    assert len(read["found"]) == 2


def test_a_nested_replica_scope_starts_unpinned_and_restores_the_pin(routing: dict[str, Any]) -> None:
    step = ok(routing, "nested_scope")
    assert step["inner"]["server"] == "replica"
    assert step["after"]["server"] == "primary"


def test_use_primary_sends_the_reads_of_its_apps_to_the_primary(routing: dict[str, Any]) -> None:
    assert ok(routing, "use_primary_orders")["server"] == "primary"
    assert ok(routing, "use_primary_all")["server"] == "primary"
    assert ok(routing, "use_primary_decorator")["server"] == "primary"
    # Another app's pin leaves orders on its replica.
    assert ok(routing, "use_primary_other_app")["server"] == "replica"


def test_async_reads_go_to_the_replica_unless_use_primary(routing: dict[str, Any]) -> None:
    assert ok(routing, "async_read")["server"] == "replica"
    assert ok(routing, "async_use_primary")["server"] == "primary"


def test_a_write_routed_by_hand_to_the_replica_fails_clearly(routing: dict[str, Any]) -> None:
    error = failure(routing, "write_to_replica")
    assert "read-only transaction" in error, error


def test_the_next_request_of_a_client_that_wrote_reads_the_primary(replication: Cluster, tmp_path: Path) -> None:
    client = scenario("client", replication, tmp_path)
    first = ok(client, "first_read")
    assert (first["status"], first["server"]) == (200, "replica")
    write = ok(client, "write")
    assert write["status"] == 200 and write["cookie"] is True
    assert write["write"]["server"] == "primary"
    assert write["read_after"]["server"] == "primary" and len(write["read_after"]["found"]) == 2
    for step in ("next_request", "next_request_async_view"):
        read = ok(client, step)
        assert (read["status"], read["server"], len(read["found"])) == (200, "primary", 2), step
    # A client that did not write stays on the replica.
    for step in ("other_client", "other_client_async_view"):
        read = ok(client, step)
        assert (read["status"], read["server"]) == (200, "replica"), step


def test_the_pin_of_a_client_ends_after_the_pin_seconds(replication: Cluster, tmp_path: Path) -> None:
    client = scenario("client", replication, tmp_path)
    # Read within the pin, else the test above proves nothing about the pin.
    assert ok(client, "pinned_within_limit") is True
    after = ok(client, "after_pin")
    assert (after["status"], after["server"], len(after["found"])) == (200, "replica", 2)


@pytest.fixture
def replica_down(replication: Cluster, tmp_path: Path) -> dict[str, Any]:
    """The steps of the scenario that stops the replica (and starts it again)."""
    try:
        return scenario("replica_down", replication, tmp_path)
    finally:
        if not replication.replica_running():
            replication.start_replica()


def test_requests_read_from_the_primary_while_the_replica_is_down(replica_down: dict[str, Any]) -> None:
    assert ok(replica_down, "before")["server"] == "replica"
    assert ok(replica_down, "replica_stopped") is True
    for step in ("request_while_down", "async_request_while_down"):
        read = ok(replica_down, step)
        assert (read["status"], read["server"]) == (200, "primary"), step
    assert ok(replica_down, "write_while_down") == 200


def test_reads_outside_requests_fall_back_while_the_replica_is_down(replica_down: dict[str, Any]) -> None:
    # The process had a connection open to the replica when it stopped, as a long-running worker has.
    assert ok(replica_down, "before_outside_request")["server"] == "replica"
    assert ok(replica_down, "replica_stopped") is True
    assert ok(replica_down, "outside_request_while_down")["server"] == "primary"
    assert ok(replica_down, "session_while_down") == "primary"


def test_a_replica_back_up_serves_reads_after_the_retry_delay(replica_down: dict[str, Any]) -> None:
    assert ok(replica_down, "replica_stopped") is True
    # The client that wrote while the replica was down is still pinned to the primary.
    assert ok(replica_down, "pinned_after_restart")["server"] == "primary"
    after = ok(replica_down, "after_restart")
    assert (after["status"], after["server"]) == (200, "replica")


def test_a_replica_lagging_past_the_limit_is_skipped(replication: Cluster, tmp_path: Path) -> None:
    try:
        lag = scenario("lag", replication, tmp_path)
    finally:
        if replication.replay_paused():
            replication.resume_replay()
    assert ok(lag, "before")["server"] == "replica"
    assert ok(lag, "write")["server"] == "primary"
    # The replica's replay was paused: it does not have the row.
    assert ok(lag, "on_replica_directly")["found"] == [SEED]
    lagging = ok(lag, "lagging")
    assert (lagging["server"], len(lagging["found"])) == ("primary", 2)
    assert ok(lag, "session_lagging") == "primary"
    caught_up = ok(lag, "caught_up")
    assert (caught_up["server"], len(caught_up["found"])) == ("replica", 2)


def test_a_sync_session_on_the_replica(replication: Cluster, tmp_path: Path) -> None:
    steps = scenario("sqlalchemy", replication, tmp_path)
    assert ok(steps, "session_replica") == "replica"
    assert ok(steps, "session_default") == "primary"
    assert ok(steps, "session_replica_use_primary") == "primary"
    error = failure(steps, "session_replica_write")
    assert "read-only transaction" in error, error


@pytest.mark.async_drivers
def test_an_async_session_on_the_replica(replication: Cluster, tmp_path: Path) -> None:
    steps = scenario("sqlalchemy_async", replication, tmp_path)
    assert ok(steps, "session_replica") == "replica"
    assert ok(steps, "session_default") == "primary"
    error = failure(steps, "session_replica_write")
    assert "read-only transaction" in error, error


def test_a_repository_reads_from_the_replica_and_after_a_write_from_the_primary(
    replication: Cluster, tmp_path: Path
) -> None:
    try:
        steps = scenario("repository", replication, tmp_path)
    finally:
        if replication.replay_paused():
            replication.resume_replay()
    # Replay was paused before the row was written on the primary: only the primary has it.
    assert ok(steps, "get_replica") is False
    assert ok(steps, "get_default") is True
    assert ok(steps, "count_replica") == 0
    assert ok(steps, "list_replica") == []
    assert ok(steps, "count_default") == 1
    assert ok(steps, "add_then_read") == {"count_after_add": 1, "other_repo": 1}


@pytest.mark.async_drivers
def test_an_async_repository_reads_from_the_replica(replication: Cluster, tmp_path: Path) -> None:
    try:
        steps = scenario("repository", replication, tmp_path)
    finally:
        if replication.replay_paused():
            replication.resume_replay()
    assert ok(steps, "async_count_replica") == 0
