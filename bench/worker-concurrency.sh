#!/bin/bash
# One resbus-worker running 1,000 driver commands at once (DESIGN.md
# section 8: "concurrent driver commands per worker: 1,000 without a
# thread per command").
#
#   RESBUS_BUILDDIR=build RESBUS_SRCDIR=. bash bench/worker-concurrency.sh
#
# A pool with max, max_prealloc and max_starting 1000 makes resbusd ask
# for 1,000 starts at once; once the 1,000 Allocate jobs wait in the pool
# queue, one worker (concurrency 1000) is started and runs every cmd_new,
# each a shell that sleeps 1 s.  Printed: the wall time from the
# first command's start to the last one's end (from the worker's log),
# the floor (1 s: every command sleeps that long) and the ratio; the
# worker's thread count (/proc/PID/status Threads, sampled every 0.1 s
# during the run, the highest seen); its peak RSS (VmHWM); and its open
# descriptors at the peak.  Uses the private RabbitMQ of
# RESBUS_TEST_AMQP_PORT / RESBUS_TEST_RABBITMQ_NODE when set (source the
# env file of scripts/rabbitmq.sh), else starts one and stops it after.
# Knob: BENCH_N (1000).
set -euo pipefail

B=${RESBUS_BUILDDIR:?RESBUS_BUILDDIR: the build directory}
S=${RESBUS_SRCDIR:?RESBUS_SRCDIR: the source directory}
N=${BENCH_N:-1000}
T=$(mktemp -d "${TMPDIR:-/tmp}/resbus-bench-worker.XXXXXX")
own_rmq=
wpid= bpid=

cleanup() {
	[ -n "$wpid" ] && kill "$wpid" 2>/dev/null && wait "$wpid" 2>/dev/null
	[ -n "$bpid" ] && kill "$bpid" 2>/dev/null && wait "$bpid" 2>/dev/null
	if [ -n "${vhost:-}" ]; then
		rabbitmqctl -n "$RESBUS_TEST_RABBITMQ_NODE" delete_vhost "$vhost" >/dev/null 2>&1 || :
	fi
	[ -z "$own_rmq" ] || bash "$S/scripts/rabbitmq.sh" stop "$T/rmq" >/dev/null 2>&1 || :
	[ -n "${BENCH_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

if [ -z "${RESBUS_TEST_AMQP_PORT:-}" ]; then
	bash "$S/scripts/rabbitmq.sh" start "$T/rmq" auto >&2
	own_rmq=1
	# shellcheck source=/dev/null
	. "$T/rmq/env"
fi
vhost=resbus-bench-worker-$$
rabbitmqctl -n "$RESBUS_TEST_RABBITMQ_NODE" add_vhost "$vhost" >/dev/null
rabbitmqctl -n "$RESBUS_TEST_RABBITMQ_NODE" set_permissions -p "$vhost" guest '.*' '.*' '.*' >/dev/null
url="amqp://guest:guest@127.0.0.1:$RESBUS_TEST_AMQP_PORT/$vhost"

mkdir -p "$T/etc" "$T/logs"
cat >"$T/etc/server.yaml" <<EOF
db_url: "sqlite:///$T/db.sqlite"
logdir: "$T/logs"
loglevel: info
amqp_url: "$url"
EOF
cat >"$T/etc/pools.yaml" <<EOF
bench:
  max: $N
  max_prealloc: $N
  max_starting: $N
  cmd_new: "sleep 1; echo up"
  cmd_delete: "true"
  tags: [bench]
EOF

# resbusd first: the N jobs wait in the pool queue, so what is measured
# is the worker alone, not how fast resbusd publishes.
"$B/resbusd" --config-dir "$T/etc" </dev/null >"$T/resbusd.out" 2>&1 &
bpid=$!
queued() {
	rabbitmqctl -n "$RESBUS_TEST_RABBITMQ_NODE" list_queues -p "$vhost" -s name messages |
	    awk '$1 == "resbus.pool.bench" { print $2 }'
}
for ((i = 0; i < 120; i++)); do
	[ "$(queued)" = "$N" ] && break
	sleep 1
done
[ "$(queued)" = "$N" ] || { echo "worker-concurrency: resbusd did not queue $N jobs" >&2; exit 1; }
"$B/resbus-worker" --config-dir "$T/etc" --concurrency "$N" --name bench \
    </dev/null >"$T/worker.out" 2>&1 &
wpid=$!

threads=0
fds=0
start=$(date +%s)
while :; do
	t=$(awk '/^Threads:/ { print $2 }' "/proc/$wpid/status")
	[ "$t" -le "$threads" ] || threads=$t
	f=$(find "/proc/$wpid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
	[ "$f" -le "$fds" ] || fds=$f
	done_n=$(grep -c 'job end: .* cmd_new exit 0' "$T/worker.out" || :)
	[ "$done_n" -lt "$N" ] || break
	if [ $(($(date +%s) - start)) -gt 120 ]; then
		echo "worker-concurrency: only $done_n of $N commands ended in 120 s" >&2
		tail -n 20 "$T/worker.out" >&2
		exit 1
	fi
	sleep 0.1
done
hwm=$(awk '/^VmHWM:/ { print $2, $3 }' "/proc/$wpid/status")
concurrent=$(awk '
	/job start: .* cmd_new$/ { n++; if (n > max) max = n }
	/job end: .* cmd_new / { n-- }
	END { print max }' "$T/worker.out")

# Timestamps of the first start and the last end, in ms.
ms() {
	sed -E 's/^([0-9-]+T[0-9:]+)\.([0-9]{3})Z.*/\1Z \2/' | while read -r ts frac; do
		echo $(($(date -u -d "$ts" +%s) * 1000 + 10#$frac))
	done
}
first=$(grep -m1 'job start: .* cmd_new' "$T/worker.out" | ms)
last=$(grep 'job end: .* cmd_new' "$T/worker.out" | tail -n 1 | ms)
wall=$((last - first))

printf 'commands:                 %d cmd_new, each "sleep 1"\n' "$N"
printf 'most running at once:     %d\n' "$concurrent"
printf 'wall time, first start to last end: %d ms\n' "$wall"
printf 'floor:                    1000 ms\n'
printf 'ratio to the floor:       %s\n' "$(awk -v w="$wall" 'BEGIN { printf "%.2f", w / 1000 }')"
printf 'worker threads (max seen): %d\n' "$threads"
printf 'worker peak RSS (VmHWM):  %s\n' "$hwm"
printf 'worker open fds (max seen): %d\n' "$fds"
