#!/bin/bash
# A ticket for a tag no pool provides, as resalloc treats it: accepted,
# it waits with the reason "no pool provides tag gpu" (also beside a tag
# that is provided), and it is served once a reload adds a pool with that
# tag -- here an edit of pools.yaml, which resbusd and resbus-worker read
# again without a signal.  Refusal is opt-in: `resbus ticket --refuse-unprovidable`
# is refused at once, naming the tag, and so is every such request once
# server.yaml says refuse_unprovidable: true.  Waiting tickets still count
# against max_open_tickets_per_owner and max_tagsets.  Run once per store
# (SQLite, PostgreSQL).
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck disable=SC2317 # functions called through rb_wait_for
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

# Without an argument the test runs itself once per store.
rb_per_store unprovidable "$@"

RB_SERVER_EXTRA="max_open_tickets_per_owner: 3
max_tagsets: 4"
rb_server_yaml
rb_pools <<'EOF'
base:
  max: 1
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [demo]
EOF
RB_MAINT=$RESBUS_BUILDDIR/resbus-maint
maint() {
	timeout -k 5 60 "$RB_MAINT" --config-dir "$RB_CONF" "$@"
}
# The ticket-list line of ticket $1.
line_of() {
	maint ticket-list | grep "^$1 - "
}

rb_start_worker
rb_start_broker

# (a) accepted, waiting, with the reason naming the tag.
t1=$(rb_resbus ticket --tag gpu) || rb_fail "resbus ticket --tag gpu failed ($?)"
rb_assert_match '^[0-9]+$' "$t1" "ID of the ticket for gpu"
t2=$(rb_resbus ticket --tag demo --tag gpu) ||
    rb_fail "resbus ticket --tag demo --tag gpu failed ($?)"
err=$(rb_resbus ticket-check "$t1" 2>&1) &&
    rb_fail "ticket-check $t1 succeeded for a tag no pool provides: $err"
rb_assert_match 'ticket is still not processed' "$err" "ticket-check $t1"
rb_assert_match "^$t1 - state=OPEN tags=gpu owner=guest waiting=\"no pool provides tag gpu\"\$" \
    "$(line_of "$t1")" "ticket-list line of $t1"
rb_assert_match "^$t2 - state=OPEN tags=demo,gpu owner=guest waiting=\"no pool provides tag gpu\"\$" \
    "$(line_of "$t2")" "ticket-list line of $t2"
grep -q "ticket $t1: waits, no pool provides tag gpu" "$RB_TMP/resbusd.out" ||
    rb_fail "resbusd did not log why ticket $t1 waits"

# (b) refusal on request: at once, naming the tag, no ticket.
err=$(rb_resbus ticket --tag gpu --refuse-unprovidable 2>&1 >/dev/null)
rb_assert_eq 1 "$?" "exit status of ticket --refuse-unprovidable"
rb_assert_match 'no pool provides tag gpu' "$err" \
    "error of ticket --refuse-unprovidable"
# A provided tag set is not refused by the flag.
t0=$(rb_resbus ticket --tag demo --refuse-unprovidable) ||
    rb_fail "resbus ticket --tag demo --refuse-unprovidable failed ($?)"
rb_resbus ticket-wait "$t0" --timeout 60 >/dev/null ||
    rb_fail "ticket-wait $t0 failed ($?)"
rb_resbus ticket-close "$t0" || rb_fail "ticket-close $t0 failed"
rb_assert_eq 2 "$(maint ticket-list | wc -l)" "tickets after the refusal"

# (c) the bounds count waiting tickets and their tag sets: lanes gpu,
# demo+gpu, demo and fpga are 4 (max_tagsets); three open tickets are
# the owner's cap.
t3=$(rb_resbus ticket --tag fpga) || rb_fail "resbus ticket --tag fpga failed ($?)"
err=$(rb_resbus ticket --tag demo 2>&1 >/dev/null)
rb_assert_eq 1 "$?" "exit status of a fourth open ticket"
rb_assert_match 'owner guest has 3 open tickets' "$err" "a fourth open ticket"
rb_resbus ticket-close "$t3" || rb_fail "ticket-close $t3 failed"
err=$(rb_resbus ticket --tag tpu 2>&1 >/dev/null)
rb_assert_eq 1 "$?" "exit status of a fourth tag set"
rb_assert_match 'too many tag sets \(4, max_tagsets\)' "$err" "a fifth tag set"

# (d) an edit of pools.yaml adds a pool with the tag: resbusd and the
# worker read it again without a signal (as resalloc reads it on every
# loop), and both waiting tickets are served.
cat >>"$RB_CONF/pools.yaml" <<EOF
gpus:
  max: 2
  max_prealloc: 2
  cmd_new: "$RB_DRIVERDIR/new"
  cmd_delete: "$RB_DRIVERDIR/delete"
  tags: [gpu, demo]
EOF
serving_gpus() {
	grep -q "serving pool gpus from queue resbus.pool.gpus" "$RB_TMP/worker.out"
}
rb_wait_for "resbus-worker to serve pool gpus" 30 serving_gpus
reloaded() {
	grep -q "reloaded $RB_CONF/pools.yaml: 2 pools" "$RB_TMP/resbusd.out"
}
rb_wait_for "resbusd to read pools.yaml again" 30 reloaded
for t in "$t1" "$t2"; do
	data=$(rb_resbus ticket-wait "$t" --timeout 60) ||
	    rb_fail "ticket-wait $t after the reload failed ($?)"
	rb_assert_match "^local:$RESBUS_LOCAL_ROOT/gpus_" "$data" \
	    "data of ticket $t after the reload"
done
rb_resbus ticket-close "$t1" || rb_fail "ticket-close $t1 failed"
rb_resbus ticket-close "$t2" || rb_fail "ticket-close $t2 failed"

# (e) server.yaml's switch refuses every such request.
rb_stop_broker
RB_SERVER_EXTRA="refuse_unprovidable: true"
rb_server_yaml
rb_start_broker
err=$(rb_resbus ticket --tag nothere 2>&1 >/dev/null)
rb_assert_eq 1 "$?" "exit status with refuse_unprovidable: true"
rb_assert_match 'no pool provides tag nothere' "$err" \
    "error with refuse_unprovidable: true"
err=$(rb_resbus ticket --tag demo --tag nothere 2>&1 >/dev/null)
rb_assert_eq 1 "$?" "exit status with refuse_unprovidable: true (2 tags)"
rb_assert_match 'no pool provides tag nothere' "$err" \
    "error with refuse_unprovidable: true (2 tags)"
t4=$(rb_resbus ticket --tag gpu) || rb_fail "resbus ticket --tag gpu failed ($?)"
rb_resbus ticket-wait "$t4" --timeout 60 >/dev/null ||
    rb_fail "ticket-wait $t4 failed ($?)"
rb_resbus ticket-close "$t4" || rb_fail "ticket-close $t4 failed"

rb_done
