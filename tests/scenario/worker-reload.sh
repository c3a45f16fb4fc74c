#!/bin/bash
# resbus-worker and SIGHUP: a changed command applies to the resources
# started after the reload, while a resource started before keeps what
# the old command made; a pool taken out of pools.yaml loses the worker's
# consumer (and its Cancels binding), the other pools are served on.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

rb_setup worker-reload

# $1: what pool a's cmd_new prints before the local driver's data.
pools_v() {
	rb_pools <<EOF2
a:
  max: 3
  max_prealloc: 1
  cmd_new: 'echo "$1" && exec @DRIVERDIR@/new'
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [a]
${2:-}
EOF2
}
POOL_B='b:
  max: 1
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [b]'

pools_v v1 "$POOL_B"
rb_start_worker
rb_start_broker
rb_wait_for "one resource of each pool" 60 rb_local_count_is 2

# Both daemons read the new file: pool a's cmd_new prints v2 now.
pools_v v2 "$POOL_B"
kill -HUP "$RB_BROKER_PID" "$RB_WORKER_PID"
reloaded() {
	[ "$(grep -c 'SIGHUP: pools read again; serving 2 pool(s)' \
	    "$RB_TMP/worker.out")" -ge "$1" ]
}
rb_wait_for "resbus-worker to read the pools again" 30 reloaded 1

# The preallocated resource came from v1; its replacement, started once
# the first ticket took it, from v2.
t1=$(rb_resbus ticket --tag a) || rb_fail "resbus ticket --tag a failed ($?)"
d1=$(rb_resbus ticket-wait "$t1" --timeout 60) || rb_fail "ticket-wait $t1 failed ($?)"
rb_assert_match '^v1' "$d1" "data of the resource started before the reload"
t2=$(rb_resbus ticket --tag a) || rb_fail "resbus ticket --tag a failed ($?)"
d2=$(rb_resbus ticket-wait "$t2" --timeout 60) || rb_fail "ticket-wait $t2 failed ($?)"
rb_assert_match '^v2' "$d2" "data of a resource started after the reload"

# Pool b leaves pools.yaml: the worker stops consuming its queue and its
# Cancels; pool a is served on.
[ "$(rb_consumers resbus.pool.b)" = 1 ] ||
    rb_fail "resbus.pool.b has $(rb_consumers resbus.pool.b) consumers before the reload"
pools_v v3
kill -HUP "$RB_WORKER_PID"
rb_wait_for "resbus-worker to drop pool b" 30 \
    grep -q 'no longer serving pool b' "$RB_TMP/worker.out"
rb_assert_eq 0 "$(rb_consumers resbus.pool.b)" "consumers of resbus.pool.b after the reload"
rb_assert_eq "" "$(rb_ctl list_bindings -p "$RB_VHOST" -s routing_key |
    grep -x 'cancel\.b' || true)" "a Cancels binding of pool b after the reload"
rb_assert_eq 1 "$(rb_consumers resbus.pool.a)" "consumers of resbus.pool.a after the reload"
rb_resbus ticket-close "$t1" || rb_fail "ticket-close $t1 failed ($?)"
t3=$(rb_resbus ticket --tag a) || rb_fail "resbus ticket --tag a failed ($?)"
d3=$(rb_resbus ticket-wait "$t3" --timeout 60) || rb_fail "ticket-wait $t3 failed ($?)"
rb_assert_match '^v[23]' "$d3" "data of a pool a resource after pool b left"
rb_check_daemons
rb_done
