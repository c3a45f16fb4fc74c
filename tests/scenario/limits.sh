#!/bin/bash
# max_starting and start_delay are never exceeded, at any instant: the
# number of resources starting at once and the spacing between two starts
# are computed from resbusd's log (every state change of every resource,
# with millisecond timestamps) and from cmd_new's own start and end
# stamps, while preallocation and tickets make the pools start resources.
# Run once per store (SQLite, PostgreSQL).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

# Without an argument the test runs itself once per store.
rb_per_store limits "$@"

# cmd_new: the local driver's, with a boot delay, between two stamps.
cat >"$RB_TMP/new" <<EOF
#!/bin/sh
echo "start \$RESALLOC_POOL_ID \$RESALLOC_NAME \$(date +%s%N)" >>"$RB_TMP/stamps"
"$RB_DRIVERDIR/new"
rc=\$?
echo "end \$RESALLOC_POOL_ID \$RESALLOC_NAME \$(date +%s%N)" >>"$RB_TMP/stamps"
exit \$rc
EOF
chmod +x "$RB_TMP/new"

rb_pools <<'EOF'
fast:
  max: 6
  max_prealloc: 5
  max_starting: 2
  cmd_new: "RESBUS_LOCAL_DELAY=1.5 @STATEDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [fast]
slow:
  max: 6
  max_prealloc: 3
  max_starting: 5
  start_delay: 2
  cmd_new: "RESBUS_LOCAL_DELAY=0.5 @STATEDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [slow]
EOF

# From resbusd's log, for pool $1: "MAXSTARTING MINGAP_MS NSTARTS", the
# most resources in STARTING at once and the shortest time between two
# starts.  A start is "starting in pool P"; it stops starting at its
# first "STARTING -> X" line.
log_limits() {
	awk -v pool="$1" '
	function days(y, m, d) {	# days since 1970-01-01
		if (m <= 2) { y--; m += 12 }
		return 365 * y + int(y / 4) - int(y / 100) + int(y / 400) + \
		    int((153 * (m - 3) + 2) / 5) + d - 719469
	}
	function ms(ts,    a) {	# 2025-01-01T12:00:00.123Z
		split(ts, a, /[-T:.Z]/)
		return ((days(a[1], a[2], a[3]) * 24 + a[4]) * 60 + a[5]) * \
		    60000 + a[6] * 1000 + a[7]
	}
	match($0, /resource [0-9]+ [^ :]+: /) {
		split(substr($0, RSTART, RLENGTH), w, " ")
		id = w[2]
		rest = substr($0, RSTART + RLENGTH)
		if (rest ~ ("^starting in pool " pool " ")) {
			t = ms($1)
			if (nstarts > 0 && (mingap == "" || t - last < mingap))
				mingap = t - last
			last = t
			nstarts++
			starting[id] = 1
			n++
		} else if ((id in starting) && rest ~ /^STARTING -> /) {
			delete starting[id]
			n--
		}
		if (n > max)
			max = n
	}
	END { printf "%d %s %d\n", max, mingap == "" ? -1 : mingap, nstarts }
	' "$RB_TMP/resbusd.out"
}

# From cmd_new's stamps, for pool $1: "MAXCONCURRENT MINGAP_MS NSTARTS".
stamp_limits() {
	sort -k4,4n "$RB_TMP/stamps" | awk -v pool="$1" '
	$2 != pool { next }
	$1 == "start" {
		t = int($4 / 1000000)
		if (n0 > 0 && (mingap == "" || t - last < mingap))
			mingap = t - last
		last = t
		n0++
		n++
	}
	$1 == "end" { n-- }
	{ if (n > max) max = n }
	END { printf "%d %s %d\n", max, mingap == "" ? -1 : mingap, n0 }'
}

# Asserts the limits on what happened so far.
check_limits() {
	local what=$1 l s
	read -r -a l <<<"$(log_limits fast)"
	read -r -a s <<<"$(stamp_limits fast)"
	rb_log "$what: fast: log: ${l[0]} starting at most, ${l[2]} starts;" \
	    "cmd_new: ${s[0]} at once at most, ${s[2]} runs"
	[ "${l[0]}" -le 2 ] ||
	    rb_fail "$what: pool fast had ${l[0]} resources starting at once (max_starting 2)"
	[ "${s[0]}" -le 2 ] ||
	    rb_fail "$what: pool fast ran ${s[0]} cmd_new at once (max_starting 2)"
	read -r -a l <<<"$(log_limits slow)"
	read -r -a s <<<"$(stamp_limits slow)"
	rb_log "$what: slow: log: ${l[2]} starts, ${l[1]} ms apart at least;" \
	    "cmd_new: ${s[2]} runs, ${s[1]} ms apart at least"
	# 10 ms for resbusd's timer against its log's clock; the worker
	# may run cmd_new a little late or early, by up to 250 ms.
	[ "${l[1]}" -eq -1 ] || [ "${l[1]}" -ge 1990 ] ||
	    rb_fail "$what: pool slow started two resources ${l[1]} ms apart (start_delay 2)"
	[ "${s[1]}" -eq -1 ] || [ "${s[1]}" -ge 1750 ] ||
	    rb_fail "$what: pool slow ran cmd_new twice ${s[1]} ms apart (start_delay 2)"
}

pool_count_is() {
	[ "$(rb_local_resources | grep -c "^$1_")" -eq "$2" ]
}

rb_start_worker
rb_start_broker

# Preallocation: five in fast (two at a time), three in slow (2 s apart).
rb_wait_for "five resources of pool fast" 60 pool_count_is fast 5
rb_wait_for "three resources of pool slow" 60 pool_count_is slow 3
counts_are() {
	pool_count_is fast "$1" && pool_count_is slow "$2"
}
rb_hold_for "five resources of pool fast and three of slow, no more" 1 \
    counts_are 5 3
check_limits "preallocation"
read -r -a l <<<"$(log_limits fast)"
# Two at a time did happen: the limit was reached, not just respected.
rb_assert_eq 2 "${l[0]}" "most resources of pool fast starting at once"
rb_assert_eq 5 "${l[2]}" "starts in pool fast"
read -r -a l <<<"$(log_limits slow)"
rb_assert_eq 3 "${l[2]}" "starts in pool slow"

# Tickets: taking resources makes both pools start replacements, again
# within the limits.
ids=()
for i in 1 2 3 4; do
	t=$(rb_resbus ticket --tag fast) || rb_fail "resbus ticket --tag fast failed ($?)"
	ids+=("$t")
done
for i in 1 2 3; do
	t=$(rb_resbus ticket --tag slow) || rb_fail "resbus ticket --tag slow failed ($?)"
	ids+=("$t")
done
for t in "${ids[@]}"; do
	rb_resbus ticket-wait "$t" --timeout 60 >/dev/null ||
	    rb_fail "ticket-wait $t failed ($?)"
done
# fast: 4 taken + 2 free (max 6); slow: 3 taken + 3 free.
rb_wait_for "six resources of pool fast" 60 pool_count_is fast 6
rb_wait_for "six resources of pool slow" 60 pool_count_is slow 6
rb_hold_for "six resources of each pool, no more (max 6)" 1 counts_are 6 6
check_limits "with tickets"
for t in "${ids[@]}"; do
	rb_resbus ticket-close "$t" || rb_fail "ticket-close $t failed ($?)"
done
rb_wait_for "pool fast to settle at five" 60 pool_count_is fast 5
rb_wait_for "pool slow to settle at three" 60 pool_count_is slow 3
check_limits "at the end"
read -r -a l <<<"$(log_limits slow)"
rb_assert_eq 6 "${l[2]}" "starts in pool slow"

rb_done
