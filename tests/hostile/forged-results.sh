#!/bin/bash
# Only workers report results, and only the broker gives jobs.  Forged
# results once made a STARTING resource UP with the attacker's data (the
# next ticket got it), killed a taken resource (LivecheckResult ok=false),
# and made hundreds of Delete jobs (ListResult); and a client with the
# tightest permissions put a Delete job straight on resbus.pool.<pool>
# through the default exchange, and the worker ran it.  Now mallory's
# AllocateResult, LivecheckResult and ListResult, sent to resbus.request
# and to resbus.broker.events, are ignored and dead-lettered: the
# resources keep their state, no Delete job runs, the next ticket gets
# the real data.  Jobs that tight puts on the pool queue are not run by
# the worker and go to resbus.dead.
# shellcheck disable=SC2317 # functions called through rb_wait_for
# shellcheck disable=SC2016 # rb_wait_for eval of single-quoted tests
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/hostile/lib.sh
. "$RESBUS_SRCDIR/tests/hostile/lib.sh"

rbh_setup forged-results
rb_pools <<'EOF2'
demo:
  max: 3
  max_prealloc: 2
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  cmd_list: "@DRIVERDIR@/list"
  cmd_livecheck: "@DRIVERDIR@/livecheck"
  livecheck_period: 2
  tags: [demo]
slow:
  max: 1
  max_prealloc: 1
  cmd_new: "RESBUS_LOCAL_DELAY=12 @DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [slow]
EOF2
rbh_start
rb_wait_for "two demo resources" 60 eval \
    '[ "$(rb_local_resources | grep -c ^demo_)" -eq 2 ]'

lines() { # POOL: the resource-list lines of POOL, as the admin sees them
	rbh_maint admin resource-list | grep " pool=$1 " | sort
}
field() { # LINE NAME
	sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"
}
slow=$(lines slow)
rb_assert_match 'status=STARTING' "$slow" "the slow pool's resource"
slow_id=${slow%% *}
slow_name=$(awk '{ print $3 }' <<<"$slow")
a=$(rbh_take alice --tag demo)
adata=$(rbh_resbus alice ticket-wait "$a" --timeout 60) ||
    rb_fail "ticket-wait $a failed"
ares=${adata##*/}
rb_wait_for "a demo resource free again" 60 eval \
    '[ "$(lines demo | grep -c "status=UP .*ticket=NULL")" -ge 1 ]'
before=$(lines demo)
taken=$(grep " $ares " <<<"$before")
taken_id=${taken%% *}
rb_log "demo before: $before"
hooks_before=$(find "$RB_LOGDIR/hooks" -name '*_terminate' | wc -l)

dead=$(rbh_dead_count)
forge() { # TYPE FIELDS: from mallory to resbus.request and resbus.broker.events
	local q
	for q in resbus.request resbus.broker.events; do
		rbh_amqp mallory publish "$1" "$2" --key "$q" ||
		    rb_fail "cannot publish $1 to $q as mallory"
		dead=$((dead + 1))
	done
}
# The STARTING resource made UP with mallory's data.
forge AllocateResult "{'resource': {'resource_id': $slow_id, 'pool': 'slow',
    'name': '$slow_name'}, 'ok': True, 'data': b'local:/evil',
    'worker': 'mallory'}"
# Alice's resource declared dead.
forge LivecheckResult "{'resource': {'resource_id': $taken_id, 'pool': 'demo',
    'name': '$ares'}, 'ok': False, 'exit_status': 1, 'worker': 'mallory'}"
# A sweep that lists none of the pool's resources, and 500 ghosts.
for sweep in 0 1 2 3 4 5; do
	forge ListResult "{'pool': 'demo', 'sweep_id': $sweep, 'ok': True,
	    'names': ['ghost%d' % j for j in range(500)], 'worker': 'mallory'}"
done
# With the type of a result but sent as the worker would: still mallory.
forge DeleteResult "{'resource': {'resource_id': $taken_id, 'pool': 'demo',
    'name': '$ares'}, 'ok': True, 'worker': 'mallory'}"
rbh_wait_dead "$dead" "mallory's forged results"
peek=$(rbh_dead_peek)
rbh_dead_by "$peek" mallory

# Nothing changed.
demo_unchanged() {
	local now
	now=$(lines demo)
	[ "$now" = "$before" ] || { echo "now: $now"; return 1; }
}
RB_WAIT_INTERVAL=0.5 rb_hold_for "the demo pool's resources to stay as they were" \
    3 demo_unchanged
slow_now=$(lines slow)
case $slow_now in
*status=STARTING* | '') ;;
*status=UP*)
	# Only the real cmd_new, 12 s long, may have made it UP.
	[ -d "$RESBUS_LOCAL_ROOT/$slow_name" ] ||
	    rb_fail "the slow resource is UP without its cmd_new: $slow_now" ;;
*) rb_fail "the slow resource: $slow_now" ;;
esac
rb_local_exists "$ares" || rb_fail "alice's resource $ares is gone"
adata2=$(rbh_resbus alice ticket-check "$a") ||
    rb_fail "alice's ticket $a lost its resource"
rb_assert_eq "$adata" "$adata2" "alice's data"
rb_assert_eq "$hooks_before" \
    "$(find "$RB_LOGDIR/hooks" -name '*_terminate' | wc -l)" "delete hook logs"
grep -q ghost "$RB_TMP/worker.out" && rb_fail "the worker heard of a ghost"
s=$(rbh_take bob --tag slow)
sdata=$(rbh_resbus bob ticket-wait "$s" --timeout 60) ||
    rb_fail "ticket-wait $s failed"
rb_assert_eq "local:$RESBUS_LOCAL_ROOT/$slow_name" "$sdata" \
    "the slow resource's data"
rbh_resbus bob ticket-close "$s" || rb_fail "ticket-close $s failed"

# Jobs straight on the pool queue, from the tightest client.
free=$(lines demo | grep 'status=UP .*ticket=NULL' | head -n 1)
free_id=${free%% *}
free_name=$(awk '{ print $3 }' <<<"$free")
rb_local_exists "$free_name" || rb_fail "no free demo resource to attack"
count=$(rb_local_count)
dead=$(rbh_dead_count)
rbh_amqp tight publish Delete "{'resource': {'resource_id': $free_id,
    'pool': 'demo', 'name': '$free_name',
    'data': b'local:$RESBUS_LOCAL_ROOT/$free_name'}}" \
    --key resbus.pool.demo || rb_fail "tight cannot publish to the pool queue"
rbh_amqp tight publish Allocate "{'resource': {'resource_id': 999,
    'pool': 'demo', 'name': 'demo_tight_job'}}" \
    --key resbus.pool.demo || rb_fail "tight cannot publish to the pool queue"
tight_lines() {
	[ "$(grep -c -- "${RBH_LOGIN[tight]}" "$RB_TMP/worker.out")" -ge 2 ]
}
rb_wait_for "the worker's log lines about tight's jobs" 30 tight_lines
tight_jobs_not_run() {
	rb_local_exists "$free_name" || { echo "the worker ran tight's Delete job"; return 1; }
	! rb_local_exists demo_tight_job || { echo "the worker ran tight's Allocate job"; return 1; }
	rb_local_count_is "$count" || { echo "$(rb_local_count) resources, not $count"; return 1; }
}
rb_hold_for "the worker not to run tight's jobs" 3 tight_jobs_not_run
rbh_wait_dead $((dead + 2)) "tight's jobs"

rbh_resbus alice ticket-close "$a" || rb_fail "ticket-close $a failed"
rbh_after_attack alice --tag demo

# Where resbus.dead says they came from.
peek=$(rbh_dead_peek)
rbh_dead_by "$peek" tight
rbh_dead_from "$peek" resbus.broker.events
rbh_dead_from "$peek" resbus.request
rbh_dead_from "$peek" resbus.pool.demo
rb_done
