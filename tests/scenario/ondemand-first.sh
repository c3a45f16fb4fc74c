#!/bin/bash
# On-demand resources go to on-demand tickets first, as with resalloc
# (its reference, section 3.5): when a resource of an on-demand pool
# becomes free, by release for reuse or by starting, the waiting tickets
# that asked for one of the pool's on-demand tags get it first, oldest
# first; only then other matching tickets.
#
# Pool ondemand2 (tags A, B, C2; on-demand tag ondemand2; reuse for 5 s)
# is at its max of 1: T11 {A,B,ondemand2} in sandbox retake holds R, and
# T12 {A,B,C2}, T13 {A,B}, T14 {A,B,ondemand2} wait, all in sandbox
# retake.  Closing T11 gives R to T14 (the only on-demand ticket), then
# closing T14 gives it to T12 (the oldest of the others), then T13.  A
# start made for an on-demand ticket goes to it, not to an older
# non-on-demand ticket that waits too; and a start whose on-demand ticket
# closes while it runs goes on to serve another matching ticket that
# waits (it is cancelled only when none does).  Run once per store
# (SQLite, PostgreSQL).
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck disable=SC2317 # functions called through rb_wait_for
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

# Without an argument the test runs itself once per store.
rb_per_store ondemand-first "$@"

rb_pools <<'EOF'
ondemand2:
  max: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  reuse_opportunity_time: 5
  tags: [A, B, C2]
  tags_on_demand: [ondemand2, ondemand2b]
slowod:
  max: 1
  cmd_new: "RESBUS_LOCAL_DELAY=4 @DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [S]
  tags_on_demand: [slowod]
EOF

take() { # SANDBOX TAG...: a ticket's ID
	local sb=$1 args=() t
	shift
	for t in "$@"; do
		args+=(--tag "$t")
	done
	rb_resbus ticket --sandbox "$sb" "${args[@]}" ||
	    rb_fail "resbus ticket --sandbox $sb ${args[*]} failed ($?)"
}

# Whether no ticket ID... has a resource; says which one has.
all_wait() {
	local t out
	for t in "$@"; do
		if out=$(rb_resbus ticket-check "$t" 2>&1); then
			echo "ticket $t has a resource: $out"
			return 1
		fi
	done
}

waits() { # ID: the ticket has no resource yet
	local out
	if out=$(rb_resbus ticket-check "$1" 2>&1); then
		rb_fail "ticket $1 has a resource, expected it to wait: $out"
	fi
	rb_assert_match 'ticket is still not processed' "$out" "ticket-check $1"
}

rb_start_worker
rb_start_broker

# T11 starts R (nothing preallocates in an on-demand pool).
t11=$(take retake A B ondemand2)
r=$(rb_resbus ticket-wait "$t11" --timeout 60) ||
    rb_fail "ticket-wait $t11 failed ($?)"
rb_assert_match "^local:$RESBUS_LOCAL_ROOT/ondemand2_" "$r" "data of T11"
rb_log "T11 ($t11) holds $r"

t12=$(take retake A B C2)
t13=$(take retake A B)
t14=$(take retake A B ondemand2)
rb_hold_for "T12, T13 and T14 to wait while T11 holds R" 2 \
    all_wait "$t12" "$t13" "$t14"
for t in "$t12" "$t13" "$t14"; do
	waits "$t"
done

# Closing T11: R is released for sandbox retake and goes to T14.
rb_resbus ticket-close "$t11" || rb_fail "ticket-close $t11 failed"
data=$(rb_resbus ticket-wait "$t14" --timeout 30) ||
    rb_fail "ticket-wait $t14 (T14) failed ($?)"
rb_assert_eq "$r" "$data" "the resource of T14 after T11 closed"
waits "$t12"
waits "$t13"

# Then the oldest of the others: T12, and after it T13.
rb_resbus ticket-close "$t14" || rb_fail "ticket-close $t14 failed"
data=$(rb_resbus ticket-wait "$t12" --timeout 30) ||
    rb_fail "ticket-wait $t12 (T12) failed ($?)"
rb_assert_eq "$r" "$data" "the resource of T12 after T14 closed"
waits "$t13"
rb_resbus ticket-close "$t12" || rb_fail "ticket-close $t12 failed"
data=$(rb_resbus ticket-wait "$t13" --timeout 30) ||
    rb_fail "ticket-wait $t13 (T13) failed ($?)"
rb_assert_eq "$r" "$data" "the resource of T13 after T12 closed"
rb_resbus ticket-close "$t13" || rb_fail "ticket-close $t13 failed"

# Nobody reuses R within 5 s: it is deleted, and the pool is empty.
rb_wait_for "R to be deleted" 60 rb_local_count_is 0

# By starting: T21 {A,B} waits (it starts nothing), T22 {A,B,ondemand2b}
# starts a resource, and that resource goes to T22.
t21=$(take other A B)
rb_hold_for "T21 {A,B} to wait (it starts nothing)" 1 all_wait "$t21"
waits "$t21"
t22=$(take another A B ondemand2b)
data=$(rb_resbus ticket-wait "$t22" --timeout 60) ||
    rb_fail "ticket-wait $t22 (T22) failed ($?)"
rb_assert_match "^local:$RESBUS_LOCAL_ROOT/ondemand2_" "$data" "data of T22"
waits "$t21"
rb_resbus ticket-close "$t22" || rb_fail "ticket-close $t22 failed"
rb_resbus ticket-close "$t21" || rb_fail "ticket-close $t21 failed"

# A start whose on-demand ticket closes goes on when another matching
# ticket waits, and serves it (resalloc's ondemand.sh): T31 {S} waits,
# T32 {S,slowod} starts a resource (4 s) and closes while it starts.
t31=$(take x S)
t32=$(take y S slowod)
starting_slow() {
	grep -q ': starting in pool slowod ' "$RB_TMP/resbusd.out"
}
rb_wait_for "a start in pool slowod" 30 starting_slow
rb_resbus ticket-close "$t32" || rb_fail "ticket-close $t32 failed"
data=$(rb_resbus ticket-wait "$t31" --timeout 60) ||
    rb_fail "ticket-wait $t31 (T31) failed ($?)"
rb_assert_match "^local:$RESBUS_LOCAL_ROOT/slowod_" "$data" "data of T31"
grep -q 'start cancelled' "$RB_TMP/resbusd.out" &&
    rb_fail "the start of T32 was cancelled while T31 waited"
rb_assert_eq 1 "$(grep -c ': starting in pool slowod ' "$RB_TMP/resbusd.out")" \
    "starts in pool slowod"
rb_resbus ticket-close "$t31" || rb_fail "ticket-close $t31 failed"

rb_done
