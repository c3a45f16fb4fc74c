#!/bin/bash
# SIGKILL of the active resbusd on PostgreSQL (a private primary with a
# synchronous streaming replica, db_url naming both) in the middle of 10
# clients' 200 cycles: the standby takes over (its log says so) and serves
# within 5 s -- measured from the SIGKILL to its "active:" line and to
# the first ticket it handles.  The killed one, started again, waits as a
# standby.  Then the checks of tests/cluster/lib.sh (rc_check).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/cluster/lib.sh
. "$RESBUS_SRCDIR/tests/cluster/lib.sh"

RC_MULTI_URL=0
TAKEOVER_MAX=${RC_TAKEOVER_MAX:-5}
rc_setup pg-kill
rc_use_pg replica
rc_pools_cl

# Seconds from epoch time $2 to the first ticket line of broker $1's
# current run.
first_ticket_after() {
	local line
	line=$(awk '/^===== resbusd/ { n = NR } { l[NR] = $0 }
	    END { for (i = n; i <= NR; i++)
		if (l[i] ~ /ticket [0-9]+: (OPEN|got resource|READY|OPEN ->)/) {
			print l[i]; exit } }' "$(rc_broker_out "$1")")
	[ -n "$line" ] || return 1
	awk -v a="$(date -d "${line%% *}" +%s.%N)" -v b="$2" \
	    'BEGIN { printf "%.2f\n", a - b }'
}

rc_start_worker 1
rc_start_worker 2
rc_start_pair
rb_wait_for "five preallocated resources" 60 rb_local_count_is 5

rc_clients 10 20 cl
rc_wait_cycles 80
x=$(rc_active) || rb_fail "no broker leads"
y=$(rc_other "$x")
t0=$(date +%s.%N)
rc_kill_broker "$x" KILL
rc_wait_active "$y" 30
took=$(rc_took_over "$y" "$t0")
rb_wait_for "resbusd $y to handle a ticket" 30 first_ticket_after "$y" "$t0"
served=$(first_ticket_after "$y" "$t0")
rb_log "resbusd $y took over ${took} s and handled a ticket ${served} s" \
    "after the SIGKILL of resbusd $x"
echo "takeover $took served $served" >>"$RB_TMP/takeover"
if awk -v s="$served" -v m="$TAKEOVER_MAX" 'BEGIN { exit !(s > m) }'; then
	rb_fail "the standby served ${served} s after the SIGKILL (target ${TAKEOVER_MAX} s)"
fi
rc_start_broker "$x"
rb_wait_for "resbusd $x to wait as a standby" 30 rc_is_standby "$x"

rc_wait_clients 240
rc_check --need-active
rc_stop_all
rb_done
