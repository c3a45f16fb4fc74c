#!/bin/bash
# A private RabbitMQ node for the tests and the quick start.
#
#   scripts/rabbitmq.sh start STATE_DIR [PORT|auto]
#   scripts/rabbitmq.sh stop  STATE_DIR
#   scripts/rabbitmq.sh env   STATE_DIR
#
# The node listens on 127.0.0.1:PORT (default 5672; "auto" picks a free
# port from 25680 up), is named resbus-PORT@localhost, keeps its data and
# logs under STATE_DIR/rabbitmq and enables no plugins.  It runs as the
# `rabbitmq` user, with that user's Erlang cookie, so `rabbitmqctl -n NODE`
# run as root (Debian's wrapper switches to `rabbitmq`) reaches it.
#
# `start` writes the variables the tests need to STATE_DIR/rabbitmq/env and
# regenerates STATE_DIR/env from all service fragments; `env` prints them.
# Starting a node that already runs is a no-op; `stop` is a no-op for a
# node that does not run.
#
# When the `rabbitmq` user cannot reach STATE_DIR (a checkout under /root,
# say), the node's files live in a directory under /tmp instead, and
# STATE_DIR/rabbitmq/run points there.
set -euo pipefail

SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/svc-common.sh
. "$SCRIPTS/svc-common.sh"

usage() {
	echo "usage: $0 start|stop|env STATE_DIR [PORT|auto]" >&2
	exit 2
}

[ $# -ge 2 ] || usage
cmd=$1
state=$2
port_arg=${3:-5672}

ctl() {
	rabbitmqctl -n "$node" "$@"
}

load_state() {
	svc="$state/rabbitmq"
	if [ -f "$svc/vars" ]; then
		# shellcheck source=/dev/null
		. "$svc/vars"
	else
		port='' node='' rundir=''
	fi
}

running() {
	[ -n "${node:-}" ] || return 1
	[ -f "$rundir/pid" ] || return 1
	pid_alive "$(cat "$rundir/pid")" || return 1
	ctl -q status >/dev/null 2>&1
}

# The node and rabbitmqctl (both run as `rabbitmq` by Debian's wrapper)
# share the cookie in that user's home.  Erlang makes one when it is
# missing, but the node and the first rabbitmqctl would race to do so on a
# fresh install: make it first.
ensure_cookie() {
	local home cookie
	home=$(getent passwd rabbitmq | cut -d: -f6)
	cookie=$home/.erlang.cookie
	if [ -n "$home" ] && [ -d "$home" ] && [ ! -s "$cookie" ]; then
		(umask 077 && head -c 2000 /dev/urandom | LC_ALL=C tr -dc "[:upper:]" |
		    head -c 20 >"$cookie")
		chown rabbitmq:rabbitmq "$cookie"
		chmod 400 "$cookie"
	fi
}

write_env() {
	cat >"$svc/env" <<EOF
export RESBUS_TEST_AMQP_PORT=$port
export RESBUS_TEST_RABBITMQ_NODE=$node
export RESBUS_TEST_RABBITMQ_DIR=$rundir
export RABBITMQ_CTL_DIST_PORT_MIN=35672
export RABBITMQ_CTL_DIST_PORT_MAX=35771
EOF
	svc_merge_env "$state"
}

do_start() {
	need_root
	mkdir -p "$state"
	state=$(cd "$state" && pwd)
	load_state
	if running; then
		echo "rabbitmq: $node already running on 127.0.0.1:$port" >&2
		write_env
		return 0
	fi

	if [ "$port_arg" = auto ]; then
		port=$(free_port 25680)
	else
		port=$port_arg
		if port_in_use "$port"; then
			echo "rabbitmq: port $port is already in use" >&2
			exit 1
		fi
	fi
	dist_port=$(free_port $((port + 1000)))
	node="resbus-$port@localhost"

	mkdir -p "$svc"
	rundir=$(svc_rundir "$svc" rabbitmq)
	mkdir -p "$rundir/mnesia" "$rundir/log"
	rm -f "$rundir/pid"
	echo '[].' >"$rundir/enabled_plugins"
	cat >"$rundir/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$port
log.file.level = info
log.console = false
disk_free_limit.absolute = 50MB
EOF
	chown -R rabbitmq:rabbitmq "$rundir"
	cat >"$svc/vars" <<EOF
port=$port
node=$node
rundir=$rundir
EOF

	ensure_cookie
	echo "rabbitmq: starting $node on 127.0.0.1:$port (dist $dist_port)" >&2
	(
		export RABBITMQ_NODENAME="$node"
		export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
		export RABBITMQ_NODE_PORT="$port"
		export RABBITMQ_DIST_PORT="$dist_port"
		export RABBITMQ_MNESIA_BASE="$rundir/mnesia"
		export RABBITMQ_LOG_BASE="$rundir/log"
		export RABBITMQ_PID_FILE="$rundir/pid"
		export RABBITMQ_ENABLED_PLUGINS_FILE="$rundir/enabled_plugins"
		export RABBITMQ_FEATURE_FLAGS_FILE="$rundir/feature_flags"
		export RABBITMQ_CONFIG_FILE="$rundir/rabbitmq.conf"
		export RABBITMQ_CONF_ENV_FILE=/dev/null
		# Erlang distribution on the loopback interface only.
		export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
		cd /
		exec setsid rabbitmq-server </dev/null \
		    >"$rundir/log/startup.log" 2>&1
	) &

	if ! ctl wait "$rundir/pid" --timeout 90 >/dev/null 2>&1 ||
	    ! ctl await_startup --timeout 90 >/dev/null 2>&1; then
		echo "rabbitmq: $node did not start; its logs:" >&2
		tail -n 50 "$rundir/log/startup.log" "$rundir/log/"*.log >&2 || true
		do_stop || true
		exit 1
	fi
	write_env
	echo "rabbitmq: $node is up" >&2
}

do_stop() {
	load_state
	if [ -z "${node:-}" ]; then
		return 0
	fi
	if [ -f "$rundir/pid" ] && pid_alive "$(cat "$rundir/pid")"; then
		echo "rabbitmq: stopping $node" >&2
		ctl stop "$rundir/pid" >/dev/null 2>&1 || true
	fi
	# Whatever is left of the node and its launcher.
	if [ -f "$rundir/pid" ]; then
		kill_wait "$(cat "$rundir/pid")"
		rm -f "$rundir/pid"
	fi
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
		echo "rabbitmq: no node in $state" >&2
		exit 1
	fi
	;;
*) usage ;;
esac
