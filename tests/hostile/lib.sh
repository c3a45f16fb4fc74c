# Helpers of the hostile tests (tests/hostile/*.sh), sourced after
# tests/lib.sh (bash).
#
# A hostile test plays a bus user that means harm, or is merely broken,
# against a resbus set up the way README's "RabbitMQ permissions" says.
# It starts with
#
#   . "$RESBUS_SRCDIR/tests/lib.sh"
#   . "$RESBUS_SRCDIR/tests/hostile/lib.sh"
#   rbh_setup NAME [sqlite|postgresql]
#   rb_pools <<'EOF' ... EOF
#   rbh_server_yaml [MORE YAML]
#   rbh_start      # resbusd, then resbus-worker
#
# rbh_setup makes RabbitMQ users on the test's vhost with the recipe's
# configure/write/read permissions: broker (resbusd's login), worker
# (resbus-worker's), admin (resbus-maint, in server.yaml's admins), the
# clients alice, bob and mallory, and tight (the tightest permissions a
# client works with).  Logins are unique to the run, since RabbitMQ users
# are node-wide: RBH_LOGIN[alice] is alice's.  Nobody but the test's own
# observer (guest, which rb_setup gives every permission, used only to
# look at queues) has more than the recipe.
#
# `rbh_as USER CMD...` runs CMD with RESBUS_AMQP_URL of USER;
# `rbh_resbus USER ARGS...` is the resbus CLI as USER, `rbh_maint USER
# ARGS...` resbus-maint, `rbh_amqp USER ARGS...` tests/hostile/amqp.py
# (a raw AMQP client that publishes hand-made messages).
# shellcheck shell=bash
# (The RBH_PERMS_* arrays are read by name; rbh_* take optional arguments.)
# shellcheck disable=SC2034,SC2119,SC2120,SC2153

# ---- the permissions recipe (README.md, resbusd(8)) -----------------------
# configure, write, read regexes per role.  Keep in step with the docs.
#
# A client declares server-named queues (amq.gen-*) for replies and
# events, publishes tickets to resbus.ticket and requests to the default
# exchange (amq.default), and binds its event queue to resbus.event.
RBH_PERMS_client=(
	'^amq\.gen-.*'
	'^(amq\.gen-.*|amq\.default|resbus\.ticket)$'
	'^(amq\.gen-.*|resbus\.event)$'
)
# resbus-maint talks to resbus.control the way a client talks to
# resbus.request: an admin is a client that server.yaml names in admins.
RBH_PERMS_admin=("${RBH_PERMS_client[@]}")
# The tightest client: the client recipe; nothing in it can go.
RBH_PERMS_tight=("${RBH_PERMS_client[@]}")
# A worker declares and consumes its pools' queues and binds them to
# resbus.job, binds a server-named queue to resbus.event for cancel.<pool>,
# publishes results to resbus.event and jobs it refuses to resbus.dead.
# No write on amq.default: it answers nobody directly.
RBH_PERMS_worker=(
	'^(amq\.gen-.*|resbus\.pool\..*)$'
	'^(amq\.gen-.*|resbus\.pool\..*|resbus\.event|resbus\.dead)$'
	'^(amq\.gen-.*|resbus\.pool\..*|resbus\.event|resbus\.job)$'
)
# resbusd declares, binds, consumes and deletes everything under resbus.,
# answers clients through the default exchange, and publishes its
# notifications on amq.topic (server.yaml's notify_exchange).
RBH_PERMS_broker=(
	'^resbus\..*'
	'^(resbus\..*|amq\.default|amq\.topic)$'
	'^resbus\..*'
)

declare -A RBH_LOGIN=()
declare -A RBH_URL=()
declare -A RBH_PW=()
RBH_ROLES=(broker worker admin alice bob mallory tight)
RBH_BROKER_PID0=
RBH_WORKER_YAML=

# The Python that has pika (Debian's python3-pika); the first python3
# in PATH may be another one.
rbh_python() {
	local p
	for p in /usr/bin/python3 python3; do
		if "$p" -c 'import pika' >/dev/null 2>&1; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# rbh_user NAME ROLE: a RabbitMQ user for NAME with ROLE's permissions
# (run in the background by rbh_setup: rabbitmqctl takes a second).
rbh_user() {
	local name=$1 role=$2 perms
	perms="RBH_PERMS_${role}[@]"
	rb_ctl add_user "${RBH_LOGIN[$name]}" "${RBH_PW[$name]}" >/dev/null ||
	    { echo "cannot add RabbitMQ user ${RBH_LOGIN[$name]}" >&2; return 1; }
	rb_ctl set_permissions -p "$RB_VHOST" "${RBH_LOGIN[$name]}" \
	    "${!perms}" >/dev/null ||
	    { echo "cannot set permissions of ${RBH_LOGIN[$name]}" >&2; return 1; }
}

# rbh_setup NAME [STORE]: rb_setup NAME (NAME-STORE with a store), the
# users of the recipe, and server.yaml with the broker's login.
rbh_setup() {
	local name=$1 store=${2:-}
	rb_setup "$name${store:+-$store}"
	case $store in
	'' | sqlite) ;;
	postgresql) rb_use_postgres ;;
	*) rb_fail "unknown store '$store'" ;;
	esac
	RB_MAINT=$RESBUS_BUILDDIR/resbus-maint
	[ -x "$RB_MAINT" ] || rb_fail "$RB_MAINT is missing: build it first"
	RBH_PY=$(rbh_python) ||
	    rb_fail "no python3 with pika: install python3-pika (scripts/deps.sh)"
	RBH_AMQP=$RESBUS_SRCDIR/tests/hostile/amqp.py
	local name role pids=() pid
	for name in "${RBH_ROLES[@]}"; do
		RBH_LOGIN[$name]="$name-${RB_VHOST##*/}"
		RBH_PW[$name]="pw-$name-$RANDOM$RANDOM"
		RBH_URL[$name]="amqp://$(rb_urlencode "${RBH_LOGIN[$name]}"):${RBH_PW[$name]}@127.0.0.1:$RESBUS_TEST_AMQP_PORT/$(rb_urlencode "$RB_VHOST")"
		RB_USERS+=("${RBH_LOGIN[$name]}")
		case $name in
		alice | bob | mallory) role=client ;;
		*) role=$name ;;
		esac
		rbh_user "$name" "$role" &
		pids+=($!)
	done
	for pid in "${pids[@]}"; do
		wait "$pid" || rb_fail "cannot set up the recipe's users"
	done
	# Every daemon and CLI call names its user: resbusd and the worker
	# by their configuration, the CLI by --amqp-url.
	RB_AMQP_URL=${RBH_URL[broker]}
	unset RESBUS_AMQP_URL
	RBH_GUEST_URL="amqp://guest:guest@127.0.0.1:$RESBUS_TEST_AMQP_PORT/$(rb_urlencode "$RB_VHOST")"
	rbh_server_yaml
}

# rbh_server_yaml [YAML]: server.yaml with the broker's login, workers:
# and admins: of the recipe's users, and YAML.
rbh_server_yaml() {
	RB_SERVER_EXTRA="workers: [\"${RBH_LOGIN[worker]}\"]
admins: [\"${RBH_LOGIN[admin]}\"]
${1:-}"
	rb_server_yaml
}

# rbh_start_worker: resbus-worker with a worker.yaml of its own: the
# worker's login, the test's pools.yaml, broker_users: the broker's login.
rbh_start_worker() {
	RBH_WORKER_YAML=$RB_CONF/worker.yaml
	cat >"$RBH_WORKER_YAML" <<EOF
amqp_url: "${RBH_URL[worker]}"
pools_file: pools.yaml
logdir: "$RB_LOGDIR"
broker_users: ["${RBH_LOGIN[broker]}"]
EOF
	[ -z "$RB_WORKER_PID" ] || rb_fail "rbh_start_worker: resbus-worker already runs"
	rb_log "starting resbus-worker as ${RBH_LOGIN[worker]}"
	echo "===== resbus-worker --config $RBH_WORKER_YAML ($(date +%T))" \
	    >>"$RB_TMP/worker.out"
	"$RB_WORKER" --config "$RBH_WORKER_YAML" "$@" \
	    </dev/null >>"$RB_TMP/worker.out" 2>&1 &
	RB_WORKER_PID=$!
	# One that refuses its configuration exits at once.
	RB_WAIT_INTERVAL=0.1 rb_hold_for "resbus-worker to keep running once started" \
	    0.3 rb_alive "$RB_WORKER_PID"
}

# rbh_start_broker: resbusd, its PID remembered for rbh_same_broker.
rbh_start_broker() {
	rb_start_broker "$@"
	RBH_BROKER_PID0=$RB_BROKER_PID
}

# rbh_start: resbusd first (it declares the topology that the worker's
# recipe may only use), then the worker.
rbh_start() {
	rbh_start_broker
	rbh_start_worker
}

# rbh_same_broker: fails unless the resbusd started last still runs
# under the same PID (it did not exit or restart).
rbh_same_broker() {
	[ -n "$RBH_BROKER_PID0" ] || rb_fail "rbh_same_broker: resbusd not started"
	rb_check_daemons
	[ "$RB_BROKER_PID" = "$RBH_BROKER_PID0" ] ||
	    rb_fail "resbusd restarted: PID $RB_BROKER_PID, was $RBH_BROKER_PID0"
	rb_alive "$RBH_BROKER_PID0" || rb_fail "resbusd $RBH_BROKER_PID0 is gone"
	local n
	n=$(grep -c '^===== resbusd' "$RB_TMP/resbusd.out")
	[ "$n" -eq "${RBH_BROKER_STARTS:-1}" ] ||
	    rb_fail "resbusd was started $n times, expected ${RBH_BROKER_STARTS:-1}"
}

# ---- acting as a user -------------------------------------------------------

rbh_url() {
	[ -n "${RBH_URL[$1]:-}" ] || rb_fail "no user $1"
	printf '%s\n' "${RBH_URL[$1]}"
}

# rbh_as USER CMD...: CMD with RESBUS_AMQP_URL of USER.
rbh_as() {
	local url
	url=$(rbh_url "$1") || exit 1
	shift
	RESBUS_AMQP_URL=$url "$@"
}

rbh_resbus() {
	local url
	url=$(rbh_url "$1") || exit 1
	shift
	rb_resbus --amqp-url "$url" "$@"
}

rbh_maint() {
	local url
	url=$(rbh_url "$1") || exit 1
	shift
	timeout -k 5 60 "$RB_MAINT" --config-dir "$RB_CONF" --amqp-url "$url" "$@"
}

# rbh_amqp USER ARGS...: amqp.py as USER (see the top of amqp.py).
rbh_amqp() {
	local url
	if [ "$1" = guest ]; then
		url=$RBH_GUEST_URL
	else
		url=$(rbh_url "$1") || exit 1
	fi
	shift
	timeout -k 5 "${RB_CMD_TIMEOUT:-120}" "$RBH_PY" "$RBH_AMQP" "$url" "$@"
}

# rbh_take USER ARGS...: a ticket as USER; prints its ID.
rbh_take() {
	local who=$1 id
	shift
	id=$(rbh_resbus "$who" ticket "$@") ||
	    rb_fail "resbus ticket $* as $who failed ($?)"
	rb_assert_match '^[0-9]+$' "$id" "ticket id for $who"
	printf '%s\n' "$id"
}

# rbh_cycle USER ARGS...: a whole ticket cycle as USER (take with ARGS,
# wait, close); fails the test unless it completes within a minute.
rbh_cycle() {
	local who=$1 id data
	shift
	id=$(rbh_take "$who" "$@") || exit 1
	data=$(rbh_resbus "$who" ticket-wait "$id" --timeout 60) ||
	    rb_fail "ticket-wait $id as $who failed ($?)"
	rb_assert_match '^local:' "$data" "data of $who's ticket $id"
	rbh_resbus "$who" ticket-close "$id" ||
	    rb_fail "ticket-close $id as $who failed ($?)"
	rb_log "a ticket cycle as $who completed (ticket $id)"
}

# rbh_after_attack USER ARGS...: what every hostile test ends with: a
# normal ticket cycle by USER completes, and resbusd did not restart.
rbh_after_attack() {
	rbh_cycle "$@"
	rbh_same_broker
}

# ---- the dead-letter queue and the logs ------------------------------------

# Messages in queue $1 (empty if there is no such queue).
rbh_queue_len() {
	rb_ctl list_queues -p "$RB_VHOST" name messages 2>/dev/null |
	    awk -v q="$1" '$1 == q { print $2 }'
}

rbh_dead_count() {
	local n
	n=$(rbh_queue_len resbus.dead)
	echo "${n:-0}"
}

rbh_dead_count_ge() {
	[ "$(rbh_dead_count)" -ge "$1" ]
}

# What resbus.dead holds, decoded (amqp.py peek; left in the queue).
rbh_dead_peek() {
	rbh_amqp guest peek resbus.dead
}

# rbh_wait_dead N WHAT: waits until resbus.dead holds at least N messages.
rbh_wait_dead() {
	RB_WAIT_INTERVAL=1 rb_wait_for "$2 in resbus.dead" 30 rbh_dead_count_ge "$1"
}

# Lines of resbusd's output (every start) matching extended regex $1.
rbh_log_count() {
	grep -cE -- "$1" "$RB_TMP/resbusd.out"
}

rbh_log_has() {
	grep -qE -- "$1" "$RB_TMP/resbusd.out"
}

rbh_worker_log_has() {
	grep -qE -- "$1" "$RB_TMP/worker.out"
}

# resbusd's resident set size in KiB.
rbh_rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$RB_BROKER_PID/status"
}

# rbh_pool_demo [MAX] [PREALLOC]: pools.yaml with one local-driver pool,
# demo, tagged demo.
rbh_pool_demo() {
	rb_pools <<EOF2
demo:
  max: ${1:-3}
  max_prealloc: ${2:-1}
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  cmd_list: "@DRIVERDIR@/list"
  tags: [demo]
EOF2
}

# rbh_refused WHAT CMD...: CMD (an amqp.py call) must be refused by
# RabbitMQ (exit status 4).
rbh_refused() {
	local what=$1 rc out
	shift
	out=$("$@" 2>&1)
	rc=$?
	[ "$rc" -eq 4 ] ||
	    rb_fail "$what: expected RabbitMQ to refuse it (4), got $rc: $out"
	rb_log "refused by RabbitMQ as it should be: $what"
}

# rbh_error_reply TEXT_REGEX OUT WHAT: OUT (amqp.py's printed replies)
# holds an Error whose message matches TEXT_REGEX.
rbh_error_reply() {
	rb_assert_match '^type=resbus\.v1\.Error$' "$2" "$3: the reply type"
	rb_assert_match "^message=.*$1" "$2" "$3: the Error message"
}

# rbh_dead_from PEEK QUEUE: resbus.dead (PEEK: rbh_dead_peek's output)
# holds a message that came from QUEUE: header x-resbus-queue.
rbh_dead_from() {
	rb_assert_match "^header\\.x-resbus-queue=${2//./\\.}\$" "$1" \
	    "a message from $2 in resbus.dead (header x-resbus-queue)"
}

# rbh_dead_by PEEK USER: resbus.dead holds a message sent by USER: its
# user_id, or, republished by resbusd (whose login RabbitMQ puts there),
# a header naming USER's login.
rbh_dead_by() {
	rb_assert_match "^(user_id|header\\.x-[a-z-]+)=${RBH_LOGIN[$2]}\$" "$1" \
	    "a message of $2 in resbus.dead"
}

# CPU time resbusd has used (user + system), in milliseconds: a measure
# of work that a loaded machine does not inflate as it does wall time.
rbh_cpu_ms() {
	local hz
	hz=$(getconf CLK_TCK)
	awk -v hz="$hz" '{ sub(/^.*\) /, ""); print int(($12 + $13) * 1000 / hz) }' \
	    "/proc/$RB_BROKER_PID/stat"
}
