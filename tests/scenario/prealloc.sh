#!/bin/bash
# Preallocation as resalloc does it: max_prealloc resources come UP with
# no ticket asking; a ticket takes one and a replacement starts; never
# more than `max` resources are alive (from resbusd's own account of every
# resource's state, at every instant); id_in_pool stays within 0..max-1
# over 20 churned tickets.  Run once per store (SQLite, PostgreSQL).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

# Without an argument the test runs itself once per store.
rb_per_store prealloc "$@"

rb_pools <<'EOF'
pre:
  max: 4
  max_prealloc: 2
  max_starting: 2
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [pre]
EOF

# The most resources of pool $1 alive (any state but ENDED) at once, by
# resbusd's log: "starting in pool P" makes one, "... -> ENDED" ends it.
max_alive() {
	awk -v pool="$1" '
	match($0, /resource [0-9]+ [^ :]+: /) {
		split(substr($0, RSTART, RLENGTH), w, " ")
		id = w[2]
		rest = substr($0, RSTART + RLENGTH)
		if (rest ~ ("^starting in pool " pool " ")) {
			alive[id] = 1
			n++
		} else if ((id in alive) && rest ~ /-> ENDED$/) {
			delete alive[id]
			n--
		}
		if (n > max)
			max = n
	}
	END { print max + 0 }' "$RB_TMP/resbusd.out"
}

rb_start_worker
rb_start_broker

# (a) max_prealloc resources come UP without any ticket, and no more.
rb_wait_for "two preallocated resources" 60 rb_local_count_is 2
two_only() {
	rb_local_count_is 2 &&
	    [ "$(grep -c 'starting in pool pre ' "$RB_TMP/resbusd.out")" -eq 2 ]
}
rb_hold_for "two resources (two starts) only with no ticket" 2 two_only
rb_assert_eq 2 "$(grep -c 'starting in pool pre ' "$RB_TMP/resbusd.out")" \
    "starts with no ticket"
pre=$(rb_local_resources)

# (b) a ticket gets one of them, and a replacement starts.
id=$(rb_resbus ticket --tag pre) || rb_fail "resbus ticket failed ($?)"
data=$(rb_resbus ticket-wait "$id" --timeout 60) ||
    rb_fail "ticket-wait $id failed ($?)"
got=${data#local:"$RESBUS_LOCAL_ROOT"/}
printf '%s\n' "$pre" | grep -qxF "$got" ||
    rb_fail "ticket $id got '$data', not one of the preallocated: $pre"
rb_wait_for "a replacement for the taken resource" 60 rb_local_count_is 3
rb_hold_for "three resources only with one ticket (1 taken + 2 free)" 1 \
    rb_local_count_is 3

# (c) more tickets than `max`: four are served, the fifth waits, and the
# pool never has more than four resources.
ids=("$id")
for i in 2 3 4 5; do
	t=$(rb_resbus ticket --tag pre) || rb_fail "resbus ticket $i failed ($?)"
	ids+=("$t")
done
for t in "${ids[@]:0:4}"; do
	rb_resbus ticket-wait "$t" --timeout 60 >/dev/null ||
	    rb_fail "ticket-wait $t failed ($?)"
done
four_only() {
	rb_local_count_is 4 || return 1
	if err=$(rb_resbus ticket-check "${ids[4]}" 2>&1); then
		echo "the fifth ticket ${ids[4]} was served beyond max: $err"
		return 1
	fi
}
RB_WAIT_INTERVAL=0.5 rb_hold_for "four resources only with four tickets served (max 4)" \
    3 four_only
err=$(rb_resbus ticket-check "${ids[4]}" 2>&1) &&
    rb_fail "the fifth ticket ${ids[4]} was served beyond max: $err"
rb_assert_match 'still not processed' "$err" "ticket-check of the fifth ticket"
rb_assert_eq 4 "$(max_alive pre)" "most resources alive at once"

# Closing one serves the fifth.
rb_resbus ticket-close "${ids[0]}" || rb_fail "ticket-close ${ids[0]} failed ($?)"
rb_resbus ticket-wait "${ids[4]}" --timeout 60 >/dev/null ||
    rb_fail "ticket-wait ${ids[4]} failed ($?)"
for t in "${ids[@]:1}"; do
	rb_resbus ticket-close "$t" || rb_fail "ticket-close $t failed ($?)"
done
rb_wait_for "the pool to settle at two free resources" 60 rb_local_count_is 2

# (d) 20 churned tickets, three held at a time: every resource's
# id_in_pool (from RESALLOC_ID_IN_POOL, which cmd_new writes to `info`)
# is within 0..max-1, and no two live resources share one.
held=()
seen=
for ((i = 0; i < 20; i++)); do
	t=$(rb_resbus ticket --tag pre) || rb_fail "resbus ticket failed ($?)"
	data=$(rb_resbus ticket-wait "$t" --timeout 60) ||
	    rb_fail "ticket-wait $t failed ($?)"
	dir=${data#local:}
	iip=$(sed -n 's/^id_in_pool=//p' "$dir/info" 2>/dev/null) ||
	    rb_fail "no info file in $dir"
	rb_assert_match '^[0-3]$' "$iip" "id_in_pool of ticket $t's resource $dir"
	seen+=" $iip"
	held+=("$t")
	if [ "${#held[@]}" -ge 3 ]; then
		rb_resbus ticket-close "${held[0]}" ||
		    rb_fail "ticket-close ${held[0]} failed ($?)"
		held=("${held[@]:1}")
	fi
	# Live resources have distinct id_in_pool values.
	dup=$(cat "$RESBUS_LOCAL_ROOT"/*/info 2>/dev/null |
	    sed -n 's/^id_in_pool=//p' | sort | uniq -d)
	[ -z "$dup" ] || rb_fail "live resources share id_in_pool $dup"
done
rb_log "id_in_pool values served: $seen"
for t in "${held[@]}"; do
	rb_resbus ticket-close "$t" || rb_fail "ticket-close $t failed ($?)"
done
rb_wait_for "the pool to settle at two free resources" 60 rb_local_count_is 2
bad=$(grep -o 'starting in pool pre (id_in_pool -\?[0-9]*)' \
    "$RB_TMP/resbusd.out" | grep -v '(id_in_pool [0-3])')
[ -z "$bad" ] || rb_fail "resbusd started resources with: $bad"
rb_assert_match '^[1-4]$' "$(max_alive pre)" "most resources alive at once (max 4)"

rb_done
