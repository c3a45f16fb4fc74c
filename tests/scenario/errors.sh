#!/bin/bash
# What the CLI says when something is wrong: a tag no pool provides, a
# ticket that does not exist, and a RabbitMQ that cannot be reached --
# each a clear message and a non-zero exit, never a hang.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

rb_setup errors
rb_pools <<'EOF'
errors:
  max: 2
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [demo]
EOF

rb_start_worker
rb_start_broker

# (d) a tag that no pool provides is refused, naming the tag, when the
# request asks for that (by default such a ticket waits: unprovidable.sh).
err=$(RB_CMD_TIMEOUT=60 rb_resbus ticket --tag nosuchtag --timeout 30 \
    --refuse-unprovidable 2>&1)
rc=$?
[ "$rc" -ne 124 ] || rb_fail "resbus ticket --tag nosuchtag hung"
[ "$rc" -ne 0 ] || rb_fail "resbus ticket --tag nosuchtag succeeded: $err"
rb_assert_match 'nosuchtag' "$err" "message for an unknown tag"

# ... also when it comes with a tag that exists.
err=$(RB_CMD_TIMEOUT=60 rb_resbus ticket --tag demo --tag nosuchtag \
    --timeout 30 --refuse-unprovidable 2>&1)
rc=$?
[ "$rc" -ne 124 ] || rb_fail "resbus ticket --tag demo --tag nosuchtag hung"
[ "$rc" -ne 0 ] || rb_fail "resbus ticket --tag demo --tag nosuchtag succeeded: $err"
rb_assert_match 'nosuchtag' "$err" "message for an unknown tag among known ones"

# (e) a ticket that does not exist.
out=$(RB_CMD_TIMEOUT=60 rb_resbus ticket-check 999999 2>"$RB_TMP/err")
rc=$?
err=$(cat "$RB_TMP/err")
[ "$rc" -ne 124 ] || rb_fail "resbus ticket-check 999999 hung"
[ "$rc" -ne 0 ] || rb_fail "resbus ticket-check 999999 succeeded: $out"
rb_assert_match 'non-existing ticket' "$err" "ticket-check of a missing ticket"
rb_assert_eq "" "$out" "ticket-check stdout for a missing ticket"

err=$(RB_CMD_TIMEOUT=60 rb_resbus ticket-close 999999 2>&1)
rc=$?
[ "$rc" -ne 124 ] || rb_fail "resbus ticket-close 999999 hung"
[ "$rc" -ne 0 ] || rb_fail "resbus ticket-close 999999 succeeded"

# A known tag still works after all that.
id=$(rb_resbus ticket --tag demo) || rb_fail "resbus ticket --tag demo failed ($?)"
rb_assert_match '^[0-9]+$' "$id" "ticket id"
rb_resbus ticket-wait "$id" --timeout 60 >/dev/null ||
    rb_fail "resbus ticket-wait $id failed ($?)"
rb_resbus ticket-close "$id" || rb_fail "resbus ticket-close $id failed ($?)"

# (f) RabbitMQ on a closed port: a clear message, quickly.
port=$(rb_closed_port)
for cmd in "ticket --tag demo" "ticket-check 1" "ticket-wait 1" "ticket-close 1"; do
	t0=$(date +%s)
	# shellcheck disable=SC2086 # $cmd is split on purpose
	err=$(RB_CMD_TIMEOUT=30 rb_resbus \
	    --amqp-url "amqp://guest:guest@127.0.0.1:$port/" $cmd 2>&1)
	rc=$?
	t1=$(date +%s)
	[ "$rc" -ne 124 ] || rb_fail "resbus $cmd with a closed AMQP port hung"
	[ "$rc" -ne 0 ] || rb_fail "resbus $cmd with a closed AMQP port succeeded"
	rb_assert_match '[Cc]onnect|[Rr]efused' "$err" "message for a closed AMQP port"
	[ $((t1 - t0)) -le 10 ] ||
	    rb_fail "resbus $cmd took $((t1 - t0))s to report a closed port"
done

# The same through the environment.
err=$(RESBUS_AMQP_URL="amqp://guest:guest@127.0.0.1:$port/" RB_CMD_TIMEOUT=30 \
    rb_resbus ticket --tag demo 2>&1)
rc=$?
[ "$rc" -ne 124 ] || rb_fail "resbus ticket with RESBUS_AMQP_URL on a closed port hung"
[ "$rc" -ne 0 ] || rb_fail "resbus ticket with RESBUS_AMQP_URL on a closed port succeeded"
rb_assert_match '[Cc]onnect|[Rr]efused' "$err" "message for a closed AMQP port"

# (g) A port that accepts and closes at once (a relay with nothing behind
# it): said so, not taken for a refused login.
port=$(rb_closed_port)
socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" \
    "UNIX-CONNECT:$RB_TMP/nothing.sock" </dev/null >/dev/null 2>&1 &
relay=$!
rb_wait_for "socat to listen on port $port" 30 \
    eval '[ -n "$(ss -Htln "sport = :$port")" ]'
err=$(RB_CMD_TIMEOUT=30 rb_resbus \
    --amqp-url "amqp://guest:guest@127.0.0.1:$port/" ticket --tag demo 2>&1)
rc=$?
kill "$relay"
[ "$rc" -ne 124 ] || rb_fail "resbus ticket to a port that closes hung"
[ "$rc" -ne 0 ] || rb_fail "resbus ticket to a port that closes succeeded"
rb_assert_match "127.0.0.1:$port closed the connection before the AMQP handshake" \
    "$err" "message for a port that closes at once"

rb_done
