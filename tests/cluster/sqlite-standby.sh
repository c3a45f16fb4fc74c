#!/bin/bash
# Two resbusd on one SQLite file: the second waits as a standby while the
# first leads -- it holds no consumer on any queue, has the database open
# for writing nowhere, and the lock file <db>.lock names the first -- and
# takes over when the first is killed with SIGKILL in the middle of 10
# clients' 200 cycles.  The first, started again, waits as a standby in
# turn.  Then the checks of tests/cluster/lib.sh (rc_check).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/cluster/lib.sh
. "$RESBUS_SRCDIR/tests/cluster/lib.sh"

RC_MULTI_URL=0
rc_setup sqlite-standby
# The active broker's status page (a standby serves none).
HTTP=127.0.0.1:$(rb_closed_port)
RB_SERVER_EXTRA+=$'\n'"http_listen: \"$HTTP\""
rb_server_yaml
rc_pools_cl
DB=$RB_TMP/db.sqlite

# Notes when broker X has a descriptor open for writing on the database
# or its journal (the lock file aside).  Not a failure: a standby may keep
# the store open to take over quickly; that it writes nothing shows in the
# lock, its log and the checks (it migrates the schema only once it holds
# the lock).
no_write_fd() {
	local pid=${RC_BROKER[$1]} fd target flags
	for fd in /proc/"$pid"/fd/*; do
		target=$(readlink "$fd") || continue
		case $target in
		"$DB" | "$DB"-wal | "$DB"-journal | "$DB"-shm) ;;
		*) continue ;;
		esac
		flags=$(awk '/^flags:/ { print $2 }' \
		    "/proc/$pid/fdinfo/${fd##*/}")
		# O_WRONLY or O_RDWR in the low bits.
		if [ $((8#$flags & 3)) -ne 0 ]; then
			rb_log "NOTE: standby resbusd $1 has $target open for writing"
		fi
	done
}

# Consumers of the ticket queue and the request queue: one each (the
# active broker's), whatever the standby does.
one_consumer() {
	local n
	rb_assert_eq 1 "$(rb_consumers resbus.request)" "consumers on resbus.request"
	# (The ticket queue exists once a ticket has come.)
	n=$(rb_consumers resbus.ticket.cl)
	[ -z "$n" ] || rb_assert_eq 1 "$n" "consumers on resbus.ticket.cl"
}

standby_checks() {
	local x=$1 y
	y=$(rc_other "$x")
	rc_is_standby "$y" || rb_fail "resbusd $y logged no standby line"
	rb_assert_match "standby: .*db\.sqlite.* is held by resbusd pid ${RC_BROKER[$x]} on .*; waiting" \
	    "$(grep 'standby: ' "$(rc_broker_out "$y")" | tail -n 1)" \
	    "resbusd $y's standby line"
	if flock -n "$DB.lock" true; then
		rb_fail "nobody holds the lock on $DB.lock"
	fi
	rb_assert_match "pid ${RC_BROKER[$x]} " "$(cat "$DB.lock")" "$DB.lock"
	no_write_fd "$y"
	one_consumer
	# The active one lists it, on the status page and in /metrics too.
	rb_wait_for "broker-status to list resbusd $y as a standby" 15 \
	    rc_lists_standby "${RC_BROKER[$y]}"
	rb_assert_match "Standby brokers: pid ${RC_BROKER[$y]} on " \
	    "$(curl -sf "http://$HTTP/")" "the status page"
	rb_assert_match "^resbus_broker_standbys 1\$" \
	    "$(curl -sf "http://$HTTP/metrics")" "/metrics"
}

rc_start_worker 1
rc_start_worker 2
rc_start_pair
rb_wait_for "five preallocated resources" 60 rb_local_count_is 5
standby_checks a

rc_clients 10 20 cl
rc_wait_cycles 80
standby_checks a
# The standby has served nothing.
if grep -Eq 'ticket [0-9]+: ' "$(rc_broker_out b)"; then
	rb_fail "the standby logged tickets: $(grep -E 'ticket [0-9]+: ' \
	    "$(rc_broker_out b)" | head -n 3)"
fi

t0=$(date +%s.%N)
rc_kill_broker a KILL
rc_wait_active b 30
rb_log "resbusd b took over $(rc_took_over b "$t0") s after the SIGKILL"
rb_assert_match "pid ${RC_BROKER[b]} " "$(cat "$DB.lock")" "$DB.lock after the takeover"

# The supervisor starts the old one again: a standby now.
rc_start_broker a
rb_wait_for "resbusd a to wait as a standby" 30 rc_is_standby a

rc_wait_clients 240
standby_checks b
rc_check --need-active
rc_stop_all
rb_done
