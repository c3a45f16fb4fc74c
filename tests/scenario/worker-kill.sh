#!/bin/bash
# A worker killed with SIGKILL in the middle of cmd_new: its job goes back
# to the queue, a second worker gets it redelivered, runs cmd_delete for
# the half-made resource first and then cmd_new, and nothing leaks: at the
# end the local driver's list equals the resources resbusd's store holds
# as live.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

command -v sqlite3 >/dev/null || { echo "worker-kill: no sqlite3 CLI, skipped" >&2; exit 77; }

rb_setup worker-kill
# cmd_new makes the resource's directory at once, then "boots" for
# RB_BOOT seconds (the first worker's environment says 60), then prints.
rb_pools <<'EOF'
kill:
  max: 1
  max_prealloc: 1
  cmd_new: 'mkdir -p "$RESBUS_LOCAL_ROOT/$RESALLOC_NAME" && echo "id=$RESALLOC_ID" >"$RESBUS_LOCAL_ROOT/$RESALLOC_NAME/info" && sleep "${RB_BOOT:-0}" && echo "local:$RESBUS_LOCAL_ROOT/$RESALLOC_NAME"'
  cmd_delete: "@DRIVERDIR@/delete"
  cmd_list: "@DRIVERDIR@/list"
  tags: [kill]
EOF

RB_BOOT=60 rb_start_worker --name worker-one
first=$RB_WORKER_PID
rb_start_broker
rb_wait_for "the half-made resource" 30 rb_local_count_is 1
half=$(rb_local_resources)
rb_log "half-made: $half"
rb_stop_worker -9
rb_dead "$first" || rb_fail "the first worker survived SIGKILL"
# Its cmd_new's shell dies with it; nothing finishes the start behind us.
rb_hold_for "$half to stay half-made until the second worker" 1 \
    rb_local_exists "$half"

mv "$RB_TMP/worker.out" "$RB_TMP/worker-one.out"
rb_start_worker --name worker-two
rb_wait_for "the redelivered job's clean-up delete" 30 \
    grep -q 'Allocate redelivered' "$RB_TMP/worker.out"
rb_wait_for "cmd_delete before the second cmd_new" 30 \
    grep -q "removed $RESBUS_LOCAL_ROOT/$half" "$RB_LOGDIR/hooks/000001_terminate"
id=$(rb_resbus ticket --tag kill) || rb_fail "resbus ticket failed ($?)"
data=$(rb_resbus ticket-wait "$id" --timeout 60) || rb_fail "ticket-wait $id failed ($?)"
rb_assert_eq "local:$RESBUS_LOCAL_ROOT/$half" "$data" "the ticket's data"
# The order: clean-up delete, then cmd_new, both on worker two.
order=$(grep -o 'job end: resource 1 pool kill [a-z_]*' "$RB_TMP/worker.out" | awk '{ print $NF }' | tr '\n' ' ')
rb_assert_eq "cmd_delete cmd_new " "$order" "commands of resource 1 on worker two"

live_in_store() {
	sqlite3 "$RB_TMP/db.sqlite" \
	    "SELECT name FROM resources WHERE state <> 'ENDED' ORDER BY name"
}
listed=$(RESALLOC_POOL_ID=kill "$RB_DRIVERDIR/list" | sort)
rb_assert_eq "$(live_in_store)" "$listed" "local list vs the store's live resources"
rb_assert_eq "$half" "$listed" "resources at the end"
rb_resbus ticket-close "$id" || rb_fail "ticket-close failed"
rb_wait_for "cmd_delete of $half" 60 rb_local_gone "$half"
rb_done
