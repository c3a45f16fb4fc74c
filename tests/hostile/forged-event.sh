#!/bin/bash
# Forged ticket events.  `resbus ticket-wait` and the XML-RPC waitTicket
# once believed any `ticket.<id>.ready` on resbus.event: alice's wait
# printed the output an attacker chose and exited 0.  Now an event only
# wakes a wait, which asks resbusd again.
#
# Alice holds the only resource of pool fe, so her second ticket stays
# OPEN while she waits for it twice: with the CLI, and with waitTicket
# through a resbus-xmlrpc that logs in as alice.  Then:
#  - mallory, with the client recipe, may not publish on resbus.event at
#    all (RabbitMQ refuses);
#  - a user who may (a worker's login, as a stolen worker host has it)
#    publishes ticket.<id>.ready events with a chosen output, and
#    ticket.<id>.closed ones: neither wait returns, let alone with that
#    output;
#  - alice closes her first ticket: the second one is served, and both
#    waits return its real data;
# and afterwards a ticket cycle by bob completes, and resbusd and the
# gateway still run as the same processes.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/hostile/lib.sh
. "$RESBUS_SRCDIR/tests/hostile/lib.sh"

rbh_setup forged-event
RB_XMLRPC=$RESBUS_BUILDDIR/resbus-xmlrpc
[ -x "$RB_XMLRPC" ] || rb_fail "$RB_XMLRPC is missing: build it first"
command -v python3 >/dev/null || rb_fail "python3 is needed"
rb_pools <<'EOF'
fe:
  max: 1
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [fe]
EOF
rbh_start

port=$(rb_closed_port)
URL=http://127.0.0.1:$port/
"$RB_XMLRPC" --config-dir "$RB_CONF" --amqp-url "$(rbh_url alice)" \
    --listen "127.0.0.1:$port" -d </dev/null >>"$RB_TMP/xmlrpc.out" 2>&1 &
XR_PID=$!
rb_track "$XR_PID"
listening() {
	[ -n "$(ss -Htln "sport = :$port" 2>/dev/null)" ]
}
rb_wait_for "the gateway to listen on $port" 30 listening

# Alice's first ticket takes the pool's only resource.
h=$(rbh_take alice --tag fe)
data=$(rbh_resbus alice ticket-wait "$h" --timeout 60) ||
    rb_fail "ticket-wait $h as alice failed ($?)"
rb_assert_match '^local:' "$data" "data of alice's ticket $h"
# Her second one waits.
t=$(rbh_take alice --tag fe)
rb_log "alice holds ticket $h; ticket $t waits"

rbh_resbus alice ticket-wait "$t" --timeout 120 \
    >"$RB_TMP/cli.out" 2>"$RB_TMP/cli.err" &
cli=$!
rb_track "$cli"
timeout -k 5 120 python3 - "$URL" "$t" >"$RB_TMP/xr.out" 2>&1 <<'EOF' &
import sys, xmlrpc.client
p = xmlrpc.client.ServerProxy(sys.argv[1], allow_none=True)
print(p.waitTicket(int(sys.argv[2])).data.decode("latin-1"), flush=True)
EOF
xr=$!
rb_track "$xr"

# Both waits have bound ticket.$t.* (the CLI's event queue and the
# gateway's).
bindings() {
	rb_ctl list_bindings -p "$RB_VHOST" source_name routing_key |
	    grep -c -F "resbus.event	ticket.$t.*" || true
}
both_bound() {
	[ "$(bindings)" -ge 2 ]
}
rb_wait_for "both waits to bind ticket.$t.*" 30 both_bound

# mallory may not publish on resbus.event.
FORGED="local:/tmp/forged-by-mallory"
rbh_refused "mallory's forged ticket.$t.ready" \
    rbh_amqp mallory publish TicketUpdate \
    "{'ticket_id': $t, 'state': 2, 'assigned': True, 'output': b'$FORGED'}" \
    --exchange resbus.event --key "ticket.$t.ready"

# One who may does so, with a chosen output, and says the ticket closed.
rbh_amqp worker publish TicketUpdate \
    "{'ticket_id': $t, 'state': 2, 'assigned': True, 'output': b'$FORGED'}" \
    --exchange resbus.event --key "ticket.$t.ready" --repeat 20 ||
    rb_fail "the forged ready events were not published ($?)"
rbh_amqp worker publish TicketUpdate \
    "{'ticket_id': $t, 'state': 4, 'assigned': False}" \
    --exchange resbus.event --key "ticket.$t.closed" --repeat 5 ||
    rb_fail "the forged closed events were not published ($?)"
# Give the forgeries time to do harm: none of them ends a wait.
waits_go_on() {
	rb_alive "$cli" || { echo "ticket-wait $t returned: $(cat "$RB_TMP/cli.out" "$RB_TMP/cli.err")"; return 1; }
	rb_alive "$xr" || { echo "waitTicket $t returned: $(cat "$RB_TMP/xr.out")"; return 1; }
}
rb_hold_for "the waits for ticket $t to go on despite forged events" 3 \
    waits_go_on
rb_assert_eq "" "$(cat "$RB_TMP/cli.out" "$RB_TMP/xr.out")" \
    "output of the waits so far"
out=$(rbh_resbus alice ticket-check "$t" 2>&1) &&
    rb_fail "ticket $t is served already: $out"
rb_assert_match 'still not processed' "$out" "ticket $t's state"

# Alice's first ticket goes: the second is served, for real.
rbh_resbus alice ticket-close "$h" || rb_fail "closing ticket $h"
wait "$cli" || rb_fail "ticket-wait $t failed ($?):" \
    "$(cat "$RB_TMP/cli.out" "$RB_TMP/cli.err")"
wait "$xr" || rb_fail "waitTicket $t failed ($?): $(cat "$RB_TMP/xr.out")"
real=$(rbh_resbus alice ticket-check "$t") ||
    rb_fail "ticket-check $t as alice failed ($?)"
rb_assert_match '^local:/' "$real" "the real data of ticket $t"
rb_assert_eq "$real" "$(cat "$RB_TMP/cli.out")" "what ticket-wait $t printed"
rb_assert_eq "$real" "$(cat "$RB_TMP/xr.out")" "what waitTicket $t returned"
grep -qF "$FORGED" "$RB_TMP/cli.out" "$RB_TMP/xr.out" &&
    rb_fail "a wait returned the forged output"
rbh_resbus alice ticket-close "$t" || rb_fail "closing ticket $t"

rbh_after_attack bob --tag fe
rb_alive "$XR_PID" || rb_fail "resbus-xmlrpc is gone"
[ "$(grep -c 'serving XML-RPC' "$RB_TMP/xmlrpc.out")" -eq 1 ] ||
    rb_fail "resbus-xmlrpc started more than once"

rb_done
