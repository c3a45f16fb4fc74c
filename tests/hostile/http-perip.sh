#!/bin/bash
# No address may hold more than 16 of the status server's 64 connections:
# one address opening 40 keeps 16, the others are closed at once, and the
# status page, API and metrics still answer other addresses (and this one
# again once it lets go); a ticket cycle completes and resbusd is the same
# process afterwards.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
if [ -f "$RESBUS_SRCDIR/tests/hostile/lib.sh" ]; then
	# shellcheck disable=SC1091
	. "$RESBUS_SRCDIR/tests/hostile/lib.sh"
fi
# shellcheck source=tests/status/http.sh
. "$RESBUS_SRCDIR/tests/status/http.sh"

http_setup http-perip
http_all_answer

# 40 idle connections from 127.0.0.1, held for 5 s.
python3 "$HTTPATTACK" perip 127.0.0.1 "$HTTP_PORT" 40 5 >"$RB_TMP/perip.out" &
perip_pid=$!
rb_track "$perip_pid"
rb_wait_for "the connections to be counted" 30 test -s "$RB_TMP/perip.out"
rb_assert_eq 16 "$(cat "$RB_TMP/perip.out")" "connections kept from one address"
# Another address is served meanwhile.
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
    --interface 127.0.0.9 "$BASE/api/v1/pools")
rb_assert_eq 200 "$code" "/api/v1/pools from 127.0.0.9 meanwhile"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
    --interface 127.0.0.9 "$BASE/")
rb_assert_eq 200 "$code" "/ from 127.0.0.9 meanwhile"
wait "$perip_pid"
http_all_answer
http_cycle
http_same_broker
rb_done
