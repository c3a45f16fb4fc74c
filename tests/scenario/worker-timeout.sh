#!/bin/bash
# cmd_new_timeout reaches the whole process group: resource 1's cmd_new
# hangs in a shell that forked a second hanging sleep; after 2 s both are
# gone (SIGTERM to the group), resource 1 is deleted through cmd_delete
# and the ticket is served by resource 2, whose cmd_new succeeds.  The
# same pool caps its hook logs at 4 KiB: resource 2's cmd_new writes
# 10 KB of diagnostics, so its log rotates to .1 and neither file passes
# the cap, while the ticket still gets the right data.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

rb_setup worker-timeout
# A number no other process on the machine has in its command line.
marker="31$$$RANDOM"
rb_pools <<EOF
hang:
  max: 2
  max_prealloc: 1
  cmd_new: 'if [ "\$RESALLOC_ID" = 1 ]; then exec sh -c "sleep $marker & sleep $marker"; fi; yes diagnostics | head -c 10000 >&2; exec @DRIVERDIR@/new'
  cmd_new_timeout: 2
  cmd_delete: "@DRIVERDIR@/delete"
  hook_log_max_bytes: 4096
  tags: [hang]
EOF

hangs() {
	pgrep -f "^sleep $marker" >/dev/null
}

# Resource 1's command and its forked sleep both run (seen by a watcher,
# since preallocation starts it as soon as resbusd runs) ...
seen_two() {
	local n
	n=$(pgrep -c -f "^sleep $marker")
	[ "$n" -ge 2 ] && echo "$n" >"$RB_TMP/seen"
}
RB_WAIT_INTERVAL=0.1 rb_until 60 seen_two &
rb_track $!
rb_start_worker
rb_start_broker
id=$(rb_resbus ticket --tag hang) || rb_fail "resbus ticket failed ($?)"
rb_wait_for "resource 1's cmd_new to hang" 30 test -s "$RB_TMP/seen"
rb_assert_eq 2 "$(cat "$RB_TMP/seen")" "hanging sleeps of resource 1"
# ... until the timeout kills the whole group.
rb_wait_for "the timeout to kill resource 1's group" 20 eval '! hangs'

data=$(rb_resbus ticket-wait "$id" --timeout 60) ||
    rb_fail "ticket-wait $id failed ($?)"
rb_assert_match "^local:$RESBUS_LOCAL_ROOT/" "$data" "ticket data"
name=${data#local:"$RESBUS_LOCAL_ROOT"/}
rb_assert_match '^id=2$' "$(cat "$RESBUS_LOCAL_ROOT/$name/info")" \
    "the resource that served the ticket"

alloc1=$(cat "$RB_LOGDIR/hooks/000001_alloc")
rb_assert_match '<timeouted after 2s>' "$alloc1" "resource 1's alloc log"
rb_wait_for "cmd_delete of resource 1" 30 test -s "$RB_LOGDIR/hooks/000001_terminate"
rb_assert_match 'timed out after 2 s' "$(cat "$RB_TMP/worker.out")" "worker log"
hangs && rb_fail "a sleep of resource 1 survived"

# The 4 KiB cap: rotated once, both files within it.
for f in "$RB_LOGDIR/hooks/000002_alloc" "$RB_LOGDIR/hooks/000002_alloc.1"; do
	[ -f "$f" ] || rb_fail "$f is missing"
	size=$(stat -c %s "$f")
	[ "$size" -le 4096 ] || rb_fail "$f has $size bytes, over the 4096 cap"
	[ "$size" -gt 0 ] || rb_fail "$f is empty"
done
rb_assert_match 'created' "$(cat "$RB_LOGDIR/hooks/000002_alloc")" \
    "the end of resource 2's alloc log"

rb_resbus ticket-close "$id" || rb_fail "ticket-close $id failed ($?)"
rb_wait_for "cmd_delete of $name" 60 rb_local_gone "$name"
rb_done
