# Framework for the cluster tests (sourced after tests/lib.sh, bash).
#
# A cluster test runs resbus as a cluster on loopback and breaks one part
# of it while clients work:
#
#   rc_setup NAME [private]     a vhost on the 3-node RabbitMQ cluster that
#                               scripts/test.sh starts (scripts/rabbitmq.sh
#                               cluster-start), or with `private` on a
#                               cluster of the test's own (for tests that
#                               kill its nodes); quorum queues
#   rc_use_pg [replica]         a private PostgreSQL primary (with a
#                               synchronous streaming replica) as the store:
#                               db_url names both hosts, target_session_attrs
#                               =read-write; an audit trigger records which
#                               broker committed what (rc_pg_audit)
#   rc_start_broker a|b         resbusd A or B, same server.yaml and
#                               pools.yaml, each with its own output file
#                               $RB_TMP/resbusd-X.out and PGAPPNAME
#   rc_start_worker 1|2         resbus-worker 1 on the host, 2 in a network
#                               namespace of its own, reaching RabbitMQ only
#                               through a relay over unix sockets
#   rc_clients N CYCLES TAG     N clients in the background, each doing
#                               CYCLES cycles (ticket, ticket-wait,
#                               ticket-close) and recording each one
#   rc_active                   which broker (a or b) logged "active:" last
#   rc_check                    the acceptance checks (below)
#
# Each process is told the nodes in its own order (broker A node 1 first,
# broker B node 2 first, ...) when RC_MULTI_URL=1 (the default; the tests of
# RabbitMQ faults need it), else only its first node's URL.
#
# rc_check, after the clients have finished: every cycle completed; no
# ticket ID was issued twice and no resource reached two tickets
# (tests/cluster/check.py over the clients' records and both brokers'
# logs, with the replay of tests/scenario/crash.sh per broker run); the
# local driver's resources are what `resbus-maint resource-list` lists;
# some broker logged that it took over ("active: ..."), and
# `resbus-maint broker-status` names the one that leads.
# shellcheck shell=bash
# shellcheck disable=SC2119,SC2120,SC2153,SC2034

RC_PRIVATE_RMQ=
RC_PG_DIR=
RC_NS=
RC_RELAY_PIDS=()
RC_CLIENT_PIDS=()
declare -A RC_BROKER=() RC_WORKER=()
RC_NODES=()
RC_PORTS=()
RC_MULTI_URL=${RC_MULTI_URL:-1}
RC_SRC=${RESBUS_SRCDIR:-}/tests/cluster

rc_rmq() {
	bash "$RESBUS_SRCDIR/scripts/rabbitmq.sh" "$@"
}

# rb_ctl through any node of the cluster that answers.
rb_ctl() {
	local n
	for n in "${RC_NODES[@]:-$RESBUS_TEST_RABBITMQ_NODE}"; do
		if timeout -k 5 60 rabbitmqctl -n "$n" "$@" 2>/dev/null; then
			return 0
		fi
	done
	return 1
}

rb_dump_logs() {
	local f
	[ -n "$RB_TMP" ] && [ -d "$RB_TMP" ] || return 0
	for f in "$RB_TMP"/resbusd-*.out "$RB_TMP"/worker-*.out; do
		if [ -s "$f" ]; then
			echo "----- $f (last 80 lines) -----" >&2
			tail -n 80 "$f" >&2
		fi
	done
	for f in "$RB_TMP"/stderr.*; do
		if [ -s "$f" ]; then
			echo "----- $f (last 5 lines) -----" >&2
			tail -n 5 "$f" >&2
		fi
	done
	echo "----- test files kept in $RB_TMP" >&2
}

# Fails if a broker or worker the test runs has died on its own (the
# tests unset a daemon they kill; RC_EXIT_OK=1 allows brokers to exit, as
# they do when their RabbitMQ node or store goes away).
rb_check_daemons() {
	local k rc
	for k in "${!RC_BROKER[@]}"; do
		# (rc_supervise reaps and restarts them then.)
		[ "${RC_EXIT_OK:-0}" = 1 ] && continue
		if ! rb_alive "${RC_BROKER[$k]}"; then
			wait "${RC_BROKER[$k]}" 2>/dev/null
			rc=$?
			unset "RC_BROKER[$k]"
			rb_fail "resbusd $k died (exit status $rc)"
		fi
	done
	for k in "${!RC_WORKER[@]}"; do
		if ! rb_alive "${RC_WORKER[$k]}"; then
			wait "${RC_WORKER[$k]}" 2>/dev/null
			rc=$?
			unset "RC_WORKER[$k]"
			rb_fail "resbus-worker $k died (exit status $rc)"
		fi
	done
}

# URL of node K (1..) for the test's vhost.
rc_node_url() {
	echo "amqp://guest:guest@127.0.0.1:${RC_PORTS[$(($1 - 1))]}/$(rb_urlencode "$RB_VHOST")"
}

# The URLs of all nodes starting at node K, comma-separated (or only node
# K's without RC_MULTI_URL).
rc_url_from() {
	local k=$1 i n=${#RC_PORTS[@]} out=''
	if [ "$RC_MULTI_URL" != 1 ]; then
		rc_node_url "$k"
		return
	fi
	for ((i = 0; i < n; i++)); do
		out+=${out:+,}$(rc_node_url $(((k - 1 + i) % n + 1)))
	done
	echo "$out"
}

# rc_pools_cl: pools.yaml with the pool the fault tests share, cl (tag
# cl, at most 10, 5 kept ready, 5 starting at once: enough for ten
# clients' cycles).
rc_pools_cl() {
	rb_pools <<'YAML'
cl:
  max: 10
  max_prealloc: 5
  max_starting: 5
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [cl]
YAML
}

rc_setup() {
	local name=$1 how=${2:-}
	if [ "$how" = private ] || [ -z "${RESBUS_TEST_RABBITMQ_NODES:-}" ]; then
		RC_PRIVATE_RMQ=$(mktemp -d /tmp/resbus-rc.XXXXXX)
		echo "[$name] starting a private 3-node RabbitMQ cluster" >&2
		# One cluster at a time picks its free ports and binds them;
		# the nodes must not inherit the lock's descriptor.
		exec {RC_RMQ_LOCK}>/tmp/resbus-rc.lock
		flock "$RC_RMQ_LOCK"
		# A range of ports of its own: a node that a test kills frees
		# its ports until it starts again, and another cluster must not
		# take them meanwhile.
		local slot
		slot=$(cat /tmp/resbus-rc.next 2>/dev/null || echo 0)
		[[ $slot =~ ^[0-9]+$ ]] || slot=0
		echo $(((slot + 1) % 40)) >/tmp/resbus-rc.next
		export RESBUS_RMQ_PORT_BASE=$((29700 + slot * 10))
		rc_rmq cluster-start "$RC_PRIVATE_RMQ" 3 {RC_RMQ_LOCK}>&- \
		    >"$RC_PRIVATE_RMQ/start.out" 2>&1 || {
			cat "$RC_PRIVATE_RMQ/start.out" >&2
			rc_rmq cluster-stop "$RC_PRIVATE_RMQ" >/dev/null 2>&1
			echo "FAIL: $name: no RabbitMQ cluster" >&2
			exit 1
		}
		exec {RC_RMQ_LOCK}>&-
		# shellcheck source=/dev/null
		. "$RC_PRIVATE_RMQ/rabbitmq-cluster/env"
	fi
	read -r -a RC_NODES <<<"$RESBUS_TEST_RABBITMQ_NODES"
	read -r -a RC_PORTS <<<"$RESBUS_TEST_AMQP_PORTS"
	RC_STATE=${RESBUS_TEST_RABBITMQ_CLUSTER_STATE:?}
	export RC_STATE
	# tests/lib.sh makes the vhost on "the" node: the cluster's first.
	RESBUS_TEST_RABBITMQ_NODE=${RC_NODES[0]}
	RESBUS_TEST_AMQP_PORT=${RC_PORTS[0]}
	export RESBUS_TEST_RABBITMQ_NODE RESBUS_TEST_AMQP_PORT
	rb_setup "$name"
	trap rc_cleanup EXIT
	# A vhost is added on one node and started on the others a moment
	# later; until then they refuse logins to it.
	RB_WAIT_INTERVAL=1 rb_wait_for "vhost $RB_VHOST to run on every node" 60 \
	    rc_vhost_running
	RB_AMQP_URL=$(rc_url_from 1)
	export RESBUS_AMQP_URL=$RB_AMQP_URL
	RC_QUEUE_TYPE=classic
	if grep -q 'queue_type' "$RB_RESBUSD"; then
		RC_QUEUE_TYPE=quorum
		RB_SERVER_EXTRA+=$'\nqueue_type: quorum'
	fi
	rb_server_yaml
	rb_log "RabbitMQ nodes ${RC_NODES[*]}${RC_PRIVATE_RMQ:+ (private)}," \
	    "$RC_QUEUE_TYPE queues"
}

# Whether the test's vhost runs on each node of the cluster.
rc_vhost_running() {
	local state
	state=$(rb_ctl list_vhosts -q name cluster_state |
	    awk -F'\t' -v v="$RB_VHOST" '$1 == v { print $2 }')
	[ "$(grep -o running <<<"$state" | wc -l)" -eq "${#RC_NODES[@]}" ]
}

rc_cleanup() {
	local rc=$? k pid
	trap - EXIT
	for pid in "${RC_CLIENT_PIDS[@]}"; do
		kill -KILL "$pid" 2>/dev/null
	done
	for k in "${!RC_BROKER[@]}"; do
		kill -CONT "${RC_BROKER[$k]}" 2>/dev/null
		rb_kill "${RC_BROKER[$k]}"
	done
	for k in "${!RC_WORKER[@]}"; do
		rb_kill "${RC_WORKER[$k]}"
	done
	for pid in "${RC_RELAY_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	if [ -n "$RC_NS" ]; then
		ip netns pids "$RC_NS" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
		ip netns del "$RC_NS" 2>/dev/null
	fi
	(exit "$rc")
	(rb_cleanup)
	rc=$?
	if [ -n "$RC_PG_DIR" ]; then
		bash "$RESBUS_SRCDIR/scripts/postgres.sh" stop "$RC_PG_DIR" \
		    >/dev/null 2>&1
		rm -rf "$RC_PG_DIR"
	fi
	if [ -n "$RC_PRIVATE_RMQ" ]; then
		rc_rmq cluster-stop "$RC_PRIVATE_RMQ" >/dev/null 2>&1
		rm -rf "$RC_PRIVATE_RMQ"
	fi
	exit "$rc"
}

# ---- PostgreSQL ------------------------------------------------------------

# rc_use_pg [replica]: a private PostgreSQL (commit timestamps on) as the
# store, with a synchronous streaming replica when asked.
rc_use_pg() {
	local pg=$RESBUS_SRCDIR/scripts/postgres.sh
	RC_PG_DIR=$(mktemp -d /tmp/resbus-rcpg.XXXXXX)
	chmod 755 "$RC_PG_DIR"
	# One test at a time picks free ports and binds them (tests run in
	# parallel; "auto" takes the first port nothing listens on yet).
	exec {RC_PG_LOCK}>/tmp/resbus-rcpg.lock
	flock "$RC_PG_LOCK"
	# (The servers must not inherit the lock's descriptor.)
	bash "$pg" start "$RC_PG_DIR" auto {RC_PG_LOCK}>&- \
	    >"$RB_TMP/postgres.out" 2>&1 ||
	    rb_fail "PostgreSQL did not start: $(tail -n 5 "$RB_TMP/postgres.out")"
	# shellcheck source=/dev/null
	. "$RC_PG_DIR/env"
	# Commit timestamps, for rc_pg_audit.
	rb_psql postgres -c "ALTER SYSTEM SET track_commit_timestamp = on" ||
	    rb_fail "ALTER SYSTEM"
	runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl restart -w \
	    -D "$(readlink -f "$RC_PG_DIR/postgres/run")/data" -m fast \
	    {RC_PG_LOCK}>&- >>"$RB_TMP/postgres.out" 2>&1 ||
	    rb_fail "PostgreSQL did not restart"
	rb_psql postgres -c "CREATE DATABASE resbus_cluster" ||
	    rb_fail "CREATE DATABASE"
	if [ "${1:-}" = replica ]; then
		bash "$pg" replica-start "$RC_PG_DIR" auto sync \
		    {RC_PG_LOCK}>&- >>"$RB_TMP/postgres.out" 2>&1 ||
		    rb_fail "no replica: $(tail -n 5 "$RB_TMP/postgres.out")"
		# shellcheck source=/dev/null
		. "$RC_PG_DIR/env"
		RB_DB_URL=${RESBUS_TEST_PG_HA_URL/\/resbus\?//resbus_cluster?}
		exec {RC_PG_LOCK}>&-
	else
		exec {RC_PG_LOCK}>&-
		RB_DB_URL="postgresql://resbus@/resbus_cluster?host=$RESBUS_TEST_PG_HOST&port=$RESBUS_TEST_PG_PORT"
	fi
	rb_server_yaml
	rb_log "store: $RB_DB_URL"
}

# psql on whichever server of the private pair accepts writes.
rc_psql() {
	timeout -k 5 60 psql -X -q -v ON_ERROR_STOP=1 \
	    "${RB_DB_URL}" "$@"
}

# rc_pg_audit_install: a trigger on every table of the store records
# (application_name, table, operation) in resbus_audit, inside the writing
# transaction: a row of it exists only if that transaction committed, and
# its xmin's commit timestamp says when.
rc_pg_audit_install() {
	rc_psql -c "
CREATE TABLE IF NOT EXISTS resbus_audit (app text, tab text, op text,
    at timestamptz DEFAULT clock_timestamp());
CREATE OR REPLACE FUNCTION resbus_audit_row() RETURNS trigger AS \$\$
BEGIN
	INSERT INTO resbus_audit (app, tab, op)
	    VALUES (current_setting('application_name'), TG_TABLE_NAME, TG_OP);
	RETURN NULL;
END \$\$ LANGUAGE plpgsql;
DO \$\$ DECLARE t text; BEGIN
	FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public'
	    AND tablename <> 'resbus_audit' LOOP
		EXECUTE format('CREATE OR REPLACE TRIGGER resbus_audit AFTER
		    INSERT OR UPDATE OR DELETE ON %I FOR EACH ROW
		    EXECUTE FUNCTION resbus_audit_row()', t);
	END LOOP;
END \$\$;" >/dev/null || rb_fail "cannot install the audit trigger"
}

# ---- brokers and workers ---------------------------------------------------

rc_broker_out() {
	echo "$RB_TMP/resbusd-$1.out"
}

# rc_start_broker a|b [ARGS]: starts resbusd A (node 1 first) or B (node 2
# first) in the background; does not wait.
rc_start_broker() {
	local x=$1 k=1
	shift
	[ "$x" = b ] && k=2
	echo "===== resbusd $x $* ($(date +%T))" >>"$(rc_broker_out "$x")"
	PGAPPNAME=resbusd-$x "$RB_RESBUSD" --config-dir "$RB_CONF" \
	    --amqp-url "$(rc_url_from "$k")" "$@" \
	    </dev/null >>"$(rc_broker_out "$x")" 2>&1 &
	RC_BROKER[$x]=$!
	rb_log "resbusd $x started (pid $!)"
}

# Whether broker X has logged "active:" in its current run.
rc_is_active() {
	local f
	f=$(rc_broker_out "$1")
	awk '/^===== resbusd/ { a = 0 } /active: this resbusd/ { a = 1 }
	    END { exit !a }' "$f" 2>/dev/null
}

rc_is_standby() {
	awk '/^===== resbusd/ { a = 0 } /standby: / { a = 1 }
	    END { exit !a }' "$(rc_broker_out "$1")" 2>/dev/null
}

# Prints a or b: the broker that runs and leads now.
rc_active() {
	local x
	for x in a b; do
		[ -n "${RC_BROKER[$x]:-}" ] && rb_alive "${RC_BROKER[$x]}" &&
		    rc_is_active "$x" && { echo "$x"; return 0; }
	done
	return 1
}

rc_other() {
	[ "$1" = a ] && echo b || echo a
}

# The time (epoch seconds with ms) of broker X's last "active:" line.
rc_active_time() {
	local line
	line=$(grep 'active: this resbusd' "$(rc_broker_out "$1")" | tail -n 1)
	date -d "${line%% *}" +%s.%N | cut -c1-14
}

rc_wait_active() {
	local x=$1 t=${2:-60}
	rb_wait_for "resbusd $x to lead" "$t" rc_is_active "$x"
}

# rc_start_pair: A, then (once A leads and consumes) B as its standby.
rc_start_pair() {
	rc_start_broker a
	rc_wait_active a 60
	RB_WAIT_INTERVAL=1 rb_wait_for "resbusd a to consume resbus.request" 60 \
	    rb_broker_consuming
	rc_start_broker b
	rb_wait_for "resbusd b to wait as a standby" 30 rc_is_standby b
}

# rc_kill_broker X [SIG]: default SIGKILL; forgets X when it is KILL.
rc_kill_broker() {
	local x=$1 sig=${2:-KILL}
	rb_log "SIG$sig to resbusd $x (pid ${RC_BROKER[$x]})"
	kill -"$sig" "${RC_BROKER[$x]}"
	if [ "$sig" = KILL ]; then
		wait "${RC_BROKER[$x]}" 2>/dev/null
		unset "RC_BROKER[$x]"
	fi
}

# The relay that lets a worker in network namespace $RC_NS reach node K's
# port on the host's 127.0.0.1: a unix socket (not bound to a network
# namespace) between a listener in the namespace and one on the host.
rc_netns_relay() {
	local k port sock
	for ((k = 0; k < ${#RC_PORTS[@]}; k++)); do
		port=${RC_PORTS[$k]}
		sock=$RB_TMP/relay.$port
		socat "UNIX-LISTEN:$sock,fork" "TCP:127.0.0.1:$port" \
		    </dev/null >/dev/null 2>&1 &
		RC_RELAY_PIDS+=("$!")
		ip netns exec "$RC_NS" socat \
		    "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" \
		    "UNIX-CONNECT:$sock" </dev/null >/dev/null 2>&1 &
		RC_RELAY_PIDS+=("$!")
	done
}

rc_make_netns() {
	[ -z "$RC_NS" ] || return 0
	[ "$(id -u)" -eq 0 ] || rb_fail "the worker in a namespace needs root"
	command -v socat >/dev/null || rb_fail "socat is missing (scripts/deps.sh)"
	RC_NS=rbc-$$
	ip netns add "$RC_NS" || rb_fail "ip netns add $RC_NS failed"
	ip -n "$RC_NS" link set lo up
	rc_netns_relay
	rb_wait_for "the relays in network namespace $RC_NS to listen" 30 \
	    rc_relays_listen
}

# Whether both halves of every relay listen: the one in the namespace on
# its port, and the one on the host on its unix socket (a connection that
# reaches the first before the second listens is closed at once, and the
# worker reads that as a refused login).
rc_relays_listen() {
	local port
	for port in "${RC_PORTS[@]}"; do
		[ -n "$(ip netns exec "$RC_NS" ss -Htln "sport = :$port")" ] ||
		    return 1
		[ -n "$(ss -Hxl "src $RB_TMP/relay.$port")" ] || return 1
	done
}

# rc_start_worker 1|2 [ARGS]: worker 1 on the host (node 3 first), worker
# 2 in its own network namespace (node 1 first).
rc_start_worker() {
	local w=$1 k=3 pre=()
	shift
	[ "${#RC_PORTS[@]}" -ge 3 ] || k=1
	if [ "$w" = 2 ]; then
		rc_make_netns
		pre=(ip netns exec "$RC_NS")
		k=1
	fi
	echo "===== resbus-worker $w $* ($(date +%T))" >>"$RB_TMP/worker-$w.out"
	"${pre[@]}" "$RB_WORKER" --config-dir "$RB_CONF" \
	    --amqp-url "$(rc_url_from "$k")" "$@" \
	    </dev/null >>"$RB_TMP/worker-$w.out" 2>&1 &
	RC_WORKER[$w]=$!
	rb_log "resbus-worker $w started (pid $!${pre:+, in $RC_NS})"
}

# rc_supervise: what systemd does for resbusd.service (Restart=always,
# RestartSec=5): a broker that has exited is started again 5 s
# (RC_RESTART_S) after the test first saw it gone.  Call it often.
declare -A RC_GONE=()
rc_supervise() {
	local x pid rc now
	now=$(date +%s)
	for x in a b; do
		pid=${RC_BROKER[$x]:-}
		[ -n "$pid" ] || continue
		rb_alive "$pid" && continue
		if [ -z "${RC_GONE[$x]:-}" ]; then
			wait "$pid" 2>/dev/null
			rc=$?
			RC_GONE[$x]=$now
			rb_log "resbusd $x exited (status $rc)"
			echo "$x $rc" >>"$RB_TMP/exits"
		fi
		if [ $((now - RC_GONE[$x])) -ge "${RC_RESTART_S:-5}" ]; then
			unset "RC_GONE[$x]"
			rc_start_broker "$x"
		fi
	done
}

# rc_settle: supervises until every broker that exited runs again (60 s).
rc_settled() {
	local x
	rc_supervise
	[ "${#RC_GONE[@]}" -eq 0 ] || return 1
	for x in "${!RC_BROKER[@]}"; do
		rb_alive "${RC_BROKER[$x]}" || return 1
	done
}

rc_settle() {
	RB_WAIT_INTERVAL=0.5 rb_wait_for "the brokers to run again" 60 rc_settled
}

rc_kill_worker() {
	rb_log "SIGKILL to resbus-worker $1 (pid ${RC_WORKER[$1]})"
	kill -KILL "${RC_WORKER[$1]}"
	wait "${RC_WORKER[$1]}" 2>/dev/null
	unset "RC_WORKER[$1]"
}

# ---- clients ---------------------------------------------------------------

# One client: $2 cycles of tag $3, each line of $RB_TMP/client.$1
# "OK ticket data" or "FAIL step ticket exit-status (sent at T)" (as in
# tests/scenario/crash.sh; T: when the cycle began).  Client C is told the nodes from node C % 3 + 1.
rc_client() {
	local c=$1 n=$2 tag=$3 i id data rc url t
	local out=$RB_TMP/client.$c err=$RB_TMP/stderr.$c
	url=$(rc_url_from $((c % ${#RC_PORTS[@]} + 1)))
	for ((i = 0; i < n; i++)); do
		t=$(date +%T)
		id=$(rb_resbus --amqp-url "$url" ticket --tag "$tag" \
		    --timeout 100 2>>"$err")
		rc=$?
		if [ "$rc" -ne 0 ] || [ -z "$id" ]; then
			echo "FAIL ticket - $rc (sent at $t)" >>"$out"
			continue
		fi
		data=$(rb_resbus --amqp-url "$url" ticket-wait "$id" \
		    --timeout 100 2>>"$err")
		rc=$?
		if [ "$rc" -ne 0 ]; then
			echo "FAIL ticket-wait $id $rc (sent at $t)" >>"$out"
			continue
		fi
		rb_resbus --amqp-url "$url" ticket-close "$id" --timeout 100 \
		    2>>"$err"
		rc=$?
		if [ "$rc" -ne 0 ]; then
			echo "FAIL ticket-close $id $rc (sent at $t)" >>"$out"
			continue
		fi
		echo "OK $id $data" >>"$out"
	done
}

# rc_clients N CYCLES TAG: starts N clients in the background.
rc_clients() {
	local c
	RC_NCLIENTS=$1
	RC_CYCLES=$2
	for ((c = 0; c < $1; c++)); do
		rc_client "$c" "$2" "$3" &
		RC_CLIENT_PIDS+=("$!")
	done
	rb_log "$1 clients, $2 cycles each"
}

rc_cycles_done() {
	cat "$RB_TMP"/client.[0-9]* 2>/dev/null | wc -l
}

rc_cycles_at_least() {
	[ "$(rc_cycles_done)" -ge "$1" ]
}

rc_wait_cycles() {
	RB_WAIT_INTERVAL=0.5 rb_wait_for "$1 cycles" "${2:-120}" \
	    rc_cycles_at_least "$1"
}

rc_clients_done() {
	local pid
	for pid in "${RC_CLIENT_PIDS[@]}"; do
		rb_alive "$pid" && return 1
	done
	return 0
}

# Waits for the clients to finish (TIMEOUT s, 240).
# rc_wait_clients [SECONDS] [--supervise]: waits (240 s by default) for
# the clients to finish; with --supervise, a broker that exits meanwhile
# is started again (rc_supervise), as its supervisor would.
rc_wait_clients() {
	local check=rc_clients_done
	[ "${2:-}" = --supervise ] && check=rc_clients_done_supervised
	RB_WAIT_INTERVAL=0.5 rb_wait_for "the clients to finish" "${1:-240}" \
	    "$check"
	rb_log "$(rc_cycles_done) cycles recorded"
}

rc_clients_done_supervised() {
	rc_supervise
	rc_clients_done
}

# ---- the checks ------------------------------------------------------------

rc_resource_list() {
	timeout -k 5 60 "$RESBUS_BUILDDIR/resbus-maint" --config-dir "$RB_CONF" \
	    resource-list 2>/dev/null | awk '{ print $3 }' | sort
}

rc_driver_agrees() {
	[ "$(rb_local_resources)" = "$(rc_resource_list)" ]
}

# rc_check [check.py options]: the acceptance checks after the clients
# finished (see the top of this file).
rc_check() {
	local total fails out logs=()
	total=$((RC_NCLIENTS * RC_CYCLES))
	fails=$(cat "$RB_TMP"/client.[0-9]* | grep -v '^OK ')
	[ -z "$fails" ] || rb_fail "client failures:" \
	    "$(printf '%s\n' "$fails" | head -n 10 | tr '\n' ';')" \
	    "$(cat "$RB_TMP"/stderr.* | sort | uniq -c | sort -rn | head -n 5)"
	rb_assert_eq "$total" "$(rc_cycles_done)" "cycles done"
	mapfile -t logs < <(ls "$RB_TMP"/resbusd-*.out)
	out=$(python3 "$RC_SRC/check.py" --log "${logs[@]}" \
	    --records "$RB_TMP"/client.[0-9]* "$@") || rb_fail "$out"
	rb_log "$out"
	rb_wait_for "the driver's resources to be those resource-list lists" 60 \
	    rc_driver_agrees
	rb_log "driver and resource-list agree: $(rb_local_count) resources"
	rc_check_status
}

rc_broker_status() {
	timeout -k 5 60 "$RESBUS_BUILDDIR/resbus-maint" --config-dir \
	    "$RB_CONF" broker-status 2>&1
}

# Whether broker-status lists broker Y (a pid) as a standby.
rc_lists_standby() {
	rc_broker_status | grep -q "^standby: resbusd pid $1 on .*waiting since"
}

# resbus-maint broker-status names the broker that leads now, and the
# other one as a standby when it runs and waits as one.
rc_check_status() {
	local x y st
	x=$(rc_active) || rb_fail "no broker leads at the end"
	y=$(rc_other "$x")
	st=$(rc_broker_status)
	rb_assert_match "^active: resbusd .*pid ${RC_BROKER[$x]}[^0-9].*since .*epoch" \
	    "$st" "resbus-maint broker-status"
	if [ -n "${RC_BROKER[$y]:-}" ] && rb_alive "${RC_BROKER[$y]}" &&
	    rc_is_standby "$y" && ! rc_is_active "$y"; then
		rb_wait_for "broker-status to list resbusd $y as a standby" 15 \
		    rc_lists_standby "${RC_BROKER[$y]}"
		st=$(rc_broker_status)
	fi
	rb_log "$st"
}

# rc_took_over X T0: broker X logged "active:" after epoch time T0 (the
# fault); prints how long after T0, in seconds.
rc_took_over() {
	local t
	rc_is_active "$1" || rb_fail "resbusd $1 did not log that it took over"
	t=$(rc_active_time "$1")
	awk -v a="$t" -v b="$2" 'BEGIN { printf "%.2f\n", a - b }'
}

# The running brokers, the active one last.
rc_standbys_first() {
	local x
	for x in "${!RC_BROKER[@]}"; do
		if rc_is_active "$x"; then
			echo "1 $x"
		else
			echo "0 $x"
		fi
	done | sort | awk '{ print $2 }'
}

# rc_stop_all: SIGTERM to every broker and worker, each must exit 0; the
# standbys first (else one takes over as the active one stops, and gets
# SIGTERM in the middle of that).
rc_stop_all() {
	local k
	for k in "${!RC_WORKER[@]}"; do
		RB_WORKER_PID=${RC_WORKER[$k]}
		unset "RC_WORKER[$k]"
		rb_stop_worker
	done
	for k in $(rc_standbys_first); do
		RB_BROKER_PID=${RC_BROKER[$k]}
		unset "RC_BROKER[$k]"
		rb_stop_broker
	done
}
