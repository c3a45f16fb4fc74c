#!/bin/bash
# A private PostgreSQL 15 server for the tests.
#
#   scripts/postgres.sh start STATE_DIR [PORT|auto]
#   scripts/postgres.sh stop  STATE_DIR
#   scripts/postgres.sh env   STATE_DIR
#   scripts/postgres.sh replica-start STATE_DIR [PORT|auto] [sync|async]
#   scripts/postgres.sh primary-kill  STATE_DIR
#   scripts/postgres.sh promote       STATE_DIR
#
# The cluster is made with initdb as the `postgres` user under
# STATE_DIR/postgres, listens on 127.0.0.1:PORT (default 5432; "auto" picks
# a free port from 25432 up) and on a unix socket in a directory of its
# own, with fsync on.  Local and 127.0.0.1 connections use trust
# authentication; the superuser role `resbus` (with a database of the same
# name) is what the tests connect as.
#
# `start` writes RESBUS_TEST_PG_HOST (the socket directory),
# RESBUS_TEST_PG_PORT, RESBUS_TEST_PG_USER and RESBUS_TEST_PG_DB to
# STATE_DIR/postgres/env and regenerates STATE_DIR/env; `env` prints them.
# Starting a running server is a no-op, and so is stopping a stopped one.
#
# `replica-start` makes a streaming replica of the running server
# (pg_basebackup -R as the `postgres` superuser) in a second data
# directory, listening on its own port ("auto", the default: a free one
# from the primary's port + 1 up) and socket directory, and starts it.
# With `sync` (the default) the primary waits for the replica before it
# answers a commit (synchronous_standby_names = the replica's
# application_name, synchronous_commit = on), so that nothing the primary
# acknowledged is lost when the replica is promoted; `async` leaves
# replication asynchronous.  It adds to the env files
# RESBUS_TEST_PG_REPLICA_HOST and RESBUS_TEST_PG_REPLICA_PORT,
# RESBUS_TEST_PG_HOSTS and RESBUS_TEST_PG_PORTS (primary,replica, for
# libpq's multi-host syntax) and RESBUS_TEST_PG_HA_URL, a db_url naming
# both with target_session_attrs=read-write for the database
# RESBUS_TEST_PG_DB (replace its path for another database).
# `primary-kill` is the loss of the primary: SIGKILL of its postmaster and
# of every process of it, as in a crash of its machine; its data stays.
# `promote` makes the replica a primary (pg_ctl promote) and waits until
# it accepts writes.  `stop` stops the replica too.
set -euo pipefail

SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/svc-common.sh
. "$SCRIPTS/svc-common.sh"

PGBIN=/usr/lib/postgresql/15/bin
PGROLE=resbus

usage() {
	echo "usage: $0 start|stop|env STATE_DIR [PORT|auto]" >&2
	echo "       $0 replica-start STATE_DIR [PORT|auto] [sync|async]" >&2
	echo "       $0 primary-kill|promote STATE_DIR" >&2
	exit 2
}

[ $# -ge 2 ] || usage
cmd=$1
state=$2
port_arg=${3:-5432}
if [ "$cmd" = replica-start ]; then
	port_arg=${3:-auto}
fi
sync_arg=${4:-sync}

as_pg() {
	(cd / && runuser -u postgres -- "$@")
}

load_state() {
	svc="$state/postgres"
	if [ -f "$svc/vars" ]; then
		# shellcheck source=/dev/null
		. "$svc/vars"
	else
		port='' rundir='' sockdir=''
	fi
	rport='' rsockdir=''
	if [ -f "$svc/replica-vars" ]; then
		# shellcheck source=/dev/null
		. "$svc/replica-vars"
	fi
}

replica_running() {
	[ -n "${rport:-}" ] && [ -d "$rundir/replica" ] || return 1
	as_pg "$PGBIN/pg_ctl" status -D "$rundir/replica" >/dev/null 2>&1
}

running() {
	[ -n "${rundir:-}" ] && [ -d "$rundir/data" ] || return 1
	as_pg "$PGBIN/pg_ctl" status -D "$rundir/data" >/dev/null 2>&1
}

write_env() {
	cat >"$svc/env" <<EOF
export RESBUS_TEST_PG_HOST=$sockdir
export RESBUS_TEST_PG_PORT=$port
export RESBUS_TEST_PG_USER=$PGROLE
export RESBUS_TEST_PG_DB=$PGROLE
EOF
	if [ -n "${rport:-}" ]; then
		cat >>"$svc/env" <<EOF
export RESBUS_TEST_PG_REPLICA_HOST=$rsockdir
export RESBUS_TEST_PG_REPLICA_PORT=$rport
export RESBUS_TEST_PG_HOSTS=$sockdir,$rsockdir
export RESBUS_TEST_PG_PORTS=$port,$rport
export RESBUS_TEST_PG_HA_URL='postgresql://$PGROLE@/$PGROLE?host=$sockdir,$rsockdir&port=$port,$rport&target_session_attrs=read-write'
EOF
	fi
	svc_merge_env "$state"
}

do_start() {
	need_root
	mkdir -p "$state"
	state=$(cd "$state" && pwd)
	load_state
	if running; then
		echo "postgres: already running on 127.0.0.1:$port" >&2
		write_env
		return 0
	fi

	if [ "$port_arg" != auto ]; then
		port=$port_arg
	elif [ -z "${port:-}" ] || port_in_use "$port"; then
		port=$(free_port 25432)
	fi
	if port_in_use "$port"; then
		echo "postgres: port $port is already in use" >&2
		exit 1
	fi

	mkdir -p "$svc"
	rundir=$(svc_rundir "$svc" postgres)
	# A unix socket path must fit in 107 bytes.
	sockdir="$rundir/sock"
	if [ $((${#sockdir} + 20)) -gt 107 ]; then
		sockdir=$(mktemp -d "${TMPDIR:-/tmp}/resbus-pgsock.XXXXXX")
	fi
	mkdir -p "$sockdir" "$rundir/log"
	chown postgres:postgres "$rundir" "$sockdir" "$rundir/log"
	cat >"$svc/vars" <<EOF
port=$port
rundir=$rundir
sockdir=$sockdir
EOF

	if [ ! -f "$rundir/data/PG_VERSION" ]; then
		rm -rf "$rundir/data"
		as_pg "$PGBIN/initdb" -D "$rundir/data" -U postgres \
		    --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
		    >"$rundir/log/initdb.log" 2>&1 || {
			echo "postgres: initdb failed:" >&2
			cat "$rundir/log/initdb.log" >&2
			exit 1
		}
	fi
	# Settings for this start; the last occurrence in the file wins.
	cat >>"$rundir/data/postgresql.conf" <<EOF
# scripts/postgres.sh
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
fsync = on
max_connections = 200
logging_collector = off
synchronous_standby_names = ''
EOF
	echo "postgres: starting on 127.0.0.1:$port (socket in $sockdir)" >&2
	if ! as_pg "$PGBIN/pg_ctl" start -D "$rundir/data" -w -t 60 \
	    -l "$rundir/log/postgres.log" >/dev/null; then
		echo "postgres: did not start:" >&2
		tail -n 30 "$rundir/log/postgres.log" >&2 || true
		exit 1
	fi
	if ! as_pg "$PGBIN/psql" -h "$sockdir" -p "$port" -U postgres \
	    -d postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$PGROLE'" |
	    grep -q 1; then
		as_pg "$PGBIN/psql" -q -h "$sockdir" -p "$port" -U postgres \
		    -d postgres -v ON_ERROR_STOP=1 \
		    -c "CREATE ROLE $PGROLE SUPERUSER LOGIN" \
		    -c "CREATE DATABASE $PGROLE OWNER $PGROLE"
	fi
	write_env
	echo "postgres: up" >&2
}

# pg_ctl as `postgres` on data directory $1, the rest passed on.
pgctl() {
	local d=$1
	shift
	as_pg "$PGBIN/pg_ctl" "$@" -D "$d"
}

do_replica_start() {
	need_root
	state=$(cd "$state" && pwd)
	load_state
	if ! running; then
		echo "postgres: no primary runs in $state" >&2
		exit 1
	fi
	if replica_running; then
		echo "postgres: replica already running on 127.0.0.1:$rport" >&2
		write_env
		return 0
	fi
	case $sync_arg in
	sync | async) ;;
	*) usage ;;
	esac
	if [ "$port_arg" = auto ]; then
		rport=$(free_port $((port + 1)))
	else
		rport=$port_arg
	fi
	if port_in_use "$rport"; then
		echo "postgres: port $rport is already in use" >&2
		exit 1
	fi
	rsockdir="$rundir/rsock"
	if [ $((${#rsockdir} + 20)) -gt 107 ]; then
		rsockdir=$(mktemp -d "${TMPDIR:-/tmp}/resbus-pgsock.XXXXXX")
	fi
	mkdir -p "$rsockdir"
	chown postgres:postgres "$rsockdir"
	cat >"$svc/replica-vars" <<EOF
rport=$rport
rsockdir=$rsockdir
EOF
	rm -rf "$rundir/replica"
	echo "postgres: base backup of 127.0.0.1:$port for a replica" >&2
	if ! as_pg "$PGBIN/pg_basebackup" -h "$sockdir" -p "$port" -U postgres \
	    -D "$rundir/replica" -R -X stream -c fast \
	    -d "application_name=replica" \
	    >"$rundir/log/basebackup.log" 2>&1; then
		echo "postgres: pg_basebackup failed:" >&2
		cat "$rundir/log/basebackup.log" >&2
		exit 1
	fi
	cat >>"$rundir/replica/postgresql.conf" <<EOF
# scripts/postgres.sh replica-start
port = $rport
unix_socket_directories = '$rsockdir'
hot_standby = on
EOF
	echo "postgres: starting the replica on 127.0.0.1:$rport" >&2
	if ! pgctl "$rundir/replica" start -w -t 60 \
	    -l "$rundir/log/replica.log" >/dev/null; then
		echo "postgres: the replica did not start:" >&2
		tail -n 30 "$rundir/log/replica.log" >&2 || true
		exit 1
	fi
	if [ "$sync_arg" = sync ]; then
		cat >>"$rundir/data/postgresql.conf" <<EOF
# scripts/postgres.sh replica-start: synchronous replication
synchronous_standby_names = 'replica'
synchronous_commit = on
EOF
		pgctl "$rundir/data" reload >/dev/null
	fi
	# Streaming (and, with sync, counted as synchronous) before we return.
	local i want="streaming $sync_arg" got
	for ((i = 0; i < 300; i++)); do
		got=$(as_pg "$PGBIN/psql" -h "$sockdir" -p "$port" -U postgres \
		    -d postgres -tAc "SELECT state || ' ' || sync_state FROM
		    pg_stat_replication WHERE application_name = 'replica'" \
		    2>/dev/null || true)
		[ "$got" != "$want" ] || break
		sleep 0.1
	done
	if [ "$got" != "$want" ]; then
		echo "postgres: the replica does not stream from the primary" \
		    "($want): '$got'" >&2
		exit 1
	fi
	write_env
	echo "postgres: replica up ($sync_arg)" >&2
}

# SIGKILL of the postmaster in data directory $1 and of all its children.
kill_cluster() {
	local pid kids
	[ -f "$1/postmaster.pid" ] || return 0
	pid=$(head -n 1 "$1/postmaster.pid")
	pid_alive "$pid" || return 0
	kids=$(ps -o pid= --ppid "$pid" || true)
	# shellcheck disable=SC2086 # a list of PIDs
	kill -KILL "$pid" $kids 2>/dev/null || true
	for _ in $(seq 1 100); do
		pid_alive "$pid" || break
		sleep 0.05
	done
}

do_primary_kill() {
	load_state
	[ -n "${rundir:-}" ] || { echo "postgres: nothing in $state" >&2; exit 1; }
	echo "postgres: SIGKILL of the primary on 127.0.0.1:$port" >&2
	kill_cluster "$rundir/data"
}

do_promote() {
	load_state
	if ! replica_running; then
		echo "postgres: no replica runs in $state" >&2
		exit 1
	fi
	echo "postgres: promoting the replica on 127.0.0.1:$rport" >&2
	pgctl "$rundir/replica" promote -w -t 60 >/dev/null
	for _ in $(seq 1 300); do
		if as_pg "$PGBIN/psql" -h "$rsockdir" -p "$rport" -U postgres \
		    -d postgres -tAc "SELECT pg_is_in_recovery()" | grep -qx f; then
			echo "postgres: the replica is a primary" >&2
			return 0
		fi
		sleep 0.1
	done
	echo "postgres: the promoted replica does not accept writes" >&2
	exit 1
}

do_stop() {
	load_state
	if [ -z "${rundir:-}" ]; then
		return 0
	fi
	if replica_running; then
		echo "postgres: stopping the replica" >&2
		pgctl "$rundir/replica" stop -m fast -w -t 30 >/dev/null 2>&1 || true
	fi
	kill_cluster "$rundir/replica"
	rm -f "$rundir/replica/postmaster.pid"
	case ${rsockdir:-} in
	"" | "$rundir"/*) ;;
	*) rm -rf "$rsockdir" ;;
	esac
	rm -f "$svc/replica-vars"
	if running; then
		echo "postgres: stopping" >&2
		as_pg "$PGBIN/pg_ctl" stop -D "$rundir/data" -m fast -w -t 30 \
		    >/dev/null 2>&1 || true
	fi
	if [ -f "$rundir/data/postmaster.pid" ]; then
		kill_wait "$(head -n 1 "$rundir/data/postmaster.pid")"
		rm -f "$rundir/data/postmaster.pid"
	fi
	case $sockdir in
	"$rundir"/*) ;;
	*) rm -rf "$sockdir" ;;
	esac
	if [ -L "$svc/run" ]; then
		rm -rf "$rundir"
		rm -f "$svc/run" "$svc/vars"
	fi
	rm -f "$svc/env"
	svc_merge_env "$state"
}

case $cmd in
start) do_start ;;
stop) do_stop ;;
replica-start) do_replica_start ;;
primary-kill) do_primary_kill ;;
promote) do_promote ;;
env)
	load_state
	if [ -f "$svc/env" ]; then
		cat "$svc/env"
	else
		echo "postgres: no server in $state" >&2
		exit 1
	fi
	;;
*) usage ;;
esac
