#!/bin/bash
# Tickets survive resbusd being away: a ticket asked for while resbusd is
# down is accepted and served once it starts, and a client waiting on a
# ticket across a restart (clean, and SIGKILL) is still served.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

rb_setup restart
rb_pools <<'EOF'
restart:
  max: 1
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  cmd_list: "@DRIVERDIR@/list"
  tags: [demo]
EOF

rb_start_worker
rb_start_broker
rb_wait_for "the preallocated resource" 60 rb_local_count_is 1
r1=$(rb_local_resources)

# (g) a ticket asked for while resbusd is down.
rb_stop_broker
rb_resbus ticket --tag demo --timeout 60 >"$RB_TMP/g.out" 2>"$RB_TMP/g.err" &
gpid=$!
rb_track "$gpid"
rb_hold_for "resbus ticket to wait while resbusd is down" 3 rb_alive "$gpid"
rb_start_broker
rb_wait_for "resbus ticket to return once resbusd runs" 60 rb_dead "$gpid"
wait "$gpid"
rc=$?
[ "$rc" -eq 0 ] || rb_fail "resbus ticket exited $rc: $(cat "$RB_TMP/g.err")"
a=$(cat "$RB_TMP/g.out")
rb_assert_match '^[0-9]+$' "$a" "ticket id printed after resbusd started"
data=$(rb_resbus ticket-wait "$a" --timeout 60) ||
    rb_fail "resbus ticket-wait $a failed ($?)"
rb_assert_eq "local:$RESBUS_LOCAL_ROOT/$r1" "$data" "data of the ticket taken while resbusd was down"

# (h) a second ticket has to wait (the pool's max is 1) ...
b=$(rb_resbus ticket --tag demo) || rb_fail "resbus ticket failed ($?)"
rb_assert_match '^[0-9]+$' "$b" "ticket id"
rb_resbus ticket-wait "$b" --timeout 300 >"$RB_TMP/h.out" 2>"$RB_TMP/h.err" &
hpid=$!
rb_track "$hpid"
h_waits() {
	rb_alive "$hpid" && return 0
	echo "ticket-wait $b returned: $(cat "$RB_TMP/h.out" "$RB_TMP/h.err")"
	return 1
}
rb_hold_for "ticket-wait $b to wait while the pool is full" 2 h_waits
if rb_resbus ticket-check "$b" >/dev/null 2>&1; then
	rb_fail "ticket-check $b succeeded while the pool was full"
fi

# ... across a clean restart of resbusd ...
rb_stop_broker
rb_hold_for "ticket-wait $b to wait while resbusd is down" 1 h_waits
rb_start_broker
rb_hold_for "ticket-wait $b to wait across the restart" 1 h_waits

# ... and is served once the first ticket is closed.
rb_resbus ticket-close "$a" || rb_fail "resbus ticket-close $a failed ($?)"
rb_wait_for "cmd_delete to remove $r1" 60 rb_local_gone "$r1"
rb_wait_for "ticket-wait $b to return" 90 rb_dead "$hpid"
wait "$hpid"
rc=$?
[ "$rc" -eq 0 ] || rb_fail "ticket-wait $b exited $rc: $(cat "$RB_TMP/h.err")"
r2=$(rb_local_resources)
rb_assert_eq 1 "$(printf '%s\n' "$r2" | grep -c .)" "resources once the second ticket is served"
[ "$r2" != "$r1" ] || rb_fail "the second ticket got the deleted resource $r1"
rb_assert_eq "local:$RESBUS_LOCAL_ROOT/$r2" "$(cat "$RB_TMP/h.out")" "data for the waiting ticket"

# A crash of resbusd loses nothing either: the ticket is still held, and
# a waiter that starts during the outage is answered after it.
rb_stop_broker -9
rb_resbus ticket-wait "$b" --timeout 120 >"$RB_TMP/k.out" 2>"$RB_TMP/k.err" &
kpid=$!
rb_track "$kpid"
rb_hold_for "ticket-wait $b to wait while resbusd is down (crashed)" 1 \
    rb_alive "$kpid"
rb_start_broker
rb_wait_for "ticket-wait $b to return after the crash" 60 rb_dead "$kpid"
wait "$kpid"
rc=$?
[ "$rc" -eq 0 ] || rb_fail "ticket-wait $b after the crash exited $rc: $(cat "$RB_TMP/k.err")"
rb_assert_eq "local:$RESBUS_LOCAL_ROOT/$r2" "$(cat "$RB_TMP/k.out")" "data after the crash"
data=$(rb_resbus ticket-check "$b") || rb_fail "ticket-check $b after the crash failed ($?)"
rb_assert_eq "local:$RESBUS_LOCAL_ROOT/$r2" "$data" "ticket-check after the crash"
rb_resbus ticket-close "$b" || rb_fail "resbus ticket-close $b failed ($?)"
rb_wait_for "cmd_delete to remove $r2" 60 rb_local_gone "$r2"

rb_done
