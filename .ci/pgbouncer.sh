#!/usr/bin/env bash
# A throwaway PgBouncer in transaction pooling mode in front of the test
# PostgreSQL (127.0.0.1:5432), for the pooler tests. PgBouncer comes from the
# distribution's packages: `start` installs it (apt-get) when it is missing.
#
#   .ci/pgbouncer.sh start   write its config and start it (a leftover is stopped first)
#   .ci/pgbouncer.sh env     print the exports the tests read (eval "$(.ci/pgbouncer.sh env)")
#   .ci/pgbouncer.sh stop    stop it and remove the work dir
#
# Settings (environment):
#   APPDB_PGBOUNCER_DIR    work dir (default /tmp/appdb-pgbouncer-$UID)
#   APPDB_PGBOUNCER_PORT   port it listens on (default 56432)
#   APPDB_PGBOUNCER_DB     database the exported URLs name (default appdb_test)
#
# It listens on 127.0.0.1 only and lets any user in without a password, like
# the server behind it: never point this at anything but a scratch directory.
# Every database name is passed through to the server, so the test databases
# Django creates are reachable through it too. PgBouncer refuses to run as
# root: as root, it runs as the postgres user.
set -euo pipefail

work=${APPDB_PGBOUNCER_DIR:-/tmp/appdb-pgbouncer-$(id -u)}
port=${APPDB_PGBOUNCER_PORT:-56432}
db=${APPDB_PGBOUNCER_DB:-appdb_test}
server_port=5432

if [ "$(id -u)" = 0 ]; then
  runas=(runuser -u postgres --)
  owner=postgres
else
  runas=()
  owner=$(id -un)
fi

find_pgbouncer() {
  command -v pgbouncer 2> /dev/null || { [ -x /usr/sbin/pgbouncer ] && echo /usr/sbin/pgbouncer; } || true
}

install() {
  [ -n "$(find_pgbouncer)" ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "pgbouncer.sh: pgbouncer is not installed (apt-get install pgbouncer, as root)" >&2
    return 1
  fi
  echo "pgbouncer.sh: installing pgbouncer from the distribution's packages"
  apt-get update -qq > "$work/apt.log" 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >> "$work/apt.log" 2>&1 \
    || { tail -n 30 "$work/apt.log" >&2; return 1; }
  # The package may start the system's own instance (port 6432); it is not ours.
  service pgbouncer stop > /dev/null 2>&1 || true
}

stop() {
  if [ -f "$work/pgbouncer.pid" ]; then
    local pid
    pid=$(cat "$work/pgbouncer.pid")
    kill "$pid" 2> /dev/null || true
    for _ in $(seq 1 40); do
      kill -0 "$pid" 2> /dev/null || break
      sleep 0.25
    done
    kill -9 "$pid" 2> /dev/null || true
  fi
  rm -rf "$work"
}

start() {
  stop
  mkdir -p "$work"
  install
  chown "$owner" "$work"
  chmod 700 "$work"
  cat > "$work/pgbouncer.ini" <<EOF
; .ci/pgbouncer.sh
[databases]
* = host=127.0.0.1 port=$server_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $work/userlist.txt
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 20
max_db_connections = 40
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile = $work/pgbouncer.log
pidfile = $work/pgbouncer.pid
admin_users = postgres
EOF
  # trust: no password is checked, but the user must be listed.
  echo '"postgres" ""' > "$work/userlist.txt"
  chown "$owner" "$work/pgbouncer.ini" "$work/userlist.txt"
  ${runas[@]+"${runas[@]}"} "$(find_pgbouncer)" -d "$work/pgbouncer.ini" \
    || { tail -n 30 "$work/pgbouncer.log" >&2 || true; return 1; }
  local mode=""
  for _ in $(seq 1 40); do
    mode=$(psql -X -h 127.0.0.1 -p "$port" -U postgres -d pgbouncer -tAc "SHOW CONFIG" 2> /dev/null \
      | awk -F'|' '$1 == "pool_mode" {print $2}' || true)
    [ -n "$mode" ] && break
    sleep 0.25
  done
  if [ "$mode" != transaction ]; then
    echo "pgbouncer.sh: no PgBouncer in transaction mode answers on 127.0.0.1:$port; its log:" >&2
    tail -n 30 "$work/pgbouncer.log" >&2 || true
    return 1
  fi
  # A query through it must reach the server.
  psql -X -h 127.0.0.1 -p "$port" -U postgres -d "$db" -tAc "SELECT 1" > /dev/null \
    || { echo "pgbouncer.sh: a query through 127.0.0.1:$port did not reach the server" >&2; return 1; }
  echo "pgbouncer.sh: PgBouncer $(find_pgbouncer) in transaction mode on 127.0.0.1:$port, in front of 127.0.0.1:$server_port, in $work"
}

print_env() {
  cat <<EOF
export APPDB_TEST_PGBOUNCER_URL=postgresql://postgres@127.0.0.1:$port/$db
export APPDB_TEST_PGBOUNCER_DIRECT_URL=postgresql://postgres@127.0.0.1:$server_port/$db
export APPDB_TEST_PGBOUNCER_ADMIN_URL=postgresql://postgres@127.0.0.1:$port/pgbouncer
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
