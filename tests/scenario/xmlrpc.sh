#!/bin/bash
# resbus-xmlrpc: resalloc's XML-RPC API in front of the bus, driven by
# Python's own xmlrpc.client (tests/xmlrpc/client.py) against a real
# resbusd, resbus-worker and RabbitMQ.  The gateway listens where
# server.yaml's hostname/port say; a ticket is taken, collected before
# and after it is ready, waited for and closed, with resalloc's call
# shapes (string ids, nil sandbox, faults for unknown ids); a blocked
# waitTicket does not hold up other connections and is woken when its
# ticket is served; a wait leaves no binding behind on the session's
# event queue; a client that gives up waiting is noticed; --listen
# overrides server.yaml; SIGTERM stops the gateway cleanly, even while a
# waitTicket blocks.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

rb_setup xmlrpc
RB_XMLRPC=$RESBUS_BUILDDIR/resbus-xmlrpc
RB_CLIENT_PY=$RESBUS_SRCDIR/tests/xmlrpc/client.py
[ -x "$RB_XMLRPC" ] || rb_fail "$RB_XMLRPC is missing: build it first"
command -v python3 >/dev/null || rb_fail "python3 is needed"

# One resource at most, started on demand and booting for 3 s, so that a
# fresh ticket is not ready at once and a second one has to wait.
rb_pools <<'EOF'
xr:
  max: 1
  cmd_new: "RESBUS_LOCAL_DELAY=3 @DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags_on_demand: [xr]
EOF

port=$(rb_closed_port)
RB_SERVER_EXTRA="hostname: 127.0.0.1
port: $port"
rb_server_yaml
URL=http://127.0.0.1:$port/
XR_PID=

# Starts the gateway (extra ARGS passed on) and waits until it listens.
start_gateway() {
	rb_log "starting resbus-xmlrpc $*"
	echo "===== resbus-xmlrpc $* ($(date +%T))" >>"$RB_TMP/xmlrpc.out"
	"$RB_XMLRPC" --config-dir "$RB_CONF" "$@" \
	    </dev/null >>"$RB_TMP/xmlrpc.out" 2>&1 &
	XR_PID=$!
	rb_track "$XR_PID"
}

gateway_log_has() {
	grep -q -- "$1" "$RB_TMP/xmlrpc.out"
}

listening() {
	[ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]
}

# Stops the gateway with SIGTERM; it must exit 0 within 20 s.
stop_gateway() {
	local rc
	kill -TERM "$XR_PID"
	RB_WAIT_INTERVAL=0.1 rb_until 20 rb_dead "$XR_PID" ||
	    rb_fail "resbus-xmlrpc ignored SIGTERM for 20 s"
	wait "$XR_PID"
	rc=$?
	rb_assert_eq 0 "$rc" "resbus-xmlrpc's exit status after SIGTERM"
	XR_PID=
}

client() {
	timeout -k 5 "${RB_CMD_TIMEOUT:-120}" python3 "$RB_CLIENT_PY" "$URL" xr "$@"
}

# Usage errors and --version need no bus.
"$RB_XMLRPC" --version | grep -Eq '^resbus-xmlrpc [0-9]' ||
    rb_fail "resbus-xmlrpc --version"
"$RB_XMLRPC" --help | grep -q -- '--listen HOST:PORT' ||
    rb_fail "resbus-xmlrpc --help does not mention --listen"
"$RB_XMLRPC" --listen nonsense >/dev/null 2>&1
rb_assert_eq 2 "$?" "exit status of a bad --listen"

rb_start_worker
rb_start_broker
start_gateway
rb_wait_for "the gateway to listen on port $port (server.yaml)" 30 \
    listening "$port"
rb_wait_for "the gateway's start-up line" 10 gateway_log_has 'serving XML-RPC'

# (a) resalloc's calls, one after the other.
out=$(client basic) || rb_fail "client.py basic failed: $out"
rb_log "$(echo "$out" | tr '\n' ' ')"
rb_assert_match '^basic: OK$' "$out" "client.py basic"
rb_wait_for "the gateway's log file" 10 test -s "$RB_LOGDIR/xmlrpc.log"
grep -Eq 'takeTicket: ticket [0-9]+' "$RB_LOGDIR/xmlrpc.log" ||
    rb_fail "takeTicket not logged in $RB_LOGDIR/xmlrpc.log"

# (b) a blocked waitTicket holds up no other connection, and is woken.
out=$(client block) || rb_fail "client.py block failed: $out"
rb_assert_match '^block: OK$' "$out" "client.py block"

# (b2) a wait for a resource still booting binds its ticket's events to
# the session's event queue; the binding goes when the wait ends, while
# the session (one keep-alive HTTP connection) lives on, so a long-lived
# caller does not gather one binding per ticket.
ticket_bindings() {
	rb_ctl list_bindings -p "$RB_VHOST" -s routing_key |
	    grep -c -E '^ticket\.[0-9]+\.\*$' || true
}
mkfifo "$RB_TMP/linger.in"
client linger <"$RB_TMP/linger.in" >"$RB_TMP/linger.out" 2>&1 &
linger=$!
rb_track "$linger"
exec 7>"$RB_TMP/linger.in"
rb_wait_for "the lingering client's ticket to be ready" 60 \
    grep -Eq '^[0-9]+$' "$RB_TMP/linger.out"
rb_assert_eq 0 "$(ticket_bindings)" \
    "ticket event bindings left by an ended wait of a live session"
exec 7>&-
wait "$linger" || rb_fail "client.py linger failed: $(cat "$RB_TMP/linger.out")"
rb_assert_match 'linger: OK' "$(cat "$RB_TMP/linger.out")" "client.py linger"

# (c) a client that gives up waiting frees its thread: the gateway says
# so within a wait slice (5 s).
held=$(client hold) || rb_fail "client.py hold failed: $held"
gone=$(client abandon) || rb_fail "client.py abandon failed: $gone"
rb_assert_match '^[0-9]+$' "$gone" "ticket id of the abandoned wait"
rb_wait_for "the gateway to notice the abandoned waitTicket $gone" 20 \
    gateway_log_has "waitTicket $gone abandoned"

# (d) SIGTERM while a waitTicket blocks: the gateway still exits 0
# within 20 s, and the waiting client gets an error rather than data.
waits_for() {
	[ "$(grep -c -E "waitTicket $1\$" "$RB_TMP/xmlrpc.out")" -ge "$2" ]
}
timeout -k 5 60 python3 -c '
import sys, xmlrpc.client
p = xmlrpc.client.ServerProxy(sys.argv[1], allow_none=True)
print(p.waitTicket(int(sys.argv[2])))' "$URL" "$gone" \
    >"$RB_TMP/blocked.out" 2>&1 &
blocked=$!
rb_track "$blocked"
rb_wait_for "a second waitTicket $gone at the gateway" 20 waits_for "$gone" 2
stop_gateway
wait "$blocked" && rb_fail "the blocked waitTicket $gone ended without an" \
    "error: $(cat "$RB_TMP/blocked.out")"

# (e) --listen overrides server.yaml; a new gateway serves the tickets
# taken through the old one.
port2=$(rb_closed_port)
start_gateway --listen "127.0.0.1:$port2"
rb_wait_for "the gateway to listen on port $port2 (--listen)" 30 \
    listening "$port2"
listening "$port" && rb_fail "the gateway still listens on $port"
URL=http://127.0.0.1:$port2/RPC2
client close "$gone" || rb_fail "closing ticket $gone"
client close "$held" || rb_fail "closing ticket $held"
# Every resource is deleted once the tickets are closed.
rb_wait_for "the local resources to be deleted" 60 rb_local_count_is 0
out=$(timeout -k 5 60 python3 -c '
import sys, xmlrpc.client
p = xmlrpc.client.ServerProxy(sys.argv[1], allow_none=True)
print(p.collectTicket("424242"))' "$URL") ||
    rb_fail "collectTicket through --listen failed: $out"
rb_assert_eq "{'ready': None, 'output': None, 'closed': None, 'failed': None}" \
    "$out" "collectTicket of an unknown ticket"
stop_gateway
gateway_log_has 'http: ' && rb_fail "libmicrohttpd complained (see xmlrpc.out)"

rb_done
