#!/bin/bash
# Configuration errors: `resbusd --check-config` refuses every broken
# pools.yaml of tests/conf/bad with a non-zero exit and exactly one line
# on stderr, FILE:LINE:COLUMN: MESSAGE (a pools.yaml that is missing or
# not a file has no position: FILE: MESSAGE), and accepts a good one.  A
# running resbusd and resbus-worker given a broken pools.yaml and SIGHUP
# refuse the reload and keep serving; a fixed file with a new pool and
# SIGHUP starts the new pool's resources, run by the same worker.  Run
# once per store (SQLite, PostgreSQL).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

# Without an argument the test runs itself once per store.
rb_per_store badconfig "$@"

# ---- resbusd --check-config -------------------------------------------------

cdir=$RB_TMP/check
mkdir -p "$cdir"
cp "$RESBUS_SRCDIR/tests/conf/good/server.yaml" "$cdir/server.yaml"

# check_refused WHAT REGEX: --check-config on $cdir fails with one line
# on stderr matching REGEX.
check_refused() {
	local rc err n
	"$RB_RESBUSD" --check-config --config-dir "$cdir" >"$RB_TMP/cc.out" \
	    2>"$RB_TMP/cc.err"
	rc=$?
	err=$(cat "$RB_TMP/cc.err")
	n=$(wc -l <"$RB_TMP/cc.err")
	[ "$rc" -ne 0 ] || rb_fail "$1: --check-config exited 0 (stdout: $(cat "$RB_TMP/cc.out"))"
	[ "$rc" -lt 128 ] || rb_fail "$1: --check-config died of signal $((rc - 128))"
	[ "$n" -eq 1 ] || rb_fail "$1: $n lines on stderr, expected exactly one: $err"
	rb_assert_match "$2" "$err" "$1: --check-config's error"
}

nbad=0
failed=()
for f in "$RESBUS_SRCDIR"/tests/conf/bad/pools-*.yaml; do
	cp "$f" "$cdir/pools.yaml"
	# A failure here is noted and the loop goes on, so that one run
	# names every fixture that is not refused properly.
	if ! (RB_FAILED= \
	    check_refused "${f##*/}" '^[^:]+:[0-9]+:[0-9]+: .+') 2>"$RB_TMP/cc.fail"; then
		failed+=("${f##*/}")
		cat "$RB_TMP/cc.fail" >&2
	fi
	nbad=$((nbad + 1))
done
[ "$nbad" -ge 30 ] || rb_fail "only $nbad broken pools.yaml fixtures found"
[ "${#failed[@]}" -eq 0 ] ||
    rb_fail "--check-config did not refuse ${#failed[@]} of $nbad fixtures properly: ${failed[*]}"
rb_log "--check-config refused all $nbad broken pools.yaml fixtures"

# No position for a file that is not there, or not a file.
rm -f "$cdir/pools.yaml"
check_refused "missing pools.yaml" "^$cdir/pools.yaml: .+"
mkdir "$cdir/pools.yaml"
check_refused "pools.yaml a directory" "^$cdir/pools.yaml: .+"
rmdir "$cdir/pools.yaml"

# A good configuration.
cp "$RESBUS_SRCDIR/tests/conf/good/pools.yaml" "$cdir/pools.yaml"
out=$("$RB_RESBUSD" --check-config --config-dir "$cdir" 2>"$RB_TMP/cc.err") ||
    rb_fail "--check-config of tests/conf/good exited $?: $(cat "$RB_TMP/cc.err")"
rb_assert_match 'configuration OK' "$out" "--check-config of a good configuration"

# ---- SIGHUP -----------------------------------------------------------------

rb_pools <<'EOF'
one:
  max: 3
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [one]
EOF
cp "$RB_CONF/pools.yaml" "$RB_TMP/pools.good"

rb_start_worker
rb_start_broker
rb_wait_for "the resource of pool one" 60 rb_local_count_is 1
t1=$(rb_resbus ticket --tag one) || rb_fail "resbus ticket failed ($?)"
d1=$(rb_resbus ticket-wait "$t1" --timeout 60) || rb_fail "ticket-wait $t1 failed ($?)"
rb_wait_for "pool one's replacement" 60 rb_local_count_is 2

# A broken pools.yaml: the reload is refused, resbusd keeps serving.
cp "$RESBUS_SRCDIR/tests/conf/bad/pools-syntax.yaml" "$RB_CONF/pools.yaml"
kill -HUP "$RB_BROKER_PID"
refused() {
	grep -q 'reload refused' "$RB_TMP/resbusd.out"
}
rb_wait_for "resbusd to refuse the reload" 30 refused
rb_assert_match "reload refused.*$RB_CONF/pools.yaml:[0-9]+:[0-9]+: " \
    "$(grep 'reload refused' "$RB_TMP/resbusd.out")" "resbusd's log"
# resbus-worker refuses it too, and keeps serving pool one.
kill -HUP "$RB_WORKER_PID"
worker_refused() {
	grep -q 'SIGHUP: .*serving the pools as before' "$RB_TMP/worker.out"
}
rb_wait_for "resbus-worker to refuse the reload" 30 worker_refused
rb_assert_match "SIGHUP: $RB_CONF/pools.yaml:[0-9]+:[0-9]+: " \
    "$(grep 'serving the pools as before' "$RB_TMP/worker.out")" \
    "resbus-worker's log"
daemons_run() {
	rb_alive "$RB_BROKER_PID" && rb_alive "$RB_WORKER_PID"
}
rb_hold_for "resbusd and resbus-worker to run on after the refused reload" 1 \
    daemons_run
t2=$(rb_resbus ticket --tag one) || rb_fail "resbus ticket after the refused reload failed ($?)"
rb_resbus ticket-wait "$t2" --timeout 60 >/dev/null ||
    rb_fail "ticket-wait $t2 after the refused reload failed ($?)"
data=$(rb_resbus ticket-check "$t1") || rb_fail "ticket-check $t1 after the refused reload failed ($?)"
rb_assert_eq "$d1" "$data" "ticket $t1 after the refused reload"
rb_resbus ticket-close "$t2" || rb_fail "ticket-close $t2 failed ($?)"

# A fixed file with a new pool: resbusd starts the new pool's resources
# at once, and resbus-worker, given SIGHUP too, serves the new pool
# without a restart, so both come up.
sed -e "s|@DRIVERDIR@|$RB_DRIVERDIR|g" >>"$RB_TMP/pools.good" <<'EOF'
two:
  max: 2
  max_prealloc: 2
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [two]
EOF
cp "$RB_TMP/pools.good" "$RB_CONF/pools.yaml"
"$RB_RESBUSD" --check-config --config-dir "$RB_CONF" >/dev/null 2>&1 ||
    rb_fail "the fixed pools.yaml does not pass --check-config"
kill -HUP "$RB_BROKER_PID"
starting_two() {
	grep -q 'starting in pool two ' "$RB_TMP/resbusd.out"
}
rb_wait_for "resbusd to start a resource of the new pool" 30 starting_two
grep -q "reloaded $RB_CONF/pools.yaml: 2 pools" "$RB_TMP/resbusd.out" ||
    rb_fail "resbusd did not log the reload"
kill -HUP "$RB_WORKER_PID"
serving_two() {
	grep -q "serving pool two from queue resbus.pool.two" "$RB_TMP/worker.out"
}
rb_wait_for "resbus-worker to serve the new pool" 30 serving_two
two_up() {
	[ "$(rb_local_resources | grep -c '^two_')" -eq 2 ]
}
rb_wait_for "the new pool's two resources" 60 two_up
t3=$(rb_resbus ticket --tag two) || rb_fail "resbus ticket --tag two failed ($?)"
data=$(rb_resbus ticket-wait "$t3" --timeout 60) || rb_fail "ticket-wait $t3 failed ($?)"
rb_assert_match "^local:$RESBUS_LOCAL_ROOT/two_" "$data" "data of a ticket of the new pool"
# Pool one lost nothing: its ticket still holds its resource.
data=$(rb_resbus ticket-check "$t1") || rb_fail "ticket-check $t1 after the reload failed ($?)"
rb_assert_eq "$d1" "$data" "ticket $t1 after the reload"
rb_resbus ticket-close "$t1" || rb_fail "ticket-close $t1 failed ($?)"
rb_resbus ticket-close "$t3" || rb_fail "ticket-close $t3 failed ($?)"

rb_done
