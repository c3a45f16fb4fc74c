#!/bin/bash
# An answer that waits for the store is not lost in a crash.  A ticket
# resbusd has closed is no longer in its memory: a close or a check of it
# is answered from the store.  With the store's tickets table locked, those
# lookups wait; resbusd is killed with SIGKILL meanwhile, the lock is
# released and resbusd started again -- and both clients still get their
# answer, because a request is acknowledged only with its reply.
# PostgreSQL only: the SQLite store answers at once, on the broker's loop.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

rb_setup reply-crash
rb_use_postgres
rb_pools <<'EOF'
replycrash:
  max: 1
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [demo]
EOF

LOCKER=resbus-test-lock

rb_start_worker
rb_start_broker
rb_wait_for "the preallocated resource" 60 rb_local_count_is 1

id=$(rb_resbus ticket --tag demo --timeout 60) || rb_fail "resbus ticket failed ($?)"
rb_assert_match '^[0-9]+$' "$id" "ticket id"
data=$(rb_resbus ticket-wait "$id" --timeout 60) ||
    rb_fail "resbus ticket-wait $id failed ($?)"
rb_resbus ticket-close "$id" --timeout 60 || rb_fail "resbus ticket-close $id failed ($?)"

# A session that holds the tickets table until it is terminated.
sql() {
	rb_psql "$RB_PG_DB" -At -c "$1"
}
PGAPPNAME=$LOCKER rb_psql "$RB_PG_DB" \
    -c "BEGIN; LOCK TABLE tickets IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(300);" \
    >/dev/null 2>&1 &
rb_track "$!"
locked() {
	[ "$(sql "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
	    WHERE c.relname = 'tickets' AND l.mode = 'AccessExclusiveLock' AND l.granted")" = 1 ]
}
rb_wait_for "the tickets table to be locked" 30 locked

# resbusd's lookups wait for the lock.
lookup_waits() {
	[ "$(sql "SELECT count(*) FROM pg_stat_activity
	    WHERE wait_event_type = 'Lock' AND datname = current_database()")" -ge 1 ]
}
rb_resbus ticket-close "$id" --timeout 90 >"$RB_TMP/close.out" 2>"$RB_TMP/close.err" &
cpid=$!
rb_track "$cpid"
rb_wait_for "resbusd's lookup for the close to wait for the lock" 30 lookup_waits
# Clients' reply queues are server-named.
reply_queues() {
	rb_queues | grep -c '^amq\.gen-'
}
n=$(reply_queues)
rb_resbus ticket-check "$id" --timeout 90 >"$RB_TMP/check.out" 2>"$RB_TMP/check.err" &
qpid=$!
rb_track "$qpid"
check_taken() {
	[ "$(reply_queues)" -gt "$n" ] &&
	    [ "$(rb_ctl list_queues -p "$RB_VHOST" -s name messages_ready |
		awk '$1 == "resbus.request" { print $2 }')" = 0 ]
}
rb_wait_for "resbusd to take the check from its queue" 30 check_taken
both_wait() {
	rb_alive "$cpid" || { echo "ticket-close returned: $(cat "$RB_TMP/close.out" "$RB_TMP/close.err")"; return 1; }
	rb_alive "$qpid" || { echo "ticket-check returned: $(cat "$RB_TMP/check.out" "$RB_TMP/check.err")"; return 1; }
}
RB_WAIT_INTERVAL=0.1 rb_hold_for "ticket-close and ticket-check to wait while the store is locked" \
    0.5 both_wait

rb_stop_broker -9
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE application_name = '$LOCKER'" >/dev/null
rb_wait_for "the lock to be released" 30 eval '! locked'
rb_start_broker

rb_wait_for "ticket-close to return" 60 rb_dead "$cpid"
wait "$cpid"
rc=$?
[ "$rc" -eq 0 ] || rb_fail "ticket-close $id across the crash exited $rc: $(cat "$RB_TMP/close.err")"
rb_wait_for "ticket-check to return" 60 rb_dead "$qpid"
wait "$qpid"
rc=$?
rb_assert_eq 1 "$rc" "exit status of ticket-check $id across the crash ($(cat "$RB_TMP/check.err"))"
rb_assert_eq "WARNING: already closed ticket" "$(cat "$RB_TMP/check.err")" "ticket-check's warning"
rb_assert_eq "$data" "$(cat "$RB_TMP/check.out")" "ticket-check's data"

rb_done
