#!/bin/bash
# RabbitMQ faults on a 3-node cluster of the test's own, quorum queues,
# every process told all three nodes (each in its own order): while 10
# clients run 200 cycles on the SQLite store,
#
#   1. SIGKILL of the node the active resbusd is connected to: that
#      resbusd exits (status 1), the standby (on another node) takes over,
#      the workers and clients on that node reconnect to another one; the
#      old resbusd is started again (as systemd would) and waits as a
#      standby; the node is started again;
#   2. SIGKILL of the node that leads the ticket queue resbus.ticket.cl:
#      the queue fails over to a new leader and nothing is lost.
#
# Then the checks of tests/cluster/lib.sh (rc_check).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/cluster/lib.sh
. "$RESBUS_SRCDIR/tests/cluster/lib.sh"

RC_MULTI_URL=1
# Two faults and their recoveries on a loaded machine: more than the
# default 300 s.
RB_TEST_TIMEOUT=${RB_TEST_TIMEOUT:-420}
rc_setup rabbit-kill private
[ "$RC_QUEUE_TYPE" = quorum ] || rb_fail "resbusd knows no queue_type: quorum"
rc_pools_cl

# The node (1..3) broker X is connected to.
broker_node() {
	local pid=${RC_BROKER[$1]} k
	for ((k = 0; k < ${#RC_PORTS[@]}; k++)); do
		if ss -Htnp state established "dport = :${RC_PORTS[$k]}" |
		    grep -q "pid=$pid,"; then
			echo $((k + 1))
			return 0
		fi
	done
	return 1
}

# The shared queues: name, messages ready and unacknowledged, consumers,
# leader (for the log: who consumes what after a node's loss).
queues() {
	rb_ctl list_queues -p "$RB_VHOST" -q --no-table-headers name \
	    messages_ready messages_unacknowledged consumers leader 2>/dev/null |
	    awk '$1 ~ /^resbus\.(request|ticket\.cl|broker\.events)$/' |
	    tr '\t\n' ' ;'
}

# shellcheck disable=SC2317 # called through rb_wait_for
leads() {
	rc_supervise
	rc_active >/dev/null
}

# shellcheck disable=SC2317 # called through rb_wait_for
back_as_standby() {
	rc_supervise
	[ -z "${RC_GONE[$1]:-}" ] && rc_is_standby "$1"
}

# shellcheck disable=SC2317 # called through rb_wait_for
gone() {
	rc_supervise
	[ -n "${RC_GONE[$1]:-}" ]
}

rc_start_worker 1
rc_start_worker 2
rc_start_pair
rb_wait_for "five preallocated resources" 60 rb_local_count_is 5
rb_log "queues: $(queues)"

rc_clients 10 20 cl
RC_EXIT_OK=1

# 1. The active broker's node.
rc_wait_cycles 50
x=$(rc_active) || rb_fail "no broker leads"
n=$(broker_node "$x") || rb_fail "cannot tell resbusd $x's node"
t0=$(date +%s.%N)
rb_log "killing node $n, resbusd $x's"
rc_rmq node-kill "$RC_STATE" "$n" >>"$RB_TMP/rabbitmq.out" 2>&1
# It exits (status 1), its standby takes over, and it is started again
# 5 s later (RestartSec) as a standby.
RB_WAIT_INTERVAL=0.2 rb_wait_for "resbusd $x to exit" 30 gone "$x"
y=$(rc_other "$x")
RB_WAIT_INTERVAL=0.2 rb_wait_for "resbusd $y to take over" 30 leads
rb_assert_eq "$y" "$(rc_active)" "the broker leading after node $n's loss"
rb_log "resbusd $y leads $(rc_took_over "$y" "$t0") s after node $n's SIGKILL"
RB_WAIT_INTERVAL=0.5 rb_wait_for "resbusd $x to wait as a standby" 30 \
    back_as_standby "$x"
rc_rmq node-start "$RC_STATE" "$n" >>"$RB_TMP/rabbitmq.out" 2>&1 ||
    rb_fail "node $n did not start again"
rb_log "queues: $(queues)"

# 2. The ticket queue's leader.
rc_wait_cycles 130 180
n=$(rc_rmq queue-leader "$RC_STATE" "$RB_VHOST" resbus.ticket.cl) ||
    rb_fail "no leader of resbus.ticket.cl"
t0=$(date +%s.%N)
rb_log "killing node $n, the leader of resbus.ticket.cl"
rc_rmq node-kill "$RC_STATE" "$n" >>"$RB_TMP/rabbitmq.out" 2>&1
RB_WAIT_INTERVAL=0.5 rb_wait_for "a broker to lead after node $n's loss" 60 leads
rb_log "after node $n's loss resbusd $(rc_active) leads; new leader of" \
    "resbus.ticket.cl: node $(rc_rmq queue-leader "$RC_STATE" "$RB_VHOST" \
    resbus.ticket.cl 2>/dev/null)"
rc_rmq node-start "$RC_STATE" "$n" >>"$RB_TMP/rabbitmq.out" 2>&1 ||
    rb_fail "node $n did not start again"
rb_log "queues: $(queues)"

rc_wait_clients 240 --supervise
rc_settle
RC_EXIT_OK=0
# Every broker that exited did so with status 1 (a lost connection).
bad=$(awk '$2 != 1' "$RB_TMP/exits" 2>/dev/null)
[ -z "$bad" ] || rb_fail "brokers exited otherwise than with 1: $bad"
rb_check_daemons
rc_check --need-active
rc_stop_all
rb_done
