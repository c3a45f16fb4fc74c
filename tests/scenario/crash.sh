#!/bin/bash
# Crashes under load: 20 clients run 500 ticket cycles in all (ticket,
# ticket-wait, ticket-close) while resbusd is killed with SIGKILL twice and
# restarted.  Afterwards every ticket was served and then closed
# (`ticket-check` says "already closed ticket" and prints the data its
# client got), no resource was ever held by two open tickets at once,
# and once the system settles the resources the local driver lists are
# exactly those the store holds alive.  Run once per store (SQLite,
# PostgreSQL).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

# Without an argument the test runs itself once per store.
rb_per_store crash "$@"
STORE=$1

CLIENTS=20
CYCLES=25 # per client: 500 in all

rb_pools <<'EOF'
crash:
  max: 10
  max_prealloc: 5
  max_starting: 5
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [crash]
EOF

# What the store holds alive: names, sorted.
store_alive() {
	local q="SELECT name FROM resources WHERE state <> 'ENDED' ORDER BY name"
	if [ "$STORE" = sqlite ]; then
		sqlite3 "file:$RB_TMP/db.sqlite?mode=ro" "$q"
	else
		rb_psql "$RB_PG_DB" -At -c "$q"
	fi | sort
}

# What the local driver's cmd_list says exists: names, sorted.
driver_list() {
	"$RB_DRIVERDIR/list" | sort
}

# One client: CYCLES cycles, each line of $RB_TMP/client.N
# "OK ticket data" or "FAIL step ticket exit-status".  Each command gives
# up by itself (100 s) before rb_resbus's limit (120 s) kills it, so that
# a failure leaves the client's own message in $RB_TMP/stderr.N.
client() {
	local c=$1 i id data rc out=$RB_TMP/client.$1 err=$RB_TMP/stderr.$1
	for ((i = 0; i < CYCLES; i++)); do
		id=$(rb_resbus ticket --tag crash --timeout 100 2>>"$err")
		rc=$?
		if [ "$rc" -ne 0 ] || [ -z "$id" ]; then
			echo "FAIL ticket - $rc" >>"$out"
			continue
		fi
		data=$(rb_resbus ticket-wait "$id" --timeout 100 2>>"$err")
		rc=$?
		if [ "$rc" -ne 0 ]; then
			echo "FAIL ticket-wait $id $rc" >>"$out"
			continue
		fi
		rb_resbus ticket-close "$id" --timeout 100 2>>"$err"
		rc=$?
		if [ "$rc" -ne 0 ]; then
			echo "FAIL ticket-close $id $rc" >>"$out"
			continue
		fi
		echo "OK $id $data" >>"$out"
	done
}

cycles_done() {
	cat "$RB_TMP"/client.[0-9]* 2>/dev/null | wc -l
}

cycles_at_least() {
	[ "$(cycles_done)" -ge "$1" ]
}

rb_start_worker
rb_start_broker
rb_wait_for "five preallocated resources" 60 rb_local_count_is 5

t0=$(date +%s)
pids=()
for ((c = 0; c < CLIENTS; c++)); do
	client "$c" &
	pids+=("$!")
	rb_track "$!"
done
total=$((CLIENTS * CYCLES))

# Two crashes, at a third and at two thirds of the cycles.
for k in 1 2; do
	rb_wait_for "$((total * k / 3)) cycles" 120 cycles_at_least $((total * k / 3))
	rb_log "$(cycles_done) cycles done; crash $k"
	rb_stop_broker -9
	# The outage lasts until RabbitMQ has seen the crash (and
	# rb_start_broker then waits for the new resbusd's consumer).
	RB_WAIT_INTERVAL=1 rb_wait_for "RabbitMQ to drop the crashed resbusd's consumer" \
	    30 eval '! rb_broker_consuming'
	rb_start_broker
done

for pid in "${pids[@]}"; do
	rb_wait_for "client $pid to finish" 180 rb_dead "$pid"
done
rb_log "$(cycles_done) cycles in $(($(date +%s) - t0)) s"

# (1) every cycle went through, with a distinct resource each time (no
# reuse is configured: a resource serves one ticket in its life).
fails=$(cat "$RB_TMP"/client.[0-9]* | grep -v '^OK ')
[ -z "$fails" ] || rb_fail "client failures: $(printf '%s\n' "$fails" | head -n 20 | tr '\n' ';') $(cat "$RB_TMP"/stderr.* | sort | uniq -c | head -n 5)"
rb_assert_eq "$total" "$(cycles_done)" "cycles done"
cat "$RB_TMP"/client.[0-9]* | sort -k2,2n >"$RB_TMP/cycles"
dup=$(awk '{ print $3 }' "$RB_TMP/cycles" | sort | uniq -d | head -n 5)
[ -z "$dup" ] || rb_fail "resources given to more than one ticket: $dup"
dup=$(awk '{ print $2 }' "$RB_TMP/cycles" | sort | uniq -d | head -n 5)
[ -z "$dup" ] || rb_fail "ticket ids handed out twice: $dup"

# (2) resbusd never gave a resource held by an open ticket to another
# one (its log, one run at a time: state in memory is what counts).
overlap=$(awk '
/^===== resbusd/ { delete holder; delete holds; next }
match($0, /ticket [0-9]+: got resource [0-9]+ /) {
	split(substr($0, RSTART, RLENGTH), w, " ")
	t = w[2]; sub(/:$/, "", t); r = w[5]
	if ((r in holder) && holder[r] != t)
		print "resource " r " given to ticket " t " while ticket " holder[r] " held it"
	holder[r] = t; holds[t] = r
	next
}
match($0, /ticket [0-9]+: [A-Z]+ -> (CLOSED|FAILED)$/) {
	split(substr($0, RSTART, RLENGTH), w, " ")
	t = w[2]; sub(/:$/, "", t)
	if (t in holds) { delete holder[holds[t]]; delete holds[t] }
}' "$RB_TMP/resbusd.out" | head -n 5)
[ -z "$overlap" ] || rb_fail "$overlap"
ngot=$(grep -c 'ticket [0-9]*: got resource' "$RB_TMP/resbusd.out")
rb_log "resbusd logged $ngot assignments over three runs"

# (3) every ticket is closed and kept the data its client got.
check_ticket() {
	local id=$1 data=$2 out err rc
	out=$(timeout -k 5 60 "$RB_RESBUS" ticket-check "$id" 2>"$RB_TMP/tc.$id")
	rc=$?
	err=$(cat "$RB_TMP/tc.$id")
	rm -f "$RB_TMP/tc.$id"
	if [ "$rc" -ne 1 ] || [ "$err" != "WARNING: already closed ticket" ] ||
	    [ "$out" != "$data" ]; then
		echo "ticket $id: exit $rc, stderr '$err', stdout '$out', expected '$data'"
	fi
}
export -f check_ticket
export RB_RESBUS RB_TMP
bad=$(awk '{ print $2, $3 }' "$RB_TMP/cycles" |
    xargs -P 20 -n 2 bash -c 'check_ticket "$1" "$2"' _ | head -n 5)
[ -z "$bad" ] || rb_fail "tickets not closed as their clients left them: $bad"

# (4) settled: the five free resources, and what the driver lists is what
# the store holds alive.
rb_wait_for "the pool to settle at five resources" 60 rb_local_count_is 5
settled() {
	[ "$(driver_list)" = "$(store_alive)" ]
}
rb_wait_for "the store to agree with the driver" 30 settled
rb_hold_for "the store to go on agreeing with the driver" 2 settled
rb_assert_eq "$(driver_list | tr '\n' ' ')" "$(store_alive | tr '\n' ' ')" \
    "store's live resources against the driver's list"
rb_assert_eq 5 "$(driver_list | wc -l)" "resources the driver lists"

rb_done
