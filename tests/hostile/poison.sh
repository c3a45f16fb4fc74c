#!/bin/bash
# A message that kills resbusd while it handles it must not keep resbusd
# down: once delivered max_redeliveries times (3 by default) to a resbusd
# that died handling it, it is dead-lettered at the next start, with a
# log line naming it, and resbusd serves.
#
# The death is real, the poison is simulated.  resbusd is made to be in
# the middle of handling mallory's TicketRequest each time: the message is
# decoded, the ticket made in memory and its commit sent, but PostgreSQL
# holds the commit back: this test has inserted a row with the ID the
# ticket will get, in a transaction it leaves open, so resbusd's insert
# waits for it (the row is invisible to resbusd's load, and a table lock
# would stop resbusd's start, which prepares its statements).  Then
# resbusd is killed (SIGKILL) with the message unacknowledged, and
# RabbitMQ gives it again at the next start.  After the third death the
# row is rolled back (and the orphaned sessions of the dead processes
# ended), and the fourth start must dead-letter the message instead of
# handling it: no ticket comes of it.
# shellcheck disable=SC2317 # functions called through rb_wait_for
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/hostile/lib.sh
. "$RESBUS_SRCDIR/tests/hostile/lib.sh"

rbh_setup poison postgresql
rb_pools <<'EOF2'
demo:
  max: 3
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  cmd_list: "@DRIVERDIR@/list"
  tags: [demo, poison]
EOF2
rbh_start
rb_wait_for "the preallocated resource" 60 rb_local_count_is 1
rbh_cycle alice --tag demo

psql_db() {
	timeout -k 5 120 psql -X -q -v ON_ERROR_STOP=1 -h "$RESBUS_TEST_PG_HOST" \
	    -p "$RESBUS_TEST_PG_PORT" -U "${RESBUS_TEST_PG_USER:-resbus}" \
	    -d "$RB_PG_DB" -At "$@"
}
# Ends the sessions of dead resbusd processes that wait for the lock.
end_orphans() {
	psql_db -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
	    WHERE datname = current_database() AND pid <> pg_backend_pid()
	    AND wait_event_type = 'Lock'" >/dev/null ||
	    rb_fail "cannot end the orphaned sessions"
}

# The blocking row, held by a psql session until $RB_TMP/locked goes.
next_id=$(($(psql_db -c "SELECT value FROM meta WHERE key = 'last_ticket_id'") + 1))
rb_log "the poison ticket will be $next_id"
touch "$RB_TMP/locked"
{
	echo "BEGIN;"
	echo "CREATE TEMP TABLE t AS SELECT * FROM tickets WHERE id = 1;"
	echo "UPDATE t SET id = $next_id;"
	echo "INSERT INTO tickets SELECT * FROM t;"
	echo "SELECT 'locked';"
	while [ -e "$RB_TMP/locked" ]; do sleep 0.2; done
	echo "ROLLBACK;"
} | psql_db >"$RB_TMP/lock.out" 2>&1 &
lockpid=$!
rb_track "$lockpid"
rb_wait_for "the blocking row" 20 grep -q locked "$RB_TMP/lock.out"

handling() { # N: resbusd's output shows the poison ticket made N times
	[ "$(rbh_log_count 'OPEN, tags poison')" -ge "$1" ]
}
handled() { # N: exactly N times
	[ "$(rbh_log_count 'OPEN, tags poison')" -eq "$1" ]
}
# Whether a session (resbusd's) waits for the blocking row's lock.
commit_held() {
	[ "$(psql_db -c "SELECT count(*) FROM pg_stat_activity
	    WHERE datname = current_database() AND pid <> pg_backend_pid()
	    AND wait_event_type = 'Lock'")" -ge 1 ]
}
dead=$(rbh_dead_count)
rbh_amqp mallory publish TicketRequest \
    "{'idempotency_key': 'poison-$RANDOM', 'tags': ['poison']}" \
    --exchange resbus.ticket --key poison --reply-to nobody ||
    rb_fail "cannot publish the poison message"
for i in 1 2 3; do
	rb_wait_for "resbusd to handle the poison message ($i)" 30 handling "$i"
	rb_wait_for "PostgreSQL to hold back resbusd's commit of the poison ticket ($i)" \
	    30 commit_held
	rb_stop_broker -9
	end_orphans
	if [ "$i" -lt 3 ]; then
		rbh_start_broker
	fi
done
rm -f "$RB_TMP/locked"
wait "$lockpid" || rb_fail "the blocking session failed: $(cat "$RB_TMP/lock.out")"
end_orphans

# The fourth start: the message goes to resbus.dead, not to the store.
rbh_start_broker
RBH_BROKER_STARTS=4
rbh_wait_dead $((dead + 1)) "the poison message"
rb_hold_for "resbusd to have handled the poison message 3 times, no more" 2 \
    handled 3
line=$(tail -n +"$(grep -n '^===== resbusd' "$RB_TMP/resbusd.out" | tail -n 1 |
    cut -d: -f1)" "$RB_TMP/resbusd.out" | grep -E 'resbus\.dead|dead-letter')
rb_log "the log line: $line"
rb_assert_match 'TicketRequest|resbus\.ticket' "$line" \
    "the log line about the poison message"
peek=$(rbh_dead_peek)
rbh_dead_by "$peek" mallory
list=$(rbh_maint admin ticket-list) || rb_fail "ticket-list failed"
rb_assert_no_match 'poison' "$list" "tickets after the poison message"
rb_assert_eq 0 "$(psql_db -c "SELECT count(*) FROM tickets WHERE tagset LIKE '%poison%'")" \
    "poison tickets in the store"

rbh_after_attack alice --tag demo
rb_done
