#!/bin/bash
# Leases and deadlines as a ticket's holder sees them.  A holder that
# renews (`resbus ticket-hold --interval 1`) keeps a ticket with --lease 4
# well past 4 s; once it is killed with SIGKILL the ticket is closed
# within the lease (+ a margin) and its resource deleted; a leased ticket
# of a sandbox that nobody renews is closed and its resource kept for
# reuse in the sandbox; a holder exits by itself when its ticket is
# closed.  A ticket with --deadline 2 that cannot be served is closed
# after about 2 s, and one served in time is not.  Run once per store
# (SQLite, PostgreSQL).
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck disable=SC2317 # functions called through rb_wait_for
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/policy/lib.sh
. "$RESBUS_SRCDIR/tests/policy/lib.sh"

pol_begin policy-lease "$@"
pol_server_yaml ''

rb_pools <<'EOF'
lp:
  max: 3
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  cmd_release: "@DRIVERDIR@/release"
  reuse_opportunity_time: 60
  tags: [lt]
dp:
  max: 1
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [dt]
EOF

rb_start_worker
rb_start_broker

now_ms() {
	date +%s%3N
}
# take ARGS...: a ticket, waited for: T its id, R its resource's name.
take() {
	T=$(rb_resbus ticket "$@") || rb_fail "resbus ticket $* failed ($?)"
	local data
	data=$(rb_resbus ticket-wait "$T" --timeout 30) ||
	    rb_fail "ticket $T ($*) was not served ($?)"
	R=${data#local:"$RESBUS_LOCAL_ROOT"/}
	rb_local_exists "$R" || rb_fail "resource $R of ticket $T is missing"
}
# hold ID: a holder renewing ID every second, in the background (the
# resbus process itself, so that SIGKILL reaches it): HOLDER its PID.
hold() {
	"$RB_RESBUS" ticket-hold "$1" --interval 1 \
	    >>"$RB_TMP/holder.out" 2>&1 </dev/null &
	HOLDER=$!
	rb_track "$HOLDER"
}

# (a) a renewing holder keeps its leased ticket past the lease time.
take --tag lt --lease 4
t1=$T r1=$R
hold "$t1"
h1=$HOLDER
kept() {
	pol_served "$t1" || { echo "ticket $t1 lost"; return 1; }
	rb_local_exists "$r1" || { echo "resource $r1 gone"; return 1; }
	rb_alive "$h1" || { echo "the holder of $t1 exited while the ticket is open"; return 1; }
}
RB_WAIT_INTERVAL=0.5 rb_hold_for "ticket $t1 kept while its holder renews (lease 4 s)" \
    8 kept

# (b) the holder dies: the ticket closes within the lease, the resource
# (no sandbox) is deleted.
kill -KILL "$h1"
killed=$(now_ms)
rb_wait_for "ticket $t1 to close after its holder died" 10 pol_closed "$t1"
closed=$(now_ms)
rb_wait_for "resource $r1 to be deleted" 10 rb_local_gone "$r1"
gone=$(now_ms)
rb_log "ticket $t1 closed $((closed - killed)) ms after its holder died," \
    "resource gone after $((gone - killed)) ms"
# The last renewal was at most 1 s before the kill: the lease runs out
# 3-4 s after it, not at once.
[ $((closed - killed)) -ge 2000 ] ||
    rb_fail "ticket $t1 closed $((closed - killed)) ms after the kill: sooner than its lease"
[ $((gone - killed)) -le 7000 ] ||
    rb_fail "resource $r1 gone $((gone - killed)) ms after the kill (lease 4 s + 3 s margin)"
grep -q "ticket $t1: lease lapsed" "$RB_TMP/resbusd.out" ||
    rb_fail "resbusd did not log the lapsed lease of $t1"

# (c) a leased ticket of a sandbox that nobody renews: closed, its
# resource released and reused by the next ticket of the sandbox.
take --tag lt --lease 3 --sandbox sb1
t2=$T r2=$R
opened=$(now_ms)
rb_wait_for "ticket $t2 to close without renewals" 10 pol_closed "$t2"
rb_log "ticket $t2 closed $(($(now_ms) - opened)) ms after it was served"
rb_hold_for "resource $r2 of sandbox sb1 kept for reuse" 1 rb_local_exists "$r2"
take --tag lt --sandbox sb1
rb_assert_eq "$r2" "$R" "resource of the next ticket of sandbox sb1"
rb_resbus ticket-close "$T" >/dev/null || rb_fail "ticket-close $T failed"

# (d) a holder exits (0) by itself once its ticket is closed.
take --tag lt --lease 4
t3=$T
hold "$t3"
h3=$HOLDER
rb_hold_for "the holder of $t3 to keep renewing while the ticket is open" 1.5 \
    rb_alive "$h3"
rb_resbus ticket-close "$t3" >/dev/null || rb_fail "ticket-close $t3 failed"
rb_wait_for "the holder of $t3 to exit" 10 rb_dead "$h3"
wait "$h3"
rb_assert_eq 0 "$?" "exit status of the holder of a closed ticket"

# (e) a deadline: dp's only resource is taken, so a ticket with
# --deadline 2 cannot be served and is closed after about 2 s.
take --tag dt
d0=$T
t4=$(rb_resbus ticket --tag dt --deadline 2) || rb_fail "resbus ticket --deadline failed"
opened=$(now_ms)
rb_assert_eq OPEN "$(pol_state "$t4")" "a ticket with a deadline, at first"
rb_wait_for "ticket $t4 to close at its deadline" 10 pol_closed "$t4"
closed=$(now_ms)
rb_log "ticket $t4 closed $((closed - opened)) ms after it was opened"
{ [ $((closed - opened)) -ge 1000 ] && [ $((closed - opened)) -le 4500 ]; } ||
    rb_fail "ticket $t4 with --deadline 2 closed after $((closed - opened)) ms"
grep -q "ticket $t4: deadline passed" "$RB_TMP/resbusd.out" ||
    rb_fail "resbusd did not log the deadline of $t4"
pol_served "$d0" || rb_fail "ticket $d0 lost its resource"

# A ticket served before its deadline keeps its resource after it.
rb_resbus ticket-close "$d0" >/dev/null || rb_fail "ticket-close $d0 failed"
take --tag dt --deadline 2
t5=$T
RB_WAIT_INTERVAL=0.5 rb_hold_for "ticket $t5, served before its deadline (2 s), keeps its resource" \
    4 pol_served "$t5"
rb_resbus ticket-close "$t5" >/dev/null || rb_fail "ticket-close $t5 failed"

rb_assert_eq 0 "$(pol_log_count ' -> FAILED')" "tickets that failed"
rb_done
