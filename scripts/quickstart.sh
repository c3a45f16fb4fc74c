#!/bin/bash
# The quick start, as root from anywhere in the checkout:
#
#   bash scripts/quickstart.sh          # install, build, start, take a ticket
#   bash scripts/quickstart.sh stop     # stop everything it started
#
# Installs what is missing, builds in build/, starts a private RabbitMQ on
# 127.0.0.1:5672 with its state in build/quickstart, writes a configuration
# directory build/quickstart/etc from conf/server.yaml and conf/pools.yaml,
# starts resbusd and resbus-worker in the background (logs and pid files in
# build/quickstart), then takes a ticket for the `demo` pool, prints the
# data of the resource it got (a directory made by the local driver) and
# closes the ticket.  Exits 0 only if the ticket was served and closed.
# The daemons keep running so you can take more tickets; `stop` ends them.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
top=$(pwd)
build=$top/build
state=$build/quickstart
etc=$state/etc
port=5672
url="amqp://guest:guest@127.0.0.1:$port/"

say() {
	echo "quickstart: $*"
}

alive() {
	[ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

stop_daemon() {
	local name=$1 pidfile=$state/$1.pid pid i
	if alive "$pidfile"; then
		pid=$(cat "$pidfile")
		say "stopping $name ($pid)"
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
}

do_stop() {
	stop_daemon resbus-worker
	stop_daemon resbusd
	bash scripts/rabbitmq.sh stop "$state"
	say "stopped"
}

# start_daemon NAME ARGS...: runs $build/NAME in its own session.
start_daemon() {
	local name=$1
	shift
	if alive "$state/$name.pid"; then
		say "$name already runs ($(cat "$state/$name.pid"))"
		return 0
	fi
	say "starting $name (log: $state/$name.log)"
	setsid "$build/$name" "$@" </dev/null >>"$state/$name.log" 2>&1 &
	echo $! >"$state/$name.pid"
}

show_logs() {
	local f
	for f in "$state/resbusd.log" "$state/resbus-worker.log"; do
		if [ -f "$f" ]; then
			echo "----- $f (last 40 lines) -----" >&2
			tail -n 40 "$f" >&2
		fi
	done
}

failed() {
	say "FAILED: $*" >&2
	show_logs
	echo >&2
	echo "Stop everything with: bash scripts/quickstart.sh stop" >&2
	exit 1
}

case ${1:-start} in
stop)
	do_stop
	exit 0
	;;
start) ;;
*)
	echo "usage: $0 [start|stop]" >&2
	exit 2
	;;
esac

if [ "$(id -u)" -ne 0 ]; then
	echo "quickstart: run as root (it installs packages and runs RabbitMQ" \
	    "as its own user)" >&2
	exit 1
fi

say "installing dependencies"
bash scripts/deps.sh
say "building in $build"
bash scripts/build.sh "$build" >"$build.quickstart-build.log" 2>&1 || {
	tail -n 60 "$build.quickstart-build.log" >&2
	failed "the build failed (log: $build.quickstart-build.log)"
}

mkdir -p "$state" "$etc" "$state/logs" "$state/local"
say "starting RabbitMQ on 127.0.0.1:$port"
bash scripts/rabbitmq.sh start "$state" "$port" ||
    failed "RabbitMQ did not start (is something else using port $port?)"

for f in server.yaml pools.yaml; do
	sed -e "s|@DRIVERDIR@|$top/drivers/local|g" -e "s|@STATEDIR@|$state|g" \
	    "conf/$f" >"$etc/$f"
done
say "configuration in $etc"

export RESBUS_AMQP_URL=$url
export RESBUS_LOCAL_ROOT=$state/local
unset CONFIG_DIR
start_daemon resbusd --config-dir "$etc"
start_daemon resbus-worker --config-dir "$etc"
sleep 1
alive "$state/resbusd.pid" || failed "resbusd exited at start"
alive "$state/resbus-worker.pid" || failed "resbus-worker exited at start"

say "taking a ticket with tag demo"
id=$(timeout 150 "$build/resbus" ticket --tag demo --timeout 120) ||
    failed "resbus ticket --tag demo failed"
say "ticket $id; waiting for a resource"
data=$(timeout 150 "$build/resbus" ticket-wait "$id" --timeout 120) ||
    failed "resbus ticket-wait $id failed"
say "ticket $id got a resource; its data:"
printf '    %s\n' "$data"
timeout 60 "$build/resbus" ticket-close "$id" ||
    failed "resbus ticket-close $id failed"
say "ticket $id closed; the resource is being deleted and a fresh one started"

cat <<EOF

resbus runs:
  resbusd         pid $(cat "$state/resbusd.pid"), log $state/resbusd.log
  resbus-worker   pid $(cat "$state/resbus-worker.pid"), log $state/resbus-worker.log
  RabbitMQ        127.0.0.1:$port, node resbus-$port@localhost
  configuration   $etc
  resources       $state/local (local driver), hook logs in $state/logs/hooks

Try it:
  export RESBUS_AMQP_URL=$url
  id=\$($build/resbus ticket --tag demo)
  $build/resbus ticket-wait \$id
  $build/resbus ticket-close \$id

Stop everything:
  bash scripts/quickstart.sh stop
EOF
