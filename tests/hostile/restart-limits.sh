#!/bin/bash
# Limits hold across a restart.  READY tickets were not charged when
# resbusd loaded them, so a second ticket held back by `per_owner: 1` was
# served after a restart while the first still held its resource.  Now
# it still waits after a clean restart and after a crash (SIGKILL), and
# is served once the first is closed.  Run once per store.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/hostile/lib.sh
. "$RESBUS_SRCDIR/tests/hostile/lib.sh"

if [ $# -eq 0 ]; then
	rc=0
	for s in sqlite postgresql; do
		bash "$0" "$s" || { echo "FAIL: restart-limits on $s" >&2; rc=1; }
	done
	exit "$rc"
fi
rbh_setup restart-limits "$1"
rbh_pool_demo 3 2
rbh_server_yaml "limits:
  - {tag: demo, per_owner: 1}"
rbh_start
rb_wait_for "two preallocated resources" 60 rb_local_count_is 2

a=$(rbh_take alice --tag demo)
data=$(rbh_resbus alice ticket-wait "$a" --timeout 60) ||
    rb_fail "ticket-wait $a failed ($?)"
b=$(rbh_take alice --tag demo)
b_waits() {
	if out=$(rbh_resbus alice ticket-check "$b" 2>&1); then
		echo "ticket $b was served: $out"
		return 1
	fi
}
waits() { # SECONDS: ticket b is not served for SECONDS
	RB_WAIT_INTERVAL=0.5 rb_hold_for "ticket $b to wait while $a holds $data" \
	    "$1" b_waits
	rbh_resbus alice ticket-check "$a" >/dev/null ||
	    rb_fail "ticket $a lost its resource"
}
waits 3
reason=$(rbh_maint admin ticket-list | grep "^$b ")
rb_assert_match 'limit demo 1/1' "$reason" "ticket $b's line in ticket-list"

rb_stop_broker
rbh_start_broker
RBH_BROKER_STARTS=2
waits 5
rb_stop_broker -9
rbh_start_broker
RBH_BROKER_STARTS=3
waits 5
rb_assert_match 'limit demo 1/1' "$(rbh_maint admin ticket-list | grep "^$b ")" \
    "ticket $b's line in ticket-list after the restarts"

rbh_resbus alice ticket-close "$a" || rb_fail "ticket-close $a failed"
rbh_resbus alice ticket-wait "$b" --timeout 60 >/dev/null ||
    rb_fail "ticket $b was not served once $a was closed"
rbh_resbus alice ticket-close "$b" || rb_fail "ticket-close $b failed"
rbh_after_attack bob --tag demo
rb_done
