#!/bin/bash
# SIGKILL of the RabbitMQ node a worker and a waiting client are connected
# to, in a 3-node cluster with quorum queues.  The worker is in the middle
# of cmd_new: it gives the job back (RabbitMQ requeues it with the lost
# connection, the worker stops the command), reconnects to another node,
# gets the job again, cleans up with cmd_delete and starts it anew.  The
# `resbus ticket-wait` connected to the dead node reconnects too and still
# prints the ticket's data.  Then a few clients cycle on the 2 nodes left.
#
# resbusd is connected to node 1, which stays: losing its own node is the
# broker-failover tests' business.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/cluster/lib.sh
. "$RESBUS_SRCDIR/tests/cluster/lib.sh"

rc_setup amqp-node-kill private
[ "$RC_QUEUE_TYPE" = quorum ] || rb_fail "resbusd knows no queue_type"
# cmd_new makes the resource's directory at once, then "boots" for as many
# seconds as $RB_TMP/boot says.
echo 30 >"$RB_TMP/boot"
rb_pools <<'EOF2'
slow:
  max: 4
  cmd_new: 'mkdir -p "$RESBUS_LOCAL_ROOT/$RESALLOC_NAME" && sleep "$(cat @STATEDIR@/boot)" && echo "local:$RESALLOC_NAME"'
  cmd_delete: "@DRIVERDIR@/delete"
  cmd_list: "@DRIVERDIR@/list"
  tags: [slow]
EOF2

rc_start_broker a
RB_WAIT_INTERVAL=1 rb_wait_for "resbusd to consume resbus.request" 60 \
    rb_broker_consuming
# Worker 1 and the client are told node 3 first.
rc_start_worker 1
wurl=$(rc_url_from 3)
id=$(rb_resbus --amqp-url "$wurl" ticket --tag slow) ||
    rb_fail "resbus ticket failed"
rb_resbus --amqp-url "$wurl" ticket-wait "$id" --timeout 150 \
    >"$RB_TMP/wait.out" 2>"$RB_TMP/wait.err" &
waiter=$!
rb_track "$waiter"
rb_wait_for "cmd_new to run" 60 rb_local_count_is 1
half=$(rb_local_resources)
rb_wait_for "the waiter to bind its events" 30 \
    bash -c "rabbitmqctl -n ${RC_NODES[2]} list_bindings -q -p '$RB_VHOST' \
    routing_key 2>/dev/null | grep -q 'ticket\\.$id\\.'"
rb_wait_for "the worker and the waiter on node 3" 30 \
    bash -c "[ \"\$(rabbitmqctl -n ${RC_NODES[2]} list_connections -q \
    --no-table-headers peer_port 2>/dev/null | wc -l)\" -ge 2 ]"
echo 0 >"$RB_TMP/boot"

t0=$(date +%s.%N)
rc_rmq node-kill "$RC_STATE" 3 || rb_fail "node-kill failed"
rb_log "node 3 (${RC_NODES[2]}) killed"

rb_wait_for "the worker to reconnect" 60 \
    grep -q 'reconnected to RabbitMQ node' "$RB_TMP/worker-1.out"
rb_log "worker: $(grep -o 'reconnected to RabbitMQ node.*' "$RB_TMP/worker-1.out")"
grep -q 'giving back 1 running job' "$RB_TMP/worker-1.out" ||
    rb_fail "the worker did not say it gave its job back"
rb_wait_for "the waiter to end" 120 rb_dead "$waiter"
wait "$waiter"
rc=$?
t1=$(date +%s.%N)
rb_assert_eq 0 "$rc" "ticket-wait's exit status ($(cat "$RB_TMP/wait.err"))"
rb_assert_eq "local:$half" "$(cat "$RB_TMP/wait.out")" "ticket-wait's output"
rb_assert_match 'reconnected to node [12] in [0-9]+ ms' \
    "$(cat "$RB_TMP/wait.err")" "ticket-wait's note"
rb_log "ticket-wait: $(cat "$RB_TMP/wait.err")"
rb_log "node kill to ticket-wait's answer: $(awk -v a="$t0" -v b="$t1" \
    'BEGIN { printf "%.1f", b - a }') s"
# The redelivered Allocate cleaned up the half-made resource first.
rb_wait_for "the redelivered job" 10 \
    grep -q 'Allocate redelivered' "$RB_TMP/worker-1.out"
rb_resbus --amqp-url "$(rc_url_from 1)" ticket-close "$id" ||
    rb_fail "ticket-close failed"

# The two nodes left serve a few clients.
rc_clients 4 5 slow
rc_wait_clients 180
fails=$(cat "$RB_TMP"/client.[0-9]* | grep -v '^OK ' || true)
[ -z "$fails" ] || rb_fail "client failures: $fails"
rb_assert_eq 20 "$(rc_cycles_done)" "cycles after the kill"
rb_wait_for "the driver's resources to be those resource-list lists" 60 \
    rc_driver_agrees
rb_check_daemons
rb_done
