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
#
# A cluster of N nodes on loopback, beside (not instead of) the single node:
#
#   scripts/rabbitmq.sh cluster-start STATE_DIR N
#   scripts/rabbitmq.sh cluster-stop  STATE_DIR
#   scripts/rabbitmq.sh node-kill     STATE_DIR I      (SIGKILL of node I)
#   scripts/rabbitmq.sh node-start    STATE_DIR I      (starts it again)
#   scripts/rabbitmq.sh queue-leader  STATE_DIR VHOST QUEUE
#   scripts/rabbitmq.sh cluster-env   STATE_DIR
#
# Nodes are numbered from 1.  Each gets its own name (resbus-cPORT@localhost),
# AMQP port, Erlang distribution port and data directory under
# STATE_DIR/rabbitmq-cluster; all run as `rabbitmq` and so share its Erlang
# cookie.  They start at once, then nodes 2..N join node 1 (stop_app,
# join_cluster, start_app).  `queue-leader` prints the index of the node
# that leads a quorum queue.  cluster-start writes
# STATE_DIR/rabbitmq-cluster/env (also merged into STATE_DIR/env):
#
#   RESBUS_TEST_AMQP_PORTS       the AMQP ports, space-separated, node 1 first
#   RESBUS_TEST_RABBITMQ_NODES   the node names, in the same order
#   RESBUS_TEST_AMQP_URLS        amqp://guest:guest@127.0.0.1:P1/@VHOST@,...
#                                (replace @VHOST@ with the encoded vhost)
#   RESBUS_TEST_RABBITMQ_CLUSTER_DIR, RESBUS_TEST_RABBITMQ_CLUSTER_STATE
set -euo pipefail

SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/svc-common.sh
. "$SCRIPTS/svc-common.sh"

usage() {
	echo "usage: $0 start|stop|env STATE_DIR [PORT|auto]" >&2
	echo "       $0 cluster-start STATE_DIR N | cluster-stop STATE_DIR" >&2
	echo "       $0 node-kill|node-start STATE_DIR I" >&2
	echo "       $0 queue-leader STATE_DIR VHOST QUEUE" >&2
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

# Chooses the port, dist port and name of the node and writes its files.
node_pick() {
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
	node_files
	cat >"$svc/vars" <<EOF
port=$port
node=$node
rundir=$rundir
EOF
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

	# With "auto", another start running at the same moment may have
	# picked the same free port: the loser tries again on the next one.
	local tries=1
	[ "$port_arg" = auto ] && tries=3
	while :; do
		node_pick
		ensure_cookie
		echo "rabbitmq: starting $node on 127.0.0.1:$port (dist $dist_port)" >&2
		node_launch
		node_await && break
		node_logs
		do_stop || true
		tries=$((tries - 1))
		[ "$tries" -gt 0 ] || exit 1
		echo "rabbitmq: $node did not start; trying another port" >&2
	done
	write_env
	echo "rabbitmq: $node is up" >&2
}

# Writes the configuration of node $node (port $port) into $rundir.
node_files() {
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
}

# Starts node $node ($port, $dist_port, files in $rundir) in the background.
node_launch() {
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
		# Erlang distribution on the loopback interface only; schedulers
		# that sleep when idle instead of spinning, since several nodes
		# and the tests share a few CPUs.
		export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} +sbwt none +sbwtdcpu none +sbwtdio none"
		cd /
		exec setsid rabbitmq-server </dev/null \
		    >>"$rundir/log/startup.log" 2>&1
	) &
}

# Waits until node $node has started; 0 or 1.
node_await() {
	ctl wait "$rundir/pid" --timeout 120 >/dev/null 2>&1 &&
	    ctl await_startup --timeout 120 >/dev/null 2>&1
}

# What node $node wrote, for a start that failed.
node_logs() {
	echo "rabbitmq: $node did not start; its logs:" >&2
	tail -n 30 "$rundir/log/startup.log" "$rundir/log/$node.log" >&2 || true
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

# ---- a cluster of nodes on loopback ----------------------------------------

load_cluster() {
	csvc="$state/rabbitmq-cluster"
	ports=() nodes=() dists=() rundirs=()
	if [ -f "$csvc/vars" ]; then
		# shellcheck source=/dev/null
		. "$csvc/vars"
	fi
}

# Sets node, port, dist_port and rundir to those of node I (from 1).
cluster_pick() {
	local i=$1
	if ! [[ $i =~ ^[0-9]+$ ]] || [ "$i" -lt 1 ] || [ "$i" -gt "${#nodes[@]}" ]; then
		echo "rabbitmq: no node $i in the cluster of $state" >&2
		exit 2
	fi
	node=${nodes[$((i - 1))]}
	port=${ports[$((i - 1))]}
	dist_port=${dists[$((i - 1))]}
	rundir=${rundirs[$((i - 1))]}
}

cluster_write_env() {
	local urls='' p
	for p in "${ports[@]}"; do
		urls="$urls${urls:+,}amqp://guest:guest@127.0.0.1:$p/@VHOST@"
	done
	cat >"$csvc/env" <<EOF
export RESBUS_TEST_AMQP_PORTS="${ports[*]}"
export RESBUS_TEST_RABBITMQ_NODES="${nodes[*]}"
export RESBUS_TEST_AMQP_URLS="$urls"
export RESBUS_TEST_RABBITMQ_CLUSTER_DIR=$csvc
export RESBUS_TEST_RABBITMQ_CLUSTER_STATE=$state
export RABBITMQ_CTL_DIST_PORT_MIN=35672
export RABBITMQ_CTL_DIST_PORT_MAX=35771
EOF
	svc_merge_env "$state"
}

cluster_start() {
	# RESBUS_RMQ_PORT_BASE: where this cluster's AMQP ports start (its
	# distribution ports 1000 higher), so that clusters started side by
	# side, whose nodes come and go, never pick each other's ports.
	local n=$1 i p=${RESBUS_RMQ_PORT_BASE:-29680} failed=0
	local d=$((p + 1000))
	need_root
	if ! [[ $n =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ]; then
		usage
	fi
	mkdir -p "$state"
	state=$(cd "$state" && pwd)
	load_cluster
	if [ "${#nodes[@]}" -gt 0 ]; then
		echo "rabbitmq: a cluster runs in $state already; cluster-stop first" >&2
		exit 1
	fi
	mkdir -p "$csvc"
	ensure_cookie
	for i in $(seq 1 "$n"); do
		p=$(free_port "$p")
		d=$(free_port "$d")
		ports+=("$p")
		dists+=("$d")
		nodes+=("resbus-c$p@localhost")
		mkdir -p "$csvc/n$i"
		rundirs+=("$(svc_rundir "$csvc/n$i" rabbitmq)")
		p=$((p + 1))
		d=$((d + 1))
	done
	{
		echo "ports=(${ports[*]})"
		echo "dists=(${dists[*]})"
		echo "nodes=(${nodes[*]})"
		echo "rundirs=(${rundirs[*]})"
	} >"$csvc/vars"
	# All nodes boot at once; joining them is quick once they run.
	for i in $(seq 1 "$n"); do
		cluster_pick "$i"
		node_files
		echo "rabbitmq: starting $node on 127.0.0.1:$port (dist $dist_port)" >&2
		node_launch
	done
	for i in $(seq 1 "$n"); do
		cluster_pick "$i"
		if ! node_await; then
			node_logs
			failed=1
		fi
	done
	for i in $(seq 2 "$n"); do
		[ "$failed" = 0 ] || break
		cluster_pick "$i"
		if ! { ctl stop_app && ctl join_cluster "${nodes[0]}" &&
		    ctl start_app; } >/dev/null 2>&1; then
			echo "rabbitmq: $node cannot join ${nodes[0]}" >&2
			failed=1
		fi
	done
	if [ "$failed" != 0 ]; then
		cluster_stop
		return 1
	fi
	cluster_write_env
	echo "rabbitmq: cluster of $n up: ${nodes[*]}" >&2
}

cluster_stop() {
	local i
	load_cluster
	for i in $(seq 1 "${#nodes[@]}"); do
		cluster_pick "$i"
		if [ -f "$rundir/pid" ] && pid_alive "$(cat "$rundir/pid")"; then
			echo "rabbitmq: stopping $node" >&2
			ctl stop "$rundir/pid" >/dev/null 2>&1 &
		fi
	done
	wait
	for i in $(seq 1 "${#nodes[@]}"); do
		cluster_pick "$i"
		if [ -f "$rundir/pid" ]; then
			kill_wait "$(cat "$rundir/pid")"
		fi
		rm -rf "$rundir"
		rm -rf "$csvc/n$i"
	done
	rm -f "$csvc/vars" "$csvc/env"
	rmdir "$csvc" 2>/dev/null || true
	svc_merge_env "$state"
}

# SIGKILL of node I: no goodbye to its peers or its clients.
node_kill() {
	load_cluster
	cluster_pick "$1"
	if [ -f "$rundir/pid" ] && pid_alive "$(cat "$rundir/pid")"; then
		kill -KILL "$(cat "$rundir/pid")"
		echo "rabbitmq: killed $node (pid $(cat "$rundir/pid"))" >&2
	fi
}

node_start() {
	load_cluster
	cluster_pick "$1"
	if [ -f "$rundir/pid" ] && pid_alive "$(cat "$rundir/pid")"; then
		return 0
	fi
	rm -f "$rundir/pid"
	node_launch
	if ! node_await; then
		echo "rabbitmq: $node did not start again" >&2
		exit 1
	fi
	echo "rabbitmq: $node is up again" >&2
}

# Prints the index (from 1) of the node leading quorum queue QUEUE.
queue_leader() {
	local vhost=$1 queue=$2 i leader
	load_cluster
	for i in $(seq 1 "${#nodes[@]}"); do
		cluster_pick "$i"
		leader=$(timeout 20 rabbitmqctl -n "$node" list_queues -q \
		    --no-table-headers -p "$vhost" name leader 2>/dev/null |
		    awk -v q="$queue" '$1 == q { print $2 }') || continue
		[ -n "$leader" ] && break
	done
	for i in $(seq 1 "${#nodes[@]}"); do
		if [ "${nodes[$((i - 1))]}" = "$leader" ]; then
			echo "$i"
			return 0
		fi
	done
	echo "rabbitmq: no leader known for $queue in vhost $vhost" >&2
	return 1
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
cluster-start)
	[ $# -eq 3 ] || usage
	# A node that cannot boot in time on a loaded machine gets one more
	# chance, on fresh ports and data.
	if ! cluster_start "$3"; then
		echo "rabbitmq: the cluster did not start; trying once more" >&2
		cluster_start "$3" || exit 1
	fi
	;;
cluster-stop) cluster_stop ;;
node-kill)
	[ $# -eq 3 ] || usage
	node_kill "$3"
	;;
node-start)
	[ $# -eq 3 ] || usage
	node_start "$3"
	;;
queue-leader)
	[ $# -eq 4 ] || usage
	queue_leader "$3" "$4"
	;;
cluster-env)
	load_cluster
	if [ -f "$csvc/env" ]; then
		cat "$csvc/env"
	else
		echo "rabbitmq: no cluster in $state" >&2
		exit 1
	fi
	;;
*) usage ;;
esac
