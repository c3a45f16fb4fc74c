#!/bin/bash
# The Grafana dashboard (dist/grafana/resbus.json) queries only what
# resbusd's /metrics serves.  After some activity (starts that take two
# seconds, one that fails, a ticket served and one left waiting), every
# metric name in the PromQL of every panel and template variable must be
# a sample of /metrics, with the labels its selectors match on; and the
# metrics the dashboard's start-duration and waiting-age panels are built
# on say what happened: a histogram whose +Inf bucket is the count of
# successful starts, none of which took under a second, and a waiting
# ticket whose age grows.  A real Prometheus scrapes resbusd meanwhile,
# and every query of the dashboard, run there, must parse and answer
# with at least one series.
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck disable=SC2317 # functions called through rb_wait_for
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

rb_setup dashboard
for tool in curl prometheus; do
	command -v "$tool" >/dev/null ||
	    rb_fail "$tool is missing (scripts/deps.sh installs it)"
done
DASHBOARD=$RESBUS_SRCDIR/dist/grafana/resbus.json
CHECK=$RESBUS_SRCDIR/tests/grafana/dashboard.py
PROMPARSE=$RESBUS_SRCDIR/tests/status/promparse.py
python3 "$CHECK" --self-test || rb_fail "the PromQL reader fails its self-test"

port=$(rb_closed_port)
BASE="http://127.0.0.1:$port"
RB_SERVER_EXTRA="http_listen: \"127.0.0.1:$port\""
rb_server_yaml
pport=$(rb_closed_port)
while [ "$pport" = "$port" ]; do
	pport=$(rb_closed_port)
done
PROM="http://127.0.0.1:$pport"
mkdir -p "$RB_TMP/prometheus"
cat >"$RB_TMP/prometheus/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: resbus
    static_configs:
      - targets: ["127.0.0.1:$port"]
EOF
prometheus --config.file="$RB_TMP/prometheus/prometheus.yml" \
    --storage.tsdb.path="$RB_TMP/prometheus/data" \
    --web.listen-address="127.0.0.1:$pport" --log.level=warn \
    </dev/null >"$RB_TMP/prometheus.out" 2>&1 &
rb_track $!
rb_wait_for "Prometheus to start" 60 curl -sf --max-time 2 "$PROM/-/ready"
# promql EXPR: the value of the first series of EXPR in Prometheus.
promql() {
	curl -sf --max-time 5 "$PROM/api/v1/query" --data-urlencode "query=$1" |
	    python3 -c 'import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "")'
}

rb_pools <<'EOF'
slow:
  max: 1
  max_prealloc: 1
  cmd_new: "RESBUS_LOCAL_DELAY=2 @DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags:
    - slow
broken:
  max: 1
  cmd_new: "RESBUS_LOCAL_FAIL=1 @DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  start_delay: 5
  tags:
    - broken
EOF

rb_start_worker
rb_start_broker
rb_wait_for "the preallocated resource" 60 rb_local_count_is 1

M=$RB_TMP/metrics.txt
scrape() {
	curl -sf --max-time 10 -o "$M" "$BASE/metrics" ||
	    rb_fail "curl $BASE/metrics failed"
}
# sample NAME{LABELS}: the value of that series in the last scrape.
sample() {
	awk -v s="$1" '$1 == s { print $2 }' "$M"
}

# One ticket served by slow's only resource, a second one left waiting
# behind it, and a start in broken that fails.
t1=$(rb_resbus ticket --tag slow) || rb_fail "resbus ticket failed ($?)"
rb_resbus ticket-wait "$t1" --timeout 60 >/dev/null ||
    rb_fail "resbus ticket-wait $t1 failed ($?)"
t2=$(rb_resbus ticket --tag slow) || rb_fail "resbus ticket failed ($?)"
t3=$(rb_resbus ticket --tag broken) || rb_fail "resbus ticket failed ($?)"
failed_start() {
	scrape
	[ "$(sample 'resbus_pool_starts_total{pool="broken",result="failed"}')" -ge 1 ]
}
rb_wait_for "a failed start in pool broken" 30 failed_start
waited_1s() {
	scrape
	awk -v a="$(sample 'resbus_tickets_waiting_age_seconds{pool="slow"}')" \
	    'BEGIN { exit !(a >= 1) }'
}
rb_wait_for "the ticket waiting for slow ($t2) to have waited 1 s" 30 waited_1s
python3 "$PROMPARSE" "$M" \
    --family resbus_pool_start_seconds:histogram \
    --family resbus_tickets_waiting_age_seconds:gauge \
    --family resbus_broker_active:gauge >/dev/null ||
    rb_fail "/metrics does not parse: $(cat "$M")"

# The metrics the dashboard is built on say what happened.
ok=$(sample 'resbus_pool_starts_total{pool="slow",result="ok"}')
rb_assert_eq 1 "$ok" "successful starts in slow"
rb_assert_eq "$ok" "$(sample 'resbus_pool_start_seconds_bucket{pool="slow",le="+Inf"}')" \
    "the +Inf bucket of slow's start durations"
rb_assert_eq "$ok" "$(sample 'resbus_pool_start_seconds_count{pool="slow"}')" \
    "the count of slow's start durations"
rb_assert_eq 0 "$(sample 'resbus_pool_start_seconds_bucket{pool="slow",le="1"}')" \
    "slow's starts within 1 s (cmd_new sleeps 2 s)"
rb_assert_eq 1 "$(sample 'resbus_pool_start_seconds_bucket{pool="slow",le="30"}')" \
    "slow's starts within 30 s"
sum=$(sample 'resbus_pool_start_seconds_sum{pool="slow"}')
awk -v s="$sum" 'BEGIN { exit !(s >= 2 && s < 30) }' ||
    rb_fail "slow's start durations sum to $sum s, not between 2 and 30"
rb_assert_eq 0 "$(sample 'resbus_pool_start_seconds_count{pool="broken"}')" \
    "successful starts in broken"
rb_assert_eq 1 "$(sample 'resbus_tickets_waiting{pool="slow"}')" \
    "tickets waiting for slow (ticket $t2)"
age=$(sample 'resbus_tickets_waiting_age_seconds{pool="slow"}')
awk -v a="$age" 'BEGIN { exit !(a >= 1 && a < 120) }' ||
    rb_fail "the oldest ticket waiting for slow has waited $age s, not 1 to 120"

# Prometheus has seen it, over a few scrapes: every panel's query works.
prom_saw() {
	[ "$(promql 'resbus_tickets_waiting{pool="slow"}')" = 1 ] &&
	    [ "$(promql 'count_over_time(resbus_tickets_waiting{pool="slow"}[1m])')" -ge 3 ]
}
rb_wait_for "Prometheus to scrape the waiting ticket three times" 30 prom_saw
python3 "$CHECK" --prometheus "$PROM" "$DASHBOARD" >"$RB_TMP/promql.out" 2>&1 ||
    rb_fail "$(cat "$RB_TMP/promql.out")"
rb_log "$(cat "$RB_TMP/promql.out")"

rb_resbus ticket-close "$t2" || rb_fail "resbus ticket-close $t2 failed ($?)"
rb_resbus ticket-close "$t3" || rb_fail "resbus ticket-close $t3 failed ($?)"
no_wait() {
	scrape
	[ "$(sample 'resbus_tickets_waiting_age_seconds{pool="slow"}')" = 0 ]
}
rb_wait_for "the waiting age of slow to fall to 0" 10 no_wait

# Every metric every panel queries is served.
python3 "$CHECK" "$DASHBOARD" "$M" >"$RB_TMP/dashboard.out" 2>&1 ||
    rb_fail "$(cat "$RB_TMP/dashboard.out")"
rb_log "$(cat "$RB_TMP/dashboard.out")"

rb_done
