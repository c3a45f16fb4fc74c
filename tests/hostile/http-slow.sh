#!/bin/bash
# Slow readers of resbusd's status server pin a bounded amount of memory:
# with 20,000 open tickets, 20 clients ask for /api/v1/tickets?limit=1000
# and never read the answer.  resbusd's resident set grows by less than 4
# MiB meanwhile (when the whole list was one page, of 6.7 MB, they added
# 45 MiB), the status page, API and metrics still answer, a ticket cycle
# completes, and resbusd is the same process afterwards.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
if [ -f "$RESBUS_SRCDIR/tests/hostile/lib.sh" ]; then
	# shellcheck disable=SC1091
	. "$RESBUS_SRCDIR/tests/hostile/lib.sh"
fi
# shellcheck source=tests/status/http.sh
. "$RESBUS_SRCDIR/tests/status/http.sh"

# AddressSanitizer keeps freed memory in quarantine (256 MiB by default),
# which would count every page ever written in the resident set.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1"
NTICKETS=20000
MAX_GROWTH_KB=4096
# One owner holds them all: no cap on open tickets per owner here.
RB_SERVER_EXTRA="max_open_tickets_per_owner: 0"
http_setup http-slow
sb=$(printf 'sandbox-%.0s' {1..16})	# 128 bytes, the most
http_bulk_tickets "$NTICKETS" "$sb"
rb_log "$NTICKETS tickets open"
PAGE=/api/v1/tickets?limit=1000
size=$(curl -s --max-time 30 -o /dev/null -w '%{size_download}' "$BASE$PAGE")
rb_log "$PAGE is $size bytes"
[ "$size" -gt 300000 ] || rb_fail "$PAGE is only $size bytes"
# The same once more, so that the allocator has what one reader needs.
for i in 1 2 3; do
	for p in "$PAGE" / /metrics; do
		curl -s --max-time 30 -o /dev/null "$BASE$p"
	done
done
rb_wait_for "resbusd to end the connections of those reads" 15 http_server_quiet
rss0=$(http_rss_kb)

# 20 readers that never read, 10 from each of two addresses (the limit
# per address is 16); they hold their connections for 8 s, less than the
# 10 s after which resbusd gives up on a connection that does not move.
python3 "$HTTPATTACK" slow 127.0.0.1 "$HTTP_PORT" 20 "$PAGE" 8 10 \
    >"$RB_TMP/slow.out" &
slow_pid=$!
rb_track "$slow_pid"
rb_wait_for "20 slow readers" 10 grep -qx 20 "$RB_TMP/slow.out"
small_growth() {
	rss1=$(http_rss_kb)
	[ $((rss1 - rss0)) -lt "$MAX_GROWTH_KB" ] ||
	    { echo "$((rss1 - rss0)) kB more"; return 1; }
}
rb_hold_for "20 slow readers to add less than $MAX_GROWTH_KB kB to resbusd" \
    3 small_growth
rb_log "resident set $rss0 kB before, $rss1 kB with 20 slow readers"
http_all_answer
http_cycle
wait "$slow_pid"
http_all_answer
http_same_broker
rb_done
