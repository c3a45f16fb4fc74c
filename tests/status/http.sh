# Shared part of the tests of resbusd's HTTP server (tests/hostile/http-*.sh),
# sourced after tests/lib.sh (and tests/hostile/lib.sh when there is one).
#
# http_setup NAME: rb_setup NAME, a status server on a free port of
# 127.0.0.1 (BASE), and two pools: "web" with one resource started ahead
# for the ticket cycles, and "hold", which provides the tag of tickets
# that are to stay open (it never starts anything: max_prealloc 0 and a
# cmd_new that fails, tried once a minute at most).  Then the worker and
# resbusd are started and BROKER_PID is remembered.
# shellcheck shell=bash

HTTPATTACK=$RESBUS_SRCDIR/tests/status/httpattack.py

http_setup() {
	rb_setup "$1"
	local tool
	for tool in curl python3; do
		command -v "$tool" >/dev/null || rb_fail "$tool is missing"
	done
	HTTP_PORT=$(rb_closed_port)
	BASE="http://127.0.0.1:$HTTP_PORT"
	RB_SERVER_EXTRA="http_listen: \"127.0.0.1:$HTTP_PORT\"
${RB_SERVER_EXTRA:-}"
	rb_server_yaml
	rb_pools <<EOF
web:
  max: 1
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [web]
hold:
  max: 0
  cmd_new: "false"
  cmd_delete: "true"
  tags: [hold]
EOF
	rb_start_worker
	rb_start_broker
	BROKER_PID=$RB_BROKER_PID
	rb_wait_for "one resource started ahead" 60 rb_local_count_is 1
}

# http_code PATH [CURL_ARGS...]: the HTTP status of GET BASE/PATH (000 when
# there is no answer within 10 s).
http_code() {
	local path=$1
	shift
	curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" \
	    "$BASE$path" 2>/dev/null
}

http_answers() {
	[ "$(http_code "$1")" = 200 ]
}

# http_all_answer: the status page, the API and the metrics answer 200.
http_all_answer() {
	local p
	for p in / /api/v1/pools /api/v1/tickets /api/v1/resources /metrics; do
		rb_wait_for "$p to answer 200" 15 http_answers "$p"
	done
}

# http_cycle: one ticket taken, served and closed, within 60 s.
http_cycle() {
	local id
	id=$(rb_resbus ticket --tag web --timeout 30) ||
	    rb_fail "resbus ticket failed ($?)"
	rb_resbus ticket-wait "$id" --timeout 60 >/dev/null ||
	    rb_fail "ticket $id did not get a resource"
	rb_resbus ticket-close "$id" --timeout 30 ||
	    rb_fail "resbus ticket-close $id failed"
	rb_log "ticket $id: a full cycle"
}

# http_same_broker: resbusd still runs as BROKER_PID (it did not restart).
http_same_broker() {
	rb_alive "$BROKER_PID" || rb_fail "resbusd ($BROKER_PID) died"
	rb_assert_eq "$BROKER_PID" "$RB_BROKER_PID" "resbusd PID"
	rb_check_daemons
}

# http_server_conns: resbusd's connections on HTTP_PORT that are not over
# (in any TCP state but LISTEN and TIME-WAIT), counted.
http_server_conns() {
	ss -Htn state connected exclude time-wait "( sport = :$HTTP_PORT )" |
	    wc -l
}

http_server_quiet() {
	[ "$(http_server_conns)" -eq 0 ]
}

# http_clients_at_least N: at least N client connections to HTTP_PORT
# are established.
http_clients_at_least() {
	[ "$(ss -Htn state established "( dport = :$HTTP_PORT )" | wc -l)" -ge "$1" ]
}

# http_rss_kb: resbusd's resident set in kB.
http_rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$BROKER_PID/status"
}

# http_hold_tickets N [SANDBOX]: N tickets that stay OPEN (tag "hold"),
# opened 32 at a time, with sandbox SANDBOX if given.
http_hold_tickets() {
	local sb=()
	[ -z "${2:-}" ] || sb=(--sandbox "$2")
	seq "$1" | xargs -P 32 -I{} timeout -k 5 60 "$RB_RESBUS" ticket \
	    --tag hold --timeout 30 "${sb[@]}" >/dev/null ||
	    rb_fail "opening $1 tickets failed"
}

# http_bulk_tickets N [SANDBOX]: N OPEN "hold" tickets, fast: one through
# resbus, N - 1 copies of it written into the SQLite store while resbusd
# is stopped; resbusd is then started again and loads them (BROKER_PID is
# the new process).
http_bulk_tickets() {
	local sb=()
	[ -z "${2:-}" ] || sb=(--sandbox "$2")
	rb_resbus ticket --tag hold --timeout 30 "${sb[@]}" >/dev/null ||
	    rb_fail "resbus ticket failed"
	rb_stop_broker
	python3 - "$RB_TMP/db.sqlite" "$1" <<'EOF' || rb_fail "copying tickets failed"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.row_factory = sqlite3.Row
row = dict(db.execute("SELECT * FROM tickets WHERE state = 'OPEN' "
                      "ORDER BY id DESC LIMIT 1").fetchone())
row["idem_key"] = None
cols = ", ".join(row)
marks = ", ".join("?" for _ in row)
first = row["id"]
rows = []
for i in range(1, int(sys.argv[2])):
    row["id"] = first + i
    rows.append(tuple(row.values()))
db.executemany("INSERT INTO tickets (%s) VALUES (%s)" % (cols, marks), rows)
db.commit()
EOF
	rb_start_broker
	BROKER_PID=$RB_BROKER_PID
	rb_wait_for "resbusd to hold $1 open tickets" 60 http_open_tickets_are "$1"
}

http_open_tickets_are() {
	curl -s --max-time 10 "$BASE/metrics" |
	    grep -qx "resbus_tickets{state=\"open\"} $1"
}
