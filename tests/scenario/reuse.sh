#!/bin/bash
# Reuse within a sandbox, as resalloc: a closed ticket's resource goes
# through cmd_release and waits reuse_opportunity_time for a ticket of the
# same sandbox, which gets it (the same data) in preference to a fresh
# one; a ticket of another sandbox does not; reuse_max_count N allows N
# reuses (N+1 tickets); reuse_max_time limits reuse by the time since the
# first assignment; a resource nobody reuses in time is deleted; a failed
# cmd_release means no reuse.  Run once per store (SQLite, PostgreSQL).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

# Without an argument the test runs itself once per store.
rb_per_store reuse "$@"

rb_pools <<'EOF'
re:
  max: 4
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  cmd_release: "@DRIVERDIR@/release"
  reuse_opportunity_time: 5
  reuse_max_count: 2
  tags: [re]
rt:
  max: 3
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  reuse_opportunity_time: 60
  reuse_max_time: 4
  tags: [rt]
rf:
  max: 3
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  cmd_release: "@DRIVERDIR@/release; exit 3"
  reuse_opportunity_time: 60
  tags: [rf]
EOF

# take TAG SANDBOX: a ticket, waited for; sets T (its id) and R (the name
# of its resource).
take() {
	T=$(rb_resbus ticket --tag "$1" --sandbox "$2") ||
	    rb_fail "resbus ticket --tag $1 --sandbox $2 failed ($?)"
	local data
	data=$(rb_resbus ticket-wait "$T" --timeout 60) ||
	    rb_fail "ticket-wait $T failed ($?)"
	rb_assert_match "^local:$RESBUS_LOCAL_ROOT/$1_" "$data" "data of ticket $T"
	R=${data#local:"$RESBUS_LOCAL_ROOT"/}
	rb_log "ticket $T (--tag $1 --sandbox $2) got $R"
}

close() {
	rb_resbus ticket-close "$1" || rb_fail "ticket-close $1 failed ($?)"
}

# released NAME N: resbusd has put NAME back UP after cmd_release N times.
released() {
	[ "$(grep -c "resource [0-9]* $1: RELEASING -> UP" "$RB_TMP/resbusd.out")" -ge "$2" ]
}

# Whether NAME, a released resource, waits idle (UP with no ticket).
idle() {
	[ "$(grep "resource [0-9]* $1: [A-Z_]* -> [A-Z_]*" "$RB_TMP/resbusd.out" |
	    tail -n 1 | sed 's/.* -> //')" = UP ]
}

rb_start_worker
rb_start_broker
for p in re rt rf; do
	rb_wait_for "the preallocated resource of pool $p" 60 \
	    compgen -G "$RESBUS_LOCAL_ROOT/${p}_*"
done

# (a) sandbox S1: released through cmd_release, then reused -- the same
# resource, with its scratch directory emptied -- though a fresh resource
# is free too.
take re S1
t1=$T r1=$R
touch "$RESBUS_LOCAL_ROOT/$r1/scratch/left-by-ticket-$t1"
close "$t1"
rb_wait_for "cmd_release of $r1" 30 released "$r1" 1

# (b) another sandbox does not get it.
take re S2
t2=$T r2=$R
[ "$r2" != "$r1" ] || rb_fail "ticket $t2 of sandbox S2 got $r1, released by sandbox S1"

take re S1
t3=$T
rb_assert_eq "$r1" "$R" "resource of ticket $t3, the second of sandbox S1"
[ ! -e "$RESBUS_LOCAL_ROOT/$r1/scratch/left-by-ticket-$t1" ] ||
    rb_fail "cmd_release did not empty $r1/scratch before its reuse"
grep -q "ticket $t3: got resource [0-9]* $r1 (reused)" "$RB_TMP/resbusd.out" ||
    rb_fail "resbusd did not log ticket $t3's resource as reused"
close "$t3"
rb_wait_for "cmd_release of $r1" 30 released "$r1" 2

# (c) reuse_max_count 2: a third ticket of S1 gets it (second reuse), the
# fourth does not, and it is deleted after the third closes.
take re S1
t4=$T
rb_assert_eq "$r1" "$R" "resource of ticket $t4, the third of sandbox S1"
close "$t4"
rb_wait_for "cmd_delete to remove $r1 after reuse_max_count reuses" 30 \
    rb_local_gone "$r1"
take re S1
t5=$T
[ "$R" != "$r1" ] || rb_fail "ticket $t5 got $r1 past reuse_max_count"
close "$t5"

# (d) the opportunity window (5 s): S2's resource waits, then is deleted.
close "$t2"
rb_wait_for "cmd_release of $r2" 30 released "$r2" 1
t0=$(date +%s)
waits_for_s2() {
	rb_local_exists "$r2" || { echo "$r2 deleted"; return 1; }
	idle "$r2" || { echo "$r2 is not waiting (UP) for its sandbox"; return 1; }
}
rb_hold_for "$r2 to wait for sandbox S2 within reuse_opportunity_time" 3 \
    waits_for_s2
rb_wait_for "$r2 to be deleted after reuse_opportunity_time" 30 rb_local_gone "$r2"
rb_log "$r2 deleted $(($(date +%s) - t0)) s after its release"
grep -q "resource [0-9]* $r2: no ticket of sandbox S2 came in time" \
    "$RB_TMP/resbusd.out" || rb_fail "resbusd did not log why $r2 was deleted"
take re S2
[ "$R" != "$r2" ] || rb_fail "ticket $T got $r2 after its window"
close "$T"

# (e) reuse_max_time 4 (no cmd_release in pool rt): reused within 4 s of
# the first assignment, deleted when that time is up although
# reuse_opportunity_time (60 s) is not ...
t0=$(date +%s)
take rt S3
ra=$R
close "$T"
take rt S3
rb_assert_eq "$ra" "$R" "resource of the second ticket of sandbox S3"
close "$T"
rb_wait_for "$ra to be deleted after reuse_max_time" 30 rb_local_gone "$ra"
el=$(($(date +%s) - t0))
rb_log "$ra deleted $el s after its first assignment"
[ "$el" -ge 3 ] || rb_fail "$ra deleted $el s after its first assignment (reuse_max_time 4)"
take rt S3
[ "$R" != "$ra" ] || rb_fail "ticket $T got $ra past reuse_max_time"
close "$T"

# ... and a resource held longer than reuse_max_time is not reused.
take rt S4
held=$R
rb_hold_for "$held to stay with ticket $T past reuse_max_time (4 s)" 5 \
    rb_local_exists "$held"
close "$T"
rb_wait_for "$held to be deleted (held past reuse_max_time)" 30 rb_local_gone "$held"
take rt S4
[ "$R" != "$held" ] || rb_fail "ticket $T got $held, held past reuse_max_time"
close "$T"

# (f) a failing cmd_release: no reuse, the resource is deleted.
take rf S5
rf1=$R
close "$T"
rb_wait_for "$rf1 to be deleted after cmd_release failed" 30 rb_local_gone "$rf1"
grep -q "resource [0-9]* $rf1: cmd_release exited 3; not reused" \
    "$RB_TMP/resbusd.out" || rb_fail "resbusd did not log the failed cmd_release of $rf1"
take rf S5
[ "$R" != "$rf1" ] || rb_fail "ticket $T got $rf1 after its cmd_release failed"
close "$T"

rb_done
