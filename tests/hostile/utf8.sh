#!/bin/bash
# protobuf-c does not check that proto3 strings are UTF-8.  A TicketRequest
# whose idempotency_key was not UTF-8 once failed PostgreSQL's commit
# ("invalid byte sequence for encoding UTF8"), which was fatal, and the
# redelivered message did it again at every start.  Now every string field
# is checked before anything touches the store: such requests get an Error
# and go to resbus.dead, whichever field holds the bad bytes.  resbusd
# keeps running, and refuses the same message again after a restart.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/hostile/lib.sh
. "$RESBUS_SRCDIR/tests/hostile/lib.sh"

rbh_setup utf8 postgresql
rbh_pool_demo 3 1
rbh_start
rb_wait_for "one preallocated resource" 60 rb_local_count_is 1

dead=$(rbh_dead_count)
bad() { # FIELDS: one TicketRequest with FIELDS, refused with an Error
	local out
	out=$(rbh_amqp mallory publish TicketRequest "$1" \
	    --exchange resbus.ticket --key demo --wait 20) ||
	    rb_fail "no answer to $1 ($?)"
	rbh_error_reply '.' "$out" "TicketRequest $1"
	dead=$((dead + 1))
	rbh_wait_dead "$dead" "TicketRequest $1"
}
bad "{'idempotency_key': b'key-\\xff\\xfe', 'tags': ['demo']}"
bad "{'idempotency_key': b'\\xc0\\xaf', 'tags': ['demo']}"     # overlong '/'
bad "{'idempotency_key': b'\\xed\\xa0\\x80', 'tags': ['demo']}" # a surrogate
bad "{'tags': [b'demo\\xff']}"
bad "{'tags': ['demo'], 'sandbox': b'sb\\x80'}"
bad "{'tags': ['demo'], 'class': b'\\xfe'}"
bad "{'tags': ['demo'], 'labels': {b'k\\xff': 'v'}}"
bad "{'tags': ['demo'], 'labels': {'k': b'v\\xff'}}"
rbh_log_has 'invalid byte sequence' &&
    rb_fail "a bad string reached PostgreSQL"

# A valid key with characters beyond ASCII is fine.
id=$(rbh_amqp mallory publish TicketRequest \
    "{'idempotency_key': 'clé-ünïcode-✓', 'tags': ['demo']}" \
    --exchange resbus.ticket --key demo --wait 20 --print ticket_id) ||
    rb_fail "no answer to a request with a UTF-8 key"
rb_assert_match '^[0-9]+$' "$id" "the ticket of a request with a UTF-8 key"
rbh_resbus mallory ticket-close "$id" || rb_fail "ticket-close $id failed"

rbh_after_attack alice --tag demo

# Restarted, with the first poison message waiting for it.
rb_stop_broker -9
rbh_amqp mallory publish TicketRequest \
    "{'idempotency_key': b'key-\\xff\\xfe', 'tags': ['demo']}" \
    --exchange resbus.ticket --key demo --reply-to nobody ||
    rb_fail "cannot publish while resbusd is down"
rbh_start_broker
RBH_BROKER_STARTS=2
rbh_wait_dead $((dead + 1)) "the request waiting at the start"
rb_hold_for "resbusd to run on after the request waiting at the start" 3 \
    rb_alive "$RB_BROKER_PID"
rbh_after_attack alice --tag demo
rbh_log_has 'invalid byte sequence' &&
    rb_fail "a bad string reached PostgreSQL"
rb_done
