#!/bin/bash
# resbus's numbers beside the floor the parts set (DESIGN.md section 8).
#
#   make bench          (or: RESBUS_BUILDDIR=... RESBUS_SRCDIR=... bash bench/run.sh)
#
# Starts a private RabbitMQ and PostgreSQL (scripts/rabbitmq.sh,
# scripts/postgres.sh), measures in the same run what RabbitMQ and the
# stores cost by themselves -- a raw AMQP round trip and message rate, one
# durable commit on each store -- then resbus's own figures with the
# project's binaries from the build directory, and prints one table: each
# figure with the floor it is compared with, the ratio, the target and
# whether it holds.  Every phase runs on a vhost (and database) of its
# own.  The services are stopped at the end; BENCH_KEEP=1 keeps the files.
#
# Knobs (environment): BENCH_READY_N (1000 samples), BENCH_CYCLE_S (10 s),
# BENCH_TICKETS (100000), BENCH_RESOURCES (10000), BENCH_SCHED_REPS (1001),
# BENCH_ONLY (a comma-separated subset of the phases ready, cycles, sched,
# memory, worker, takeover, cluster; the floor is always measured),
# BENCH_TAKEOVER_N (5 SIGKILLs of the active broker), BENCH_CLUSTER_READY_N
# (300 samples on each of one node and the cluster), BENCH_WORKERS (1: how many
# resbus-workers serve the pool of the cycles), BENCH_HOOKLOGS (tmpfs: the
# daemons' logdir, with the workers' hook logs, under /dev/shm; disk: in
# the bench's directory, beside the stores -- see bench/README.md).
# Needs root (the services run as their own users).
set -euo pipefail

B=${RESBUS_BUILDDIR:?RESBUS_BUILDDIR: the build directory}
S=${RESBUS_SRCDIR:?RESBUS_SRCDIR: the source directory}
RBBENCH=$B/bench/rbbench
SCHED_STEP=$B/bench/sched-step
READY_N=${BENCH_READY_N:-1000}
CYCLE_S=${BENCH_CYCLE_S:-10}
CLIENTS=16
CYCLE_WORKERS=${BENCH_WORKERS:-1}
NTICKETS=${BENCH_TICKETS:-100000}
NRES=${BENCH_RESOURCES:-10000}
SCHED_REPS=${BENCH_SCHED_REPS:-1001}
SCHED_RUNS=${BENCH_SCHED_RUNS:-3}
TAKEOVER_N=${BENCH_TAKEOVER_N:-5}
CLUSTER_READY_N=${BENCH_CLUSTER_READY_N:-300}
CLUSTER_UP=
# One cycle (take, wait, close) on the bus, counted from broker/broker*.c,
# broker/sched*.c and lib/client*.c: TicketRequest, TicketAccepted,
# TicketQuery, its TicketUpdate reply, the ticket.<id>.ready event,
# TicketClose, its TicketUpdate reply, the ticket.<id>.closed event, the
# Delete job, its DeleteResult, the Allocate job of the replacement, its
# AllocateResult, and the TicketUpdate pushed to the reply queue of the
# request when the ticket became READY.  (Plus the acks and confirms, not counted; a wait binds
# the ticket's events only when its query finds no resource yet.)
# With notifications on (server.yaml's default), six more: the JSON
# notifications ticket.open, ticket.ready, ticket.closed, resource.deleted,
# resource.starting and resource.up (counted in resbusd's debug log).
MSGS_PER_CYCLE=19

for f in "$RBBENCH" "$SCHED_STEP" "$B/resbusd" "$B/resbus-worker"; do
	[ -x "$f" ] || { echo "bench: $f is missing: run 'make bench'" >&2; exit 1; }
done
if [ "$(id -u)" -ne 0 ]; then
	echo "bench: must run as root (private RabbitMQ and PostgreSQL)" >&2
	exit 1
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/resbus-bench.XXXXXX")
chmod 755 "$W"
HOOKLOGS=${BENCH_HOOKLOGS:-tmpfs}
case $HOOKLOGS in
tmpfs)
	L=$(mktemp -d /dev/shm/resbus-bench-logs.XXXXXX)
	chmod 755 "$L"
	;;
disk) L= ;;
*)
	echo "bench: BENCH_HOOKLOGS must be tmpfs or disk, not '$HOOKLOGS'" >&2
	exit 2
	;;
esac
BROKER_PID=
WORKER_PIDS=()
T_START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# want PHASE: true if BENCH_ONLY is unset or names PHASE.
want() {
	[ -z "${BENCH_ONLY:-}" ] || [[ ",$BENCH_ONLY," == *",$1,"* ]]
}

say() {
	echo "[bench +$(($(date +%s) - T_START))s] $*" >&2
}

stop_pid() {
	local pid=$1 i
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_workers
	stop_pid "$BROKER_PID"
	if [ -n "$CLUSTER_UP" ]; then
		bash "$S/scripts/rabbitmq.sh" cluster-stop "$W/svc" >/dev/null 2>&1 || true
	fi
	bash "$S/scripts/rabbitmq.sh" stop "$W/svc" >/dev/null 2>&1 || true
	bash "$S/scripts/postgres.sh" stop "$W/svc" >/dev/null 2>&1 || true
	if [ "$rc" -eq 0 ] && [ -z "${BENCH_KEEP:-}" ]; then
		rm -rf "$W" ${L:+"$L"}
	else
		echo "bench: files kept in $W${L:+ (logs in $L)}" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
	echo "bench: $*" >&2
	for f in "$W"/*/broker.out "$W"/*/worker.out; do
		[ -s "$f" ] && { echo "----- $f" >&2; tail -n 30 "$f" >&2; }
	done
	exit 1
}

# wait_for DESC TIMEOUT_S CMD...
wait_for() {
	local desc=$1 deadline=$(($(date +%s) + $2))
	shift 2
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$deadline" ] || die "timed out waiting for $desc"
		if [ -n "$BROKER_PID" ] && ! kill -0 "$BROKER_PID" 2>/dev/null; then
			die "resbusd died while waiting for $desc"
		fi
		sleep 0.2
	done
}

calc() {
	awk "BEGIN { printf \"%s\", $1 }"
}

# ---- the table -----------------------------------------------------------

ROWS=()
# row FIGURE VALUE FLOOR RATIO TARGET HOLDS
row() {
	ROWS+=("$1|$2|$3|$4|$5|$6")
}
# verdict VALUE OP LIMIT: "yes" or "NO"
verdict() {
	awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
		ok = (op == "<=") ? (v <= l) : (v >= l)
		print ok ? "yes" : "NO" }'
}

print_table() {
	local r
	echo
	echo "resbus bench, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs," \
	    "load average at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg)," \
	    "logs and hook logs on $HOOKLOGS"
	printf '\n%-46s %-20s %-26s %-10s %-18s %s\n' figure resbus floor ratio \
	    target holds
	printf '%s\n' "$(printf '%.0s-' {1..126})"
	for r in "${ROWS[@]}"; do
		IFS='|' read -r f v fl ra t h <<<"$r"
		printf '%-46s %-20s %-26s %-10s %-18s %s\n' "$f" "$v" "$fl" "$ra" \
		    "$t" "$h"
	done
	echo
}

# ---- services ------------------------------------------------------------

say "starting RabbitMQ and PostgreSQL in $W/svc"
mkdir -p "$W/svc"
bash "$S/scripts/rabbitmq.sh" start "$W/svc" auto >"$W/rabbitmq.out" 2>&1 ||
    { cat "$W/rabbitmq.out" >&2; die "RabbitMQ did not start"; }
bash "$S/scripts/postgres.sh" start "$W/svc" auto >"$W/postgres.out" 2>&1 ||
    { cat "$W/postgres.out" >&2; die "PostgreSQL did not start"; }
# shellcheck source=/dev/null
. "$W/svc/env"
RABBIT_PID=$(cat "$RESBUS_TEST_RABBITMQ_DIR/pid")
PGHOST=$RESBUS_TEST_PG_HOST
PGPORT=$RESBUS_TEST_PG_PORT
PGUSER=${RESBUS_TEST_PG_USER:-resbus}

ctl() {
	timeout -k 5 60 rabbitmqctl -n "$RESBUS_TEST_RABBITMQ_NODE" "$@"
}

psql_() {
	psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" "$@"
}

# vhost NAME: a fresh vhost; prints its AMQP URL.
vhost() {
	ctl add_vhost "bench-$1" >/dev/null
	ctl set_permissions -p "bench-$1" guest '.*' '.*' '.*' >/dev/null
	echo "amqp://guest:guest@127.0.0.1:$RESBUS_TEST_AMQP_PORT/bench-$1"
}

# pgdb NAME: a fresh database; prints its db_url.
pgdb() {
	psql_ -d postgres -c "CREATE DATABASE bench_$1" >/dev/null
	echo "postgresql://$PGUSER@/bench_$1?host=$PGHOST&port=$PGPORT"
}

# phase_dir NAME DB_URL AMQP_URL: a configuration directory (pools.yaml is
# written by the caller) in $W/NAME; prints its path.
phase_dir() {
	local d=$W/$1
	mkdir -p "$d/etc" "$d/db"
	if [ -n "$L" ]; then
		mkdir -p "$L/$1"
		ln -s "$L/$1" "$d/logs"
	else
		mkdir -p "$d/logs"
	fi
	cat >"$d/etc/server.yaml" <<EOF
db_url: "$2"
logdir: "$d/logs"
loglevel: info
amqp_url: "$3"
http_listen: "off"
EOF
	echo "$d"
}

broker_consuming() {
	ctl list_queues -p "$1" -s name consumers 2>/dev/null |
	    awk '$1 == "resbus.request" && $2 > 0 { found = 1 } END { exit !found }'
}

# start_broker DIR VHOST
start_broker() {
	echo "===== resbusd $(date +%T)" >>"$1/broker.out"
	"$B/resbusd" --config-dir "$1/etc" </dev/null >>"$1/broker.out" 2>&1 &
	BROKER_PID=$!
	wait_for "resbusd to consume its request queue" 120 broker_consuming "$2"
}

# start_worker DIR CONCURRENCY [COUNT]: COUNT workers (1) serving the pools.
start_worker() {
	local i
	for ((i = 0; i < ${3:-1}; i++)); do
		echo "===== resbus-worker $i $(date +%T)" >>"$1/worker.out"
		"$B/resbus-worker" --config-dir "$1/etc" --concurrency "$2" \
		    </dev/null >>"$1/worker.out" 2>&1 &
		WORKER_PIDS+=("$!")
	done
}

stop_workers() {
	local pid
	for pid in "${WORKER_PIDS[@]}"; do
		stop_pid "$pid"
	done
	WORKER_PIDS=()
}

stop_daemons() {
	stop_workers
	stop_pid "$BROKER_PID"
	BROKER_PID=
}

# ups_at_least DIR N: resbusd has logged N resources UP.
ups_at_least() {
	[ "$(grep -c ': UP after' "$1/logs/main.log" 2>/dev/null || true)" -ge "$2" ]
}

# cpu_ticks PID...: user + system clock ticks of the PIDs and of their
# reaped children (a worker's driver commands), summed.
cpu_ticks() {
	local pid t=0 f
	for pid in "$@"; do
		f=$(cut -d' ' -f14-17 "/proc/$pid/stat" 2>/dev/null) || continue
		# shellcheck disable=SC2086 # four numbers
		t=$((t + $(echo $f | tr ' ' '+')))
	done
	echo "$t"
}

rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# ---- the floor ------------------------------------------------------------

say "floor: raw AMQP round trip and rate, durable commits"
URL=$(vhost floor)
mkdir -p "$W/floor"
read -r RT_P50 RT_P99 < <("$RBBENCH" amqp-rt "$URL" 2000) || die "amqp-rt"
read -r RATE < <("$RBBENCH" amqp-rate "$URL" 100000) || die "amqp-rate"
# In the directory the SQLite brokers below keep their databases.
mkdir -p "$W/ready/db"
read -r SQ_P50 SQ_P99 < <("$RBBENCH" commit-sqlite "$W/ready/db/floor.sqlite" 500) ||
    die "commit-sqlite"
read -r PG_P50 PG_P99 < <("$RBBENCH" commit-pg \
    "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGUSER" 500) || die "commit-pg"
say "floor: rt p50 ${RT_P50}us p99 ${RT_P99}us, rate $RATE msg/s," \
    "sqlite commit p50 ${SQ_P50}us p99 ${SQ_P99}us," \
    "postgresql commit p50 ${PG_P50}us p99 ${PG_P99}us"
row "floor: raw AMQP round trip p50 / p99" "$RT_P50 / $RT_P99 us" "-" "-" "-" "-"
row "floor: raw AMQP message rate (1 stream)" "$RATE msg/s" "-" "-" "-" "-"
row "floor: SQLite commit (WAL, FULL) p50 / p99" "$SQ_P50 / $SQ_P99 us" "-" "-" "-" "-"
row "floor: PostgreSQL commit (fsync) p50 / p99" "$PG_P50 / $PG_P99 us" "-" "-" "-" "-"

# ---- ticket -> READY with a free resource ------------------------------
phase_ready() {

	say "ticket -> READY latency, $READY_N samples (SQLite store)"
	URL=$(vhost ready)
	D=$(phase_dir ready "sqlite:///$W/ready/db/resbus.sqlite" "$URL")
	cat >"$D/etc/pools.yaml" <<-'EOF'
	bench:
	  max: 80
	  max_prealloc: 30
	  max_starting: 30
	  cmd_new: "echo x"
	  cmd_delete: "true"
	  tags: [fast]
	EOF
	start_broker "$D" bench-ready
	start_worker "$D" 64
	wait_for "30 free resources" 60 ups_at_least "$D" 30
	read -r R_P50 R_P90 R_P99 R_MAX < <("$RBBENCH" ready "$URL" fast "$READY_N") ||
	    die "ready"
	stop_daemons
	FLOOR_READY=$((RT_P50 + SQ_P50))
	fl="rt+commit $FLOOR_READY us"
	for q in p50:"$R_P50":3 p90:"$R_P90":- p99:"$R_P99":10 max:"$R_MAX":-; do
		IFS=: read -r name v lim <<<"$q"
		ratio=$(calc "$v / $FLOOR_READY")
		if [ "$lim" = - ]; then
			row "ticket -> READY $name" "$v us" "$fl" "$(calc "$ratio" | xargs printf '%.1fx')" "-" "-"
		else
			row "ticket -> READY $name" "$v us" "$fl" "$(printf '%.1fx' "$ratio")" \
			    "<= ${lim}x" "$(verdict "$ratio" '<=' "$lim")"
		fi
	done
}

# ---- full cycles, 16 clients --------------------------------------------
phase_cycles() {
	local wlabel=
	[ "$CYCLE_WORKERS" -eq 1 ] || wlabel=", $CYCLE_WORKERS workers"

	CYCLE_FLOOR=$(calc "0.25 * $RATE / $MSGS_PER_CYCLE")
	for store in sqlite postgresql; do
		say "full cycles, $CLIENTS clients, ${CYCLE_S}s ($store store)"
		URL=$(vhost "cycles-$store")
		if [ "$store" = sqlite ]; then
			db="sqlite:///$W/cycles-$store/db/resbus.sqlite"
		else
			db=$(pgdb cycles)
		fi
		D=$(phase_dir "cycles-$store" "$db" "$URL")
		cat >"$D/etc/pools.yaml" <<-'EOF'
	bench:
	  max: 96
	  max_prealloc: 48
	  max_starting: 48
	  cmd_new: "echo x"
	  cmd_delete: "true"
	  tags: [fast]
	EOF
		start_broker "$D" "bench-cycles-$store"
		start_worker "$D" 128 "$CYCLE_WORKERS"
		wait_for "48 free resources" 60 ups_at_least "$D" 48
		t0=$(date +%s%N)
		c0=("$(cpu_ticks "$RABBIT_PID")" "$(cpu_ticks "$BROKER_PID")" \
		    "$(cpu_ticks "${WORKER_PIDS[@]}")")
		read -r C_RATE C_N C_P50 C_P99 C_ERR < <("$RBBENCH" cycles "$URL" fast \
		    "$CLIENTS" "$CYCLE_S") || die "cycles ($store)"
		c1=("$(cpu_ticks "$RABBIT_PID")" "$(cpu_ticks "$BROKER_PID")" \
		    "$(cpu_ticks "${WORKER_PIDS[@]}")")
		span=$(calc "($(date +%s%N) - $t0) / 1e9 * $(getconf CLK_TCK)")
		stop_daemons
		say "$store: $C_RATE cycles/s ($C_N cycles, p50 ${C_P50}us, p99 ${C_P99}us)"
		row "cycles/s, $CLIENTS clients, $store$wlabel" "$C_RATE" \
		    "$(printf '%.0f' "$CYCLE_FLOOR") (25% of $RATE/$MSGS_PER_CYCLE)" \
		    "$(calc "$C_RATE / $CYCLE_FLOOR" | xargs printf '%.2fx')" ">= 1.00x" \
		    "$(verdict "$C_RATE" '>=' "$CYCLE_FLOOR")"
		row "  one cycle p50 / p99, $store" "$C_P50 / $C_P99 us" "-" "-" "-" "-"
		row "  CPUs: rabbitmq / resbusd / workers+cmds" "$(calc \
		    "$((c1[0] - c0[0])) / $span" | xargs printf '%.2f') / $(calc \
		    "$((c1[1] - c0[1])) / $span" | xargs printf '%.2f') / $(calc \
		    "$((c1[2] - c0[2])) / $span" | xargs printf '%.2f')" \
		    "of $(nproc)" "-" "-" "-"
	done
	row "messages per cycle (13 + 6 notifications)" "$MSGS_PER_CYCLE" "-" "-" "-" "-"
}

# ---- one scheduling step -------------------------------------------------

# The median step with $1 open tickets in up to 1000 tag sets: the median
# of SCHED_RUNS processes' medians.  One process's level moves by up to
# a half from the next one's here (where its pages land, which CPU), while
# its own steps stay within a few percent of each other.
sched_step() {
	local n=$1 k m all=()
	for ((k = 0; k < SCHED_RUNS; k++)); do
		mkdir -p "$W/sched/$n.$k"
		read -r m _ _ < <("$SCHED_STEP" "$W/sched/$n.$k" "$n" 1000 \
		    "$SCHED_REPS") && [ -n "$m" ] || return 1
		all+=("$m")
	done
	printf '%s\n' "${all[@]}" | sort -n | sed -n "$(((SCHED_RUNS + 1) / 2))p"
}

phase_sched() {

	say "scheduling step: 100, 1000 and $NTICKETS open tickets"
	S100=$(sched_step 100) || die "sched-step 100"
	S1K=$(sched_step 1000) || die "sched-step 1000"
	SBIG=$(sched_step "$NTICKETS") || die "sched-step $NTICKETS"
	row "sched step, 100 tickets / 100 tag sets" "$S100 ns" "-" "-" "-" "-"
	row "sched step, 1000 tickets / 1000 tag sets" "$S1K ns" "100 tickets: $S100 ns" \
	    "$(calc "$S1K / $S100" | xargs printf '%.2fx')" "-" "-"
	row "sched step, $NTICKETS tickets / 1000 tag sets" "$SBIG ns" \
	    "100 tickets: $S100 ns" "$(calc "$SBIG / $S100" | xargs printf '%.2fx')" \
	    "<= 2x" "$(verdict "$(calc "$SBIG / $S100")" '<=' 2)"
}

# ---- memory with many resources and tickets; restart -----------------------
phase_memory() {

	say "memory: $NRES resources, then $NTICKETS open tickets (SQLite store)"
	URL=$(vhost memory)
	D=$(phase_dir memory "sqlite:///$W/memory/db/resbus.sqlite" "$URL")
	# First without preallocation, for the baseline; then SIGHUP with it.
	pools_memory() {
		cat >"$D/etc/pools.yaml" <<-EOF
	big:
	  max: $NRES
	  max_prealloc: $1
	  max_starting: 1000
	  cmd_new: "echo x"
	  cmd_delete: "true"
	  tags: [big]
	# Provides the tag of the waiting tickets, but never starts anything.
	slow:
	  max: 1
	  max_prealloc: 0
	  cmd_new: "echo x"
	  cmd_delete: "true"
	  tags: [slow]
	EOF
	}
	pools_memory 0
	start_broker "$D" bench-memory
	start_worker "$D" 1000
	sleep 1
	RSS0=$(rss_kb "$BROKER_PID")
	pools_memory "$NRES"
	T0=$(date +%s%N)
	kill -HUP "$BROKER_PID"
	wait_for "$NRES resources UP" 300 ups_at_least "$D" "$NRES"
	T1=$(date +%s%N)
	sleep 2
	RSS1=$(rss_kb "$BROKER_PID")
	say "$NRES resources UP in $(calc "($T1 - $T0) / 1e9")s; RSS $RSS0 -> $RSS1 kB"
	read -r LOADED LOAD_RATE < <("$RBBENCH" load "$URL" slow "$NTICKETS") ||
	    die "load"
	sleep 2
	RSS2=$(rss_kb "$BROKER_PID")
	say "$LOADED tickets at $LOAD_RATE/s; RSS $RSS1 -> $RSS2 kB"
	PER_RES=$(calc "($RSS1 - $RSS0) * 1024 / $NRES" | xargs printf '%.0f')
	PER_TICKET=$(calc "($RSS2 - $RSS1) * 1024 / $LOADED" | xargs printf '%.0f')
	row "broker RSS per resource ($NRES)" "$PER_RES B" "RSS ${RSS0}->${RSS1} kB" \
	    "-" "<= 4096 B" "$(verdict "$PER_RES" '<=' 4096)"
	row "broker RSS per open ticket ($LOADED)" "$PER_TICKET B" "RSS ${RSS1}->${RSS2} kB" \
	    "-" "<= 1024 B" "$(verdict "$PER_TICKET" '<=' 1024)"
	row "  tickets accepted per second (pipelined)" "$LOAD_RATE" "-" "-" "-" "-"

	say "restart with $LOADED open tickets and $NRES resources"
	kill -KILL "$BROKER_PID"
	wait "$BROKER_PID" 2>/dev/null || true
	BROKER_PID=
	T0=$(date +%s%N)
	"$B/resbusd" --config-dir "$D/etc" </dev/null >>"$D/broker.out" 2>&1 &
	BROKER_PID=$!
	T1=$("$RBBENCH" take "$URL" slow 120) || die "take after restart"
	RESTART=$(calc "($T1 - $T0) / 1e9" | xargs printf '%.2f')
	RSS3=$(rss_kb "$BROKER_PID")
	say "restart to serving: ${RESTART}s (RSS after restart $RSS3 kB)"
	row "restart to serving ($LOADED tickets)" "$RESTART s" "-" "-" "<= 2 s" \
	    "$(verdict "$RESTART" '<=' 2)"
	stop_daemons
}

# ---- a worker with 1,000 concurrent driver commands ----------------------
phase_worker() {

	say "worker concurrency: bench/worker-concurrency.sh"
	WC=$(bash "$S/bench/worker-concurrency.sh" 2>"$W/worker-concurrency.err") ||
	    { cat "$W/worker-concurrency.err" >&2; die "bench/worker-concurrency.sh"; }
	echo "$WC" >&2
	wc_field() {
		printf '%s\n' "$WC" | awk -F': *' -v k="$1" 'index($0, k) == 1 { print $2 }'
	}
	WC_N=$(wc_field 'most running at once')
	WC_WALL=$(wc_field 'wall time' | awk '{ print $1 }')
	WC_RATIO=$(wc_field 'ratio to the floor')
	WC_THREADS=$(wc_field 'worker threads')
	WC_RSS=$(wc_field 'worker peak RSS')
	row "worker: 1000 x 'sleep 1', first start to end" "$WC_WALL ms" "1000 ms (one command)" \
	    "${WC_RATIO}x" "-" "-"
	row "worker: most commands running at once" "$WC_N" "-" "-" ">= 1000" \
	    "$(verdict "$WC_N" '>=' 1000)"
	row "worker: threads (max seen)" "$WC_THREADS" "-" "-" "no thread per cmd" \
	    "$(verdict "$WC_THREADS" '<=' 8)"
	row "worker: peak RSS (VmHWM)" "$WC_RSS" "-" "-" "-" "-"
}

# ---- takeover: SIGKILL of the active broker, a standby serves ----------
phase_takeover() {
	local d x y k t0 t1 took all=()

	say "takeover: $TAKEOVER_N SIGKILLs of the active resbusd (PostgreSQL store)"
	URL=$(vhost takeover)
	D=$(phase_dir takeover "$(pgdb takeover)" "$URL")
	cat >"$D/etc/pools.yaml" <<-'EOF2'
	bench:
	  max: 20
	  max_prealloc: 5
	  max_starting: 5
	  cmd_new: "echo x"
	  cmd_delete: "true"
	  tags: [fast]
	EOF2
	declare -A pids=()
	# start_pair_broker X: resbusd X with its own output file.
	start_pair_broker() {
		echo "===== resbusd $1 $(date +%T)" >>"$D/broker-$1.out"
		"$B/resbusd" --config-dir "$D/etc" </dev/null \
		    >>"$D/broker-$1.out" 2>&1 &
		pids[$1]=$!
	}
	# in_run X PATTERN: X's current run logged PATTERN.
	in_run() {
		awk -v p="$2" '/^===== resbusd/ { a = 0 } $0 ~ p { a = 1 }
		    END { exit !a }' "$D/broker-$1.out" 2>/dev/null
	}
	start_pair_broker a
	wait_for "resbusd a to lead" 120 in_run a 'active: this resbusd'
	wait_for "resbusd a to consume" 120 broker_consuming bench-takeover
	start_pair_broker b
	wait_for "resbusd b to wait as a standby" 60 in_run b 'standby: '
	start_worker "$D" 16
	"$RBBENCH" take "$URL" fast 60 >/dev/null || die "take before the kills"
	x=a
	for ((k = 0; k < TAKEOVER_N; k++)); do
		y=$([ "$x" = a ] && echo b || echo a)
		t0=$(date +%s%N)
		kill -KILL "${pids[$x]}"
		wait "${pids[$x]}" 2>/dev/null || true
		t1=$("$RBBENCH" take "$URL" fast 120) || die "take after kill $k"
		took=$(calc "($t1 - $t0) / 1e9" | xargs printf '%.2f')
		all+=("$took")
		say "kill $((k + 1)): resbusd $y serves ${took}s after the SIGKILL of $x"
		in_run "$y" 'active: this resbusd' ||
		    die "resbusd $y served without logging that it leads"
		start_pair_broker "$x"
		wait_for "resbusd $x to wait as a standby" 60 in_run "$x" 'standby: '
		x=$y
	done
	stop_workers
	for x in a b; do
		stop_pid "${pids[$x]}"
	done
	TO_P50=$(printf '%s\n' "${all[@]}" | sort -n |
	    awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
	TO_MAX=$(printf '%s\n' "${all[@]}" | sort -n | tail -n 1)
	row "takeover after SIGKILL p50 / max ($TAKEOVER_N)" "$TO_P50 / $TO_MAX s" \
	    "-" "-" "max <= 5 s" "$(verdict "$TO_MAX" '<=' 5)"
}

# ---- one node against a 3-node cluster with quorum queues ----------------
phase_cluster() {
	local mode url wurl curl ports extra

	say "3-node RabbitMQ cluster in $W/svc"
	bash "$S/scripts/rabbitmq.sh" cluster-start "$W/svc" 3 \
	    >"$W/rabbitmq-cluster.out" 2>&1 ||
	    { cat "$W/rabbitmq-cluster.out" >&2; die "no RabbitMQ cluster"; }
	CLUSTER_UP=1
	# shellcheck source=/dev/null
	. "$W/svc/rabbitmq-cluster/env"
	read -r -a ports <<<"$RESBUS_TEST_AMQP_PORTS"
	local cnode=${RESBUS_TEST_RABBITMQ_NODES%% *}
	for mode in single cluster; do
		if [ "$mode" = single ]; then
			URL=$(vhost "cl-$mode")
			url=$URL wurl=$URL curl=$URL extra=
		else
			timeout -k 5 60 rabbitmqctl -n "$cnode" add_vhost bench-cl-cluster \
			    >/dev/null
			timeout -k 5 60 rabbitmqctl -n "$cnode" set_permissions \
			    -p bench-cl-cluster guest '.*' '.*' '.*' >/dev/null
			# resbusd node 1 first, the worker node 2 first, the
			# clients on node 3: the messages cross nodes.
			local u1=amqp://guest:guest@127.0.0.1:${ports[0]}/bench-cl-cluster
			local u2=amqp://guest:guest@127.0.0.1:${ports[1]}/bench-cl-cluster
			local u3=amqp://guest:guest@127.0.0.1:${ports[2]}/bench-cl-cluster
			url=$u1,$u2,$u3 wurl=$u2,$u3,$u1 curl=$u3 extra='queue_type: quorum'
			export RESBUS_QUEUE_TYPE=quorum
		fi
		say "$mode: ticket -> READY ($CLUSTER_READY_N) and cycles (${CYCLE_S}s)"
		D=$(phase_dir "cl-$mode" "sqlite:///$W/cl-$mode/db/resbus.sqlite" "$url")
		[ -z "$extra" ] || echo "$extra" >>"$D/etc/server.yaml"
		cat >"$D/etc/pools.yaml" <<-'EOF2'
	bench:
	  max: 96
	  max_prealloc: 48
	  max_starting: 48
	  cmd_new: "echo x"
	  cmd_delete: "true"
	  tags: [fast]
	EOF2
		echo "===== resbusd $(date +%T)" >>"$D/broker.out"
		"$B/resbusd" --config-dir "$D/etc" </dev/null >>"$D/broker.out" 2>&1 &
		BROKER_PID=$!
		if [ "$mode" = single ]; then
			wait_for "resbusd to consume" 120 broker_consuming "bench-cl-$mode"
		else
			wait_for "resbusd to consume" 120 cluster_consuming "$cnode"
		fi
		echo "===== resbus-worker $(date +%T)" >>"$D/worker.out"
		"$B/resbus-worker" --config-dir "$D/etc" --amqp-url "$wurl" \
		    --concurrency 128 </dev/null >>"$D/worker.out" 2>&1 &
		WORKER_PIDS+=("$!")
		wait_for "48 free resources" 60 ups_at_least "$D" 48
		read -r R_P50 _ R_P99 _ < <("$RBBENCH" ready "$curl" fast \
		    "$CLUSTER_READY_N") || die "ready ($mode)"
		read -r C_RATE C_N _ _ _ < <("$RBBENCH" cycles "$curl" fast \
		    "$CLIENTS" "$CYCLE_S") || die "cycles ($mode)"
		stop_daemons
		say "$mode: READY p50 ${R_P50}us p99 ${R_P99}us, $C_RATE cycles/s ($C_N)"
		if [ "$mode" = single ]; then
			S_P50=$R_P50 S_P99=$R_P99 S_RATE=$C_RATE
			row "ticket -> READY p50 / p99, 1 node, classic" \
			    "$R_P50 / $R_P99 us" "-" "-" "-" "-"
			row "cycles/s, $CLIENTS clients, 1 node, classic" "$C_RATE" \
			    "-" "-" "-" "-"
		else
			row "ticket -> READY p50 / p99, 3 nodes, quorum" \
			    "$R_P50 / $R_P99 us" "1 node: $S_P50 / $S_P99 us" \
			    "$(calc "$R_P50 / $S_P50" | xargs printf '%.2fx') p50" "-" "-"
			row "cycles/s, $CLIENTS clients, 3 nodes, quorum" "$C_RATE" \
			    "1 node: $S_RATE" \
			    "$(calc "$C_RATE / $S_RATE" | xargs printf '%.2fx')" "-" "-"
		fi
	done
}

# Consumers on resbus.request of the cluster's vhost (asked on node $1).
cluster_consuming() {
	timeout -k 5 60 rabbitmqctl -n "$1" list_queues -p bench-cl-cluster \
	    -s name consumers 2>/dev/null |
	    awk '$1 == "resbus.request" && $2 > 0 { found = 1 } END { exit !found }'
}

for phase in ready cycles sched memory worker takeover cluster; do
	if want "$phase"; then
		"phase_$phase"
	fi
done

say "done in $(($(date +%s) - T_START))s"
print_table
