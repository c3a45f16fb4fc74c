#!/bin/bash
# Two workers serving different pools (--pool A / --pool B): every job of
# pool A runs on worker A and every job of pool B on worker B, as their
# logs and the commands' own records show.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

rb_setup worker-pools
# Each command records which worker ran it (RB_WORKER_TAG comes from the
# worker's environment) before doing its work.
rb_pools <<'EOF'
A:
  max: 3
  max_prealloc: 2
  cmd_new: 'echo "new $RB_WORKER_TAG" >>"@STATEDIR@/ran-$RESALLOC_POOL_ID" && exec @DRIVERDIR@/new'
  cmd_delete: 'echo "delete $RB_WORKER_TAG" >>"@STATEDIR@/ran-$RESALLOC_POOL_ID" && exec @DRIVERDIR@/delete'
  tags: [a]
B:
  max: 3
  max_prealloc: 2
  cmd_new: 'echo "new $RB_WORKER_TAG" >>"@STATEDIR@/ran-$RESALLOC_POOL_ID" && exec @DRIVERDIR@/new'
  cmd_delete: 'echo "delete $RB_WORKER_TAG" >>"@STATEDIR@/ran-$RESALLOC_POOL_ID" && exec @DRIVERDIR@/delete'
  tags: [b]
EOF

RB_WORKER_TAG=A rb_start_worker --pool A --name worker-A
RB_WORKER_TAG=B "$RB_WORKER" --config-dir "$RB_CONF" --pool B --name worker-B \
    </dev/null >"$RB_TMP/worker-B.out" 2>&1 &
wb=$!
rb_track "$wb"
rb_start_broker
rb_wait_for "four preallocated resources" 60 rb_local_count_is 4

for tag in a b; do
	id=$(rb_resbus ticket --tag "$tag") || rb_fail "ticket --tag $tag failed ($?)"
	rb_resbus ticket-wait "$id" --timeout 60 >/dev/null || rb_fail "ticket-wait $id failed"
	rb_resbus ticket-close "$id" || rb_fail "ticket-close $id failed"
done
rb_wait_for "both closed tickets' resources deleted" 60 \
    eval 'grep -q delete "$RB_TMP/ran-A" && grep -q delete "$RB_TMP/ran-B"'
rb_wait_for "the pools refilled" 60 rb_local_count_is 4

rb_assert_eq "" "$(grep -v ' A$' "$RB_TMP/ran-A")" "pool A commands not run by worker A"
rb_assert_eq "" "$(grep -v ' B$' "$RB_TMP/ran-B")" "pool B commands not run by worker B"
[ "$(grep -c '^new A$' "$RB_TMP/ran-A")" -ge 3 ] || rb_fail "pool A: fewer than 3 starts on worker A"
[ "$(grep -c '^new B$' "$RB_TMP/ran-B")" -ge 3 ] || rb_fail "pool B: fewer than 3 starts on worker B"
rb_assert_match 'job end: resource [0-9]+ pool A cmd_new' "$(cat "$RB_TMP/worker.out")" "worker A's log"
rb_assert_no_match 'pool B' "$(grep 'job ' "$RB_TMP/worker.out")" "worker A's log"
rb_assert_match 'job end: resource [0-9]+ pool B cmd_new' "$(cat "$RB_TMP/worker-B.out")" "worker B's log"
rb_assert_no_match 'pool A' "$(grep 'job ' "$RB_TMP/worker-B.out")" "worker B's log"

rb_alive "$wb" || rb_fail "worker B died"
kill -TERM "$wb"
rb_wait_for "worker B to stop" 20 rb_dead "$wb"
wait "$wb" || rb_fail "worker B exited with status $?"
rb_done
