#!/bin/bash
# The RabbitMQ permissions recipe of README.md and resbusd(8): resbusd,
# resbus-worker, resbus-maint and clients each work with only their own
# grants, and the grants refuse what a client must not do: publish on
# the event and job exchanges, forge user_id, declare, consume or delete
# resbus's queues; and a worker cannot publish through the default
# exchange.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/hostile/lib.sh
. "$RESBUS_SRCDIR/tests/hostile/lib.sh"

rbh_setup recipe
rbh_pool_demo 4 1
rbh_start
rb_wait_for "one preallocated resource" 60 rb_local_count_is 1

# Every client role works with the client recipe.
for u in alice bob mallory tight; do
	rbh_cycle "$u" --tag demo
done
out=$(rbh_maint admin pool-list) || rb_fail "resbus-maint pool-list as admin failed"
rb_assert_match 'demo' "$out" "pool-list as admin"

# What the recipe refuses.
rbh_refused "a client publishing on resbus.event" \
    rbh_amqp mallory publish TicketUpdate "{'ticket_id': 1, 'state': 2}" \
    --exchange resbus.event --key ticket.1.ready
rbh_refused "a client publishing on resbus.job" \
    rbh_amqp tight publish Delete "{'resource': {'resource_id': 1, 'pool': 'demo'}}" \
    --exchange resbus.job --key demo
rbh_refused "a client forging user_id" \
    rbh_amqp mallory publish TicketClose "{'ticket_id': 1}" \
    --key resbus.request --user-id "${RBH_LOGIN[alice]}"
rbh_refused "a client deleting resbus.request" \
    rbh_amqp mallory delete-queue resbus.request
rbh_refused "a client deleting a pool queue" \
    rbh_amqp tight delete-queue resbus.pool.demo
rbh_refused "a client reading resbus.dead" \
    rbh_amqp mallory peek resbus.dead
rbh_refused "a client reading resbus.broker.events" \
    rbh_amqp mallory peek resbus.broker.events
rbh_refused "a client reading a pool queue" \
    rbh_amqp tight peek resbus.pool.demo
rbh_refused "a worker publishing through the default exchange" \
    rbh_amqp worker publish TicketClose "{'ticket_id': 1}" --key resbus.request
rbh_refused "a worker publishing on resbus.job" \
    rbh_amqp worker publish Delete "{'resource': {'resource_id': 1, 'pool': 'demo'}}" \
    --exchange resbus.job --key demo

rbh_after_attack alice --tag demo
rb_done
