#!/bin/bash
# The walking skeleton, end to end: one pool of local-driver resources,
# a ticket taken, served with cmd_new's output, closed (the resource is
# deleted through cmd_delete) and the pool refilled by preallocation.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

rb_setup basic
rb_pools <<'EOF'
basic:
  max: 3
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  cmd_list: "@DRIVERDIR@/list"
  tags:
    - demo
EOF

rb_start_worker
rb_start_broker

# The pool preallocates exactly one resource.
rb_wait_for "one preallocated resource" 60 rb_local_count_is 1
r1=$(rb_local_resources)
rb_log "preallocated: $r1"
rb_hold_for "one resource only after preallocation" 1 rb_local_count_is 1

# (a) a ticket: an integer ID, then cmd_new's output.
id=$(rb_resbus ticket --tag demo) || rb_fail "resbus ticket failed ($?)"
rb_assert_match '^[0-9]+$' "$id" "ticket id"
rb_log "ticket $id"
data=$(rb_resbus ticket-wait "$id" --timeout 60) ||
    rb_fail "resbus ticket-wait $id failed ($?)"
rb_assert_eq "local:$RESBUS_LOCAL_ROOT/$r1" "$data" "ticket-wait output"
data=$(rb_resbus ticket-check "$id") ||
    rb_fail "resbus ticket-check $id failed ($?) for a ready ticket"
rb_assert_eq "local:$RESBUS_LOCAL_ROOT/$r1" "$data" "ticket-check output"

# (b) the topology on the bus.
queues=$(rb_queues)
rb_assert_match '^resbus\.ticket\.demo$' "$queues" "queues"
rb_assert_match '^resbus\.pool\.basic$' "$queues" "queues"
rb_assert_match '^resbus\.request$' "$queues" "queues"

# The taken resource no longer counts as free: a second one is started.
rb_wait_for "a second preallocated resource" 60 rb_local_count_is 2
r2=$(rb_local_resources | grep -vxF "$r1")
rb_log "preallocated: $r2"

# (c) closing the ticket deletes its resource through cmd_delete; the
# fresh one stays for the next ticket.
rb_resbus ticket-close "$id" || rb_fail "resbus ticket-close $id failed ($?)"
rb_wait_for "cmd_delete to remove $r1" 60 rb_local_gone "$r1"
rb_local_exists "$r2" || rb_fail "$r2 disappeared"
rb_wait_for "a terminate hook log" 30 \
    compgen -G "$RB_LOGDIR/hooks/*_terminate"
compgen -G "$RB_LOGDIR/hooks/*_alloc" >/dev/null ||
    rb_fail "no alloc hook log in $RB_LOGDIR/hooks"
rb_hold_for "one resource only after the close" 1 rb_local_count_is 1

# A closed ticket is reported as such.
if err=$(rb_resbus ticket-check "$id" 2>&1 >/dev/null); then
	rb_fail "ticket-check of closed ticket $id succeeded"
fi
rb_assert_match 'already closed ticket' "$err" "ticket-check of a closed ticket"

# The next ticket gets the fresh resource, and the pool is refilled again.
id2=$(rb_resbus ticket --tag demo) || rb_fail "second resbus ticket failed ($?)"
rb_assert_match '^[0-9]+$' "$id2" "second ticket id"
[ "$id2" != "$id" ] || rb_fail "second ticket got the same id $id"
data=$(rb_resbus ticket-wait "$id2" --timeout 60) ||
    rb_fail "resbus ticket-wait $id2 failed ($?)"
rb_assert_eq "local:$RESBUS_LOCAL_ROOT/$r2" "$data" "second ticket's data"
rb_wait_for "a third resource to be preallocated" 60 rb_local_count_is 2
rb_resbus ticket-close "$id2" || rb_fail "resbus ticket-close $id2 failed ($?)"
rb_wait_for "cmd_delete to remove $r2" 60 rb_local_gone "$r2"
rb_hold_for "one resource only at the end" 1 rb_local_count_is 1

rb_done
