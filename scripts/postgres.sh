#!/bin/bash
# A private PostgreSQL 15 server for the tests.
#
#   scripts/postgres.sh start STATE_DIR [PORT|auto]
#   scripts/postgres.sh stop  STATE_DIR
#   scripts/postgres.sh env   STATE_DIR
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
set -euo pipefail

SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/svc-common.sh
. "$SCRIPTS/svc-common.sh"

PGBIN=/usr/lib/postgresql/15/bin
PGROLE=resbus

usage() {
	echo "usage: $0 start|stop|env STATE_DIR [PORT|auto]" >&2
	exit 2
}

[ $# -ge 2 ] || usage
cmd=$1
state=$2
port_arg=${3:-5432}

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

do_stop() {
	load_state
	if [ -z "${rundir:-}" ]; then
		return 0
	fi
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
