#!/bin/bash
# The control protocol's version, from both sides.  resbus-maint against
# a "resbusd" of another version (a stand-in that answers every
# ControlRequest with a ControlReply of version 2) says so, naming both
# versions, and exits 1; resbusd answers a ControlRequest without a
# version (as a resbus-maint older than the typed answers sends it) with
# ok = false and an error naming both versions, and does not carry the
# command out.  The messages are written by hand in Python (pika), as
# the other releases would send them.
# shellcheck disable=SC2119 # rb_start_* take optional arguments
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

rb_setup maint-version
RB_MAINT=$RESBUS_BUILDDIR/resbus-maint
[ -x "$RB_MAINT" ] || rb_fail "$RB_MAINT is missing: build it first"
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

cat >"$RB_TMP/control.py" <<'EOF'
# control.py URL fake-broker READY_FILE | URL old-client
# Protobuf by hand: a varint, a length-delimited field, and a reader.
import sys
import uuid

import pika


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def text(num, s):
    return varint(num << 3 | 2) + varint(len(s)) + s


def fields(body):
    out, i = {}, 0
    while i < len(body):
        key, i = read_varint(body, i)
        if key & 7 == 0:
            out[key >> 3], i = read_varint(body, i)
        elif key & 7 == 2:
            n, i = read_varint(body, i)
            out[key >> 3], i = body[i:i + n], i + n
        else:
            raise SystemExit("unexpected wire type %d" % (key & 7))
    return out


def read_varint(body, i):
    n, shift = 0, 0
    while True:
        b = body[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


conn = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
ch = conn.channel()
if sys.argv[2] == "fake-broker":
    # ok = true, version = 2, to whatever comes.
    # resbusd's queue (and exchanges), left by the one that ran.

    def answer(ch, method, props, body):
        ch.basic_publish("", props.reply_to, b"\x08\x01\x28\x02",
                         pika.BasicProperties(
                             type="resbus.v1.ControlReply",
                             correlation_id=props.correlation_id,
                             user_id="guest"))
        ch.basic_ack(method.delivery_tag)

    ch.basic_consume("resbus.control", answer)
    open(sys.argv[3], "w").close()
    ch.start_consuming()
else:
    # pool-pause mp, without a version.
    q = ch.queue_declare("", exclusive=True).method.queue
    corr = str(uuid.uuid4())
    ch.basic_publish("", "resbus.control",
                     text(1, b"pool-pause") + text(2, b"mp"),
                     pika.BasicProperties(
                         type="resbus.v1.ControlRequest", reply_to=q,
                         correlation_id=corr, user_id="guest"))
    for method, props, body in ch.consume(q, inactivity_timeout=30):
        if method is None:
            raise SystemExit("no answer from resbusd")
        f = fields(body)
        print("type=%s corr=%s ok=%d version=%d" % (
            props.type, props.correlation_id == corr, f.get(1, 0),
            f.get(5, 0)))
        print("error=%s" % f.get(2, b"").decode())
        break
EOF

# (a) resbus-maint and a broker of another version, on the queues and
# exchanges resbusd declared.
rb_start_broker
rb_stop_broker
/usr/bin/python3 "$RB_TMP/control.py" "$RB_AMQP_URL" fake-broker \
    "$RB_TMP/fake-ready" >"$RB_TMP/fake.out" 2>&1 &
fake=$!
rb_track "$fake"
rb_wait_for "the stand-in broker" 30 test -e "$RB_TMP/fake-ready"
err=$(timeout -k 5 60 "$RB_MAINT" --config-dir "$RB_CONF" pool-pause mp 2>&1)
rb_assert_eq 1 "$?" "exit status of pool-pause against a broker of version 2"
rb_assert_eq "resbus-maint: pool-pause: resbusd answers in control protocol version 2, this client speaks version 1: use the resbus-maint of resbusd's release" \
    "$err" "pool-pause against a broker of version 2"
rb_kill "$fake"

# (b) resbusd and a client without a version.
rb_start_broker
out=$(/usr/bin/python3 "$RB_TMP/control.py" "$RB_AMQP_URL" old-client) ||
    rb_fail "the old client failed: $out"
rb_log "answer to the old client: $out"
rb_assert_eq "type=resbus.v1.ControlReply corr=True ok=0 version=1
error=control protocol version 0 is not resbusd's (version 1): use the resbus-maint of resbusd's release" \
    "$out" "answer to a request without a version"
grep -q "control: refused to user \"guest\": control protocol version 0" \
    "$RB_TMP/resbusd.out" || rb_fail "resbusd did not log the refusal"
out=$(timeout -k 5 60 "$RB_MAINT" --config-dir "$RB_CONF" pool-list) ||
    rb_fail "pool-list failed ($?)"
rb_assert_match '^mp max=1 ' "$out" "pool-list"
rb_assert_no_match 'paused' "$out" "pool-list after the refused pool-pause"

rb_done
