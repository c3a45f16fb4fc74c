#!/bin/bash
# server.yaml `limits` as owners see them: a per-owner limit on a tag
# (alice's third `powerful` ticket waits, with the reason in ticket-list
# and the JSON API, while bob is served; it is served once alice closes
# one), a total limit on a tag across owners, and a per-owner limit on
# everything.  A ticket over a limit waits while free resources are
# there, and never fails.  Owners are RabbitMQ users.  Run once per store
# (SQLite, PostgreSQL).
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck disable=SC2317 # functions called through rb_wait_for
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/policy/lib.sh
. "$RESBUS_SRCDIR/tests/policy/lib.sh"

pol_begin policy-limits "$@"

port=$(rb_closed_port)
pol_server_yaml "http_listen: \"127.0.0.1:$port\"
limits:
  - {tag: powerful, per_owner: 2}
  - {tag: powerful, total: 3}
  - {per_owner: 4}"

# Enough free resources of both kinds that only the limits make a
# ticket wait.
rb_pools <<'EOF'
big:
  max: 8
  max_prealloc: 6
  max_starting: 6
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [powerful, x86]
small:
  max: 8
  max_prealloc: 6
  max_starting: 6
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags:
    - name: x86
      priority: 10
EOF

for u in alice bob carol dave; do
	pol_user "$u"
done
alice=${POL_LOGIN[alice]}

rb_start_worker
rb_start_broker

free_big() {
	[ "$(pol_maint resource-list --up | grep -c 'pool=big .*ticket=NULL')" -ge "$1" ]
}
rb_wait_for "6 free resources in pool big" 60 free_big 6

serve() {
	rb_resbus ticket-wait "$1" --timeout 30 >/dev/null ||
	    rb_fail "ticket $1 was not served within 30 s ($?)"
}

# (a) per owner and tag: alice's third powerful ticket waits.
a1=$(pol_take alice --tag powerful)
a2=$(pol_take alice --tag powerful)
serve "$a1"
serve "$a2"
a3=$(pol_take alice --tag powerful)
reason_is() {
	[ "$(pol_waiting "$1")" = "$2" ]
}
rb_wait_for "ticket $a3 to wait for alice's limit" 20 \
    reason_is "$a3" "owner $alice at limit powerful 2/2"
pol_stays_open 3 "$a3"
free_big 3 || rb_fail "pool big should have free resources while $a3 waits"
# The JSON API says the same.
json=$(curl -sf "http://127.0.0.1:$port/api/v1/tickets") ||
    rb_fail "GET /api/v1/tickets failed"
rb_assert_eq "owner $alice at limit powerful 2/2" \
    "$(jq -r ".tickets[] | select(.id == $a3) | .waiting_reason" <<<"$json")" \
    "waiting_reason of $a3 in /api/v1/tickets"

# bob is not held back by alice's limit, though his ticket came later.
b1=$(pol_take bob --tag powerful)
serve "$b1"
rb_assert_eq OPEN "$(pol_state "$a3")" "alice's third ticket once bob is served"

# alice closes one: her third is served.
rb_resbus ticket-close "$a1" || rb_fail "ticket-close $a1 failed"
serve "$a3"
rb_assert_eq big "$(pol_pool "$a3")" "pool of alice's third ticket"

# (b) total per tag: a2, a3 and b1 hold 3 powerful resources.
c1=$(pol_take carol --tag powerful)
rb_wait_for "ticket $c1 to wait for the total limit" 20 \
    reason_is "$c1" "limit powerful total 3/3"
pol_stays_open 3 "$c1"
rb_resbus ticket-close "$b1" || rb_fail "ticket-close $b1 failed"
serve "$c1"

# (c) per owner, every tag: alice holds a2 and a3; two more x86 tickets
# make four, the fifth waits; dave is served meanwhile.
x1=$(pol_take alice --tag x86)
x2=$(pol_take alice --tag x86)
serve "$x1"
serve "$x2"
rb_assert_eq small "$(pol_pool "$x1")" "pool of an x86 ticket"
x3=$(pol_take alice --tag x86)
rb_wait_for "ticket $x3 to wait for alice's overall limit" 20 \
    reason_is "$x3" "owner $alice at limit (all) 4/4"
d1=$(pol_take dave --tag x86)
serve "$d1"
pol_stays_open 2 "$x3"
rb_resbus ticket-close "$a2" || rb_fail "ticket-close $a2 failed"
serve "$x3"

# Nothing over a limit failed; everything closes.
rb_assert_eq 0 "$(pol_log_count ' -> FAILED')" "tickets that failed"
for t in "$a3" "$c1" "$x1" "$x2" "$x3" "$d1"; do
	rb_resbus ticket-close "$t" || rb_fail "ticket-close $t failed"
done
rb_assert_eq "" "$(pol_maint ticket-list)" "ticket-list at the end"

rb_done
