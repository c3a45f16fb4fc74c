#!/bin/bash
# Loss of the PostgreSQL primary (SIGKILL of all its processes) in the
# middle of 10 clients' 200 cycles, and promotion of its synchronous
# streaming replica once the broker that led has stopped.  db_url names
# both servers with target_session_attrs=read-write.  The brokers must
# stop serving rather than go on without a store (a broker that exits is
# started again 5 s later, as systemd would), and one of them continues
# on the promoted replica.
# Nothing acknowledged is lost: every cycle completed, and every ticket a
# client got and closed is CLOSED in the promoted store.  Then the checks
# of tests/cluster/lib.sh (rc_check).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/cluster/lib.sh
. "$RESBUS_SRCDIR/tests/cluster/lib.sh"

RC_MULTI_URL=0
rc_setup pg-failover
rc_use_pg replica
rc_pools_cl

# shellcheck disable=SC2317 # called through rb_wait_for
leads() {
	rc_supervise
	rc_active >/dev/null
}

rc_start_worker 1
rc_start_worker 2
rc_start_pair
rb_wait_for "five preallocated resources" 60 rb_local_count_is 5

rc_clients 10 20 cl
rc_wait_cycles 80
x0=$(rc_active) || rb_fail "no broker leads before the primary's loss"
# Whether resbusd x0 has exited (seen by the supervisor, which starts it
# again 5 s later).
x0_stopped() {
	rc_supervise
	[ -n "${RC_GONE[$x0]:-}" ]
}
RC_EXIT_OK=1
t0=$(date +%s.%N)
bash "$RESBUS_SRCDIR/scripts/postgres.sh" primary-kill "$RC_PG_DIR" \
    >>"$RB_TMP/postgres.out" 2>&1 || rb_fail "primary-kill failed"
rb_log "PostgreSQL primary killed"
RB_WAIT_INTERVAL=0.2 rb_wait_for "resbusd $x0, which led, to stop without its store" \
    30 x0_stopped
bash "$RESBUS_SRCDIR/scripts/postgres.sh" promote "$RC_PG_DIR" \
    >>"$RB_TMP/postgres.out" 2>&1 || rb_fail "promote failed"
rb_log "replica promoted"
RB_WAIT_INTERVAL=0.5 rb_wait_for "a broker to lead on the promoted replica" 60 leads
x=$(rc_active)
rb_log "resbusd $x leads $(rc_took_over "$x" "$t0") s after the primary's loss"
for b in a b; do
	rb_log "resbusd $b around the loss:"
	grep -E 'WARN|ERROR|active:|standby:' "$(rc_broker_out "$b")" |
	    awk -v t="$(date -u -d "@${t0%.*}" +%Y-%m-%dT%H:%M:%S)" '$1 >= t' |
	    head -n 6 >&2
done

rc_wait_clients 180 --supervise
rc_settle
RC_EXIT_OK=0
rb_check_daemons

# Every ticket a client closed is CLOSED in the promoted store.
rc_psql -At -F ' ' -c "SELECT id, state FROM tickets" | sort >"$RB_TMP/store-tickets" ||
    rb_fail "cannot read the tickets from the promoted store"
lost=$(awk 'NR == FNR { st[$1] = $2; next }
    $1 == "OK" && st[$2] != "CLOSED" { print $2 "=" (st[$2] == "" ? "missing" : st[$2]) }' \
    "$RB_TMP/store-tickets" "$RB_TMP"/client.[0-9]* | head -n 10)
[ -z "$lost" ] || rb_fail "tickets closed by their clients but not CLOSED in the store: $lost"

rc_check
rc_stop_all
rb_done
