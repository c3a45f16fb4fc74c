#!/bin/bash
# Idle tag sets are retired.  Every distinct tag set once kept a durable
# queue, a binding, a consumer and a row forever (3,300 of them took 120 MB
# in RabbitMQ).  Now, with tagset_idle_s: 2, a tag set without tickets
# loses its queue within a few seconds, one whose ticket is still open
# keeps it, and a later ticket with the retired tags is still served.
# shellcheck disable=SC2317 # functions called through rb_wait_for
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/hostile/lib.sh
. "$RESBUS_SRCDIR/tests/hostile/lib.sh"

rbh_setup bounds-retire
rb_pools <<'EOF2'
demo:
  max: 3
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  cmd_list: "@DRIVERDIR@/list"
  tags: [demo, x, y]
EOF2
rbh_server_yaml "tagset_idle_s: 2"
rbh_start
rb_wait_for "the preallocated resource" 60 rb_local_count_is 1

has_queue() {
	rb_queues | grep -qxF "resbus.ticket.$1"
}
no_queue() {
	! has_queue "$1"
}

x=$(rbh_take bob --tag x)
y=$(rbh_take alice --tag y)
has_queue x || rb_fail "no queue for tag set x with an open ticket"
has_queue y || rb_fail "no queue for tag set y with an open ticket"
rbh_resbus bob ticket-wait "$x" --timeout 60 >/dev/null ||
    rb_fail "ticket-wait $x failed"
rbh_resbus bob ticket-close "$x" || rb_fail "ticket-close $x failed"
RB_WAIT_INTERVAL=1 rb_wait_for "tag set x to be retired" 60 no_queue x
# y has a ticket: it stays.
RB_WAIT_INTERVAL=1 rb_hold_for "tag set y to stay while ticket $y is open" \
    4 has_queue y
data=$(rbh_resbus alice ticket-wait "$y" --timeout 60) ||
    rb_fail "ticket-wait $y failed"
rb_assert_match '^local:' "$data" "the data of ticket $y"

# The retired tags still serve, through the raw client and the CLI.
id=$(rbh_amqp bob publish TicketRequest "{'tags': ['x']}" \
    --exchange resbus.ticket --key x --wait 20 --print ticket_id) ||
    rb_fail "no answer to a request for a retired tag set"
rb_assert_match '^[0-9]+$' "$id" "a ticket for the retired tag set"
rbh_resbus bob ticket-wait "$id" --timeout 60 >/dev/null ||
    rb_fail "the ticket $id for the retired tag set x was not served"
rbh_resbus bob ticket-close "$id" || rb_fail "ticket-close $id failed"
RB_WAIT_INTERVAL=1 rb_wait_for "tag set x to be retired again" 60 no_queue x
rbh_cycle bob --tag x
rbh_resbus alice ticket-close "$y" || rb_fail "ticket-close $y failed"
RB_WAIT_INTERVAL=1 rb_wait_for "tag set y to be retired" 60 no_queue y

rbh_after_attack alice --tag demo
rb_done
