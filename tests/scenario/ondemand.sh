#!/bin/bash
# On-demand pools (tags_on_demand): nothing starts without demand; one
# ticket starts exactly one resource, in the pool whose tag priority is
# best, and a second ticket the next pool once the first is full; closing
# a ticket whose resource is still starting cancels the start and deletes
# it (cmd_delete runs, nothing is left).  Run once per store (SQLite,
# PostgreSQL).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

# Without an argument the test runs itself once per store.
rb_per_store ondemand "$@"

# alow sorts first by name, so only the priority makes zhigh the first
# choice.
rb_pools <<'EOF'
alow:
  max: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags_on_demand:
    - name: big
      priority: 0
zhigh:
  max: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags_on_demand:
    - name: big
      priority: 10
slow:
  max: 2
  cmd_new: "RESBUS_LOCAL_DELAY=6 @DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags_on_demand: [slowtag]
EOF

starts() {
	grep -c ': starting in pool ' "$RB_TMP/resbusd.out"
}

# The resource id in a default name (pool_00000012_date_time) -> 000012.
hook_id() {
	local n=${1#*_}
	n=$((10#${n%%_*}))
	printf '%06d\n' "$n"
}

rb_start_worker
rb_start_broker

# starts_and_count N M: N starts so far and M resources.
starts_and_count() {
	[ "$(starts)" -eq "$1" ] && rb_local_count_is "$2"
}

# (a) no demand, no start.
rb_hold_for "no start and no resource without any ticket" 3 \
    starts_and_count 0 0

# (b) one ticket: exactly one start, in zhigh (priority 10 over 0).
t1=$(rb_resbus ticket --tag big) || rb_fail "resbus ticket failed ($?)"
data=$(rb_resbus ticket-wait "$t1" --timeout 60) ||
    rb_fail "ticket-wait $t1 failed ($?)"
rb_assert_match "^local:$RESBUS_LOCAL_ROOT/zhigh_" "$data" \
    "data of the first on-demand ticket (the better-priority pool)"
r1=${data#local:"$RESBUS_LOCAL_ROOT"/}
only_r1() {
	[ "$(starts)" -eq 1 ] && [ "$(rb_local_resources)" = "$r1" ]
}
rb_hold_for "one start and one resource ($r1) only for one ticket" 2 only_r1

# (c) a second ticket: zhigh is full (max 1), so alow starts one.
t2=$(rb_resbus ticket --tag big) || rb_fail "resbus ticket failed ($?)"
data=$(rb_resbus ticket-wait "$t2" --timeout 60) ||
    rb_fail "ticket-wait $t2 failed ($?)"
rb_assert_match "^local:$RESBUS_LOCAL_ROOT/alow_" "$data" \
    "data of the second on-demand ticket"
r2=${data#local:"$RESBUS_LOCAL_ROOT"/}
rb_hold_for "two starts only for two tickets" 2 starts_and_count 2 2

# Closed, they are deleted, and nothing starts in their place.
rb_resbus ticket-close "$t1" || rb_fail "ticket-close $t1 failed ($?)"
rb_resbus ticket-close "$t2" || rb_fail "ticket-close $t2 failed ($?)"
rb_wait_for "cmd_delete to remove $r1" 60 rb_local_gone "$r1"
rb_wait_for "cmd_delete to remove $r2" 60 rb_local_gone "$r2"
rb_hold_for "no start and no resource after the on-demand tickets closed" 2 \
    starts_and_count 2 0

# (d) a ticket closed while its resource is still starting (cmd_new takes
# 6 s): the start is cancelled and the resource deleted.
t3=$(rb_resbus ticket --tag slowtag) || rb_fail "resbus ticket failed ($?)"
starting_slow() {
	grep -q ': starting in pool slow ' "$RB_TMP/resbusd.out"
}
rb_wait_for "a start in pool slow" 30 starting_slow
r3=$(sed -n 's/.*resource [0-9]* \(slow_[^ :]*\): starting in pool slow .*/\1/p' \
    "$RB_TMP/resbusd.out")
rb_log "starting: $r3"
booting() {
	grep -q "booting $r3" "$RB_LOGDIR/hooks/$(hook_id "$r3")_alloc" 2>/dev/null
}
rb_wait_for "cmd_new of $r3 to run" 30 booting
if out=$(rb_resbus ticket-check "$t3" 2>&1); then
	rb_fail "ticket-check $t3 succeeded while its resource starts: $out"
fi
rb_resbus ticket-close "$t3" || rb_fail "ticket-close $t3 failed ($?)"
terminated() {
	grep -q "local/delete: .*$r3" "$RB_LOGDIR/hooks/$(hook_id "$r3")_terminate" 2>/dev/null
}
rb_wait_for "cmd_delete of $r3" 30 terminated
# Past the 6 s cmd_new would have taken: it was stopped, and made nothing.
rb_hold_for "no resource and no further start after the cancelled start" 7 \
    starts_and_count 3 0
grep -q "resource [0-9]* $r3: start cancelled" "$RB_TMP/resbusd.out" ||
    rb_fail "resbusd did not log the cancelled start of $r3"
grep -q "resource [0-9]* $r3: ENDED" "$RB_TMP/resbusd.out" ||
    rb_fail "resbusd did not end the cancelled resource $r3"
err=$(rb_resbus ticket-check "$t3" 2>&1 >/dev/null) &&
    rb_fail "ticket-check of closed ticket $t3 succeeded"
rb_assert_match 'already closed ticket' "$err" "ticket-check of the closed ticket"

rb_done
