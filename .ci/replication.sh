#!/usr/bin/env bash
# A throwaway PostgreSQL primary and one streaming replica, for the replica
# tests (tests/test_replication.py). Built with this machine's server binaries
# ($(pg_config --bindir)): initdb, pg_ctl, pg_basebackup.
#
#   .ci/replication.sh start   build and start both (a leftover is stopped and removed first)
#   .ci/replication.sh env     print the exports the tests read (eval "$(.ci/replication.sh env)")
#   .ci/replication.sh stop    stop both (fast) and remove the work dir
#
# Settings (environment):
#   APPDB_REPLICATION_DIR           work dir (default /tmp/appdb-replication-$UID)
#   APPDB_REPLICATION_PRIMARY_PORT  default 55432
#   APPDB_REPLICATION_REPLICA_PORT  default 55433
#   APPDB_REPLICATION_DB            database created on the primary (default appdb_repl)
#
# Both servers listen on 127.0.0.1 only, with trust authentication: never
# point this at anything but a scratch directory. initdb refuses to run as
# root: as root, the servers run as the postgres user and own the data dirs.
set -euo pipefail

work=${APPDB_REPLICATION_DIR:-/tmp/appdb-replication-$(id -u)}
primary_port=${APPDB_REPLICATION_PRIMARY_PORT:-55432}
replica_port=${APPDB_REPLICATION_REPLICA_PORT:-55433}
db=${APPDB_REPLICATION_DB:-appdb_repl}
bindir=$(pg_config --bindir)
primary=$work/primary
replica=$work/replica

if [ "$(id -u)" = 0 ]; then
  runas=(runuser -u postgres --)
  owner=postgres
else
  runas=()
  owner=$(id -un)
fi

as_server() {
  # ${runas[@]+...}: an empty array is "unbound" to set -u in older bash.
  ${runas[@]+"${runas[@]}"} "$@"
}

sql() {
  # sql PORT DATABASE STATEMENT: one value, unaligned.
  "$bindir/psql" -X -q -h 127.0.0.1 -p "$1" -U postgres -d "$2" -v ON_ERROR_STOP=1 -tAc "$3"
}

wait_ready() {
  local port=$1
  for _ in $(seq 1 60); do
    "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" && return 0
    sleep 0.5
  done
  echo "replication.sh: no server answers on 127.0.0.1:$port" >&2
  return 1
}

stop_server() {
  # Stop the server of a data dir if one runs there; fast, then immediate.
  local data=$1
  [ -f "$data/postmaster.pid" ] || return 0
  as_server "$bindir/pg_ctl" -D "$data" -m fast -w -t 30 stop > /dev/null 2>&1 \
    || as_server "$bindir/pg_ctl" -D "$data" -m immediate -w -t 30 stop > /dev/null 2>&1 \
    || true
}

start_server() {
  local data=$1 log=$2
  if ! as_server "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 start > /dev/null; then
    echo "replication.sh: the server of $data did not start; its log:" >&2
    tail -n 30 "$log" >&2 || true
    return 1
  fi
}

stop() {
  stop_server "$replica"
  stop_server "$primary"
  rm -rf "$work"
}

start() {
  stop
  mkdir -p "$work"
  chown "$owner" "$work"
  chmod 700 "$work"

  as_server "$bindir/initdb" -D "$primary" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 > "$work/initdb.log" 2>&1 \
    || { cat "$work/initdb.log" >&2; return 1; }
  cat >> "$primary/postgresql.conf" <<EOF

# .ci/replication.sh
listen_addresses = '127.0.0.1'
port = $primary_port
unix_socket_directories = '$work'
wal_level = replica
max_wal_senders = 5
max_replication_slots = 5
hot_standby = on
fsync = off
full_page_writes = off
EOF
  cat > "$primary/pg_hba.conf" <<'EOF'
# .ci/replication.sh: trust, local and 127.0.0.1 only, replication included.
local   all          all                 trust
local   replication  all                 trust
host    all          all   127.0.0.1/32  trust
host    replication  all   127.0.0.1/32  trust
EOF
  start_server "$primary" "$work/primary.log"
  wait_ready "$primary_port"
  sql "$primary_port" postgres "CREATE DATABASE $db" > /dev/null

  as_server "$bindir/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres -D "$replica" -R -X stream -c fast \
    > "$work/basebackup.log" 2>&1 || { cat "$work/basebackup.log" >&2; return 1; }
  cat >> "$replica/postgresql.conf" <<EOF

# .ci/replication.sh: the replica
port = $replica_port
hot_standby = on
hot_standby_feedback = on
EOF
  start_server "$replica" "$work/replica.log"
  wait_ready "$replica_port"

  local recovery=""
  for _ in $(seq 1 60); do
    recovery=$(sql "$replica_port" postgres "SELECT pg_is_in_recovery()" || true)
    [ "$recovery" = t ] && break
    sleep 0.5
  done
  if [ "$recovery" != t ]; then
    echo "replication.sh: the replica on 127.0.0.1:$replica_port is not in recovery" >&2
    return 1
  fi

  # A row written on the primary must show on the replica.
  local token seen=""
  token="probe-$$-$RANDOM"
  sql "$primary_port" "$db" "CREATE TABLE IF NOT EXISTS appdb_replication_probe (token text PRIMARY KEY)" > /dev/null
  sql "$primary_port" "$db" "INSERT INTO appdb_replication_probe VALUES ('$token')" > /dev/null
  for _ in $(seq 1 60); do
    seen=$(sql "$replica_port" "$db" "SELECT count(*) FROM appdb_replication_probe WHERE token = '$token'" 2> /dev/null || true)
    [ "$seen" = 1 ] && break
    sleep 0.5
  done
  if [ "$seen" != 1 ]; then
    echo "replication.sh: a row written on the primary did not reach the replica" >&2
    tail -n 30 "$work/replica.log" >&2 || true
    return 1
  fi
  echo "replication.sh: primary 127.0.0.1:$primary_port, streaming replica 127.0.0.1:$replica_port, database $db, in $work"
}

print_env() {
  local prefix=""
  if [ ${#runas[@]} -gt 0 ]; then
    prefix="${runas[*]}"
  fi
  cat <<EOF
export APPDB_TEST_REPLICA_PRIMARY_URL=postgresql://postgres@127.0.0.1:$primary_port/$db
export APPDB_TEST_REPLICA_URL=postgresql://postgres@127.0.0.1:$replica_port/$db
export APPDB_TEST_REPLICA_PGDATA=$replica
export APPDB_TEST_REPLICA_PGCTL=$bindir/pg_ctl
export APPDB_TEST_REPLICA_LOG=$work/replica.log
export APPDB_TEST_REPLICA_RUNAS='$prefix'
EOF
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) print_env ;;
  *)
    echo "usage: $0 start|stop|env" >&2
    exit 2
    ;;
esac
