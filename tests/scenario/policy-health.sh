#!/bin/bash
# Pool health and start_timeout.  Two on-demand pools provide tag hd;
# the better-priority one (broken) has a cmd_new that hangs, with
# start_timeout 2.  A ticket's start there is cancelled and deleted after
# about 2 s (the hanging cmd_new is stopped, pool-list counts a failed
# start) and the ticket is then served elsewhere, by the healthy pool;
# once broken's last two starts failed, the next ticket's start is made
# in the healthy pool first.  Run once per store (SQLite, PostgreSQL).
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck disable=SC2317 # functions called through rb_wait_for
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/policy/lib.sh
. "$RESBUS_SRCDIR/tests/policy/lib.sh"

pol_begin policy-health "$@"
pol_server_yaml ''

rb_pools <<EOF
broken:
  max: 4
  max_starting: 4
  start_timeout: 2
  cmd_new: "RESBUS_LOCAL_DELAY=3600 @DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags_on_demand:
    - name: hd
      priority: 10
good:
  max: 4
  max_starting: 4
  start_timeout: 20
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags_on_demand:
    - name: hd
      priority: 0
EOF

rb_start_worker
rb_start_broker

now_ms() {
	date +%s%3N
}
# The pools of the on-demand starts so far, in order, one a line.
starts() {
	sed -n 's/.*: starting in pool \([a-z]*\) .*/\1/p' "$RB_TMP/resbusd.out"
}
nstarts() {
	starts | wc -l
}
timeouts() {
	pol_log_count 'broken_[^ ]*: not up within start_timeout'
}
failed_starts() {
	pol_maint pool-list --json | jq -r '.[] | select(.name == "broken") | .starts_failed'
}
failed_at_least() {
	[ "$(failed_starts)" -ge "$1" ]
}
# The process group of resource ID's cmd_new, from the worker's log.
cmd_new_group() {
	sed -n "s/.*resource $1: cmd_new is process group \([0-9]*\)$/\1/p" \
	    "$RB_TMP/worker.out" | tail -n 1
}
# Whether process group $1 still has a process.
group_alive() {
	kill -0 -- "-$1" 2>/dev/null
}

# Findings about where starts go are collected and reported together.
wrong=()
finding() {
	rb_log "WRONG: $*"
	wrong+=("$*")
}

# (a) the first ticket: a start in broken, cancelled and deleted after
# about 2 s; the ticket is then served by good.
t1=$(rb_resbus ticket --tag hd) || rb_fail "resbus ticket failed ($?)"
opened=$(now_ms)
one_start() {
	[ "$(nstarts)" -ge 1 ]
}
rb_wait_for "a start for ticket $t1" 10 one_start
rb_assert_eq broken "$(starts | head -n 1)" "the pool of the first start (the better priority)"
id1=$(sed -n 's/.*resource \([0-9]*\) broken_[^ ]*: starting in pool broken .*/\1/p' \
    "$RB_TMP/resbusd.out" | head -n 1)
group_known() {
	[ -n "$(cmd_new_group "$id1")" ]
}
rb_wait_for "the cmd_new of resource $id1 to run" 10 group_known
g1=$(cmd_new_group "$id1")
group_alive "$g1" || rb_fail "the cmd_new of resource $id1 (process group $g1) does not hang"
timed_out() {
	[ "$(timeouts)" -ge "$1" ]
}
rb_wait_for "the start in broken to time out" 10 timed_out 1
late=$(now_ms)
rb_log "the start in broken timed out $((late - opened)) ms after the ticket"
{ [ $((late - opened)) -ge 1500 ] && [ $((late - opened)) -le 5000 ]; } ||
    rb_fail "the start in broken timed out after $((late - opened)) ms (start_timeout 2)"
r1=$(sed -n 's/.*resource [0-9]* \(broken_[^ :]*\): not up within start_timeout.*/\1/p' \
    "$RB_TMP/resbusd.out" | head -n 1)
ended() {
	grep -q "resource [0-9]* $1: ENDED" "$RB_TMP/resbusd.out"
}
rb_wait_for "the timed-out resource $r1 to be deleted" 20 ended "$r1"
group_gone() {
	! group_alive "$1"
}
rb_wait_for "the hanging cmd_new of $r1 (process group $g1) to be stopped" 20 \
    group_gone "$g1"
rb_local_gone "$r1" || rb_fail "the timed-out resource $r1 was left behind"
rb_wait_for "pool-list to count the failed start" 10 failed_at_least 1
# The ticket's next start: elsewhere.
second() {
	[ "$(nstarts)" -ge 2 ]
}
rb_wait_for "a second start for ticket $t1" 10 second
[ "$(starts | sed -n 2p)" = good ] ||
    finding "after its start in broken timed out, ticket $t1's next start was in $(starts | sed -n 2p), not elsewhere (good)"
data=$(rb_resbus ticket-wait "$t1" --timeout 30) ||
    rb_fail "ticket $t1 was not served within 30 s ($?)"
rb_assert_eq good "$(pol_pool_of "$data")" "the pool that served ticket $t1"
rb_log "ticket $t1 served by good after $(($(now_ms) - opened)) ms," \
    "$(timeouts) timeout(s) in broken"

# (b) more tickets, one at a time, until broken's last two starts
# failed; then the next ticket starts in good first.
n=0
while [ "$(timeouts)" -lt 2 ]; do
	n=$((n + 1))
	[ "$n" -le 3 ] || rb_fail "broken failed fewer than twice in 4 tickets"
	t=$(rb_resbus ticket --tag hd) || rb_fail "resbus ticket failed ($?)"
	rb_resbus ticket-wait "$t" --timeout 30 >/dev/null ||
	    rb_fail "ticket $t was not served within 30 s ($?)"
	rb_assert_eq good "$(pol_pool "$t")" "the pool that served ticket $t"
done
rb_wait_for "pool-list to count two failed starts" 10 failed_at_least 2
before=$(nstarts)
t2=$(rb_resbus ticket --tag hd) || rb_fail "resbus ticket failed ($?)"
next_start() {
	[ "$(nstarts)" -gt "$before" ]
}
rb_wait_for "a start for ticket $t2" 10 next_start
rb_assert_eq good "$(starts | sed -n "$((before + 1))p")" \
    "the pool of the first start after two failures in broken"
data=$(rb_resbus ticket-wait "$t2" --timeout 30) ||
    rb_fail "ticket $t2 was not served within 30 s ($?)"
rb_assert_eq good "$(pol_pool_of "$data")" "the pool that served ticket $t2"
timeouts_are() {
	[ "$(timeouts)" -eq "$1" ]
}
rb_hold_for "no further timeout in broken once it is demoted (2)" 3 \
    timeouts_are 2

rb_assert_eq 0 "$(pol_log_count ' -> FAILED')" "tickets that failed"
if [ ${#wrong[@]} -gt 0 ]; then
	rb_fail "$(printf '%s; ' "${wrong[@]}")"
fi
rb_done
