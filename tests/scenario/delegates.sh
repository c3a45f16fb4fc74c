#!/bin/bash
# Tickets a delegate takes for their owners, as Copr's backend takes every
# build's ticket under one AMQP login.  server.yaml names the delegate;
# with `limits: [{tag: big, per_owner: 1}]` the delegate takes, with
# `resbus ticket --owner`, two tickets for alice and one for bob: alice's
# first and bob's are served, alice's second waits with a reason naming
# alice.  The owner is what ticket-list, the JSON API, the status page
# and the notifications (header fedora_messaging_user_alice) show, and
# the delegate is recorded beside it, across a restart.  The delegate
# checks and closes the tickets it took; a user who is not a delegate and
# names an owner is refused with a clear error.  resbus-xmlrpc, with the
# delegate's login, takes one for carol through takeTicket's third
# argument.  Run once per store
# (SQLite, PostgreSQL).
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck disable=SC2317 # functions called through rb_wait_for
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

# Without an argument the test runs itself once per store.
rb_per_store delegates "$@"

for tool in curl python3; do
	command -v "$tool" >/dev/null || rb_fail "$tool is missing (scripts/deps.sh)"
done
/usr/bin/python3 -c 'import pika' 2>/dev/null ||
    rb_fail "python3-pika is missing (scripts/deps.sh)"

# Two RabbitMQ users: the delegate and someone who is not.
DELEGATE="copr-$$-$RANDOM"
OTHER="other-$$-$RANDOM"
rb_add_user "$DELEGATE" pw1
rb_add_user "$OTHER" pw2
vhost=$(rb_urlencode "$RB_VHOST")
DELEGATE_URL="amqp://$DELEGATE:pw1@127.0.0.1:$RESBUS_TEST_AMQP_PORT/$vhost"
OTHER_URL="amqp://$OTHER:pw2@127.0.0.1:$RESBUS_TEST_AMQP_PORT/$vhost"
PORT=$(rb_closed_port)
BASE="http://127.0.0.1:$PORT"
TOPICS="org.resbus.test$$"

RB_SERVER_EXTRA="delegates: [\"$DELEGATE\"]
http_listen: \"127.0.0.1:$PORT\"
notify_topic_prefix: \"$TOPICS\"
limits:
  - tag: big
    per_owner: 1"
rb_server_yaml
rb_pools <<'EOF'
big:
  max: 3
  max_prealloc: 3
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [big]
EOF
RB_MAINT=$RESBUS_BUILDDIR/resbus-maint
maint() {
	timeout -k 5 60 "$RB_MAINT" --config-dir "$RB_CONF" "$@"
}
as_delegate() {
	rb_resbus --amqp-url "$DELEGATE_URL" "$@"
}
line_of() {
	maint ticket-list | grep "^$1 - "
}

# A fedora-messaging-style listener of the notifications, bound first.
/usr/bin/python3 "$RESBUS_SRCDIR/tests/hostile/amqp.py" "$RB_AMQP_URL" \
    listen amq.topic "$TOPICS.#" 200 >"$RB_TMP/notes.txt" 2>&1 &
rb_track $!
rb_wait_for "the listener to bind its queue" 30 grep -qx listening "$RB_TMP/notes.txt"

rb_start_worker
rb_start_broker
rb_wait_for "three preallocated resources" 60 rb_local_count_is 3

a1=$(as_delegate ticket --tag big --owner alice) ||
    rb_fail "the delegate's ticket for alice failed ($?)"
as_delegate ticket-wait "$a1" --timeout 60 >/dev/null ||
    rb_fail "ticket-wait $a1 (alice's first) failed ($?)"
a2=$(as_delegate ticket --tag big --owner alice) ||
    rb_fail "the delegate's second ticket for alice failed ($?)"
b1=$(as_delegate ticket --tag big --owner bob) ||
    rb_fail "the delegate's ticket for bob failed ($?)"
# bob's is served although alice is at her limit; alice's second waits.
data=$(as_delegate ticket-wait "$b1" --timeout 60) ||
    rb_fail "ticket-wait $b1 (bob's) failed ($?)"
rb_assert_match "^local:$RESBUS_LOCAL_ROOT/big_" "$data" "data of bob's ticket"
a2_waits() {
	if out=$(as_delegate ticket-check "$a2" 2>&1); then
		echo "alice's second ticket $a2 has a resource: $out"
		return 1
	fi
}
rb_hold_for "alice's second ticket $a2 to wait" 1 a2_waits
rb_assert_match "^$a2 - state=OPEN tags=big owner=alice delegate=$DELEGATE waiting=\"owner alice at limit big 1/1\"\$" \
    "$(line_of "$a2")" "ticket-list line of alice's second ticket"
rb_assert_match "^$b1 - state=READY tags=big resource=big_[^ ]+ owner=bob delegate=$DELEGATE\$" \
    "$(line_of "$b1")" "ticket-list line of bob's ticket"

# The JSON API and the status page name the owner and the delegate.
api=$(curl -s --max-time 10 "$BASE/api/v1/tickets") || rb_fail "curl $BASE/api/v1/tickets failed"
/usr/bin/python3 - "$a2" "$DELEGATE" <<EOF || rb_fail "JSON API: $api"
import json, sys
doc = json.loads('''$api''')
items = doc['tickets'] if isinstance(doc, dict) else doc
t = [t for t in items if t['id'] == int(sys.argv[1])][0]
assert t['owner'] == 'alice', t
assert t['delegate'] == sys.argv[2], t
assert 'alice' in t['waiting_reason'], t
EOF
page=$(curl -s --max-time 10 "$BASE/") || rb_fail "curl $BASE/ failed"
rb_assert_match "<td class=\"n\">$a2</td><td>OPEN</td><td>big</td><td></td><td>alice \\(by $DELEGATE\\)</td>" \
    "$page" "status page row of alice's second ticket"

# The notifications of alice's tickets carry her header, not the delegate's.
note_for_alice() {
	grep -q '^header.fedora_messaging_user_alice=' "$RB_TMP/notes.txt"
}
rb_wait_for "a notification with fedora_messaging_user_alice" 30 note_for_alice
grep -q "^header.fedora_messaging_user_$DELEGATE=" "$RB_TMP/notes.txt" &&
    rb_fail "a notification names the delegate as its user"
grep -q '^header.fedora_messaging_user_bob=' "$RB_TMP/notes.txt" ||
    rb_fail "no notification with fedora_messaging_user_bob"

# A user who is not a delegate cannot name an owner; nothing is made.
err=$(rb_resbus --amqp-url "$OTHER_URL" ticket --tag big --owner alice 2>&1 >/dev/null)
rb_assert_eq 1 "$?" "exit status of a non-delegate naming an owner"
rb_assert_match "user \"$OTHER\" is not one of the delegates in server.yaml and cannot name an owner" \
    "$err" "error of a non-delegate naming an owner"
rb_assert_eq 3 "$(maint ticket-list | wc -l)" "tickets after the refusal"

# The owner and the delegate stay across a restart.
rb_stop_broker
rb_start_broker
rb_assert_match "^$a2 - state=OPEN tags=big owner=alice delegate=$DELEGATE waiting=\"owner alice at limit big 1/1\"\$" \
    "$(line_of "$a2")" "ticket-list line of alice's second ticket after a restart"

# Closing alice's first ticket serves her second; the delegate closes all.
as_delegate ticket-close "$a1" || rb_fail "the delegate's ticket-close $a1 failed"
as_delegate ticket-wait "$a2" --timeout 60 >/dev/null ||
    rb_fail "ticket-wait $a2 (alice's second) after her first closed failed ($?)"
as_delegate ticket-close "$a2" || rb_fail "ticket-close $a2 failed"
as_delegate ticket-close "$b1" || rb_fail "ticket-close $b1 failed"
# A closed ticket is answered from the store: the delegate still gets the
# resource's data, someone else does not.
out=$(as_delegate ticket-check "$b1" 2>/dev/null)
rb_assert_eq "$data" "$out" "the data of bob's closed ticket, to the delegate"
out=$(rb_resbus --amqp-url "$OTHER_URL" ticket-check "$b1" 2>/dev/null)
rb_assert_eq "" "$out" "the data of bob's closed ticket, to another user"
# Someone else may not close the delegate's tickets.
t=$(as_delegate ticket --tag big --owner bob) || rb_fail "ticket for bob failed"
err=$(rb_resbus --amqp-url "$OTHER_URL" ticket-close "$t" 2>&1)
rb_assert_eq 1 "$?" "exit status of another user's ticket-close"
rb_assert_match "ticket $t is not yours" "$err" "another user's ticket-close"
as_delegate ticket-close "$t" || rb_fail "ticket-close $t failed"

# resbus-xmlrpc with the delegate's login: takeTicket's third argument
# names the owner.
XPORT=$(rb_closed_port)
"$RESBUS_BUILDDIR/resbus-xmlrpc" --config-dir "$RB_CONF" \
    --amqp-url "$DELEGATE_URL" --listen "127.0.0.1:$XPORT" \
    </dev/null >>"$RB_TMP/xmlrpc.out" 2>&1 &
rb_track $!
xr_listening() {
	[ -n "$(ss -Htln "sport = :$XPORT" 2>/dev/null)" ]
}
rb_wait_for "resbus-xmlrpc to listen" 30 xr_listening
t=$(/usr/bin/python3 -c '
import sys, xmlrpc.client
p = xmlrpc.client.ServerProxy(sys.argv[1], allow_none=True)
print(p.takeTicket(["big"], "sb-carol", "carol"))' "http://127.0.0.1:$XPORT/") ||
    rb_fail "takeTicket with an owner through resbus-xmlrpc failed"
rb_assert_match "^$t - state=[A-Z]+ tags=big .*owner=carol delegate=$DELEGATE" \
    "$(line_of "$t")" "ticket-list line of carol's ticket taken through XML-RPC"
as_delegate ticket-close "$t" || rb_fail "ticket-close $t failed"

rb_done
