#!/bin/bash
# Refused requests free what they allocated.  20k ticket requests for tag
# sets no pool provides once kept 104 MB in resbusd: the tag set of every
# refusal stayed.  Now 20k more such refusals, after a warm-up of 5k, must
# grow resbusd's RSS by less than 4 MiB, about 200 bytes a refusal.  The
# bound: with this build (sanitizers on, AddressSanitizer's quarantine of
# freed memory held to 8 MB so that it stays out of the measure), the
# code that kept the tag sets grew by 10 MiB over the same 20k (500 bytes
# each), while 20k refusals that make no new tag set grew it by 1.6 MiB
# (allocator and quarantine slack).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/hostile/lib.sh
. "$RESBUS_SRCDIR/tests/hostile/lib.sh"

rbh_setup bounds-rss
# Tickets for tags no pool provides wait by default; refused here.
rbh_server_yaml "refuse_unprovidable: true"
rbh_pool_demo 3 1
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8"
rbh_start_broker

# N requests from FIRST on, each for its own tag set that no pool
# provides; all must be refused.
flood() { # FIRST N
	local out
	out=$(RB_CMD_TIMEOUT=600 rbh_amqp mallory publish TicketRequest \
	    "{'tags': ['nosuch%06d' % ($1 + i)]}" --exchange resbus.ticket \
	    --key-expr "'nosuch%06d' % ($1 + i)" --repeat "$2" --wait 500 \
	    --summary) ||
	    rb_fail "$2 requests were not all answered ($?): $out"
	rb_log "answers: $(tr '\n' ';' <<<"$out" | cut -c1-300)"
	rb_assert_match "^$2 resbus\.v1\.Error no pool provides tag" "$out" \
	    "the answers to $2 requests for tags no pool provides"
}
# Whether resbusd's RSS is what it was at the last call (0.5 s before).
rss_steady() {
	local now
	now=$(rbh_rss_kb)
	[ "$now" = "${rss_last:-}" ] && return 0
	rss_last=$now
	return 1
}
flood 0 5000
rss_last=
RB_WAIT_INTERVAL=0.5 rb_wait_for "resbusd's RSS to settle after 5k refusals" 30 rss_steady
rss0=$(rbh_rss_kb)
flood 5000 20000
rss_last=
RB_WAIT_INTERVAL=0.5 rb_wait_for "resbusd's RSS to settle after 20k more" 30 rss_steady
rss1=$(rbh_rss_kb)
rb_log "RSS: $rss0 KiB after 5k refusals, $rss1 KiB after 20k more" \
    "($(((rss1 - rss0) / 1024)) MiB more)"
[ $((rss1 - rss0)) -lt 4096 ] ||
    rb_fail "20k refusals grew resbusd's RSS by $((rss1 - rss0)) KiB"

rbh_start_worker
rbh_after_attack alice --tag demo
rb_done
