#!/bin/bash
# Every notification resbusd publishes matches its JSON Schema.  A
# listener bound to the notification exchange before anything happens
# records every message of a scenario: tickets opened, made ready,
# closed by their holder, failed (their resource's livecheck fails) and
# closed by resbus (deadline passed, with closed_reason), resources
# started, up, deleted, and a start that fails.  Each message must name
# in fedora_messaging_schema a schema of schemas/v1, carry its URL in
# resbus_schema, and have a body that Debian's python3-jsonschema finds
# valid against it; all seven kinds must be seen.
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck disable=SC2317 # functions called through rb_wait_for
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

rb_setup schemas
CONSUME=$RESBUS_BUILDDIR/tests/status/consume
VALIDATE=$RESBUS_SRCDIR/tests/schemas/validate.py
SCHEMAS=$RESBUS_SRCDIR/schemas/v1
[ -x "$CONSUME" ] || rb_fail "$CONSUME is missing: make check builds it"
# The Python that has Debian's python3-jsonschema; the first python3 in
# PATH may be another one.
PY=
for p in /usr/bin/python3 python3; do
	if "$p" -c 'from jsonschema import Draft202012Validator' 2>/dev/null; then
		PY=$p
		break
	fi
done
[ -n "$PY" ] ||
    rb_fail "python3-jsonschema (draft 2020-12) is missing: scripts/deps.sh installs it"
"$PY" "$VALIDATE" --self-test "$SCHEMAS" ||
    rb_fail "the schemas accept bodies that resbusd must never send"

PREFIX="org.resbus.schemas$$"
RB_SERVER_EXTRA="notify_topic_prefix: $PREFIX
classes:
  scratch: {priority: 1}"
rb_server_yaml
rb_pools <<'EOF'
web:
  max: 2
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags:
    - web
fragile:
  max: 1
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  cmd_livecheck: "test ! -e @STATEDIR@/fragile-dead"
  livecheck_period: 1
  livecheck_attempts: 1
  tags:
    - fragile
broken:
  max: 1
  start_delay: 1
  cmd_new: "RESBUS_LOCAL_FAIL=1 @DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags:
    - broken
EOF

NOTES=$RB_TMP/notes.jsonl
"$CONSUME" "$RB_AMQP_URL" amq.topic "$PREFIX.resbus.#" 100000 280 \
    >"$NOTES" 2>"$RB_TMP/consume.err" &
CONSUME_PID=$!
rb_track "$CONSUME_PID"
rb_wait_for "the listener to bind its queue" 30 grep -qx bound "$RB_TMP/consume.err"

rb_start_worker
rb_start_broker
rb_wait_for "two preallocated resources" 60 rb_local_count_is 2

# has KEY [GREP_PATTERN]: a message with routing key PREFIX.resbus.KEY
# (whose line also matches GREP_PATTERN) was recorded.
has() {
	grep "\"routing_key\":\"$PREFIX.resbus.$1\"" "$NOTES" |
	    grep -q -e "${2:-.}"
}

# A ticket served, then closed by its holder: its resource is deleted.
t1=$(rb_resbus ticket --tag web --sandbox sb-1 --class scratch) ||
    rb_fail "resbus ticket failed ($?)"
rb_resbus ticket-wait "$t1" --timeout 60 >/dev/null ||
    rb_fail "resbus ticket-wait $t1 failed ($?)"
rb_resbus ticket-close "$t1" || rb_fail "resbus ticket-close $t1 failed ($?)"

# A ticket whose resource dies: failed, then closed by its holder.
t2=$(rb_resbus ticket --tag fragile) || rb_fail "resbus ticket failed ($?)"
rb_resbus ticket-wait "$t2" --timeout 60 >/dev/null ||
    rb_fail "resbus ticket-wait $t2 failed ($?)"
touch "$RB_TMP/fragile-dead"
rb_wait_for "ticket $t2 to fail" 60 has ticket.failed "\\\\\"id\\\\\":$t2,"
rm -f "$RB_TMP/fragile-dead"
rb_resbus ticket-close "$t2" || rb_fail "resbus ticket-close $t2 failed ($?)"

# A ticket only a pool whose starts fail could serve: resbus closes it
# when its deadline passes.
t3=$(rb_resbus ticket --tag broken --deadline 4) || rb_fail "resbus ticket failed ($?)"
rb_wait_for "a start in pool broken to fail" 30 has resource.deleted '\\"pool\\":\\"broken\\"'
rb_wait_for "resbus to close ticket $t3" 30 has ticket.closed closed_reason
rb_wait_for "the resource of ticket $t1 to be deleted" 60 has resource.deleted '\\"pool\\":\\"web\\"'

rb_stop_worker
rb_stop_broker
kill "$CONSUME_PID" 2>/dev/null
wait "$CONSUME_PID" 2>/dev/null
rb_log "$(wc -l <"$NOTES") notifications recorded"
# The scenario's bodies fill the fields that may be null: a sandbox, an
# owner, a class, a closed_reason.
for field in '\\"sandbox\\":\\"sb-1\\"' '\\"owner\\":\\"guest\\"' \
    '\\"class\\":\\"scratch\\"' '\\"closed_reason\\":'; do
	grep -q -e "$field" "$NOTES" || rb_fail "no notification has $field"
done

"$PY" "$VALIDATE" "$SCHEMAS" "$NOTES" "$PREFIX" \
    resbus.ticket.open resbus.ticket.ready resbus.ticket.failed \
    resbus.ticket.closed resbus.resource.starting resbus.resource.up \
    resbus.resource.deleted >"$RB_TMP/validate.out" 2>&1 ||
    rb_fail "notifications fail validation: $(cat "$RB_TMP/validate.out")"
rb_log "$(cat "$RB_TMP/validate.out")"

rb_done
