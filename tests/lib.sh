# Framework for the scenario tests (sourced, bash).
#
# A scenario test starts with
#
#   [ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
#   . "${RESBUS_SRCDIR:?run via make check}/tests/lib.sh"
#   rb_setup NAME
#   rb_pools <<'EOF'
#   ...pools.yaml, with @DRIVERDIR@ and @STATEDIR@ substituted...
#   EOF
#
# and then starts resbusd and resbus-worker, drives the `resbus` CLI and
# checks what happens: on the bus (rb_queues), in the local driver's
# resource directories (rb_local_resources) and in the logs.  It ends with
# rb_done.  Any failed check calls rb_fail, which prints the message and
# the daemons' logs and exits 1; the exit trap stops every process the test
# started and deletes its RabbitMQ vhost.
#
# The tests need the private RabbitMQ that scripts/test.sh starts:
# RESBUS_TEST_AMQP_PORT and RESBUS_TEST_RABBITMQ_NODE must be set.  Each
# test gets a vhost of its own on it, so tests run in parallel.  Binaries
# come from $RESBUS_BUILDDIR, drivers from $RESBUS_SRCDIR/drivers/local.
# Every `resbus` call runs under timeout(1), and a watchdog ends a test
# that runs longer than RB_TEST_TIMEOUT seconds (default 300).
#
# No fixed sleeps: a test waits for what it needs with rb_wait_for (which
# returns as soon as it holds, so its deadline can be generous), and
# shows that something does not happen for a time with rb_hold_for (the
# window is the assertion).  Time that passes inside a fixture, such as
# a cmd_new that boots for 5 s, is the scenario itself.
# shellcheck shell=bash
# (Optional arguments of the rb_start_*/rb_stop_* functions.)
# shellcheck disable=SC2119,SC2120

RB_NAME=
RB_TMP=
RB_VHOST=
RB_PG_DB=
RB_USERS=()
RB_FAILED=
RB_DONE=
RB_BROKER_PID=
RB_WORKER_PID=
RB_WATCHDOG_PID=
RB_BG_PIDS=()
RB_START=$(date +%s)

# ---- messages and checks ---------------------------------------------------

rb_log() {
	echo "[$RB_NAME +$(($(date +%s) - RB_START))s] $*" >&2
}

rb_dump_logs() {
	local f
	[ -n "$RB_TMP" ] && [ -d "$RB_TMP" ] || return 0
	for f in "$RB_TMP"/resbusd.out "$RB_TMP"/worker.out; do
		if [ -s "$f" ]; then
			echo "----- $f (last 150 lines) -----" >&2
			tail -n 150 "$f" >&2
		fi
	done
	if [ -d "$RB_TMP/logs/hooks" ]; then
		for f in "$RB_TMP"/logs/hooks/*; do
			[ -f "$f" ] || continue
			echo "----- $f (last 20 lines) -----" >&2
			tail -n 20 "$f" >&2
		done
	fi
	if [ -d "$RB_TMP/local" ]; then
		echo "----- local driver resources: $(rb_local_resources | tr '\n' ' ')" >&2
	fi
	echo "----- test files kept in $RB_TMP" >&2
}

# Says so if daemon NAME (PID) has died under the test.
rb_note_dead() {
	local rc
	if [ -n "$2" ] && ! rb_alive "$2"; then
		wait "$2" 2>/dev/null
		rc=$?
		echo "FAIL: ${RB_NAME:-test}: (note: $1 had died, exit status $rc)" >&2
	fi
}

# Fails the test with MSG: prints it and the logs, exits 1.
rb_fail() {
	if [ -n "$RB_FAILED" ]; then
		exit 1
	fi
	RB_FAILED=1
	echo "FAIL: ${RB_NAME:-test}: $*" >&2
	rb_note_dead resbusd "$RB_BROKER_PID"
	rb_note_dead resbus-worker "$RB_WORKER_PID"
	rb_dump_logs
	exit 1
}

rb_assert_eq() {
	# EXPECTED ACTUAL [WHAT]
	if [ "$1" != "$2" ]; then
		rb_fail "${3:-value}: expected '$1', got '$2'"
	fi
}

rb_assert_match() {
	# EXTENDED_REGEX TEXT [WHAT]
	if ! printf '%s\n' "$2" | grep -Eq -- "$1"; then
		rb_fail "${3:-text}: '$2' does not match /$1/"
	fi
}

rb_assert_no_match() {
	# EXTENDED_REGEX TEXT [WHAT]
	if printf '%s\n' "$2" | grep -Eq -- "$1"; then
		rb_fail "${3:-text}: '$2' matches /$1/"
	fi
}

# Whether process PID runs (and is not a zombie of ours).
rb_alive() {
	local st
	[ -n "$1" ] || return 1
	kill -0 "$1" 2>/dev/null || return 1
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	case $st in Z*) return 1 ;; esac
	return 0
}

rb_dead() {
	! rb_alive "$1"
}

# Fails if a daemon the test started has died on its own.
rb_check_daemons() {
	if [ -n "$RB_BROKER_PID" ] && ! rb_alive "$RB_BROKER_PID"; then
		wait "$RB_BROKER_PID" 2>/dev/null
		local rc=$?
		RB_BROKER_PID=
		rb_fail "resbusd died (exit status $rc)"
	fi
	if [ -n "$RB_WORKER_PID" ] && ! rb_alive "$RB_WORKER_PID"; then
		wait "$RB_WORKER_PID" 2>/dev/null
		local rc=$?
		RB_WORKER_PID=
		rb_fail "resbus-worker died (exit status $rc)"
	fi
}

# Microseconds since the epoch (bash's EPOCHREALTIME, no fork).
rb_now_us() {
	echo "${EPOCHREALTIME/[.,]/}"
}

# rb_us SECONDS: SECONDS (a decimal number such as 2 or 1.5) in
# microseconds.
rb_us() {
	local i=${1%%.*} f=
	[ "$i" = "$1" ] || f=${1#*.}
	f=${f}000000
	echo $((${i:-0} * 1000000 + 10#${f:0:6}))
}

# rb_until TIMEOUT_S CMD...: runs CMD every RB_WAIT_INTERVAL (default
# 0.2) seconds until it succeeds (status 0) or TIMEOUT_S (may have a
# fraction) pass (status 1).  CMD runs at least once, and once more at
# the deadline.  Does not fail the test: for loops that must not.
rb_until() {
	local deadline
	deadline=$(($(rb_now_us) + $(rb_us "$1")))
	shift
	while :; do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		[ "$(rb_now_us)" -lt "$deadline" ] || return 1
		sleep "${RB_WAIT_INTERVAL:-0.2}"
	done
}

# rb_wait_for DESC TIMEOUT_S CMD...: runs CMD every RB_WAIT_INTERVAL
# (default 0.2) seconds until it succeeds; fails the test with DESC when
# TIMEOUT_S pass first, or when a daemon the test started dies.  Returns
# as soon as CMD succeeds: be generous with TIMEOUT_S.
rb_wait_for() {
	local desc=$1 timeout=$2 deadline
	shift 2
	deadline=$(($(rb_now_us) + $(rb_us "$timeout")))
	while :; do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		rb_check_daemons
		if [ "$(rb_now_us)" -ge "$deadline" ]; then
			rb_fail "timed out after ${timeout}s waiting for $desc"
		fi
		sleep "${RB_WAIT_INTERVAL:-0.2}"
	done
}

# rb_hold_for DESC SECONDS CMD...: asserts that something does NOT
# change for a time: CMD must succeed every RB_WAIT_INTERVAL (default
# 0.2) seconds from now until SECONDS (may have a fraction) have passed,
# and once more after that; fails the test with DESC the first time it
# does not (with the last lines CMD printed), or when a daemon the test
# started dies.  The window is the assertion itself ("ticket 5 stays
# OPEN for 3 s"), so it always lasts SECONDS: use rb_wait_for to wait
# for something to happen.
rb_hold_for() {
	local desc=$1 secs=$2 start end now said step left
	shift 2
	start=$(rb_now_us)
	end=$((start + $(rb_us "$secs")))
	step=$(rb_us "${RB_WAIT_INTERVAL:-0.2}")
	while :; do
		now=$(rb_now_us)
		if ! "$@" >"$RB_TMP/hold.out" 2>&1; then
			said=$(tail -n 3 "$RB_TMP/hold.out" | paste -sd ' ')
			rb_fail "$desc: no longer so after" \
			    "$(((now - start) / 1000)) ms of the ${secs}s it must hold" \
			    "(check: $*${said:+; it said: $said})"
		fi
		rb_check_daemons
		[ "$now" -lt "$end" ] || return 0
		# The last check comes as the window ends, not an interval later.
		left=$((end - $(rb_now_us)))
		[ "$left" -lt "$step" ] || left=$step
		[ "$left" -gt 0 ] || left=0
		sleep "$((left / 1000000)).$(printf '%06d' $((left % 1000000)))"
	done
}

# ---- set-up and tear-down --------------------------------------------------

rb_urlencode() {
	local s=$1 out='' c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[a-zA-Z0-9._~-]) out+=$c ;;
		*) out+=$(printf '%%%02X' "'$c") ;;
		esac
	done
	printf '%s\n' "$out"
}

rb_ctl() {
	timeout -k 5 60 rabbitmqctl -n "$RESBUS_TEST_RABBITMQ_NODE" "$@"
}

# rb_setup NAME: environment, vhost, configuration directory, traps.
rb_setup() {
	RB_NAME=$1
	if [ -z "${RESBUS_TEST_AMQP_PORT:-}" ] ||
	    [ -z "${RESBUS_TEST_RABBITMQ_NODE:-}" ]; then
		rb_fail "RESBUS_TEST_AMQP_PORT and RESBUS_TEST_RABBITMQ_NODE" \
		    "are not set: the scenario tests need the private RabbitMQ" \
		    "that scripts/test.sh starts; run the tests via" \
		    "'bash scripts/test.sh' (or source build/test-state/env" \
		    "from a running scripts/rabbitmq.sh before 'make check')"
	fi
	: "${RESBUS_BUILDDIR:?RESBUS_BUILDDIR is not set: run via make check}"
	: "${RESBUS_SRCDIR:?RESBUS_SRCDIR is not set: run via make check}"
	RB_RESBUSD=$RESBUS_BUILDDIR/resbusd
	RB_WORKER=$RESBUS_BUILDDIR/resbus-worker
	RB_RESBUS=$RESBUS_BUILDDIR/resbus
	RB_DRIVERDIR=$RESBUS_SRCDIR/drivers/local
	local b
	for b in "$RB_RESBUSD" "$RB_WORKER" "$RB_RESBUS"; do
		[ -x "$b" ] || rb_fail "$b is missing: build it first"
	done

	trap rb_cleanup EXIT
	trap 'rb_fail "interrupted"' INT
	trap 'rb_fail "killed by the watchdog after ${RB_TEST_TIMEOUT:-300}s, or by SIGTERM"' TERM

	RB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/resbus-test-$RB_NAME.XXXXXX") ||
	    rb_fail "mktemp failed"
	RB_CONF=$RB_TMP/etc
	RB_LOGDIR=$RB_TMP/logs
	mkdir -p "$RB_CONF" "$RB_LOGDIR" "$RB_TMP/local"
	export RESBUS_LOCAL_ROOT=$RB_TMP/local

	RB_VHOST="resbus-test/$RB_NAME-$$-$RANDOM"
	rb_ctl add_vhost "$RB_VHOST" >/dev/null ||
	    rb_fail "cannot add vhost $RB_VHOST on $RESBUS_TEST_RABBITMQ_NODE"
	rb_ctl set_permissions -p "$RB_VHOST" guest '.*' '.*' '.*' >/dev/null ||
	    rb_fail "cannot set permissions on vhost $RB_VHOST"
	RB_AMQP_URL="amqp://guest:guest@127.0.0.1:$RESBUS_TEST_AMQP_PORT/$(rb_urlencode "$RB_VHOST")"
	export RESBUS_AMQP_URL=$RB_AMQP_URL
	# The tests must not pick up another configuration.
	unset CONFIG_DIR

	RB_DB_URL="sqlite:///$RB_TMP/db.sqlite"
	rb_server_yaml
	: >"$RB_CONF/pools.yaml"

	# (A killed sleep does not fire the watchdog: see rb_cleanup.)
	(
		sleep "${RB_TEST_TIMEOUT:-300}" && kill -TERM $$ 2>/dev/null
	) >/dev/null 2>&1 &
	RB_WATCHDOG_PID=$!
	rb_log "vhost $RB_VHOST, files in $RB_TMP"
}

# (Re)writes server.yaml: RB_DB_URL, the test's log directory and vhost,
# and any further YAML lines in RB_SERVER_EXTRA.
# The status pages are off unless RB_SERVER_EXTRA sets http_listen:
# tests run in parallel and would all want the default port.
rb_server_yaml() {
	local http='http_listen: "off"'
	case "${RB_SERVER_EXTRA:-}" in
	*http_listen:*) http='' ;;
	esac
	cat >"$RB_CONF/server.yaml" <<EOF
db_url: "$RB_DB_URL"
logdir: "$RB_LOGDIR"
loglevel: debug
amqp_url: "$RB_AMQP_URL"
$http
${RB_SERVER_EXTRA:-}
EOF
}

# rb_add_user NAME PASSWORD: a RabbitMQ user (node-wide, so NAME should
# be unique to the test run) with every permission on the test's vhost;
# deleted at clean-up.
rb_add_user() {
	rb_ctl add_user "$1" "$2" >/dev/null ||
	    rb_fail "cannot add RabbitMQ user $1"
	RB_USERS+=("$1")
	rb_ctl set_permissions -p "$RB_VHOST" "$1" '.*' '.*' '.*' >/dev/null ||
	    rb_fail "cannot set permissions of $1 on vhost $RB_VHOST"
}

# rb_use_postgres: a fresh database on the private PostgreSQL that
# scripts/test.sh starts, as the broker's store (server.yaml's db_url is
# rewritten; call it before rb_start_broker).  Dropped at clean-up.
rb_use_postgres() {
	if [ -z "${RESBUS_TEST_PG_HOST:-}" ] || [ -z "${RESBUS_TEST_PG_PORT:-}" ]; then
		rb_fail "RESBUS_TEST_PG_HOST and RESBUS_TEST_PG_PORT are not set:" \
		    "run the tests via 'bash scripts/test.sh'"
	fi
	RB_PG_DB="resbus_test_${RB_NAME//[^a-zA-Z0-9]/_}_$$_$RANDOM"
	rb_psql postgres -c "CREATE DATABASE $RB_PG_DB" >/dev/null ||
	    rb_fail "cannot create database $RB_PG_DB"
	RB_DB_URL="postgresql://${RESBUS_TEST_PG_USER:-resbus}@/$RB_PG_DB?host=$RESBUS_TEST_PG_HOST&port=$RESBUS_TEST_PG_PORT"
	rb_server_yaml
	rb_log "store: $RB_DB_URL"
}

# rb_psql DB ARGS...: psql on the private PostgreSQL.
rb_psql() {
	local db=$1
	shift
	timeout -k 5 60 psql -X -q -v ON_ERROR_STOP=1 -h "$RESBUS_TEST_PG_HOST" \
	    -p "$RESBUS_TEST_PG_PORT" -U "${RESBUS_TEST_PG_USER:-resbus}" \
	    -d "$db" "$@"
}

# rb_pools < TEXT: writes pools.yaml, with @DRIVERDIR@ replaced by the
# local driver's directory and @STATEDIR@ by the test's directory.
rb_pools() {
	sed -e "s|@DRIVERDIR@|$RB_DRIVERDIR|g" -e "s|@STATEDIR@|$RB_TMP|g" \
	    >"$RB_CONF/pools.yaml"
}

# Remembers a background PID so that the cleanup ends it.
rb_track() {
	RB_BG_PIDS+=("$1")
}

rb_kill() {
	local pid=$1
	rb_alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null
	RB_WAIT_INTERVAL=0.1 rb_until 5 rb_dead "$pid" && return 0
	kill -KILL "$pid" 2>/dev/null
}

rb_sanitizer_reports() {
	grep -l -E 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' \
	    "$RB_TMP"/*.out 2>/dev/null
}

rb_cleanup() {
	local rc=$? pid u
	trap - EXIT INT TERM
	if [ -n "$RB_WATCHDOG_PID" ]; then
		pkill -P "$RB_WATCHDOG_PID" 2>/dev/null
		kill "$RB_WATCHDOG_PID" 2>/dev/null
	fi
	for pid in "${RB_BG_PIDS[@]}" "$RB_WORKER_PID" "$RB_BROKER_PID"; do
		[ -n "$pid" ] && rb_kill "$pid"
	done
	if [ -n "$RB_VHOST" ]; then
		rb_ctl delete_vhost "$RB_VHOST" >/dev/null 2>&1
	fi
	for u in "${RB_USERS[@]}"; do
		rb_ctl delete_user "$u" >/dev/null 2>&1
	done
	if [ -n "$RB_PG_DB" ]; then
		rb_psql postgres -c "DROP DATABASE IF EXISTS $RB_PG_DB" >/dev/null 2>&1
	fi
	if [ "$rc" -eq 0 ] && [ -n "$RB_TMP" ] && rb_sanitizer_reports >/dev/null; then
		echo "FAIL: $RB_NAME: sanitizer reports in" \
		    "$(rb_sanitizer_reports | tr '\n' ' ')" >&2
		RB_FAILED=
		rb_fail "sanitizer reports (see above)"
	fi
	if [ "$rc" -eq 0 ] && [ -z "$RB_DONE" ] && [ -z "$RB_FAILED" ]; then
		echo "FAIL: $RB_NAME: the test ended without rb_done" >&2
		rc=1
	fi
	if [ "$rc" -eq 0 ] && [ -n "$RB_TMP" ]; then
		rm -rf "$RB_TMP"
	fi
	exit "$rc"
}

# Ends a passing test: stops the daemons, checking they exit cleanly.
rb_done() {
	if [ -n "$RB_WORKER_PID" ]; then
		rb_stop_worker
	fi
	if [ -n "$RB_BROKER_PID" ]; then
		rb_stop_broker
	fi
	RB_DONE=1
	rb_log "PASS"
	exit 0
}

# ---- the daemons -----------------------------------------------------------

# Consumers on queue $1 of the test's vhost (empty if no such queue).
rb_consumers() {
	rb_ctl list_queues -p "$RB_VHOST" -s name consumers 2>/dev/null |
	    awk -v q="$1" '$1 == q { print $2 }'
}

rb_broker_consuming() {
	local n
	n=$(rb_consumers resbus.request)
	[ -n "$n" ] && [ "$n" -gt 0 ]
}

# Starts resbusd (extra ARGS passed on) and waits until it consumes its
# request queue.
rb_start_broker() {
	[ -z "$RB_BROKER_PID" ] || rb_fail "rb_start_broker: resbusd already runs"
	rb_log "starting resbusd"
	echo "===== resbusd $* ($(date +%T))" >>"$RB_TMP/resbusd.out"
	"$RB_RESBUSD" --config-dir "$RB_CONF" "$@" \
	    </dev/null >>"$RB_TMP/resbusd.out" 2>&1 &
	RB_BROKER_PID=$!
	# rabbitmqctl costs a second of CPU: ask it once a second.
	RB_WAIT_INTERVAL=1 rb_wait_for "resbusd to consume resbus.request" 60 \
	    rb_broker_consuming
}

# Stops resbusd: SIGTERM (it must then exit 0 within 20 s), or with -9
# SIGKILL, as in a crash.
rb_stop_broker() {
	rb_stop_daemon resbusd RB_BROKER_PID "${1:-}"
}

# Starts resbus-worker (extra ARGS passed on) for the test's configuration.
rb_start_worker() {
	[ -z "$RB_WORKER_PID" ] || rb_fail "rb_start_worker: resbus-worker already runs"
	rb_log "starting resbus-worker"
	echo "===== resbus-worker $* ($(date +%T))" >>"$RB_TMP/worker.out"
	"$RB_WORKER" --config-dir "$RB_CONF" "$@" \
	    </dev/null >>"$RB_TMP/worker.out" 2>&1 &
	RB_WORKER_PID=$!
	# One that refuses its configuration exits at once.
	RB_WAIT_INTERVAL=0.1 rb_hold_for "resbus-worker to keep running once started" \
	    0.3 rb_alive "$RB_WORKER_PID"
}

rb_stop_worker() {
	rb_stop_daemon resbus-worker RB_WORKER_PID "${1:-}"
}

rb_stop_daemon() {
	local name=$1 var=$2 how=$3 pid rc
	pid=${!var}
	[ -n "$pid" ] || rb_fail "rb_stop: $name does not run"
	rb_check_daemons
	printf -v "$var" '%s' ''
	if [ "$how" = -9 ]; then
		rb_log "killing $name (SIGKILL)"
		kill -KILL "$pid"
		wait "$pid" 2>/dev/null
		return 0
	fi
	rb_log "stopping $name (SIGTERM)"
	kill -TERM "$pid"
	if ! RB_WAIT_INTERVAL=0.1 rb_until 20 rb_dead "$pid"; then
		kill -KILL "$pid"
		wait "$pid" 2>/dev/null
		rb_fail "$name did not exit within 20 s of SIGTERM"
	fi
	wait "$pid" 2>/dev/null
	rc=$?
	if [ "$rc" -ne 0 ]; then
		rb_fail "$name exited with status $rc after SIGTERM (expected 0)"
	fi
}

# ---- the bus, the CLI and the local driver ---------------------------------

# Names of the queues in the test's vhost, one a line.
rb_queues() {
	rb_ctl list_queues -p "$RB_VHOST" -s name | sort
}

# Runs the resbus CLI under a time limit (RB_CMD_TIMEOUT, default 120 s;
# exit status 124 when it runs out).
rb_resbus() {
	timeout -k 5 "${RB_CMD_TIMEOUT:-120}" "$RB_RESBUS" "$@"
}

# The local driver's resources (directory names), sorted, one a line.
rb_local_resources() {
	find "$RESBUS_LOCAL_ROOT" -mindepth 1 -maxdepth 1 -type d \
	    -printf '%f\n' 2>/dev/null | sort
}

rb_local_count() {
	rb_local_resources | wc -l
}

rb_local_count_is() {
	[ "$(rb_local_count)" -eq "$1" ]
}

rb_local_exists() {
	[ -d "$RESBUS_LOCAL_ROOT/$1" ]
}

rb_local_gone() {
	[ ! -e "$RESBUS_LOCAL_ROOT/$1" ]
}

# A TCP port on 127.0.0.1 that nothing listens on.
rb_closed_port() {
	local p
	# Below the kernel's ephemeral range (32768 and up here), so that no
	# outgoing connection of a test running beside this one takes the
	# port between this check and the bind; no socket of any state on it.
	for ((p = 21000 + RANDOM % 2000; p < 24000; p++)); do
		if [ -z "$(ss -Htan "sport = :$p" 2>/dev/null)" ]; then
			echo "$p"
			return 0
		fi
	done
	rb_fail "no closed port found"
}

# rb_per_store NAME [STORE]: without STORE, runs the calling test script
# once per store (sqlite, postgresql) and exits with the combined status;
# with STORE, sets the test up (rb_setup NAME-STORE) on that store.
rb_per_store() {
	local name=$1 store=${2:-} rc=0 s
	if [ -z "$store" ]; then
		for s in sqlite postgresql; do
			bash "$0" "$s" || {
				echo "FAIL: $name failed on the $s store" >&2
				rc=1
			}
		done
		exit "$rc"
	fi
	rb_setup "$name-$store"
	case $store in
	sqlite) ;;
	postgresql) rb_use_postgres ;;
	*) rb_fail "unknown store '$store'" ;;
	esac
}
