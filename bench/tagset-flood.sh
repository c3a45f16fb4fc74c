#!/bin/bash
# A ticket cycle's time while many new tag sets are made (a shared
# broker must not stall while strangers' tickets make queues).
#
#   RESBUS_BUILDDIR=build RESBUS_SRCDIR=. bash bench/tagset-flood.sh
#
# Needs the private RabbitMQ of RESBUS_TEST_AMQP_PORT /
# RESBUS_TEST_RABBITMQ_NODE (source the env file of scripts/rabbitmq.sh).
# Pool `demo` serves the measured cycles (ticket, ticket-wait,
# ticket-close of tag demo); pool `big` (max 0) provides memory=100000,
# so each of BENCH_N tickets `memory>=I` (I = 1..N, 50 clients at a time)
# is accepted and makes a tag set, hence a queue, a binding and a
# consumer.  Printed: the cycle times (ms) before the flood and while it
# runs, with their medians, and how many tag sets resbusd consumed.
# Knob: BENCH_N (1500).
set -euo pipefail

B=${RESBUS_BUILDDIR:?RESBUS_BUILDDIR: the build directory}
S=${RESBUS_SRCDIR:?RESBUS_SRCDIR: the source directory}
: "${RESBUS_TEST_AMQP_PORT:?source the env file of scripts/rabbitmq.sh}"
N=${BENCH_N:-1500}
T=$(mktemp -d "${TMPDIR:-/tmp}/resbus-bench-tagsets.XXXXXX")
vhost="resbus-bench-tagsets-$$"
ctl() { rabbitmqctl -n "$RESBUS_TEST_RABBITMQ_NODE" "$@"; }
bpid= wpid=

cleanup() {
	[ -n "$wpid" ] && kill "$wpid" 2>/dev/null && wait "$wpid" 2>/dev/null
	[ -n "$bpid" ] && kill "$bpid" 2>/dev/null && wait "$bpid" 2>/dev/null
	ctl delete_vhost "$vhost" >/dev/null 2>&1 || :
	[ -n "${BENCH_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

ctl add_vhost "$vhost" >/dev/null
ctl set_permissions -p "$vhost" guest '.*' '.*' '.*' >/dev/null
export RESBUS_AMQP_URL="amqp://guest:guest@127.0.0.1:$RESBUS_TEST_AMQP_PORT/$vhost"
mkdir -p "$T/conf" "$T/logs" "$T/local"
cat >"$T/conf/server.yaml" <<E2
db_url: "sqlite:///$T/db.sqlite"
logdir: "$T/logs"
amqp_url: "$RESBUS_AMQP_URL"
http_listen: "off"
notify: false
E2
cat >"$T/conf/pools.yaml" <<E2
demo:
  max: 4
  max_prealloc: 2
  cmd_new: "RESBUS_LOCAL_ROOT=$T/local $S/drivers/local/new"
  cmd_delete: "RESBUS_LOCAL_ROOT=$T/local $S/drivers/local/delete"
  tags: [demo]
big:
  max: 0
  cmd_new: "true"
  cmd_delete: "true"
  tags: [memory=100000]
E2
"$B/resbusd" --config-dir "$T/conf" >"$T/resbusd.out" 2>&1 &
bpid=$!
sleep 1
"$B/resbus-worker" --config-dir "$T/conf" >"$T/worker.out" 2>&1 &
wpid=$!
sleep 2

cycle() {
	local t0 t1 id
	t0=$(date +%s%N)
	id=$("$B/resbus" ticket --tag demo)
	"$B/resbus" ticket-wait "$id" >/dev/null
	"$B/resbus" ticket-close "$id"
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}

median() {
	tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 }
	    END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

before=
for _ in 1 2 3 4 5; do
	before="$before $(cycle)"
done
(
	for i in $(seq 1 "$N"); do
		"$B/resbus" ticket --tag "memory>=$i" >/dev/null 2>&1 &
		if ((i % 50 == 0)); then
			wait
		fi
	done
	wait
) &
flood=$!
sleep 1
during=
while kill -0 "$flood" 2>/dev/null; do
	during="$during $(cycle)"
done
echo "cycle ms before the flood:$before (median $(echo "$before" | median))"
echo "cycle ms while $N tag sets are made:$during (median $(echo "$during" | median))"
echo "tag sets consumed by resbusd: $(grep -c 'consuming resbus.ticket' "$T/resbusd.out")"
