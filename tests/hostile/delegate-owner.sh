#!/bin/bash
# Only a delegate names a ticket's owner.  With bob a delegate
# (server.yaml delegates), mallory's TicketRequest naming owner alice --
# to spend alice's limits, or to have her name on his tickets -- is
# refused with Error "... is not one of the delegates ..." and
# dead-lettered, and makes no ticket; so is bob's naming an owner with a
# space or one of 129 bytes.  bob's ticket for alice is hers: it counts
# in her per-owner limit of 1, her second waits, and mallory may not
# close it.
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck disable=SC2317 # functions called through rb_wait_for
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/hostile/lib.sh
. "$RESBUS_SRCDIR/tests/hostile/lib.sh"

rbh_setup delegate-owner
rbh_pool_demo 3 2
rbh_server_yaml "delegates: [\"${RBH_LOGIN[bob]}\"]
limits:
  - {tag: demo, per_owner: 1}"
rbh_start
rb_wait_for "two preallocated resources" 60 rb_local_count_is 2

req() { # USER FIELDS: the answer to a TicketRequest for demo
	rbh_amqp "$1" publish TicketRequest "$2" --exchange resbus.ticket \
	    --key demo --wait 20 || rb_fail "no answer to $1's request ($?)"
}
dead0=$(rbh_dead_count)
out=$(req mallory "{'tags': ['demo'], 'owner': 'alice'}")
rbh_error_reply "user \"${RBH_LOGIN[mallory]}\" is not one of the delegates in server.yaml and cannot name an owner" \
    "$out" "mallory naming an owner"
out=$(req bob "{'tags': ['demo'], 'owner': 'ali ce'}")
rbh_error_reply 'invalid owner' "$out" "an owner with a space"
out=$(req bob "{'tags': ['demo'], 'owner': '$(printf 'a%.0s' {1..129})'}")
rbh_error_reply 'invalid owner' "$out" "an owner of 129 bytes"
rbh_wait_dead $((dead0 + 3)) "the three refused requests"
peek=$(rbh_dead_peek)
rbh_dead_by "$peek" mallory
rb_assert_match '^header\.x-resbus-reason=ticket request naming an owner refused: user ".*" is not one of the delegates' \
    "$peek" "the reason of the dead-lettered requests"
rb_assert_eq "" "$(rbh_maint admin ticket-list)" "tickets after the refusals"

# bob's tickets for alice are hers.
a1=$(sed -n 's/^ticket_id=//p' <<<"$(req bob "{'tags': ['demo'], 'owner': 'alice'}")")
rb_assert_match '^[0-9]+$' "$a1" "bob's ticket for alice"
rbh_resbus bob ticket-wait "$a1" --timeout 60 >/dev/null ||
    rb_fail "ticket-wait $a1 by bob failed"
a2=$(sed -n 's/^ticket_id=//p' <<<"$(req bob "{'tags': ['demo'], 'owner': 'alice'}")")
rb_assert_match '^[0-9]+$' "$a2" "bob's second ticket for alice"
a2_line_is() {
	rbh_maint admin ticket-list | grep -q "^$a2 - state=OPEN tags=demo owner=alice delegate=${RBH_LOGIN[bob]} waiting=\"owner alice at limit demo 1/1\"\$"
}
rb_wait_for "alice's second ticket $a2 to wait at her limit" 30 a2_line_is
rb_hold_for "alice's second ticket $a2 to go on waiting at her limit" 1 a2_line_is
rb_assert_match "^$a2 - state=OPEN tags=demo owner=alice delegate=${RBH_LOGIN[bob]} waiting=\"owner alice at limit demo 1/1\"\$" \
    "$(rbh_maint admin ticket-list | grep "^$a2 ")" "alice's second ticket"
err=$(rbh_resbus mallory ticket-close "$a1" 2>&1) &&
    rb_fail "mallory closed alice's ticket $a1"
rb_assert_match "ticket $a1 is not yours" "$err" "mallory's ticket-close"
rbh_resbus bob ticket-close "$a1" || rb_fail "bob's ticket-close $a1 failed"
rbh_resbus bob ticket-wait "$a2" --timeout 60 >/dev/null ||
    rb_fail "alice's second ticket $a2 was not served after her first closed"
rbh_resbus bob ticket-close "$a2" || rb_fail "bob's ticket-close $a2 failed"

rbh_after_attack alice --tag demo
rb_done
