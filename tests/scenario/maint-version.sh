#!/bin/bash
# The control protocol's version, from both sides.  resbus-maint against
# a "resbusd" of another version (a stand-in that answers every
# ControlRequest with a ControlReply of version 2) says so, naming both
# versions, and exits 1; resbusd answers a ControlRequest without a
# version (as a resbus-maint older than the typed answers sends it) or of
# version 2 with ok = false and an error naming both versions, and does
# not carry the command out.  The messages are written by hand
# (tests/hostile/amqp.py), as the other releases would send them.
# shellcheck disable=SC2119 # rb_start_* take optional arguments
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

rb_setup maint-version
RB_MAINT=$RESBUS_BUILDDIR/resbus-maint
[ -x "$RB_MAINT" ] || rb_fail "$RB_MAINT is missing: build it first"
# shellcheck source=tests/maint/lib.sh
. "$RESBUS_SRCDIR/tests/maint/lib.sh"
/usr/bin/python3 -c 'import pika' 2>/dev/null ||
    rb_fail "python3-pika is missing (scripts/deps.sh)"

rb_pools <<'EOF'
mp:
  max: 1
  max_prealloc: 0
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [mt]
EOF

# amqp.py: the messages another release would send, written by hand.
RB_AMQP_PY=$RESBUS_SRCDIR/tests/hostile/amqp.py
amqp() {
	timeout -k 5 60 /usr/bin/python3 "$RB_AMQP_PY" "$RB_AMQP_URL" "$@"
}

# (a) resbus-maint and a broker of another version, on the queues and
# exchanges resbusd declared: a stand-in answers ok = true, version = 2
# to whatever comes.
rb_start_broker
rb_stop_broker
/usr/bin/python3 "$RB_AMQP_PY" "$RB_AMQP_URL" answer resbus.control \
    ControlReply "{'ok': True, 'version': 2}" >"$RB_TMP/fake.out" 2>&1 &
fake=$!
rb_track "$fake"
rb_wait_for "the stand-in broker" 30 grep -q answering "$RB_TMP/fake.out"
err=$(maint pool-pause mp 2>&1)
rb_assert_eq 1 "$?" "exit status of pool-pause against a broker of version 2"
rb_assert_eq "resbus-maint: pool-pause: resbusd answers in control protocol version 2, this client speaks version 1: use the resbus-maint of resbusd's release" \
    "$err" "pool-pause against a broker of version 2"
rb_kill "$fake"

# (b) resbusd and a client without a version (an older release), then
# one of version 2 (a newer one): both refused, naming both versions.
# amqp.py takes only the answer with its request's correlation id.
rb_start_broker
for v in 0 2; do
	fields="{'command': 'pool-pause', 'args': ['mp']}"
	[ "$v" = 0 ] || fields="{'command': 'pool-pause', 'args': ['mp'], 'version': $v}"
	out=$(amqp publish ControlRequest "$fields" --key resbus.control \
	    --wait 30) || rb_fail "the client of version $v failed ($?): $out"
	rb_log "answer to the client of version $v: $out"
	# ok = false is proto3's default: not on the wire, not printed.
	rb_assert_eq "type=resbus.v1.ControlReply
user_id=guest
error=control protocol version $v is not resbusd's (version 1): use the resbus-maint of resbusd's release
version=1" "$out" "answer to a request of version $v"
	grep -q "control: refused to user \"guest\": control protocol version $v " \
	    "$RB_TMP/resbusd.out" ||
		rb_fail "resbusd did not log the refusal of version $v"
done
out=$(maint pool-list) || rb_fail "pool-list failed ($?)"
rb_assert_match '^mp max=1 ' "$out" "pool-list"
rb_assert_no_match 'paused' "$out" "pool-list after the refused pool-pauses"

rb_done
