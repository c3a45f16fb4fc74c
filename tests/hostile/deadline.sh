#!/bin/bash
# A ticket whose deadline has passed is never served: not when its
# deadline passes while it waits, not when it arrives already past it
# with a resource free, and not when the deadline passed while resbusd
# was down.  Each ends CLOSED or FAILED without a resource.
# shellcheck disable=SC2317 # functions called through rb_wait_for
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/hostile/lib.sh
. "$RESBUS_SRCDIR/tests/hostile/lib.sh"

rbh_setup deadline
rbh_pool_demo 1 1
rbh_start
rb_wait_for "the preallocated resource" 60 rb_local_count_is 1

# The state of ticket $1 as its owner $2 gets it from resbusd.
state() {
	rbh_amqp "$2" publish TicketQuery "{'ticket_id': $1}" \
	    --key resbus.request --wait 20 --print state
}
ended() { # ID OWNER: CLOSED or FAILED, without a resource
	local st out
	st=$(state "$1" "$2")
	case $st in
	CLOSED | FAILED) ;;
	*) return 1 ;;
	esac
	if out=$(rbh_resbus "$2" ticket-check "$1" 2>&1); then
		rb_fail "ticket $1 past its deadline has a resource: $out"
	fi
	rb_assert_no_match 'local:' "$out" "ticket-check $1"
}
unserved() { # ID OWNER
	local out
	if out=$(rbh_resbus "$2" ticket-check "$1" 2>&1); then
		echo "served: $out"
		return 1
	fi
}
not_served() { # ID OWNER SECONDS
	RB_WAIT_INTERVAL=0.5 rb_hold_for "ticket $1 past its deadline to stay unserved" \
	    "$3" unserved "$1" "$2"
}

# (a) the deadline passes while the ticket waits.
a=$(rbh_take alice --tag demo)
rbh_resbus alice ticket-wait "$a" --timeout 60 >/dev/null ||
    rb_fail "ticket-wait $a failed"
b=$(rbh_take bob --tag demo --deadline 3)
rb_wait_for "ticket $b to end at its deadline (3 s)" 30 ended "$b" bob
rbh_resbus alice ticket-close "$a" || rb_fail "ticket-close $a failed"
rb_wait_for "the pool to refill" 60 rb_local_count_is 1
not_served "$b" bob 3

# (b) already past its deadline on arrival, with a resource free.
now_ms=$(($(date +%s%N) / 1000000))
c=$(rbh_amqp bob publish TicketRequest \
    "{'tags': ['demo'], 'deadline_ms': $((now_ms - 10000))}" \
    --exchange resbus.ticket --key demo --wait 20 --print ticket_id) ||
    rb_fail "no answer to a request past its deadline"
if [[ $c =~ ^[0-9]+$ ]]; then
	not_served "$c" bob 3
	rb_wait_for "ticket $c to end" 20 ended "$c" bob
else
	rb_log "a request past its deadline was refused: $c"
fi

# (c) the deadline passes while resbusd is down.
a=$(rbh_take alice --tag demo)
rbh_resbus alice ticket-wait "$a" --timeout 60 >/dev/null ||
    rb_fail "ticket-wait $a failed"
d=$(rbh_take bob --tag demo --deadline 4)
# (The client set the deadline before it returned: by d_due at the latest.)
d_due=$(($(rb_now_us) + $(rb_us 4)))
rb_stop_broker
past_d_due() { # SECONDS: SECONDS have passed since ticket d's deadline
	[ "$(rb_now_us)" -ge $((d_due + $(rb_us "$1"))) ]
}
rb_wait_for "ticket $d's deadline to pass while resbusd is down" 30 \
    past_d_due 1
rbh_start_broker
RBH_BROKER_STARTS=2
rbh_resbus alice ticket-close "$a" || rb_fail "ticket-close $a failed"
not_served "$d" bob 5
rb_wait_for "ticket $d to end" 20 ended "$d" bob

rbh_after_attack alice --tag demo
rb_done
