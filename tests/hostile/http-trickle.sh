#!/bin/bash
# A request must arrive whole within 10 s: a client that trickles its
# request header one byte a second (which MHD's idle timeout alone never
# ends) has its connection closed after about 10 s, while the status page
# answers others meanwhile; a ticket cycle completes and resbusd is the
# same process afterwards.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
if [ -f "$RESBUS_SRCDIR/tests/hostile/lib.sh" ]; then
	# shellcheck disable=SC1091
	. "$RESBUS_SRCDIR/tests/hostile/lib.sh"
fi
# shellcheck source=tests/status/http.sh
. "$RESBUS_SRCDIR/tests/status/http.sh"

http_setup http-trickle
http_all_answer

# Eight tricklers, within the limit of 16 per address.
for i in 1 2 3 4 5 6 7 8; do
	python3 "$HTTPATTACK" trickle 127.0.0.1 "$HTTP_PORT" 1 40 \
	    >"$RB_TMP/trickle.$i" &
	rb_track $!
done
rb_wait_for "the eight tricklers to connect" 15 http_clients_at_least 8
http_all_answer
rb_wait_for "the tricklers to be cut off" 45 \
    bash -c 'for f in "$1"/trickle.*; do [ -s "$f" ] || exit 1; done' _ "$RB_TMP"
for i in 1 2 3 4 5 6 7 8; do
	t=$(cat "$RB_TMP/trickle.$i")
	rb_log "trickler $i: closed after $t s"
	[ "$t" != open ] || rb_fail "trickler $i still connected after 40 s"
	# 10 s, give or take a second of the loop and of the client's pace.
	awk -v t="$t" 'BEGIN { exit !(t >= 9 && t <= 15) }' ||
	    rb_fail "trickler $i closed after $t s, not about 10 s"
done
rb_assert_match 'no whole request within 10 s' "$(cat "$RB_TMP/resbusd.out")" \
    "resbusd's log"
http_all_answer
http_cycle
http_same_broker
rb_done
