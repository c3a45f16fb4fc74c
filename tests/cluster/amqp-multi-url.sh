#!/bin/bash
# amqp_url lists several nodes: every binary takes the first that answers.
# A dead first node (a closed port) is skipped by resbusd, resbus-worker
# and the resbus CLI, and a ticket cycle completes; a list of dead nodes
# only fails, naming each node it tried, without the credentials.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/cluster/lib.sh
. "$RESBUS_SRCDIR/tests/cluster/lib.sh"

rc_setup amqp-multi-url
rb_pools <<'EOF2'
mu:
  max: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  cmd_list: "@DRIVERDIR@/list"
  tags: [mu]
EOF2
dead1=$(rb_closed_port)
dead2=$(rb_closed_port)
vh=$(rb_urlencode "$RB_VHOST")
dead="amqp://guest:secret@127.0.0.1:$dead1/$vh,amqp://guest:secret@127.0.0.1:$dead2/$vh"
RB_AMQP_URL="$dead,$(rc_url_from 2)"
export RESBUS_AMQP_URL=$RB_AMQP_URL
rb_server_yaml

rb_start_broker
rb_start_worker
t0=$(date +%s%N)
id=$(rb_resbus ticket --tag mu) || rb_fail "resbus ticket failed"
data=$(rb_resbus ticket-wait "$id" --timeout 60) || rb_fail "ticket-wait failed"
rb_assert_match '^local:' "$data" "the ticket's data"
rb_resbus ticket-close "$id" || rb_fail "ticket-close failed"
rb_log "a cycle past two dead nodes: $((($(date +%s%N) - t0) / 1000000)) ms"

# Only dead nodes: a message that names them, not the password.
err=$(rb_resbus --amqp-url "$dead" ticket --tag mu 2>&1 >/dev/null)
rc=$?
[ "$rc" -ne 0 ] || rb_fail "resbus ticket succeeded without a node"
rb_assert_match "127\.0\.0\.1:$dead1: .*127\.0\.0\.1:$dead2: " "$err" \
    "the error of resbus"
rb_assert_no_match secret "$err" "the error of resbus"
rb_log "resbus: $err"
rb_stop_worker
rb_stop_broker
rb_done
