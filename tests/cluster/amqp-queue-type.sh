#!/bin/bash
# A queue that exists with the other type than queue_type says: resbusd and
# resbus-worker stop at once with one line saying which queue and what to
# do, and exit status 78 (EX_CONFIG), which the systemd units do not
# restart: no crash loop.  Three ways in: resbusd's core queues at start,
# a worker's pool queue, and a tag set's queue that resbusd declares
# without waiting for the answer while it runs.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/cluster/lib.sh
. "$RESBUS_SRCDIR/tests/cluster/lib.sh"

rc_setup amqp-queue-type
[ "$RC_QUEUE_TYPE" = quorum ] || rb_fail "resbusd knows no queue_type"
rb_pools <<'EOF2'
qt:
  max: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [qt]
EOF2

for unit in resbusd resbus-worker resbus-worker@; do
	grep -qx 'RestartPreventExitStatus=78' \
	    "$RESBUS_SRCDIR/dist/systemd/$unit.service.in" ||
	    rb_fail "$unit.service restarts after status 78"
done

# Runs resbusd in the foreground until it exits; prints its status.
broker_exit() {
	timeout -k 5 60 "$RB_RESBUSD" --config-dir "$RB_CONF" \
	    >>"$RB_TMP/resbusd-x.out" 2>&1 </dev/null
	echo $?
}

# 1. Classic queues from an earlier run, quorum configured now.
RB_SERVER_EXTRA='queue_type: classic'
rb_server_yaml
rc_start_broker a
RB_WAIT_INTERVAL=1 rb_wait_for "resbusd to consume resbus.request" 60 \
    rb_broker_consuming
RB_BROKER_PID=${RC_BROKER[a]}
unset "RC_BROKER[a]"
rb_stop_broker
RB_SERVER_EXTRA='queue_type: quorum'
rb_server_yaml
rb_assert_eq 78 "$(broker_exit)" "resbusd's exit status on classic queues"
line=$(grep 'exists as a' "$RB_TMP/resbusd-x.out" | tail -n 1)
rb_assert_match 'queue resbus\.[a-z.]+ exists as a classic queue \(declared here as quorum\); delete it or set queue_type: classic' \
    "$line" "resbusd's message"
rb_log "resbusd: $line"

# 2. The worker, quorum configured, on the classic pool queue.
"$RB_WORKER" --config-dir "$RB_CONF" </dev/null >"$RB_TMP/worker-x.out" 2>&1
rb_assert_eq 78 "$?" "resbus-worker's exit status"
rb_assert_match 'queue resbus\.pool\.qt exists as a classic queue' \
    "$(cat "$RB_TMP/worker-x.out")" "resbus-worker's message"

# 3. Quorum everywhere, but one tag set's queue made classic beforehand:
# resbusd meets it only when the first ticket of that tag set comes.
for q in $(rb_ctl list_queues -q --no-table-headers -p "$RB_VHOST" name); do
	rb_ctl delete_queue -p "$RB_VHOST" "$q" >/dev/null ||
	    rb_fail "cannot delete $q"
done
/usr/bin/python3 - "$RB_AMQP_URL" <<'PY' || rb_fail "cannot declare resbus.ticket.qt"
import sys, pika
url = sys.argv[1].split(",")[0]
c = pika.BlockingConnection(pika.URLParameters(url))
c.channel().queue_declare("resbus.ticket.qt", durable=True)
c.close()
PY
rc_start_broker b
RB_WAIT_INTERVAL=1 rb_wait_for "resbusd to consume resbus.request" 60 \
    rb_broker_consuming
pid=${RC_BROKER[b]}
unset "RC_BROKER[b]"
rb_resbus ticket --tag qt --timeout 20 >/dev/null 2>&1 &
rb_track $!
rb_wait_for "resbusd to stop" 30 rb_dead "$pid"
wait "$pid"
rb_assert_eq 78 "$?" "resbusd's exit status on a classic tag-set queue"
rb_assert_match 'queue resbus\.ticket\.qt exists as a classic queue' \
    "$(cat "$RB_TMP/resbusd-b.out")" "resbusd's message"
rb_done
