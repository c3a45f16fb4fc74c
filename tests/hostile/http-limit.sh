#!/bin/bash
# resbusd's status server recovers at its connection limit: 64 connections
# opened at once (the limit) and closed leave the status page, the JSON API
# and the metrics answering; a normal ticket cycle still completes and
# resbusd is the same process.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
if [ -f "$RESBUS_SRCDIR/tests/hostile/lib.sh" ]; then
	# shellcheck disable=SC1091
	. "$RESBUS_SRCDIR/tests/hostile/lib.sh"
fi
# shellcheck source=tests/status/http.sh
. "$RESBUS_SRCDIR/tests/status/http.sh"

http_setup http-limit
http_all_answer

# From several addresses (127.0.0.2 and up), 15 from each: the limit of
# 16 per address does not refuse them and all 64 are taken.
for round in 1 2 3; do
	n=$(python3 "$HTTPATTACK" burst 127.0.0.1 "$HTTP_PORT" 64 15) ||
	    rb_fail "the burst failed"
	rb_log "round $round: 64 connections opened at once, $n held, closed"
	rb_assert_eq 64 "$n" "connections the server held"
	http_all_answer
done
# Past the limit: 100 at once, then closed.
python3 "$HTTPATTACK" burst 127.0.0.1 "$HTTP_PORT" 100 15 >/dev/null ||
    rb_fail "the burst failed"
http_all_answer

http_cycle
http_same_broker
rb_done
