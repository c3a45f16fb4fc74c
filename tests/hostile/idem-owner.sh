#!/bin/bash
# Idempotency keys belong to their owner.  Bob re-sending alice's key
# once got alice's ticket ID; now he gets a new ticket of his own, while
# alice re-sending it still gets hers.  A key over 128 bytes (here 1 MB,
# where 8 MB keys were once stored and echoed back) is refused with an
# Error.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/hostile/lib.sh
. "$RESBUS_SRCDIR/tests/hostile/lib.sh"

rbh_setup idem-owner
rbh_pool_demo 3 1
rbh_start
rb_wait_for "the preallocated resource" 60 rb_local_count_is 1

take() { # USER KEY: the ticket ID the answer gives
	rbh_amqp "$1" publish TicketRequest \
	    "{'idempotency_key': '$2', 'tags': ['demo']}" \
	    --exchange resbus.ticket --key demo --wait 20 --print ticket_id
}
key="alice-key-$RANDOM"
a=$(take alice "$key") || rb_fail "no answer to alice's request"
rb_assert_match '^[0-9]+$' "$a" "alice's ticket"
a2=$(take alice "$key") || rb_fail "no answer to alice's retry"
rb_assert_eq "$a" "$a2" "the ticket of alice's retry with her key"
b=$(take bob "$key") || rb_fail "no answer to bob's request"
rb_assert_match '^[0-9]+$' "$b" "bob's ticket"
[ "$b" != "$a" ] || rb_fail "bob got alice's ticket $a with her key"
b2=$(take bob "$key") || rb_fail "no answer to bob's retry"
rb_assert_eq "$b" "$b2" "the ticket of bob's retry with the key"
out=$(rbh_amqp bob publish TicketQuery "{'ticket_id': $b}" \
    --key resbus.request --wait 20) || rb_fail "no answer to bob's query"
rb_assert_match "^owner=${RBH_LOGIN[bob]}\$" "$out" "the owner of ticket $b"
data=$(rbh_resbus alice ticket-wait "$a" --timeout 60) ||
    rb_fail "ticket-wait $a as alice failed"
rb_assert_match '^local:' "$data" "alice's data"

# Keys over 128 bytes.
for n in 129 1048000; do
	t0=$(date +%s)
	out=$(rbh_amqp mallory publish TicketRequest \
	    "{'idempotency_key': 'k' * $n, 'tags': ['demo']}" \
	    --exchange resbus.ticket --key demo --wait 20) ||
	    rb_fail "no answer to a request with a key of $n bytes ($?)"
	rbh_error_reply '.' "$out" "a request with a key of $n bytes"
	rb_assert_no_match 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk' \
	    "$out" "the answer to a key of $n bytes"
	rb_log "a key of $n bytes: refused in $(($(date +%s) - t0)) s"
done
# 128 bytes are fine.
k=$(take mallory "$(printf 'k%.0s' {1..128})") || rb_fail "no answer to a 128-byte key"
rb_assert_match '^[0-9]+$' "$k" "the ticket of a 128-byte key"

for t in "$a:alice" "$b:bob" "$k:mallory"; do
	rbh_resbus "${t#*:}" ticket-close "${t%%:*}" ||
	    rb_fail "ticket-close ${t%%:*} as ${t#*:} failed"
done
rbh_after_attack alice --tag demo
rb_done
