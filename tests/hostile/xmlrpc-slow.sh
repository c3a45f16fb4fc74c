#!/bin/bash
# Slow HTTP clients against resbus-xmlrpc.  Once, the gateway had a
# thread per connection and a 300 s idle timeout, and 8 connections that
# trickled their request heads a byte at a time held a gateway limited to
# 8 for good.  Now, with --max-connections 8 and
# --max-connections-per-address 4:
#  (a) 8 tricklers from one address: 4 are refused at once, the other 4
#      are closed when the header timeout (10 s by default) runs out,
#      although they never stop sending;
#  (b) meanwhile a real XML-RPC client from another address is served at
#      once;
#  (c) 8 tricklers from two addresses fill the whole gateway: a client
#      from a third address waits in the backlog and is served when the
#      header timeout frees the places, not refused, and not never;
# and afterwards the gateway is the same process, an XML-RPC ticket
# cycle completes through it, and a CLI ticket cycle by another user too.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/hostile/lib.sh
. "$RESBUS_SRCDIR/tests/hostile/lib.sh"

rbh_setup xmlrpc-slow
RB_XMLRPC=$RESBUS_BUILDDIR/resbus-xmlrpc
SLOW=$RESBUS_SRCDIR/tests/xmlrpc/slow.py
[ -x "$RB_XMLRPC" ] || rb_fail "$RB_XMLRPC is missing: build it first"
command -v python3 >/dev/null || rb_fail "python3 is needed"
rbh_pool_demo 3 1
rbh_start

port=$(rb_closed_port)
URL=http://127.0.0.1:$port/
"$RB_XMLRPC" --config-dir "$RB_CONF" --amqp-url "$(rbh_url alice)" \
    --listen "127.0.0.1:$port" --max-connections 8 \
    --max-connections-per-address 4 \
    </dev/null >>"$RB_TMP/xmlrpc.out" 2>&1 &
XR_PID=$!
rb_track "$XR_PID"
listening() {
	[ -n "$(ss -Htln "sport = :$port" 2>/dev/null)" ]
}
rb_wait_for "the gateway to listen on $port" 30 listening
grep -q '10 s for a request head' "$RB_TMP/xmlrpc.out" ||
    rb_fail "the gateway's header timeout is not 10 s by default"

# call SOURCE SECONDS: a collectTicket of an unknown ticket from SOURCE,
# given up after SECONDS; prints how long it took.
call() {
	timeout -k 5 $(($2 + 10)) python3 - "$URL" "$1" "$2" <<'EOF'
import sys, time, xmlrpc.client
url, source, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
class T(xmlrpc.client.Transport):
    def make_connection(self, host):
        c = super().make_connection(host)
        c.source_address = (source, 0)
        c.timeout = limit
        return c
t0 = time.monotonic()
r = xmlrpc.client.ServerProxy(url, allow_none=True,
                              transport=T()).collectTicket(424242)
assert r["ready"] is None, r
print("%.1f" % (time.monotonic() - t0))
EOF
}

# trickle NAME SOURCES COUNT: COUNT tricklers from SOURCES (see slow.py),
# for 30 s.
trickle() {
	timeout -k 5 60 python3 "$SLOW" 127.0.0.1 "$port" "$3" "$2" 30 \
	    >"$RB_TMP/$1.out" 2>&1 &
	rb_track $!
	eval "${1}_pid=$!"
	rb_wait_for "$1's connections" 10 grep -q '^open$' "$RB_TMP/$1.out"
}

closed_count() {
	grep -c '^closed' "$RB_TMP/$1.out" || true
}

closed_at_least() {
	[ "$(closed_count "$1")" -ge "$2" ]
}

# (a) and (b)
trickle one 127.0.0.1 8
rb_wait_for "4 of one's connections to be refused" 5 closed_at_least one 4
took=$(call 127.0.0.2 5) || rb_fail "a client from 127.0.0.2 was not served" \
    "while 127.0.0.1 trickles"
rb_log "served from 127.0.0.2 in $took s while 127.0.0.1 trickles"
rb_assert_eq 4 "$(closed_count one)" "connections of 127.0.0.1 closed early"
wait "$one_pid"
awk '$1 == "closed" && $3 < 2 { n++ } END { exit n == 4 ? 0 : 1 }' \
    "$RB_TMP/one.out" || rb_fail "not 4 refused at once: $(cat "$RB_TMP/one.out")"
awk '$1 == "closed" && $3 >= 8 && $3 <= 16 { n++ } END { exit n == 4 ? 0 : 1 }' \
    "$RB_TMP/one.out" ||
    rb_fail "the 4 held tricklers were not closed after about 10 s:" \
	"$(cat "$RB_TMP/one.out")"
grep -Eq '^open [0-9]+' "$RB_TMP/one.out" &&
    rb_fail "a trickler outlived the header timeout: $(cat "$RB_TMP/one.out")"
grep -q 'refused: 4 connections from its address' "$RB_TMP/xmlrpc.out" ||
    rb_fail "the per-address refusals are not logged"

# (c) the whole gateway held: a third address waits, then is served.
trickle two 127.0.0.3,127.0.0.4 8
took=$(call 127.0.0.5 30) ||
    rb_fail "a client was not served once the tricklers timed out"
rb_log "served from 127.0.0.5 in $took s with the gateway full of tricklers"
awk -v t="$took" 'BEGIN { exit t >= 5 && t <= 20 ? 0 : 1 }' ||
    rb_fail "served after $took s: expected to wait for the header timeout"
wait "$two_pid"
rb_assert_eq 8 "$(closed_count two)" "tricklers of 127.0.0.3 and .4 closed"

# Afterwards: the same gateway, a ticket cycle through it, and one by bob.
rb_alive "$XR_PID" || rb_fail "resbus-xmlrpc is gone"
[ "$(grep -c 'serving XML-RPC' "$RB_TMP/xmlrpc.out")" -eq 1 ] ||
    rb_fail "resbus-xmlrpc started more than once"
id=$(timeout -k 5 60 python3 "$RESBUS_SRCDIR/tests/xmlrpc/client.py" \
    "$URL" demo hold) || rb_fail "an XML-RPC ticket cycle failed: $id"
rb_assert_match '^[0-9]+$' "$id" "the XML-RPC ticket id"
timeout -k 5 60 python3 "$RESBUS_SRCDIR/tests/xmlrpc/client.py" \
    "$URL" demo close "$id" || rb_fail "closing ticket $id over XML-RPC"
rbh_after_attack bob --tag demo
rb_alive "$XR_PID" || rb_fail "resbus-xmlrpc is gone"
grep -q 'http: ' "$RB_TMP/xmlrpc.out" &&
    rb_fail "libmicrohttpd complained (see xmlrpc.out)"

rb_done
