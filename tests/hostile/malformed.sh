#!/bin/bash
# Nothing is dropped silently.  Each malformed request is answered with an
# Error where it has a reply_to, logged by resbusd with its reason, and
# kept in resbus.dead with that reason in x-resbus-reason:
#   (a) a request without the AMQP type property (a ticket, a query, a
#       control request: answered with a ControlReply there, as is one
#       without user_id);
#   (b) a TicketRequest without reply_to: nobody would learn its ticket,
#       whose resource would be held for nobody; it makes no ticket (nor
#       does one whose reply_to is not UTF-8);
#   (c) a TicketRequest without user_id (it would escape the limits);
#   (d) a TicketRequest whose routing key is not the canonical key of its
#       tags.
# resbusd goes on serving: a ticket cycle completes after each of them.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/hostile/lib.sh
. "$RESBUS_SRCDIR/tests/hostile/lib.sh"

rbh_setup malformed
rb_pools <<'EOF2'
demo:
  max: 3
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  cmd_list: "@DRIVERDIR@/list"
  tags: [demo, x86_64]
EOF2
rbh_start
rb_wait_for "one preallocated resource" 60 rb_local_count_is 1

tickets() {
	rbh_maint admin ticket-list | grep -c .
}

# refused WHAT REASON_REGEX: resbus.dead got one more message, its reason
# (the last x-resbus-reason) matches, resbusd logged it, and resbusd
# still serves a ticket cycle.
dead=$(rbh_dead_count)
refused() {
	local what=$1 re=$2 peek
	dead=$((dead + 1))
	rbh_wait_dead "$dead" "$what"
	peek=$(rbh_dead_peek) || rb_fail "cannot look at resbus.dead"
	rb_assert_match "^header\\.x-resbus-reason=.*$re" "$peek" \
	    "$what: the reason in resbus.dead"
	rbh_dead_by "$peek" mallory
	rb_wait_for "$what in resbusd's log" 10 rbh_log_has "refused.*$re"
	rbh_cycle alice --tag demo
}

n0=$(tickets)

# (a) No type property: on the ticket exchange, and on the request queue.
out=$(rbh_amqp mallory publish TicketRequest "{'tags': ['demo']}" \
    --exchange resbus.ticket --key demo --type-prop '' --wait 20) ||
    rb_fail "no answer to a TicketRequest without type ($?)"
rbh_error_reply 'no type property' "$out" "a TicketRequest without type"
refused "a TicketRequest without type" 'no type property'
out=$(rbh_amqp mallory publish TicketQuery "{'ticket_id': 1}" \
    --key resbus.request --type-prop '' --wait 20) ||
    rb_fail "no answer to a TicketQuery without type ($?)"
rbh_error_reply 'no type property' "$out" "a TicketQuery without type"
refused "a TicketQuery without type" 'no type property'

# ... and on the control queue, where the answer is a ControlReply.
for how in "--type-prop ''" --no-user-id; do
	# shellcheck disable=SC2086 # $how is one or two words
	out=$(eval rbh_amqp mallory publish ControlRequest \
	    "\"{'command': 'resource-list'}\"" --key resbus.control $how \
	    --wait 20) ||
	    rb_fail "no answer to a ControlRequest ($how) ($?)"
	case $how in
	--no-user-id) re='needs the AMQP user_id' ;;
	*) re='no type property' ;;
	esac
	rb_assert_match '^type=resbus\.v1\.ControlReply$' "$out" \
	    "the answer to a ControlRequest ($how)"
	rb_assert_match "^error=.*$re" "$out" \
	    "the error of a ControlRequest ($how)"
	if [ "$how" = --no-user-id ]; then
		dead=$((dead + 1))
		rbh_wait_dead "$dead" "a ControlRequest without user_id"
		rbh_log_has "refused.*resbus\.control: .*$re" ||
		    rb_fail "resbusd did not log the ControlRequest without user_id"
	else
		refused "a ControlRequest without type" "$re"
	fi
done
# A ControlRequest out of bounds is refused the same way, saying which
# field.
out=$(rbh_amqp mallory publish ControlRequest \
    "{'command': 'resource-info', 'args': [b'\\xff'], 'version': 1}" \
    --key resbus.control --wait 20) ||
    rb_fail "no answer to a ControlRequest whose argument is not UTF-8 ($?)"
rb_assert_match '^type=resbus\.v1\.ControlReply$' "$out" \
    "the answer to a ControlRequest whose argument is not UTF-8"
rb_assert_match '^error=ControlRequest\.args: not valid UTF-8$' "$out" \
    "the error of a ControlRequest whose argument is not UTF-8"
refused "a ControlRequest whose argument is not UTF-8" \
    'ControlRequest\.args: not valid UTF-8'

# (b) No reply_to: no answer possible, no ticket made.
rbh_amqp mallory publish TicketRequest \
    "{'idempotency_key': 'nobody-hears', 'tags': ['demo']}" \
    --exchange resbus.ticket --key demo ||
    rb_fail "cannot publish a TicketRequest without reply_to"
refused "a TicketRequest without reply_to" 'needs the AMQP reply_to'

# ... or one that is not UTF-8 (it would be kept with the ticket).
"$RBH_PY" - "$(rbh_url mallory)" "${RBH_LOGIN[mallory]}" <<'EOF2' ||
import sys, pika
ch = pika.BlockingConnection(pika.URLParameters(sys.argv[1])).channel()
ch.confirm_delivery()
ch.basic_publish('resbus.ticket', 'demo', b'\x12\x04demo', pika.BasicProperties(
    type='resbus.v1.TicketRequest', user_id=sys.argv[2],
    reply_to=b'amq.gen-\xff\xfe', delivery_mode=2))
EOF2
    rb_fail "cannot publish a TicketRequest whose reply_to is not UTF-8"
refused "a TicketRequest whose reply_to is not UTF-8" 'reply_to is not valid UTF-8'

# (c) No user_id.
out=$(rbh_amqp mallory publish TicketRequest "{'tags': ['demo']}" \
    --exchange resbus.ticket --key demo --no-user-id --wait 20) ||
    rb_fail "no answer to a TicketRequest without user_id ($?)"
rbh_error_reply 'needs the AMQP user_id' "$out" \
    "a TicketRequest without user_id"
dead=$((dead + 1))
rbh_wait_dead "$dead" "a TicketRequest without user_id"
peek=$(rbh_dead_peek) || rb_fail "cannot look at resbus.dead"
rb_assert_match '^header\.x-resbus-reason=.*needs the AMQP user_id' "$peek" \
    "a TicketRequest without user_id: the reason in resbus.dead"
rbh_log_has 'refused.*needs the AMQP user_id' ||
    rb_fail "resbusd did not log the TicketRequest without user_id"
rbh_cycle alice --tag demo

# (d) A routing key that is not the canonical key of the tags: the tags
# out of order, and another tag set's key.
for key in 'x86_64+demo' 'x86_64'; do
	out=$(rbh_amqp mallory publish TicketRequest \
	    "{'tags': ['demo', 'x86_64']}" \
	    --exchange resbus.ticket --key "$key" --wait 20) ||
	    rb_fail "no answer to a TicketRequest under key $key ($?)"
	rbh_error_reply 'is not the canonical key "demo\+x86_64"' "$out" \
	    "a TicketRequest under key $key"
	refused "a TicketRequest under key $key" 'not the canonical key'
done

# None of them made a ticket.
rb_assert_eq "$n0" "$(tickets)" "tickets after the malformed requests"

rbh_after_attack alice --tag demo
rb_done
