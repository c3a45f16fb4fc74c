#!/bin/bash
# SIGSTOP of the active resbusd on PostgreSQL for longer than the
# takeover takes (leader_lease_s 5, stopped 12 s) in the middle of 10
# clients' 200 cycles, then SIGCONT.  The standby takes over meanwhile;
# the old leader, woken, must commit nothing and step down (exit).
#
# How "commits nothing" is observed: a trigger on every table of the
# store (tests/cluster/lib.sh, rc_pg_audit_install) records each row
# written with the application_name of the writing session ("resbusd pid
# N on HOST", which resbusd sets), inside the writing transaction; the
# server keeps commit timestamps, so pg_xact_commit_timestamp(xmin) of an
# audit row is when that write committed.  Checked: no write of the old
# leader committed after the first commit of the new one, and the
# standby committed nothing while the old leader led.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/cluster/lib.sh
. "$RESBUS_SRCDIR/tests/cluster/lib.sh"

RC_MULTI_URL=0
STOP_S=12
rc_setup pg-stop
rc_use_pg replica
RB_SERVER_EXTRA+=$'\nleader_lease_s: 5'
rb_server_yaml
rc_pools_cl

rc_start_worker 1
rc_start_worker 2
rc_start_pair
rb_wait_for "five preallocated resources" 60 rb_local_count_is 5
rc_pg_audit_install

rc_clients 10 20 cl
rc_wait_cycles 80
x=$(rc_active) || rb_fail "no broker leads"
y=$(rc_other "$x")
tstop=$(date +%s.%N)
rc_kill_broker "$x" STOP
rc_wait_active "$y" $((STOP_S - 1))
took=$(rc_took_over "$y" "$tstop")
rb_log "resbusd $y took over ${took} s after the SIGSTOP of resbusd $x"
# The stop lasts STOP_S s in all, and y leads all the while.
y_leads() {
	rb_alive "${RC_BROKER[$y]}" && rc_is_active "$y"
}
RB_WAIT_INTERVAL=0.5 rb_hold_for "resbusd $y to lead while resbusd $x is stopped" \
    "$(awk -v t="$tstop" -v s="$STOP_S" -v n="$(date +%s.%N)" \
    'BEGIN { d = t + s - n; printf "%.1f\n", (d > 0 ? d : 0) }')" y_leads
rb_log "SIGCONT $(awk -v t="$tstop" -v n="$(date +%s.%N)" \
    'BEGIN { printf "%.1f", n - t }') s after the SIGSTOP"
rc_kill_broker "$x" CONT
pid=${RC_BROKER[$x]}
pidy=${RC_BROKER[$y]}
unset "RC_BROKER[$x]"
RB_WAIT_INTERVAL=0.2 rb_wait_for "the old leader $x to step down (exit)" 30 \
    rb_dead "$pid"
wait "$pid"
rb_log "resbusd $x exited with status $? after SIGCONT; its last lines:"
tail -n 4 "$(rc_broker_out "$x")" >&2

# The old leader's and the new one's sessions, by the pid in their
# application_name; both must have committed something, or the checks
# below prove nothing.
ax="app LIKE 'resbusd pid $pid %'"
ay="app LIKE 'resbusd pid $pidy %'"
for w in "$ax" "$ay"; do
	n=$(rc_psql -At -c "SELECT count(*) FROM resbus_audit WHERE $w") ||
	    rb_fail "audit query failed"
	[ "$n" -gt 0 ] || rb_fail "no audited commit where $w"
done
q="SELECT count(*) FROM resbus_audit WHERE $ax AND
    pg_xact_commit_timestamp(xmin) > (SELECT min(pg_xact_commit_timestamp(xmin))
    FROM resbus_audit WHERE $ay)"
late=$(rc_psql -At -c "$q") || rb_fail "audit query failed"
rb_assert_eq 0 "$late" "rows resbusd $x committed after resbusd $y's first commit"
q="SELECT count(*) FROM resbus_audit WHERE $ay AND
    pg_xact_commit_timestamp(xmin) < to_timestamp($tstop)"
early=$(rc_psql -At -c "$q") || rb_fail "audit query failed"
rb_assert_eq 0 "$early" "rows the standby $y committed while $x led"
q="SELECT to_char(max(pg_xact_commit_timestamp(xmin)), 'HH24:MI:SS.MS')
    FROM resbus_audit WHERE $ax"
rb_log "audit: resbusd $x's last commit at $(rc_psql -At -c "$q"), resbusd" \
    "$y's first at $(rc_psql -At -c "SELECT to_char(min(
    pg_xact_commit_timestamp(xmin)), 'HH24:MI:SS.MS') FROM resbus_audit
    WHERE $ay"), SIGSTOP at $(date -u -d "@$tstop" +%T.%3N)"
rb_log "audit: $(rc_psql -At -F ' ' -c "SELECT app, count(*) FROM resbus_audit
    GROUP BY app ORDER BY app" | tr '\n' ';')"

rc_start_broker "$x"
rb_wait_for "resbusd $x to wait as a standby" 30 rc_is_standby "$x"
rc_wait_clients 240
rc_check --need-active
rc_stop_all
rb_done
