#!/bin/bash
# A request without the AMQP user_id property has no owner, and once
# slipped past every per-owner limit.  Now resbusd refuses it with Error
# "a request needs the AMQP user_id property": a ticket request, and a
# query, close or renew of someone's ticket, and makes no ticket of it.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/hostile/lib.sh
. "$RESBUS_SRCDIR/tests/hostile/lib.sh"

rbh_setup no-user-id
rbh_pool_demo 3 1
rbh_server_yaml "limits:
  - {per_owner: 1}"
rbh_start
rb_wait_for "one preallocated resource" 60 rb_local_count_is 1

need='a request needs the AMQP user_id property'
a=$(rbh_take alice --tag demo)
for i in 1 2 3; do
	out=$(rbh_amqp mallory publish TicketRequest "{'tags': ['demo']}" \
	    --exchange resbus.ticket --key demo --no-user-id --wait 20) ||
	    rb_fail "no answer to a TicketRequest without user_id ($?)"
	rbh_error_reply "$need" "$out" "a TicketRequest without user_id"
done
for t in TicketQuery TicketClose TicketRenew; do
	out=$(rbh_amqp mallory publish "$t" "{'ticket_id': $a}" \
	    --key resbus.request --no-user-id --wait 20) ||
	    rb_fail "no answer to a $t without user_id ($?)"
	rbh_error_reply "$need" "$out" "a $t without user_id"
done

# No ticket was made, and alice's is untouched.
list=$(rbh_maint admin ticket-list) || rb_fail "ticket-list failed"
rb_log "tickets: $list"
rb_assert_eq 1 "$(grep -c . <<<"$list")" "tickets in ticket-list"
rb_assert_match "^$a " "$list" "alice's ticket in ticket-list"
data=$(rbh_resbus alice ticket-wait "$a" --timeout 60) ||
    rb_fail "ticket-wait $a failed ($?)"
rb_assert_match '^local:' "$data" "alice's data"
rbh_resbus alice ticket-close "$a" || rb_fail "ticket-close $a failed"

rbh_after_attack alice --tag demo
rb_done
