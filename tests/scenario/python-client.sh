#!/bin/bash
# The Python example client (examples/python/resbus_client.py, pika and a
# protobuf module protoc makes from proto/resbus.proto) waits only on its
# reply queue: it runs as a user that may not bind anything to
# resbus.event, and sends no TicketQuery.  resbusd pushes the outcome there:
#   (a) an on-demand ticket whose cmd_new takes seconds gets READY, with
#       the resource's ID, name and data; the client closes it;
#   (b) a client that hears nothing for a while asks again on a new
#       connection with the same idempotency key: the same ticket, READY
#       on the new reply queue;
#   (c) a resource that dies (resbus-maint resource-delete) makes its
#       ticket FAILED, and the holder hears it on its reply queue;
#   (d) a ticket's reply queue outlives a restart of resbusd (it is in
#       the store);
#   (e) the CLI, whose replies match by correlation id, is not confused
#       by the pushed update, and an update to a reply queue that is gone
#       harms nothing.
# The fedora-messaging-style listener (examples/python/resbus_listener.py)
# prints the notifications of all this.  Run once per store.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

rb_per_store python-client "$@"

PY=/usr/bin/python3
EX=$RESBUS_SRCDIR/examples/python
command -v protoc >/dev/null ||
    rb_fail "protoc is missing: install protobuf-compiler (scripts/deps.sh)"
"$PY" -c 'import pika, google.protobuf' 2>/dev/null ||
    rb_fail "$PY lacks pika or protobuf: install python3-pika and" \
    "python3-protobuf (scripts/deps.sh)"
mkdir -p "$RB_TMP/py"
protoc --python_out="$RB_TMP/py" -I "$RESBUS_SRCDIR/proto" resbus.proto ||
    rb_fail "protoc cannot compile proto/resbus.proto"

# A client that may publish tickets and requests and read its own
# queues, but not read (so not bind to) resbus.event.
login="pyclient-$$-$RANDOM"
pw="pw-$RANDOM$RANDOM"
rb_ctl add_user "$login" "$pw" >/dev/null || rb_fail "cannot add $login"
RB_USERS+=("$login")
rb_ctl set_permissions -p "$RB_VHOST" "$login" '^amq\.gen-.*' \
    '^(amq\.gen-.*|amq\.default|resbus\.ticket)$' '^amq\.gen-.*' \
    >/dev/null || rb_fail "cannot set the permissions of $login"
CLIENT_URL="amqp://$login:$pw@127.0.0.1:$RESBUS_TEST_AMQP_PORT/$(rb_urlencode "$RB_VHOST")"

client() {
	local cmd=$1
	shift
	PYTHONPATH=$RB_TMP/py timeout -k 5 120 "$PY" "$EX/resbus_client.py" \
	    "$cmd" --amqp-url "$CLIENT_URL" "$@"
}
maint() {
	timeout -k 5 60 "$RESBUS_BUILDDIR/resbus-maint" --config-dir "$RB_CONF" \
	    "$@"
}

RB_SERVER_EXTRA='notify: true' rb_server_yaml
rb_pools <<'EOF'
slow:
  max: 2
  cmd_new: "RESBUS_LOCAL_DELAY=5 @DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [py]
  tags_on_demand: [slowtag]
EOF
rb_start_worker
rb_start_broker

"$PY" "$EX/resbus_listener.py" --amqp-url "$RB_AMQP_URL" --seconds 280 \
    >"$RB_TMP/listener.out" 2>&1 &
rb_track $!
rb_wait_for "the listener" 20 grep -q '^listening' "$RB_TMP/listener.out"

# The bind the client must do without: refused by RabbitMQ.
if PYTHONPATH=$RB_TMP/py "$PY" -c '
import pika, sys
ch = pika.BlockingConnection(pika.URLParameters(sys.argv[1])).channel()
q = ch.queue_declare("", exclusive=True).method.queue
ch.queue_bind(q, "resbus.event", routing_key="ticket.#")' "$CLIENT_URL" \
    >/dev/null 2>&1; then
	rb_fail "the client's user may bind to resbus.event"
fi

# (a) READY after cmd_new's seconds, on the reply queue alone.
t0=$(date +%s)
out=$(client take --tag slowtag --retry-after 60 --timeout 90 --close) ||
    rb_fail "the Python client failed ($?): $out"
rb_log "client: $out"
rb_assert_ge() { [ "$2" -ge "$1" ] || rb_fail "$3: $2 < $1"; }
rb_assert_ge 4 $(($(date +%s) - t0)) "seconds to READY with a 5 s cmd_new"
id=$(sed -n 's/^ticket \([0-9]*\)$/\1/p' <<<"$out")
rb_assert_match '^[0-9]+$' "$id" "the ticket's ID"
rb_assert_match "^$id READY resource=[1-9][0-9]* name=slow_[^ ]+ pool=slow owner=$login\$" \
    "$out" "the pushed TicketUpdate"
rb_assert_match '^local:.*/slow_' "$out" "the resource's data"
rb_assert_match "^$id CLOSED .* owner=$login\$" "$out" "the answer to the close"
# A closed ticket, answered from the store, still names its owner.
q=$(PYTHONPATH=$RB_TMP/py "$PY" -c '
import sys, uuid, pika, resbus_pb2 as pb
ch = pika.BlockingConnection(pika.URLParameters(sys.argv[1])).channel()
q = ch.queue_declare("", exclusive=True).method.queue
ch.basic_publish("", "resbus.request",
    pb.TicketQuery(ticket_id=int(sys.argv[2])).SerializeToString(),
    pika.BasicProperties(type="resbus.v1.TicketQuery", reply_to=q,
        correlation_id="q", user_id="guest"))
for m, p, b in ch.consume(q, inactivity_timeout=20):
    u = pb.TicketUpdate.FromString(b)
    print(pb.TicketState.Name(u.state), u.owner)
    break' "$RB_AMQP_URL" "$id") || rb_fail "cannot query ticket $id"
rb_assert_eq "TICKET_STATE_CLOSED $login" "$q" "the closed ticket's state and owner"
rid=$(sed -n "s/^$id READY resource=\\([0-9]*\\) .*/\\1/p" <<<"$out")
name=$(sed -n "s/^$id READY .* name=\\([^ ]*\\) .*/\\1/p" <<<"$out")
rb_assert_match "/$name\$" "$(grep '^local:' <<<"$out")" \
    "the resource name beside its data"

# (b) A retry with the same key, after 2 s of silence, on a new
# connection: one ticket, READY on the second reply queue.
out=$(client take --retry-after 2 --tag slowtag --key py-retry-1 \
    --timeout 60 2>"$RB_TMP/retry.err") ||
    rb_fail "the retrying client failed ($?): $out $(cat "$RB_TMP/retry.err")"
rb_log "retrying client: $out / $(cat "$RB_TMP/retry.err")"
rb_assert_match 'retrying with key py-retry-1' "$(cat "$RB_TMP/retry.err")" \
    "the client retried"
rb_assert_eq 1 "$(grep -c '^ticket ' <<<"$out")" "tickets the client saw"
id2=$(sed -n 's/^ticket \([0-9]*\)$/\1/p' <<<"$out")
rb_assert_match "^$id2 READY " "$out" "READY after the retry"
rb_assert_eq 1 "$(grep -c "ticket $id2: OPEN, tags" "$RB_TMP/resbusd.out")" \
    "tickets resbusd made for the retried request"
client close "$id2" >/dev/null || rb_fail "close $id2 failed"

# (c) The resource dies while held: FAILED on the reply queue.
client take --tag slowtag --timeout 60 --hold 60 >"$RB_TMP/held.out" 2>&1 &
held=$!
rb_wait_for "the held ticket to be READY" 60 \
    grep -q ' READY resource=' "$RB_TMP/held.out"
id3=$(sed -n 's/^ticket \([0-9]*\)$/\1/p' "$RB_TMP/held.out")
rid3=$(sed -n "s/^$id3 READY resource=\\([0-9]*\\) .*/\\1/p" "$RB_TMP/held.out")
maint resource-delete "$rid3" || rb_fail "resource-delete $rid3 failed"
rc=0
wait "$held" || rc=$?
rb_log "held: $(cat "$RB_TMP/held.out")"
rb_assert_eq 1 "$rc" "the held client's exit status (FAILED)"
rb_assert_match "^$id3 FAILED resource=$rid3 " "$(cat "$RB_TMP/held.out")" \
    "the FAILED update on the reply queue"
client close "$id3" >/dev/null || rb_fail "close $id3 failed"

# (d) resbusd restarts while cmd_new runs; the outcome still arrives.
client take --tag slowtag --retry-after 100 --timeout 100 --close \
    >"$RB_TMP/restart.out" 2>&1 &
waiter=$!
rb_wait_for "the ticket before the restart" 20 \
    grep -q '^ticket ' "$RB_TMP/restart.out"
rb_stop_broker
rb_start_broker
rc=0
wait "$waiter" || rc=$?
rb_log "across the restart: $(cat "$RB_TMP/restart.out")"
rb_assert_eq 0 "$rc" "the client waiting across the restart"
rb_assert_no_match 'retrying' "$(cat "$RB_TMP/restart.out")" \
    "retries across the restart"
rb_assert_match ' READY resource=' "$(cat "$RB_TMP/restart.out")" \
    "READY across the restart"

# (e) The CLI on the same pool.  `resbus ticket` exits at once, so its
# reply queue is gone when the ticket becomes READY: RabbitMQ drops the
# update, and nothing else happens.
t=$(rb_resbus ticket --tag slowtag) || rb_fail "resbus ticket failed"
data=$(rb_resbus ticket-wait "$t" --timeout 60) || rb_fail "ticket-wait failed"
rb_assert_match '^local:.*/slow_' "$data" "the CLI's data"
rb_resbus ticket-close "$t" || rb_fail "ticket-close $t failed"
rb_assert_no_match 'RabbitMQ refused| ERROR ' "$(cat "$RB_TMP/resbusd.out")" \
    "resbusd's log after updates to reply queues that are gone"

# The listener saw it all, with the owner in the headers.
rb_wait_for "the listener to see ticket $t closed" 20 \
    grep -q "ticket\\.closed .*\"id\": ${t}[,}]" "$RB_TMP/listener.out"
lis=$(cat "$RB_TMP/listener.out")
rb_log "listener: $lis"
rb_assert_match "^org\\.resbus\\.resbus\\.ticket\\.ready user=$login .*\"id\": ${id}[,}]" \
    "$lis" "the listener's ready notification"
rb_assert_match "^org\\.resbus\\.resbus\\.ticket\\.failed user=$login severity=30 .*\"id\": ${id3}[,}]" \
    "$lis" "the listener's failed notification"
rb_assert_match "^org\\.resbus\\.resbus\\.resource\\.up .*\"id\": ${rid}, \"name\": \"${name}\"" \
    "$lis" "the listener's notification of ticket $id's resource"
rb_done
