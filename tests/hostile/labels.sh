#!/bin/bash
# A TicketRequest with thousands of labels (1.7 MB and 3.4 MB of 200-byte
# values) once stalled resbusd's loop for 22 s and 96 s, RabbitMQ dropped
# it for missed heartbeats, and the unacknowledged message did the same
# at every start.  Now it is refused at once with an Error and put in
# resbus.dead, as is a small request over the label count; 32 labels are
# still fine.  resbusd keeps running, and, restarted with the message
# waiting for it, it refuses it again and stays up.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/hostile/lib.sh
. "$RESBUS_SRCDIR/tests/hostile/lib.sh"

rbh_setup labels
rbh_pool_demo 3 1
rbh_start
rb_wait_for "one preallocated resource" 60 rb_local_count_is 1

big() { # N: a TicketRequest with N labels of 200 bytes
	echo "{'tags': ['demo'], 'labels': {'l%05d' % j: 'v' * 200 for j in range($1)}}"
}

# (a) 1.7 MB and 3.4 MB: an Error each, costing resbusd less than a second
# of CPU (the loop stalled 22 s and 96 s), and resbus.dead gets them.
dead0=$(rbh_dead_count)
n=0
for labels in 8000 16000; do
	cpu0=$(rbh_cpu_ms)
	out=$(rbh_amqp mallory publish TicketRequest "$(big $labels)" \
	    --exchange resbus.ticket --key demo --wait 30 --time) ||
	    rb_fail "no answer to a TicketRequest with $labels labels ($?)"
	cpu=$(($(rbh_cpu_ms) - cpu0))
	ms=$(sed -n 's/^elapsed_ms=//p' <<<"$out")
	rb_log "$labels labels: answered in $ms ms, $cpu ms of resbusd's CPU:" \
	    "$(echo "$out" | grep ^message=)"
	rbh_error_reply '.' "$out" "a TicketRequest with $labels labels"
	[ "$cpu" -lt 1000 ] ||
	    rb_fail "the TicketRequest with $labels labels took $cpu ms of CPU to refuse"
	n=$((n + 1))
	rbh_wait_dead $((dead0 + n)) "the request with $labels labels"
done

# (b) 33 small labels: over the count, refused; 32 are accepted.
out=$(rbh_amqp mallory publish TicketRequest \
    "{'tags': ['demo'], 'labels': {'l%d' % j: 'v' for j in range(33)}}" \
    --exchange resbus.ticket --key demo --wait 10) ||
    rb_fail "no answer to a TicketRequest with 33 labels"
rbh_error_reply 'label' "$out" "a TicketRequest with 33 labels"
rbh_wait_dead $((dead0 + 3)) "the request with 33 labels"
id=$(rbh_amqp alice publish TicketRequest \
    "{'tags': ['demo'], 'labels': {'l%d' % j: 'v' * 256 for j in range(32)}}" \
    --exchange resbus.ticket --key demo --wait 10 --print ticket_id) ||
    rb_fail "no answer to a TicketRequest with 32 labels"
rb_assert_match '^[0-9]+$' "$id" "the ticket of a request with 32 labels"
rbh_resbus alice ticket-close "$id" || rb_fail "ticket-close $id failed"

rbh_after_attack alice --tag demo

# (c) resbusd restarted, with the 1.7 MB message waiting for it.
rb_stop_broker
dead1=$(rbh_dead_count)
rbh_amqp mallory publish TicketRequest "$(big 8000)" \
    --exchange resbus.ticket --key demo ||
    rb_fail "cannot publish while resbusd is down"
rbh_start_broker
RBH_BROKER_STARTS=2
rbh_wait_dead $((dead1 + 1)) "the request waiting at the start"
rb_hold_for "resbusd to run on after the request waiting at the start" 3 \
    rb_alive "$RB_BROKER_PID"
rbh_after_attack alice --tag demo

# What resbus.dead says about them.
peek=$(rbh_dead_peek) || rb_fail "cannot look at resbus.dead"
rb_assert_match '^header\.x-resbus-reason=.' "$peek" "a reason in resbus.dead"
rbh_dead_by "$peek" mallory
rbh_dead_from "$peek" resbus.ticket.unrouted
rb_done
