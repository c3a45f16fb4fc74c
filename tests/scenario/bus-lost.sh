#!/bin/bash
# resbusd's two AMQP connections: "resbusd" consumes and acknowledges,
# "resbusd (publish)" publishes with confirms.  Losing either (closed by
# RabbitMQ, as an operator or a failing node would) makes resbusd exit
# with status 1 for its supervisor, saying so; started again it serves
# the ticket taken meanwhile.  Run once per store (SQLite, PostgreSQL).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

rb_per_store bus-lost "$@"

rb_pools <<'EOF2'
buslost:
  max: 2
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  cmd_list: "@DRIVERDIR@/list"
  tags: [buslost]
EOF2

# The Erlang process of the test vhost's connection called NAME (what
# close_connection takes).
conn_of() {
	rb_ctl list_connections -q --no-table-headers vhost pid \
	    client_properties 2>/dev/null |
	    awk -F'\t' -v v="$RB_VHOST" -v n="{\"connection_name\",\"$1\"}" \
		'$1 == v && index($3, n) { print $2 }'
}

# One ticket, taken and waited for: resbusd serves.
cycle() {
	local id
	id=$(rb_resbus ticket --tag buslost) || rb_fail "resbus ticket failed"
	rb_resbus ticket-wait "$id" --timeout 60 >/dev/null ||
	    rb_fail "ticket $id was not served"
	rb_resbus ticket-close "$id" || rb_fail "ticket-close $id failed"
}

# Whether resbusd has a connection NAME.
has_conn() {
	[ -n "$(conn_of "$1")" ]
}

# Closes resbusd's connection NAME and expects it to exit 1 saying why.
lose() {
	local name=$1 conn pid=$RB_BROKER_PID rc
	conn=$(conn_of "$name")
	[ -n "$conn" ] || rb_fail "no connection \"$name\" of resbusd"
	rb_log "closing \"$name\" ($conn)"
	RB_BROKER_PID=
	rb_ctl close_connection "$conn" "bus-lost test" >/dev/null ||
	    rb_fail "close_connection failed"
	rb_wait_for "resbusd to exit" 30 rb_dead "$pid"
	wait "$pid" 2>/dev/null
	rc=$?
	rb_assert_eq 1 "$rc" "resbusd's exit status after losing \"$name\""
	rb_assert_match 'AMQP connection lost: .*bus-lost test.*exiting' \
	    "$(tail -n 5 "$RB_TMP/resbusd.out")" "resbusd's last words"
}

rb_start_worker
rb_start_broker
RB_WAIT_INTERVAL=1 rb_wait_for "the publishing connection" 30 \
    has_conn 'resbusd (publish)'
rb_assert_eq 1 "$(conn_of resbusd | wc -l)" "consuming connections"
rb_assert_eq 1 "$(conn_of 'resbusd (publish)' | wc -l)" \
    "publishing connections"
cycle

for name in 'resbusd (publish)' resbusd; do
	lose "$name"
	# A ticket asked for while resbusd is away waits in its queue.
	rb_resbus ticket --tag buslost --timeout 60 >"$RB_TMP/t.out" \
	    2>"$RB_TMP/t.err" &
	tpid=$!
	rb_track "$tpid"
	rb_start_broker
	rb_wait_for "resbus ticket to return" 60 rb_dead "$tpid"
	wait "$tpid" || rb_fail "resbus ticket failed: $(cat "$RB_TMP/t.err")"
	id=$(cat "$RB_TMP/t.out")
	rb_assert_match '^[0-9]+$' "$id" "ticket id"
	rb_resbus ticket-wait "$id" --timeout 60 >/dev/null ||
	    rb_fail "ticket $id, taken while resbusd was away, was not served"
	rb_resbus ticket-close "$id" || rb_fail "ticket-close $id failed"
	cycle
done

rb_stop_broker
rb_stop_worker
rb_done
