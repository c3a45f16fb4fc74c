#!/bin/bash
# Livechecks: a taken resource whose cmd_livecheck fails
# livecheck_attempts times in a row is dead -- `resbus ticket-check` says
# "WARNING: assigned resource failed" and exits 1, the resource is
# deleted through cmd_delete and a replacement is preallocated -- while a
# healthy resource survives its livechecks.  Run once per store (SQLite,
# PostgreSQL).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

# Without an argument the test runs itself once per store.
rb_per_store livecheck "$@"

rb_pools <<'EOF'
live:
  max: 1
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  cmd_livecheck: "@DRIVERDIR@/livecheck"
  livecheck_period: 1
  livecheck_attempts: 3
  tags: [live]
EOF

# The resource id in a default name (pool_00000012_date_time) -> 000012.
hook_id() {
	local n=${1#*_}
	n=$((10#${n%%_*}))
	printf '%06d\n' "$n"
}

rb_start_worker
rb_start_broker

rb_wait_for "the preallocated resource" 60 rb_local_count_is 1
r1=$(rb_local_resources)
id=$(rb_resbus ticket --tag live) || rb_fail "resbus ticket failed ($?)"
data=$(rb_resbus ticket-wait "$id" --timeout 60) ||
    rb_fail "ticket-wait $id failed ($?)"
rb_assert_eq "local:$RESBUS_LOCAL_ROOT/$r1" "$data" "ticket data"

# A healthy resource passes its livechecks and stays.
# hook_log_has RESOURCE SUFFIX REGEX N: the resource's hook log has N
# lines matching REGEX.
hook_log_has() {
	[ "$(grep -c -- "$3" "$RB_LOGDIR/hooks/$(hook_id "$1")_$2" 2>/dev/null)" -ge "$4" ]
}
rb_wait_for "two livechecks of $r1" 30 hook_log_has "$r1" watch 'is alive' 2
data=$(rb_resbus ticket-check "$id") ||
    rb_fail "ticket-check $id of a healthy resource failed ($?)"
rb_assert_eq "local:$RESBUS_LOCAL_ROOT/$r1" "$data" "ticket-check of a healthy resource"

# The resource dies under its ticket.
rm -rf "${RESBUS_LOCAL_ROOT:?}/$r1"
rb_log "removed $r1"
t0=$(date +%s)
ticket_failed() {
	local err
	err=$(rb_resbus ticket-check "$id" 2>&1 >/dev/null) && return 1
	printf '%s\n' "$err" | grep -q 'assigned resource failed'
}
rb_wait_for "ticket $id to fail" 30 ticket_failed
t1=$(date +%s)
rb_log "ticket $id failed $((t1 - t0)) s after the resource died"
# Three failures a second apart: not at the first one.
[ $((t1 - t0)) -ge 2 ] ||
    rb_fail "ticket $id failed after $((t1 - t0)) s, before livecheck_attempts (3) failures"
fails=$(grep -c 'is gone' "$RB_LOGDIR/hooks/$(hook_id "$r1")_watch")
[ "$fails" -ge 3 ] || rb_fail "ticket $id failed after $fails failed livechecks (livecheck_attempts 3)"

out=$(rb_resbus ticket-check "$id" 2>"$RB_TMP/err")
rc=$?
rb_assert_eq 1 "$rc" "ticket-check exit status for a failed resource"
rb_assert_eq "WARNING: assigned resource failed" "$(cat "$RB_TMP/err")" \
    "ticket-check stderr for a failed resource"
rb_assert_eq "local:$RESBUS_LOCAL_ROOT/$r1" "$out" \
    "ticket-check stdout for a failed resource (its data, as resalloc)"

# cmd_delete ran for it, and a replacement is preallocated (max 1, so
# only once the dead one is gone).
rb_wait_for "cmd_delete of $r1" 30 \
    hook_log_has "$r1" terminate "local/delete: .*$r1" 1
rb_wait_for "a replacement resource" 60 rb_local_count_is 1
r2=$(rb_local_resources)
[ "$r2" != "$r1" ] || rb_fail "the replacement has the dead resource's name $r1"
grep -q "resource [0-9]* $r1: livecheck failed (3 in a row)" "$RB_TMP/resbusd.out" ||
    rb_fail "resbusd did not log the third livecheck failure of $r1"

# The failed ticket can still be closed; then it is just closed.
rb_resbus ticket-close "$id" || rb_fail "ticket-close of failed ticket $id failed ($?)"
err=$(rb_resbus ticket-check "$id" 2>&1 >/dev/null) &&
    rb_fail "ticket-check of closed ticket $id succeeded"
rb_assert_match 'already closed ticket' "$err" "ticket-check after closing a failed ticket"

# The replacement serves the next ticket and stays healthy.
id2=$(rb_resbus ticket --tag live) || rb_fail "resbus ticket failed ($?)"
data=$(rb_resbus ticket-wait "$id2" --timeout 60) ||
    rb_fail "ticket-wait $id2 failed ($?)"
rb_assert_eq "local:$RESBUS_LOCAL_ROOT/$r2" "$data" "data of the ticket after the failure"
healthy() {
	rb_resbus ticket-check "$id2" || { echo "ticket-check $id2 failed ($?)"; return 1; }
	rb_local_exists "$r2" || { echo "$r2 was deleted"; return 1; }
}
RB_WAIT_INTERVAL=0.5 rb_hold_for "healthy resource $r2 to keep serving ticket $id2" \
    4 healthy
rb_resbus ticket-close "$id2" || rb_fail "ticket-close $id2 failed ($?)"

rb_done
