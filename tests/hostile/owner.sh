#!/bin/bash
# Tickets belong to their owners.  Bob once closed Alice's READY ticket
# (her resource was deleted) and read her output; resbus-maint
# resource-info showed every resource's data to anyone.  Now bob's close,
# query and renew of alice's ticket get Error "ticket N is not yours",
# her resource stays, her output reaches bob neither in answers nor in
# events on resbus.event, and resource data is shown by resbus-maint to
# admins only.  A second process of alice still waits for her ticket,
# and an admin may look at it.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/hostile/lib.sh
. "$RESBUS_SRCDIR/tests/hostile/lib.sh"

rbh_setup owner
rbh_pool_demo 3 1
rbh_start
rb_wait_for "one preallocated resource" 60 rb_local_count_is 1

# bob listens to every ticket event while alice takes her ticket.
rbh_amqp bob listen resbus.event 'ticket.#' 20 >"$RB_TMP/bob-events" 2>&1 &
lpid=$!
rb_track "$lpid"
rb_wait_for "bob's listener" 20 grep -q listening "$RB_TMP/bob-events"

a=$(rbh_take alice --tag demo)
data=$(rbh_resbus alice ticket-wait "$a" --timeout 60) ||
    rb_fail "ticket-wait $a as alice failed ($?)"
rb_assert_match '^local:' "$data" "alice's data"
res=${data##*/}
rb_log "alice's ticket $a has $res"

# A second process of alice waits for her ticket too.
data2=$(rbh_resbus alice ticket-wait "$a" --timeout 30) ||
    rb_fail "a second ticket-wait $a as alice failed ($?)"
rb_assert_eq "$data" "$data2" "alice's data in a second process"

# bob, through the CLI.
notyours="ticket $a is not yours"
if out=$(rbh_resbus bob ticket-close "$a" 2>&1); then
	rb_fail "bob closed alice's ticket $a: $out"
fi
rb_assert_match "$notyours" "$out" "bob's ticket-close $a"
if out=$(rbh_resbus bob ticket-check "$a" 2>&1); then
	rb_fail "bob's ticket-check of alice's ticket $a succeeded: $out"
fi
rb_assert_match "$notyours" "$out" "bob's ticket-check $a"
rb_assert_no_match "local:" "$out" "bob's ticket-check $a"
if out=$(rbh_resbus bob ticket-renew "$a" 2>&1); then
	rb_fail "bob renewed alice's ticket $a: $out"
fi
rb_assert_match "$notyours" "$out" "bob's ticket-renew $a"
if out=$(rbh_resbus bob ticket-wait "$a" --timeout 10 2>&1); then
	rb_fail "bob's ticket-wait of alice's ticket $a succeeded: $out"
fi
rb_assert_no_match "local:" "$out" "bob's ticket-wait $a"

# bob, as a raw client: the answers are Errors without output.
for t in TicketQuery TicketClose TicketRenew; do
	out=$(rbh_amqp bob publish "$t" "{'ticket_id': $a}" \
	    --key resbus.request --wait 20) || rb_fail "no answer to bob's $t ($?)"
	rbh_error_reply "$notyours" "$out" "bob's $t $a"
	rb_assert_no_match 'local:' "$out" "bob's $t $a"
done

# Nothing of that touched alice's ticket or resource.
rb_local_exists "$res" || rb_fail "alice's resource $res is gone"
data3=$(rbh_resbus alice ticket-check "$a") ||
    rb_fail "alice's ticket-check $a failed after bob's tries ($?)"
rb_assert_eq "$data" "$data3" "alice's data after bob's tries"

# An admin may look at it.
data4=$(rbh_resbus admin ticket-check "$a") ||
    rb_fail "the admin's ticket-check $a failed ($?)"
rb_assert_eq "$data" "$data4" "alice's data as the admin sees it"

# Resource data through resbus-maint: admins only.
out=$(rbh_maint admin resource-info "$res") ||
    rb_fail "resource-info $res as the admin failed ($?)"
rb_assert_match "$(printf '%s' "$data" | sed 's/[.[\*^$/]/\\&/g')" "$out" \
    "resource-info $res as the admin"
for cmd in "resource-info $res" "resource-list" "resource-list --json"; do
	# shellcheck disable=SC2086 # words
	out=$(rbh_maint bob $cmd 2>&1)
	rb_assert_no_match "local:" "$out" "resbus-maint $cmd as bob"
done
out=$(rbh_maint bob foreach-resource --command 'echo {name} {data_utf8}' 2>&1)
rb_assert_no_match "local:" "$out" "resbus-maint foreach-resource as bob"

# What bob heard on resbus.event: no output of alice's.
bob_heard_no_output() {
	! grep 'local:' "$RB_TMP/bob-events"
}
rb_hold_for "ticket events bob could read to hold no output" 1 \
    bob_heard_no_output

rbh_resbus alice ticket-close "$a" || rb_fail "alice's ticket-close $a failed"
rb_wait_for "alice's resource to be deleted" 60 rb_local_gone "$res"
rbh_cycle bob --tag demo
rbh_after_attack alice --tag demo
rb_done
