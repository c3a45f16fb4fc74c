#!/bin/bash
# Orphan clean-up with cmd_list: every cmd_list_period seconds (a resbus
# extension; resalloc sweeps every 30 minutes) a pool's cmd_list runs,
# and a resource it lists that the store does not know -- here a directory
# made by hand -- is deleted through cmd_delete with RESALLOC_NAME set to
# the listed name, while known resources, of this pool or another one,
# are left alone.  Run once per store (SQLite, PostgreSQL).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

# Without an argument the test runs itself once per store.
rb_per_store cmdlist "$@"

# cmd_delete: the local driver's, recording what it was asked to delete.
cat >"$RB_TMP/delete" <<EOF
#!/bin/sh
echo "\$RESALLOC_NAME id=\$RESALLOC_ID" >>"$RB_TMP/deleted"
exec "$RB_DRIVERDIR/delete"
EOF
chmod +x "$RB_TMP/delete"

# Pool other has no cmd_list, but its resources are in the same
# directory, so pool swept lists them too.
rb_pools <<'EOF'
swept:
  max: 3
  max_prealloc: 2
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@STATEDIR@/delete"
  cmd_list: "@DRIVERDIR@/list"
  cmd_list_period: 2
  tags: [swept]
other:
  max: 1
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@STATEDIR@/delete"
  tags: [other]
EOF

sweeps() {
	grep -c 'pool swept: cmd_list sweep' "$RB_TMP/resbusd.out"
}

sweeps_ge() {
	[ "$(sweeps)" -ge "$1" ]
}

rb_start_worker
rb_start_broker
rb_wait_for "three preallocated resources" 60 rb_local_count_is 3
known=$(rb_local_resources)
t=$(rb_resbus ticket --tag swept) || rb_fail "resbus ticket failed ($?)"
data=$(rb_resbus ticket-wait "$t" --timeout 60) || rb_fail "ticket-wait $t failed ($?)"
taken=${data#local:"$RESBUS_LOCAL_ROOT"/}
rb_wait_for "a replacement for the taken resource" 60 rb_local_count_is 4
known=$(rb_local_resources)

# A resource nobody knows, as a crash between cmd_new and the store
# would leave it.
orphan=swept_99999999_20000101_000000
mkdir -p "$RESBUS_LOCAL_ROOT/$orphan/scratch"
printf 'pool=swept\nid=99999999\n' >"$RESBUS_LOCAL_ROOT/$orphan/info"
rb_log "made $orphan by hand"
rb_wait_for "the sweep to delete $orphan" 30 rb_local_gone "$orphan"
grep -qx "$orphan id=0" "$RB_TMP/deleted" ||
    rb_fail "cmd_delete did not run with RESALLOC_NAME=$orphan RESALLOC_ID=0: $(cat "$RB_TMP/deleted")"
grep -q "pool swept: cmd_list reports $orphan, which resbus does not know" \
    "$RB_TMP/resbusd.out" || rb_fail "resbusd did not log the orphan $orphan"

# More sweeps leave the known resources, taken or free, of either pool.
n=$(sweeps)
rb_wait_for "three more sweeps" 30 sweeps_ge $((n + 3))
rb_assert_eq "$known" "$(rb_local_resources)" "resources after the sweeps"
rb_assert_eq "$orphan id=0" "$(cat "$RB_TMP/deleted")" "everything cmd_delete was asked to delete"
data=$(rb_resbus ticket-check "$t") || rb_fail "ticket-check $t failed ($?) after the sweeps"
rb_assert_eq "local:$RESBUS_LOCAL_ROOT/$taken" "$data" "ticket data after the sweeps"
[ -s "$RB_LOGDIR/hooks/000000_list" ] ||
    rb_fail "no cmd_list hook log $RB_LOGDIR/hooks/000000_list"
rb_resbus ticket-close "$t" || rb_fail "ticket-close $t failed ($?)"

rb_done
